//! The policy: thresholds and rules the decision core applies, as plain data.
//!
//! Built from `regions.toml` by the config stage; read by `decide`, the drills,
//! the lag sampler and the engine. No I/O.
//!
//! The policy is the one owner of each region's normal weight and of its RPO
//! gate (`max_lag`): the rest of the configuration borrows them from here, and
//! every "may this region take over a failed region's share with this lag?"
//! question is answered by [`Policy::failover_gate`].

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

    /// The normal share of traffic of `name` (0 for a region the policy does not know).
    pub fn normal_weight(&self, name: &RegionName) -> u32 {
        self.region(name).map_or(0, |r| r.normal_weight)
    }

    /// The RPO gate of `name` (no limit for a region the policy does not know,
    /// or one without a database).
    pub fn max_lag(&self, name: &RegionName) -> LagLimit {
        self.region(name).map(|r| r.max_lag).unwrap_or_default()
    }

    /// The RPO gate: whether `region` may take over traffic (failover, drill
    /// target, promotion) with replication lag `lag` (`None`: unknown).
    ///
    /// # Errors
    /// A sentence saying what is over the region's `max_lag` and by how much, or
    /// that the lag is unknown while a limit is set; the caller decides whether an
    /// operator's forced reason overrides it.
    pub fn failover_gate(&self, region: &RegionName, lag: Option<&LagReading>) -> Result<(), String> {
        self.max_lag(region).admits(lag)
    }
}

impl LagLimit {
    /// Whether the limit is set at all.
    pub fn is_set(&self) -> bool {
        self.bytes.is_some() || self.time.is_some()
    }

    /// Checks a reading against the limit: the primitive under
    /// [`Policy::failover_gate`] (`max_lag`) and the `degrade_lag` check.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let region = |name: &str, role, normal_weight, max_lag| RegionPolicy {
            name: RegionName::new(name),
            role,
            normal_weight,
            max_lag,
        };
        Policy {
            regions: vec![
                region("primary", Role::Primary, 80, LagLimit::default()),
                region(
                    "standby",
                    Role::Standby,
                    20,
                    LagLimit { bytes: Some(1_000), time: Some(Duration::from_secs(5)) },
                ),
            ],
            degraded_weight_percent: 50,
            failover_order: vec![RegionName::new("primary"), RegionName::new("standby")],
            dwell: Duration::from_secs(30),
            failback: Failback::Auto,
            failback_hold: Duration::from_secs(60),
            failback_step: 20,
            budget: Budget { max: 3, window: Duration::from_secs(3600) },
            quorum: 1,
        }
    }

    fn name(n: &str) -> RegionName {
        RegionName::new(n)
    }

    #[test]
    fn the_failover_gate_admits_a_standby_within_its_max_lag() {
        let lag = LagReading { bytes: Some(999), time: Some(Duration::from_secs(1)) };
        assert_eq!(policy().failover_gate(&name("standby"), Some(&lag)), Ok(()));
    }

    #[test]
    fn the_failover_gate_refuses_a_standby_over_its_max_lag_and_says_by_how_much() {
        let lag = LagReading { bytes: Some(1_500), time: Some(Duration::from_secs(1)) };
        let why = policy().failover_gate(&name("standby"), Some(&lag)).unwrap_err();
        assert_eq!(why, "1500 bytes behind (limit 1000, over by 500)");
    }

    #[test]
    fn the_failover_gate_refuses_unknown_lag_when_a_limit_is_set() {
        let why = policy().failover_gate(&name("standby"), None).unwrap_err();
        assert_eq!(why, "replication lag unknown while max_lag is set");
    }

    #[test]
    fn a_region_without_a_limit_or_unknown_to_the_policy_is_never_gated() {
        assert_eq!(policy().failover_gate(&name("primary"), None), Ok(()));
        assert_eq!(policy().failover_gate(&name("elsewhere"), None), Ok(()));
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_cases::safety())]

        /// Safety rule 3's primitive (the RPO gate): a reading passes exactly when every limit
        /// that is set is known and not exceeded; with no limit set, anything passes.
        #[test]
        fn the_lag_gate_admits_exactly_the_readings_within_every_set_limit(
            max_bytes in proptest::option::of(0u64..10_000), max_ms in proptest::option::of(0u64..10_000),
            reading in proptest::option::of((proptest::option::of(0u64..20_000), proptest::option::of(0u64..20_000))),
        ) {
            let limit = LagLimit { bytes: max_bytes, time: max_ms.map(Duration::from_millis) };
            let lag = reading.map(|(b, ms)| LagReading { bytes: b, time: ms.map(Duration::from_millis) });
            let within = |max: Option<u64>, got: Option<u64>| max.is_none_or(|m| got.is_some_and(|g| g <= m));
            let expected = max_bytes.is_none() && max_ms.is_none()
                || lag.is_some_and(|l| within(max_bytes, l.bytes) && within(max_ms, l.time.map(|t| t.as_millis() as u64)));
            let got = limit.admits(lag.as_ref());
            prop_assert_eq!(got.is_ok(), expected, "{:?} against {:?}: {:?}", lag, limit, got);
            if let Err(why) = got {
                prop_assert!(!why.is_empty());
            }
        }
    }

    #[test]
    fn the_policy_owns_each_regions_normal_weight() {
        let p = policy();
        assert_eq!((p.normal_weight(&name("primary")), p.normal_weight(&name("standby"))), (80, 20));
        assert_eq!(p.normal_weight(&name("elsewhere")), 0);
    }
}
