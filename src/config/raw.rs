//! The first configuration stage: `regions.toml` exactly as written.
//!
//! Every struct denies unknown keys so a typo is an error, not a silently
//! ignored setting. Durations are strings such as `"5s"` or `"250ms"`.
//! Nothing here is checked beyond its type; the validators (`config/validate/`) do that.

use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This orchestrator's own settings.
    pub orchestrator: RawOrchestrator,
    /// Thresholds and rules for moving traffic.
    #[serde(default)]
    pub policy: RawPolicy,
    /// The regions, in any order.
    #[serde(default)]
    pub regions: Vec<RawRegion>,
    /// Where plans are applied. Several may be listed; each gets every plan.
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Scheduled drills and housekeeping.
    #[serde(default)]
    pub schedule: RawSchedule,
    /// Webhooks told about health transitions, plans, drills and alarms.
    #[serde(default)]
    pub notifications: Vec<RawNotification>,
    /// Replication lag collection.
    #[serde(default)]
    pub replication: RawReplication,
    /// Bearer tokens and roles for the API. Absent: reads are open and mutations are refused.
    pub auth: Option<RawAuth>,
    /// How several orchestrators agree on a leader and share what they see.
    #[serde(default)]
    pub coordination: RawCoordination,
    /// Rate limits and bounds of the API.
    #[serde(default)]
    pub limits: RawLimits,
    /// OpenTelemetry export of incident traces (off unless an endpoint is given).
    #[serde(default)]
    pub traces: RawTraces,
}

/// `[traces]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraces {
    /// Base URL of an OTLP/HTTP receiver, e.g. `"http://127.0.0.1:4318"` (`/v1/traces` is
    /// added). Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as it is), else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` added); none of them: no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces (default `OTEL_SERVICE_NAME`, else
    /// `"failover-orchestrator"`).
    pub service_name: Option<String>,
    /// Bound of one export request (default `"10s"`).
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
}

/// `[limits]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Mutating requests (POST …) one client IP may make per minute, in a burst or spread (default 60).
    pub mutations_per_minute: Option<i64>,
    /// Requests with an invalid bearer token one client IP may make per minute; past it every
    /// request of that IP gets a 429 before its token is looked at (default 10).
    pub auth_failures_per_minute: Option<i64>,
    /// Concurrent `/api/v1/stream` clients (default 64).
    pub max_streams: Option<i64>,
}

/// `[coordination]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCoordination {
    /// `"single"` (default: one orchestrator, always the leader) or `"etcd"`.
    pub backend: Option<String>,
    /// etcd client URLs, e.g. `["http://10.0.1.5:2379", …]` (one member per region).
    pub endpoints: Option<Vec<String>>,
    /// Lifetime of this orchestrator's etcd lease: a leader cut off from etcd steps down within it.
    #[serde(default, with = "humantime_serde::option")]
    pub lease_ttl: Option<Duration>,
    /// Key prefix in etcd (several deployments may share one etcd cluster).
    pub prefix: Option<String>,
    /// Regions that run an orchestrator (default: every region).
    pub vantages: Option<Vec<String>>,
    /// How long a published view stays fresh without an update (default: the lease TTL).
    #[serde(default, with = "humantime_serde::option")]
    pub view_ttl: Option<Duration>,
    /// URL of this orchestrator's API as the others reach it (default `http://<orchestrator.listen>`).
    pub advertise: Option<String>,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// File of `name role sha256-hex-of-token` lines.
    pub tokens_file: Option<String>,
    /// Environment variable holding the same lines (`;` or newlines between entries).
    pub tokens_env: Option<String>,
    /// Whether GET requests need no token (default false).
    pub public_reads: Option<bool>,
    /// Whether `/healthz` and `/readyz` need no token (default true).
    pub healthz_public: Option<bool>,
    /// How long audit entries are kept (default `"90d"`); older ones are pruned.
    #[serde(default, with = "humantime_serde::option")]
    pub audit_retention: Option<Duration>,
}

/// `[replication]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplication {
    /// How often lag is collected (and the heartbeat written).
    #[serde(default, with = "humantime_serde::option")]
    pub interval: Option<Duration>,
    /// Timeout of each lag query.
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
    /// Heartbeat table on the primary (created if missing).
    pub heartbeat_table: Option<String>,
    /// Whether the orchestrator writes the heartbeat (default true; needs write access to the primary).
    pub heartbeat: Option<bool>,
    /// How long raw lag samples are kept before only per-minute aggregates remain.
    #[serde(default, with = "humantime_serde::option")]
    pub raw_retention: Option<Duration>,
    /// PostgreSQL roles the application logs in with: an old primary is fenced by taking
    /// their LOGIN away and ending their sessions; the new primary gives LOGIN back.
    pub app_roles: Option<Vec<String>>,
    /// Bound for connecting to an old primary (no connection within it: unreachable) and for
    /// each statement of its fence (past it: not fenced, no promotion). Default 5s.
    #[serde(default, with = "humantime_serde::option")]
    pub fence_timeout: Option<Duration>,
}

/// `[orchestrator]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrchestrator {
    /// Name of the region this orchestrator runs in (its vantage point).
    pub vantage: Option<String>,
    /// Address the API, dashboard and metrics listen on, e.g. `"127.0.0.1:8080"`.
    pub listen: Option<String>,
    /// PostgreSQL DSN of the orchestrator's own store. Overridden by `FO_STORE_DSN`.
    pub store_dsn: Option<String>,
    /// How long a graceful shutdown may take before tasks are abandoned.
    #[serde(default, with = "humantime_serde::option")]
    pub shutdown_timeout: Option<Duration>,
    /// Whether `/metrics` needs no token (default true).
    pub metrics_public: Option<bool>,
    /// Directory of the spill file: every write not yet in the store is appended there
    /// (fsynced) and replayed at the next start, so a store outage followed by a crash
    /// loses no record. One directory per orchestrator. Unset: writes wait in memory only.
    pub spill_dir: Option<std::path::PathBuf>,
    /// PEM file of the API's TLS certificate chain (with `tls_key`; both or neither). Set: the
    /// API, dashboard and metrics are served over https only.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM file of the private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<std::path::PathBuf>,
}

/// `[policy]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Share of its normal weight a degraded region keeps, in percent (default 50).
    pub degraded_weight_percent: Option<i64>,
    /// Regions that take over a failed region's share, most preferred first.
    pub failover_order: Option<Vec<String>>,
    /// Minimum time between two plan changes that are not moves toward safety.
    #[serde(default, with = "humantime_serde::option")]
    pub dwell: Option<Duration>,
    /// `"manual"` or `"auto"`.
    pub failback: Option<String>,
    /// How long a recovered region must stay healthy before failback starts.
    #[serde(default, with = "humantime_serde::option")]
    pub failback_hold: Option<Duration>,
    /// Weight points moved back per dwell period during failback (1–100).
    pub failback_step: Option<i64>,
    /// At most `max` automatic failovers per `window`.
    pub failover_budget: Option<RawBudget>,
    /// Vantages that must agree before a region counts as down (default: majority).
    pub quorum: Option<i64>,
}

/// `[policy.failover_budget]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Automatic failovers allowed per window.
    pub max: Option<i64>,
    /// The sliding window.
    #[serde(default, with = "humantime_serde::option")]
    pub window: Option<Duration>,
}

/// `[[regions]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    /// Region name: lowercase letters, digits, `-`.
    pub name: Option<String>,
    /// `primary`, `standby` or `dr`.
    pub role: Option<String>,
    /// Normal share of traffic, 0–100; all regions sum to 100.
    pub weight: Option<i64>,
    /// The address DNS providers answer for this region (IPv4 or IPv6).
    pub address: Option<String>,
    /// The region's PostgreSQL, if it has one.
    pub postgres: Option<RawRegionPostgres>,
    /// Probes of this region.
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    /// Provider-specific identifiers of this region (HAProxy server name, Route 53 set id …).
    #[serde(default)]
    pub targets: toml::Table,
}

/// `[regions.postgres]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegionPostgres {
    /// DSN of the region's database. Overridden by `FO_PG_DSN_<REGION>` (upper case, `-` → `_`).
    pub dsn: Option<String>,
    /// Largest replication lag, in bytes, that still allows failing over to this region.
    pub max_lag_bytes: Option<i64>,
    /// Largest replication lag, as a duration, that still allows failing over here.
    #[serde(default, with = "humantime_serde::option")]
    pub max_lag: Option<Duration>,
    /// Lag in bytes above which the region is shown (and treated as) degraded.
    pub degrade_lag_bytes: Option<i64>,
    /// Lag as a duration above which the region is shown (and treated as) degraded.
    #[serde(default, with = "humantime_serde::option")]
    pub degrade_lag: Option<Duration>,
    /// The standby's `application_name` in the primary's `pg_stat_replication` (default: the region name).
    pub application_name: Option<String>,
    /// Promote this region's database when traffic fails over to it (default false).
    pub promote: Option<bool>,
}

/// `[[regions.checks]]`: one flat table for every check type, validated per type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Unique within the region.
    pub name: Option<String>,
    /// `infra`, `middleware` or `app`.
    pub layer: Option<String>,
    /// `tcp`, `http`, `postgres`, `metric`, `promql` or `haproxy` (passive).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `http`: the URL to GET; `metric`: the exposition endpoint (e.g. node_exporter's
    /// `http://host:9100/metrics`); `promql`: the Prometheus server (`http://prometheus:9090`).
    pub url: Option<String>,
    /// `tcp`: `host:port` to connect to.
    pub target: Option<String>,
    /// `postgres`: DSN; defaults to the region's `postgres.dsn`.
    pub dsn: Option<String>,
    /// `postgres`: expected `pg_is_in_recovery()`; unset accepts either.
    pub expect_recovery: Option<bool>,
    /// `http`: expected status code (default 200).
    pub expect_status: Option<i64>,
    /// `http`: text the body must contain.
    pub body_contains: Option<String>,
    /// Latency above which a successful probe counts as degraded.
    #[serde(default, with = "humantime_serde::option")]
    pub degraded_latency: Option<Duration>,
    /// Time between probes while the check is steady.
    #[serde(default, with = "humantime_serde::option")]
    pub interval: Option<Duration>,
    /// Time between confirmation probes (default: interval). A check confirms after a failed or
    /// degraded probe, or a probe unanswered for this long; its probes then start this far apart
    /// without waiting for each other (at most `max(fall, rise)` in flight), until
    /// `max(fall, rise)` Ok in a row.
    #[serde(default, with = "humantime_serde::option")]
    pub fast_interval: Option<Duration>,
    /// Hard timeout of one probe; must be below `interval`.
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
    /// Consecutive failures before the check is down.
    pub fall: Option<i64>,
    /// Consecutive successes before the check is up again.
    pub rise: Option<i64>,
    /// Hedged attempts per probe; the probe fails only when all fail (default 3).
    pub attempts: Option<i64>,
    /// `metric`: the selector of the one sample to judge, `name{label="value",…}`.
    pub metric: Option<String>,
    /// `metric`: a node_exporter signal instead of a selector (`cpu_busy_percent`,
    /// `memory_available_percent`, `filesystem_free_percent`, `load_per_core`).
    pub node: Option<String>,
    /// `metric` with `node = "filesystem_free_percent"`: the mount point.
    pub mountpoint: Option<String>,
    /// `promql`: the PromQL expression of the instant query.
    pub query: Option<String>,
    /// `metric`, `promql`: degraded when the value is above this.
    pub degraded_above: Option<f64>,
    /// `metric`, `promql`: down when the value is above this.
    pub down_above: Option<f64>,
    /// `metric`, `promql`: degraded when the value is below this.
    pub degraded_below: Option<f64>,
    /// `metric`, `promql`: down when the value is below this.
    pub down_below: Option<f64>,
    /// `haproxy`: the runtime API as `ip:port`.
    pub admin_addr: Option<String>,
    /// `haproxy`: the runtime API as a UNIX socket path.
    pub admin_socket: Option<String>,
    /// `haproxy`: the backend holding the region's server.
    pub backend: Option<String>,
    /// `haproxy`: the region's server in that backend (default the region name).
    pub server: Option<String>,
    /// `haproxy`: degraded at this share of failed sessions between two probes (default 0.05).
    pub degraded_error_ratio: Option<f64>,
    /// `haproxy`: down at this share of failed sessions (default 0.5).
    pub down_error_ratio: Option<f64>,
    /// `haproxy`: sessions between two probes below which errors are not judged (default 20).
    pub min_sessions: Option<i64>,
    /// `haproxy`: degraded at this many requests queued for the server (default: not judged).
    pub degraded_queue: Option<i64>,
    /// `haproxy`: down at this many requests queued (default: not judged).
    pub down_queue: Option<i64>,
}

/// `[[providers]]`: where plans are applied, tagged by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RawProvider {
    /// Writes the plan as JSON to a file (dry runs, debugging, external tooling).
    File(RawFileProvider),
    /// PowerDNS Authoritative through its HTTP API.
    Powerdns(RawPowerDnsProvider),
    /// HAProxy server weights through the runtime API.
    Haproxy(RawHaproxyProvider),
    /// A DNS server (BIND 9 …) through RFC 2136 dynamic updates signed with TSIG.
    Rfc2136(RawRfc2136Provider),
    /// AWS Route 53 weighted records.
    Route53(RawRoute53Provider),
    /// POSTs the plan as signed JSON to a URL.
    Webhook(RawWebhookProvider),
}

/// Settings every provider accepts: circuit breaker and drift detection.
/// (Repeated in each provider table: serde cannot flatten with `deny_unknown_fields`.)
macro_rules! guard_fields {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        pub struct $name {
            $($body)*
            /// `"reconcile"` (re-apply the plan) or `"report"` (alarm only) when drift is found.
            pub on_drift: Option<String>,
            /// How often the live state is read back and compared with the plan (unset: never).
            #[serde(default, with = "humantime_serde::option")]
            pub drift_interval: Option<Duration>,
            /// Consecutive failures that open the provider's circuit breaker (default 5).
            pub breaker_failures: Option<i64>,
            /// How long the breaker stays open before one probe call (default 30s).
            #[serde(default, with = "humantime_serde::option")]
            pub breaker_cool_down: Option<Duration>,
        }
    };
}

guard_fields! {
    /// `type = "haproxy"`
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawHaproxyProvider {
        /// Provider name (default `haproxy`).
        pub name: Option<String>,
        /// Runtime API over TCP: `stats socket ipv4@127.0.0.1:9999 level admin` → `"127.0.0.1:9999"`.
        pub admin_addr: Option<String>,
        /// Runtime API over a unix socket, e.g. `/run/haproxy/admin.sock` (instead of `admin_addr`).
        pub admin_socket: Option<String>,
        /// The backend whose servers are the regions.
        pub backend: Option<String>,
        /// Timeout of one runtime API command.
        #[serde(default, with = "humantime_serde::option")]
        pub timeout: Option<Duration>,
    }
}

guard_fields! {
    /// `type = "rfc2136"`
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawRfc2136Provider {
        /// Provider name (default `rfc2136`).
        pub name: Option<String>,
        /// The primary server taking updates, `ip:port`.
        pub server: Option<String>,
        /// The zone, with trailing dot.
        pub zone: Option<String>,
        /// The name whose A/AAAA set is replaced, with trailing dot.
        pub record: Option<String>,
        /// TTL of the records (default 5).
        pub ttl: Option<i64>,
        /// TSIG key name as the server knows it.
        pub tsig_key_name: Option<String>,
        /// TSIG algorithm: `hmac-sha256` (default), `hmac-sha384`, `hmac-sha512`.
        pub tsig_algorithm: Option<String>,
        /// Environment variable holding the base64 TSIG secret.
        pub tsig_secret_env: Option<String>,
        /// File holding the base64 TSIG secret.
        pub tsig_secret_file: Option<String>,
        /// Timeout of one DNS exchange.
        #[serde(default, with = "humantime_serde::option")]
        pub timeout: Option<Duration>,
        /// Other authoritative servers (`ip:port`) that must serve the new answer.
        #[serde(default)]
        pub secondaries: Vec<String>,
        /// Resolvers (`ip:port`) that must serve the new answer.
        #[serde(default)]
        pub resolvers: Vec<String>,
        /// Bound on the propagation check before an alarm (default 30s).
        #[serde(default, with = "humantime_serde::option")]
        pub propagation_timeout: Option<Duration>,
    }
}

guard_fields! {
    /// `type = "route53"`
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawRoute53Provider {
        /// Provider name (default `route53`).
        pub name: Option<String>,
        /// The hosted zone id, e.g. `Z0123456789ABC`.
        pub hosted_zone_id: Option<String>,
        /// The weighted name, with trailing dot.
        pub record: Option<String>,
        /// TTL of the records (default 5).
        pub ttl: Option<i64>,
        /// AWS region (default: `AWS_REGION`, then `AWS_DEFAULT_REGION`).
        pub region: Option<String>,
        /// Endpoint override, e.g. an emulator at `http://127.0.0.1:5000`.
        pub endpoint_url: Option<String>,
        /// Timeout of one API call.
        #[serde(default, with = "humantime_serde::option")]
        pub timeout: Option<Duration>,
    }
}

guard_fields! {
    /// `type = "webhook"`
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawWebhookProvider {
        /// Provider name (default `webhook`).
        pub name: Option<String>,
        /// Where the plan is POSTed.
        pub url: Option<String>,
        /// Environment variable holding the HMAC secret.
        pub secret_env: Option<String>,
        /// File holding the HMAC secret.
        pub secret_file: Option<String>,
        /// Timeout of one POST.
        #[serde(default, with = "humantime_serde::option")]
        pub timeout: Option<Duration>,
    }
}

/// `[[notifications]]`: a webhook told about events (Slack-compatible `text` field).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotification {
    /// Name, for logs (default `notify-<index>`).
    pub name: Option<String>,
    /// Where events are POSTed.
    pub url: Option<String>,
    /// Environment variable holding the HMAC secret (optional: unsigned when unset).
    pub secret_env: Option<String>,
    /// File holding the HMAC secret.
    pub secret_file: Option<String>,
    /// Same event key within this window is suppressed and counted (default 5m).
    #[serde(default, with = "humantime_serde::option")]
    pub dedup_window: Option<Duration>,
    /// Timeout of one POST.
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
}

guard_fields! {
    /// `type = "file"`
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawFileProvider {
        /// Provider name (default `file`).
        pub name: Option<String>,
        /// Path of the JSON file; written atomically.
        pub path: Option<String>,
    }
}

guard_fields! {
/// `type = "powerdns"`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPowerDnsProvider {
    /// Provider name (default `powerdns`).
    pub name: Option<String>,
    /// Base URL of the PowerDNS API, e.g. `http://127.0.0.1:8081`.
    pub api_url: Option<String>,
    /// Name of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// Path of a file that holds the API key.
    pub api_key_file: Option<String>,
    /// PowerDNS server id (default `localhost`).
    pub server_id: Option<String>,
    /// The zone, with trailing dot: `example.test.`
    pub zone: Option<String>,
    /// The weighted name, with trailing dot: `app.example.test.`
    pub record: Option<String>,
    /// TTL of the answers in seconds (default 5).
    pub ttl: Option<i64>,
    /// Timeout of one API call.
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
    /// Address and port of the DNS listener to verify answers on, e.g. `127.0.0.1:5353`.
    pub dns_addr: Option<String>,
    /// Resolvers (`ip:port`) that must serve the new answer.
    #[serde(default)]
    pub resolvers: Vec<String>,
    /// Bound on the propagation check before an alarm (default 30s).
    #[serde(default, with = "humantime_serde::option")]
    pub propagation_timeout: Option<Duration>,
}
}

/// `[schedule]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Cron expression (6 fields, seconds first, UTC) for store housekeeping.
    pub housekeeping: Option<String>,
    /// How long raw events are kept.
    #[serde(default, with = "humantime_serde::option")]
    pub retention: Option<Duration>,
    /// Scheduled drills (game days).
    #[serde(default)]
    pub drills: Vec<RawScheduledDrill>,
}

/// `[[schedule.drills]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScheduledDrill {
    /// Unique name; recorded as the drill's actor `schedule:<name>`.
    pub name: Option<String>,
    /// Cron expression, 6 fields with seconds first, read in `timezone`.
    pub cron: Option<String>,
    /// IANA time zone of `cron` and daily blackouts, e.g. `"Europe/Paris"` (default `"UTC"`).
    pub timezone: Option<String>,
    /// Region to evacuate.
    pub evacuate: Option<String>,
    /// Region to shift to (default: the first eligible in the failover order).
    pub target: Option<String>,
    /// Percent of the share moved per step (default `[100]`).
    pub steps: Option<Vec<i64>>,
    /// Hold per step (default `"30s"`).
    #[serde(default, with = "humantime_serde::option")]
    pub hold: Option<Duration>,
    /// Plan and record only (default false).
    pub dry_run: Option<bool>,
    /// Inject a synthetic failure of `evacuate` and let the automation move traffic (default false).
    pub synthetic_failure: Option<bool>,
    /// Reason recorded with each run.
    pub reason: Option<String>,
    /// Windows in which the drill is skipped: `"22:00-06:00"` daily (local) or `"<RFC 3339>/<RFC 3339>"`.
    #[serde(default)]
    pub blackout: Vec<String>,
}
