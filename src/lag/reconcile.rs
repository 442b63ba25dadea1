//! Pure lag maths: LSN parsing and the reconciliation of three views into one
//! [`LagSample`]. PURE: no I/O, no clock (the caller passes `at`).
//!
//! The views, and when each is trusted:
//! - **bytes**: the primary's current WAL position minus the standby's replay
//!   position (both exact; the primary is read first, so this never
//!   overestimates). Without the standby, the primary's `pg_stat_replication`
//!   replay position; without the primary, the standby's own received-minus-
//!   replayed (how far replay is behind what it last received).
//! - **seconds**: the heartbeat. The orchestrator writes a timestamp row on the
//!   primary; a standby that has replayed the row written at `R` while the
//!   newest written is `W` is `W − R` behind, measured on the primary's clock
//!   alone (no skew) and true when the primary is idle — where
//!   `now() − pg_last_xact_replay_timestamp()` grows without any real lag —
//!   and when the primary is gone. Fully caught up in bytes means 0 s.
//!   Without a heartbeat: the primary's `replay_lag`, then the standby's
//!   last-replayed-transaction age (marked as such: it lies on an idle primary).

use chrono::{DateTime, Utc};

use super::{LagSample, LagSource, LagState};
use crate::region::RegionName;

/// Parses a PostgreSQL LSN (`16/B374D848`) into a byte position.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
        return None;
    }
    Some((hi << 32) | lo)
}

/// One row of the primary's `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaRow {
    /// `application_name` of the standby's WAL receiver.
    pub application_name: String,
    /// `state`: `streaming`, `catchup`, `startup`, `backup`, `stopping`.
    pub state: String,
    /// `sync_state`: `sync`, `async`, `potential`, `quorum`.
    pub sync_state: String,
    /// Replayed position reported by the standby.
    pub replay_lsn: Option<u64>,
    /// `replay_lag` in seconds, when PostgreSQL has one.
    pub replay_lag: Option<f64>,
}

/// What the primary says.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryView {
    /// `pg_current_wal_lsn()`.
    pub current_lsn: u64,
    /// `pg_stat_replication`.
    pub replicas: Vec<ReplicaRow>,
}

/// What a standby says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct StandbyView {
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
    /// `pg_last_wal_receive_lsn()`.
    pub receive_lsn: Option<u64>,
    /// `pg_last_wal_replay_lsn()`.
    pub replay_lsn: Option<u64>,
    /// `pg_last_xact_replay_timestamp()`.
    pub last_replay_at: Option<DateTime<Utc>>,
    /// `pg_is_wal_replay_paused()`.
    pub paused: bool,
    /// `pg_stat_wal_receiver.status` (None: no WAL receiver).
    pub receiver_status: Option<String>,
    /// The standby's `now()`.
    pub now: DateTime<Utc>,
    /// The heartbeat timestamp replayed on the standby.
    pub heartbeat: Option<DateTime<Utc>>,
}

/// Everything reconciled for one standby.
#[derive(Debug, Clone, PartialEq)]
pub struct Views<'a> {
    /// The standby region.
    pub region: &'a RegionName,
    /// Its `application_name` in `pg_stat_replication`.
    pub application_name: &'a str,
    /// The primary's view, when the primary answered.
    pub primary: Option<&'a PrimaryView>,
    /// The standby's view, when it answered.
    pub standby: Option<&'a StandbyView>,
    /// The newest heartbeat the orchestrator wrote on the primary (primary clock).
    pub heartbeat_written: Option<DateTime<Utc>>,
    /// Bytes behind above which a streaming standby counts as catching up.
    pub catching_up_bytes: Option<u64>,
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().map(|us| us as f64 / 1e6).unwrap_or(f64::MAX).max(0.0)
}

/// Reconciles the views into one sample taken at `at`.
pub fn reconcile(v: &Views<'_>, at: DateTime<Utc>) -> LagSample {
    let row = v.primary.and_then(|p| p.replicas.iter().find(|r| r.application_name == v.application_name));
    let mut notes = Vec::new();

    let (bytes, bytes_source) = match (v.primary, v.standby.and_then(|s| s.replay_lsn), row.and_then(|r| r.replay_lsn))
    {
        (Some(p), Some(replay), _) => (Some(p.current_lsn.saturating_sub(replay)), Some(LagSource::Primary)),
        (Some(p), None, Some(replay)) => (Some(p.current_lsn.saturating_sub(replay)), Some(LagSource::Primary)),
        (None, _, _) => match v.standby.and_then(|s| Some(s.receive_lsn?.saturating_sub(s.replay_lsn?))) {
            Some(b) => {
                notes.push("primary unreachable: bytes are received-but-not-replayed".to_string());
                (Some(b), Some(LagSource::Standby))
            }
            None => (None, None),
        },
        _ => (None, None),
    };

    let heartbeat = match (v.heartbeat_written, v.standby.and_then(|s| s.heartbeat)) {
        (Some(w), Some(r)) => Some(secs(w - r)),
        _ => None,
    };
    let (seconds, seconds_source) = if bytes == Some(0) && v.primary.is_some() {
        (Some(0.0), bytes_source)
    } else if let Some(h) = heartbeat {
        (Some(h), Some(LagSource::Heartbeat))
    } else if let Some(l) = row.and_then(|r| r.replay_lag) {
        (Some(l), Some(LagSource::Primary))
    } else if let Some(s) = v.standby.filter(|s| s.last_replay_at.is_some()) {
        notes.push(
            "no heartbeat yet: seconds from the last replayed transaction (overstates on an idle primary)".into(),
        );
        (s.last_replay_at.map(|t| secs(s.now - t)), Some(LagSource::Standby))
    } else {
        (None, None)
    };

    let state = match (v.standby, row) {
        (None, None) if v.primary.is_some() => {
            notes.push("standby unreachable and not replicating from the primary".into());
            LagState::Stopped
        }
        (None, None) => {
            notes.push("neither the primary nor the standby answered".into());
            LagState::Unknown
        }
        (None, Some(r)) => {
            notes.push("standby unreachable; state from the primary".into());
            state_of_row(r)
        }
        (Some(s), _) if !s.in_recovery => {
            notes.push("not in recovery: promoted or not a standby".into());
            LagState::Unknown
        }
        (Some(s), _) if s.paused => LagState::Paused,
        (Some(s), _) if s.receiver_status.as_deref() != Some("streaming") => {
            notes.push(format!("WAL receiver: {}", s.receiver_status.as_deref().unwrap_or("none")));
            LagState::Stopped
        }
        (Some(_), Some(r)) if r.state != "streaming" => state_of_row(r),
        (Some(_), _) if bytes.zip(v.catching_up_bytes).is_some_and(|(b, lim)| b > lim) => LagState::CatchingUp,
        (Some(_), _) => LagState::Streaming,
    };
    if let Some(r) = row {
        notes.push(format!("sync_state={}", r.sync_state));
    }
    LagSample {
        region: v.region.clone(),
        at,
        bytes,
        seconds,
        state,
        bytes_source,
        seconds_source,
        detail: if notes.is_empty() { None } else { Some(notes.join("; ")) },
    }
}

fn state_of_row(r: &ReplicaRow) -> LagState {
    match r.state.as_str() {
        "streaming" => LagState::Streaming,
        "catchup" | "startup" | "backup" => LagState::CatchingUp,
        _ => LagState::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).expect("valid")
    }

    fn standby(replay: u64, hb: Option<i64>) -> StandbyView {
        StandbyView {
            in_recovery: true,
            receive_lsn: Some(replay),
            replay_lsn: Some(replay),
            last_replay_at: Some(t(0)),
            paused: false,
            receiver_status: Some("streaming".into()),
            now: t(60_000),
            heartbeat: hb.map(t),
        }
    }

    fn primary(lsn: u64, replay: Option<u64>) -> PrimaryView {
        PrimaryView {
            current_lsn: lsn,
            replicas: vec![ReplicaRow {
                application_name: "standby".into(),
                state: "streaming".into(),
                sync_state: "sync".into(),
                replay_lsn: replay,
                replay_lag: None,
            }],
        }
    }

    fn views<'a>(
        r: &'a RegionName,
        p: Option<&'a PrimaryView>,
        s: Option<&'a StandbyView>,
        w: Option<i64>,
    ) -> Views<'a> {
        Views {
            region: r,
            application_name: "standby",
            primary: p,
            standby: s,
            heartbeat_written: w.map(t),
            catching_up_bytes: Some(1_000_000),
        }
    }

    #[test]
    fn lsn_parsing_matches_postgres() {
        // Golden values from PostgreSQL 15: SELECT '16/B374D848'::pg_lsn - '0/0'::pg_lsn = 97500059720.
        assert_eq!(parse_lsn("16/B374D848"), Some(97_500_059_720));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("0/3000148"), Some(50_331_976));
        assert_eq!(parse_lsn("garbage"), None);
        assert_eq!(parse_lsn("1/"), None);
    }

    #[test]
    fn idle_primary_caught_up_is_zero_even_with_an_old_last_transaction() {
        let r = RegionName::new("standby");
        let p = primary(5000, Some(5000));
        let s = standby(5000, Some(59_000));
        let sample = reconcile(&views(&r, Some(&p), Some(&s), Some(59_000)), t(60_000));
        // now - last_replay_at would say 60 s; the truth is 0.
        assert_eq!(sample.bytes, Some(0));
        assert_eq!(sample.seconds, Some(0.0));
        assert_eq!(sample.state, LagState::Streaming);
    }

    #[test]
    fn paused_replay_lags_by_the_heartbeat_gap() {
        let r = RegionName::new("standby");
        let p = primary(90_000, Some(10_000));
        let mut s = standby(10_000, Some(50_000));
        s.paused = true;
        s.receive_lsn = Some(90_000);
        let sample = reconcile(&views(&r, Some(&p), Some(&s), Some(58_500)), t(60_000));
        assert_eq!(sample.bytes, Some(80_000));
        assert_eq!(sample.bytes_source, Some(LagSource::Primary));
        assert_eq!(sample.seconds, Some(8.5));
        assert_eq!(sample.seconds_source, Some(LagSource::Heartbeat));
        assert_eq!(sample.state, LagState::Paused);
    }

    #[test]
    fn primary_gone_uses_the_standby_view_and_the_last_heartbeat_written() {
        let r = RegionName::new("standby");
        let mut s = standby(7_000, Some(40_000));
        s.receive_lsn = Some(9_000);
        s.receiver_status = None;
        let sample = reconcile(&views(&r, None, Some(&s), Some(41_000)), t(60_000));
        assert_eq!(sample.bytes, Some(2_000));
        assert_eq!(sample.bytes_source, Some(LagSource::Standby));
        // 1 s behind the last heartbeat written before the primary went away, not 20 s.
        assert_eq!(sample.seconds, Some(1.0));
        assert_eq!(sample.state, LagState::Stopped);
    }

    #[test]
    fn standby_down_and_absent_from_the_primary_is_stopped() {
        let r = RegionName::new("standby");
        let p = PrimaryView { current_lsn: 10, replicas: vec![] };
        let sample = reconcile(&views(&r, Some(&p), None, Some(1)), t(0));
        assert_eq!(sample.state, LagState::Stopped);
        assert_eq!(sample.bytes, None);
    }

    #[test]
    fn nothing_answering_is_unknown() {
        let r = RegionName::new("standby");
        let sample = reconcile(&views(&r, None, None, None), t(0));
        assert_eq!(sample.state, LagState::Unknown);
        assert_eq!(sample.seconds, None);
    }

    #[test]
    fn far_behind_but_streaming_is_catching_up() {
        let r = RegionName::new("standby");
        let p = primary(50_000_000, Some(1_000));
        let s = standby(1_000, Some(0));
        let sample = reconcile(&views(&r, Some(&p), Some(&s), Some(500)), t(1_000));
        assert_eq!(sample.state, LagState::CatchingUp);
    }

    #[test]
    fn promoted_standby_is_not_reported_as_streaming() {
        let r = RegionName::new("standby");
        let mut s = standby(1_000, None);
        s.in_recovery = false;
        let sample = reconcile(&views(&r, None, Some(&s), None), t(0));
        assert_eq!(sample.state, LagState::Unknown);
        assert!(sample.detail.unwrap().contains("promoted"));
    }
}
