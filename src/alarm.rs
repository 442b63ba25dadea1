//! Alarms: every kind of thing a human should be told about, as one enum. PURE.
//!
//! `decide` raises the judgement alarms (a region down, no failover target …);
//! the engine raises the ones only the shell can see (a provider failing, the
//! store unreachable, a promotion step failing, drift, slow DNS propagation).
//! Both use [`AlarmKind`], so the engine's alarm map, the metrics, the status
//! read model and the store rows all name a kind the same way: its snake_case
//! string, which is part of the API and must not change.
//!
//! No I/O here: the engine records, notifies and counts alarms.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::region::RegionName;

/// Every kind of alarm, by who raises it.
///
/// Kinds order by their name, so the engine's alarm map (and the status list built
/// from it) keeps the alphabetical order it had when kinds were strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Every region is down; the last plan is kept (decide).
    AllDown,
    /// A region is down (decide).
    RegionDown,
    /// A down region's share has nowhere to go (decide).
    NoFailoverTarget,
    /// A failover target was skipped because of its replication lag (decide).
    LagBlocksFailover,
    /// Automatic failovers used up their budget; a human must act (decide).
    BudgetSpent,
    /// A region looks down here but the quorum of vantages does not agree (yet) (decide).
    QuorumNotReached,
    /// A traffic provider failed to apply the plan, or its circuit breaker is open (engine).
    ProviderFailing,
    /// The orchestrator's own store is unreachable; writes are buffered (engine).
    StoreUnreachable,
    /// A step of a database promotion failed (engine).
    PromotionFailed,
    /// A provider serves weights the orchestrator did not set (engine).
    ProviderDrift,
    /// DNS servers did not serve the plan within the propagation timeout (engine).
    PropagationSlow,
    /// One vantage has seen a region down for a while that the other vantages see up: that
    /// vantage's network path to the region is suspect (engine).
    SuspectPath,
    /// This orchestrator has no session with the etcd majority: it neither leads nor votes (engine).
    CoordinationLost,
    /// A provider refused a write from a stale epoch, or the fence stopped one (engine).
    StaleWriteRefused,
    /// The store refused a write for good (bad data, a constraint): it was moved to the dead
    /// letters and the writes after it went on (engine).
    StoreWriteRejected,
}

impl AlarmKind {
    /// Every kind, in declaration order (the metrics export one gauge per kind).
    pub const ALL: [AlarmKind; 15] = [
        AlarmKind::AllDown,
        AlarmKind::RegionDown,
        AlarmKind::NoFailoverTarget,
        AlarmKind::LagBlocksFailover,
        AlarmKind::BudgetSpent,
        AlarmKind::QuorumNotReached,
        AlarmKind::ProviderFailing,
        AlarmKind::StoreUnreachable,
        AlarmKind::PromotionFailed,
        AlarmKind::ProviderDrift,
        AlarmKind::PropagationSlow,
        AlarmKind::SuspectPath,
        AlarmKind::CoordinationLost,
        AlarmKind::StaleWriteRefused,
        AlarmKind::StoreWriteRejected,
    ];

    /// The stable snake_case name used by the API, the metrics label and the store row.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::AllDown => "all_down",
            AlarmKind::RegionDown => "region_down",
            AlarmKind::NoFailoverTarget => "no_failover_target",
            AlarmKind::LagBlocksFailover => "lag_blocks_failover",
            AlarmKind::BudgetSpent => "budget_spent",
            AlarmKind::QuorumNotReached => "quorum_not_reached",
            AlarmKind::ProviderFailing => "provider_failing",
            AlarmKind::StoreUnreachable => "store_unreachable",
            AlarmKind::PromotionFailed => "promotion_failed",
            AlarmKind::ProviderDrift => "provider_drift",
            AlarmKind::PropagationSlow => "propagation_slow",
            AlarmKind::SuspectPath => "suspect_path",
            AlarmKind::CoordinationLost => "coordination_lost",
            AlarmKind::StaleWriteRefused => "stale_write_refused",
            AlarmKind::StoreWriteRejected => "store_write_rejected",
        }
    }

    /// Whether `decide` owns this kind: such an alarm is cleared as soon as a decision no
    /// longer asks for it. The other kinds are raised and cleared by the engine alone.
    pub fn raised_by_decide(self) -> bool {
        match self {
            AlarmKind::AllDown
            | AlarmKind::RegionDown
            | AlarmKind::NoFailoverTarget
            | AlarmKind::LagBlocksFailover
            | AlarmKind::BudgetSpent
            | AlarmKind::QuorumNotReached => true,
            AlarmKind::ProviderFailing
            | AlarmKind::StoreUnreachable
            | AlarmKind::PromotionFailed
            | AlarmKind::ProviderDrift
            | AlarmKind::PropagationSlow
            | AlarmKind::SuspectPath
            | AlarmKind::CoordinationLost
            | AlarmKind::StaleWriteRefused
            | AlarmKind::StoreWriteRejected => false,
        }
    }
}

impl Ord for AlarmKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for AlarmKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one active alarm: at most one per kind and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmKey {
    /// Its kind.
    pub kind: AlarmKind,
    /// The region concerned, if any.
    pub region: Option<RegionName>,
}

impl AlarmKey {
    /// The key of an alarm about no particular region.
    pub fn global(kind: AlarmKind) -> Self {
        Self { kind, region: None }
    }

    /// The key of an alarm about `region`.
    pub fn of_region(kind: AlarmKind, region: RegionName) -> Self {
        Self { kind, region: Some(region) }
    }

    /// The region's name, or `-` (for notification keys).
    pub fn region_or_dash(&self) -> &str {
        self.region.as_ref().map(|r| r.as_str()).unwrap_or("-")
    }
}

/// An alarm: something a human should know about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// Its kind.
    pub kind: AlarmKind,
    /// The region concerned, if any.
    pub region: Option<RegionName>,
    /// A sentence for the human.
    pub message: String,
}

impl Alarm {
    /// The key this alarm is tracked under.
    pub fn key(&self) -> AlarmKey {
        AlarmKey { kind: self.kind, region: self.region.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serialises_to_its_stable_name() {
        for kind in AlarmKind::ALL {
            let json = serde_json::to_value(kind).expect("serialisable");
            assert_eq!(json, serde_json::Value::String(kind.as_str().to_string()));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn the_names_are_the_ones_the_api_and_store_already_use() {
        let names: Vec<&str> = AlarmKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "all_down",
                "region_down",
                "no_failover_target",
                "lag_blocks_failover",
                "budget_spent",
                "quorum_not_reached",
                "provider_failing",
                "store_unreachable",
                "promotion_failed",
                "provider_drift",
                "propagation_slow",
                "suspect_path",
                "coordination_lost",
                "stale_write_refused",
                "store_write_rejected",
            ]
        );
    }

    #[test]
    fn kinds_order_by_name_as_the_string_keys_did() {
        let mut kinds = AlarmKind::ALL.to_vec();
        kinds.sort();
        let mut names: Vec<&str> = AlarmKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(), names);
    }

    #[test]
    fn only_the_judgement_kinds_are_cleared_by_decide() {
        let engine_owned: Vec<AlarmKind> = AlarmKind::ALL.into_iter().filter(|k| !k.raised_by_decide()).collect();
        assert_eq!(
            engine_owned,
            [
                AlarmKind::ProviderFailing,
                AlarmKind::StoreUnreachable,
                AlarmKind::PromotionFailed,
                AlarmKind::ProviderDrift,
                AlarmKind::PropagationSlow,
                AlarmKind::SuspectPath,
                AlarmKind::CoordinationLost,
                AlarmKind::StaleWriteRefused,
                AlarmKind::StoreWriteRejected,
            ]
        );
    }
}
