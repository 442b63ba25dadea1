//! Benchmark workloads for `fo-bench` (figures, never assertions): probe throughput and cost,
//! decision-core throughput, and API latency under a fixed request rate while probes run.
//!
//! Each returns JSON for `artifacts/bench/`; the binary prints and tabulates them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use failover_orchestrator::config::{CheckConfig, CheckKind, Config};
use failover_orchestrator::decide::{self, Inputs, Memory, RegionInput};
use failover_orchestrator::health::Health;
use failover_orchestrator::metrics::Metrics;
use failover_orchestrator::observation::Outcome;
use failover_orchestrator::probe::runner::Runner;
use failover_orchestrator::region::{CheckId, Layer, RegionName};
use fo_lab::app_stub::AppStub;
use fo_lab::measure::Summary;

/// Region `i` (0 primary, 1 standby, 2 dr, weights 80/20/0) of a bench configuration whose
/// app checks point at a closed port: for benches that exercise something else.
pub fn placeholder_region(
    i: usize,
    name: &str,
    pg_dsn: Option<String>,
    pg_extra: Vec<String>,
) -> fo_lab::topology::RegionSpec {
    fo_lab::topology::RegionSpec {
        name: name.to_string(),
        role: name.to_string(),
        weight: [80, 20, 0][i.min(2)],
        address: IpAddr::V4(Ipv4Addr::new(127, 0, 9, i as u8 + 1)),
        app_url: "http://127.0.0.1:9/health".into(),
        tcp_target: "127.0.0.1:9".into(),
        pg_dsn,
        pg_expect_recovery: None,
        pg_extra,
    }
}

/// CPU seconds (user + system) of this process so far.
pub fn process_cpu_seconds() -> f64 {
    cpu_of("/proc/self/stat")
}

fn cpu_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// HTTP checks per second sustained by the probe runners on one core, with CPU and peak RSS,
/// for each count of checks (interval 1 s, spread over `stubs` local app stubs on 127.0.0.x).
///
/// The runners run on a single-threaded runtime on their own thread (one core); the stubs run
/// on the caller's runtime. CPU is reported for the probe thread and for the whole process.
///
/// # Errors
/// When a stub cannot bind.
pub async fn probe_throughput(counts: &[usize], window: Duration, stubs: usize) -> anyhow::Result<Value> {
    let mut apps = Vec::new();
    for i in 0..stubs {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1 + i as u8));
        apps.push(AppStub::start(&format!("bench{i}"), SocketAddr::new(ip, 0)).await?);
    }
    let urls: Vec<String> = apps.iter().map(AppStub::health_url).collect();
    let mut rows = Vec::new();
    for &n in counts {
        let urls = urls.clone();
        let row = std::thread::spawn(move || -> anyhow::Result<Value> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(run_probes(n, &urls, window))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("probe bench thread panicked"))??;
        rows.push(row);
    }
    Ok(json!({ "probes": rows, "stubs": stubs, "window_s": window.as_secs_f64() }))
}

async fn run_probes(n: usize, urls: &[String], window: Duration) -> anyhow::Result<Value> {
    let client = failover_orchestrator::probe::http_client().context("http client")?;
    let metrics = Arc::new(Metrics::new());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let cancel = CancellationToken::new();
    for i in 0..n {
        let check = CheckConfig {
            id: CheckId::new(RegionName::new("bench"), format!("c{i}")),
            layer: Layer::App,
            kind: CheckKind::Http {
                url: urls[i % urls.len()].clone(),
                expect_status: 200,
                body_contains: Some("ok".into()),
            },
            interval: Duration::from_secs(1),
            fast_interval: Duration::from_millis(100),
            timeout: Duration::from_millis(800),
            fall: 3,
            rise: 2,
            degraded_latency: None,
            attempts: failover_orchestrator::config::DEFAULT_ATTEMPTS,
        };
        let probe = failover_orchestrator::probe::build(&check, &client);
        let runner = Runner::new(check, probe, RegionName::new("bench"), tx.clone(), metrics.clone());
        tokio::spawn(runner.run(cancel.child_token()));
    }
    drop(tx);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (ok2, failed2) = (ok.clone(), failed.clone());
    let counting = Arc::new(AtomicU64::new(0));
    let on = counting.clone();
    let sink = tokio::spawn(async move {
        while let Some(obs) = rx.recv().await {
            if on.load(Ordering::Relaxed) == 1 {
                if obs.outcome == Outcome::Failed { &failed2 } else { &ok2 }.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // Warm up one interval (the runners spread their first probe over half of it).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    counting.store(1, Ordering::Relaxed);
    let (cpu0, thread0, t0) = (process_cpu_seconds(), cpu_of("/proc/thread-self/stat"), Instant::now());
    tokio::time::sleep(window).await;
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, thread1) = (process_cpu_seconds(), cpu_of("/proc/thread-self/stat"));
    counting.store(0, Ordering::Relaxed);
    cancel.cancel();
    let _ = sink.await;
    let done = ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    Ok(json!({
        "checks": n,
        "target_per_s": n as f64,
        "probes_per_s": done as f64 / wall,
        "failed": failed.load(Ordering::Relaxed),
        "probe_thread_cpu_percent": (thread1 - thread0) / wall * 100.0,
        "process_cpu_percent": (cpu1 - cpu0) / wall * 100.0,
        "peak_rss_mib": peak_rss_mib(),
    }))
}

/// Decisions per second of the pure decision core over a recorded-style input cycle: the
/// three-region topology going through normal → primary degraded → primary down → recovering.
///
/// # Errors
/// When the bench configuration is invalid.
pub fn decide_throughput(window: Duration) -> anyhow::Result<Value> {
    let params = fo_lab::topology::ConfigParams::new(
        "postgres://unused@127.0.0.1:1/x".into(),
        "127.0.0.1:0".parse()?,
        ["primary", "standby", "dr"].iter().enumerate().map(|(i, n)| placeholder_region(i, n, None, vec![])).collect(),
    );
    let mut params = params;
    params.file = Some("/tmp/unused.json".into());
    let cfg = Config::parse(&params.to_toml(), "bench", &|_| None)?;
    let healths = [
        [Health::Up, Health::Up, Health::Up],
        [Health::Degraded, Health::Up, Health::Up],
        [Health::Down, Health::Up, Health::Up],
        [Health::Down, Health::Up, Health::Down],
        [Health::Up, Health::Up, Health::Up],
    ];
    let t_base = Utc::now();
    let inputs: Vec<Inputs> = healths
        .iter()
        .map(|hs| Inputs {
            regions: cfg
                .regions
                .iter()
                .zip(hs)
                .map(|(r, h)| RegionInput {
                    name: r.name.clone(),
                    health: *h,
                    since: Some(t_base),
                    down_votes: usize::from(*h == Health::Down),
                    vantages: 1,
                    lag: None,
                    maintenance: false,
                    notes: vec![],
                })
                .collect(),
            lag_overrides: vec![],
            automation_paused: false,
        })
        .collect();
    let mut memory = Memory::normal(&cfg.policy);
    let mut n: u64 = 0;
    let mut changes: u64 = 0;
    let t0 = Instant::now();
    while t0.elapsed() < window {
        for _ in 0..1000 {
            let now = t_base + chrono::Duration::milliseconds(n as i64 * 100);
            let d = decide::decide(&cfg.policy, &inputs[(n / 50) as usize % inputs.len()], &memory, now);
            changes += u64::from(d.changed);
            memory = d.memory;
            n += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    Ok(
        json!({ "decisions": n, "changes": changes, "decisions_per_s": n as f64 / wall, "ns_per_decision": wall * 1e9 / n as f64 }),
    )
}

/// `GET path` at a fixed `rate` per second for `window`; latency distribution and errors.
pub async fn http_load(url: &str, rate: u32, window: Duration) -> Value {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut handles = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < window {
        tick.tick().await;
        let (c, u) = (client.clone(), url.to_string());
        handles.push(tokio::spawn(async move {
            let s = Instant::now();
            let ok = c.get(&u).timeout(Duration::from_secs(5)).send().await.is_ok_and(|r| r.status().is_success());
            (s.elapsed(), ok)
        }));
    }
    let mut times = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((t, ok)) = h.await {
            times.push(t);
            errors += usize::from(!ok);
        }
    }
    let s = Summary::of(&times);
    let mut v: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    let p99 = v.get(((v.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    json!({ "rate_per_s": rate, "requests": times.len(), "errors": errors, "p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "p99_ms": p99, "max_ms": s.max_ms })
}
