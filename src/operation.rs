//! Manual operations and the operator hold, as domain values. PURE.
//!
//! An operator's failover, switchover, failback or maintenance is an
//! [`OperationRecord`] that moves through [`OperationState`]s as the engine
//! acts on it; a manual failover or switchover also pins the weights with a
//! [`HoldRecord`] until a failback. The engine creates and updates them, the
//! store keeps them (kinds and states as their snake_case names, which the
//! `operations` table and the API already use), the status shows the hold.
//!
//! No I/O here.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plan::{PlanId, Weights};
use crate::region::RegionName;

/// What an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Drain or undrain a region.
    Maintenance,
    /// Move all traffic to a region now.
    Failover,
    /// Move all traffic to a region once its lag drained.
    Switchover,
    /// Release the hold and return to the normal weights.
    Failback,
}

impl OperationKind {
    /// Every kind.
    pub const ALL: [OperationKind; 4] =
        [OperationKind::Maintenance, OperationKind::Failover, OperationKind::Switchover, OperationKind::Failback];

    /// Stable name for storage and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Maintenance => "maintenance",
            OperationKind::Failover => "failover",
            OperationKind::Switchover => "switchover",
            OperationKind::Failback => "failback",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far an operation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Accepted, nothing moved yet (a switchover waiting for its lag to drain).
    Waiting,
    /// Its plan was sent to the providers.
    Applied,
    /// Its plan was verified on every provider (or no traffic change was needed).
    Verified,
    /// Given up: the target stopped being a valid one.
    Refused,
    /// Given up: the target's lag did not drain in time.
    TimedOut,
    /// A restart happened while it was waiting (settled at start-up by the store).
    Interrupted,
    /// Applied but not verified before a restart, and a newer plan replaced it.
    Superseded,
    /// Applied but not verified before a restart; its plan is re-applied.
    Resumed,
}

impl OperationState {
    /// Every state.
    pub const ALL: [OperationState; 8] = [
        OperationState::Waiting,
        OperationState::Applied,
        OperationState::Verified,
        OperationState::Refused,
        OperationState::TimedOut,
        OperationState::Interrupted,
        OperationState::Superseded,
        OperationState::Resumed,
    ];

    /// Stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Waiting => "waiting",
            OperationState::Applied => "applied",
            OperationState::Verified => "verified",
            OperationState::Refused => "refused",
            OperationState::TimedOut => "timed_out",
            OperationState::Interrupted => "interrupted",
            OperationState::Superseded => "superseded",
            OperationState::Resumed => "resumed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for OperationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manual operation (failover, switchover, failback, maintenance) and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// Row id (returned to the caller as the operation's record id).
    pub id: Uuid,
    /// When requested.
    pub requested_at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What was asked.
    pub kind: OperationKind,
    /// The region concerned.
    pub target: Option<String>,
    /// Why.
    pub reason: String,
    /// How far it got.
    pub state: OperationState,
    /// The plan it produced.
    pub plan_id: Option<PlanId>,
    /// Anything else (lag seen, force reason …).
    pub details: serde_json::Value,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Weights an operator pinned with a manual failover or switchover, kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// The operation that set it.
    pub operation_id: Uuid,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The pinned weights.
    pub weights: Weights,
    /// Why.
    pub reason: String,
    /// A region allowed over its lag limit, and why (a forced failover).
    pub lag_override: Option<(RegionName, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_keep_their_stored_names() {
        let kinds: Vec<&str> = OperationKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["maintenance", "failover", "switchover", "failback"]);
        let states: Vec<&str> = OperationState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            states,
            ["waiting", "applied", "verified", "refused", "timed_out", "interrupted", "superseded", "resumed"]
        );
    }

    #[test]
    fn every_name_parses_back_and_serialises_the_same() {
        for k in OperationKind::ALL {
            assert_eq!(OperationKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).ok(), Some(serde_json::Value::String(k.to_string())));
        }
        for s in OperationState::ALL {
            assert_eq!(OperationState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::String(s.to_string())));
        }
        assert_eq!(OperationState::parse("pending"), None);
    }
}
