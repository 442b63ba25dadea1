//! Promotion: when traffic fails over to a standby whose `promote = true`, make its
//! database the writer — only if the RPO gate passes at that moment, and only if the old
//! primary is fenced or unreachable.
//!
//! Steps, each reported to the engine (which records them):
//! 1. **gate**: a fresh lag sample of the target must be within its `max_lag`;
//! 2. **fence** the old primary ([`super::fence`]): its application roles (`replication.app_roles`)
//!    lose LOGIN, `default_transaction_read_only = on`, and their sessions and every other client
//!    session are terminated. A reachable old primary that cannot be fenced (missing role, missing
//!    privilege, a statement timing out…) stops the promotion here: the step fails and says why.
//!    An unreachable one (no connection within `replication.fence_timeout`) does not: the step is
//!    `skipped`, its detail saying it was unreachable and not fenced;
//! 3. **promote** the target with `pg_promote(wait => true)`;
//! 4. **unlock**: give LOGIN back to the application roles on the new primary (the fence's lock
//!    replicated to it before the promotion);
//! 5. **re-point** every other standby: `primary_conninfo` to the new primary, reloaded
//!    (PostgreSQL 13+ applies it without a restart; `recovery_target_timeline = 'latest'`,
//!    the default, follows the new timeline);
//! 6. lag tracking follows the new primary.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::oneshot;

use crate::region::RegionName;

/// A request to the replication actor.
#[derive(Debug)]
pub enum ReplicationCommand {
    /// Promote `target`, fencing `old_primary` first.
    Promote {
        /// The standby to promote.
        target: RegionName,
        /// The writer being replaced.
        old_primary: RegionName,
        /// The leader's epoch: every step first confirms this orchestrator still leads in it.
        epoch: crate::plan::Epoch,
        /// Every step, as it happens.
        reply: Option<oneshot::Sender<Vec<PromotionStep>>>,
    },
}

/// Which step of a promotion (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The RPO gate.
    Gate,
    /// This orchestrator still leads in the promotion's epoch.
    Leadership,
    /// The old primary is fenced.
    Fence,
    /// `pg_promote` on the target.
    Promote,
    /// LOGIN given back to the application roles on the new primary.
    Unlock,
    /// Another standby follows the new primary.
    Repoint,
    /// Lag is measured against the new primary.
    Track,
}

impl StepKind {
    /// The step's stable name (audit action `promotion.<name>`, the status JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Gate => "gate",
            StepKind::Leadership => "leadership",
            StepKind::Fence => "fence",
            StepKind::Promote => "promote",
            StepKind::Unlock => "unlock",
            StepKind::Repoint => "repoint",
            StepKind::Track => "track",
        }
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It did what it is for.
    Ok,
    /// It failed (`promotion_failed` is raised); a failed gate, leadership, fence or promote
    /// step ends the promotion.
    Failed,
    /// It could not be done and the promotion went on without it: an unreachable old primary
    /// that could not be fenced.
    Skipped,
}

impl StepOutcome {
    /// `ok`, `failed`, `skipped` (the audit row's outcome).
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Failed => "failed",
            StepOutcome::Skipped => "skipped",
        }
    }
}

/// One step of a promotion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionStep {
    /// Which step.
    pub step: StepKind,
    /// The region acted on.
    pub region: RegionName,
    /// How it ended.
    pub outcome: StepOutcome,
    /// What happened (secret-free).
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl PromotionStep {
    /// A step that ended now.
    pub fn new(step: StepKind, region: &RegionName, outcome: StepOutcome, detail: impl Into<String>) -> Self {
        Self { step, region: region.clone(), outcome, detail: detail.into(), at: Utc::now() }
    }

    /// A step that did what it is for, now.
    pub fn ok(step: StepKind, region: &RegionName, detail: impl Into<String>) -> Self {
        Self::new(step, region, StepOutcome::Ok, detail)
    }

    /// A step that failed, now.
    pub fn failed(step: StepKind, region: &RegionName, detail: impl Into<String>) -> Self {
        Self::new(step, region, StepOutcome::Failed, detail)
    }

    /// Whether it did what it is for.
    pub fn is_ok(&self) -> bool {
        self.outcome == StepOutcome::Ok
    }
}

/// `primary_conninfo` pointing at the database behind `dsn`, for a standby named `application_name`.
///
/// Returns None when the DSN does not parse.
pub fn primary_conninfo(dsn: &secrecy::SecretString, application_name: &str) -> Option<String> {
    let o = PgConnectOptions::from_str(dsn.expose_secret()).ok()?;
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    Some(format!(
        "host={} port={} user={} application_name={}",
        quote(o.get_host()),
        o.get_port(),
        quote(o.get_username()),
        quote(application_name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_names_host_port_user_and_application() {
        let dsn = secrecy::SecretString::from("postgres://replicator@10.0.2.5:5433/app".to_string());
        assert_eq!(
            primary_conninfo(&dsn, "dr").unwrap(),
            "host='10.0.2.5' port=5433 user='replicator' application_name='dr'"
        );
        let odd = secrecy::SecretString::from("postgres://o'neil@h/db".to_string());
        assert!(primary_conninfo(&odd, "x").unwrap().contains("user='o\\'neil'"));
    }
}
