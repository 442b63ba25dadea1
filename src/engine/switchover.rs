//! Switchover: a planned move that waits for the target's lag to drain, then fails over.
//!
//! The command is answered only when traffic moved or the wait ended: the
//! target caught up (moved, like a manual failover), stopped being up
//! (`refused`) or did not catch up before the deadline (`timed_out`).

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::observe::fmt_opt;
use super::{CommandError, CommandOutcome, Engine};
use crate::health::Health;
use crate::operation::{OperationKind, OperationRecord, OperationState};
use crate::region::RegionName;
use crate::store::records::Write;

/// Replay lag (seconds) counted as caught up when the bytes figure is unknown.
const SWITCHOVER_MAX_SECONDS: f64 = 0.5;

/// A switchover waiting for its target's lag to drain.
#[derive(Debug)]
pub(crate) struct PendingSwitchover {
    op: OperationRecord,
    pub(super) target: RegionName,
    deadline: DateTime<Utc>,
    max_lag_bytes: u64,
    reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn switchover_command(
        &mut self,
        target: RegionName,
        timeout: std::time::Duration,
        max_lag_bytes: u64,
        reason: String,
        actor: String,
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
        now: DateTime<Utc>,
    ) {
        let checked = self.known_region(&target).and_then(|()| self.lock_check()).and_then(|()| {
            let health = self.regions.get(&target).map(|r| r.health).unwrap_or(Health::Unknown);
            if health == Health::Up && !self.maintenance.contains_key(&target) {
                Ok(())
            } else {
                Err(CommandError::Refused(vec![format!("target {target} is {health} or drained, not up")]))
            }
        });
        if let Err(e) = checked {
            let _ = reply.send(Err(e));
            return;
        }
        let op = self.operation(now, OperationKind::Switchover, Some(&target), &reason, &actor);
        self.store.send(Write::Operation(Box::new(op.clone())));
        let deadline = now + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::seconds(10));
        info!(target = %target, "switchover: waiting for the target's lag to drain");
        self.switchover = Some(PendingSwitchover { op, target, deadline, max_lag_bytes, reply });
        self.drive_switchover(now).await;
    }

    /// Whether the target's lag is ~0; None when it cannot be known yet.
    pub(super) fn caught_up(&self, target: &RegionName, max_bytes: u64) -> Result<String, String> {
        let has_db = self.config.region(target).is_some_and(|r| r.postgres.is_some());
        if !has_db {
            return Ok(format!("{target} has no database: nothing to wait for"));
        }
        match self.lag.get(target) {
            None => Err(format!("no lag sample from {target} yet")),
            Some(s) => match (s.bytes, s.seconds) {
                (Some(b), _) if b <= max_bytes => Ok(format!("{target} is {b} bytes behind")),
                (None, Some(t)) if t <= SWITCHOVER_MAX_SECONDS => Ok(format!("{target} is {t:.3} s behind")),
                (b, t) => Err(format!("{target} is {} bytes / {} s behind", fmt_opt(b), fmt_opt(t))),
            },
        }
    }

    /// Moves traffic once the target caught up; gives up when it stops being up or at the deadline.
    pub(super) async fn drive_switchover(&mut self, now: DateTime<Utc>) {
        let Some(sw) = &self.switchover else { return };
        let health = self.regions.get(&sw.target).map(|r| r.health).unwrap_or(Health::Unknown);
        let ready = self.caught_up(&sw.target, sw.max_lag_bytes);
        let verdict = if health != Health::Up {
            Some(Err((OperationState::Refused, format!("target {} became {health} while waiting", sw.target))))
        } else if let Ok(why) = &ready {
            Some(Ok(why.clone()))
        } else if now >= sw.deadline {
            Some(Err((
                OperationState::TimedOut,
                format!(
                    "the lag of {} did not reach ~0 before the timeout ({})",
                    sw.target,
                    ready.err().unwrap_or_default()
                ),
            )))
        } else {
            None
        };
        let Some(verdict) = verdict else { return };
        let Some(sw) = self.switchover.take() else { return };
        match verdict {
            Ok(why) => {
                info!(target = %sw.target, why = %why, "switchover: target caught up, moving traffic");
                let mut op = sw.op;
                op.details = json!({ "caught_up": why });
                let out = self.move_all_to(op, sw.target, None, now).await;
                let _ = sw.reply.send(Ok(out));
            }
            Err((state, why)) => {
                warn!(target = %sw.target, why = %why, "switchover abandoned");
                let mut op = sw.op;
                op.state = state;
                op.details = json!({ "why": why });
                op.updated_at = now;
                self.store.send(Write::Operation(Box::new(op)));
                let _ = sw.reply.send(Err(CommandError::Refused(vec![why])));
            }
        }
    }
}
