//! Signals beyond probes, measured in the lab (issue 14): detection-to-flip when a metric check
//! crosses its limit (a node_exporter textfile metric) and when HAProxy marks the primary's server
//! down (the passive check), and the measured RTO of synthetic-failure drills. Figures, never
//! assertions.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fo_lab::app_stub::AppStub;
use fo_lab::haproxy::{BACKEND, BackendServer, Haproxy, HttpCheck};
use fo_lab::lab::{Lab, LabTuning, Shared};
use fo_lab::measure::{Summary, flips_with, wait_for};
use fo_lab::prometheus::NodeExporter;
use serde_json::json;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The lab's probe interval and fall for these runs (the active checks' too).
const INTERVAL: Duration = Duration::from_millis(500);
const FALL: u32 = 3;

/// Short failback so that many flips take a minute or two.
fn tuning(extra: Vec<String>) -> LabTuning {
    LabTuning {
        dwell: Duration::from_secs(1),
        failback_hold: Duration::from_secs(1),
        failback_step: 80,
        extra_checks: [extra, Vec::new(), Vec::new()],
        ..Default::default()
    }
}

/// Starts the lab and its orchestrator, runs `f` on them, stops both.
async fn with_lab<T, F, Fut>(tuning: LabTuning, f: F) -> anyhow::Result<T>
where
    F: FnOnce(
        Shared,
        tokio::sync::watch::Receiver<Arc<failover_orchestrator::status::Status>>,
        std::net::SocketAddr,
    ) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let lab = Lab::start_tuned("127.0.0.1:0".parse()?, INTERVAL, FALL, tuning).await?;
    let app =
        failover_orchestrator::app::App::build(lab.config.clone(), failover_orchestrator::app::AppOptions::default())
            .await?;
    let api = app.addr();
    let status = app.status();
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(app.run(cancel.clone()));
    let shared: Shared = Arc::new(tokio::sync::Mutex::new(lab));
    let result = f(shared.clone(), status, api).await;
    cancel.cancel();
    let _ = task.await;
    if let Ok(lab) = Arc::try_unwrap(shared) {
        lab.into_inner().stop().await;
    }
    result
}

fn row(what: &str, check: &str, times: &[Duration]) -> serde_json::Value {
    let s = Summary::of(times);
    println!(
        "  {what}: p50 {:.0} ms  p95 {:.0} ms  min {:.0} ms  max {:.0} ms",
        s.p50_ms, s.p95_ms, s.min_ms, s.max_ms
    );
    json!({
        "what": what, "check": check, "runs": times.len(), "summary": s,
        "times_ms": times.iter().map(|t| t.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
    })
}

/// A metric check on the primary (node_exporter textfile metric, down above 0.5, interval
/// 500 ms, fall 3): the metric goes to 1 → time until PowerDNS stops answering the primary.
pub async fn metric_flips(runs: usize) -> anyhow::Result<serde_json::Value> {
    println!("detection-to-flip, metric check crossing its limit: {runs} runs …");
    let node = NodeExporter::start(LO).await?;
    let check = format!(
        "name = \"errors\"\nlayer = \"app\"\ntype = \"metric\"\nurl = \"{}\"\nmetric = \"fo_bench_error_ratio\"\ndegraded_above = 0.2\ndown_above = 0.5",
        node.url()
    );
    let ratio = |v: &str| format!("# TYPE fo_bench_error_ratio gauge\nfo_bench_error_ratio {v}\n");
    node.write_textfile("bench", &ratio("0"))?;
    let node = Arc::new(node);
    let n = node.clone();
    let times = with_lab(tuning(vec![check.clone()]), |lab, mut status, _| async move {
        let dns = lab.lock().await.pdns.dns_addr();
        let (up, down) = (n.clone(), n.clone());
        flips_with(
            &lab,
            &mut status,
            dns,
            runs,
            move || {
                let n = down.clone();
                async move { n.write_textfile("bench", &ratio("1")) }
            },
            move || {
                let n = up.clone();
                async move { n.write_textfile("bench", &ratio("0")) }
            },
        )
        .await
    })
    .await;
    if let Ok(node) = Arc::try_unwrap(node) {
        node.stop().await?;
    }
    Ok(row("metric check (interval 500 ms, fall 3, fast re-probe 100 ms)", &check, &times?))
}

/// The passive check: HAProxy health-checks its own view of the primary (a second app stub,
/// every 100 ms, fall 1); the orchestrator reads HAProxy's stats every 200 ms (fall 1). That
/// stub breaks → time until PowerDNS stops answering the primary. The orchestrator's own active
/// checks never see anything wrong, so only the passive signal can move traffic.
pub async fn passive_flips(runs: usize) -> anyhow::Result<serde_json::Value> {
    println!("detection-to-flip, passive HAProxy signal: {runs} runs …");
    let stub = AppStub::start("primary", "127.0.0.1:0".parse()?).await?;
    let hc = HttpCheck {
        path: "/health".into(),
        inter: Duration::from_millis(100),
        fall: 1,
        rise: 1,
        timeout: Duration::from_millis(500),
    };
    let haproxy = Haproxy::start_checked(
        LO,
        &[BackendServer { name: "primary".into(), addr: stub.addr(), backup: false }],
        Some(&hc),
    )
    .await?;
    let check = format!(
        "name = \"lb\"\nlayer = \"app\"\ntype = \"haproxy\"\nadmin_addr = \"{}\"\nbackend = \"{BACKEND}\"\nserver = \"primary\"\ninterval = \"200ms\"\nfast_interval = \"100ms\"\ntimeout = \"150ms\"\nfall = 1\nrise = 1",
        haproxy.admin()
    );
    let stub = Arc::new(tokio::sync::Mutex::new(stub));
    let s = stub.clone();
    let times = with_lab(tuning(vec![check.clone()]), |lab, mut status, _| async move {
        let dns = lab.lock().await.pdns.dns_addr();
        let (b, h) = (s.clone(), s.clone());
        flips_with(
            &lab,
            &mut status,
            dns,
            runs,
            move || {
                let s = b.clone();
                async move {
                    s.lock().await.break_health();
                    Ok(())
                }
            },
            move || {
                let s = h.clone();
                async move { s.lock().await.restore().await }
            },
        )
        .await
    })
    .await;
    haproxy.stop().await?;
    Ok(row(
        "passive HAProxy signal (HAProxy checks every 100 ms, fall 1; stats read every 200 ms, fall 1)",
        &check,
        &times?,
    ))
}

/// `runs` synthetic-failure drills of the primary (hold 1 s) through the API; each report's
/// detection, decision, RTO (injection → read-back verified) and propagation.
pub async fn synthetic_rto(runs: usize) -> anyhow::Result<serde_json::Value> {
    println!("synthetic-failure drills: {runs} runs …");
    let reports = with_lab(tuning(Vec::new()), |lab, mut status, api| async move {
        let tokens = lab.lock().await.tokens.clone();
        let client =
            failover_orchestrator::cli::client::Client::new(&format!("http://{api}"), Some(tokens.operator.clone()))?;
        let mut out = Vec::new();
        for _ in 0..runs {
            wait_for(&mut status, Duration::from_secs(120), |s| {
                s.drill.is_none()
                    && s.regions.iter().all(|r| {
                        r.weight == r.normal_weight && r.health == failover_orchestrator::health::Health::Up
                    })
                    && s.plan.as_ref().is_some_and(|p| p.verified_at.is_some())
            })
            .await
            .context("waiting for the normal split before a drill")?;
            let body = json!({ "evacuate": "primary", "synthetic_failure": true, "hold_seconds": 1, "reason": "fo-bench signals" });
            let started = client.post("/api/v1/drills", &body, None).await?;
            let id = started["id"].as_str().unwrap_or_default().to_string();
            let deadline = Instant::now() + Duration::from_secs(180);
            let drill = loop {
                let d = client.get(&format!("/api/v1/drills/{id}")).await?;
                if d["finished_at"].is_string() {
                    break d;
                }
                if Instant::now() > deadline {
                    bail!("synthetic drill {id} did not finish within 180 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            if drill["state"] != "completed" {
                bail!("synthetic drill {id} ended {}: {}", drill["state"], drill["report"]);
            }
            out.push(drill["report"]["synthetic"].clone());
        }
        Ok(out)
    })
    .await?;
    let series = |k: &str| -> Vec<Duration> {
        reports.iter().filter_map(|r| r[k].as_u64()).map(Duration::from_millis).collect()
    };
    let mut rows = Vec::new();
    for (k, what) in [
        ("detected_ms", "injection → region down (quorum)"),
        ("decided_ms", "injection → plan decided"),
        ("rto_ms", "injection → read-back verified (RTO)"),
        ("propagated_ms", "injection → DNS answers follow"),
        ("recovered_ms", "injection lifted → region up again"),
    ] {
        rows.push(row(&format!("synthetic drill, {what}"), k, &series(k)));
    }
    Ok(json!({ "runs": runs, "rows": rows, "reports": reports }))
}
