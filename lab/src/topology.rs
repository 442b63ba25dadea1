//! The lab's topology: which regions, on which loopback addresses, with which
//! checks, rendered as a `regions.toml` that the orchestrator loads like any other.
//!
//! Used by the `lab` command and the integration tests, so both exercise the
//! real configuration path.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// One region of a generated configuration.
#[derive(Debug, Clone)]
pub struct RegionSpec {
    /// Region name.
    pub name: String,
    /// `primary`, `standby` or `dr`.
    pub role: String,
    /// Normal weight.
    pub weight: u32,
    /// The address DNS answers for the region.
    pub address: IpAddr,
    /// The app's health URL.
    pub app_url: String,
    /// `host:port` for the infra TCP check (the app's listener).
    pub tcp_target: String,
    /// The region's PostgreSQL DSN, if it has one (adds a middleware check).
    pub pg_dsn: Option<String>,
    /// Expected `pg_is_in_recovery()` of that database.
    pub pg_expect_recovery: Option<bool>,
    /// Extra lines for the region's `[regions.postgres]` table (e.g. `max_lag = "2s"`).
    pub pg_extra: Vec<String>,
    /// More checks of the region, each the body of a `[[regions.checks]]` table (`name = …`
    /// lines), written after the standard ones with the same timing unless a line sets it.
    pub extra_checks: Vec<String>,
}

/// The PowerDNS provider section.
#[derive(Debug, Clone)]
pub struct PowerDnsSpec {
    /// API base URL (without `/api/v1`).
    pub api_url: String,
    /// Name of the environment variable holding the key.
    pub api_key_env: String,
    /// Zone.
    pub zone: String,
    /// Weighted record.
    pub record: String,
    /// DNS listener.
    pub dns_addr: SocketAddr,
}

/// The `[coordination]` section of one orchestrator among several (etcd backend).
#[derive(Debug, Clone)]
pub struct CoordinationSpec {
    /// etcd client URLs this orchestrator uses (in the lab: its fault proxies to the members).
    pub endpoints: Vec<String>,
    /// Leader lease time-to-live.
    pub lease_ttl: Duration,
    /// Key prefix shared by the orchestrators of one deployment.
    pub prefix: String,
}

impl CoordinationSpec {
    /// The section's TOML text.
    pub fn to_toml(&self) -> String {
        let endpoints: Vec<String> = self.endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        format!(
            "[coordination]\nbackend = \"etcd\"\nendpoints = [{}]\nlease_ttl = \"{}\"\nprefix = \"{}\"\n",
            endpoints.join(", "),
            humantime::format_duration(self.lease_ttl),
            self.prefix
        )
    }
}

/// Everything a generated configuration varies on.
#[derive(Debug, Clone)]
pub struct ConfigParams {
    /// Vantage region.
    pub vantage: String,
    /// API listen address.
    pub listen: SocketAddr,
    /// Store DSN.
    pub store_dsn: String,
    /// Regions.
    pub regions: Vec<RegionSpec>,
    /// Probe interval.
    pub interval: Duration,
    /// Fast re-probe interval.
    pub fast_interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Latency above which the app is degraded.
    pub degraded_latency: Duration,
    /// fall.
    pub fall: u32,
    /// rise.
    pub rise: u32,
    /// Dwell.
    pub dwell: Duration,
    /// `auto` or `manual`.
    pub failback: String,
    /// Failback hold.
    pub failback_hold: Duration,
    /// Failback step.
    pub failback_step: u32,
    /// PowerDNS provider, if any.
    pub powerdns: Option<PowerDnsSpec>,
    /// File provider path, if any.
    pub file: Option<PathBuf>,
    /// Lag collection interval.
    pub replication_interval: Duration,
    /// Hedged attempts per probe (None: the product default).
    pub attempts: Option<u32>,
    /// `[auth] tokens_file`, if any.
    pub tokens_file: Option<PathBuf>,
    /// `[auth] public_reads` (the lab's dashboard reads without a token).
    pub public_reads: bool,
    /// Extra TOML appended verbatim (e.g. `[[schedule.drills]]`).
    pub extra: String,
    /// `policy.quorum` (None: the product default).
    pub quorum: Option<u32>,
    /// `[coordination]` (None: the product default, a single orchestrator).
    pub coordination: Option<CoordinationSpec>,
    /// `orchestrator.spill_dir` (None: writes wait in memory only).
    pub spill_dir: Option<PathBuf>,
    /// `[limits]`, always written: the lab's are far above the product's defaults.
    pub limits: LabLimits,
    /// `[auth] audit_retention` (None: the product default), with `tokens_file`.
    pub audit_retention: Option<Duration>,
    /// `orchestrator.tls_cert` and `tls_key` (None: plain http).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `[limits]` of a lab or test orchestrator.
///
/// The browser test, the CLI tests and schemathesis (which sends requests without and with
/// bad tokens on purpose) all come from 127.0.0.1: with the product's defaults (60 mutations
/// and 10 invalid tokens a minute per address) they would trip the limits by accident. Tests
/// of the limits set their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabLimits {
    /// `limits.mutations_per_minute`.
    pub mutations_per_minute: u32,
    /// `limits.auth_failures_per_minute`.
    pub auth_failures_per_minute: u32,
    /// `limits.max_streams`.
    pub max_streams: u32,
}

impl Default for LabLimits {
    fn default() -> Self {
        Self { mutations_per_minute: 100_000, auth_failures_per_minute: 100_000, max_streams: 64 }
    }
}

/// Bearer tokens the lab and the tests hand out, one per role.
#[derive(Clone)]
pub struct LabTokens {
    /// Role viewer.
    pub viewer: String,
    /// Role operator.
    pub operator: String,
    /// Role admin.
    pub admin: String,
}

impl std::fmt::Debug for LabTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabTokens(***)")
    }
}

impl LabTokens {
    /// Three fresh random tokens.
    pub fn generate() -> Self {
        let t = || hex::encode(rand::random::<[u8; 24]>());
        Self { viewer: t(), operator: t(), admin: t() }
    }

    /// The tokens file text: `name role sha256` lines.
    pub fn file_text(&self) -> String {
        use failover_orchestrator::auth::hash_token;
        format!(
            "# name role sha256-of-token\nlab-viewer viewer {}\nlab-operator operator {}\nlab-admin admin {}\n",
            hash_token(&self.viewer),
            hash_token(&self.operator),
            hash_token(&self.admin)
        )
    }
}

fn d(x: Duration) -> String {
    format!("{}ms", x.as_millis())
}

impl ConfigParams {
    /// Lab defaults around the given regions and store.
    pub fn new(store_dsn: String, listen: SocketAddr, regions: Vec<RegionSpec>) -> Self {
        Self {
            vantage: regions.first().map(|r| r.name.clone()).unwrap_or_default(),
            listen,
            store_dsn,
            regions,
            interval: Duration::from_millis(500),
            fast_interval: Duration::from_millis(100),
            timeout: Duration::from_millis(400),
            degraded_latency: Duration::from_millis(200),
            fall: 3,
            rise: 2,
            dwell: Duration::from_secs(5),
            failback: "auto".into(),
            failback_hold: Duration::from_secs(10),
            failback_step: 20,
            powerdns: None,
            file: None,
            replication_interval: Duration::from_millis(500),
            attempts: None,
            tokens_file: None,
            public_reads: false,
            extra: String::new(),
            quorum: None,
            coordination: None,
            spill_dir: None,
            limits: LabLimits::default(),
            audit_retention: None,
            tls: None,
        }
    }

    /// Sets the probe timings the lab derives from one interval: timeout 80 % of it (at most
    /// 2 s), fast re-probes at a fifth of it (at least 50 ms), degraded above half the timeout.
    pub fn set_probe_timing(&mut self, interval: Duration, fall: u32) {
        self.interval = interval;
        self.timeout = interval.mul_f64(0.8).min(Duration::from_secs(2));
        self.fast_interval = (interval / 5).max(Duration::from_millis(50));
        self.degraded_latency = self.timeout / 2;
        self.fall = fall;
    }

    /// Renders the `regions.toml` text.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Generated by the failover-orchestrator lab.\n");
        let _ = writeln!(
            s,
            "[orchestrator]\nvantage = \"{}\"\nlisten = \"{}\"\nstore_dsn = \"{}\"\nshutdown_timeout = \"5s\"\n",
            self.vantage, self.listen, self.store_dsn
        );
        if let Some(dir) = &self.spill_dir {
            // Before the blank line that ends the section.
            s.pop();
            let _ = writeln!(s, "spill_dir = {:?}\n", dir.display().to_string());
        }
        if let Some((cert, key)) = &self.tls {
            s.pop();
            let _ =
                writeln!(s, "tls_cert = {:?}\ntls_key = {:?}\n", cert.display().to_string(), key.display().to_string());
        }
        let order: Vec<String> = self.regions.iter().map(|r| format!("\"{}\"", r.name)).collect();
        let _ = write!(
            s,
            "[policy]\ndegraded_weight_percent = 50\nfailover_order = [{}]\ndwell = \"{}\"\nfailback = \"{}\"\nfailback_hold = \"{}\"\nfailback_step = {}\nfailover_budget = {{ max = 1000, window = \"1h\" }}\n",
            order.join(", "),
            d(self.dwell),
            self.failback,
            d(self.failback_hold),
            self.failback_step
        );
        if let Some(q) = self.quorum {
            let _ = writeln!(s, "quorum = {q}");
        }
        s.push('\n');
        for r in &self.regions {
            let _ = writeln!(
                s,
                "[[regions]]\nname = \"{}\"\nrole = \"{}\"\nweight = {}\naddress = \"{}\"",
                r.name, r.role, r.weight, r.address
            );
            if let Some(dsn) = &r.pg_dsn {
                let _ = writeln!(s, "[regions.postgres]\ndsn = \"{dsn}\"");
                if !r.pg_extra.iter().any(|l| l.starts_with("application_name")) {
                    let _ = writeln!(s, "application_name = \"{}\"", r.name);
                }
                for line in &r.pg_extra {
                    let _ = writeln!(s, "{line}");
                }
            }
            let mut common = format!(
                "interval = \"{}\"\nfast_interval = \"{}\"\ntimeout = \"{}\"\nfall = {}\nrise = {}",
                d(self.interval),
                d(self.fast_interval),
                d(self.timeout),
                self.fall,
                self.rise
            );
            if let Some(n) = self.attempts {
                let _ = write!(common, "\nattempts = {n}");
            }
            let _ = writeln!(
                s,
                "[[regions.checks]]\nname = \"host\"\nlayer = \"infra\"\ntype = \"tcp\"\ntarget = \"{}\"\n{common}",
                r.tcp_target
            );
            if r.pg_dsn.is_some() {
                let _ = writeln!(
                    s,
                    "[[regions.checks]]\nname = \"db\"\nlayer = \"middleware\"\ntype = \"postgres\"\n{common}"
                );
                if let Some(e) = r.pg_expect_recovery {
                    let _ = writeln!(s, "expect_recovery = {e}");
                }
            }
            let _ = writeln!(
                s,
                "[[regions.checks]]\nname = \"app\"\nlayer = \"app\"\ntype = \"http\"\nurl = \"{}\"\nexpect_status = 200\nbody_contains = \"ok\"\ndegraded_latency = \"{}\"\n{common}\n",
                r.app_url,
                d(self.degraded_latency)
            );
            for body in &r.extra_checks {
                let keys: Vec<&str> = body.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k.trim())).collect();
                let timing: Vec<&str> =
                    common.lines().filter(|l| !keys.contains(&l.split(" = ").next().unwrap_or(""))).collect();
                let _ = writeln!(s, "[[regions.checks]]\n{}\n{}\n", body.trim_end(), timing.join("\n"));
            }
        }
        if let Some(p) = &self.powerdns {
            let _ = writeln!(
                s,
                "[[providers]]\ntype = \"powerdns\"\napi_url = \"{}\"\napi_key_env = \"{}\"\nzone = \"{}\"\nrecord = \"{}\"\nttl = 1\ndns_addr = \"{}\"\n",
                p.api_url, p.api_key_env, p.zone, p.record, p.dns_addr
            );
        }
        if let Some(f) = &self.file {
            let _ = writeln!(s, "[[providers]]\ntype = \"file\"\npath = \"{}\"\n", f.display());
        }
        if let Some(t) = &self.tokens_file {
            let _ = writeln!(s, "[auth]\ntokens_file = \"{}\"\npublic_reads = {}", t.display(), self.public_reads);
            if let Some(r) = self.audit_retention {
                let _ = writeln!(s, "audit_retention = \"{}\"", humantime::format_duration(r));
            }
            s.push('\n');
        }
        if let Some(c) = &self.coordination {
            let _ = writeln!(s, "{}", c.to_toml());
        }
        let l = &self.limits;
        let _ = writeln!(
            s,
            "[limits]\nmutations_per_minute = {}\nauth_failures_per_minute = {}\nmax_streams = {}\n",
            l.mutations_per_minute, l.auth_failures_per_minute, l.max_streams
        );
        s.push_str(&self.extra);
        s
    }
}
