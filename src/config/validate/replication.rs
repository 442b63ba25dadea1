//! `[replication]`: how often lag is collected, the per-query timeout, the
//! heartbeat table, how long raw samples are kept, and how an old primary is
//! fenced before a promotion (the application's roles, the fence's timeout).

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;

use crate::config::error::Problems;
use crate::config::raw::RawReplication;
use crate::config::{AppRole, RegionConfig, ReplicationConfig};

/// Default bound for connecting to an old primary and for each fence statement.
const DEFAULT_FENCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Validates `[replication]`, defaults applied; `regions` name the roles the orchestrator
/// logs in with, which the fence must never lock.
pub(super) fn validate(raw: &RawReplication, regions: &[RegionConfig], p: &mut Problems) -> ReplicationConfig {
    let replication = ReplicationConfig {
        interval: raw.interval.unwrap_or(Duration::from_secs(1)),
        timeout: raw.timeout.unwrap_or(Duration::from_millis(800)),
        heartbeat_table: raw.heartbeat_table.clone().unwrap_or_else(|| "failover_orchestrator_heartbeat".into()),
        heartbeat: raw.heartbeat.unwrap_or(true),
        raw_retention: raw.raw_retention.unwrap_or(Duration::from_secs(24 * 3600)),
        app_roles: app_roles(raw.app_roles.as_deref().unwrap_or_default(), regions, p),
        fence_timeout: raw.fence_timeout.unwrap_or(DEFAULT_FENCE_TIMEOUT),
    };
    if replication.interval.is_zero() {
        p.push("replication.interval", "is zero", "use a positive duration such as \"1s\"");
    }
    // A collection must end before the next starts, or samples pile up behind a slow database.
    if replication.timeout.is_zero() || replication.timeout > replication.interval {
        p.push(
            "replication.timeout",
            format!("({}) must be > 0 and <= interval", humantime::format_duration(replication.timeout)),
            "lower timeout or raise replication.interval",
        );
    }
    check_heartbeat_table(&replication.heartbeat_table, p);
    if replication.fence_timeout.is_zero() || replication.fence_timeout > Duration::from_secs(60) {
        p.push(
            "replication.fence_timeout",
            format!("({}) must be > 0 and <= 60s", humantime::format_duration(replication.fence_timeout)),
            "use a few seconds, e.g. \"5s\": past it a reachable old primary counts as not fenced",
        );
    }
    replication
}

/// `replication.app_roles`: valid role names, each once, none the orchestrator's own login role
/// (locking it would lock the orchestrator out of the standbys the lock replicates to).
fn app_roles(raw: &[String], regions: &[RegionConfig], p: &mut Problems) -> Vec<AppRole> {
    let own: BTreeSet<String> = regions
        .iter()
        .filter_map(|r| r.postgres.as_ref())
        .filter_map(|pg| PgConnectOptions::from_str(pg.dsn.expose_secret()).ok())
        .map(|o| o.get_username().to_string())
        .collect();
    let mut seen = BTreeSet::new();
    let mut roles = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        let key = format!("replication.app_roles[{i}]");
        match AppRole::parse(name) {
            Err(what) => p.push(key, what, "list the PostgreSQL roles the application logs in with, e.g. \"app\""),
            Ok(_) if !seen.insert(name.clone()) => {
                p.push(key, format!("`{name}` is listed twice"), "list each role once");
            }
            Ok(_) if own.contains(name) => p.push(
                key,
                format!("`{name}` is the role the orchestrator logs in with (a regions[].postgres.dsn user)"),
                "list only the application's roles; the orchestrator needs its own to fence and promote",
            ),
            Ok(role) => roles.push(role),
        }
    }
    roles
}

/// `replication.heartbeat_table`: a plain SQL identifier, since it is spliced into queries.
fn check_heartbeat_table(ht: &str, p: &mut Problems) {
    if ht.is_empty()
        || ht.len() > 63
        || !ht.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || ht.starts_with(|c: char| c.is_ascii_digit())
    {
        p.push(
            "replication.heartbeat_table",
            format!("`{ht}` is not a plain table name"),
            "use lowercase letters, digits and '_', e.g. \"failover_orchestrator_heartbeat\"",
        );
    }
}
