//! `[replication]`: how often lag is collected, the per-query timeout, the
//! heartbeat table and how long raw samples are kept.

use std::time::Duration;

use crate::config::ReplicationConfig;
use crate::config::error::Problems;
use crate::config::raw::RawReplication;

/// Validates `[replication]`, defaults applied.
pub(super) fn validate(raw: &RawReplication, p: &mut Problems) -> ReplicationConfig {
    let replication = ReplicationConfig {
        interval: raw.interval.unwrap_or(Duration::from_secs(1)),
        timeout: raw.timeout.unwrap_or(Duration::from_millis(800)),
        heartbeat_table: raw.heartbeat_table.clone().unwrap_or_else(|| "failover_orchestrator_heartbeat".into()),
        heartbeat: raw.heartbeat.unwrap_or(true),
        raw_retention: raw.raw_retention.unwrap_or(Duration::from_secs(24 * 3600)),
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
    replication
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
