//! The policy: thresholds and rules the decision core applies, as plain data.
//!
//! Built from `regions.toml` by the config stage; read by `decide`. No I/O.

use std::time::Duration;

use serde::Serialize;

use crate::lag::LagReading;
use crate::region::{RegionName, Role};

/// Whether traffic returns to a recovered region by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failback {
    /// An operator moves traffic back (`POST /api/v1/failback`).
    Manual,
    /// Traffic returns in steps once the region stayed healthy for the hold time.
    Auto,
}

/// The replication lag above which a region may not take over a failed region's share (RPO gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LagLimit {
    /// Bytes of WAL behind the primary.
    pub bytes: Option<u64>,
    /// Time behind the primary.
    #[serde(with = "crate::serde_util::opt_duration")]
    pub time: Option<Duration>,
}

/// What the policy knows of one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionPolicy {
    /// The region.
    pub name: RegionName,
    /// Its role.
    pub role: Role,
    /// Its share of traffic when everything is healthy.
    pub normal_weight: u32,
    /// RPO gate for failing over onto this region.
    pub max_lag: LagLimit,
}

/// At most `max` automatic failovers per sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Failovers allowed in the window.
    pub max: u32,
    /// The sliding window.
    #[serde(with = "crate::serde_util::duration")]
    pub window: Duration,
}

/// Every rule the decision core applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The regions, in configuration order; normal weights sum to 100.
    pub regions: Vec<RegionPolicy>,
    /// Share of its normal weight a degraded region keeps, in percent.
    pub degraded_weight_percent: u32,
    /// Preference order of regions taking over a share, most preferred first.
    pub failover_order: Vec<RegionName>,
    /// Minimum time between two changes that are not moves toward safety.
    #[serde(with = "crate::serde_util::duration")]
    pub dwell: Duration,
    /// Failback mode.
    pub failback: Failback,
    /// How long a recovered region must stay healthy before traffic returns.
    #[serde(with = "crate::serde_util::duration")]
    pub failback_hold: Duration,
    /// Weight points returned per dwell period during failback.
    pub failback_step: u32,
    /// Automatic failover budget.
    pub budget: Budget,
    /// Vantages that must see a region down before it counts as down.
    pub quorum: usize,
}

impl Policy {
    /// The policy entry of `name`, if the region exists.
    pub fn region(&self, name: &RegionName) -> Option<&RegionPolicy> {
        self.regions.iter().find(|r| &r.name == name)
    }
}

impl LagLimit {
    /// Whether the limit is set at all.
    pub fn is_set(&self) -> bool {
        self.bytes.is_some() || self.time.is_some()
    }

    /// Checks a reading against the limit.
    ///
    /// # Errors
    /// A sentence saying what is over the limit and by how much, or that the lag is unknown.
    pub fn admits(&self, lag: Option<&LagReading>) -> Result<(), String> {
        if !self.is_set() {
            return Ok(());
        }
        let Some(lag) = lag else {
            return Err("replication lag unknown while max_lag is set".to_string());
        };
        let mut over = Vec::new();
        if let Some(max) = self.bytes {
            match lag.bytes {
                Some(b) if b > max => over.push(format!("{b} bytes behind (limit {max}, over by {})", b - max)),
                Some(_) => {}
                None => over.push("bytes behind unknown".to_string()),
            }
        }
        if let Some(max) = self.time {
            match lag.time {
                Some(t) if t > max => over.push(format!(
                    "{} behind (limit {}, over by {})",
                    humantime::format_duration(round_ms(t)),
                    humantime::format_duration(max),
                    humantime::format_duration(round_ms(t - max))
                )),
                Some(_) => {}
                None => over.push("time behind unknown".to_string()),
            }
        }
        if over.is_empty() { Ok(()) } else { Err(over.join(", ")) }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
