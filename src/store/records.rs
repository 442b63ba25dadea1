//! The records the engine and the API write, as domain values: healths,
//! layers, region names and plan kinds stay typed up to the store, which
//! chooses the words stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alarm::AlarmKind;
use crate::drill::{DrillEvent, DrillRecord};
use crate::health::Health;
use crate::operation::{HoldRecord, OperationRecord};
use crate::plan::{PlanId, TrafficPlan};
use crate::region::{Layer, RegionName, Vantage};

/// A health change of a check or a region (`check_name` is None for a region).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// Row id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Which orchestrator saw it.
    pub vantage: Vantage,
    /// Region.
    pub region: RegionName,
    /// Check name, or None for the region as a whole.
    pub check_name: Option<String>,
    /// Layer of the check (None for the region as a whole).
    pub layer: Option<Layer>,
    /// Health before.
    pub from: Health,
    /// Health after.
    pub to: Health,
    /// The last error or detail that explains it.
    pub detail: Option<String>,
}

/// An alarm raised (or cleared, via [`Write::AlarmCleared`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// Row id.
    pub id: Uuid,
    /// When raised.
    pub raised_at: DateTime<Utc>,
    /// Kind (snake_case).
    pub kind: AlarmKind,
    /// Region concerned.
    pub region: Option<RegionName>,
    /// Message.
    pub message: String,
}

/// An operator action. Also the row the audit log reads back: its columns are
/// these fields, one to one, so it maps with `query_as` directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditRecord {
    /// Row id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (token name or `system`).
    pub actor: String,
    /// What (`maintenance.drain`, `failover` …).
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// The request id.
    pub request_id: Option<String>,
    /// Anything else.
    pub details: serde_json::Value,
}

/// One buffered write. Serialized (tagged by its [`Write::kind`]) into the spill file and
/// into dead letters; reading one back gives the same write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum Write {
    /// A health transition.
    Transition(TransitionRecord),
    /// A decided plan (before it is applied).
    Plan {
        /// The plan.
        plan: Box<TrafficPlan>,
        /// The vantage that decided it.
        vantage: Vantage,
    },
    /// One provider's apply report for a plan.
    PlanOutcome {
        /// The plan.
        plan_id: PlanId,
        /// The provider.
        provider: String,
        /// The report as JSON.
        report: serde_json::Value,
        /// Set when every provider verified the plan.
        verified_at: Option<DateTime<Utc>>,
    },
    /// An alarm raised.
    Alarm(AlarmRecord),
    /// An alarm cleared.
    AlarmCleared {
        /// The alarm's id.
        id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// An operator action.
    Audit(AuditRecord),
    /// A drill's row, inserted or updated.
    Drill(Box<DrillRecord>),
    /// One entry of a drill's timeline.
    DrillEvent(Box<DrillEvent>),
    /// A manual operation's row, inserted or updated.
    Operation(Box<OperationRecord>),
    /// The operator hold set (Some) or released (None).
    Hold(Option<Box<HoldRecord>>),
    /// A batch of lag samples (one per standby per collection).
    LagSamples(Vec<crate::lag::LagSample>),
    /// An incident's timeline, upserted at each milestone.
    Incident(Box<crate::incidents::Incident>),
    /// A region drained (Some) or undrained (None).
    Maintenance {
        /// The region.
        region: RegionName,
        /// `Some((since, reason))` to drain, `None` to undrain.
        drain: Option<(DateTime<Utc>, String)>,
    },
}

impl Write {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Write::Transition(_) => "transition",
            Write::Plan { .. } => "plan",
            Write::PlanOutcome { .. } => "plan_outcome",
            Write::Alarm(_) => "alarm",
            Write::AlarmCleared { .. } => "alarm_cleared",
            Write::Audit(_) => "audit",
            Write::Maintenance { .. } => "maintenance",
            Write::Drill(_) => "drill",
            Write::DrillEvent(_) => "drill_event",
            Write::Operation(_) => "operation",
            Write::Hold(_) => "hold",
            Write::LagSamples(_) => "lag_samples",
            Write::Incident(_) => "incident",
        }
    }
}
