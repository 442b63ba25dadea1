//! A local AWS API emulator (moto's server, from PyPI) on loopback, for the
//! Route 53 provider's tests and bench. Route 53 is the one provider tested
//! against an emulator rather than the real service.
//!
//! `scripts/install-deps.sh` installs moto into a virtualenv under
//! `target/moto-venv`; `FO_MOTO_SERVER` overrides the path of `moto_server`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::process::{SpawnOpts, Supervised, free_port, stop_taken, tail_file, unique_temp_dir, wait_for_tcp};

/// Where `moto_server` is found: `FO_MOTO_SERVER`, else the workspace's `target/moto-venv`
/// (this crate sits one folder below the workspace root).
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("FO_MOTO_SERVER").map(PathBuf::from).unwrap_or_else(|| {
        let lab = Path::new(env!("CARGO_MANIFEST_DIR"));
        lab.parent().unwrap_or(lab).join("target/moto-venv/bin/moto_server")
    })
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
            SpawnOpts::in_dir(&dir, &log),
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

    /// Creates a hosted zone (e.g. `"example.test."`) on the emulator and returns its id.
    ///
    /// # Errors
    /// When the emulator refuses or does not answer.
    pub async fn create_hosted_zone(&self, zone: &str) -> Result<String> {
        use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_route53::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("lab", "lab", None, None, "lab"))
            .endpoint_url(self.endpoint())
            .http_client(failover_orchestrator::traffic::route53::http_client())
            .build();
        let reference = format!("fo-{zone}-{}", rand::random::<u32>());
        let out = aws_sdk_route53::Client::from_conf(conf)
            .create_hosted_zone()
            .name(zone)
            .caller_reference(reference)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("creating hosted zone {zone}: {}", aws_sdk_route53::error::DisplayErrorContext(e))
            })?;
        let id = out.hosted_zone().map(|z| z.id().trim_start_matches("/hostedzone/").to_string());
        id.ok_or_else(|| anyhow::anyhow!("the emulator returned no hosted zone for {zone}"))
    }

    /// Stops the server.
    ///
    /// # Errors
    /// When the supervisor cannot stop it.
    pub async fn stop(mut self) -> Result<()> {
        stop_taken(&mut self.sup, "moto").await
    }
}
