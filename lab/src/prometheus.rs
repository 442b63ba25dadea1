//! Debian's `prometheus-node-exporter` and `prometheus` on loopback, for the metric and PromQL
//! checks' tests and benchmarks.
//!
//! node_exporter runs with a few collectors (cpu, meminfo, filesystem, loadavg) and the textfile
//! collector on a directory of its own: a test writes `<name>.prom` there to move a metric
//! (atomically, by rename, as node_exporter's documentation asks). Prometheus scrapes the
//! targets it is given every `scrape_interval` and answers instant queries. Both run in the
//! foreground under [`Supervised`] with their own temporary directory, removed when they stop;
//! neither uses `/etc/prometheus` or the Debian services.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{SpawnOpts, Supervised, free_port, stop_taken, tail_file, unique_temp_dir};

/// The node_exporter binary (Debian's package name for it).
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
/// The Prometheus server binary.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
/// promtool, which comes with the Prometheus package.
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Polls `url` until it answers 2xx, or fails after `timeout` with the log's last lines.
async fn wait_http(url: &str, timeout: Duration, log: &Path, what: &str) -> Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not answer {url} within {timeout:?}; last log lines:\n{}", tail_file(log, 20));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running node_exporter; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct NodeExporter {
    addr: SocketAddr,
    textfiles: PathBuf,
    sup: Option<Supervised>,
}

impl NodeExporter {
    /// Starts node_exporter on a free port of `ip`.
    ///
    /// # Errors
    /// When the binary is missing or the server does not answer within 20 s.
    pub async fn start(ip: IpAddr) -> Result<NodeExporter> {
        if !Path::new(NODE_EXPORTER).is_file() {
            bail!("{NODE_EXPORTER} not found: install prometheus-node-exporter (scripts/install-deps.sh)");
        }
        let dir = unique_temp_dir("node-exporter")?;
        let textfiles = dir.join("textfiles");
        std::fs::create_dir_all(&textfiles).with_context(|| format!("creating {}", textfiles.display()))?;
        let addr = SocketAddr::new(ip, free_port(ip));
        let log = dir.join("node-exporter.log");
        let args = [
            format!("--web.listen-address={addr}"),
            "--collector.disable-defaults".into(),
            "--collector.cpu".into(),
            "--collector.meminfo".into(),
            "--collector.filesystem".into(),
            "--collector.loadavg".into(),
            "--collector.textfile".into(),
            format!("--collector.textfile.directory={}", textfiles.display()),
        ];
        let sup = Supervised::spawn("node-exporter", Path::new(NODE_EXPORTER), &args, SpawnOpts::in_dir(&dir, &log))?;
        let n = NodeExporter { addr, textfiles, sup: Some(sup) };
        if let Err(e) = wait_http(&n.url(), Duration::from_secs(20), &log, "node_exporter").await {
            n.stop().await.ok();
            return Err(e);
        }
        Ok(n)
    }

    /// `http://ip:port/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the textfile-collector file `<name>.prom` to `text` (written aside, then renamed,
    /// so a scrape never reads half a file).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_textfile(&self, name: &str, text: &str) -> Result<()> {
        let tmp = self.textfiles.join(format!(".{name}.prom.tmp"));
        let path = self.textfiles.join(format!("{name}.prom"));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }

    /// Stops the server and removes its directory.
    ///
    /// # Errors
    /// When the supervisor cannot stop it.
    pub async fn stop(mut self) -> Result<()> {
        stop_taken(&mut self.sup, "node_exporter").await
    }
}

/// A running Prometheus server; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct Prometheus {
    addr: SocketAddr,
    sup: Option<Supervised>,
}

impl Prometheus {
    /// Starts Prometheus on a free port of `ip`, scraping `targets` (`host:port`, path
    /// `/metrics`) as job `lab` every `scrape_interval`.
    ///
    /// # Errors
    /// When the binary is missing or the server is not ready within 30 s.
    pub async fn start(ip: IpAddr, targets: &[SocketAddr], scrape_interval: Duration) -> Result<Prometheus> {
        if !Path::new(PROMETHEUS).is_file() {
            bail!("{PROMETHEUS} not found: install prometheus (scripts/install-deps.sh)");
        }
        let dir = unique_temp_dir("prometheus")?;
        let addr = SocketAddr::new(ip, free_port(ip));
        let every = format!("{}ms", scrape_interval.as_millis().max(100));
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let cfg = format!(
            "global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n  evaluation_interval: {every}\n\
             scrape_configs:\n  - job_name: lab\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        let cfg_path = dir.join("prometheus.yml");
        std::fs::write(&cfg_path, cfg).with_context(|| format!("writing {}", cfg_path.display()))?;
        let log = dir.join("prometheus.log");
        let args = [
            format!("--config.file={}", cfg_path.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".into(),
        ];
        let sup = Supervised::spawn("prometheus", Path::new(PROMETHEUS), &args, SpawnOpts::in_dir(&dir, &log))?;
        let p = Prometheus { addr, sup: Some(sup) };
        if let Err(e) = wait_http(&format!("{}/-/ready", p.url()), Duration::from_secs(30), &log, "Prometheus").await {
            p.stop().await.ok();
            return Err(e);
        }
        Ok(p)
    }

    /// `http://ip:port`, the base of its API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and removes its directory.
    ///
    /// # Errors
    /// When the supervisor cannot stop it.
    pub async fn stop(mut self) -> Result<()> {
        stop_taken(&mut self.sup, "Prometheus").await
    }
}
