//! A real HAProxy on loopback for the tests and the provider bench: one HTTP
//! frontend, one `app` backend with a server per region, and the runtime API
//! on a TCP admin socket (`stats socket ipv4@127.0.0.1:PORT level admin`).
//!
//! Started in the foreground (`-db`) under [`Supervised`], so it dies with the
//! process. This module must not use `/etc/haproxy` or the Debian service.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{SpawnOpts, Supervised, free_port, stop_taken, tail_file, unique_temp_dir, wait_for_tcp};

/// The HAProxy binary.
pub const HAPROXY: &str = "/usr/sbin/haproxy";
/// The backend name in the generated configuration.
pub const BACKEND: &str = "app";

/// One server of the generated backend.
#[derive(Debug, Clone)]
pub struct BackendServer {
    /// Server name (the region).
    pub name: String,
    /// Where it is.
    pub addr: SocketAddr,
    /// Takes traffic only when every non-backup server is down.
    pub backup: bool,
}

/// HAProxy's active HTTP health check, as the backend's `default-server` settings.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Request path (`option httpchk GET <path>`); any 2xx/3xx passes.
    pub path: String,
    /// `inter`: time between checks.
    pub inter: Duration,
    /// `fall`: consecutive failures before the server is DOWN.
    pub fall: u32,
    /// `rise`: consecutive successes before it is UP again.
    pub rise: u32,
    /// `timeout check`.
    pub timeout: Duration,
}

impl HttpCheck {
    /// The backend directives (`option httpchk`, `timeout check`, `default-server`).
    pub fn directives(&self) -> String {
        format!(
            "  option httpchk GET {}\n  timeout check {}ms\n  default-server inter {}ms fall {} rise {}\n",
            self.path,
            self.timeout.as_millis(),
            self.inter.as_millis(),
            self.fall,
            self.rise
        )
    }
}

/// A running HAProxy; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct Haproxy {
    frontend: SocketAddr,
    admin: SocketAddr,
    dir: PathBuf,
    sup: Option<Supervised>,
}

impl Haproxy {
    /// Starts HAProxy on `ip` balancing (round robin, by weight) over `servers`
    /// (name, address), every server at weight 1 until the runtime API changes it.
    ///
    /// # Errors
    /// When HAProxy is missing or does not start.
    pub async fn start(ip: IpAddr, servers: &[(String, SocketAddr)]) -> Result<Haproxy> {
        let servers: Vec<BackendServer> = servers
            .iter()
            .map(|(name, addr)| BackendServer { name: name.clone(), addr: *addr, backup: false })
            .collect();
        Self::start_checked(ip, &servers, None).await
    }

    /// [`Haproxy::start`] with backup servers and, when `check` is given, HAProxy's own
    /// HTTP health checks on every server (`option httpchk`, `inter`/`fall`/`rise`): the
    /// benchmarks compare them with the orchestrator on the same targets.
    ///
    /// # Errors
    /// When HAProxy is missing or does not start.
    pub async fn start_checked(ip: IpAddr, servers: &[BackendServer], check: Option<&HttpCheck>) -> Result<Haproxy> {
        if !Path::new(HAPROXY).is_file() {
            bail!("{HAPROXY} not found: install haproxy (scripts/install-deps.sh)");
        }
        let dir = unique_temp_dir("haproxy")?;
        let frontend = SocketAddr::new(ip, free_port(ip));
        let admin = SocketAddr::new(ip, free_port(ip));
        let mut cfg = format!(
            "global\n  stats socket ipv4@{admin} level admin\n  stats timeout 10s\n\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\n\
             frontend fe\n  bind {frontend}\n  default_backend {BACKEND}\n\n\
             backend {BACKEND}\n  balance roundrobin\n"
        );
        if let Some(c) = check {
            cfg.push_str(&c.directives());
        }
        for s in servers {
            let check = if check.is_some() { " check" } else { "" };
            let backup = if s.backup { " backup" } else { "" };
            cfg.push_str(&format!("  server {} {} weight 1{check}{backup}\n", s.name, s.addr));
        }
        let cfg_path = dir.join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).with_context(|| format!("writing {}", cfg_path.display()))?;
        let log = dir.join("haproxy.log");
        let sup = Supervised::spawn(
            "haproxy",
            Path::new(HAPROXY),
            &["-db".to_string(), "-f".to_string(), cfg_path.display().to_string()],
            SpawnOpts::in_dir(&dir, &log),
        )?;
        let h = Haproxy { frontend, admin, dir, sup: Some(sup) };
        let ready = async {
            wait_for_tcp(admin, Duration::from_secs(20)).await?;
            wait_for_tcp(frontend, Duration::from_secs(20)).await
        };
        if let Err(e) = ready.await {
            let tail = tail_file(&log, 20);
            h.stop().await.ok();
            return Err(e.context(format!("HAProxy did not start; last log lines:\n{tail}")));
        }
        Ok(h)
    }

    /// The HTTP frontend.
    pub fn frontend(&self) -> SocketAddr {
        self.frontend
    }

    /// Sends one runtime API command and returns the answer (HAProxy closes after each).
    ///
    /// # Errors
    /// When the admin socket does not answer within 2 s.
    pub async fn command(&self, cmd: &str) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let work = async {
            let mut s = tokio::net::TcpStream::connect(self.admin).await?;
            s.write_all(format!("{cmd}\n").as_bytes()).await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        tokio::time::timeout(Duration::from_secs(2), work)
            .await
            .with_context(|| format!("HAProxy runtime API `{cmd}` timed out"))?
            .with_context(|| format!("HAProxy runtime API `{cmd}`"))
    }

    /// The runtime API (TCP admin socket).
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The server's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server and removes its directory.
    ///
    /// # Errors
    /// When the supervisor cannot stop it.
    pub async fn stop(mut self) -> Result<()> {
        stop_taken(&mut self.sup, "HAProxy").await
    }
}
