//! `regions.toml`: schema, validation and environment overrides.
//!
//! Two stages: [`raw`] parses exactly what is written (unknown keys are errors),
//! then [`Config::from_raw`] checks everything and returns either a typed
//! [`Config`] or a [`ConfigError::Invalid`] listing *all* problems, each with its
//! key path, what is wrong and the fix. Secrets (DSNs, API keys) are held as
//! [`SecretString`] and never printed; environment variables override them.

mod error;
mod providers;
pub mod raw;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use error::Problems;
pub use error::{ConfigError, Problem};
pub use providers::{
    AwsKeys, HaproxyAdmin, HaproxyConfig, NotificationConfig, OnDrift, ProviderGuard, Rfc2136Config, Route53Config,
    Route53Target, TsigAlgorithm, WebhookConfig, decode_tsig_secret,
};
use raw::{RawCheck, RawConfig, RawProvider, RawRegion};

use crate::auth::TokenSet;
use crate::drill::schedule::{Blackout, ScheduledDrill, parse_cron};
use crate::drill::{self, DrillRequest};
use crate::policy::{Budget, Failback, LagLimit, Policy, RegionPolicy};
use crate::region::{CheckId, Layer, RegionName, Role};

/// Environment variable that overrides `orchestrator.store_dsn`.
pub const ENV_STORE_DSN: &str = "FO_STORE_DSN";

/// The validated configuration. Built only by [`Config::from_raw`].
#[derive(Debug, Clone)]
pub struct Config {
    /// This orchestrator's settings.
    pub orchestrator: OrchestratorConfig,
    /// The decision policy.
    pub policy: Policy,
    /// The regions, in file order.
    pub regions: Vec<RegionConfig>,
    /// Where plans are applied.
    pub providers: Vec<ProviderConfig>,
    /// Breaker, drift and propagation settings per provider name.
    pub guards: std::collections::BTreeMap<String, ProviderGuard>,
    /// Webhooks told about events.
    pub notifications: Vec<NotificationConfig>,
    /// Housekeeping and drill schedule.
    pub schedule: ScheduleConfig,
    /// Replication lag collection.
    pub replication: ReplicationConfig,
    /// API tokens; None: reads open, mutations refused.
    pub auth: Option<AuthConfig>,
}

/// `[auth]`, validated.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The tokens (hashes only).
    pub tokens: TokenSet,
    /// Whether GET requests need no token.
    pub public_reads: bool,
    /// Whether `/healthz` needs no token.
    pub healthz_public: bool,
}

/// `[replication]`, validated.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// Collection interval.
    pub interval: Duration,
    /// Per-query timeout.
    pub timeout: Duration,
    /// Heartbeat table name (a plain SQL identifier).
    pub heartbeat_table: String,
    /// Whether to write the heartbeat.
    pub heartbeat: bool,
    /// Raw sample retention.
    pub raw_retention: Duration,
}

/// `[orchestrator]`, validated.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// The region this orchestrator runs in.
    pub vantage: RegionName,
    /// API listen address.
    pub listen: SocketAddr,
    /// DSN of the orchestrator's store.
    pub store_dsn: SecretString,
    /// Graceful shutdown bound.
    pub shutdown_timeout: Duration,
    /// Whether `/metrics` is served without a token.
    pub metrics_public: bool,
}

/// One region, validated.
#[derive(Debug, Clone)]
pub struct RegionConfig {
    /// Its name.
    pub name: RegionName,
    /// Its role.
    pub role: Role,
    /// Normal share of traffic.
    pub weight: u32,
    /// Address DNS providers answer for it.
    pub address: Option<IpAddr>,
    /// Its PostgreSQL, if any.
    pub postgres: Option<RegionPostgres>,
    /// Its checks.
    pub checks: Vec<CheckConfig>,
    /// Provider-specific identifiers.
    pub targets: toml::Table,
}

/// A region's PostgreSQL.
#[derive(Debug, Clone)]
pub struct RegionPostgres {
    /// DSN (secret: it may hold a password).
    pub dsn: SecretString,
    /// RPO gate.
    pub max_lag: LagLimit,
    /// Lag above which the region is degraded.
    pub degrade_lag: LagLimit,
    /// `application_name` in `pg_stat_replication`.
    pub application_name: String,
    /// Promote on failover.
    pub promote: bool,
}

/// What a check probes and how.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// TCP connect to `target`.
    Tcp {
        /// `host:port`.
        target: String,
    },
    /// HTTP GET.
    Http {
        /// URL to fetch.
        url: String,
        /// Expected status.
        expect_status: u16,
        /// Text the body must contain.
        body_contains: Option<String>,
    },
    /// PostgreSQL `SELECT 1` and `pg_is_in_recovery()`.
    Postgres {
        /// DSN (secret).
        dsn: SecretString,
        /// Expected recovery state, if any.
        expect_recovery: Option<bool>,
    },
}

impl CheckKind {
    /// Short type name: `tcp`, `http`, `postgres`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Postgres { .. } => "postgres",
        }
    }

    /// A description safe to print (no secrets).
    pub fn describe(&self) -> String {
        match self {
            CheckKind::Tcp { target } => format!("tcp {target}"),
            CheckKind::Http { url, expect_status, .. } => format!("http GET {url} → {expect_status}"),
            CheckKind::Postgres { dsn, .. } => format!("postgres {}", redact_dsn(dsn.expose_secret())),
        }
    }
}

/// One check, validated.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// `region/name`.
    pub id: CheckId,
    /// Its layer.
    pub layer: Layer,
    /// Its probe.
    pub kind: CheckKind,
    /// Steady probe interval.
    pub interval: Duration,
    /// Re-probe interval after a failure until confirmed.
    pub fast_interval: Duration,
    /// Hard timeout of one probe.
    pub timeout: Duration,
    /// Consecutive failures to go down.
    pub fall: u32,
    /// Consecutive successes to come back up.
    pub rise: u32,
    /// Latency above which a success is degraded.
    pub degraded_latency: Option<Duration>,
    /// Hedged attempts per probe within `timeout`; the probe fails only when every one fails.
    pub attempts: u32,
}

/// A traffic provider, validated.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// Writes the plan as JSON.
    File {
        /// Provider name.
        name: String,
        /// Target file.
        path: PathBuf,
    },
    /// PowerDNS Authoritative HTTP API.
    PowerDns(PowerDnsConfig),
    /// HAProxy runtime API.
    Haproxy(HaproxyConfig),
    /// RFC 2136 dynamic DNS updates with TSIG.
    Rfc2136(Rfc2136Config),
    /// AWS Route 53 weighted records.
    Route53(Route53Config),
    /// Signed JSON POST.
    Webhook(WebhookConfig),
}

impl ProviderConfig {
    /// The provider's name, unique among providers.
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::File { name, .. } => name,
            ProviderConfig::PowerDns(p) => &p.name,
            ProviderConfig::Haproxy(p) => &p.name,
            ProviderConfig::Rfc2136(p) => &p.name,
            ProviderConfig::Route53(p) => &p.name,
            ProviderConfig::Webhook(p) => &p.name,
        }
    }

    /// A one-line, secret-free description for `check-config`.
    pub fn describe(&self) -> String {
        match self {
            ProviderConfig::File { name, path } => format!("{name} (file {})", path.display()),
            ProviderConfig::PowerDns(d) => format!("{} (powerdns {} {})", d.name, d.api_url, d.record),
            ProviderConfig::Haproxy(h) => {
                let admin = match &h.admin {
                    HaproxyAdmin::Tcp(a) => a.to_string(),
                    HaproxyAdmin::Unix(p) => p.display().to_string(),
                };
                format!("{} (haproxy {admin} backend {})", h.name, h.backend)
            }
            ProviderConfig::Rfc2136(d) => {
                format!("{} (rfc2136 {} {} key {})", d.name, d.server, d.record, d.tsig_key_name)
            }
            ProviderConfig::Route53(r) => format!(
                "{} (route53 zone {} {} region {}{})",
                r.name,
                r.hosted_zone_id,
                r.record,
                r.region,
                r.endpoint_url.as_ref().map(|u| format!(" endpoint {u}")).unwrap_or_default()
            ),
            ProviderConfig::Webhook(w) => format!("{} (webhook {})", w.name, w.url),
        }
    }
}

/// PowerDNS provider settings.
#[derive(Debug, Clone)]
pub struct PowerDnsConfig {
    /// Provider name.
    pub name: String,
    /// API base URL.
    pub api_url: String,
    /// API key (secret).
    pub api_key: SecretString,
    /// Server id, normally `localhost`.
    pub server_id: String,
    /// Zone with trailing dot.
    pub zone: String,
    /// Weighted record name with trailing dot.
    pub record: String,
    /// Answer TTL in seconds.
    pub ttl: u32,
    /// Per-call timeout.
    pub timeout: Duration,
    /// DNS listener used to verify answers, if set.
    pub dns_addr: Option<SocketAddr>,
}

/// `[schedule]`, validated.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Cron expression for housekeeping.
    pub housekeeping: String,
    /// Retention of raw events and samples.
    pub retention: Duration,
    /// Scheduled drills.
    pub drills: Vec<ScheduledDrill>,
}

impl Config {
    /// Reads and validates a file, taking secrets and overrides from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read, parsed or validated.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string(), &|k| std::env::var(k).ok())
    }

    /// Parses and validates TOML text; `env` looks up environment variables.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?;
        Self::from_raw(raw, env)
    }

    /// Validates a parsed file. Lists every problem, not only the first.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with one [`Problem`] per issue found.
    pub fn from_raw(raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let regions = validate_regions(&raw.regions, env, &mut p);
        let names: Vec<RegionName> = regions.iter().map(|r| r.name.clone()).collect();
        let orchestrator = validate_orchestrator(&raw.orchestrator, &names, env, &mut p);
        let policy = validate_policy(&raw.policy, &regions, &mut p);
        let (providers, guards) = validate_providers(&raw.providers, &regions, env, &mut p);
        let notifications = providers::validate_notifications(&raw.notifications, env, &mut p);
        let schedule = ScheduleConfig {
            housekeeping: raw.schedule.housekeeping.clone().unwrap_or_else(|| "0 */5 * * * *".to_string()),
            retention: raw.schedule.retention.unwrap_or(Duration::from_secs(7 * 24 * 3600)),
            drills: Vec::new(),
        };
        let replication = ReplicationConfig {
            interval: raw.replication.interval.unwrap_or(Duration::from_secs(1)),
            timeout: raw.replication.timeout.unwrap_or(Duration::from_millis(800)),
            heartbeat_table: raw
                .replication
                .heartbeat_table
                .clone()
                .unwrap_or_else(|| "failover_orchestrator_heartbeat".into()),
            heartbeat: raw.replication.heartbeat.unwrap_or(true),
            raw_retention: raw.replication.raw_retention.unwrap_or(Duration::from_secs(24 * 3600)),
        };
        if replication.interval.is_zero() {
            p.push("replication.interval", "is zero", "use a positive duration such as \"1s\"");
        }
        if replication.timeout.is_zero() || replication.timeout > replication.interval {
            p.push(
                "replication.timeout",
                format!("({}) must be > 0 and <= interval", humantime::format_duration(replication.timeout)),
                "lower timeout or raise replication.interval",
            );
        }
        let ht = &replication.heartbeat_table;
        if ht.is_empty()
            || ht.len() > 63
            || !ht.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || ht.starts_with(|c: char| c.is_ascii_digit())
        {
            p.push(
                "replication.heartbeat_table",
                format!("`{ht}` is not a plain table name"),
                "use lowercase letters, digits and '_', e.g. \"failover_orchestrator_heartbeat\"",
            );
        }
        if schedule.housekeeping.split_whitespace().count() != 6 {
            p.push(
                "schedule.housekeeping",
                format!("`{}` is not a 6-field cron expression", schedule.housekeeping),
                "write seconds first, e.g. \"0 */5 * * * *\" for every five minutes",
            );
        }
        let auth = raw.auth.as_ref().and_then(|a| validate_auth(a, env, &mut p));
        let mut schedule = schedule;
        if let Some(policy) = &policy {
            schedule.drills = validate_scheduled_drills(&raw.schedule.drills, policy, &mut p);
        }
        if !p.0.is_empty() {
            return Err(ConfigError::Invalid(p.0));
        }
        match (orchestrator, policy) {
            (Some(orchestrator), Some(policy)) => Ok(Config {
                orchestrator,
                policy,
                regions,
                providers,
                guards,
                notifications,
                schedule,
                auth,
                replication,
            }),
            // Both are None only when a problem was pushed, which returned above.
            _ => Err(ConfigError::Invalid(vec![Problem {
                key: "orchestrator".into(),
                what: "incomplete".into(),
                fix: "see the configuration reference in README.md".into(),
            }])),
        }
    }

    /// The region named `name`.
    pub fn region(&self, name: &RegionName) -> Option<&RegionConfig> {
        self.regions.iter().find(|r| &r.name == name)
    }

    /// Every check of every region.
    pub fn checks(&self) -> impl Iterator<Item = &CheckConfig> {
        self.regions.iter().flat_map(|r| r.checks.iter())
    }

    /// A one-screen, secret-free summary for `check-config`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let o = &self.orchestrator;
        s.push_str(&format!(
            "orchestrator: vantage {} · listen {} · store {}\n",
            o.vantage,
            o.listen,
            redact_dsn(o.store_dsn.expose_secret())
        ));
        s.push_str(&format!("regions ({}):\n", self.regions.len()));
        for r in &self.regions {
            let lag = r
                .postgres
                .as_ref()
                .map(|pg| {
                    let b = pg.max_lag.bytes.map(|b| format!("{b} B")).unwrap_or_else(|| "-".into());
                    let t = pg
                        .max_lag
                        .time
                        .map(|t| humantime::format_duration(t).to_string())
                        .unwrap_or_else(|| "-".into());
                    format!(" · max lag {b} / {t}")
                })
                .unwrap_or_default();
            s.push_str(&format!("  {:<10} {:<8} weight {:>3}{}\n", r.name.as_str(), r.role.to_string(), r.weight, lag));
            for c in &r.checks {
                s.push_str(&format!(
                    "    {:<10} {:<12} every {} (timeout {}, fall {}, rise {}) {}\n",
                    c.layer.to_string(),
                    c.id.name,
                    humantime::format_duration(c.interval),
                    humantime::format_duration(c.timeout),
                    c.fall,
                    c.rise,
                    c.kind.describe()
                ));
            }
        }
        let pol = &self.policy;
        s.push_str(&format!(
            "policy: degraded keeps {}% · order {} · dwell {} · failback {:?} (hold {}, step {}) · budget {} per {} · quorum {}\n",
            pol.degraded_weight_percent,
            pol.failover_order.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" → "),
            humantime::format_duration(pol.dwell),
            pol.failback,
            humantime::format_duration(pol.failback_hold),
            pol.failback_step,
            pol.budget.max,
            humantime::format_duration(pol.budget.window),
            pol.quorum,
        ));
        s.push_str("providers: ");
        s.push_str(&self.providers.iter().map(ProviderConfig::describe).collect::<Vec<_>>().join(", "));
        s.push('\n');
        s
    }
}

/// Replaces the password of a DSN (URL or key=value form) with `***`.
pub fn redact_dsn(dsn: &str) -> String {
    if let Some(scheme_end) = dsn.find("://") {
        let rest = &dsn[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!("{}{}:***{}", &dsn[..scheme_end + 3], &userinfo[..colon], &rest[at..]);
            }
        }
        return dsn.to_string();
    }
    dsn.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The environment variable that overrides region `name`'s PostgreSQL DSN.
pub fn region_dsn_env(name: &RegionName) -> String {
    format!("FO_PG_DSN_{}", name.as_str().to_ascii_uppercase().replace('-', "_"))
}

fn looks_like_dsn(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains("host=")
}

fn validate_orchestrator(
    raw: &raw::RawOrchestrator,
    regions: &[RegionName],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<OrchestratorConfig> {
    let vantage = match &raw.vantage {
        Some(v) if regions.iter().any(|r| r.as_str() == v) => Some(RegionName::new(v.clone())),
        Some(v) => {
            p.push(
                "orchestrator.vantage",
                format!("`{v}` is not one of the regions"),
                format!("set it to the region this orchestrator runs in: one of {}", list(regions)),
            );
            None
        }
        None => {
            p.push(
                "orchestrator.vantage",
                "missing",
                "name the region this orchestrator runs in, e.g. vantage = \"primary\"",
            );
            None
        }
    };
    let listen_text = raw.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(
                "orchestrator.listen",
                format!("`{listen_text}` is not an address with a port"),
                "write ip:port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
            );
            None
        }
    };
    let dsn = env(ENV_STORE_DSN).or_else(|| raw.store_dsn.clone());
    let store_dsn = match dsn {
        Some(d) if looks_like_dsn(&d) => Some(SecretString::from(d)),
        Some(_) => {
            p.push(
                "orchestrator.store_dsn",
                "is not a PostgreSQL DSN",
                format!("use postgres://user@host:port/db, or set {ENV_STORE_DSN}"),
            );
            None
        }
        None => {
            p.push(
                "orchestrator.store_dsn",
                "missing",
                format!("set store_dsn = \"postgres://…\" or the environment variable {ENV_STORE_DSN}"),
            );
            None
        }
    };
    Some(OrchestratorConfig {
        vantage: vantage?,
        listen: listen?,
        store_dsn: store_dsn?,
        shutdown_timeout: raw.shutdown_timeout.unwrap_or(Duration::from_secs(10)),
        metrics_public: raw.metrics_public.unwrap_or(true),
    })
}

fn validate_auth(raw: &raw::RawAuth, env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) -> Option<AuthConfig> {
    let (key, text) = match (&raw.tokens_file, &raw.tokens_env) {
        (Some(_), Some(_)) => {
            p.push("auth", "both tokens_file and tokens_env are set", "keep one of them");
            return None;
        }
        (Some(path), None) => match std::fs::read_to_string(path) {
            Ok(t) => ("auth.tokens_file", t),
            Err(e) => {
                p.push("auth.tokens_file", format!("cannot read {path}: {e}"), "point it at a readable tokens file");
                return None;
            }
        },
        (None, Some(var)) => match env(var) {
            Some(t) => ("auth.tokens_env", t),
            None => {
                p.push("auth.tokens_env", format!("environment variable {var} is not set"), format!("export {var}=…"));
                return None;
            }
        },
        (None, None) => {
            p.push(
                "auth",
                "no token source",
                "set tokens_file = \"/etc/failover-orchestrator/tokens\" (lines: name role sha256-hex) or tokens_env",
            );
            return None;
        }
    };
    match TokenSet::parse(&text) {
        Ok(tokens) if tokens.is_empty() => {
            p.push(key, "holds no token", "add a line: name role sha256-hex-of-token (role: viewer, operator, admin)");
            None
        }
        Ok(tokens) => Some(AuthConfig {
            tokens,
            public_reads: raw.public_reads.unwrap_or(false),
            healthz_public: raw.healthz_public.unwrap_or(true),
        }),
        Err(errors) => {
            for e in errors {
                p.push(
                    format!("{key} line {}", e.line),
                    e.message,
                    "write `name role hash`, hash = `printf %s TOKEN | sha256sum`",
                );
            }
            None
        }
    }
}

fn validate_scheduled_drills(raw: &[raw::RawScheduledDrill], policy: &Policy, p: &mut Problems) -> Vec<ScheduledDrill> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, d) in raw.iter().enumerate() {
        let key = format!("schedule.drills[{i}]");
        let Some(name) = d.name.clone().filter(|n| !n.trim().is_empty()) else {
            p.push(format!("{key}.name"), "missing", "give the scheduled drill a unique name");
            continue;
        };
        if !names.insert(name.clone()) {
            p.push(
                format!("{key}.name"),
                format!("`{name}` is used twice"),
                "give every scheduled drill a unique name",
            );
        }
        let cron = d.cron.clone().unwrap_or_default();
        if let Err(e) = parse_cron(&cron) {
            p.push(format!("{key}.cron"), e, "write 6 fields, seconds first, e.g. \"0 0 10 * * Tue\"");
        }
        let tz_name = d.timezone.clone().unwrap_or_else(|| "UTC".into());
        let timezone = match tz_name.parse::<chrono_tz::Tz>() {
            Ok(t) => t,
            Err(_) => {
                p.push(
                    format!("{key}.timezone"),
                    format!("`{tz_name}` is not an IANA time zone"),
                    "use a name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\"",
                );
                chrono_tz::Tz::UTC
            }
        };
        let mut blackouts = Vec::new();
        for (j, b) in d.blackout.iter().enumerate() {
            match Blackout::parse(b) {
                Ok(b) => blackouts.push(b),
                Err(e) => p.push(
                    format!("{key}.blackout[{j}]"),
                    e,
                    "write \"HH:MM-HH:MM\" (daily, local) or \"2026-12-24T00:00:00Z/2026-12-27T00:00:00Z\"",
                ),
            }
        }
        let request = DrillRequest {
            evacuate: d.evacuate.clone(),
            target: d.target.clone(),
            steps: d.steps.clone(),
            hold_seconds: Some(d.hold.unwrap_or(Duration::from_secs(30)).as_secs_f64()),
            dry_run: d.dry_run.unwrap_or(false),
            reason: d.reason.clone().unwrap_or_else(|| format!("scheduled drill {name}")),
        };
        if let Err(e) = drill::validate(policy, &request) {
            let field = if e.field == "hold_seconds" { "hold".to_string() } else { e.field };
            p.push(format!("{key}.{field}"), e.message, "see the drill fields in README.md");
        }
        out.push(ScheduledDrill { name, cron, timezone, request, blackouts });
    }
    out
}

fn list(names: &[RegionName]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

fn validate_regions(raw: &[RawRegion], env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) -> Vec<RegionConfig> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    if raw.len() < 2 {
        p.push(
            "regions",
            format!("{} region(s) configured", raw.len()),
            "configure at least two [[regions]] (a primary and a standby)",
        );
    }
    for (i, r) in raw.iter().enumerate() {
        let key = format!("regions[{i}]");
        let name = match &r.name {
            Some(n) if RegionName::is_valid(n) => {
                if !seen.insert(n.clone()) {
                    p.push(format!("{key}.name"), format!("`{n}` is used twice"), "give every region a unique name");
                }
                Some(RegionName::new(n.clone()))
            }
            Some(n) => {
                p.push(
                    format!("{key}.name"),
                    format!("`{n}` is not a valid name"),
                    "use lowercase letters, digits and '-', starting with a letter",
                );
                None
            }
            None => {
                p.push(format!("{key}.name"), "missing", "add name = \"…\"");
                None
            }
        };
        let role = match r.role.as_deref() {
            Some("primary") => Some(Role::Primary),
            Some("standby") => Some(Role::Standby),
            Some("dr") => Some(Role::Dr),
            Some(other) => {
                p.push(
                    format!("{key}.role"),
                    format!("`{other}` is not a role"),
                    "use \"primary\", \"standby\" or \"dr\"",
                );
                None
            }
            None => {
                p.push(format!("{key}.role"), "missing", "add role = \"primary\" | \"standby\" | \"dr\"");
                None
            }
        };
        let weight = match r.weight {
            Some(w) if (0..=100).contains(&w) => Some(w as u32),
            Some(w) => {
                p.push(
                    format!("{key}.weight"),
                    format!("{w} is outside 0–100"),
                    "use a share between 0 and 100; all regions sum to 100",
                );
                None
            }
            None => {
                p.push(
                    format!("{key}.weight"),
                    "missing",
                    "add weight = N (normal share of traffic, all regions sum to 100)",
                );
                None
            }
        };
        let address = match &r.address {
            Some(a) => match a.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    p.push(
                        format!("{key}.address"),
                        format!("`{a}` is not an IP address"),
                        "write an IPv4 or IPv6 address, e.g. \"192.0.2.10\"",
                    );
                    None
                }
            },
            None => None,
        };
        let postgres = r.postgres.as_ref().and_then(|pg| {
            let env_key = name.as_ref().map(region_dsn_env);
            let dsn = env_key.as_deref().and_then(env).or_else(|| pg.dsn.clone());
            let dsn = match dsn {
                Some(d) if looks_like_dsn(&d) => Some(SecretString::from(d)),
                Some(_) => {
                    p.push(
                        format!("{key}.postgres.dsn"),
                        "is not a PostgreSQL DSN",
                        "use postgres://user@host:port/db",
                    );
                    None
                }
                None => {
                    p.push(
                        format!("{key}.postgres.dsn"),
                        "missing",
                        format!(
                            "set dsn = \"postgres://…\" or the environment variable {}",
                            env_key.unwrap_or_default()
                        ),
                    );
                    None
                }
            };
            let bytes = match pg.max_lag_bytes {
                Some(b) if b >= 0 => Some(b as u64),
                Some(b) => {
                    p.push(format!("{key}.postgres.max_lag_bytes"), format!("{b} is negative"), "use 0 or more bytes");
                    None
                }
                None => None,
            };
            let degrade_bytes = match pg.degrade_lag_bytes {
                Some(b) if b >= 0 => Some(b as u64),
                Some(b) => {
                    p.push(
                        format!("{key}.postgres.degrade_lag_bytes"),
                        format!("{b} is negative"),
                        "use 0 or more bytes",
                    );
                    None
                }
                None => None,
            };
            let application_name = pg.application_name.clone().or_else(|| r.name.clone()).unwrap_or_default();
            if application_name.is_empty() || application_name.len() > 63 {
                p.push(
                    format!("{key}.postgres.application_name"),
                    "must be 1–63 characters",
                    "use the standby's application_name from primary_conninfo",
                );
            }
            Some(RegionPostgres {
                dsn: dsn?,
                max_lag: LagLimit { bytes, time: pg.max_lag },
                degrade_lag: LagLimit { bytes: degrade_bytes, time: pg.degrade_lag },
                application_name,
                promote: pg.promote.unwrap_or(false),
            })
        });
        let mut checks = Vec::new();
        let mut check_names = HashSet::new();
        for (j, c) in r.checks.iter().enumerate() {
            let ck = format!("{key}.checks[{j}]");
            if let Some(n) = &c.name {
                if !check_names.insert(n.clone()) {
                    p.push(
                        format!("{ck}.name"),
                        format!("`{n}` is used twice in this region"),
                        "give every check of a region a unique name",
                    );
                }
            }
            if let Some(check) = validate_check(&ck, c, name.as_ref(), postgres.as_ref(), p) {
                checks.push(check);
            }
        }
        if r.checks.is_empty() {
            p.push(
                format!("{key}.checks"),
                "no checks",
                "add at least one [[regions.checks]] (an app-layer http check is the usual start)",
            );
        }
        if let (Some(name), Some(role), Some(weight)) = (name, role, weight) {
            out.push(RegionConfig { name, role, weight, address, postgres, checks, targets: r.targets.clone() });
        }
    }
    let primaries = out.iter().filter(|r| r.role == Role::Primary).count();
    if !out.is_empty() && primaries != 1 {
        p.push(
            "regions[].role",
            format!("{primaries} regions have role \"primary\""),
            "mark exactly one region as role = \"primary\"",
        );
    }
    if out.len() == raw.len() && !out.is_empty() {
        let sum: u32 = out.iter().map(|r| r.weight).sum();
        if sum != 100 {
            p.push(
                "regions[].weight",
                format!("weights sum to {sum}"),
                "make the normal weights of all regions add up to 100 (e.g. 80 / 20 / 0)",
            );
        }
    }
    out
}

fn validate_check(
    key: &str,
    c: &RawCheck,
    region: Option<&RegionName>,
    pg: Option<&RegionPostgres>,
    p: &mut Problems,
) -> Option<CheckConfig> {
    let name = c.name.clone().filter(|n| !n.is_empty());
    if name.is_none() {
        p.push(format!("{key}.name"), "missing", "add name = \"…\" (unique within the region)");
    }
    let layer = match c.layer.as_deref() {
        Some("infra") => Some(Layer::Infra),
        Some("middleware") => Some(Layer::Middleware),
        Some("app") => Some(Layer::App),
        Some(o) => {
            p.push(format!("{key}.layer"), format!("`{o}` is not a layer"), "use \"infra\", \"middleware\" or \"app\"");
            None
        }
        None => {
            p.push(format!("{key}.layer"), "missing", "add layer = \"infra\" | \"middleware\" | \"app\"");
            None
        }
    };
    let kind = match c.kind.as_deref() {
        Some("tcp") => match &c.target {
            Some(t) if t.rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok()) => {
                Some(CheckKind::Tcp { target: t.clone() })
            }
            Some(t) => {
                p.push(format!("{key}.target"), format!("`{t}` is not host:port"), "write e.g. \"10.0.0.5:443\"");
                None
            }
            None => {
                p.push(format!("{key}.target"), "missing for type = \"tcp\"", "add target = \"host:port\"");
                None
            }
        },
        Some("http") => {
            let expect_status = match c.expect_status {
                None => Some(200),
                Some(s) if (100..=599).contains(&s) => Some(s as u16),
                Some(s) => {
                    p.push(
                        format!("{key}.expect_status"),
                        format!("{s} is not an HTTP status"),
                        "use a code between 100 and 599",
                    );
                    None
                }
            };
            match &c.url {
                Some(u) if reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => {
                    expect_status.map(|expect_status| CheckKind::Http {
                        url: u.clone(),
                        expect_status,
                        body_contains: c.body_contains.clone(),
                    })
                }
                Some(u) => {
                    p.push(
                        format!("{key}.url"),
                        format!("`{u}` is not an http(s) URL"),
                        "write e.g. \"http://10.0.0.5:8080/health\"",
                    );
                    None
                }
                None => {
                    p.push(format!("{key}.url"), "missing for type = \"http\"", "add url = \"http://…\"");
                    None
                }
            }
        }
        Some("postgres") => {
            let dsn = c.dsn.clone().map(SecretString::from).or_else(|| pg.map(|pg| pg.dsn.clone()));
            match dsn {
                Some(dsn) if looks_like_dsn(dsn.expose_secret()) => {
                    Some(CheckKind::Postgres { dsn, expect_recovery: c.expect_recovery })
                }
                Some(_) => {
                    p.push(format!("{key}.dsn"), "is not a PostgreSQL DSN", "use postgres://user@host:port/db");
                    None
                }
                None => {
                    p.push(
                        format!("{key}.dsn"),
                        "missing for type = \"postgres\" and the region has no [regions.postgres]",
                        "add dsn = \"postgres://…\" here or a [regions.postgres] table with dsn",
                    );
                    None
                }
            }
        }
        Some(o) => {
            p.push(
                format!("{key}.type"),
                format!("`{o}` is not a check type"),
                "use \"tcp\", \"http\" or \"postgres\"",
            );
            None
        }
        None => {
            p.push(format!("{key}.type"), "missing", "add type = \"tcp\" | \"http\" | \"postgres\"");
            None
        }
    };
    let interval = c.interval.unwrap_or(Duration::from_secs(1));
    let timeout = c.timeout.unwrap_or(interval.mul_f64(0.8));
    let fast_interval = c.fast_interval.unwrap_or(interval);
    if interval.is_zero() {
        p.push(format!("{key}.interval"), "is zero", "use a positive duration, e.g. \"1s\"");
    }
    if timeout.is_zero() {
        p.push(format!("{key}.timeout"), "is zero", "use a positive duration below interval");
    } else if timeout > interval {
        p.push(
            format!("{key}.timeout"),
            format!(
                "({}) must be <= interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
            "lower timeout or raise interval",
        );
    }
    if fast_interval.is_zero() || fast_interval > interval {
        p.push(
            format!("{key}.fast_interval"),
            format!(
                "({}) must be > 0 and <= interval ({})",
                humantime::format_duration(fast_interval),
                humantime::format_duration(interval)
            ),
            "use e.g. \"100ms\", or leave it out to re-probe at the steady interval",
        );
    }
    if let Some(d) = c.degraded_latency {
        if d >= timeout && !timeout.is_zero() {
            p.push(
                format!("{key}.degraded_latency"),
                format!(
                    "({}) must be < timeout ({})",
                    humantime::format_duration(d),
                    humantime::format_duration(timeout)
                ),
                "lower degraded_latency or raise timeout, or slow probes will fail instead of degrading",
            );
        }
    }
    let fall = count(key, "fall", c.fall, 3, p);
    let rise = count(key, "rise", c.rise, 2, p);
    let attempts = count(key, "attempts", c.attempts, DEFAULT_ATTEMPTS, p);
    Some(CheckConfig {
        id: CheckId::new(region?.clone(), name?),
        layer: layer?,
        kind: kind?,
        interval,
        fast_interval,
        timeout,
        fall: fall?,
        rise: rise?,
        degraded_latency: c.degraded_latency,
        attempts: attempts?,
    })
}

/// Default hedged attempts per probe: at 30 % connection loss and `fall = 3`, a false
/// down needs 9 lost connections in a row (≈ 2e-5) instead of 3 (≈ 3e-2).
pub const DEFAULT_ATTEMPTS: u32 = 3;

fn count(key: &str, field: &str, v: Option<i64>, default: u32, p: &mut Problems) -> Option<u32> {
    match v {
        None => Some(default),
        Some(n) if (1..=100).contains(&n) => Some(n as u32),
        Some(n) => {
            p.push(
                format!("{key}.{field}"),
                format!("{n} is outside 1–100"),
                format!("use a count of consecutive probes, e.g. {field} = {default}"),
            );
            None
        }
    }
}

fn validate_policy(raw: &raw::RawPolicy, regions: &[RegionConfig], p: &mut Problems) -> Option<Policy> {
    let names: Vec<RegionName> = regions.iter().map(|r| r.name.clone()).collect();
    let pct = match raw.degraded_weight_percent {
        None => 50,
        Some(v) if (0..=100).contains(&v) => v as u32,
        Some(v) => {
            p.push(
                "policy.degraded_weight_percent",
                format!("{v} is outside 0–100"),
                "use the percent of its normal weight a degraded region keeps, e.g. 50",
            );
            50
        }
    };
    let order = match &raw.failover_order {
        Some(order) => {
            let mut ok = Vec::new();
            for (i, n) in order.iter().enumerate() {
                match names.iter().find(|r| r.as_str() == n) {
                    Some(r) if !ok.contains(r) => ok.push(r.clone()),
                    Some(_) => p.push(
                        format!("policy.failover_order[{i}]"),
                        format!("`{n}` is listed twice"),
                        "list each region once",
                    ),
                    None => p.push(
                        format!("policy.failover_order[{i}]"),
                        format!("`{n}` is not a region"),
                        format!("use region names: {}", list(&names)),
                    ),
                }
            }
            // Regions left out go last, in role order, so every region has a place.
            for r in default_order(regions) {
                if !ok.contains(&r) {
                    ok.push(r);
                }
            }
            ok
        }
        None => default_order(regions),
    };
    let failback = match raw.failback.as_deref() {
        None | Some("auto") => Failback::Auto,
        Some("manual") => Failback::Manual,
        Some(o) => {
            p.push("policy.failback", format!("`{o}` is not a failback mode"), "use \"manual\" or \"auto\"");
            Failback::Auto
        }
    };
    let step = match raw.failback_step {
        None => 20,
        Some(v) if (1..=100).contains(&v) => v as u32,
        Some(v) => {
            p.push(
                "policy.failback_step",
                format!("{v} is outside 1–100"),
                "use the weight points moved back per dwell period, e.g. 20",
            );
            20
        }
    };
    let budget = match &raw.failover_budget {
        None => Budget { max: 3, window: Duration::from_secs(3600) },
        Some(b) => {
            let max = match b.max {
                None => 3,
                Some(v) if (1..=1000).contains(&v) => v as u32,
                Some(v) => {
                    p.push(
                        "policy.failover_budget.max",
                        format!("{v} is outside 1–1000"),
                        "allow at least one automatic failover per window, e.g. max = 3",
                    );
                    3
                }
            };
            let window = b.window.unwrap_or(Duration::from_secs(3600));
            if window.is_zero() {
                p.push("policy.failover_budget.window", "is zero", "use a duration such as \"1h\"");
            }
            Budget { max, window }
        }
    };
    let quorum = match raw.quorum {
        None => 1,
        Some(v) if v >= 1 => v as usize,
        Some(v) => {
            p.push(
                "policy.quorum",
                format!("{v} is below 1"),
                "use the number of vantages that must agree, e.g. 2 of 3",
            );
            1
        }
    };
    Some(Policy {
        regions: regions
            .iter()
            .map(|r| RegionPolicy {
                name: r.name.clone(),
                role: r.role,
                normal_weight: r.weight,
                max_lag: r.postgres.as_ref().map(|pg| pg.max_lag).unwrap_or_default(),
            })
            .collect(),
        degraded_weight_percent: pct,
        failover_order: order,
        dwell: raw.dwell.unwrap_or(Duration::from_secs(30)),
        failback,
        failback_hold: raw.failback_hold.unwrap_or(Duration::from_secs(60)),
        failback_step: step,
        budget,
        quorum,
    })
}

fn default_order(regions: &[RegionConfig]) -> Vec<RegionName> {
    let mut v: Vec<&RegionConfig> = regions.iter().collect();
    v.sort_by_key(|r| match r.role {
        Role::Primary => 0,
        Role::Standby => 1,
        Role::Dr => 2,
    });
    v.into_iter().map(|r| r.name.clone()).collect()
}

pub(crate) fn secret_from(
    key: &str,
    env_name: Option<&String>,
    file: Option<&String>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SecretString> {
    if let Some(var) = env_name {
        return match env(var) {
            Some(v) if !v.is_empty() => Some(SecretString::from(v)),
            _ => {
                p.push(
                    format!("{key}_env"),
                    format!("environment variable {var} is not set"),
                    format!("export {var}=… before starting"),
                );
                None
            }
        };
    }
    if let Some(path) = file {
        return match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Some(SecretString::from(v.trim().to_string())),
            Ok(_) => {
                p.push(format!("{key}_file"), format!("{path} is empty"), "write the secret into the file");
                None
            }
            Err(e) => {
                p.push(
                    format!("{key}_file"),
                    format!("cannot read {path}: {e}"),
                    "point it at a readable file holding the secret",
                );
                None
            }
        };
    }
    p.push(
        format!("{key}_env"),
        "missing",
        format!("set {key}_env = \"VAR\" (an environment variable) or {key}_file = \"/path\""),
    );
    None
}

fn validate_providers(
    raw: &[RawProvider],
    regions: &[RegionConfig],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (Vec<ProviderConfig>, std::collections::BTreeMap<String, ProviderGuard>) {
    let mut out = Vec::new();
    let mut guards = std::collections::BTreeMap::new();
    if raw.is_empty() {
        p.push(
            "providers",
            "no provider configured",
            "add a [[providers]] table, e.g. type = \"file\" with path = \"plan.json\"",
        );
    }
    let mut names = HashSet::new();
    for (i, prov) in raw.iter().enumerate() {
        let key = format!("providers[{i}]");
        let guard = providers::validate_guard(&key, guard_fields(prov), p);
        let cfg = match prov {
            RawProvider::File(f) => match &f.path {
                Some(path) if !path.is_empty() => Some(ProviderConfig::File {
                    name: f.name.clone().unwrap_or_else(|| "file".into()),
                    path: PathBuf::from(path),
                }),
                _ => {
                    p.push(format!("{key}.path"), "missing", "add path = \"/var/lib/failover-orchestrator/plan.json\"");
                    None
                }
            },
            RawProvider::Powerdns(d) => {
                let api_url = match &d.api_url {
                    Some(u) if reqwest::Url::parse(u).is_ok() => Some(u.trim_end_matches('/').to_string()),
                    Some(u) => {
                        p.push(
                            format!("{key}.api_url"),
                            format!("`{u}` is not a URL"),
                            "write e.g. \"http://127.0.0.1:8081\"",
                        );
                        None
                    }
                    None => {
                        p.push(format!("{key}.api_url"), "missing", "add api_url = \"http://pdns-host:8081\"");
                        None
                    }
                };
                let api_key =
                    secret_from(&format!("{key}.api_key"), d.api_key_env.as_ref(), d.api_key_file.as_ref(), env, p);
                let (zone, record) = providers::zone_and_record(&key, d.zone.as_ref(), d.record.as_ref(), p);
                let ttl = providers::ttl(&key, d.ttl, p);
                let dns_addr = match &d.dns_addr {
                    None => None,
                    Some(a) => match a.parse::<SocketAddr>() {
                        Ok(a) => Some(a),
                        Err(_) => {
                            p.push(
                                format!("{key}.dns_addr"),
                                format!("`{a}` is not ip:port"),
                                "write e.g. \"127.0.0.1:53\"",
                            );
                            None
                        }
                    },
                };
                for r in regions {
                    if r.weight > 0 && r.address.is_none() {
                        p.push(
                            format!("regions[{}].address", regions.iter().position(|x| x.name == r.name).unwrap_or(0)),
                            format!("region `{}` has no address, which the powerdns provider answers with", r.name),
                            "add address = \"<ip of the region's entry point>\"",
                        );
                    }
                }
                match (api_url, api_key, zone, record, ttl) {
                    (Some(api_url), Some(api_key), Some(zone), Some(record), Some(ttl)) => {
                        Some(ProviderConfig::PowerDns(PowerDnsConfig {
                            name: d.name.clone().unwrap_or_else(|| "powerdns".into()),
                            api_url,
                            api_key,
                            server_id: d.server_id.clone().unwrap_or_else(|| "localhost".into()),
                            zone,
                            record,
                            ttl,
                            timeout: d.timeout.unwrap_or(Duration::from_secs(2)),
                            dns_addr,
                        }))
                    }
                    _ => None,
                }
            }
            RawProvider::Haproxy(h) => providers::validate_haproxy(&key, h, regions, p).map(ProviderConfig::Haproxy),
            RawProvider::Rfc2136(d) => {
                providers::validate_rfc2136(&key, d, regions, env, p).map(ProviderConfig::Rfc2136)
            }
            RawProvider::Route53(r) => {
                providers::validate_route53(&key, r, regions, env, p).map(ProviderConfig::Route53)
            }
            RawProvider::Webhook(w) => providers::validate_webhook(&key, w, env, p).map(ProviderConfig::Webhook),
        };
        if let Some(cfg) = cfg {
            guards.insert(cfg.name().to_string(), guard);
            if !names.insert(cfg.name().to_string()) {
                p.push(
                    format!("{key}.name"),
                    format!("`{}` is used twice", cfg.name()),
                    "give each provider a unique name",
                );
            }
            out.push(cfg);
        }
    }
    (out, guards)
}

/// The breaker / drift / propagation fields of any provider table.
fn guard_fields(prov: &RawProvider) -> providers::GuardFields<'_> {
    macro_rules! common {
        ($r:expr, $resolvers:expr, $prop:expr) => {
            providers::GuardFields {
                on_drift: $r.on_drift.as_ref(),
                drift_interval: $r.drift_interval,
                breaker_failures: $r.breaker_failures,
                breaker_cool_down: $r.breaker_cool_down,
                resolvers: $resolvers,
                propagation_timeout: $prop,
            }
        };
    }
    match prov {
        RawProvider::File(r) => common!(r, &[], None),
        RawProvider::Powerdns(r) => common!(r, &r.resolvers, r.propagation_timeout),
        RawProvider::Haproxy(r) => common!(r, &[], None),
        RawProvider::Rfc2136(r) => common!(r, &r.resolvers, r.propagation_timeout),
        RawProvider::Route53(r) => common!(r, &[], None),
        RawProvider::Webhook(r) => common!(r, &[], None),
    }
}

pub(crate) fn fqdn(key: &str, field: &str, v: Option<&String>, p: &mut Problems) -> Option<String> {
    match v {
        Some(z) if z.ends_with('.') && z.len() > 1 => Some(z.to_ascii_lowercase()),
        Some(z) => {
            p.push(
                format!("{key}.{field}"),
                format!("`{z}` has no trailing dot"),
                format!("write it fully qualified: \"{z}.\""),
            );
            None
        }
        None => {
            p.push(format!("{key}.{field}"), "missing", format!("add {field} = \"example.com.\""));
            None
        }
    }
}

#[cfg(test)]
mod tests;
