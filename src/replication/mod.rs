//! Replication lag of every standby: collected from PostgreSQL, reconciled, fed to the engine.
//!
//! [`LagSample`] is what the sampler sends the engine for each standby region
//! on every collection; the engine turns it into the decision core's
//! [`LagReading`](crate::policy::LagReading) (RPO gate) and publishes it in the
//! status. The pure maths live in [`lag`].

pub mod lag;
pub mod promotion;
pub mod sampler;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::LagReading;
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
            time: self.seconds.filter(|s| s.is_finite() && *s >= 0.0).map(std::time::Duration::from_secs_f64),
        }
    }
}
