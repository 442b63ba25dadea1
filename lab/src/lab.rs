//! The lab: four PostgreSQL clusters (the orchestrator's store, and primary →
//! same-city standby (synchronous) → DR (asynchronous) with real streaming
//! replication), one app per region on 127.0.0.11/12/13 and a PowerDNS server
//! with a weighted `app.lab.test.` record, plus the orchestrator's generated
//! configuration. The `lab` command, the benchmarks and the integration tests
//! start it; it never starts the orchestrator itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use failover_orchestrator::config::Config;
use tokio::sync::Mutex;

use crate::app_stub::AppStub;
use crate::postgres::{PgCluster, PgOptions};
use crate::powerdns::PowerDns;
use crate::process::pid_alive;
use crate::topology::{ConfigParams, LabTokens, PowerDnsSpec, RegionSpec};

/// Environment variable the lab's generated configuration reads the PowerDNS key from.
pub const PDNS_KEY_ENV: &str = "FO_LAB_PDNS_API_KEY";
/// The weighted name in the lab.
pub const RECORD: &str = "app.lab.test.";
/// The lab's own directory is `TMP/failover-lab-<pid>`.
const DIR_PREFIX: &str = "failover-lab-";
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
    /// Where the tokens file (and the `fo-lab` command's `regions.toml`) live; removed by [`Lab::stop`].
    pub dir: std::path::PathBuf,
}

/// Policy timings of the lab's configuration (the benchmarks shorten failback to run many flips).
#[derive(Debug, Clone)]
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
    /// `fast_interval` of every check; None: a fifth of the interval (at least 50 ms).
    pub fast_interval: Option<Duration>,
    /// `[auth] public_reads`: true (the default) lets the dashboard read without a token;
    /// false is what a real deployment gets (`fo-lab --private`).
    pub public_reads: bool,
    /// More `[[regions.checks]]` bodies per region (primary, standby, dr), e.g. metric or
    /// passive HAProxy checks a benchmark measures.
    pub extra_checks: [Vec<String>; 3],
}

impl Default for LabTuning {
    fn default() -> Self {
        Self {
            dwell: Duration::from_secs(3),
            failback_hold: Duration::from_secs(5),
            failback_step: 20,
            probe_targets: None,
            fast_interval: None,
            public_reads: true,
            extra_checks: Default::default(),
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
                extra_checks: tuning.extra_checks[i].clone(),
            });
            regions.push(LabRegion { name: names[i].into(), ip: ips[i], app, pg: Some(pg) });
        }
        let mut params = ConfigParams::new(store.dsn_db("failover"), listen, specs);
        params.interval = interval;
        params.timeout = interval.mul_f64(0.8).min(Duration::from_secs(2));
        params.fast_interval = tuning.fast_interval.unwrap_or((interval / 5).max(Duration::from_millis(50)));
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
        remove_dirs_of_dead_labs();
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let tokens_file = dir.join("tokens");
        std::fs::write(&tokens_file, tokens.file_text())?;
        params.tokens_file = Some(tokens_file);
        // Writes waiting for the store survive a crash of the lab's orchestrator.
        params.spill_dir = Some(dir.join("spill"));
        // Loopback only: by default the dashboard reads without a token; every action needs
        // the operator token. `--private` turns public reads off, as in a real deployment.
        params.public_reads = tuning.public_reads;
        let config_text = params.to_toml();
        let key = pdns.api_key().to_string();
        let config = Config::parse(&config_text, "lab regions.toml", &|k| (k == PDNS_KEY_ENV).then(|| key.clone()))
            .context("the lab's generated configuration is invalid")?;
        Ok(Lab { store, regions, pdns, config_text, config, tokens, dir })
    }

    /// The region named `name`.
    pub fn region_mut(&mut self, name: &str) -> Option<&mut LabRegion> {
        self.regions.iter_mut().find(|r| r.name == name)
    }

    /// Stops every server and removes the lab's directory.
    pub async fn stop(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// The lab, shared with the control endpoint and the measurements.
pub type Shared = Arc<Mutex<Lab>>;

/// Removes the directories of labs that died without [`Lab::stop`] (SIGKILL): their servers
/// clean up after themselves, but the lab's own directory has no supervisor.
fn remove_dirs_of_dead_labs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !pid_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_labs_directory_is_removed_and_a_live_one_kept() {
        // A pid that surely ended: a child that already exited and was reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{dead}"));
        let live_dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let live_existed = live_dir.exists();
        std::fs::create_dir_all(&dead_dir).unwrap();
        std::fs::write(dead_dir.join("tokens"), "x").unwrap();
        std::fs::create_dir_all(&live_dir).unwrap();
        remove_dirs_of_dead_labs();
        assert!(!dead_dir.exists(), "{} should be gone", dead_dir.display());
        assert!(live_dir.exists(), "this process's own directory must stay");
        if !live_existed {
            std::fs::remove_dir_all(&live_dir).unwrap();
        }
    }
}
