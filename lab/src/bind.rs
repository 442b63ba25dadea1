//! A real BIND 9 `named` on loopback for the tests and the provider bench: one
//! primary zone that accepts RFC 2136 updates signed with a TSIG key
//! (hmac-sha256, random secret), listening on a free UDP+TCP port.
//!
//! Runs in the foreground (`-g`) under [`Supervised`]; as root it runs as root
//! (named works so in the foreground), the zone file and journal live in a
//! temporary directory that is removed on stop. No `rndc` control channel.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;

use crate::process::{SpawnOpts, Supervised, free_port_tcp_udp, stop_taken, tail_file, unique_temp_dir, wait_for_tcp};

/// The server binary.
pub const NAMED: &str = "/usr/sbin/named";
/// The TSIG key name in the generated configuration.
pub const KEY_NAME: &str = "fo-update-key";

/// A running `named`; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct Bind {
    addr: SocketAddr,
    zone: String,
    secret: String,
    dir: PathBuf,
    sup: Option<Supervised>,
}

impl Bind {
    /// Starts `named` on `ip` serving `zone` (with trailing dot), updatable with the TSIG key.
    ///
    /// # Errors
    /// When `named` is missing or does not start.
    pub async fn start(ip: IpAddr, zone: &str) -> Result<Bind> {
        if !Path::new(NAMED).is_file() {
            bail!("{NAMED} not found: install bind9 (scripts/install-deps.sh)");
        }
        let dir = unique_temp_dir("named")?;
        let port = free_port_tcp_udp(ip)?;
        let addr = SocketAddr::new(ip, port);
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let zone = if zone.ends_with('.') { zone.to_string() } else { format!("{zone}.") };
        let bare = zone.trim_end_matches('.');
        let d = dir.display();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  listen-on port {port} {{ {ip}; }};\n  \
             listen-on-v6 {{ none; }};\n  recursion no;\n  dnssec-validation no;\n  notify no;\n}};\n\
             controls {{ }};\n\
             key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
             zone \"{bare}\" {{ type primary; file \"{d}/zone.db\"; allow-update {{ key \"{KEY_NAME}\"; }}; }};\n"
        );
        let zone_db = format!(
            "$TTL 60\n@ IN SOA ns1.{zone} hostmaster.{zone} 1 60 60 600 1\n@ IN NS ns1.{zone}\nns1 IN A 127.0.0.1\n"
        );
        std::fs::write(dir.join("named.conf"), conf).context("writing named.conf")?;
        std::fs::write(dir.join("zone.db"), zone_db).context("writing the zone file")?;
        let log = dir.join("named.log");
        let sup = Supervised::spawn(
            "named",
            Path::new(NAMED),
            &["-g".into(), "-4".into(), "-c".into(), dir.join("named.conf").display().to_string()],
            SpawnOpts::in_dir(&dir, &log),
        )?;
        let b = Bind { addr, zone, secret, dir, sup: Some(sup) };
        if let Err(e) = b.wait_ready().await {
            let tail = tail_file(&log, 30);
            b.stop().await.ok();
            return Err(e.context(format!("named did not start; last log lines:\n{tail}")));
        }
        Ok(b)
    }

    async fn wait_ready(&self) -> Result<()> {
        wait_for_tcp(self.addr, Duration::from_secs(20)).await?;
        // TCP is up once the zone is loaded; confirm it answers for the zone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let soa = failover_orchestrator::traffic::propagation::query_addresses(
                self.addr,
                &format!("ns1.{}", self.zone),
                Duration::from_millis(500),
            )
            .await;
            if soa.is_ok_and(|a| !a.is_empty()) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("named does not answer for {} at {}", self.zone, self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The DNS address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone served, with trailing dot.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The TSIG secret (base64), for test configurations.
    pub fn tsig_secret(&self) -> &str {
        &self.secret
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
        stop_taken(&mut self.sup, "named").await
    }
}
