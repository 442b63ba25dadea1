//! Benchmark workloads for `fo-bench` (figures, never assertions): probe throughput and cost,
//! decision-core throughput, and API latency under a fixed request rate while probes run.
//!
//! Each returns JSON for `artifacts/bench/`; the binary prints and tabulates them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
        extra_checks: Vec::new(),
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
    status_mib("VmHWM:")
}

/// Resident set size of this process now (VmRSS), in MiB.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Name prefix of the probe runtime's worker threads (what `/proc/self/task/*/comm` shows).
const PROBE_THREAD: &str = "fo-probe";
/// Name prefix of the app stubs' threads.
const STUB_THREAD: &str = "bench-stub";

/// HTTP checks per second sustained by the probe runners, with the CPU of each side, peak RSS
/// and failures sorted by cause, for each count of checks (interval 1 s, spread over `stubs`
/// local app stubs on 127.0.3.x).
///
/// The runners run as the product runs them: one task per check on a multi-threaded runtime
/// with `workers` worker threads (the product's `#[tokio::main]` has one per core). The stubs
/// run on a runtime of their own (`stub_threads` threads), so their CPU is measured apart and
/// they never delay a probe's task.
///
/// # Errors
/// When a runtime cannot start or a stub cannot bind.
///
/// # Panics
/// When called from within a runtime (it builds and drops its own): call it on a blocking
/// thread.
pub fn probe_throughput(
    counts: &[usize],
    window: Duration,
    stubs: usize,
    workers: usize,
    stub_threads: usize,
) -> anyhow::Result<Value> {
    let limit = failover_orchestrator::probe::raise_open_files_limit().context("raising RLIMIT_NOFILE")?;
    let stub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(stub_threads)
        .thread_name(STUB_THREAD)
        .enable_all()
        .build()?;
    let mut apps = Vec::new();
    for i in 0..stubs {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1 + i as u8));
        apps.push(stub_rt.block_on(AppStub::start(&format!("bench{i}"), SocketAddr::new(ip, 0)))?);
    }
    let urls: Vec<String> = apps.iter().map(AppStub::health_url).collect();
    let ports: Vec<u16> = apps.iter().map(|a| a.addr().port()).collect();
    let mut rows = Vec::new();
    for &n in counts {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(PROBE_THREAD)
            .enable_all()
            .build()?;
        let row = rt.block_on(run_probes(n, &urls, &ports, window));
        rt.shutdown_timeout(Duration::from_secs(2));
        rows.push(row?);
    }
    let served: u64 = apps.iter().map(AppStub::served).sum();
    // The stubs belong to their runtime: drop them before it.
    drop(apps);
    stub_rt.shutdown_timeout(Duration::from_secs(2));
    Ok(json!({
        "probes": rows, "stubs": stubs, "window_s": window.as_secs_f64(),
        "probe_workers": workers, "stub_threads": stub_threads, "stub_requests_served": served,
        "open_files_limit": limit,
    }))
}

/// CPU seconds of this process's threads whose name starts with `prefix` (from
/// `/proc/self/task/*/stat`; a thread that ended is no longer counted).
fn threads_cpu_seconds(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    dir.flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end().starts_with(prefix)))
        .map(|t| cpu_of(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// Busy and total ticks of each CPU of the machine (`/proc/stat` `cpuN` lines).
fn per_cpu_ticks() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// `TcpExt` counters of `/proc/net/netstat` by name (this network namespace, every process).
fn tcp_ext() -> std::collections::BTreeMap<String, u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    match lines.as_slice() {
        [names, values] => names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
            .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
            .collect(),
        _ => Default::default(),
    }
}

/// The cause of a failed probe, without the URL: `connection failed: Cannot assign requested
/// address (os error 99)`, `timed out after 800ms` …
fn cause(error: Option<&str>) -> String {
    let e = error.unwrap_or("no error text");
    let e = e.strip_prefix("GET ").and_then(|r| r.split_once(": ").map(|(_, c)| c)).unwrap_or(e);
    e.to_string()
}

/// Whether a failure with this cause is the target's doing: it answered wrongly, or reset the
/// connection. Every other cause (timeouts, a connect that failed on our side) counts against
/// the prober unless the target's listen queue overflowed (see [`run_probes`]).
fn target_caused(cause: &str) -> bool {
    cause.starts_with("status ") || cause.starts_with("body ") || cause.contains("reset by peer")
}

/// Sockets in `TIME_WAIT` now (`/proc/net/tcp`, every process of this network namespace):
/// (on the target's side: local port one of `ports`; on the prober's: remote port one of them).
fn time_wait(ports: &[u16]) -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |a: &str| a.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let (mut target, mut prober) = (0, 0);
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(3) != Some(&"06") {
            continue;
        }
        if f.get(1).and_then(|a| port(a)).is_some_and(|p| ports.contains(&p)) {
            target += 1;
        } else if f.get(2).and_then(|a| port(a)).is_some_and(|p| ports.contains(&p)) {
            prober += 1;
        }
    }
    (target, prober)
}

async fn run_probes(n: usize, urls: &[String], ports: &[u16], window: Duration) -> anyhow::Result<Value> {
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
    let counting = Arc::new(AtomicBool::new(false));
    let on = counting.clone();
    let sink = tokio::spawn(async move {
        let (mut ok, mut causes) = (0u64, std::collections::BTreeMap::<String, u64>::new());
        while let Some(obs) = rx.recv().await {
            if on.load(Ordering::Relaxed) {
                if obs.outcome == Outcome::Failed {
                    *causes.entry(cause(obs.error.as_deref())).or_default() += 1;
                } else {
                    ok += 1;
                }
            }
        }
        (ok, causes)
    });
    // Warm up one interval (the runners spread their first probe over half of it).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    counting.store(true, Ordering::Relaxed);
    let net0 = tcp_ext();
    let (cpus0, probe0, stub0) = (per_cpu_ticks(), threads_cpu_seconds(PROBE_THREAD), threads_cpu_seconds(STUB_THREAD));
    let (cpu0, t0) = (process_cpu_seconds(), Instant::now());
    tokio::time::sleep(window).await;
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, probe1, stub1) =
        (process_cpu_seconds(), threads_cpu_seconds(PROBE_THREAD), threads_cpu_seconds(STUB_THREAD));
    let cpus1 = per_cpu_ticks();
    let net1 = tcp_ext();
    let (tw_target, tw_prober) = time_wait(ports);
    counting.store(false, Ordering::Relaxed);
    cancel.cancel();
    let (ok, causes) = sink.await?;
    let failed: u64 = causes.values().sum();
    let done = ok + failed;
    let delta = |k: &str| net1.get(k).copied().unwrap_or(0).saturating_sub(net0.get(k).copied().unwrap_or(0));
    // A SYN the target's full accept queue dropped turns into a timeout of ours: as many
    // timeouts as drops are the target's.
    let listen_drops = delta("ListenDrops").max(delta("ListenOverflows"));
    let by_target: u64 = causes.iter().filter(|(c, _)| target_caused(c)).map(|(_, k)| k).sum();
    let timeouts: u64 = causes.iter().filter(|(c, _)| c.contains("timed out")).map(|(_, k)| k).sum();
    let by_target = by_target + timeouts.min(listen_drops);
    let probe_cpu = probe1 - probe0;
    let cores: Vec<f64> = cpus0
        .iter()
        .zip(&cpus1)
        .map(|((b0, t0), (b1, t1))| (b1 - b0) as f64 / (t1 - t0).max(1) as f64 * 100.0)
        .collect();
    Ok(json!({
        "checks": n,
        "target_per_s": n as f64,
        "probes_per_s": done as f64 / wall,
        "probes_per_s_per_core": if probe_cpu > 0.0 { done as f64 / probe_cpu } else { 0.0 },
        "cpu_us_per_probe": if done > 0 { probe_cpu * 1e6 / done as f64 } else { 0.0 },
        "failed": failed,
        "failed_by_prober": failed - by_target,
        "failed_by_target": by_target,
        "failure_causes": causes,
        "probe_threads_cpu_percent": probe_cpu / wall * 100.0,
        "stub_threads_cpu_percent": (stub1 - stub0) / wall * 100.0,
        "process_cpu_percent": (cpu1 - cpu0) / wall * 100.0,
        "machine_cpu_percent_per_core": cores,
        "listen_drops": listen_drops,
        "time_wait_overflows": delta("TCPTimeWaitOverflow"),
        "time_wait_target_side": tw_target,
        "time_wait_prober_side": tw_prober,
        "peak_rss_mib": peak_rss_mib(),
        "rss_mib": rss_mib(),
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
