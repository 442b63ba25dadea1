//! Benchmarks: print figures and write JSON to `artifacts/bench/`; they never assert times.
//!
//! `fo-bench flip`    detection-to-flip in the lab (break the primary → PowerDNS answers move)
//! `fo-bench lag`     lag accuracy (measured vs truth while replay is paused) and collection cost
//! `fo-bench probes`  HTTP checks per second across the cores, CPU per thread and core, RSS, failures by cause
//! `fo-bench decide`  decisions per second of the pure decision core
//! `fo-bench api`     `GET /api/v1/status` p50/p99 at a fixed rate while the lab's probes run
//! `fo-bench compare` ours against HAProxy health checks and PowerDNS `ifurlup` (same targets)
//! `fo-bench signals` detection-to-flip of a metric check and of the passive HAProxy signal, and
//!                    the RTO of synthetic-failure drills
//! `fo-bench all`     everything, plus a markdown table in `artifacts/bench/RESULTS.md`

#![allow(clippy::print_stdout)]

mod compare;
mod signals;
mod throughput;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compare::report;
use anyhow::Context;
use clap::{Parser, Subcommand};
use failover_orchestrator::config::Config;
use failover_orchestrator::replication::sampler::LagSampler;
use fo_lab::lab::LabTuning;
use fo_lab::measure::{Summary, lab_flips};
use fo_lab::postgres::{PgCluster, PgOptions};
use fo_lab::topology::ConfigParams;
use serde_json::json;

#[derive(Parser)]
#[command(about = "failover-orchestrator benchmarks (figures, not assertions)")]
struct Cli {
    /// Where JSON results go.
    #[arg(long, default_value = "artifacts/bench")]
    out: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Detection-to-flip in the lab.
    Flip {
        /// Probe intervals to measure at.
        #[arg(long, value_delimiter = ',', default_value = "250ms,500ms,1s")]
        intervals: Vec<humantime::Duration>,
        /// fall.
        #[arg(long, default_value_t = 3)]
        fall: u32,
        /// Runs per interval.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Probe throughput and cost.
    Probes {
        /// Numbers of checks to run (interval 1 s each).
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000")]
        counts: Vec<usize>,
        /// Measurement window per count.
        #[arg(long, default_value = "10s")]
        window: humantime::Duration,
        /// Worker threads of the probe runtime (default: one per core, as the product runs).
        #[arg(long)]
        workers: Option<usize>,
        /// Threads of the app stubs' own runtime.
        #[arg(long, default_value_t = 1)]
        stub_threads: usize,
        /// App stubs (addresses 127.0.3.1 …) the checks are spread over.
        #[arg(long, default_value_t = 8)]
        stubs: usize,
    },
    /// Decision-core throughput.
    Decide,
    /// API latency under load while probes run.
    Api {
        /// Requests per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// How long.
        #[arg(long, default_value = "15s")]
        window: humantime::Duration,
    },
    /// Lag accuracy and collection cost.
    Lag {
        /// How long to measure the cost.
        #[arg(long, default_value = "30s")]
        cost_window: humantime::Duration,
    },
    /// Side by side with HAProxy health checks and PowerDNS `ifurlup` on the same targets.
    Compare {
        /// Runs per fault for the time to move.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// How long the 30 % connection loss lasts.
        #[arg(long, default_value = "30s")]
        window: humantime::Duration,
        /// Check interval of all three (whole seconds: PowerDNS's granularity).
        #[arg(long, default_value = "1s")]
        interval: humantime::Duration,
        /// fall (ours and HAProxy).
        #[arg(long, default_value_t = 3)]
        fall: u32,
        /// rise (ours and HAProxy).
        #[arg(long, default_value_t = 2)]
        rise: u32,
    },
    /// Detection-to-flip of a metric check and of the passive HAProxy signal; synthetic drills' RTO.
    Signals {
        /// Flips per signal.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Synthetic-failure drills.
        #[arg(long, default_value_t = 5)]
        drills: usize,
    },
    /// Everything, with a markdown summary.
    All,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out)?;
    match cli.cmd {
        Cmd::Flip { intervals, fall, runs } => {
            let r = flip(&intervals.into_iter().map(Into::into).collect::<Vec<_>>(), fall, runs).await?;
            write(&cli.out, "flip.json", &r)?;
        }
        Cmd::Lag { cost_window } => {
            let r = lag(cost_window.into()).await?;
            write(&cli.out, "lag.json", &r)?;
        }
        Cmd::Probes { counts, window, workers, stub_threads, stubs } => {
            let shape = ProbeShape { workers: workers.unwrap_or_else(cores), stub_threads, stubs };
            let r = probes(&counts, window.into(), shape).await?;
            write(&cli.out, "probes.json", &r)?;
        }
        Cmd::Decide => {
            let r = decide()?;
            write(&cli.out, "decide.json", &r)?;
        }
        Cmd::Api { rate, window } => {
            let r = api(rate, window.into()).await?;
            write(&cli.out, "api.json", &r)?;
        }
        Cmd::Compare { runs, window, interval, fall, rise } => {
            let opts = compare::CompareOptions {
                runs,
                window: window.into(),
                interval: interval.into(),
                fall,
                rise,
                ..report::defaults()
            };
            let r = report::compare(opts, machine()).await?;
            write(&cli.out, "compare.json", &r)?;
        }
        Cmd::Signals { runs, drills } => {
            let s = signals_all(runs, drills).await?;
            write(&cli.out, "signals.json", &s)?;
            println!("\n{}", signals_markdown(&s));
        }
        Cmd::All => {
            let started = Instant::now();
            let mut took = Vec::new();
            let mut lap = |what: &str, since: &mut Instant| {
                took.push(format!("{what} {:.0} s", since.elapsed().as_secs_f64()));
                *since = Instant::now();
            };
            let mut t = Instant::now();
            let intervals = [Duration::from_millis(250), Duration::from_millis(500), Duration::from_secs(1)];
            let f = flip(&intervals, 3, 20).await?;
            write(&cli.out, "flip.json", &f)?;
            lap("flip", &mut t);
            let l = lag(Duration::from_secs(30)).await?;
            write(&cli.out, "lag.json", &l)?;
            lap("lag", &mut t);
            let p = probes(&[10, 100, 1000, 10_000], Duration::from_secs(10), ProbeShape::default()).await?;
            write(&cli.out, "probes.json", &p)?;
            lap("probes", &mut t);
            let d = decide()?;
            write(&cli.out, "decide.json", &d)?;
            let a = api(200, Duration::from_secs(15)).await?;
            write(&cli.out, "api.json", &a)?;
            lap("decide and api", &mut t);
            // 10 runs per fault, as the figures are quoted.
            let c = report::compare(compare::CompareOptions { runs: 10, ..report::defaults() }, machine()).await?;
            write(&cli.out, "compare.json", &c)?;
            lap("compare", &mut t);
            let s = signals_all(10, 5).await?;
            write(&cli.out, "signals.json", &s)?;
            lap("signals", &mut t);
            let md = format!(
                "# Benchmarks\n\n{} build on {}, {}; `make bench` took {:.0} min ({}).\n\n",
                profile(),
                machine(),
                chrono::Utc::now().format("%Y-%m-%d"),
                started.elapsed().as_secs_f64() / 60.0,
                took.join(", ")
            ) + &markdown(&f, &l)
                + &markdown_more(&p, &d, &a)
                + &report::markdown(&c)
                + &signals_markdown(&s);
            std::fs::write(cli.out.join("RESULTS.md"), &md)?;
            println!("\n{md}");
        }
    }
    Ok(())
}

async fn signals_all(runs: usize, drills: usize) -> anyhow::Result<serde_json::Value> {
    let metric = signals::metric_flips(runs).await?;
    let passive = signals::passive_flips(runs).await?;
    let synthetic = signals::synthetic_rto(drills).await?;
    Ok(
        json!({ "machine": machine(), "profile": profile(), "metric": metric, "passive": passive, "synthetic": synthetic }),
    )
}

fn signals_markdown(s: &serde_json::Value) -> String {
    let mut md = format!(
        "\n| signals ({}, {}) | runs | p50 | p95 | min | max |\n|---|---|---|---|---|---|\n",
        s["profile"].as_str().unwrap_or_default(),
        s["machine"].as_str().unwrap_or_default()
    );
    let rows = [&s["metric"], &s["passive"]].into_iter().chain(s["synthetic"]["rows"].as_array().into_iter().flatten());
    for r in rows {
        let m = |k: &str| r["summary"][k].as_f64().unwrap_or(0.0);
        md += &format!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            r["what"].as_str().unwrap_or_default(),
            r["runs"],
            m("p50_ms"),
            m("p95_ms"),
            m("min_ms"),
            m("max_ms")
        );
    }
    md
}

fn write(dir: &std::path::Path, name: &str, v: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v)?)?;
    println!("wrote {}", dir.join(name).display());
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!("{} cores, {cpu}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0))
}

async fn flip(intervals: &[Duration], fall: u32, runs: usize) -> anyhow::Result<serde_json::Value> {
    let mut rows = Vec::new();
    for &interval in intervals {
        println!("detection-to-flip at interval {} fall {fall}: {runs} runs …", humantime::format_duration(interval));
        // Short failback (hold 1 s, one step) so that 20 runs take minutes, not a quarter hour.
        let tuning = LabTuning {
            dwell: Duration::from_secs(1),
            failback_hold: Duration::from_secs(1),
            failback_step: 80,
            ..Default::default()
        };
        let times = lab_flips(interval, fall, runs, tuning).await?;
        let s = Summary::of(&times);
        let floor = interval.as_secs_f64() * 1000.0 * f64::from(fall);
        println!(
            "  p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms  (interval × fall = {floor:.0} ms; fast re-probe {} ms)",
            s.p50_ms,
            s.p95_ms,
            s.max_ms,
            (interval / 5).max(Duration::from_millis(50)).as_millis()
        );
        rows.push(json!({
            "interval_ms": interval.as_millis(), "fall": fall, "runs": runs, "summary": s,
            "interval_times_fall_ms": floor,
            "times_ms": times.iter().map(|t| t.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
        }));
    }
    Ok(json!({ "machine": machine(), "profile": profile(), "flip": rows }))
}

fn cpu_seconds() -> f64 {
    throughput::process_cpu_seconds()
}

async fn lag(cost_window: Duration) -> anyhow::Result<serde_json::Value> {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let primary = PgCluster::start_primary("bench-primary", lo, &PgOptions::default()).await?;
    let standby = PgCluster::start_standby(&primary, "bench-standby", lo, &PgOptions::default()).await?;
    let dr = PgCluster::start_standby(&primary, "bench-dr", lo, &PgOptions::default()).await?;
    let regions = [("primary", &primary), ("standby", &standby), ("dr", &dr)]
        .iter()
        .enumerate()
        .map(|(i, (name, pg))| {
            throughput::placeholder_region(
                i,
                name,
                Some(pg.dsn()),
                vec![format!("application_name = \"bench-{name}\"")],
            )
        })
        .collect();
    let mut params = ConfigParams::new("postgres://unused@127.0.0.1:1/x".into(), "127.0.0.1:0".parse()?, regions);
    params.file = Some("/tmp/unused.json".into());
    params.replication_interval = Duration::from_secs(1);
    let cfg = Arc::new(Config::parse(&params.to_toml(), "bench", &|_| None)?);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let mut sampler = LagSampler::new(&cfg, tx, None).context("sampler")?;

    // Cost: one collection per second for the window, 3 regions (2 standbys + heartbeat).
    println!("lag collection cost over {} at a 1 s interval …", humantime::format_duration(cost_window));
    let (cpu0, q0, t0) = (cpu_seconds(), sampler.queries, Instant::now());
    while t0.elapsed() < cost_window {
        let tick = Instant::now();
        sampler.tick(chrono::Utc::now()).await;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu_pct = (cpu_seconds() - cpu0) / wall * 100.0;
    let qps = (sampler.queries - q0) as f64 / wall;
    println!("  CPU {cpu_pct:.2} % of one core, {qps:.1} queries/s");

    // Accuracy: pause replay on the standby while the primary writes steadily; the truth is
    // the time since the pause (every transaction after it is unreplayed).
    let mut sc = standby.connect().await?;
    let mut pc = primary.connect().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_filler (id serial primary key, at timestamptz default clock_timestamp())",
    )
    .execute(&mut pc)
    .await?;
    for _ in 0..3 {
        sampler.tick(chrono::Utc::now()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut sc).await?;
    let paused = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..300 {
            let _ = sqlx::query("INSERT INTO bench_filler DEFAULT VALUES").execute(&mut pc).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut errors = Vec::new();
    let mut naive_errors = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let samples = sampler.tick(chrono::Utc::now()).await;
        let truth = paused.elapsed().as_secs_f64();
        if let Some(s) = samples.iter().find(|s| s.region.as_str() == "standby").and_then(|s| s.seconds) {
            errors.push((s - truth).abs());
        }
        let naive: Option<f64> =
            sqlx::query_scalar("SELECT EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp())::float8")
                .fetch_one(&mut sc)
                .await?;
        if let Some(n) = naive {
            naive_errors.push((n - truth).abs());
        }
    }
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut sc).await?;
    let _ = writer.await;
    // Idle: no writes at all except the heartbeat; a caught-up standby should read ~0.
    let mut idle = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let samples = sampler.tick(chrono::Utc::now()).await;
        if let Some(s) = samples.iter().find(|s| s.region.as_str() == "standby").and_then(|s| s.seconds) {
            idle.push(s);
        }
    }
    let max = |v: &[f64]| v.iter().cloned().fold(0.0_f64, f64::max);
    println!(
        "  paused replay: max |measured − truth| {:.3} s (heartbeat interval 1 s); naive now()−last_xact_replay max error {:.3} s",
        max(&errors),
        max(&naive_errors)
    );
    println!("  idle and caught up: max measured {:.3} s", max(&idle));
    drop(sc);
    dr.stop().await?;
    standby.stop().await?;
    primary.stop().await?;
    Ok(json!({
        "machine": machine(),
        "profile": profile(),
        "cost": { "interval_s": 1, "regions": 3, "window_s": wall, "cpu_percent_of_one_core": cpu_pct, "queries_per_second": qps },
        "accuracy": { "paused_samples": errors.len(), "max_abs_error_s": max(&errors), "naive_max_abs_error_s": max(&naive_errors), "idle_max_measured_s": max(&idle) },
    }))
}

/// `release build, 2 cores, AMD EPYC …`: what every table says it was measured with.
fn stamp(v: &serde_json::Value) -> String {
    format!("{} build, {}", v["profile"].as_str().unwrap_or(profile()), v["machine"].as_str().unwrap_or(""))
}

fn markdown(f: &serde_json::Value, l: &serde_json::Value) -> String {
    let mut s = format!(
        "Detection-to-flip in the lab ({}): break the primary's app, PowerDNS stops answering it (seen by `dig`).\n\n",
        stamp(f)
    );
    s.push_str("| detection-to-flip | interval | fall | runs | p50 | p95 | max | interval × fall |\n|---|---|---|---|---|---|---|---|\n");
    for r in f["flip"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| lab, PowerDNS via dig | {} ms | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            r["interval_ms"],
            r["fall"],
            r["runs"],
            r["summary"]["p50_ms"].as_f64().unwrap_or(0.0),
            r["summary"]["p95_ms"].as_f64().unwrap_or(0.0),
            r["summary"]["max_ms"].as_f64().unwrap_or(0.0),
            r["interval_times_fall_ms"].as_f64().unwrap_or(0.0)
        ));
    }
    s.push_str(&format!(
        "\nReplication lag ({}):\n\n| lag | value |\n|---|---|\n| max error, paused replay (heartbeat) | {:.3} s |\n| max error, naive `now() − pg_last_xact_replay_timestamp()` | {:.3} s |\n| idle, caught up: max measured | {:.3} s |\n| collection cost at 1 s, 3 regions | {:.2} % of one core, {:.1} queries/s |\n",
        stamp(l),
        l["accuracy"]["max_abs_error_s"].as_f64().unwrap_or(0.0),
        l["accuracy"]["naive_max_abs_error_s"].as_f64().unwrap_or(0.0),
        l["accuracy"]["idle_max_measured_s"].as_f64().unwrap_or(0.0),
        l["cost"]["cpu_percent_of_one_core"].as_f64().unwrap_or(0.0),
        l["cost"]["queries_per_second"].as_f64().unwrap_or(0.0)
    ));
    s
}

/// How the probe bench is laid out.
struct ProbeShape {
    workers: usize,
    stub_threads: usize,
    stubs: usize,
}

impl Default for ProbeShape {
    fn default() -> Self {
        Self { workers: cores(), stub_threads: 1, stubs: 8 }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

async fn probes(counts: &[usize], window: Duration, shape: ProbeShape) -> anyhow::Result<serde_json::Value> {
    println!(
        "probe throughput: {counts:?} checks at a 1 s interval, {} each, {} probe workers, {} stubs on {} thread(s) …",
        humantime::format_duration(window),
        shape.workers,
        shape.stubs,
        shape.stub_threads
    );
    let counts = counts.to_vec();
    let r = tokio::task::spawn_blocking(move || {
        throughput::probe_throughput(&counts, window, shape.stubs, shape.workers, shape.stub_threads)
    })
    .await??;
    for row in r["probes"].as_array().into_iter().flatten() {
        let f = |k: &str| row[k].as_f64().unwrap_or(0.0);
        println!(
            "  {:>6} checks: {:>6.0} probes/s ({:.0}/s per probe core, {:.0} µs CPU each), probe threads {:.1} % CPU, \
             stubs {:.1} %, process {:.1} %, cores {}, RSS {:.0} MiB (peak {:.0}), TIME_WAIT target/prober side {}/{}, \
             listen drops {}, failed {} (prober {}, target {}) {}",
            row["checks"],
            f("probes_per_s"),
            f("probes_per_s_per_core"),
            f("cpu_us_per_probe"),
            f("probe_threads_cpu_percent"),
            f("stub_threads_cpu_percent"),
            f("process_cpu_percent"),
            per_core(&row["machine_cpu_percent_per_core"]),
            f("rss_mib"),
            f("peak_rss_mib"),
            row["time_wait_target_side"],
            row["time_wait_prober_side"],
            row["listen_drops"],
            row["failed"],
            row["failed_by_prober"],
            row["failed_by_target"],
            row["failure_causes"]
        );
    }
    Ok(json!({ "machine": machine(), "profile": profile(), "result": r }))
}

/// `61 % / 58 %`: the busy share of each CPU of the machine.
fn per_core(v: &serde_json::Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{:.0} %", c.as_f64().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The build profile this binary was compiled with.
fn profile() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

fn decide() -> anyhow::Result<serde_json::Value> {
    println!("decision core: 3 s …");
    let r = throughput::decide_throughput(Duration::from_secs(3))?;
    println!(
        "  {:.0} decisions/s ({:.0} ns each)",
        r["decisions_per_s"].as_f64().unwrap_or(0.0),
        r["ns_per_decision"].as_f64().unwrap_or(0.0)
    );
    Ok(json!({ "machine": machine(), "profile": profile(), "result": r }))
}

async fn api(rate: u32, window: Duration) -> anyhow::Result<serde_json::Value> {
    println!("API: GET /api/v1/status at {rate}/s for {} while the lab probes …", humantime::format_duration(window));
    let lab = fo_lab::lab::Lab::start("127.0.0.1:0".parse()?, Duration::from_millis(500), 3).await?;
    let app = failover_orchestrator::app::App::build(lab.config.clone(), Default::default()).await?;
    let addr = app.addr();
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(app.run(cancel.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = throughput::http_load(&format!("http://{addr}/api/v1/status"), rate, window).await;
    cancel.cancel();
    let _ = task.await;
    lab.stop().await;
    println!(
        "  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  errors {}",
        r["p50_ms"].as_f64().unwrap_or(0.0),
        r["p99_ms"].as_f64().unwrap_or(0.0),
        r["max_ms"].as_f64().unwrap_or(0.0),
        r["errors"]
    );
    Ok(json!({ "machine": machine(), "profile": profile(), "result": r }))
}

fn markdown_more(p: &serde_json::Value, d: &serde_json::Value, a: &serde_json::Value) -> String {
    let r = &p["result"];
    let mut s = format!(
        "\nProbe engine ({}): HTTP checks at a 1 s interval (timeout 800 ms, {} hedged attempts), one task per check on a \
         multi-threaded runtime with {} worker threads, against {} app stubs on their own runtime ({} thread); CPU per thread \
         from `/proc/self/task/*/stat`, per core from `/proc/stat` (the whole machine, other work included).\n\n",
        stamp(p),
        failover_orchestrator::config::DEFAULT_ATTEMPTS,
        r["probe_workers"],
        r["stubs"],
        r["stub_threads"],
    );
    s.push_str(
        "| checks | probes/s | probes/s per probe core | CPU per probe | probe threads CPU | stub CPU | machine CPU per core | RSS (peak) | failed: prober / target |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in r["probes"].as_array().into_iter().flatten() {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        s.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} µs | {:.1} % | {:.1} % | {} | {:.0} MiB ({:.0}) | {} / {} |\n",
            r["checks"],
            f("probes_per_s"),
            f("probes_per_s_per_core"),
            f("cpu_us_per_probe"),
            f("probe_threads_cpu_percent"),
            f("stub_threads_cpu_percent"),
            per_core(&r["machine_cpu_percent_per_core"]),
            f("rss_mib"),
            f("peak_rss_mib"),
            r["failed_by_prober"],
            r["failed_by_target"],
        ));
    }
    s.push_str(&format!(
        "\nDecision core and API ({}):\n\n| decision core | API `GET /api/v1/status` at {}/s while the lab probes |\n|---|---|\n| {:.0} decisions/s ({:.0} ns each) | p50 {:.1} ms, p99 {:.1} ms, {} errors |\n",
        stamp(d),
        a["result"]["rate_per_s"],
        d["result"]["decisions_per_s"].as_f64().unwrap_or(0.0),
        d["result"]["ns_per_decision"].as_f64().unwrap_or(0.0),
        a["result"]["p50_ms"].as_f64().unwrap_or(0.0),
        a["result"]["p99_ms"].as_f64().unwrap_or(0.0),
        a["result"]["errors"]
    ));
    s
}
