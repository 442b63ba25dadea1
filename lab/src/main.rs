//! `fo-lab`: starts the local three-region lab with the orchestrator and its dashboard
//! (see `scripts/lab.sh`). No logic lives here: it parses arguments and calls [`fo_lab::cli::run`].

use std::process::ExitCode;

use clap::Parser;

/// The local three-region lab of failover-orchestrator: PostgreSQL with streaming replication,
/// one app per region, PowerDNS and the orchestrator (or, with `--orchestrators 3`, one
/// orchestrator per region on a three-member etcd cluster), all on loopback.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "FO_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    lab: fo_lab::cli::LabArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    failover_orchestrator::logging::init(cli.log_json);
    let lab = fo_lab::cli::LabArgs { log_json: cli.log_json, ..cli.lab };
    match fo_lab::cli::run(lab).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
