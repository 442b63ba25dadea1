//! Measurements on a running lab: detection-to-flip (break the primary → PowerDNS stops answering it),
//! and live drills' time to shift and to roll back.
//!
//! Used by `lab --measure-flips` and the benchmark binary; figures are printed, never asserted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::sync::watch;

use crate::lab::{RECORD, Shared, dig};
use failover_orchestrator::status::Status;

/// Distribution summary in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile (nearest rank).
    pub p95_ms: f64,
    /// Smallest.
    pub min_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Summary {
    /// Summarises durations (empty input gives zeros).
    pub fn of(times: &[Duration]) -> Self {
        let mut v: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Self { p50_ms: 0.0, p95_ms: 0.0, min_ms: 0.0, max_ms: 0.0 };
        }
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Self { p50_ms: rank(0.5), p95_ms: rank(0.95), min_ms: v[0], max_ms: v[v.len() - 1] }
    }
}

/// Breaks the primary `n` times and returns each detection-to-flip time.
///
/// Flipped means 8 answers in a row avoid the primary (at 80 % weight a false positive
/// needs 0.2^8 ≈ 3e-6 luck); the time is that of the first of them.
///
/// # Errors
/// When the lab does not return to its normal split, or no flip happens within 60 s.
pub async fn flips(
    lab: &Shared,
    status: &mut watch::Receiver<Arc<Status>>,
    dns: SocketAddr,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    flips_with(
        lab,
        status,
        dns,
        n,
        || async {
            lab.lock().await.regions[0].app.break_health();
            Ok(())
        },
        || async { lab.lock().await.regions[0].app.restore().await },
    )
    .await
}

/// [`flips`] with another way to fail the primary (`fail`) and to heal it (`heal`): a metric
/// crossing its limit, a server HAProxy marks down …
///
/// # Errors
/// As [`flips`], and when `fail` or `heal` does.
pub async fn flips_with<F, FF, H, HF>(
    lab: &Shared,
    status: &mut watch::Receiver<Arc<Status>>,
    dns: SocketAddr,
    n: usize,
    mut fail: F,
    mut heal: H,
) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> FF,
    FF: std::future::Future<Output = anyhow::Result<()>>,
    H: FnMut() -> HF,
    HF: std::future::Future<Output = anyhow::Result<()>>,
{
    let primary_ip = lab.lock().await.regions[0].ip;
    let mut times = Vec::new();
    for _ in 0..n {
        wait_for(status, Duration::from_secs(120), |s| {
            s.regions.iter().all(|r| r.weight == r.normal_weight)
                && s.plan.as_ref().is_some_and(|p| p.verified_at.is_some())
        })
        .await
        .context("waiting for the normal split")?;
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 500)).await;
        let t0 = Instant::now();
        fail().await?;
        let mut streak_start = None;
        let mut streak = 0;
        let flipped = loop {
            let at = t0.elapsed();
            let ans = dig(dns, RECORD).await?;
            if ans.is_some() && ans != Some(primary_ip) {
                streak_start.get_or_insert(at);
                streak += 1;
                if streak >= 8 {
                    break streak_start.unwrap_or(at);
                }
            } else {
                streak = 0;
                streak_start = None;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("no flip within 60 s");
            }
        };
        times.push(flipped);
        heal().await?;
    }
    Ok(times)
}

/// Waits until `pred` holds on the status.
///
/// # Errors
/// After `timeout`.
pub async fn wait_for(
    status: &mut watch::Receiver<Arc<Status>>,
    timeout: Duration,
    pred: impl Fn(&Status) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if pred(&status.borrow()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("condition not reached within {}", humantime::format_duration(timeout));
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
}

/// Starts a whole lab (databases, apps, PowerDNS, orchestrator at `interval` / `fall`),
/// measures `runs` detection-to-flip times, and tears everything down.
///
/// # Errors
/// When the lab cannot start or a measurement fails.
pub async fn lab_flips(
    interval: Duration,
    fall: u32,
    runs: usize,
    tuning: crate::lab::LabTuning,
) -> anyhow::Result<Vec<Duration>> {
    let lab = crate::lab::Lab::start_tuned("127.0.0.1:0".parse()?, interval, fall, tuning).await?;
    let app =
        failover_orchestrator::app::App::build(lab.config.clone(), failover_orchestrator::app::AppOptions::default())
            .await?;
    let mut status = app.status();
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(app.run(cancel.clone()));
    let dns = lab.pdns.dns_addr();
    let shared: Shared = Arc::new(tokio::sync::Mutex::new(lab));
    let result = flips(&shared, &mut status, dns, runs).await;
    cancel.cancel();
    let _ = task.await;
    if let Ok(lab) = Arc::try_unwrap(shared) {
        lab.into_inner().stop().await;
    }
    result
}

/// Runs `n` live drills through the API (evacuate the primary in one 100 % step, hold 1 s) and returns
/// each drill's (time to shift, time to roll back) from its report: request → verified by read-back,
/// rollback decided → verified.
///
/// # Errors
/// When the API refuses a drill or one does not finish within two minutes.
pub async fn drills(
    api: SocketAddr,
    tokens: &crate::topology::LabTokens,
    status: &mut watch::Receiver<Arc<Status>>,
    n: usize,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let client =
        failover_orchestrator::cli::client::Client::new(&format!("http://{api}"), Some(tokens.operator.clone()))?;
    let mut out = Vec::new();
    for _ in 0..n {
        wait_for(status, Duration::from_secs(120), |s| {
            s.drill.is_none()
                && s.regions
                    .iter()
                    .all(|r| r.weight == r.normal_weight && r.health == failover_orchestrator::health::Health::Up)
                && s.plan.as_ref().is_some_and(|p| p.verified_at.is_some())
        })
        .await
        .context("waiting for the normal split before a drill")?;
        let body = serde_json::json!({ "evacuate": "primary", "steps": [100], "hold_seconds": 1, "reason": "lab --measure-drills" });
        let started = client.post("/api/v1/drills", &body, None).await?;
        let id = started["id"].as_str().unwrap_or_default().to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        let drill = loop {
            let d = client.get(&format!("/api/v1/drills/{id}")).await?;
            if d["finished_at"].is_string() {
                break d;
            }
            if Instant::now() > deadline {
                bail!("drill {id} did not finish within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let ms = |k: &str| drill["report"][k].as_u64().map(Duration::from_millis);
        let (Some(shift), Some(back)) = (ms("time_to_shift_ms"), ms("time_to_rollback_ms")) else {
            bail!("drill {id} ended {} without both timings: {}", drill["state"], drill["report"]);
        };
        out.push((shift, back));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let t: Vec<Duration> = (1..=20).map(|i| Duration::from_millis(i * 10)).collect();
        let s = Summary::of(&t);
        assert_eq!(s.p50_ms, 100.0);
        assert_eq!(s.p95_ms, 190.0);
        assert_eq!(s.min_ms, 10.0);
        assert_eq!(s.max_ms, 200.0);
    }
}
