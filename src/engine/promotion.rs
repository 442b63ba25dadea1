//! Promotion: after a verified failover, asking the replication actor to promote the new writer.
//!
//! Only when the region's database is configured to be promoted, the old writer
//! serves nothing and the RPO gate passes; every step the replication actor
//! reports is audited, and a failed one raises `promotion_failed` — a fence that
//! could not be made on a reachable old primary included (the promotion stopped
//! there). A `skipped` fence (the old primary was unreachable) is audited as such
//! and logged; the promotion went on.

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use super::Engine;
use crate::alarm::{AlarmKey, AlarmKind};
use crate::lag::LagSample;
use crate::plan::Weights;
use crate::replication::promotion::{PromotionStep, ReplicationCommand, StepKind, StepOutcome};
use crate::store::records::{AuditRecord, Write};

impl Engine {
    /// After a verified failover: promote the region now taking the writer's share, when
    /// configured to, the old writer is drained, and the RPO gate passes now.
    pub(super) fn maybe_promote(&mut self, weights: &Weights, at: DateTime<Utc>) {
        if self.promoting || weights.get(&self.writer) > 0 {
            return;
        }
        let Some((target, _)) = weights.iter().filter(|(r, _)| **r != self.writer).max_by_key(|(_, w)| *w) else {
            return;
        };
        let target = target.clone();
        let Some(pg) = self.config.region(&target).and_then(|r| r.postgres.as_ref()) else { return };
        if !pg.promote {
            return;
        }
        let Some(tx) = self.ch.replication.clone() else { return };
        if self.synthetic_blocks_promotion(format!("would have promoted {target} (old writer {})", self.writer)) {
            return;
        }
        if let Err(why) =
            self.config.policy.failover_gate(&target, self.lag.get(&target).map(LagSample::reading).as_ref())
        {
            let msg = format!("{target} was not promoted: {why}");
            warn!(%msg, "promotion refused by the RPO gate");
            self.on_promotion_step(PromotionStep::failed(StepKind::Gate, &target, format!("refused: {why}")));
            return;
        }
        info!(%target, old = %self.writer, "requesting promotion");
        self.promoting = true;
        self.promotion.clear();
        self.store.send(Write::Audit(AuditRecord {
            id: Uuid::new_v4(),
            at,
            actor: "system".into(),
            action: "promotion.requested".into(),
            target: Some(target.to_string()),
            outcome: "accepted".into(),
            request_id: None,
            details: json!({ "old_primary": self.writer }),
        }));
        let cmd = ReplicationCommand::Promote {
            target,
            old_primary: self.writer.clone(),
            epoch: self.leadership.epoch,
            reply: None,
        };
        if tx.try_send(cmd).is_err() {
            self.promoting = false;
            warn!("replication actor busy or gone; promotion not requested");
        }
    }

    /// Records one promotion step; a failed step raises `promotion_failed`.
    pub(crate) fn on_promotion_step(&mut self, step: PromotionStep) {
        self.store.send(Write::Audit(AuditRecord {
            id: Uuid::new_v4(),
            at: step.at,
            actor: "system".into(),
            action: format!("promotion.{}", step.step),
            target: Some(step.region.to_string()),
            outcome: step.outcome.as_str().into(),
            request_id: None,
            details: json!({ "detail": step.detail }),
        }));
        if step.step == StepKind::Promote && step.is_ok() {
            self.writer = step.region.clone();
        }
        match step.outcome {
            StepOutcome::Failed => {
                self.promoting = false;
                let key = AlarmKey::of_region(AlarmKind::PromotionFailed, step.region.clone());
                let message = format!("promotion step {} on {} failed: {}", step.step, step.region, step.detail);
                self.record_alarm(key, message, step.at);
            }
            StepOutcome::Skipped => {
                warn!(step = %step.step, region = %step.region, detail = %step.detail, "promotion step skipped")
            }
            StepOutcome::Ok => {}
        }
        if step.step == StepKind::Track {
            self.promoting = false;
        }
        self.promotion.push(step);
        self.dirty = true;
    }
}
