//! Notifications: health transitions, plans, drills and alarms POSTed to
//! webhooks (`[[notifications]]`) through the [signed POST](crate::signed_post)
//! the webhook provider also uses, with a Slack-compatible `text` field.
//!
//! Each event has a deduplication key (e.g. `health:primary`). Per target, an
//! event whose key was sent less than `dedup_window` ago is suppressed and
//! counted; the next one sent for that key says how many were suppressed, so a
//! flapping check produces one message per window, not one per flap. The
//! deduplication is a pure state machine ([`Dedup`], time as an argument).
//! The [`Notifier`] loop owns the targets; the engine hands it events on a
//! bounded channel and never waits for a webhook.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::NotificationConfig;
use crate::metrics::Metrics;
use crate::retry::Backoff;
use crate::signed_post::post_signed;

/// Attempts per notification (retries on 5xx and timeouts).
const ATTEMPTS: u32 = 3;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A region's health changed.
    Health,
    /// A new plan was decided.
    Plan,
    /// A drill started, stepped, finished or rolled back.
    Drill,
    /// An alarm was raised.
    Alarm,
    /// An alarm was cleared.
    AlarmCleared,
}

/// One event to tell the targets about.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyEvent {
    /// Kind.
    pub event: NotifyKind,
    /// Deduplication key: events with the same key within the window are suppressed.
    pub key: String,
    /// Human text (Slack's `text`).
    pub text: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Structured details.
    pub details: serde_json::Value,
}

/// The JSON body POSTed.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyPayload<'a> {
    /// Slack-compatible text.
    pub text: String,
    /// The event.
    #[serde(flatten)]
    pub event: &'a NotifyEvent,
    /// Events with this key suppressed since the last one sent.
    pub suppressed: u32,
}

/// Whether to send an event now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it; `suppressed` events of the same key were dropped since the last send.
    Send {
        /// Count of suppressed events.
        suppressed: u32,
    },
    /// Suppress it (counted).
    Suppress,
}

/// Per-key deduplication within a window; pure.
#[derive(Debug, Clone)]
pub struct Dedup {
    window: Duration,
    /// key → (last sent, suppressed since).
    seen: HashMap<String, (Instant, u32)>,
}

impl Dedup {
    /// Deduplicates within `window`.
    pub fn new(window: Duration) -> Self {
        Self { window, seen: HashMap::new() }
    }

    /// Decides about an event with `key` at `now`.
    pub fn admit(&mut self, key: &str, now: Instant) -> Admission {
        // Forget keys older than the window so the map stays small.
        let window = self.window;
        self.seen.retain(|_, (at, n)| now.saturating_duration_since(*at) < window || *n > 0);
        match self.seen.get_mut(key) {
            Some((at, n)) if now.saturating_duration_since(*at) < window => {
                *n += 1;
                Admission::Suppress
            }
            Some((at, n)) => {
                let suppressed = *n;
                *at = now;
                *n = 0;
                Admission::Send { suppressed }
            }
            None => {
                self.seen.insert(key.to_string(), (now, 0));
                Admission::Send { suppressed: 0 }
            }
        }
    }
}

struct Target {
    cfg: NotificationConfig,
    dedup: Dedup,
}

/// Sends events to every configured target.
pub struct Notifier {
    targets: Vec<Target>,
    events: mpsc::Receiver<NotifyEvent>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// A notifier for `targets`, fed by `events`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        targets: Vec<NotificationConfig>,
        events: mpsc::Receiver<NotifyEvent>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let timeout = targets.iter().map(|t| t.timeout).max().unwrap_or(Duration::from_secs(5));
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        let targets = targets.into_iter().map(|cfg| Target { dedup: Dedup::new(cfg.dedup_window), cfg }).collect();
        Ok(Self { targets, events, http, metrics })
    }

    /// Sends events until cancelled or the engine goes away.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = self.events.recv() => match ev { Some(ev) => ev, None => return },
            };
            for t in &mut self.targets {
                let suppressed = match t.dedup.admit(&ev.key, Instant::now()) {
                    Admission::Suppress => {
                        debug!(target_name = %t.cfg.name, key = %ev.key, "notification suppressed (duplicate within window)");
                        self.metrics.notification(&t.cfg.name, "suppressed");
                        continue;
                    }
                    Admission::Send { suppressed } => suppressed,
                };
                let text = if suppressed > 0 {
                    format!("{} ({suppressed} similar suppressed)", ev.text)
                } else {
                    ev.text.clone()
                };
                let payload = NotifyPayload { text, event: &ev, suppressed };
                let Ok(body) = serde_json::to_vec(&payload) else { continue };
                let outcome = send_with_retries(&self.http, &t.cfg, body, &cancel).await;
                self.metrics.notification(&t.cfg.name, if outcome { "sent" } else { "failed" });
            }
        }
    }
}

async fn send_with_retries(
    http: &reqwest::Client,
    cfg: &NotificationConfig,
    body: Vec<u8>,
    cancel: &CancellationToken,
) -> bool {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    loop {
        match post_signed(http, &cfg.url, cfg.secret.as_ref(), body.clone(), None).await {
            Ok(()) => return true,
            Err(e) => {
                let wait = backoff.next_wait();
                if !e.is_retryable() || backoff.attempts() >= ATTEMPTS {
                    warn!(target_name = %cfg.name, error = %e, "notification not delivered");
                    return false;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_of_a_key_is_sent() {
        let mut d = Dedup::new(Duration::from_secs(60));
        assert_eq!(d.admit("health:primary", Instant::now()), Admission::Send { suppressed: 0 });
    }

    #[test]
    fn a_flapping_key_is_suppressed_and_counted_within_the_window() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(60));
        assert_eq!(d.admit("health:primary", t0), Admission::Send { suppressed: 0 });
        for i in 1..=5 {
            assert_eq!(d.admit("health:primary", t0 + Duration::from_secs(i)), Admission::Suppress);
        }
        assert_eq!(d.admit("health:primary", t0 + Duration::from_secs(61)), Admission::Send { suppressed: 5 });
        assert_eq!(d.admit("health:primary", t0 + Duration::from_secs(62)), Admission::Suppress);
    }

    #[test]
    fn different_keys_do_not_suppress_each_other() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(60));
        assert_eq!(d.admit("health:primary", t0), Admission::Send { suppressed: 0 });
        assert_eq!(d.admit("health:standby", t0), Admission::Send { suppressed: 0 });
        assert_eq!(d.admit("alarm:region_down", t0), Admission::Send { suppressed: 0 });
    }
}
