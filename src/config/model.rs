//! The validated configuration sections: this orchestrator, the regions with
//! their PostgreSQL and checks, lag collection, the API tokens and the schedule.
//!
//! Plain data built by the validators (`validate/`), never by hand outside
//! tests: every value here has passed its check. The provider settings are in
//! `providers.rs`; the decision policy (weights, RPO gates, failover order) in
//! [`crate::policy`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::providers::HaproxyAdmin;
use crate::auth::TokenSet;
use crate::drill::schedule::ScheduledDrill;
use crate::policy::LagLimit;
use crate::redact;
use crate::region::{CheckId, Layer, RegionName, Role};
use crate::signal::ValueLimits;
use crate::signal::haproxy::PassiveLimits;
use crate::signal::node::NodeSignal;
use crate::signal::selector::Selector;

/// `[auth]`, validated.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The tokens (hashes only).
    pub tokens: TokenSet,
    /// Whether GET requests need no token.
    pub public_reads: bool,
    /// Whether `/healthz` and `/readyz` need no token.
    pub healthz_public: bool,
    /// How long audit entries are kept before the prune deletes them.
    pub audit_retention: Duration,
}

/// How long audit entries are kept when `[auth] audit_retention` is not set (or there is no `[auth]`).
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// `[limits]`, validated: what one client (or all of them) may ask of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Mutating requests per client IP per minute (also the burst).
    pub mutations_per_minute: std::num::NonZeroU32,
    /// Requests with an invalid token per client IP per minute before that IP is refused with 429.
    pub auth_failures_per_minute: std::num::NonZeroU32,
    /// Concurrent `/api/v1/stream` clients.
    pub max_streams: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // MIN is 1: 1 + 59 = 60, 1 + 9 = 10.
        let one = std::num::NonZeroU32::MIN;
        Self {
            mutations_per_minute: one.saturating_add(59),
            auth_failures_per_minute: one.saturating_add(9),
            max_streams: 64,
        }
    }
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
    /// The application's login roles: locked out of an old primary by its fence, given
    /// LOGIN back on the new primary (roles replicate, so one list serves every member).
    /// Empty: the fence is only read-only plus terminated sessions, which a client can undo.
    pub app_roles: Vec<AppRole>,
    /// Connecting to an old primary within it tells reachable from unreachable; each fence
    /// statement must finish within it too.
    pub fence_timeout: Duration,
}

/// A PostgreSQL role name the application logs in with (see [`ReplicationConfig::app_roles`]).
///
/// Invariant: 1–63 bytes (PostgreSQL would silently truncate a longer name, which could then
/// name another role), no control characters, not a reserved or built-in role name. It is
/// still spliced into SQL only through quoting, never raw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppRole(String);

impl AppRole {
    /// Checks a role name; the error says what is wrong with it.
    ///
    /// # Errors
    /// A sentence naming the problem, for a configuration [`Problem`](super::Problem).
    pub fn parse(name: &str) -> Result<Self, String> {
        const RESERVED: [&str; 5] = ["public", "none", "current_user", "current_role", "session_user"];
        if name.is_empty() || name.len() > 63 {
            return Err(format!("`{name}` must be 1–63 bytes long"));
        }
        if name.chars().any(char::is_control) {
            return Err(format!("{name:?} holds a control character"));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) || lower.starts_with("pg_") {
            return Err(format!("`{name}` is a reserved or built-in PostgreSQL role"));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AppRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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
    /// Where writes not yet in the store are spilled (None: memory only).
    pub spill_dir: Option<std::path::PathBuf>,
    /// TLS of the API (None: plain http).
    pub tls: Option<TlsFiles>,
}

/// `[traces]`, validated: where incident traces go. Only built when an endpoint is given (in
/// the file or the standard environment variables); without one nothing is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracesConfig {
    /// The OTLP/HTTP traces URL the spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    /// Where the endpoint came from: `traces.otlp_endpoint` or the environment variable's name.
    pub endpoint_from: &'static str,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Bound of one export request.
    pub timeout: Duration,
}

/// `orchestrator.tls_cert` and `tls_key`: PEM files, both readable and parsed at validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key of the leaf.
    pub key: std::path::PathBuf,
}

/// `[coordination]`, validated.
#[derive(Debug, Clone)]
pub struct CoordinationConfig {
    /// Which engine decides who leads.
    pub backend: Backend,
    /// Regions that run an orchestrator (each one a vantage).
    pub vantages: Vec<RegionName>,
    /// Lease lifetime: a leader that cannot renew steps down within it.
    pub lease_ttl: Duration,
    /// How long a peer's published view counts as fresh without an update.
    pub view_ttl: Duration,
    /// Key prefix in etcd, without a trailing slash.
    pub prefix: String,
    /// This orchestrator's API URL as peers and operators reach it.
    pub advertise: String,
}

/// The coordination engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// One orchestrator, always the leader.
    Single,
    /// etcd v3: leader key on a lease, views under the lease, the plan in a fenced transaction.
    Etcd {
        /// Client URLs of the etcd members.
        endpoints: Vec<String>,
    },
}

impl Backend {
    /// `single` or `etcd`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Single => "single",
            Backend::Etcd { .. } => "etcd",
        }
    }
}

/// One region, validated.
#[derive(Debug, Clone)]
pub struct RegionConfig {
    /// Its name.
    pub name: RegionName,
    /// Its role.
    pub role: Role,
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
    /// A number from a Prometheus exposition endpoint (node_exporter, the app's `/metrics`),
    /// judged against limits.
    Metric {
        /// The endpoint to scrape.
        url: String,
        /// Which number.
        source: MetricSource,
        /// Its limits.
        limits: ValueLimits,
    },
    /// The single value of a Prometheus instant query, judged against limits.
    Promql {
        /// The Prometheus server (the query goes to `<url>/api/v1/query`).
        url: String,
        /// The PromQL expression.
        query: String,
        /// Its limits.
        limits: ValueLimits,
    },
    /// Passive: what an HAProxy carrying the region's traffic sees of its server. Only ever
    /// makes the region worse (see [`CheckKind::is_passive`]).
    Haproxy {
        /// The runtime API.
        admin: HaproxyAdmin,
        /// The backend.
        backend: String,
        /// The region's server in it.
        server: String,
        /// When HAProxy's view counts as degraded or down.
        limits: PassiveLimits,
    },
}

/// The number a `metric` check reads.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSource {
    /// The one sample a selector matches.
    Selector(Selector),
    /// A node_exporter host signal.
    Node(NodeSignal),
}

impl fmt::Display for MetricSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricSource::Selector(s) => write!(f, "{s}"),
            MetricSource::Node(n) => write!(f, "{n}"),
        }
    }
}

impl CheckKind {
    /// Short type name: `tcp`, `http`, `postgres`, `metric`, `promql`, `haproxy`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Postgres { .. } => "postgres",
            CheckKind::Metric { .. } => "metric",
            CheckKind::Promql { .. } => "promql",
            CheckKind::Haproxy { .. } => "haproxy",
        }
    }

    /// Whether the check is passive: it reports what something else saw (HAProxy's view of the
    /// live traffic), so its up is no evidence of health. A region's layers count a passive
    /// check only while it is degraded or down.
    pub fn is_passive(&self) -> bool {
        matches!(self, CheckKind::Haproxy { .. })
    }

    /// What it probes, safe to print (no secrets).
    pub fn target(&self) -> String {
        match self {
            CheckKind::Tcp { target } => target.clone(),
            CheckKind::Http { url, .. } | CheckKind::Metric { url, .. } | CheckKind::Promql { url, .. } => {
                redact::url(url)
            }
            CheckKind::Postgres { dsn, .. } => redact::dsn(dsn.expose_secret()),
            CheckKind::Haproxy { admin, backend, server, .. } => format!("{admin} {backend}/{server}"),
        }
    }

    /// A description safe to print (no secrets).
    pub fn describe(&self) -> String {
        match self {
            CheckKind::Tcp { target } => format!("tcp {target}"),
            CheckKind::Http { url, expect_status, .. } => format!("http GET {} → {expect_status}", redact::url(url)),
            CheckKind::Postgres { dsn, .. } => format!("postgres {}", redact::dsn(dsn.expose_secret())),
            CheckKind::Metric { url, source, limits } => {
                format!("metric {source} from {} ({})", redact::url(url), limits.describe())
            }
            CheckKind::Promql { url, query, limits } => {
                format!("promql `{query}` on {} ({})", redact::url(url), limits.describe())
            }
            CheckKind::Haproxy { .. } => format!("haproxy (passive) {}", self.target()),
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
    /// Pace of confirmation probes, which overlap; also how long a
    /// probe may go unanswered before the check confirms.
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

/// Default hedged attempts per probe: at 30 % connection loss and `fall = 3`, a false
/// down needs 9 lost connections in a row (≈ 2e-5) instead of 3 (≈ 3e-2).
pub const DEFAULT_ATTEMPTS: u32 = 3;
