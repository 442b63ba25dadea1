//! The `lab` command (placeholder until the lab harness lands).

/// Arguments of `failover-orchestrator lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {}

/// Runs the lab.
///
/// # Errors
/// Always, for now.
pub async fn run(_args: LabArgs) -> anyhow::Result<()> {
    anyhow::bail!("lab not built yet")
}
