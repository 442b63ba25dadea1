//! A real PowerDNS Authoritative server (gsqlite3 backend, HTTP API, LUA
//! records) on a loopback address, for the local lab.
//!
//! [`PowerDns::start`] creates a temp dir with a fresh sqlite database and a
//! `pdns.conf`, runs `pdns_server --config-dir=DIR` under
//! [`crate::process::Supervised`] (stop signal `SIGTERM`, cleanup dir = the
//! temp dir) and waits until the API answers.  All caches are disabled so
//! changes made through the API are visible to the very next query.
//!
//! This module must not: use the system configuration in `/etc/powerdns`,
//! run the Debian `pdns` service, listen on non-loopback addresses or leave
//! processes or directories behind.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::process::{SpawnOpts, StopSignal, Supervised, free_port, free_port_tcp_udp, tail_file, unique_temp_dir};

/// The server binary.
pub const PDNS_SERVER: &str = "/usr/sbin/pdns_server";

/// How long to wait for the API to answer after start.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Debian's pdns-backend-sqlite3 ships the schema (first match wins;
/// `.gz` variants are decompressed with `zcat`).
const SCHEMA_CANDIDATES: &[&str] = &[
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql.gz",
];

/// A running PowerDNS Authoritative server; dropping it stops the server and
/// deletes its directory.
#[derive(Debug)]
pub struct PowerDns {
    ip: IpAddr,
    dns_port: u16,
    api_port: u16,
    api_key: String,
    dir: PathBuf,
    http: reqwest::Client,
    sup: Option<Supervised>,
}

impl PowerDns {
    /// Starts a server answering DNS (UDP+TCP) and the HTTP API on `ip`
    /// (free ports), with an empty sqlite database.
    pub async fn start(ip: IpAddr) -> Result<PowerDns> {
        let started = Instant::now();
        let server = Path::new(PDNS_SERVER);
        if !server.is_file() {
            bail!(
                "{PDNS_SERVER} not found: install pdns-server and pdns-backend-sqlite3 \
                 (scripts/install-deps.sh)"
            );
        }
        let dir = unique_temp_dir("pdns")?;
        let result = Self::start_in(ip, dir.clone(), started).await;
        if result.is_err() {
            // The wrapper removes it too when it got that far; this covers
            // failures before the server was spawned.
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn start_in(ip: IpAddr, dir: PathBuf, started: Instant) -> Result<PowerDns> {
        let db = dir.join("pdns.sqlite3");
        create_database(&db).await?;

        let dns_port = free_port_tcp_udp(ip)?;
        let api_port = free_port(ip);
        let api_key = format!("{:032x}", rand::random::<u128>());
        let conf = render_config(ip, dns_port, api_port, &api_key, &db, &dir).await?;
        let conf_path = dir.join("pdns.conf");
        std::fs::write(&conf_path, conf).with_context(|| format!("writing {}", conf_path.display()))?;

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building HTTP client for the PowerDNS API")?;
        let log_file = dir.join("pdns.log");
        let sup = Supervised::spawn(
            "pdns",
            Path::new(PDNS_SERVER),
            &[format!("--config-dir={}", dir.display())],
            SpawnOpts {
                run_as: None,
                stop_signal: StopSignal::Term,
                cleanup_dir: Some(dir.clone()),
                log_file: Some(log_file.clone()),
                env: Vec::new(),
                cwd: Some(dir.clone()),
            },
        )?;
        let mut pdns = PowerDns { ip, dns_port, api_port, api_key, dir, http, sup: Some(sup) };
        if let Err(e) = pdns.wait_ready().await {
            let log = tail_file(&log_file, 20);
            pdns.stop().await.ok();
            return Err(e.context(format!("PowerDNS did not start; last log lines:\n{log}")));
        }
        tracing::info!(%ip, dns_port, api_port, elapsed = ?started.elapsed(), "PowerDNS ready");
        Ok(pdns)
    }

    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:PORT/api/v1`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v1", SocketAddr::new(self.ip, self.api_port))
    }

    /// Value for the `X-API-Key` header.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Address answering DNS over UDP and TCP.
    pub fn dns_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.dns_port)
    }

    /// The server's temp dir (config, sqlite database, `pdns.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a Native zone (e.g. `"example.test."`) with NS `ns1.<zone>`
    /// and an A record for `ns1.<zone>` pointing at the server's address.
    pub async fn create_zone(&self, zone: &str) -> Result<()> {
        let zone = canonical(zone);
        let ns = format!("ns1.{zone}");
        let body = json!({
            "name": zone,
            "kind": "Native",
            "nameservers": [ns],
            "rrsets": [{
                "name": ns,
                "type": "A",
                "ttl": 60,
                "changetype": "REPLACE",
                "records": [{"content": self.ip.to_string(), "disabled": false}],
            }],
        });
        self.api(reqwest::Method::POST, "/servers/localhost/zones", Some(&body))
            .await
            .with_context(|| format!("creating zone {zone}"))?;
        Ok(())
    }

    /// PATCHes a zone with `{"rrsets": rrsets}` (each rrset with `name`,
    /// `type`, `ttl`, `changetype` and `records`).
    pub async fn patch_rrsets(&self, zone: &str, rrsets: Value) -> Result<()> {
        let zone = canonical(zone);
        self.api(
            reqwest::Method::PATCH,
            &format!("/servers/localhost/zones/{zone}"),
            Some(&json!({ "rrsets": rrsets })),
        )
        .await
        .with_context(|| format!("patching rrsets of zone {zone}"))?;
        Ok(())
    }

    /// Replaces the rrset `name`/`rtype` in `zone` with `contents`.
    pub async fn replace_rrset(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
        ttl: u32,
        contents: &[String],
    ) -> Result<()> {
        let records: Vec<Value> = contents.iter().map(|c| json!({"content": c, "disabled": false})).collect();
        self.patch_rrsets(
            zone,
            json!([{
                "name": canonical(name),
                "type": rtype,
                "ttl": ttl,
                "changetype": "REPLACE",
                "records": records,
            }]),
        )
        .await
    }

    /// Calls the API at `path` (relative to [`PowerDns::api_url`]); returns
    /// the JSON body (`Null` when empty).  Non-2xx answers are errors that
    /// include the body.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.api_url());
        let mut req = self.http.request(method.clone(), &url).header("X-API-Key", &self.api_key);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("reading answer of {method} {url}"))?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("parsing answer of {method} {url}"))
    }

    /// Stops the server (SIGTERM) and removes its directory.
    pub async fn stop(mut self) -> Result<()> {
        match self.sup.take() {
            Some(sup) => sup.stop().await.context("stopping PowerDNS"),
            None => Ok(()),
        }
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let err = match self.api(reqwest::Method::GET, "/servers/localhost", None).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if !self.sup.as_mut().is_some_and(Supervised::is_running) {
                return Err(err.context("pdns_server exited"));
            }
            if Instant::now() >= deadline {
                return Err(err.context(format!("API not ready after {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn canonical(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

/// Creates the gsqlite3 database with the schema shipped by Debian.
async fn create_database(db: &Path) -> Result<()> {
    let schema_path = SCHEMA_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("PowerDNS sqlite schema not found: install pdns-backend-sqlite3")?;
    let schema = if schema_path.extension().is_some_and(|e| e == "gz") {
        let out = tokio::process::Command::new("zcat")
            .arg(schema_path)
            .output()
            .await
            .with_context(|| format!("running zcat {}", schema_path.display()))?;
        if !out.status.success() {
            bail!("zcat {} failed: {}", schema_path.display(), out.status);
        }
        out.stdout
    } else {
        tokio::fs::read(schema_path).await.with_context(|| format!("reading {}", schema_path.display()))?
    };
    let mut child = tokio::process::Command::new("sqlite3")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running sqlite3 (install the sqlite3 package)")?;
    let mut stdin = child.stdin.take().context("sqlite3 stdin")?;
    stdin.write_all(&schema).await.context("feeding the schema to sqlite3")?;
    drop(stdin);
    let out = child.wait_with_output().await.context("waiting for sqlite3")?;
    if !out.status.success() {
        bail!("sqlite3 {} failed ({}): {}", db.display(), out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Options accepted by the installed `pdns_server` (from `--help`), cached.
async fn supported_options() -> &'static [String] {
    static OPTS: OnceLock<Vec<String>> = OnceLock::new();
    if let Some(o) = OPTS.get() {
        return o;
    }
    let help = tokio::process::Command::new(PDNS_SERVER)
        .arg("--help")
        .output()
        .await
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .unwrap_or_default();
    let opts: Vec<String> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split(['=', ' ', '|']).next())
        .map(str::to_string)
        .collect();
    OPTS.get_or_init(|| opts)
}

async fn render_config(
    ip: IpAddr,
    dns_port: u16,
    api_port: u16,
    api_key: &str,
    db: &Path,
    dir: &Path,
) -> Result<String> {
    let required: Vec<(&str, String)> = vec![
        ("launch", "gsqlite3".into()),
        ("gsqlite3-database", db.display().to_string()),
        ("local-address", ip.to_string()),
        ("local-port", dns_port.to_string()),
        ("webserver", "yes".into()),
        ("webserver-address", ip.to_string()),
        ("webserver-port", api_port.to_string()),
        ("webserver-allow-from", "127.0.0.0/8,::1/128".into()),
        ("api", "yes".into()),
        ("api-key", api_key.into()),
        ("enable-lua-records", "yes".into()),
        ("socket-dir", dir.display().to_string()),
        ("guardian", "no".into()),
        ("daemon", "no".into()),
        ("disable-syslog", "yes".into()),
        ("log-dns-queries", "no".into()),
        ("loglevel", "4".into()),
        ("cache-ttl", "0".into()),
        ("query-cache-ttl", "0".into()),
        ("negquery-cache-ttl", "0".into()),
    ];
    // Only written when the installed version knows them.
    let optional: Vec<(&str, String)> = vec![
        ("consistent-backends", "yes".into()),
        ("zone-cache-refresh-interval", "0".into()),
        ("webserver-loglevel", "none".into()),
        ("security-poll-suffix", "".into()),
        // LUA `ifurlup` checks (the benchmarks' comparison): every second, the smallest step.
        ("lua-health-checks-interval", "1".into()),
    ];
    let supported = supported_options().await;
    let mut conf = String::from("# generated by the failover-orchestrator lab\n");
    for (k, v) in required {
        let _ = writeln!(conf, "{k}={v}");
    }
    for (k, v) in optional {
        if supported.iter().any(|s| s == k) {
            let _ = writeln!(conf, "{k}={v}");
        } else {
            tracing::debug!(option = k, "pdns_server does not know this option; skipped");
        }
    }
    Ok(conf)
}
