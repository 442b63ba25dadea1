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

use super::process::{SpawnOpts, Supervised, free_port, stop_taken, tail_file, unique_temp_dir, wait_for_tcp};

/// The HAProxy binary.
pub const HAPROXY: &str = "/usr/sbin/haproxy";
/// The backend name in the generated configuration.
pub const BACKEND: &str = "app";

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
        for (name, addr) in servers {
            cfg.push_str(&format!("  server {name} {addr} weight 1\n"));
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
