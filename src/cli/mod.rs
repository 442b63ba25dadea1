//! The operators' command line over the REST API: `status`, `drill start|status|abort|list`,
//! `failover`, `switchover`, `failback`, `maintenance`.
//!
//! `--url` / `FO_URL` and `--token` / `FO_TOKEN` say where and as whom; output is
//! a human-readable table, or the API's JSON with `--json`. This module only
//! talks HTTP ([`client`]) and formats ([`render`]); the orchestrator decides.

pub mod client;
pub mod render;

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use client::{Client, ClientError};

/// Where and as whom.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The orchestrator's API.
    #[arg(long, env = "FO_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// Bearer token (prefer the FO_TOKEN environment variable: arguments show in `ps`).
    #[arg(long, env = "FO_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `drill …`
#[derive(Debug, Clone, Subcommand)]
pub enum DrillCmd {
    /// Start a drill (or a dry run).
    Start {
        /// Region to evacuate.
        #[arg(long)]
        evacuate: Option<String>,
        /// Region to shift to (default: the first eligible in the failover order).
        #[arg(long)]
        target: Option<String>,
        /// Percent of the share per step, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100")]
        steps: Vec<i64>,
        /// Hold per step.
        #[arg(long, default_value = "30s")]
        hold: humantime::Duration,
        /// Plan and record only.
        #[arg(long)]
        dry_run: bool,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Idempotency-Key: a retry with the same key returns the first result.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// A drill's timeline and report.
    Status {
        /// Drill id.
        id: String,
    },
    /// Abort a running drill (rolls back now).
    Abort {
        /// Drill id.
        id: String,
        /// Why.
        #[arg(long, default_value = "aborted from the CLI")]
        reason: String,
    },
    /// Recent drills.
    List,
}

/// Operator commands.
#[derive(Debug, Clone, Subcommand)]
pub enum OperatorCmd {
    /// The live status: regions, weights, plan, alarms, drill.
    Status,
    /// Failover drills.
    #[command(subcommand)]
    Drill(DrillCmd),
    /// Move all traffic to a region (held until `failback`).
    Failover {
        /// Region to move to.
        #[arg(long = "to")]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Accept a target over its lag limit (admin token).
        #[arg(long)]
        force: bool,
    },
    /// Planned move: wait until the target's lag is ~0, then move.
    Switchover {
        /// Region to move to.
        #[arg(long = "to")]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// How long to wait for the lag.
        #[arg(long, default_value = "10s")]
        timeout: humantime::Duration,
    },
    /// Release a manual failover and return to the normal weights.
    Failback {
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Drain or undrain a region.
    Maintenance {
        /// The region.
        region: String,
        /// Drain it.
        #[arg(long, conflicts_with = "undrain", required_unless_present = "undrain")]
        drain: bool,
        /// Undrain it.
        #[arg(long)]
        undrain: bool,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Runs one command; returns the text to print.
///
/// # Errors
/// [`ClientError`] when the API is unreachable or refuses.
pub async fn run(target: &Target, cmd: &OperatorCmd) -> Result<String, ClientError> {
    let c = Client::new(&target.url, target.token.clone())?;
    let (value, kind) = call(&c, cmd).await?;
    Ok(if target.json {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    } else {
        render::render(kind, &value)
    })
}

async fn call(c: &Client, cmd: &OperatorCmd) -> Result<(Value, render::Kind), ClientError> {
    use render::Kind;
    Ok(match cmd {
        OperatorCmd::Status => (c.get("/api/v1/status").await?, Kind::Status),
        OperatorCmd::Drill(DrillCmd::Start { evacuate, target, steps, hold, dry_run, reason, idempotency_key }) => {
            let hold: Duration = (*hold).into();
            let body = json!({ "evacuate": evacuate, "target": target, "steps": steps,
                "hold_seconds": hold.as_secs_f64(), "dry_run": dry_run, "reason": reason });
            (c.post("/api/v1/drills", &body, idempotency_key.as_deref()).await?, Kind::Drill)
        }
        OperatorCmd::Drill(DrillCmd::Status { id }) => (c.get(&format!("/api/v1/drills/{id}")).await?, Kind::Drill),
        OperatorCmd::Drill(DrillCmd::Abort { id, reason }) => {
            (c.post(&format!("/api/v1/drills/{id}/abort"), &json!({ "reason": reason }), None).await?, Kind::Drill)
        }
        OperatorCmd::Drill(DrillCmd::List) => (c.get("/api/v1/drills").await?, Kind::Drills),
        OperatorCmd::Failover { to, reason, force } => {
            let body = json!({ "target": to, "reason": reason, "force": force });
            (c.post("/api/v1/failover", &body, None).await?, Kind::Operation)
        }
        OperatorCmd::Switchover { to, reason, timeout } => {
            let t: Duration = (*timeout).into();
            let body = json!({ "target": to, "reason": reason, "timeout_seconds": t.as_secs_f64() });
            (c.post("/api/v1/switchover", &body, None).await?, Kind::Operation)
        }
        OperatorCmd::Failback { reason } => {
            (c.post("/api/v1/failback", &json!({ "reason": reason }), None).await?, Kind::Operation)
        }
        OperatorCmd::Maintenance { region, drain, undrain: _, reason } => {
            let body = json!({ "drain": drain, "reason": reason });
            (c.post(&format!("/api/v1/regions/{region}/maintenance"), &body, None).await?, Kind::Operation)
        }
    })
}
