//! Promotion: when traffic fails over to a standby whose `promote = true`, make its
//! database the writer — only if the RPO gate passes at that moment.
//!
//! Steps, each reported to the engine (which records them):
//! 1. **gate**: a fresh lag sample of the target must be within its `max_lag`;
//! 2. **fence** the old primary if it still answers: `default_transaction_read_only = on`
//!    via `ALTER SYSTEM` + reload, and its client sessions terminated, so it refuses
//!    writes (a soft fence: a superuser can still override it per session);
//! 3. **promote** the target with `pg_promote(wait => true)`;
//! 4. **re-point** every other standby: `primary_conninfo` to the new primary, reloaded
//!    (PostgreSQL 13+ applies it without a restart; `recovery_target_timeline = 'latest'`,
//!    the default, follows the new timeline);
//! 5. lag tracking follows the new primary.

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

/// One step of a promotion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionStep {
    /// `gate`, `fence`, `promote`, `repoint`, `track`.
    pub step: String,
    /// The region acted on.
    pub region: RegionName,
    /// Whether it succeeded.
    pub ok: bool,
    /// What happened (secret-free).
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl PromotionStep {
    pub(crate) fn new(step: &str, region: &RegionName, ok: bool, detail: impl Into<String>) -> Self {
        Self { step: step.into(), region: region.clone(), ok, detail: detail.into(), at: Utc::now() }
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
