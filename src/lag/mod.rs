//! Replication lag as values: what one measurement of a standby says
//! ([`LagSample`]), what the decision core reads of it ([`LagReading`]), and the
//! pure maths that reconcile the primary's and the standby's views into a sample
//! ([`reconcile`]).
//!
//! PURE: no I/O, no clock (callers pass the time). A leaf below the sampler that
//! collects samples (`replication::sampler`), the store that records them and the
//! status that shows them, so none of those depends on another to name a sample.

pub mod reconcile;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::region::RegionName;

/// The replication state of a standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagState {
    /// Receiving WAL and replaying it within the limits.
    Streaming,
    /// Connected but far behind (or starting up).
    CatchingUp,
    /// Not receiving WAL (no WAL receiver, or the primary is gone).
    Stopped,
    /// Replay paused on the standby.
    Paused,
    /// Could not be determined.
    Unknown,
}

/// Where a lag figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LagSource {
    /// The primary's `pg_stat_replication`.
    Primary,
    /// The standby's own functions (`pg_last_wal_receive_lsn` …).
    Standby,
    /// The heartbeat row written on the primary and read on the standby.
    Heartbeat,
}

/// One lag measurement of one standby region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagSample {
    /// The standby region.
    pub region: RegionName,
    /// When it was measured.
    pub at: DateTime<Utc>,
    /// Bytes of WAL behind the primary.
    pub bytes: Option<u64>,
    /// Seconds behind the primary.
    pub seconds: Option<f64>,
    /// Replication state.
    pub state: LagState,
    /// Which view the bytes figure came from.
    pub bytes_source: Option<LagSource>,
    /// Which view the seconds figure came from.
    pub seconds_source: Option<LagSource>,
    /// Free-text detail (secret-free): why unknown, sync state, …
    pub detail: Option<String>,
}

impl LagSample {
    /// The decision core's view of this sample.
    pub fn reading(&self) -> LagReading {
        LagReading {
            bytes: self.bytes,
            time: self.seconds.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64),
        }
    }
}

/// A replication lag reading of one region, as the decision core sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LagReading {
    /// Bytes of WAL behind the primary.
    pub bytes: Option<u64>,
    /// Time behind the primary.
    #[serde(with = "crate::serde_util::opt_duration")]
    pub time: Option<Duration>,
}
