//! Traffic plans: desired weights per region, with the why and the fencing epoch.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::region::RegionName;

/// Weight per region. A valid set sums to 100.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Weights(pub BTreeMap<RegionName, u32>);

impl Weights {
    /// Builds weights from pairs.
    pub fn from_pairs<I: IntoIterator<Item = (RegionName, u32)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The weight of `r` (0 when absent).
    pub fn get(&self, r: &RegionName) -> u32 {
        self.0.get(r).copied().unwrap_or(0)
    }

    /// Sets the weight of `r`.
    pub fn set(&mut self, r: &RegionName, w: u32) {
        self.0.insert(r.clone(), w);
    }

    /// Moves `amount` points from `from` to `to` (saturating at what `from` holds).
    pub fn shift(&mut self, from: &RegionName, to: &RegionName, amount: u32) -> u32 {
        let moved = amount.min(self.get(from));
        self.set(from, self.get(from) - moved);
        self.set(to, self.get(to) + moved);
        moved
    }

    /// Sum of all weights.
    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }

    /// Iterates over (region, weight).
    pub fn iter(&self) -> impl Iterator<Item = (&RegionName, u32)> {
        self.0.iter().map(|(r, w)| (r, *w))
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(r, w)| format!("{r}={w}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// Fencing token: grows with every change of leadership; a provider refuses a plan from an older epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Epoch(pub i64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanId(pub Uuid);

impl PlanId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for PlanId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a plan exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// The configured weights (start-up).
    Normal,
    /// Part of a degraded region's share moved away.
    DegradeShift,
    /// A down region's share moved to the next candidate.
    Failover,
    /// Traffic returning to a recovered region.
    Failback,
    /// A region drained or undrained by an operator.
    Maintenance,
    /// Set by an operator (manual failover, switchover, forced move).
    Manual,
    /// A drill step or rollback.
    Drill,
}

impl PlanKind {
    /// Every kind, in declaration order (the metrics export each from zero).
    pub const ALL: [PlanKind; 7] = [
        PlanKind::Normal,
        PlanKind::DegradeShift,
        PlanKind::Failover,
        PlanKind::Failback,
        PlanKind::Maintenance,
        PlanKind::Manual,
        PlanKind::Drill,
    ];

    /// Stable name for storage and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Normal => "normal",
            PlanKind::DegradeShift => "degrade_shift",
            PlanKind::Failover => "failover",
            PlanKind::Failback => "failback",
            PlanKind::Maintenance => "maintenance",
            PlanKind::Manual => "manual",
            PlanKind::Drill => "drill",
        }
    }
}

/// Desired weights plus the reason and the inputs they were decided from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficPlan {
    /// Unique id.
    pub id: PlanId,
    /// Leadership epoch of the orchestrator that decided it.
    pub epoch: Epoch,
    /// Desired weights; sum 100.
    pub weights: Weights,
    /// Why.
    pub kind: PlanKind,
    /// One-line summary.
    pub reason: String,
    /// Every reason the decision gave.
    pub reasons: Vec<String>,
    /// The inputs the decision saw (health, lag, quorum), as recorded.
    pub inputs: serde_json::Value,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::PlanKind;

    #[test]
    fn all_lists_every_kind_once_in_declaration_order() {
        // Exhaustive: a new kind does not compile until it has a place here (and in `ALL`).
        fn position(k: PlanKind) -> usize {
            match k {
                PlanKind::Normal => 0,
                PlanKind::DegradeShift => 1,
                PlanKind::Failover => 2,
                PlanKind::Failback => 3,
                PlanKind::Maintenance => 4,
                PlanKind::Manual => 5,
                PlanKind::Drill => 6,
            }
        }
        let positions: Vec<usize> = PlanKind::ALL.iter().map(|k| position(*k)).collect();
        assert_eq!(positions, (0..PlanKind::ALL.len()).collect::<Vec<_>>());
    }
}
