//! The `lab` command: a self-contained three-region lab on loopback.
//!
//! Starts four PostgreSQL clusters (the orchestrator's store, and primary →
//! same-city standby (synchronous) → DR (asynchronous) with real streaming
//! replication), one app per region on 127.0.0.11/12/13, a PowerDNS server
//! with a weighted `app.lab.test.` record, a control endpoint to break things,
//! and the orchestrator with its API and dashboard. Ctrl-C tears everything
//! down; every server is supervised and dies with this process even on SIGKILL.
//!
//! `--measure-flips N` breaks the primary N times and prints the
//! detection-to-flip time (break → PowerDNS no longer answering the primary).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path as AxPath, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::lab::{Lab, RECORD, Shared};
use crate::topology::LabTokens;
use failover_orchestrator::app::{App, AppOptions};

/// Arguments of `fo-lab`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {
    /// Where the orchestrator's API and dashboard listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the lab's failure-injection endpoint listens.
    #[arg(long, default_value = "127.0.0.1:8079")]
    pub control: SocketAddr,
    /// Probe interval of every check.
    #[arg(long, default_value = "500ms")]
    pub interval: humantime::Duration,
    /// Consecutive failures before a check is down.
    #[arg(long, default_value_t = 3)]
    pub fall: u32,
    /// Break the primary N times, print detection-to-flip times, and exit.
    #[arg(long)]
    pub measure_flips: Option<usize>,
    /// Run N live drills (evacuate the primary, one 100 % step), print time to shift and to roll back, and exit.
    #[arg(long)]
    pub measure_drills: Option<usize>,
}

/// Runs the lab until Ctrl-C (or until the measurement is done).
///
/// # Errors
/// When the lab cannot start.
pub async fn run(args: LabArgs) -> anyhow::Result<()> {
    let lab = Lab::start(args.listen, args.interval.into(), args.fall).await?;
    let dir = lab.dir.clone();
    let cfg_path = dir.join("regions.toml");
    std::fs::write(&cfg_path, &lab.config_text)?;
    let app = App::build(lab.config.clone(), AppOptions::default()).await?;
    let api = app.addr();
    let mut status = app.status();
    let cancel = CancellationToken::new();
    tokio::spawn(failover_orchestrator::shutdown::watch_signals(cancel.clone()).context("installing signal handlers")?);
    let app_task = tokio::spawn(app.run(cancel.clone()));
    let dns = lab.pdns.dns_addr();
    let tokens = lab.tokens.clone();
    let shared: Shared = Arc::new(Mutex::new(lab));

    let control = Router::new()
        .route("/regions/{name}/app/{action}", post(control_app))
        .route("/regions/{name}/postgres/{action}", post(control_pg))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(args.control)
        .await
        .with_context(|| format!("binding the control endpoint {}", args.control))?;
    let ctl_addr = listener.local_addr()?;
    let ctl_cancel = cancel.clone();
    let ctl = tokio::spawn(async move {
        let _ =
            axum::serve(listener, control).with_graceful_shutdown(async move { ctl_cancel.cancelled().await }).await;
    });

    print_banner(api, ctl_addr, dns, &cfg_path, &tokens);

    // Wait for the first verified plan.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if status.borrow().plan.as_ref().is_some_and(|p| p.verified_at.is_some()) || cancel.is_cancelled() {
            break;
        }
        if Instant::now() > deadline {
            warn!("no verified plan after 60 s; check the orchestrator's log");
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), status.changed()).await;
    }
    info!("lab ready");

    let measured = match (args.measure_flips, args.measure_drills) {
        (Some(n), _) => {
            Some(crate::measure::flips(&shared, &mut status, dns, n).await.map(|times| report_flips(&times)))
        }
        (None, Some(n)) => {
            Some(crate::measure::drills(api, &tokens, &mut status, n).await.map(|runs| report_drills(&runs)))
        }
        (None, None) => None,
    };
    if let Some(result) = measured {
        cancel.cancel();
        let _ = app_task.await;
        let _ = ctl.await;
        if let Ok(lab) = Arc::try_unwrap(shared) {
            lab.into_inner().stop().await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    }

    cancel.cancelled().await;
    info!("stopping the lab");
    match app_task.await {
        Ok(Err(e)) => warn!(error = %e, "orchestrator stopped with an error"),
        Err(e) => warn!(error = %e, "orchestrator task failed"),
        Ok(Ok(())) => {}
    }
    let _ = ctl.await;
    if let Ok(lab) = Arc::try_unwrap(shared) {
        lab.into_inner().stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    info!("lab stopped; nothing left behind");
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_banner(api: SocketAddr, ctl: SocketAddr, dns: SocketAddr, cfg: &std::path::Path, tokens: &LabTokens) {
    println!(
        "\nfo-lab: the lab is up\n\
         \n  dashboard      http://{api}/\
         \n  status         curl -s http://{api}/api/v1/status | jq .\
         \n  events         curl -s http://{api}/api/v1/events | jq .\
         \n  metrics        curl -s http://{api}/metrics\
         \n  DNS answer     dig @{ip} -p {port} {RECORD} +short\
         \n  configuration  {cfg}\
         \n\n  break the primary app      curl -X POST http://{ctl}/regions/primary/app/break\
         \n  slow it (degraded)         curl -X POST http://{ctl}/regions/primary/app/slow\
         \n  kill it (refuse)           curl -X POST http://{ctl}/regions/primary/app/kill\
         \n  restore it                 curl -X POST http://{ctl}/regions/primary/app/restore\
         \n  stop / start its database  curl -X POST http://{ctl}/regions/primary/postgres/stop   (…/start)\
         \n  (regions: primary, standby, dr)\
         \n\n  operator token             {op}\
         \n  viewer token               {viewer}\
         \n  admin token                {admin}\
         \n  CLI                        export FO_URL=http://{api} FO_TOKEN={op}; failover-orchestrator status\
         \n  dry-run drill              failover-orchestrator drill start --evacuate primary --steps 50,100 --hold 10s --dry-run --reason test\
         \n  live drill (curl)          curl -X POST -H 'Authorization: Bearer {op}' -H 'Content-Type: application/json' \\\
         \n                               -d '{{\"evacuate\":\"primary\",\"steps\":[50,100],\"hold_seconds\":10,\"reason\":\"lab\"}}' http://{api}/api/v1/drills\
         \n\nCtrl-C stops everything.\n",
        op = tokens.operator,
        viewer = tokens.viewer,
        admin = tokens.admin,
        ip = dns.ip(),
        port = dns.port(),
        cfg = cfg.display()
    );
}

async fn control_app(
    State(lab): State<Shared>,
    AxPath((name, action)): AxPath<(String, String)>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    let mut lab = lab.lock().await;
    let Some(r) = lab.region_mut(&name) else {
        return (axum::http::StatusCode::NOT_FOUND, Json(json!({ "error": format!("unknown region `{name}`") })));
    };
    let timeout = Duration::from_millis(400);
    let result = match action.as_str() {
        "break" => {
            r.app.break_health();
            Ok(())
        }
        "slow" => {
            r.app.slow(timeout * 3 / 4);
            Ok(())
        }
        "kill" => {
            r.app.kill().await;
            Ok(())
        }
        "restore" => r.app.restore().await,
        other => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("action `{other}` is not one of break, slow, kill, restore") })),
            );
        }
    };
    control_answer(&name, "app", &action, result)
}

async fn control_pg(
    State(lab): State<Shared>,
    AxPath((name, action)): AxPath<(String, String)>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    let mut lab = lab.lock().await;
    let Some(r) = lab.region_mut(&name) else {
        return (axum::http::StatusCode::NOT_FOUND, Json(json!({ "error": format!("unknown region `{name}`") })));
    };
    let Some(pg) = r.pg.as_mut() else {
        return (axum::http::StatusCode::NOT_FOUND, Json(json!({ "error": "region has no database" })));
    };
    let result = match action.as_str() {
        "stop" => {
            pg.kill();
            Ok(())
        }
        "start" => pg.restart().await,
        other => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("action `{other}` is not one of stop, start") })),
            );
        }
    };
    control_answer(&name, "postgres", &action, result)
}

/// The control endpoint's answer: `{region, <what>: action}` or a 500 with the error.
fn control_answer(
    name: &str,
    what: &str,
    action: &str,
    result: anyhow::Result<()>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    match result {
        Ok(()) => (axum::http::StatusCode::OK, Json(json!({ "region": name, what: action }))),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": e.to_string() }))),
    }
}

#[allow(clippy::print_stdout)]
fn report_drills(runs: &[(Duration, Duration)]) {
    for (i, (shift, back)) in runs.iter().enumerate() {
        println!(
            "drill {}: time to shift {:.0} ms, time to roll back {:.0} ms",
            i + 1,
            shift.as_secs_f64() * 1000.0,
            back.as_secs_f64() * 1000.0
        );
    }
    let shift = crate::measure::Summary::of(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
    let back = crate::measure::Summary::of(&runs.iter().map(|r| r.1).collect::<Vec<_>>());
    println!(
        "live drills over {} runs (PowerDNS, read-back verified): time to shift median {:.0} ms (min {:.0}, max {:.0}); time to roll back median {:.0} ms (min {:.0}, max {:.0})",
        runs.len(),
        shift.p50_ms,
        shift.min_ms,
        shift.max_ms,
        back.p50_ms,
        back.min_ms,
        back.max_ms
    );
}

#[allow(clippy::print_stdout)]
fn report_flips(times: &[Duration]) {
    for (i, t) in times.iter().enumerate() {
        println!("flip {}: {:.0} ms", i + 1, t.as_secs_f64() * 1000.0);
    }
    let s = crate::measure::Summary::of(times);
    println!(
        "detection-to-flip over {} runs: median {:.0} ms, p95 {:.0} ms, min {:.0} ms, max {:.0} ms",
        times.len(),
        s.p50_ms,
        s.p95_ms,
        s.min_ms,
        s.max_ms
    );
}
