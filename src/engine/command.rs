//! Operator commands: what the API and the drill scheduler ask the engine, and its answers.
//!
//! Each [`Command`] carries a `oneshot` for its reply; the engine answers from its
//! own task (see `Engine::on_command`), so callers never touch the engine's state.

use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::drill::{DrillId, DrillRecord, DrillSpec};
use crate::plan::TrafficPlan;
use crate::region::RegionName;

/// An operator command, answered on a oneshot.
#[derive(Debug)]
pub enum Command {
    /// Drain (or undrain) a region.
    Maintenance {
        /// The region.
        region: RegionName,
        /// true to drain, false to undrain.
        drain: bool,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer.
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Start a drill (live or dry run) after its preflight.
    StartDrill {
        /// The validated drill.
        spec: DrillSpec,
        /// Who (token name or `schedule:<name>`).
        actor: String,
        /// The drill as recorded, or why it was refused.
        reply: oneshot::Sender<Result<DrillRecord, CommandError>>,
    },
    /// Abort the running drill now and roll back.
    AbortDrill {
        /// The drill.
        id: DrillId,
        /// Who.
        actor: String,
        /// Why.
        reason: String,
        /// The drill as recorded.
        reply: oneshot::Sender<Result<DrillRecord, CommandError>>,
    },
    /// Move all traffic to `target` and hold it there until a failback.
    Failover {
        /// Where to.
        target: RegionName,
        /// Accept a target over its lag limit, with this reason (recorded).
        force: Option<String>,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer.
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Planned move: wait (up to `timeout`) until the target's lag is ~0, then fail over to it.
    Switchover {
        /// Where to.
        target: RegionName,
        /// How long to wait for the lag to drain.
        timeout: Duration,
        /// Largest lag in bytes counted as caught up.
        max_lag_bytes: u64,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer (sent when traffic moved or the wait ended).
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Release an operator hold and return to the normal weights (moves toward safety still apply).
    Failback {
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer.
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
}

/// What a command did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandOutcome {
    /// The plan it produced, if any.
    pub plan: Option<TrafficPlan>,
    /// The operation's record id (`operations` table).
    pub operation_id: Uuid,
    /// Reasons from the decision.
    pub reasons: Vec<String>,
}

/// Why a command was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CommandError {
    /// Unknown region.
    #[error("unknown region `{0}`")]
    UnknownRegion(String),
    /// Unknown or finished drill.
    #[error("{0}")]
    NoSuchDrill(String),
    /// This orchestrator is not the leader; who is, when known.
    #[error("this orchestrator is not the leader{}", leader_hint(.leader, .api))]
    NotLeader {
        /// The leader's region.
        leader: Option<String>,
        /// The leader's API URL.
        api: Option<String>,
    },
    /// Refused by the current state (another operation holds the lock, preflight failed …).
    #[error("refused: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The engine is stopping.
    #[error("the engine is shutting down")]
    ShuttingDown,
}

fn leader_hint(leader: &Option<String>, api: &Option<String>) -> String {
    match (leader, api) {
        (Some(l), Some(a)) => format!("; send the request to the leader, {l}, at {a}"),
        (Some(l), None) => format!("; send the request to the leader, {l}"),
        _ => "; no leader is known right now".to_string(),
    }
}
