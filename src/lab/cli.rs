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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Path as AxPath, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::app_stub::AppStub;
use super::postgres::{PgCluster, PgOptions};
use super::powerdns::PowerDns;
use super::topology::{ConfigParams, LabTokens, PowerDnsSpec, RegionSpec};
use crate::app::{App, AppOptions};
use crate::config::Config;

/// Arguments of `failover-orchestrator lab`.
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

/// Environment variable the lab's generated configuration reads the PowerDNS key from.
pub const PDNS_KEY_ENV: &str = "FO_LAB_PDNS_API_KEY";
/// The weighted name in the lab.
pub const RECORD: &str = "app.lab.test.";
const ZONE: &str = "lab.test.";

/// One lab region.
pub struct LabRegion {
    /// Name.
    pub name: String,
    /// Its address (app and database listen here).
    pub ip: IpAddr,
    /// Its app.
    pub app: AppStub,
    /// Its database.
    pub pg: Option<PgCluster>,
}

/// Everything the lab started.
pub struct Lab {
    /// The orchestrator's store.
    pub store: PgCluster,
    /// The regions, primary first.
    pub regions: Vec<LabRegion>,
    /// PowerDNS.
    pub pdns: PowerDns,
    /// The generated configuration text.
    pub config_text: String,
    /// The parsed configuration.
    pub config: Config,
    /// API tokens (viewer, operator, admin) in the generated tokens file.
    pub tokens: LabTokens,
}

/// Policy timings of the lab's configuration (the benchmarks shorten failback to run many flips).
#[derive(Debug, Clone, Copy)]
pub struct LabTuning {
    /// `policy.dwell`.
    pub dwell: Duration,
    /// `policy.failback_hold`.
    pub failback_hold: Duration,
    /// `policy.failback_step`.
    pub failback_step: u32,
    /// When set, the orchestrator probes these addresses (primary, standby, dr) instead of the
    /// lab's own apps, e.g. fault proxies in front of other apps that a benchmark controls.
    pub probe_targets: Option<[SocketAddr; 3]>,
}

impl Default for LabTuning {
    fn default() -> Self {
        Self {
            dwell: Duration::from_secs(3),
            failback_hold: Duration::from_secs(5),
            failback_step: 20,
            probe_targets: None,
        }
    }
}

impl Lab {
    /// Starts the databases, apps and PowerDNS, and renders the configuration.
    ///
    /// # Errors
    /// When a server does not start (PostgreSQL or PowerDNS missing: run `scripts/install-deps.sh`).
    pub async fn start(listen: SocketAddr, interval: Duration, fall: u32) -> anyhow::Result<Lab> {
        Self::start_tuned(listen, interval, fall, LabTuning::default()).await
    }

    /// [`Lab::start`] with other policy timings.
    ///
    /// # Errors
    /// As [`Lab::start`].
    pub async fn start_tuned(
        listen: SocketAddr,
        interval: Duration,
        fall: u32,
        tuning: LabTuning,
    ) -> anyhow::Result<Lab> {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ips: Vec<IpAddr> = (11..=13).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))).collect();
        let plain = PgOptions::default();
        let primary_opts = PgOptions { synchronous_standby_names: Some("standby".into()), ..Default::default() };
        let (store, primary, pdns) = tokio::try_join!(
            PgCluster::start_primary("store", lo, &plain),
            PgCluster::start_primary("primary", ips[0], &primary_opts),
            PowerDns::start(lo),
        )
        .context("starting the lab's servers (missing packages? run scripts/install-deps.sh)")?;
        store.create_database("failover").await?;
        let (standby, dr) = tokio::try_join!(
            PgCluster::start_standby(&primary, "standby", ips[1], &plain),
            PgCluster::start_standby(&primary, "dr", ips[2], &plain),
        )
        .context("starting the standbys")?;
        pdns.create_zone(ZONE).await?;
        let names = ["primary", "standby", "dr"];
        let roles = ["primary", "standby", "dr"];
        let weights = [80, 20, 0];
        let mut regions = Vec::new();
        let mut specs = Vec::new();
        for (i, pg) in [primary, standby, dr].into_iter().enumerate() {
            let app = AppStub::start(names[i], SocketAddr::new(ips[i], 0)).await?;
            let target = tuning.probe_targets.map_or(app.addr(), |t| t[i]);
            specs.push(RegionSpec {
                name: names[i].into(),
                role: roles[i].into(),
                weight: weights[i],
                address: ips[i],
                app_url: format!("http://{target}/health"),
                tcp_target: target.to_string(),
                pg_dsn: Some(pg.dsn()),
                pg_expect_recovery: Some(i != 0),
                pg_extra: Vec::new(),
            });
            regions.push(LabRegion { name: names[i].into(), ip: ips[i], app, pg: Some(pg) });
        }
        let mut params = ConfigParams::new(store.dsn_db("failover"), listen, specs);
        params.interval = interval;
        params.timeout = interval.mul_f64(0.8).min(Duration::from_secs(2));
        params.fast_interval = (interval / 5).max(Duration::from_millis(50));
        params.degraded_latency = params.timeout / 2;
        params.fall = fall;
        params.dwell = tuning.dwell;
        params.failback_hold = tuning.failback_hold;
        params.failback_step = tuning.failback_step;
        params.powerdns = Some(PowerDnsSpec {
            api_url: pdns.api_url().trim_end_matches("/api/v1").to_string(),
            api_key_env: PDNS_KEY_ENV.into(),
            zone: ZONE.into(),
            record: RECORD.into(),
            dns_addr: pdns.dns_addr(),
        });
        let tokens = LabTokens::generate();
        let dir = std::env::temp_dir().join(format!("failover-lab-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let tokens_file = dir.join("tokens");
        std::fs::write(&tokens_file, tokens.file_text())?;
        params.tokens_file = Some(tokens_file);
        // Loopback only: the dashboard reads without a token; every action needs the operator token.
        params.public_reads = true;
        let config_text = params.to_toml();
        let key = pdns.api_key().to_string();
        let config = Config::parse(&config_text, "lab regions.toml", &|k| (k == PDNS_KEY_ENV).then(|| key.clone()))
            .context("the lab's generated configuration is invalid")?;
        Ok(Lab { store, regions, pdns, config_text, config, tokens })
    }

    /// The region named `name`.
    pub fn region_mut(&mut self, name: &str) -> Option<&mut LabRegion> {
        self.regions.iter_mut().find(|r| r.name == name)
    }

    /// Stops every server.
    pub async fn stop(self) {
        for r in self.regions {
            if let Some(pg) = r.pg {
                let _ = pg.stop().await;
            }
        }
        let _ = self.store.stop().await;
        let _ = self.pdns.stop().await;
    }
}

/// Asks PowerDNS for the lab record once (via `dig`) and returns the answered address.
///
/// # Errors
/// When `dig` is missing or the server does not answer.
pub async fn dig(dns: SocketAddr, name: &str) -> anyhow::Result<Option<IpAddr>> {
    let out = tokio::process::Command::new("dig")
        .args([
            format!("@{}", dns.ip()),
            "-p".into(),
            dns.port().to_string(),
            name.into(),
            "A".into(),
            "+short".into(),
            "+tries=1".into(),
            "+time=1".into(),
        ])
        .output()
        .await
        .context("running dig (install bind9-dnsutils)")?;
    if !out.status.success() {
        bail!("dig failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.trim().parse().ok()))
}

/// The lab, shared with the control endpoint.
pub type Shared = Arc<Mutex<Lab>>;

/// Runs the lab until Ctrl-C (or until the measurement is done).
///
/// # Errors
/// When the lab cannot start.
pub async fn run(args: LabArgs) -> anyhow::Result<()> {
    let lab = Lab::start(args.listen, args.interval.into(), args.fall).await?;
    let dir = std::env::temp_dir().join(format!("failover-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg_path = dir.join("regions.toml");
    std::fs::write(&cfg_path, &lab.config_text)?;
    let app = App::build(lab.config.clone(), AppOptions::default()).await?;
    let api = app.addr();
    let mut status = app.status();
    let cancel = CancellationToken::new();
    tokio::spawn(crate::shutdown::watch_signals(cancel.clone()).context("installing signal handlers")?);
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
            Some(super::measure::flips(&shared, &mut status, dns, n).await.map(|times| report_flips(&times)))
        }
        (None, Some(n)) => {
            Some(super::measure::drills(api, &tokens, &mut status, n).await.map(|runs| report_drills(&runs)))
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
        "\nfailover-orchestrator lab is up\n\
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
    let shift = super::measure::Summary::of(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
    let back = super::measure::Summary::of(&runs.iter().map(|r| r.1).collect::<Vec<_>>());
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
    let s = super::measure::Summary::of(times);
    println!(
        "detection-to-flip over {} runs: median {:.0} ms, p95 {:.0} ms, min {:.0} ms, max {:.0} ms",
        times.len(),
        s.p50_ms,
        s.p95_ms,
        s.min_ms,
        s.max_ms
    );
}
