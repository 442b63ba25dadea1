//! The probe loop of one check: probe on the interval, under a hard timeout,
//! re-probe fast after a failure, and send every result to the engine.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, instrument};

use super::Probe;
use crate::config::CheckConfig;
use crate::metrics::Metrics;
use crate::observation::{Observation, Outcome};
use crate::region::Vantage;

/// Runs one check.
pub struct Runner {
    check: CheckConfig,
    probe: Arc<dyn Probe>,
    vantage: Vantage,
    tx: mpsc::Sender<Observation>,
    metrics: Arc<Metrics>,
    reprobe: Option<watch::Receiver<u64>>,
}

impl Runner {
    /// A runner for `check` that sends observations on `tx`.
    pub fn new(
        check: CheckConfig,
        probe: Arc<dyn Probe>,
        vantage: Vantage,
        tx: mpsc::Sender<Observation>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self { check, probe, vantage, tx, metrics, reprobe: None }
    }

    /// Probes at once (and then at the fast interval) whenever `reprobe` changes: a peer
    /// has started to see this check's region fail.
    pub fn with_reprobe(mut self, reprobe: watch::Receiver<u64>) -> Self {
        self.reprobe = Some(reprobe);
        self
    }

    /// Probes until cancelled.
    ///
    /// The first probe waits a random part of the interval so that many checks do
    /// not fire together. After a failed or degraded probe the next ones come at
    /// `fast_interval` until `max(fall, rise)` of them confirmed the state.
    pub async fn run(mut self, cancel: CancellationToken) {
        let spread = self.check.interval.mul_f64(rand::random::<f64>() * 0.5);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(spread) => {}
        }
        let confirm = self.check.fall.max(self.check.rise);
        let mut fast_left = 0u32;
        loop {
            let started = Instant::now();
            let obs = tokio::select! {
                _ = cancel.cancelled() => return,
                obs = self.tick() => obs,
            };
            let ok = obs.outcome == Outcome::Ok;
            if self.tx.send(obs).await.is_err() {
                return; // the engine is gone: shutting down
            }
            fast_left = if ok { fast_left.saturating_sub(1) } else { confirm };
            let wait = if fast_left > 0 { self.check.fast_interval } else { self.check.interval };
            let mut reprobe = self.reprobe.take();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(started + wait) => {}
                () = nudged(&mut reprobe) => {
                    // Not sooner than the fast interval after the last probe.
                    tokio::time::sleep_until(started + self.check.fast_interval).await;
                    fast_left = fast_left.max(confirm);
                }
            }
            self.reprobe = reprobe;
        }
    }

    /// Probes once, under the check's timeout, and classifies the result.
    #[instrument(skip_all, fields(check = %self.check.id))]
    pub(crate) async fn tick(&self) -> Observation {
        let started = Instant::now();
        let result = tokio::time::timeout(self.check.timeout, self.probe.probe()).await;
        // A probe rescued by a later attempt reports that attempt's own latency.
        let latency = result.as_ref().ok().and_then(|r| r.latency).unwrap_or_else(|| started.elapsed());
        let (outcome, error, detail) = match result {
            Err(_) => (
                Outcome::Failed,
                Some(format!("timed out after {}", humantime::format_duration(self.check.timeout))),
                None,
            ),
            Ok(r) if !r.ok => (Outcome::Failed, r.error, r.detail),
            Ok(r) => match self.check.degraded_latency {
                Some(limit) if latency > limit => (
                    Outcome::Degraded,
                    Some(format!("latency {} ms over {} ms", latency.as_millis(), limit.as_millis())),
                    r.detail,
                ),
                _ => (Outcome::Ok, None, r.detail),
            },
        };
        self.metrics.observe_probe(&self.check.id, self.check.layer, latency, outcome);
        debug!(outcome = ?outcome, latency_ms = latency.as_millis() as u64, error = error.as_deref(), "probe");
        Observation {
            check: self.check.id.clone(),
            layer: self.check.layer,
            outcome,
            latency: round_micros(latency),
            error,
            detail,
            vantage: self.vantage.clone(),
            at: Utc::now(),
        }
    }
}

/// Resolves when the re-probe counter changes; never without one (or once its sender is gone).
async fn nudged(reprobe: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = reprobe {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await

}

fn round_micros(d: Duration) -> Duration {
    Duration::from_micros(d.as_micros() as u64)
}
