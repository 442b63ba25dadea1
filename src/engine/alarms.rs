//! Alarms: raised, updated and cleared in one place, recorded and notified.
//!
//! The map holds at most one alarm per [`AlarmKey`]. `decide`'s kinds follow each
//! decision ([`Engine::sync_alarms`]); the engine's own kinds (provider failing,
//! store unreachable, promotion failed, drift, slow propagation) are raised and
//! cleared by the code that sees them. Each new alarm is written to the store and
//! notified; a cleared one is written with its clearing time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use super::Engine;
use crate::alarm::{AlarmKey, AlarmKind};
use crate::decide::Decision;
use crate::notify::NotifyKind;
use crate::store::records::{AlarmRecord, Write};

/// One active alarm.
pub(super) struct ActiveAlarm {
    /// Its row id in the store.
    pub(super) id: Uuid,
    /// The latest message.
    pub(super) message: String,
    /// When it was raised.
    pub(super) since: DateTime<Utc>,
}

/// How long `store_write_rejected` stays raised after the latest dead letter.
const DEAD_LETTER_ALARM: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

impl Engine {
    /// Follows the store writer's status: `store_unreachable` while it is down (raised once,
    /// with the writes buffered then), cleared when it is back; a plan sent while the store
    /// was down counts as recorded once nothing is pending.
    pub(super) fn on_store_status(&mut self) {
        let st = self.store.status();
        let key = AlarmKey::global(AlarmKind::StoreUnreachable);
        let now = Utc::now();
        if !st.reachable {
            self.alarms.entry(key).or_insert_with(|| ActiveAlarm {
                id: Uuid::new_v4(),
                message: format!("the orchestrator's store is unreachable; {} write(s) buffered in memory", st.pending),
                since: now,
            });
        } else {
            // Raised while the store was down: written (raised and cleared) now.
            self.clear_alarm(&key, now);
        }
        if let Some(p) = &mut self.plan
            && !p.recorded
            && st.reachable
            && st.pending == 0
        {
            p.recorded = true;
        }
        self.on_dead_letters(&st, now);
        self.dirty = true;
    }

    /// `store_write_rejected` while a write was dead-lettered within [`DEAD_LETTER_ALARM`]:
    /// the writer went on, but a human must look at what the store refused.
    fn on_dead_letters(&mut self, st: &crate::store::writer::StoreStatus, now: DateTime<Utc>) {
        let key = AlarmKey::global(AlarmKind::StoreWriteRejected);
        match &st.last_dead_letter {
            Some(d) if now - d.at < DEAD_LETTER_ALARM => {
                let msg = format!(
                    "the store refused {} write(s) for good since start; the latest, a {} write, is kept in {} \
                     (dead_letters): {}",
                    st.dead_letters,
                    d.kind,
                    if d.kept_in == "store" { "the table" } else { d.kept_in },
                    d.error
                );
                let fresh = self.alarms.get(&key).is_none_or(|a| a.message != msg);
                if fresh {
                    self.raise_alarm(key, msg, now);
                }
            }
            _ => self.clear_alarm(&key, now),
        }
    }

    /// Follows `decide`'s alarms: raises the ones it asks for, clears the ones of its kinds it no
    /// longer asks for (the engine's own kinds are left alone), and sets the metric per kind.
    pub(super) fn sync_alarms(&mut self, d: &Decision, now: DateTime<Utc>) {
        let wanted: BTreeMap<AlarmKey, String> = d.alarms.iter().map(|a| (a.key(), a.message.clone())).collect();
        let stale: Vec<AlarmKey> =
            self.alarms.keys().filter(|k| k.kind.raised_by_decide() && !wanted.contains_key(*k)).cloned().collect();
        for k in stale {
            self.clear_alarm(&k, now);
        }
        for (k, msg) in wanted {
            self.raise_alarm(k, msg, now);
        }
        for kind in AlarmKind::ALL {
            self.metrics.set_alarms(kind, self.alarms.keys().filter(|k| k.kind == kind).count());
        }
    }

    /// Raises (or updates the message of) an alarm; records and notifies when new.
    pub(super) fn raise_alarm(&mut self, key: AlarmKey, msg: String, at: DateTime<Utc>) {
        match self.alarms.get_mut(&key) {
            Some(a) => a.message = msg,
            None => {
                warn!(kind = %key.kind, message = %msg, "alarm raised");
                let id = Uuid::new_v4();
                self.store.send(alarm_write(id, &key, at, &msg));
                self.notify(
                    NotifyKind::Alarm,
                    format!("alarm:{}:{}", key.kind, key.region_or_dash()),
                    format!("alarm {}: {msg}", key.kind),
                    at,
                    json!({ "kind": key.kind, "region": key.region, "message": msg }),
                );
                self.alarms.insert(key, ActiveAlarm { id, message: msg, since: at });
            }
        }
    }

    /// Clears an active alarm: notified, and written (raised, then cleared) to the store.
    pub(super) fn clear_alarm(&mut self, key: &AlarmKey, at: DateTime<Utc>) {
        if let Some(a) = self.alarms.remove(key) {
            info!(kind = %key.kind, "alarm cleared");
            self.notify(
                NotifyKind::AlarmCleared,
                format!("alarm-cleared:{}:{}", key.kind, key.region_or_dash()),
                format!("alarm {} cleared: {}", key.kind, a.message),
                at,
                json!({ "kind": key.kind, "region": key.region }),
            );
            self.store.send(alarm_write(a.id, key, a.since, &a.message));
            self.store.send(Write::AlarmCleared { id: a.id, at });
        }
    }

    /// Records a new alarm under `key` without notifying, replacing any alarm already
    /// there (a failed promotion step: each failure is its own row).
    pub(super) fn record_alarm(&mut self, key: AlarmKey, message: String, at: DateTime<Utc>) {
        let id = Uuid::new_v4();
        self.store.send(alarm_write(id, &key, at, &message));
        self.alarms.insert(key, ActiveAlarm { id, message, since: at });
    }
}

/// The store's record of an alarm raised at `raised_at` (written again, same id, when cleared).
fn alarm_write(id: Uuid, key: &AlarmKey, raised_at: DateTime<Utc>, message: &str) -> Write {
    Write::Alarm(AlarmRecord {
        id,
        raised_at,
        kind: key.kind,
        region: key.region.clone(),
        message: message.to_string(),
    })
}
