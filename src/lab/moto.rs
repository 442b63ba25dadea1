//! A local AWS API emulator (moto's server, from PyPI) on loopback, for the
//! Route 53 provider's tests and bench. Route 53 is the one provider tested
//! against an emulator rather than the real service.
//!
//! `scripts/install-deps.sh` installs moto into a virtualenv under
//! `target/moto-venv`; `FO_MOTO_SERVER` overrides the path of `moto_server`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::process::{SpawnOpts, StopSignal, Supervised, free_port, tail_file, unique_temp_dir, wait_for_tcp};

/// Where `moto_server` is found.
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("FO_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server"))
}

/// A running moto server; dropping it stops the server.
#[derive(Debug)]
pub struct Moto {
    addr: SocketAddr,
    sup: Option<Supervised>,
}

impl Moto {
    /// Starts moto on `ip` (free port).
    ///
    /// # Errors
    /// When moto is not installed or does not start.
    pub async fn start(ip: IpAddr) -> Result<Moto> {
        let bin = moto_server_path();
        if !bin.is_file() {
            bail!(
                "{} not found: run scripts/install-deps.sh (installs moto[server] into target/moto-venv)",
                bin.display()
            );
        }
        let dir = unique_temp_dir("moto")?;
        let addr = SocketAddr::new(ip, free_port(ip));
        let log = dir.join("moto.log");
        let sup = Supervised::spawn(
            "moto",
            &bin,
            &["-H".into(), ip.to_string(), "-p".into(), addr.port().to_string()],
            SpawnOpts {
                stop_signal: StopSignal::Term,
                cleanup_dir: Some(dir.clone()),
                log_file: Some(log.clone()),
                cwd: Some(dir.clone()),
                ..SpawnOpts::default()
            },
        )?;
        let m = Moto { addr, sup: Some(sup) };
        if let Err(e) = wait_for_tcp(addr, Duration::from_secs(60)).await {
            let tail = tail_file(&log, 20);
            m.stop().await.ok();
            return Err(e.context(format!("moto did not start; last log lines:\n{tail}")));
        }
        Ok(m)
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server.
    ///
    /// # Errors
    /// When the supervisor cannot stop it.
    pub async fn stop(mut self) -> Result<()> {
        match self.sup.take() {
            Some(s) => s.stop().await.context("stopping moto"),
            None => Ok(()),
        }
    }
}
