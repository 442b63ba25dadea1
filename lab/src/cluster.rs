//! The three-orchestrator lab: one orchestrator process per region coordinated through a
//! three-member etcd cluster, with a fault proxy on every network path a test wants to cut.
//!
//! It starts the [`Lab`] (store, primary → standby → DR PostgreSQL with real replication, one
//! app per region, PowerDNS), an [`EtcdCluster`] with one member per region, one store database
//! per orchestrator on the lab's store cluster (`failover_<vantage>`), and then, for every
//! vantage V:
//!
//! | link | proxied | faulted by |
//! | --- | --- | --- |
//! | V → region R's app (infra TCP and app HTTP checks) | one [`FaultProxy`] per (V, R) | [`Cluster::fault_path`], [`Cluster::isolate`] |
//! | V → region R's database (middleware check, lag) | one [`FaultProxy`] per (V, R) | [`Cluster::fault_path`], [`Cluster::isolate`] |
//! | V → etcd member M (`[coordination] endpoints`) | one [`FaultProxy`] per (V, M) | [`Cluster::isolate`], [`Cluster::fault_etcd_link`] |
//! | V → its store, V → PowerDNS | no | — |
//! | etcd member ↔ member, database replication | no | kill the member or the database |
//!
//! So one vantage's view of one region can be degraded while the others see it healthy, and an
//! isolated orchestrator still reaches the provider: the case where only fencing keeps a stale
//! leader from writing.
//!
//! Each orchestrator is a real `failover-orchestrator serve --config FILE --region V` process
//! under [`Supervised`], with its configuration, tokens and log in the cluster's own temporary
//! directory. That directory is removed by [`Cluster::stop`], and by a supervised keeper process
//! when the cluster is dropped or this process dies; every server dies with its handle too.
//!
//! This module must not: link the orchestrator in-process (three processes are the point),
//! assert anything about timings, or leave processes or directories behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sqlx::Connection as _;

use crate::etcd::{EtcdCluster, EtcdMemberSpec};
use crate::faultproxy::{FaultProxy, Faults};
use crate::lab::{Lab, LabTuning, PDNS_KEY_ENV, RECORD, dig};
use crate::process::{SpawnOpts, StopSignal, Supervised, free_port, send_signal, tail_file, unique_temp_dir};
use crate::topology::{ConfigParams, CoordinationSpec, PowerDnsSpec, RegionSpec};

/// The lab's regions (= vantages = etcd members): name, role and normal weight, primary first.
pub const REGIONS: [(&str, &str, u32); 3] = [("primary", "primary", 80), ("standby", "standby", 20), ("dr", "dr", 0)];

/// How long [`Cluster::start_orchestrator`] waits for an orchestrator's API to answer.
pub const API_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of an orchestrator's log quoted when a wait fails.
const LOG_TAIL: usize = 30;

/// Pause between polls.
const POLL: Duration = Duration::from_millis(100);

/// What a [`Cluster`] varies on.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `failover-orchestrator` binary to run.
    pub orchestrator_bin: PathBuf,
    /// Probe interval of every check.
    pub interval: Duration,
    /// Consecutive failures before a check is down.
    pub fall: u32,
    /// Policy timings (dwell, failback); `probe_targets` is ignored (every vantage probes
    /// through its own proxies).
    pub tuning: LabTuning,
    /// `[coordination] lease_ttl`.
    pub lease_ttl: Duration,
    /// `policy.quorum`.
    pub quorum: u32,
    /// API listen addresses of the primary, standby and DR orchestrators (None: free ports).
    pub listen: Option<[SocketAddr; 3]>,
    /// Run the orchestrators with `FO_LOG_JSON=true`.
    pub log_json: bool,
}

impl ClusterOptions {
    /// Lab defaults: 500 ms probes, fall 3, lease TTL 2 s, quorum 2, free API ports.
    pub fn new(orchestrator_bin: PathBuf) -> Self {
        Self {
            orchestrator_bin,
            interval: Duration::from_millis(500),
            fall: 3,
            tuning: LabTuning::default(),
            lease_ttl: Duration::from_secs(2),
            quorum: 2,
            listen: None,
            log_json: false,
        }
    }
}

/// One plan as recorded in an orchestrator's store (table `plans`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    /// Plan id (uuid text).
    pub id: String,
    /// Its fencing epoch.
    pub epoch: i64,
    /// Region → weight.
    pub weights: Value,
    /// The vantage that decided it.
    pub vantage: String,
    /// Whether it was verified as applied.
    pub verified: bool,
}

/// What the provider says wrote its record last: the rrset comment `epoch=N plan=ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMark {
    /// The epoch of the plan last written.
    pub epoch: i64,
    /// Its id.
    pub plan: String,
}

/// One orchestrator process.
struct Orchestrator {
    vantage: String,
    api: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    /// `None` while stopped.
    sup: Option<Supervised>,
}

/// The proxies on one vantage's links, keyed by region (probe paths) or member (etcd).
#[derive(Default)]
struct Links {
    app: BTreeMap<String, FaultProxy>,
    db: BTreeMap<String, FaultProxy>,
    etcd: BTreeMap<String, FaultProxy>,
}

impl Links {
    /// Every proxy of this vantage except those to the etcd members.
    fn probe_paths(&self) -> impl Iterator<Item = &FaultProxy> {
        self.app.values().chain(self.db.values())
    }

    async fn stop(self) {
        for p in self.app.into_values().chain(self.db.into_values()).chain(self.etcd.into_values()) {
            p.stop().await;
        }
    }
}

/// The three-orchestrator lab (see the module documentation).
pub struct Cluster {
    lab: Lab,
    etcd: EtcdCluster,
    /// Keyed by vantage.
    links: BTreeMap<String, Links>,
    orchestrators: Vec<Orchestrator>,
    opts: ClusterOptions,
    dir: PathBuf,
    /// A sleeping process whose supervisor removes `dir` when the cluster goes away.
    keeper: Option<Supervised>,
    http: reqwest::Client,
}

impl Cluster {
    /// Starts the lab, etcd, the proxies and the three orchestrators, and waits until every
    /// orchestrator's API answers (not for a leader: see [`Cluster::wait_leader`]).
    ///
    /// # Errors
    /// When a server or an orchestrator does not start (an orchestrator's error quotes its log);
    /// everything started so far is stopped first.
    pub async fn start(opts: ClusterOptions) -> Result<Cluster> {
        if !opts.orchestrator_bin.is_file() {
            bail!(
                "orchestrator binary {} not found (cargo build --bin failover-orchestrator)",
                opts.orchestrator_bin.display()
            );
        }
        let tuning = LabTuning { probe_targets: None, ..opts.tuning.clone() };
        let lab = Lab::start_tuned(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), opts.interval, opts.fall, tuning)
            .await
            .context("starting the lab")?;
        let specs: Vec<EtcdMemberSpec> = lab.regions.iter().map(|r| EtcdMemberSpec::new(&r.name, r.ip)).collect();
        let etcd = match EtcdCluster::start(&specs).await {
            Ok(etcd) => etcd,
            Err(e) => {
                lab.stop().await;
                return Err(e);
            }
        };
        let dir = match unique_temp_dir("cluster") {
            Ok(dir) => dir,
            Err(e) => {
                etcd.stop().await;
                lab.stop().await;
                return Err(e);
            }
        };
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(3)).build()?;
        let mut cluster =
            Cluster { lab, etcd, links: BTreeMap::new(), orchestrators: Vec::new(), opts, dir, keeper: None, http };
        if let Err(e) = cluster.start_rest().await {
            cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn start_rest(&mut self) -> Result<()> {
        self.keeper = Some(Supervised::spawn(
            "cluster-dir",
            Path::new("/bin/sleep"),
            &["infinity".to_string()],
            SpawnOpts { cleanup_dir: Some(self.dir.clone()), ..SpawnOpts::default() },
        )?);
        let tokens_file = self.dir.join("tokens");
        std::fs::write(&tokens_file, self.lab.tokens.file_text())?;
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let listen: [SocketAddr; 3] = match self.opts.listen {
            Some(l) => l,
            None => std::array::from_fn(|_| SocketAddr::new(lo, free_port(lo))),
        };
        for (i, (vantage, _, _)) in REGIONS.iter().enumerate() {
            let db = store_database(vantage);
            self.lab.store.create_database(&db).await?;
            let links = self.start_links().await?;
            let params = self.vantage_params(vantage, listen[i], &links, &tokens_file);
            self.links.insert(vantage.to_string(), links);
            let text = params.to_toml();
            let key = self.lab.pdns.api_key().to_string();
            failover_orchestrator::config::Config::parse(&text, vantage, &|k| (k == PDNS_KEY_ENV).then(|| key.clone()))
                .with_context(|| format!("the generated configuration of the {vantage} orchestrator is invalid"))?;
            let config = self.dir.join(format!("{vantage}.toml"));
            std::fs::write(&config, text)?;
            let log = self.dir.join(format!("orchestrator-{vantage}.log"));
            self.orchestrators.push(Orchestrator {
                vantage: vantage.to_string(),
                api: listen[i],
                config,
                log,
                sup: None,
            });
        }
        for (vantage, _, _) in REGIONS {
            self.start_orchestrator(vantage).await?;
        }
        Ok(())
    }

    /// Starts one vantage's proxies: to every region's app and database, and to every etcd member.
    async fn start_links(&self) -> Result<Links> {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut links = Links::default();
        for r in &self.lab.regions {
            links.app.insert(r.name.clone(), FaultProxy::start(any, r.app.addr()).await?);
            if let Some(pg) = &r.pg {
                links.db.insert(r.name.clone(), FaultProxy::start(any, SocketAddr::new(pg.ip(), pg.port())).await?);
            }
        }
        for m in self.etcd.members() {
            links.etcd.insert(m.name().to_string(), FaultProxy::start(any, m.client_addr()).await?);
        }
        Ok(links)
    }

    /// The configuration of the orchestrator in `vantage`: the lab's, with every probe target and
    /// etcd endpoint replaced by that vantage's proxies.
    fn vantage_params(&self, vantage: &str, listen: SocketAddr, links: &Links, tokens: &Path) -> ConfigParams {
        let specs = REGIONS
            .iter()
            .zip(&self.lab.regions)
            .map(|((name, role, weight), r)| {
                let app = links.app[*name].addr();
                RegionSpec {
                    name: name.to_string(),
                    role: role.to_string(),
                    weight: *weight,
                    address: r.ip,
                    app_url: format!("http://{app}/health"),
                    tcp_target: app.to_string(),
                    pg_dsn: links.db.get(*name).map(|p| format!("postgres://postgres@{}/postgres", p.addr())),
                    pg_expect_recovery: r.pg.as_ref().map(|_| *name != "primary"),
                    pg_extra: Vec::new(),
                    extra_checks: Vec::new(),
                }
            })
            .collect();
        let store = self.lab.store.dsn_db(&store_database(vantage));
        let mut p = ConfigParams::new(store, listen, specs);
        p.vantage = vantage.to_string();
        p.set_probe_timing(self.opts.interval, self.opts.fall);
        p.dwell = self.opts.tuning.dwell;
        p.failback_hold = self.opts.tuning.failback_hold;
        p.failback_step = self.opts.tuning.failback_step;
        p.powerdns = Some(PowerDnsSpec {
            api_url: self.lab.pdns.api_url().trim_end_matches("/api/v1").to_string(),
            api_key_env: PDNS_KEY_ENV.into(),
            zone: record_zone().into(),
            record: RECORD.into(),
            dns_addr: self.lab.pdns.dns_addr(),
        });
        p.tokens_file = Some(tokens.to_path_buf());
        p.spill_dir = Some(self.dir.join(format!("spill-{vantage}")));
        p.public_reads = self.opts.tuning.public_reads;
        p.quorum = Some(self.opts.quorum);
        p.coordination = Some(CoordinationSpec {
            endpoints: links.etcd.values().map(|p| format!("http://{}", p.addr())).collect(),
            lease_ttl: self.opts.lease_ttl,
            prefix: format!("/fo-lab-{}", std::process::id()),
        });
        p
    }

    /// The lab underneath (apps, databases, PowerDNS, tokens).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab underneath, mutable (e.g. to kill a database).
    pub fn lab_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }

    /// The etcd cluster.
    pub fn etcd(&self) -> &EtcdCluster {
        &self.etcd
    }

    /// The vantages, primary first.
    pub fn vantages(&self) -> Vec<String> {
        self.orchestrators.iter().map(|o| o.vantage.clone()).collect()
    }

    /// `http://IP:PORT` of `vantage`'s orchestrator API and dashboard.
    ///
    /// # Errors
    /// When there is no such vantage.
    pub fn url(&self, vantage: &str) -> Result<String> {
        Ok(format!("http://{}", self.orchestrator(vantage)?.api))
    }

    /// Path of `vantage`'s configuration file.
    ///
    /// # Errors
    /// When there is no such vantage.
    pub fn config_path(&self, vantage: &str) -> Result<PathBuf> {
        Ok(self.orchestrator(vantage)?.config.clone())
    }

    /// Path of `vantage`'s orchestrator log.
    ///
    /// # Errors
    /// When there is no such vantage.
    pub fn log_path(&self, vantage: &str) -> Result<PathBuf> {
        Ok(self.orchestrator(vantage)?.log.clone())
    }

    /// `GET /api/v1/status` of `vantage`'s orchestrator.
    ///
    /// # Errors
    /// When there is no such vantage, or it does not answer 200 with JSON.
    pub async fn status(&self, vantage: &str) -> Result<Value> {
        let url = format!("{}/api/v1/status", self.url(vantage)?);
        let resp = self.http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        let code = resp.status();
        if !code.is_success() {
            bail!("GET {url}: {code}");
        }
        resp.json().await.with_context(|| format!("parsing GET {url}"))
    }

    /// POSTs `body` to `path` of `vantage`'s API with the operator token; returns the status code
    /// and the JSON body (null when there is none).
    ///
    /// # Errors
    /// When there is no such vantage or it does not answer.
    pub async fn post(&self, vantage: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.url(vantage)?);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.lab.tokens.operator)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let code = resp.status().as_u16();
        Ok((code, resp.json().await.unwrap_or(Value::Null)))
    }

    /// GETs `path` of `vantage`'s API with the operator token; returns the status code and the
    /// JSON body (null when there is none).
    ///
    /// # Errors
    /// When there is no such vantage or it does not answer.
    pub async fn get(&self, vantage: &str, path: &str) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.url(vantage)?);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.lab.tokens.operator)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let code = resp.status().as_u16();
        Ok((code, resp.json().await.unwrap_or(Value::Null)))
    }

    /// The vantages whose orchestrator answers and says it leads (`.leadership.leader`).
    pub async fn leaders(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.orchestrators {
            if o.sup.is_none() {
                continue;
            }
            if let Ok(s) = self.status(&o.vantage).await
                && s["leadership"]["leader"].as_bool() == Some(true)
            {
                out.push(o.vantage.clone());
            }
        }
        out
    }

    /// The leader, when exactly one orchestrator says it leads.
    pub async fn leader(&self) -> Option<String> {
        let mut leaders = self.leaders().await;
        (leaders.len() == 1).then(|| leaders.remove(0))
    }

    /// Waits until exactly one orchestrator says it leads, and returns it.
    ///
    /// # Errors
    /// After `timeout`, with every orchestrator's leadership and the tail of its log.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if Instant::now() >= deadline {
                bail!("no single leader within {timeout:?}\n{}", self.describe().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `pred` holds for `vantage`'s status.
    ///
    /// # Errors
    /// After `timeout`, with that orchestrator's last status and the tail of its log.
    pub async fn wait_status(&self, vantage: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.status(vantage).await;
            if let Ok(s) = &last
                && pred(s)
            {
                return Ok(s.clone());
            }
            if Instant::now() >= deadline {
                let shown = match last {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("{e:#}"),
                };
                bail!(
                    "the {vantage} orchestrator's status did not reach the condition within {timeout:?}; last: {shown}\nlog:\n{}",
                    self.log_tail(vantage)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every running orchestrator's API answers.
    ///
    /// # Errors
    /// After `timeout`.
    pub async fn wait_all_answer(&self, timeout: Duration) -> Result<()> {
        for o in self.orchestrators.iter().filter(|o| o.sup.is_some()) {
            self.wait_status(&o.vantage, timeout, |_| true).await?;
        }
        Ok(())
    }

    /// Every orchestrator's leadership (or why it cannot say) and the tail of its log, for
    /// failure messages.
    pub async fn describe(&self) -> String {
        let mut out = String::new();
        for o in &self.orchestrators {
            let state = match (&o.sup, self.status(&o.vantage).await) {
                (None, _) => "stopped".to_string(),
                (Some(_), Ok(s)) => format!("leadership {}", s["leadership"]),
                (Some(_), Err(e)) => format!("no status: {e:#}"),
            };
            out.push_str(&format!("--- {} ({state}), log:\n{}\n", o.vantage, self.log_tail(&o.vantage)));
        }
        out
    }

    /// The last lines of `vantage`'s orchestrator log.
    pub fn log_tail(&self, vantage: &str) -> String {
        match self.orchestrator(vantage) {
            Ok(o) => tail_file(&o.log, LOG_TAIL),
            Err(e) => e.to_string(),
        }
    }

    /// Kills `vantage`'s orchestrator with `SIGKILL` (a crash).
    ///
    /// # Errors
    /// When there is no such vantage.
    pub fn kill_orchestrator(&mut self, vantage: &str) -> Result<()> {
        let o = self.orchestrator_mut(vantage)?;
        tracing::info!(vantage, "killing orchestrator (SIGKILL)");
        if let Some(sup) = o.sup.as_mut() {
            sup.kill_now();
        }
        Ok(())
    }

    /// Freezes `vantage`'s orchestrator (`SIGSTOP`): a process stall (a long GC pause, a
    /// frozen VM) during which its lease runs out. Undone by [`Cluster::resume_orchestrator`].
    ///
    /// # Errors
    /// When there is no such vantage, it is not running, or `kill` fails.
    pub fn pause_orchestrator(&mut self, vantage: &str) -> Result<()> {
        self.signal_orchestrator(vantage, "STOP")
    }

    /// Lets an orchestrator frozen by [`Cluster::pause_orchestrator`] run again (`SIGCONT`).
    ///
    /// # Errors
    /// When there is no such vantage, it is not running, or `kill` fails.
    pub fn resume_orchestrator(&mut self, vantage: &str) -> Result<()> {
        self.signal_orchestrator(vantage, "CONT")
    }

    fn signal_orchestrator(&self, vantage: &str, sig: &str) -> Result<()> {
        let o = self.orchestrator(vantage)?;
        let pid =
            o.sup.as_ref().and_then(Supervised::server_pid).with_context(|| format!("{vantage} is not running"))?;
        tracing::info!(vantage, signal = sig, "signalling orchestrator");
        send_signal(sig, pid)
    }

    /// Stops `vantage`'s orchestrator gracefully (`SIGTERM`) and waits for it to exit.
    ///
    /// # Errors
    /// When there is no such vantage or it cannot be stopped.
    pub async fn stop_orchestrator(&mut self, vantage: &str) -> Result<()> {
        let o = self.orchestrator_mut(vantage)?;
        if let Some(sup) = o.sup.take() {
            // A paused one would not act on SIGTERM.
            if let Some(pid) = sup.server_pid() {
                let _ = send_signal("CONT", pid);
            }
            sup.stop().await.with_context(|| format!("stopping the {vantage} orchestrator"))?;
        }
        Ok(())
    }

    /// Starts `vantage`'s orchestrator (again: same configuration and store; stopping a running
    /// one first) and waits until its API answers.
    ///
    /// # Errors
    /// When there is no such vantage, or its API does not answer within [`API_READY_TIMEOUT`]
    /// (the error quotes its log).
    pub async fn start_orchestrator(&mut self, vantage: &str) -> Result<()> {
        self.stop_orchestrator(vantage).await?;
        let key = self.lab.pdns.api_key().to_string();
        let store = self.lab.store.dsn_db(&store_database(vantage));
        let bin = self.opts.orchestrator_bin.clone();
        let log_json = self.opts.log_json;
        let o = self.orchestrator_mut(vantage)?;
        let mut env = vec![
            (PDNS_KEY_ENV.to_string(), key),
            // Explicit, so that a value inherited from the caller's environment cannot win.
            ("FO_REGION".to_string(), vantage.to_string()),
            ("FO_STORE_DSN".to_string(), store),
        ];
        if log_json {
            env.push(("FO_LOG_JSON".to_string(), "true".to_string()));
        }
        let args: Vec<String> = vec![
            "serve".into(),
            "--config".into(),
            o.config.to_string_lossy().into_owned(),
            "--region".into(),
            vantage.to_string(),
        ];
        let cwd = o.config.parent().map(Path::to_path_buf);
        let sup = Supervised::spawn(
            &format!("orchestrator-{vantage}"),
            &bin,
            &args,
            SpawnOpts {
                stop_signal: StopSignal::Term,
                log_file: Some(o.log.clone()),
                env,
                cwd,
                ..SpawnOpts::default()
            },
        )?;
        o.sup = Some(sup);
        let deadline = Instant::now() + API_READY_TIMEOUT;
        loop {
            if self.status(vantage).await.is_ok() {
                return Ok(());
            }
            let o = self.orchestrator_mut(vantage)?;
            let exited = !o.sup.as_mut().is_some_and(Supervised::is_running);
            if exited || Instant::now() >= deadline {
                let why = if exited { "exited" } else { "did not answer in time" };
                bail!("the {vantage} orchestrator {why}; last log lines:\n{}", self.log_tail(vantage));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Cuts `vantage` off from everything but its store and the provider: its probe paths to
    /// every region and its links to every etcd member are blackholed (existing connections
    /// stall, new ones are never answered).
    ///
    /// # Errors
    /// When there is no such vantage.
    pub fn isolate(&self, vantage: &str) -> Result<()> {
        let links = self.links(vantage)?;
        for p in links.probe_paths().chain(links.etcd.values()) {
            p.set(Faults { blackhole: true, ..Faults::default() });
        }
        Ok(())
    }

    /// Clears every fault on `vantage`'s links (undoes [`Cluster::isolate`], [`Cluster::fault_path`]
    /// and [`Cluster::fault_etcd_link`]).
    ///
    /// # Errors
    /// When there is no such vantage.
    pub fn heal(&self, vantage: &str) -> Result<()> {
        let links = self.links(vantage)?;
        for p in links.probe_paths().chain(links.etcd.values()) {
            p.clear();
        }
        Ok(())
    }

    /// Puts `faults` on `vantage`'s network path to `region`: both its app (TCP and HTTP checks)
    /// and its database (middleware check and lag).
    ///
    /// # Errors
    /// When there is no such vantage or region.
    pub fn fault_path(&self, vantage: &str, region: &str, faults: Faults) -> Result<()> {
        let links = self.links(vantage)?;
        let app = links.app.get(region).with_context(|| format!("no region named `{region}`"))?;
        app.set(faults.clone());
        if let Some(db) = links.db.get(region) {
            db.set(faults);
        }
        Ok(())
    }

    /// Removes the faults on `vantage`'s path to `region`.
    ///
    /// # Errors
    /// When there is no such vantage or region.
    pub fn clear_path(&self, vantage: &str, region: &str) -> Result<()> {
        self.fault_path(vantage, region, Faults::default())
    }

    /// Puts `faults` on `vantage`'s client link to etcd member `member`.
    ///
    /// # Errors
    /// When there is no such vantage or member.
    pub fn fault_etcd_link(&self, vantage: &str, member: &str, faults: Faults) -> Result<()> {
        let links = self.links(vantage)?;
        links.etcd.get(member).with_context(|| format!("no etcd member named `{member}`"))?.set(faults);
        Ok(())
    }

    /// Kills etcd member `member` with `SIGKILL`.
    ///
    /// # Errors
    /// When there is no such member.
    pub fn kill_etcd(&mut self, member: &str) -> Result<()> {
        self.etcd.kill(member)
    }

    /// Starts etcd member `member` again on its own data and waits until it is healthy (which
    /// needs a majority of members running).
    ///
    /// # Errors
    /// When there is no such member or it does not become healthy within 30 s.
    pub async fn restart_etcd(&mut self, member: &str) -> Result<()> {
        self.etcd.restart(member).await?;
        self.etcd.wait_healthy(member, crate::etcd::READY_TIMEOUT).await
    }

    /// Freezes etcd member `member` (`SIGSTOP`).
    ///
    /// # Errors
    /// When there is no such member or it is not running.
    pub fn pause_etcd(&mut self, member: &str) -> Result<()> {
        self.etcd.pause(member)
    }

    /// Lets a frozen etcd member run again (`SIGCONT`).
    ///
    /// # Errors
    /// When there is no such member.
    pub fn resume_etcd(&mut self, member: &str) -> Result<()> {
        self.etcd.resume(member)
    }

    /// Makes `region`'s app answer 503 to every vantage.
    ///
    /// # Errors
    /// When there is no such region.
    pub fn break_app(&mut self, region: &str) -> Result<()> {
        self.lab_region(region)?.app.break_health();
        Ok(())
    }

    /// Makes `region`'s app healthy (and listening) again.
    ///
    /// # Errors
    /// When there is no such region or its app cannot listen again.
    pub async fn heal_app(&mut self, region: &str) -> Result<()> {
        self.lab_region(region)?.app.restore().await
    }

    /// The address PowerDNS answers for the lab's record right now (one `dig`).
    ///
    /// # Errors
    /// When `dig` fails.
    pub async fn powerdns_answer(&self) -> Result<Option<IpAddr>> {
        dig(self.lab.pdns.dns_addr(), RECORD).await
    }

    /// The region whose address is `ip`.
    pub fn region_of(&self, ip: IpAddr) -> Option<&str> {
        self.lab.regions.iter().find(|r| r.ip == ip).map(|r| r.name.as_str())
    }

    /// The epoch and plan id on the lab record's rrset comment in PowerDNS (what the provider
    /// was last written with), None before any write.
    ///
    /// # Errors
    /// When the PowerDNS API does not answer.
    pub async fn powerdns_mark(&self) -> Result<Option<ProviderMark>> {
        let zone = self
            .lab
            .pdns
            .api(reqwest::Method::GET, &format!("/servers/localhost/zones/{}", record_zone()), None)
            .await?;
        Ok(mark_of(&zone))
    }

    /// The epoch on the lab record in PowerDNS, None before any write.
    ///
    /// # Errors
    /// As [`Cluster::powerdns_mark`].
    pub async fn powerdns_epoch(&self) -> Result<Option<i64>> {
        Ok(self.powerdns_mark().await?.map(|m| m.epoch))
    }

    /// Every plan recorded in `vantage`'s store, oldest first.
    ///
    /// # Errors
    /// When there is no such vantage or its store database cannot be read.
    pub async fn plans_in_store(&self, vantage: &str) -> Result<Vec<StoredPlan>> {
        self.orchestrator(vantage)?;
        let dsn = self.lab.store.dsn_db(&store_database(vantage));
        let mut conn = sqlx::PgConnection::connect(&dsn)
            .await
            .with_context(|| format!("connecting to the {vantage} orchestrator's store"))?;
        let rows: Vec<(String, i64, Value, String, bool)> = sqlx::query_as(
            "SELECT id::text, epoch, weights, vantage, verified_at IS NOT NULL FROM plans ORDER BY decided_at, epoch",
        )
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("reading the plans in the {vantage} orchestrator's store"))?;
        conn.close().await.ok();
        Ok(rows
            .into_iter()
            .map(|(id, epoch, weights, vantage, verified)| StoredPlan { id, epoch, weights, vantage, verified })
            .collect())
    }

    /// Stops the orchestrators (gracefully, all at once), the proxies, etcd and the lab, and
    /// removes the cluster's directory.
    pub async fn stop(mut self) {
        let mut stopping = tokio::task::JoinSet::new();
        for o in &mut self.orchestrators {
            if let Some(sup) = o.sup.take() {
                if let Some(pid) = sup.server_pid() {
                    let _ = send_signal("CONT", pid);
                }
                stopping.spawn(sup.stop());
            }
        }
        while let Some(done) = stopping.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "stopping an orchestrator");
            }
        }
        for links in std::mem::take(&mut self.links).into_values() {
            links.stop().await;
        }
        self.etcd.stop().await;
        self.lab.stop().await;
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn orchestrator(&self, vantage: &str) -> Result<&Orchestrator> {
        self.orchestrators
            .iter()
            .find(|o| o.vantage == vantage)
            .with_context(|| format!("no vantage named `{vantage}`"))
    }

    fn orchestrator_mut(&mut self, vantage: &str) -> Result<&mut Orchestrator> {
        self.orchestrators
            .iter_mut()
            .find(|o| o.vantage == vantage)
            .with_context(|| format!("no vantage named `{vantage}`"))
    }

    fn links(&self, vantage: &str) -> Result<&Links> {
        self.links.get(vantage).with_context(|| format!("no vantage named `{vantage}`"))
    }

    fn lab_region(&mut self, region: &str) -> Result<&mut crate::lab::LabRegion> {
        self.lab.region_mut(region).with_context(|| format!("no region named `{region}`"))
    }
}

/// A cluster shared between the `fo-lab` control endpoint and the measurements.
pub type Shared = std::sync::Arc<tokio::sync::Mutex<Cluster>>;

/// One leader takeover, from the SIGKILL of the leader.
#[derive(Debug, Clone)]
pub struct Takeover {
    /// The leader killed.
    pub killed: String,
    /// The orchestrator that leads next.
    pub new_leader: String,
    /// Until its status first says it leads (polled every 50 ms).
    pub elected: Duration,
    /// Until the plan it serves was verified (its `plan.verified_at`, a timestamp).
    pub verified: Duration,
}

/// SIGKILLs the leader `n` times (restarting it after each) and times the takeover: a new
/// leader (with a greater epoch) and the first plan verified after the kill in its status.
///
/// # Errors
/// When there is no leader with a verified plan to start from, or no takeover within 60 s.
pub async fn measure_takeover(cluster: &Shared, n: usize) -> Result<Vec<Takeover>> {
    let limit = Duration::from_secs(60);
    let mut out = Vec::new();
    for _ in 0..n {
        let (killed, old_epoch, killed_at, t0) = {
            let mut c = cluster.lock().await;
            c.wait_all_answer(limit).await?;
            let leader = c.wait_leader(limit).await?;
            let s = c.wait_status(&leader, limit, |s| s["plan"]["verified_at"].is_string()).await?;
            let old_epoch = s["leadership"]["epoch"].as_i64().unwrap_or(i64::MIN);
            let (killed_at, t0) = (std::time::SystemTime::now(), Instant::now());
            c.kill_orchestrator(&leader)?;
            (leader, old_epoch, killed_at, t0)
        };
        let mut elected = None;
        let (new_leader, verified) = 'wait: loop {
            {
                let c = cluster.lock().await;
                for v in c.vantages().into_iter().filter(|v| *v != killed) {
                    let Ok(s) = c.status(&v).await else { continue };
                    let leads = s["leadership"]["leader"].as_bool() == Some(true)
                        && s["leadership"]["epoch"].as_i64().is_some_and(|e| e > old_epoch);
                    if !leads {
                        continue;
                    }
                    elected.get_or_insert(t0.elapsed());
                    let verified_at = s["plan"]["verified_at"].as_str().and_then(|t| humantime::parse_rfc3339(t).ok());
                    if let Some(after) = verified_at.and_then(|at| at.duration_since(killed_at).ok()) {
                        break 'wait (v, after);
                    }
                }
                if t0.elapsed() > limit {
                    bail!(
                        "no takeover within {limit:?} after killing the {killed} orchestrator\n{}",
                        c.describe().await
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        out.push(Takeover { killed: killed.clone(), new_leader, elected: elected.unwrap_or(verified), verified });
        cluster.lock().await.start_orchestrator(&killed).await?;
    }
    Ok(out)
}

/// Breaks the primary's app (every vantage sees it) `n` times and returns each detection-to-flip
/// time: from the break to the first of 8 PowerDNS answers in a row that avoid the primary.
///
/// # Errors
/// When the lab does not return to its normal split within two minutes, or no flip happens
/// within 60 s.
pub async fn measure_flips(cluster: &Shared, n: usize) -> Result<Vec<Duration>> {
    let (dns, primary_ip) = {
        let c = cluster.lock().await;
        (c.lab.pdns.dns_addr(), c.lab.regions[0].ip)
    };
    let mut times = Vec::new();
    for _ in 0..n {
        {
            let c = cluster.lock().await;
            let leader = c.wait_leader(Duration::from_secs(60)).await?;
            c.wait_status(&leader, Duration::from_secs(120), is_normal_split)
                .await
                .context("waiting for the normal split")?;
        }
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 500)).await;
        let t0 = Instant::now();
        cluster.lock().await.break_app(REGIONS[0].0)?;
        let flipped = first_answer_avoiding(dns, primary_ip, t0, Duration::from_secs(60)).await;
        cluster.lock().await.heal_app(REGIONS[0].0).await?;
        times.push(flipped?);
    }
    Ok(times)
}

/// One fault held on one vantage's probe paths to the primary, and what it moved.
#[derive(Debug, Clone)]
pub struct PathFaultRun {
    /// The fault, in words.
    pub fault: &'static str,
    /// How long it was held.
    pub held: Duration,
    /// Times PowerDNS's record was rewritten (a new plan id in its mark) while it was held.
    pub dns_changes: usize,
    /// Plans with other than the normal weights decided (in any store) while it was held.
    pub plans_away: usize,
    /// Status samples (every 500 ms, from the leader) with a quorum note on the primary: the
    /// minority view noticed and explained.
    pub noted: usize,
    /// Samples taken.
    pub samples: usize,
}

/// Scenario a as a measurement: holds each fault of issue 11 on the standby's paths to the
/// primary for `each` (30 % loss; a 3 s blackout every 30 s; 300 ± 200 ms latency), and counts
/// the traffic changes each caused. A healthy primary seen down by one vantage must move nothing.
///
/// # Errors
/// When the lab has no leader with a verified plan to start from.
pub async fn measure_path_faults(cluster: &Shared, each: Duration) -> Result<Vec<PathFaultRun>> {
    let (vantage, region) = ("standby", REGIONS[0].0);
    let loss = Faults { drop_rate: 0.3, ..Faults::default() };
    let blackout = Faults { blackhole: true, ..Faults::default() };
    let latency =
        Faults { latency: Duration::from_millis(100), jitter: Duration::from_millis(400), ..Faults::default() };
    let kinds: [(&'static str, Option<Faults>); 3] = [
        ("30 % connection loss", Some(loss)),
        ("3 s blackout every 30 s", None),
        ("300 ± 200 ms latency", Some(latency)),
    ];
    let mut out = Vec::new();
    for (fault, steady) in kinds {
        let (mark0, before) = {
            let c = cluster.lock().await;
            let leader = c.wait_leader(Duration::from_secs(60)).await?;
            c.wait_status(&leader, Duration::from_secs(120), is_normal_split).await.context("the normal split")?;
            let mut before = BTreeSet::new();
            for v in c.vantages() {
                before.extend(c.plans_in_store(&v).await?.into_iter().map(|p| p.id));
            }
            (c.powerdns_mark().await?, before)
        };
        let t0 = Instant::now();
        if let Some(f) = &steady {
            cluster.lock().await.fault_path(vantage, region, f.clone())?;
        }
        let mut last = mark0.map(|m| m.plan);
        let (mut dns_changes, mut noted, mut samples) = (0, 0, 0);
        while t0.elapsed() < each {
            if steady.is_none() {
                let on = t0.elapsed().as_secs() % 30 < 3;
                let c = cluster.lock().await;
                if on { c.fault_path(vantage, region, blackout.clone())? } else { c.clear_path(vantage, region)? }
            }
            {
                let c = cluster.lock().await;
                if let Ok(Some(m)) = c.powerdns_mark().await
                    && last.as_ref() != Some(&m.plan)
                {
                    dns_changes += 1;
                    last = Some(m.plan);
                }
                if let Some(leader) = c.leader().await
                    && let Ok(st) = c.status(&leader).await
                {
                    samples += 1;
                    noted += usize::from(st["regions"][0]["quorum_note"].is_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let c = cluster.lock().await;
        c.clear_path(vantage, region)?;
        let normal: BTreeMap<&str, u64> = REGIONS.iter().map(|(n, _, w)| (*n, u64::from(*w))).collect();
        let normal = serde_json::to_value(normal)?;
        let mut away = BTreeSet::new();
        for v in c.vantages() {
            for p in c.plans_in_store(&v).await? {
                if !before.contains(&p.id) && p.weights != normal {
                    away.insert(p.id);
                }
            }
        }
        out.push(PathFaultRun { fault, held: t0.elapsed(), dns_changes, plans_away: away.len(), noted, samples });
    }
    Ok(out)
}

/// What coordination costs each orchestrator at rest.
#[derive(Debug, Clone)]
pub struct SteadyCost {
    /// The orchestrator.
    pub vantage: String,
    /// Whether it led during the window.
    pub leader: bool,
    /// etcd requests per second (its `coordination.backend.requests` counter).
    pub etcd_requests_per_s: f64,
    /// CPU (user + system) as a share of one core.
    pub cpu_share: f64,
    /// Resident memory at the end, in KiB.
    pub rss_kib: u64,
}

/// Samples every orchestrator's etcd request counter and CPU time (`/proc/<pid>/stat`) over
/// `window` with nothing failing.
///
/// # Errors
/// When an orchestrator does not answer or its process cannot be read.
pub async fn measure_steady(cluster: &Shared, window: Duration) -> Result<Vec<SteadyCost>> {
    let sample = |c: &Cluster| -> Result<Vec<(String, u32)>> {
        c.vantages()
            .into_iter()
            .map(|v| {
                let pid = c.orchestrator(&v)?.sup.as_ref().and_then(Supervised::server_pid).context("not running")?;
                Ok((v, pid))
            })
            .collect()
    };
    let (pids, before) = {
        let c = cluster.lock().await;
        c.wait_leader(Duration::from_secs(60)).await?;
        let pids = sample(&c)?;
        let mut before = Vec::new();
        for (v, pid) in &pids {
            let st = c.status(v).await?;
            before.push((st["coordination"]["backend"]["requests"].as_u64().unwrap_or(0), cpu_ticks(*pid)?));
        }
        (pids, before)
    };
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let c = cluster.lock().await;
    let secs = t0.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for ((v, pid), (req0, cpu0)) in pids.iter().zip(before) {
        let st = c.status(v).await?;
        let req1 = st["coordination"]["backend"]["requests"].as_u64().unwrap_or(0);
        let cpu1 = cpu_ticks(*pid)?;
        out.push(SteadyCost {
            vantage: v.clone(),
            leader: st["leadership"]["leader"].as_bool() == Some(true),
            etcd_requests_per_s: req1.saturating_sub(req0) as f64 / secs,
            cpu_share: cpu1.saturating_sub(cpu0) as f64 / CLOCK_TICKS_PER_S / secs,
            rss_kib: rss_kib(*pid).unwrap_or(0),
        });
    }
    Ok(out)
}

/// `sysconf(_SC_CLK_TCK)` on Linux.
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).context("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line: 12 and 13 after the name.
    let n = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).context("unreadable /proc stat");
    Ok(n(11)? + n(12)?)
}

/// Resident set of `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Whether a status shows every region at its normal weight under a verified plan.
fn is_normal_split(s: &Value) -> bool {
    s["plan"]["verified_at"].is_string()
        && s["regions"]
            .as_array()
            .is_some_and(|rs| rs.iter().all(|r| r["weight"].is_u64() && r["weight"] == r["normal_weight"]))
}

/// Asks `dns` for the lab record until 8 answers in a row avoid `avoid` (at 80 % weight a false
/// positive needs 0.2^8 ≈ 3e-6 luck) and returns the time from `t0` to the first of them.
async fn first_answer_avoiding(dns: SocketAddr, avoid: IpAddr, t0: Instant, limit: Duration) -> Result<Duration> {
    let mut streak: Option<(Duration, u32)> = None;
    loop {
        let at = t0.elapsed();
        let answer = dig(dns, RECORD).await?;
        streak = match (answer, streak) {
            (Some(ip), Some((first, k))) if ip != avoid => Some((first, k + 1)),
            (Some(ip), None) if ip != avoid => Some((at, 1)),
            _ => None,
        };
        if let Some((first, 8)) = streak {
            return Ok(first);
        }
        if t0.elapsed() > limit {
            bail!("PowerDNS still answers {avoid} {limit:?} after the break");
        }
    }
}

/// The store database of `vantage`'s orchestrator.
pub fn store_database(vantage: &str) -> String {
    format!("failover_{vantage}")
}

/// The zone of the lab's record (`app.lab.test.` → `lab.test.`).
fn record_zone() -> &'static str {
    RECORD.split_once('.').map_or(RECORD, |(_, zone)| zone)
}

/// The `epoch=N plan=ID` comment on the lab record's LUA rrset in a PowerDNS zone document.
fn mark_of(zone: &Value) -> Option<ProviderMark> {
    let rrset = zone["rrsets"].as_array()?.iter().find(|r| {
        r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(RECORD)) && r["type"].as_str() == Some("LUA")
    })?;
    rrset["comments"].as_array()?.iter().filter_map(|c| c["content"].as_str()).find_map(|text| {
        let field = |k: &str| text.split_whitespace().find_map(|kv| kv.strip_prefix(k));
        Some(ProviderMark { epoch: field("epoch=")?.parse().ok()?, plan: field("plan=")?.to_string() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_provider_mark_is_read_from_the_records_comment() {
        let zone = json!({ "rrsets": [
            { "name": "ns1.lab.test.", "type": "A", "comments": [] },
            { "name": "app.lab.test.", "type": "LUA",
              "comments": [{ "content": "epoch=7 plan=0b6f", "account": "failover-orchestrator" }] },
        ]});
        assert_eq!(mark_of(&zone), Some(ProviderMark { epoch: 7, plan: "0b6f".into() }));
    }

    #[test]
    fn a_record_never_written_has_no_mark() {
        assert_eq!(mark_of(&json!({ "rrsets": [{ "name": "app.lab.test.", "type": "LUA", "comments": [] }] })), None);
        assert_eq!(mark_of(&json!({ "rrsets": [] })), None);
    }

    #[test]
    fn verified_at_as_the_product_serialises_it_parses() {
        // chrono's `DateTime<Utc>` serde form, with and without sub-second digits.
        for t in ["2026-12-01T11:33:00.123456789Z", "2026-12-01T11:33:00.120Z", "2026-12-01T11:33:00Z"] {
            assert!(humantime::parse_rfc3339(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn a_normal_split_needs_every_region_at_its_weight_and_a_verified_plan() {
        let status = |w: u64, verified: Value| {
            json!({ "plan": { "verified_at": verified },
                    "regions": [{ "weight": 80, "normal_weight": 80 }, { "weight": w, "normal_weight": 20 }] })
        };
        assert!(is_normal_split(&status(20, json!("2026-12-01T11:33:00Z"))));
        assert!(!is_normal_split(&status(100, json!("2026-12-01T11:33:00Z"))));
        assert!(!is_normal_split(&status(20, Value::Null)));
    }

    #[test]
    fn the_record_zone_drops_the_first_label() {
        assert_eq!(record_zone(), "lab.test.");
    }

    #[test]
    fn a_vantage_configuration_has_quorum_and_coordination() {
        let mut p = ConfigParams::new("postgres://x/failover_dr".into(), "127.0.0.1:1".parse().unwrap(), Vec::new());
        p.vantage = "dr".into();
        p.quorum = Some(2);
        p.coordination = Some(CoordinationSpec {
            endpoints: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            lease_ttl: Duration::from_secs(2),
            prefix: "/fo-lab-1".into(),
        });
        let text = p.to_toml();
        let policy = text.split("[policy]").nth(1).unwrap().split("\n\n").next().unwrap();
        assert!(policy.contains("\nquorum = 2"), "{policy}");
        assert!(text.contains("vantage = \"dr\""), "{text}");
        assert!(
            text.contains(
                "[coordination]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\nlease_ttl = \"2s\"\nprefix = \"/fo-lab-1\"\n"
            ),
            "{text}"
        );
    }
}
