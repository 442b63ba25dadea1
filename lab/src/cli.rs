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
//!
//! `--orchestrators 3` runs the three-orchestrator lab instead ([`crate::cluster`]): three
//! `failover-orchestrator` processes (one per region, each with its own store) coordinated by a
//! three-member etcd cluster, every probe path and etcd link behind a fault proxy. Its control
//! endpoint can also isolate a vantage, fault one vantage's path to one region, kill and start
//! an orchestrator, and kill and restart an etcd member.

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

use crate::cluster::{Cluster, ClusterOptions};
use crate::faultproxy::Faults;
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
    /// How many orchestrators: 1 (in this process, `single` coordination) or 3 (one process per
    /// region on etcd; their APIs listen on `--listen` and the next two ports).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub orchestrators: u8,
    /// With `--orchestrators 3`: the `failover-orchestrator` binary (default: the one next to `fo-lab`).
    #[arg(long)]
    pub orchestrator_bin: Option<std::path::PathBuf>,
    /// With `--orchestrators 3`: the leader lease time-to-live.
    #[arg(long, default_value = "2s")]
    pub lease_ttl: humantime::Duration,
    /// With `--orchestrators 3`: SIGKILL the leader N times (restarting it after each), print the
    /// time from the kill to the first plan verified by the new leader, and exit.
    #[arg(long)]
    pub measure_takeover: Option<usize>,
    /// With `--orchestrators 3`: hold each of issue 11's faults (30 % loss, 3 s blackouts every
    /// 30 s, 300 ± 200 ms latency) on the standby's paths to the primary for this long, print the
    /// traffic changes each caused, and exit.
    #[arg(long)]
    pub measure_path_faults: Option<humantime::Duration>,
    /// With `--orchestrators 3`: print each orchestrator's etcd requests per second, CPU and
    /// memory over this long with nothing failing, and exit.
    #[arg(long)]
    pub measure_steady: Option<humantime::Duration>,
    /// Turn `[auth] public_reads` off, as a real deployment has it: every read, the dashboard's
    /// included, needs a token (the banner prints one per role).
    #[arg(long)]
    pub private: bool,
    /// Run the orchestrator processes with JSON logs (set by `fo-lab --log-json`).
    #[arg(skip)]
    pub log_json: bool,
}

/// Runs the lab until Ctrl-C (or until the measurement is done).
///
/// # Errors
/// When the lab cannot start.
pub async fn run(args: LabArgs) -> anyhow::Result<()> {
    match args.orchestrators {
        1 => {
            if args.measure_takeover.is_some() || args.measure_path_faults.is_some() || args.measure_steady.is_some() {
                anyhow::bail!("--measure-takeover, --measure-path-faults and --measure-steady need --orchestrators 3");
            }
            run_single(args).await
        }
        3 => run_cluster(args).await,
        n => anyhow::bail!("--orchestrators {n}: the lab runs 1 or 3 (one per region)"),
    }
}

async fn run_single(args: LabArgs) -> anyhow::Result<()> {
    let tuning = crate::lab::LabTuning { public_reads: !args.private, ..Default::default() };
    let lab = Lab::start_tuned(args.listen, args.interval.into(), args.fall, tuning).await?;
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
    let (ctl_addr, ctl) = serve_control(control, args.control, cancel.clone()).await?;

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

/// Serves the control endpoint on `addr` until `cancel`; returns where it listens and its task.
async fn serve_control(
    control: Router,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the control endpoint {addr}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, control).with_graceful_shutdown(async move { cancel.cancelled().await }).await;
    });
    Ok((bound, task))
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

/// The control endpoint's answer.
type Answer = (axum::http::StatusCode, Json<serde_json::Value>);

async fn control_app(State(lab): State<Shared>, AxPath((name, action)): AxPath<(String, String)>) -> Answer {
    app_action(&mut *lab.lock().await, &name, &action).await
}

async fn control_pg(State(lab): State<Shared>, AxPath((name, action)): AxPath<(String, String)>) -> Answer {
    pg_action(&mut *lab.lock().await, &name, &action).await
}

/// `break`, `slow`, `kill` or `restore` region `name`'s app.
async fn app_action(lab: &mut Lab, name: &str, action: &str) -> Answer {
    let Some(r) = lab.region_mut(name) else {
        return refusal(axum::http::StatusCode::NOT_FOUND, format!("unknown region `{name}`"));
    };
    let timeout = Duration::from_millis(400);
    let result = match action {
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
        other => return not_one_of(other, "break, slow, kill, restore"),
    };
    control_answer(name, "app", action, result)
}

/// `stop` (SIGKILL) or `start` region `name`'s database.
async fn pg_action(lab: &mut Lab, name: &str, action: &str) -> Answer {
    let Some(r) = lab.region_mut(name) else {
        return refusal(axum::http::StatusCode::NOT_FOUND, format!("unknown region `{name}`"));
    };
    let Some(pg) = r.pg.as_mut() else {
        return refusal(axum::http::StatusCode::NOT_FOUND, "region has no database".into());
    };
    let result = match action {
        "stop" => {
            pg.kill();
            Ok(())
        }
        "start" => pg.restart().await,
        other => return not_one_of(other, "stop, start"),
    };
    control_answer(name, "postgres", action, result)
}

/// The control endpoint's answer: `{region, <what>: action}` or a 500 with the error.
fn control_answer(name: &str, what: &str, action: &str, result: anyhow::Result<()>) -> Answer {
    done(json!({ "region": name, what: action }), result)
}

/// 200 with `body` when `result` is Ok, else a 500 with the error.
fn done(body: serde_json::Value, result: anyhow::Result<()>) -> Answer {
    match result {
        Ok(()) => (axum::http::StatusCode::OK, Json(body)),
        Err(e) => refusal(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
}

/// `{"error": message}` with `code`.
fn refusal(code: axum::http::StatusCode, message: String) -> Answer {
    (code, Json(json!({ "error": message })))
}

/// A 400 for an unknown action.
fn not_one_of(action: &str, known: &str) -> Answer {
    refusal(axum::http::StatusCode::BAD_REQUEST, format!("action `{action}` is not one of {known}"))
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

/// The three-orchestrator lab, shared with the control endpoint and the measurements.
type SharedCluster = crate::cluster::Shared;

/// `fo-lab --orchestrators 3`: runs the three-orchestrator lab until Ctrl-C or the measurement is done.
async fn run_cluster(args: LabArgs) -> anyhow::Result<()> {
    if args.measure_drills.is_some() {
        anyhow::bail!("--measure-drills runs with one orchestrator (drop --orchestrators 3)");
    }
    let bin = match &args.orchestrator_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe().context("locating fo-lab")?.with_file_name("failover-orchestrator"),
    };
    let mut opts = ClusterOptions::new(bin);
    opts.interval = args.interval.into();
    opts.fall = args.fall;
    opts.lease_ttl = args.lease_ttl.into();
    opts.log_json = args.log_json;
    opts.tuning.public_reads = !args.private;
    // Port 0 (the tests): free ports for all three; otherwise `--listen` and the next two ports.
    if args.listen.port() != 0 {
        let next = |n: u16| SocketAddr::new(args.listen.ip(), args.listen.port().saturating_add(n));
        opts.listen = Some([next(0), next(1), next(2)]);
    }
    let cancel = CancellationToken::new();
    tokio::spawn(failover_orchestrator::shutdown::watch_signals(cancel.clone()).context("installing signal handlers")?);
    let cluster = Cluster::start(opts).await?;
    let shared: SharedCluster = Arc::new(Mutex::new(cluster));

    let control = Router::new()
        .route("/regions/{name}/app/{action}", post(cluster_app))
        .route("/regions/{name}/postgres/{action}", post(cluster_pg))
        .route("/vantages/{vantage}/{action}", post(cluster_vantage))
        .route("/vantages/{vantage}/paths/{region}", post(cluster_fault_path))
        .route("/vantages/{vantage}/paths/{region}/clear", post(cluster_clear_path))
        .route("/orchestrators/{vantage}/{action}", post(cluster_orchestrator))
        .route("/etcd/{member}/{action}", post(cluster_etcd))
        .with_state(shared.clone());
    let (ctl_addr, ctl) = serve_control(control, args.control, cancel.clone()).await?;
    print_cluster_banner(&*shared.lock().await, ctl_addr);

    let ready = {
        let c = shared.lock().await;
        async {
            let leader = c.wait_leader(Duration::from_secs(60)).await?;
            c.wait_status(&leader, Duration::from_secs(60), |s| s["plan"]["verified_at"].is_string()).await
        }
        .await
    };
    match ready {
        Ok(_) => info!("lab ready"),
        Err(e) => warn!(error = %format!("{e:#}"), "no leader with a verified plan after 60 s"),
    }

    let measured = if let Some(n) = args.measure_flips {
        Some(crate::cluster::measure_flips(&shared, n).await.map(|t| report_flips(&t)))
    } else if let Some(n) = args.measure_takeover {
        Some(crate::cluster::measure_takeover(&shared, n).await.map(|t| report_takeover(&t)))
    } else if let Some(d) = args.measure_path_faults {
        Some(crate::cluster::measure_path_faults(&shared, d.into()).await.map(|r| report_path_faults(&r)))
    } else if let Some(d) = args.measure_steady {
        Some(crate::cluster::measure_steady(&shared, d.into()).await.map(|r| report_steady(&r)))
    } else {
        None
    };
    if measured.is_none() {
        cancel.cancelled().await;
        info!("stopping the lab");
    }
    cancel.cancel();
    let _ = ctl.await;
    match Arc::try_unwrap(shared) {
        Ok(cluster) => cluster.into_inner().stop().await,
        Err(_) => warn!("the cluster is still shared; its servers stop with this process"),
    }
    info!("lab stopped; nothing left behind");
    measured.unwrap_or(Ok(()))
}

#[allow(clippy::print_stdout)]
fn print_cluster_banner(c: &Cluster, ctl: SocketAddr) {
    let dns = c.lab().pdns.dns_addr();
    let mut orchestrators = String::new();
    for v in c.vantages() {
        let url = c.url(&v).unwrap_or_default();
        let cfg = c.config_path(&v).map(|p| p.display().to_string()).unwrap_or_default();
        let log = c.log_path(&v).map(|p| p.display().to_string()).unwrap_or_default();
        orchestrators.push_str(&format!(
            "\n  {v:<8} dashboard {url}/   status: curl -s {url}/api/v1/status | jq .leadership\
             \n           configuration {cfg}\
             \n           log           {log}"
        ));
    }
    let tokens = &c.lab().tokens;
    println!(
        "\nfo-lab: the three-orchestrator lab is up (one orchestrator and one etcd member per region)\n\
         {orchestrators}\
         \n\n  etcd           ETCDCTL_API=3 etcdctl --endpoints {etcd} endpoint health\
         \n  DNS answer     dig @{ip} -p {port} {RECORD} +short\
         \n\n  break a region's app (all vantages see it)  curl -X POST http://{ctl}/regions/primary/app/break   (…/restore, slow, kill)\
         \n  stop / start a database                     curl -X POST http://{ctl}/regions/primary/postgres/stop   (…/start)\
         \n  isolate a vantage (probes and etcd links)   curl -X POST http://{ctl}/vantages/primary/isolate   (…/heal)\
         \n  fault one vantage's path to one region      curl -X POST -H 'Content-Type: application/json' \\\
         \n                                                -d '{{\"drop_rate\":0.3,\"latency\":\"300ms\",\"jitter\":\"200ms\"}}' http://{ctl}/vantages/standby/paths/primary\
         \n  clear it                                    curl -X POST http://{ctl}/vantages/standby/paths/primary/clear\
         \n  kill / stop / start an orchestrator         curl -X POST http://{ctl}/orchestrators/primary/kill   (…/stop, start)\
         \n  kill / restart an etcd member               curl -X POST http://{ctl}/etcd/primary/kill   (…/restart, pause, resume)\
         \n  (regions, vantages and etcd members: primary, standby, dr)\
         \n\n  operator token             {op}\
         \n  viewer token               {viewer}\
         \n  admin token                {admin}\
         \n\nCtrl-C stops everything.\n",
        etcd = c.etcd().endpoints(),
        ip = dns.ip(),
        port = dns.port(),
        op = tokens.operator,
        viewer = tokens.viewer,
        admin = tokens.admin,
    );
}

async fn cluster_app(State(c): State<SharedCluster>, AxPath((name, action)): AxPath<(String, String)>) -> Answer {
    app_action(c.lock().await.lab_mut(), &name, &action).await
}

async fn cluster_pg(State(c): State<SharedCluster>, AxPath((name, action)): AxPath<(String, String)>) -> Answer {
    pg_action(c.lock().await.lab_mut(), &name, &action).await
}

/// A 404 unless `vantage` is one of the cluster's.
fn unknown_vantage(c: &Cluster, vantage: &str) -> Option<Answer> {
    (!c.vantages().iter().any(|v| v == vantage))
        .then(|| refusal(axum::http::StatusCode::NOT_FOUND, format!("unknown vantage `{vantage}`")))
}

async fn cluster_vantage(
    State(c): State<SharedCluster>,
    AxPath((vantage, action)): AxPath<(String, String)>,
) -> Answer {
    let c = c.lock().await;
    if let Some(refused) = unknown_vantage(&c, &vantage) {
        return refused;
    }
    let result = match action.as_str() {
        "isolate" => c.isolate(&vantage),
        "heal" => c.heal(&vantage),
        other => return not_one_of(other, "isolate, heal"),
    };
    done(json!({ "vantage": vantage, "network": action }), result)
}

async fn cluster_fault_path(
    State(c): State<SharedCluster>,
    AxPath((vantage, region)): AxPath<(String, String)>,
    Json(body): Json<FaultsBody>,
) -> Answer {
    let faults = match body.into_faults() {
        Ok(f) => f,
        Err(e) => return refusal(axum::http::StatusCode::BAD_REQUEST, e),
    };
    let c = c.lock().await;
    if let Some(refused) = unknown_vantage(&c, &vantage) {
        return refused;
    }
    let shown = format!("{faults:?}");
    done(json!({ "vantage": vantage, "region": region, "faults": shown }), c.fault_path(&vantage, &region, faults))
}

async fn cluster_clear_path(
    State(c): State<SharedCluster>,
    AxPath((vantage, region)): AxPath<(String, String)>,
) -> Answer {
    let c = c.lock().await;
    if let Some(refused) = unknown_vantage(&c, &vantage) {
        return refused;
    }
    done(json!({ "vantage": vantage, "region": region, "faults": "cleared" }), c.clear_path(&vantage, &region))
}

async fn cluster_orchestrator(
    State(c): State<SharedCluster>,
    AxPath((vantage, action)): AxPath<(String, String)>,
) -> Answer {
    let mut c = c.lock().await;
    if let Some(refused) = unknown_vantage(&c, &vantage) {
        return refused;
    }
    let result = match action.as_str() {
        "kill" => c.kill_orchestrator(&vantage),
        "stop" => c.stop_orchestrator(&vantage).await,
        "start" => c.start_orchestrator(&vantage).await,
        other => return not_one_of(other, "kill, stop, start"),
    };
    done(json!({ "orchestrator": vantage, "action": action }), result)
}

async fn cluster_etcd(State(c): State<SharedCluster>, AxPath((member, action)): AxPath<(String, String)>) -> Answer {
    let mut c = c.lock().await;
    if c.etcd().member(&member).is_err() {
        return refusal(axum::http::StatusCode::NOT_FOUND, format!("unknown etcd member `{member}`"));
    }
    let result = match action.as_str() {
        "kill" => c.kill_etcd(&member),
        "restart" => c.restart_etcd(&member).await,
        "pause" => c.pause_etcd(&member),
        "resume" => c.resume_etcd(&member),
        other => return not_one_of(other, "kill, restart, pause, resume"),
    };
    done(json!({ "etcd_member": member, "action": action }), result)
}

/// The fault set a control request puts on a path: [`Faults`] with durations as text (`"300ms"`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultsBody {
    latency: Option<String>,
    jitter: Option<String>,
    drop_rate: f64,
    blackhole: bool,
    reset: bool,
    refuse: bool,
    bandwidth_bytes_per_sec: Option<u64>,
}

impl FaultsBody {
    fn into_faults(self) -> Result<Faults, String> {
        let duration = |name: &str, text: Option<String>| match text {
            None => Ok(Duration::ZERO),
            Some(t) => humantime::parse_duration(&t).map_err(|e| format!("{name} `{t}`: {e} (e.g. \"300ms\")")),
        };
        if !(0.0..=1.0).contains(&self.drop_rate) {
            return Err(format!("drop_rate {} is not between 0 and 1", self.drop_rate));
        }
        Ok(Faults {
            latency: duration("latency", self.latency)?,
            jitter: duration("jitter", self.jitter)?,
            drop_rate: self.drop_rate,
            blackhole: self.blackhole,
            reset: self.reset,
            refuse: self.refuse,
            bandwidth_bytes_per_sec: self.bandwidth_bytes_per_sec,
        })
    }
}

#[allow(clippy::print_stdout)]
fn report_path_faults(runs: &[crate::cluster::PathFaultRun]) {
    for r in runs {
        println!(
            "standby's path to the primary, {} for {:.0} s: {} DNS changes, {} plans away from the normal split; the leader's status explained the minority view in {} of {} samples",
            r.fault,
            r.held.as_secs_f64(),
            r.dns_changes,
            r.plans_away,
            r.noted,
            r.samples
        );
    }
}

#[allow(clippy::print_stdout)]
fn report_steady(costs: &[crate::cluster::SteadyCost]) {
    for c in costs {
        println!(
            "{:<8} {:<8} etcd {:.2} requests/s, CPU {:.1} % of a core, RSS {} MiB",
            c.vantage,
            if c.leader { "leader" } else { "follower" },
            c.etcd_requests_per_s,
            c.cpu_share * 100.0,
            c.rss_kib / 1024
        );
    }
}

#[allow(clippy::print_stdout)]
fn report_takeover(runs: &[crate::cluster::Takeover]) {
    for (i, t) in runs.iter().enumerate() {
        println!(
            "takeover {}: {} killed, {} leads after {:.0} ms, first verified plan after {:.0} ms",
            i + 1,
            t.killed,
            t.new_leader,
            t.elected.as_secs_f64() * 1000.0,
            t.verified.as_secs_f64() * 1000.0
        );
    }
    let elected = crate::measure::Summary::of(&runs.iter().map(|t| t.elected).collect::<Vec<_>>());
    let verified = crate::measure::Summary::of(&runs.iter().map(|t| t.verified).collect::<Vec<_>>());
    println!(
        "leader takeover over {} runs (SIGKILL of the leader): new leader seen p50 {:.0} ms, p95 {:.0} ms; first plan verified by it p50 {:.0} ms, p95 {:.0} ms (min {:.0}, max {:.0})",
        runs.len(),
        elected.p50_ms,
        elected.p95_ms,
        verified.p50_ms,
        verified.p95_ms,
        verified.min_ms,
        verified.max_ms
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_body_takes_durations_as_text() {
        let body: FaultsBody = serde_json::from_str(r#"{"latency":"300ms","jitter":"200ms","drop_rate":0.3}"#).unwrap();
        let f = body.into_faults().unwrap();
        assert_eq!(f.latency, Duration::from_millis(300));
        assert_eq!(f.jitter, Duration::from_millis(200));
        assert_eq!(f.drop_rate, 0.3);
        assert!(!f.blackhole);
    }

    #[test]
    fn a_fault_body_refuses_nonsense() {
        let bad = |text: &str| {
            serde_json::from_str::<FaultsBody>(text).map_err(|e| e.to_string()).and_then(FaultsBody::into_faults)
        };
        assert!(bad(r#"{"latency":"soon"}"#).unwrap_err().contains("latency"));
        assert!(bad(r#"{"drop_rate":2}"#).unwrap_err().contains("drop_rate"));
        assert!(bad(r#"{"blackhloe":true}"#).is_err(), "unknown fields are refused");
    }
}
