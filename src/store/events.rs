//! The events timeline: health transitions, alarms and the audit log, written
//! by the engine and the API, and read back as one newest-first timeline
//! (with the plans, which live in [`plans`](super::plans)).
//!
//! Records arrive typed ([`TransitionRecord`] holds `Health` and `Layer`); the
//! words stored are chosen in [`columns`](super::columns). Reads go through
//! private row structs mapped by `query_as`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::columns::{TextColumn, text_column};
use super::{AlarmRecord, AuditRecord, Store, StoreError, TransitionRecord, q};
use crate::region::RegionName;

/// Which table an entry of the timeline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A check or region changed health.
    Transition,
    /// A plan was decided.
    Plan,
    /// An alarm was raised.
    Alarm,
    /// An operator (or the system) acted.
    Audit,
}

// Stored as its API name in the `kind` column of the timeline views.
text_column!(EventKind, "event kind", |k| k.as_str(), [Transition, Plan, Alarm, Audit]);

impl EventKind {
    /// The word the API and the timeline query use.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Transition => "transition",
            EventKind::Plan => "plan",
            EventKind::Alarm => "alarm",
            EventKind::Audit => "audit",
        }
    }

    /// The kind named `s` (an API filter), if any.
    pub fn parse(s: &str) -> Option<EventKind> {
        <EventKind as TextColumn>::from_text(s)
    }
}

/// One entry of the events timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Row id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Which table it comes from.
    pub kind: EventKind,
    /// Region concerned, if any.
    pub region: Option<RegionName>,
    /// One line for humans.
    pub message: String,
    /// The row's details.
    pub details: Value,
}

/// One row of the timeline query: already the read type's shape.
#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    at: DateTime<Utc>,
    kind: EventKind,
    region: Option<RegionName>,
    message: String,
    details: Value,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event { id: r.id, at: r.at, kind: r.kind, region: r.region, message: r.message, details: r.details }
    }
}

/// Records a health transition; healths and layer are stored as their words.
pub(super) async fn record_transition(tx: &mut PgConnection, t: &TransitionRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO health_transitions (id, at, vantage, region, check_name, layer, from_health, to_health, detail)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(t.id)
    .bind(t.at)
    .bind(&t.vantage)
    .bind(&t.region)
    .bind(&t.check_name)
    .bind(t.layer)
    .bind(t.from)
    .bind(t.to)
    .bind(&t.detail)
    .execute(tx)
    .await
    .map_err(q("recording a transition"))?;
    Ok(())
}

/// Records a raised alarm (re-sent on clear with the same id: a no-op then).
pub(super) async fn record_alarm(tx: &mut PgConnection, a: &AlarmRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alarms (id, raised_at, kind, region, message) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(a.id)
    .bind(a.raised_at)
    .bind(a.kind)
    .bind(&a.region)
    .bind(&a.message)
    .execute(tx)
    .await
    .map_err(q("recording an alarm"))?;
    Ok(())
}

/// Marks an alarm cleared; the first clearing time wins.
pub(super) async fn clear_alarm(tx: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("UPDATE alarms SET cleared_at = COALESCE(cleared_at, $2) WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(tx)
        .await
        .map_err(q("clearing an alarm"))?;
    Ok(())
}

/// Appends an entry to the audit log.
pub(super) async fn record_audit(tx: &mut PgConnection, a: &AuditRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, outcome, request_id, details)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(a.id)
    .bind(a.at)
    .bind(&a.actor)
    .bind(&a.action)
    .bind(&a.target)
    .bind(&a.outcome)
    .bind(&a.request_id)
    .bind(&a.details)
    .execute(tx)
    .await
    .map_err(q("recording an audit entry"))?;
    Ok(())
}

impl Store {
    /// The events timeline, newest first: transitions, plans, alarms and audit entries.
    ///
    /// `before` pages back in time; `region` and `kind` filter; audit entries are left out
    /// unless `with_audit` (the caller may read the audit log).
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadValue`] when a row's kind is unknown.
    pub async fn events(
        &self,
        before: Option<DateTime<Utc>>,
        limit: i64,
        region: Option<&str>,
        kind: Option<EventKind>,
        with_audit: bool,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT * FROM (
                SELECT id, at, 'transition' AS kind, region,
                       region || COALESCE('/' || check_name, '') || ': ' || from_health || ' → ' || to_health
                         || COALESCE(' (' || detail || ')', '') AS message,
                       jsonb_build_object('vantage', vantage, 'check', check_name, 'layer', layer,
                                          'from', from_health, 'to', to_health, 'detail', detail) AS details
                  FROM health_transitions
                UNION ALL
                SELECT id, decided_at, 'plan', NULL, kind || ': ' || reason,
                       jsonb_build_object('weights', weights, 'epoch', epoch, 'reasons', reasons,
                                          'outcome', outcome, 'verified_at', verified_at, 'plan_kind', kind)
                  FROM plans
                UNION ALL
                SELECT id, raised_at, 'alarm', region, message,
                       jsonb_build_object('alarm', kind, 'cleared_at', cleared_at)
                  FROM alarms
                UNION ALL
                SELECT id, at, 'audit', target, actor || ' ' || action || COALESCE(' ' || target, '') || ': ' || outcome,
                       jsonb_build_object('actor', actor, 'action', action, 'request_id', request_id, 'details', details)
                  FROM audit_log
                 WHERE $5
             ) e
             WHERE ($1::timestamptz IS NULL OR at < $1)
               AND ($3::text IS NULL OR region = $3 OR (kind = 'plan' AND details->'weights' ? $3))
               AND ($4::text IS NULL OR kind = $4)
             ORDER BY at DESC, id
             LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .bind(region)
        .bind(kind)
        .bind(with_audit)
        .fetch_all(self.pool())
        .await
        .map_err(q("reading events"))?;
        Ok(rows.into_iter().map(Event::from).collect())
    }

    /// The audit log, newest first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn audit(&self, before: Option<DateTime<Utc>>, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        sqlx::query_as(
            "SELECT id, at, actor, action, target, outcome, request_id, details FROM audit_log
              WHERE ($1::timestamptz IS NULL OR at < $1) ORDER BY at DESC, id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(q("reading the audit log"))
    }

    /// Deletes audit entries older than `retention` (served by the `audit_log_at` index).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn prune_audit(&self, retention: std::time::Duration) -> Result<u64, StoreError> {
        // A retention beyond chrono's range keeps everything.
        let Ok(keep) = chrono::Duration::from_std(retention) else { return Ok(0) };
        let Some(cutoff) = Utc::now().checked_sub_signed(keep) else { return Ok(0) };
        sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(q("pruning the audit log"))
    }

    /// The region last promoted to writer (from the audit log), to resume after a restart.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn last_promoted(&self) -> Result<Option<RegionName>, StoreError> {
        sqlx::query_scalar(
            "SELECT target FROM audit_log WHERE action = 'promotion.promote' AND outcome = 'ok' ORDER BY at DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(q("reading the last promotion"))
    }
}
