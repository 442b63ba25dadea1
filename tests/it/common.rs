//! Shared harness: one PostgreSQL store cluster and one PowerDNS server per test
//! binary (started on first use, stopped when the binary exits), a database and
//! a DNS zone per test, and `spawn_app` to run a whole orchestrator in-process
//! against per-test region apps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use failover_orchestrator::app::{App, AppOptions};
use failover_orchestrator::config::Config;
use failover_orchestrator::plan::Weights;
use failover_orchestrator::region::RegionName;
use failover_orchestrator::status::Status;
use failover_orchestrator::store::Store;
use fo_lab::app_stub::AppStub;
use fo_lab::faultproxy::FaultProxy;
use fo_lab::http_fault::HttpFault;
use fo_lab::postgres::{PgCluster, PgOptions};
use fo_lab::powerdns::PowerDns;
use fo_lab::topology::{ConfigParams, LabTokens, PowerDnsSpec, RegionSpec};
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

static STORE: OnceCell<PgCluster> = OnceCell::const_new();
static PDNS: OnceCell<PowerDns> = OnceCell::const_new();
static NEXT: AtomicU32 = AtomicU32::new(1);

/// Environment variable name the generated configs read the PowerDNS key from.
pub const PDNS_KEY_ENV: &str = "FO_TEST_PDNS_KEY";

/// Logs to the test output when `TEST_LOG=1`.
pub fn init_tracing() {
    if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TEST_LOG_FILTER").unwrap_or_else(|_| "info,sqlx=warn".into()))
            .with_test_writer()
            .try_init();
    }
}

/// The shared store cluster.
pub async fn store_cluster() -> &'static PgCluster {
    STORE
        .get_or_init(|| async {
            PgCluster::start_primary("it-store", IpAddr::V4(Ipv4Addr::LOCALHOST), &PgOptions::default())
                .await
                .expect("start the test store cluster (is PostgreSQL installed? run scripts/install-deps.sh)")
        })
        .await
}

/// The shared PowerDNS server.
pub async fn pdns() -> &'static PowerDns {
    PDNS.get_or_init(|| async {
        PowerDns::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .expect("start PowerDNS (is pdns-server installed? run scripts/install-deps.sh)")
    })
    .await
}

/// A fresh zone `<prefix>N.test.` on the shared PowerDNS, the provider configuration for its
/// `app.` record, and region addresses `127.0.<net>.1..3` (primary, standby, dr).
pub async fn pdns_zone(
    prefix: &str,
    net: u8,
) -> (failover_orchestrator::config::PowerDnsConfig, std::collections::BTreeMap<RegionName, IpAddr>) {
    let server = pdns().await;
    let zone = format!("{prefix}{}.test.", unique());
    server.create_zone(&zone).await.unwrap();
    let addrs = ["primary", "standby", "dr"]
        .into_iter()
        .zip(1u8..)
        .map(|(r, host)| (RegionName::new(r), IpAddr::V4(Ipv4Addr::new(127, 0, net, host))))
        .collect();
    let cfg = failover_orchestrator::config::PowerDnsConfig {
        name: "pdns".into(),
        api_url: server.api_url().trim_end_matches("/api/v1").to_string(),
        api_key: server.api_key().to_string().into(),
        server_id: "localhost".into(),
        record: format!("app.{zone}"),
        zone,
        ttl: 1,
        timeout: Duration::from_secs(2),
        dns_addr: Some(server.dns_addr()),
    };
    (cfg, addrs)
}

/// A unique small number per call in this process.
pub fn unique() -> u32 {
    NEXT.fetch_add(1, Ordering::SeqCst) + std::process::id() % 1000 * 1000
}

/// A fresh database on the shared store cluster; returns its DSN.
pub async fn fresh_database() -> String {
    let pg = store_cluster().await;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    pg.create_database(&name).await.expect("create test database");
    pg.dsn_db(&name)
}

/// What a test varies.
#[derive(Clone)]
pub struct Spec {
    pub interval: Duration,
    pub fast_interval: Duration,
    pub timeout: Duration,
    pub degraded_latency: Duration,
    pub fall: u32,
    pub rise: u32,
    pub dwell: Duration,
    pub failback: &'static str,
    pub failback_hold: Duration,
    pub failback_step: u32,
    pub powerdns: bool,
    /// Store DSN to use instead of a fresh database on the shared cluster.
    pub store_dsn: Option<String>,
    /// Region databases (primary, standby, dr): adds a middleware check per region.
    pub region_dsns: Option<[String; 3]>,
    /// Configure `[auth]` with the tokens in `TestApp::tokens` (default true).
    pub auth: bool,
    /// TOML appended to the generated configuration.
    pub extra: String,
    /// Extra `[regions.postgres]` lines per region (primary, standby, dr).
    pub pg_extra: [Vec<String>; 3],
    /// More checks per region (primary, standby, dr): `[[regions.checks]]` bodies.
    pub region_checks: [Vec<String>; 3],
    /// Put a `FaultProxy` between the orchestrator and each region's app (and database).
    pub fault_proxies: bool,
    /// Put a `FaultProxy` between the orchestrator and its store.
    pub store_proxy: bool,
    /// Put an `HttpFault` (500s) and a `FaultProxy` (timeouts) in front of the PowerDNS API.
    pub provider_proxy: bool,
    /// Hedged attempts per probe (None: the product default).
    pub attempts: Option<u32>,
    /// `[limits]` (default: the lab's, far above the product's).
    pub limits: fo_lab::topology::LabLimits,
    /// `[auth] public_reads` (default false, as a deployment has it).
    pub public_reads: bool,
    /// `[auth] audit_retention` (None: the product default).
    pub audit_retention: Option<Duration>,
    /// `orchestrator.tls_cert` and `tls_key` (None: plain http).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            fast_interval: Duration::from_millis(100),
            timeout: Duration::from_millis(450),
            degraded_latency: Duration::from_millis(150),
            fall: 3,
            rise: 2,
            dwell: Duration::from_secs(1),
            failback: "auto",
            failback_hold: Duration::from_secs(1),
            failback_step: 40,
            powerdns: true,
            store_dsn: None,
            region_dsns: None,
            auth: true,
            extra: String::new(),
            pg_extra: Default::default(),
            region_checks: Default::default(),
            fault_proxies: false,
            store_proxy: false,
            provider_proxy: false,
            attempts: None,
            limits: Default::default(),
            public_reads: false,
            audit_retention: None,
            tls: None,
        }
    }
}

/// A running orchestrator with its region apps.
pub struct TestApp {
    pub addr: SocketAddr,
    pub status: watch::Receiver<Arc<Status>>,
    pub cancel: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    pub store: Store,
    pub apps: Vec<AppStub>,
    /// DNS answer per region, in order primary, standby, dr.
    pub addresses: Vec<IpAddr>,
    pub record: String,
    pub http: reqwest::Client,
    pub config: Config,
    pub plan_file: std::path::PathBuf,
    /// `orchestrator.spill_dir` (removed at shutdown).
    pub spill_dir: std::path::PathBuf,
    /// Viewer, operator and admin tokens (configured when `Spec::auth`).
    pub tokens: LabTokens,
    /// Fault proxies in front of the region apps (primary, standby, dr), when asked for.
    pub proxies: Vec<FaultProxy>,
    /// Fault proxies in front of the region databases, when asked for.
    pub pg_proxies: Vec<FaultProxy>,
    /// Fault proxy in front of the store, when asked for.
    pub store_proxy: Option<FaultProxy>,
    /// HTTP-level (500s) and TCP-level fault injection in front of the PowerDNS API.
    pub provider_faults: Option<(HttpFault, FaultProxy)>,
    /// The rendered configuration and the PowerDNS key (to start more orchestrators on it).
    pub config_text: String,
    pub pdns_key: String,
    /// The store's DSN without the store proxy.
    pub direct_store_dsn: String,
}

/// `dsn` with its `host:port` replaced by `addr`.
pub fn dsn_via(dsn: &str, addr: SocketAddr) -> String {
    let (scheme_user, rest) = dsn.split_once('@').expect("dsn has user@host");
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    format!("{scheme_user}@{addr}{path}")
}

async fn proxy_to(upstream: SocketAddr) -> FaultProxy {
    FaultProxy::start("127.0.0.1:0".parse().unwrap(), upstream).await.expect("start a fault proxy")
}

/// Region names of the test topology.
pub const REGIONS: [&str; 3] = ["primary", "standby", "dr"];

/// Starts an orchestrator over three fresh region apps.
pub async fn spawn_app(spec: Spec) -> TestApp {
    spawn_app_with(spec, AppOptions::default()).await
}

/// Starts an orchestrator over three fresh region apps, built with `opts` (e.g. faults to inject).
pub async fn spawn_app_with(spec: Spec, opts: AppOptions) -> TestApp {
    init_tracing();
    let n = unique();
    let mut apps = Vec::new();
    let mut regions = Vec::new();
    let mut addresses = Vec::new();
    let mut proxies = Vec::new();
    let mut pg_proxies = Vec::new();
    for (i, name) in REGIONS.iter().enumerate() {
        let app = AppStub::start(name, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        // With fault proxies, every check of the region goes through its proxy.
        let (app_url, tcp_target) = if spec.fault_proxies {
            let p = proxy_to(app.addr()).await;
            let r = (format!("http://{}/health", p.addr()), p.addr().to_string());
            proxies.push(p);
            r
        } else {
            (app.health_url(), app.addr().to_string())
        };
        let mut pg_dsn = spec.region_dsns.as_ref().map(|d| d[i].clone());
        if let (true, Some(dsn)) = (spec.fault_proxies, &pg_dsn) {
            let upstream: SocketAddr =
                dsn.split_once('@').unwrap().1.split('/').next().unwrap().parse().expect("dsn host:port");
            let p = proxy_to(upstream).await;
            pg_dsn = Some(dsn_via(dsn, p.addr()));
            pg_proxies.push(p);
        }
        // DNS answers only need to be distinct; nothing listens there.
        let address = IpAddr::V4(Ipv4Addr::new(127, 1 + (n / 250 % 200) as u8, (n % 250) as u8, 11 + i as u8));
        regions.push(RegionSpec {
            name: name.to_string(),
            role: name.to_string(),
            weight: [80, 20, 0][i],
            address,
            app_url,
            tcp_target,
            pg_dsn,
            pg_expect_recovery: spec.region_dsns.as_ref().map(|_| i != 0),
            pg_extra: spec.pg_extra[i].clone(),
            extra_checks: spec.region_checks[i].clone(),
        });
        addresses.push(address);
        apps.push(app);
    }
    let mut store_dsn = match &spec.store_dsn {
        Some(d) => d.clone(),
        None => fresh_database().await,
    };
    let direct_store_dsn = store_dsn.clone();
    let mut store_proxy = None;
    if spec.store_proxy {
        let upstream: SocketAddr =
            store_dsn.split_once('@').unwrap().1.split('/').next().unwrap().parse().expect("store dsn host:port");
        let p = proxy_to(upstream).await;
        store_dsn = dsn_via(&store_dsn, p.addr());
        store_proxy = Some(p);
    }
    let mut params = ConfigParams::new(store_dsn, "127.0.0.1:0".parse().unwrap(), regions);
    params.interval = spec.interval;
    params.fast_interval = spec.fast_interval;
    params.timeout = spec.timeout;
    params.degraded_latency = spec.degraded_latency;
    params.fall = spec.fall;
    params.rise = spec.rise;
    params.dwell = spec.dwell;
    params.failback = spec.failback.into();
    params.failback_hold = spec.failback_hold;
    params.failback_step = spec.failback_step;
    params.attempts = spec.attempts;
    params.limits = spec.limits;
    params.public_reads = spec.public_reads;
    params.audit_retention = spec.audit_retention;
    params.tls = spec.tls.clone();
    let zone = format!("t{n}.test.");
    let record = format!("app.{zone}");
    let mut key = String::new();
    let mut provider_faults = None;
    if spec.powerdns {
        let pdns = pdns().await;
        pdns.create_zone(&zone).await.unwrap();
        key = pdns.api_key().to_string();
        let mut api_url = pdns.api_url().trim_end_matches("/api/v1").to_string();
        if spec.provider_proxy {
            let http = HttpFault::start("127.0.0.1:0".parse().unwrap(), &api_url).await.unwrap();
            let tcp = proxy_to(http.addr()).await;
            api_url = format!("http://{}", tcp.addr());
            provider_faults = Some((http, tcp));
        }
        params.powerdns = Some(PowerDnsSpec {
            api_url,
            api_key_env: PDNS_KEY_ENV.into(),
            zone: zone.clone(),
            record: record.clone(),
            dns_addr: pdns.dns_addr(),
        });
    }
    let plan_file = std::env::temp_dir().join(format!("fo-test-plan-{}-{n}.json", std::process::id()));
    params.file = Some(plan_file.clone());
    let tokens = LabTokens::generate();
    if spec.auth {
        let path = std::env::temp_dir().join(format!("fo-test-tokens-{}-{n}", std::process::id()));
        std::fs::write(&path, tokens.file_text()).unwrap();
        params.tokens_file = Some(path);
    }
    params.extra = spec.extra.clone();
    let spill_dir = std::env::temp_dir().join(format!("fo-test-spill-{}-{n}", std::process::id()));
    params.spill_dir = Some(spill_dir.clone());
    let text = params.to_toml();
    let config =
        Config::parse(&text, "test", &|k| (k == PDNS_KEY_ENV).then(|| key.clone())).expect("valid test config");
    let app = App::build(config.clone(), opts).await.expect("build app");
    let addr = app.addr();
    let status = app.status();
    let store = app.store();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run(cancel.clone()));
    TestApp {
        addr,
        status,
        cancel,
        task,
        store,
        apps,
        addresses,
        record,
        http: reqwest::Client::new(),
        config,
        plan_file,
        spill_dir,
        proxies,
        pg_proxies,
        store_proxy,
        provider_faults,
        config_text: text,
        pdns_key: key,
        direct_store_dsn,
        tokens,
    }
}

impl TestApp {
    /// Waits until `pred` holds on the status, or panics with the last status after `timeout`.
    pub async fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Status) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.status.borrow()) {
                return;
            }
            if Instant::now() > deadline {
                let st = self.status.borrow().clone();
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\nweights: {:?}\nreasons: {:?}\nregions: {:?}",
                    st.regions.iter().map(|r| (r.name.to_string(), r.health, r.weight)).collect::<Vec<_>>(),
                    st.acting.reasons,
                    st.regions
                        .iter()
                        .flat_map(|r| r.checks.iter().map(|c| (c.name.clone(), c.health, c.last_error.clone())))
                        .collect::<Vec<_>>()
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), self.status.changed()).await;
        }
    }

    /// Waits until the current plan has these weights and every provider verified it.
    pub async fn wait_for_verified(&mut self, want: &Weights, timeout: Duration) {
        let want = want.clone();
        self.wait_for(&format!("verified plan {want}"), timeout, move |s| {
            s.plan.as_ref().is_some_and(|p| p.plan.weights == want && p.verified_at.is_some())
        })
        .await;
    }

    /// Current planned weights.
    pub fn weights(&self) -> Weights {
        self.status.borrow().plan.as_ref().map(|p| p.plan.weights.clone()).unwrap_or_default()
    }

    /// GET a path of the API as JSON (with the viewer token), with its status code.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.get_as(path, Some(&self.tokens.viewer)).await
    }

    /// GET a path as JSON with the given token (None: no Authorization header).
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        (code, body)
    }

    /// POST JSON with the operator token.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.post_as(path, body, Some(&self.tokens.operator), None).await
    }

    /// POST JSON with the given token and Idempotency-Key.
    pub async fn post_as(
        &self,
        path: &str,
        body: serde_json::Value,
        token: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.post(format!("http://{}{path}", self.addr)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        (code, body)
    }

    /// Polls a drill until it is finished; returns it with its timeline.
    pub async fn wait_drill_finished(&self, id: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, d) = self.get(&format!("/api/v1/drills/{id}")).await;
            assert_eq!(code, 200, "{d}");
            if d["finished_at"].is_string() {
                return d;
            }
            assert!(Instant::now() < deadline, "drill {id} not finished after {timeout:?}: {d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks PowerDNS `n` times and returns the answers.
    pub async fn dig_many(&self, n: usize) -> Vec<IpAddr> {
        let dns = pdns().await.dns_addr();
        let mut out = Vec::new();
        for _ in 0..n {
            if let Some(a) = fo_lab::lab::dig(dns, &self.record).await.unwrap() {
                out.push(a);
            }
        }
        out
    }

    /// Stops the orchestrator and waits for it.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("shutdown within 20 s").unwrap().unwrap();
        let _ = std::fs::remove_file(&self.plan_file);
        let _ = std::fs::remove_dir_all(&self.spill_dir);
    }
}

/// Weights in order primary, standby, dr.
pub fn w(p: u32, s: u32, d: u32) -> Weights {
    Weights::from_pairs([(RegionName::new("primary"), p), (RegionName::new("standby"), s), (RegionName::new("dr"), d)])
}

/// A plan with these weights at `epoch`, for provider tests.
pub fn plan(epoch: i64, weights: Weights) -> failover_orchestrator::plan::TrafficPlan {
    use failover_orchestrator::plan::{Epoch, PlanId, PlanKind, TrafficPlan};
    TrafficPlan {
        id: PlanId::new(),
        epoch: Epoch(epoch),
        weights,
        kind: PlanKind::Manual,
        reason: "test".into(),
        reasons: vec![],
        inputs: serde_json::Value::Null,
        decided_at: chrono::Utc::now(),
    }
}

/// Region name → address for provider tests (127.0.10.1, .2, .3).
pub fn test_addresses() -> std::collections::BTreeMap<RegionName, IpAddr> {
    REGIONS
        .iter()
        .enumerate()
        .map(|(i, r)| (RegionName::new(*r), IpAddr::V4(Ipv4Addr::new(127, 0, 10, 1 + i as u8))))
        .collect()
}
