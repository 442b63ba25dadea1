//! Validation of the provider tables beyond PowerDNS and file: HAProxy, RFC 2136,
//! Route 53, webhook; the breaker / drift settings every provider accepts; and
//! `[[notifications]]`. Same rules as the rest of the configuration: every
//! problem names its key path, what is wrong and the fix; secrets come only
//! from environment variables or files.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::error::Problems;
use super::raw::{RawHaproxyProvider, RawNotification, RawRfc2136Provider, RawRoute53Provider, RawWebhookProvider};
use super::{RegionConfig, fqdn, secret_from};
use crate::breaker::BreakerConfig;
use crate::region::RegionName;

/// What the applier does when a provider's live weights differ from the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDrift {
    /// Re-apply the plan (and report the drift).
    #[default]
    Reconcile,
    /// Report the drift only (alarm `provider_drift`); someone else fixes it.
    Report,
}

impl OnDrift {
    /// `reconcile` or `report`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDrift::Reconcile => "reconcile",
            OnDrift::Report => "report",
        }
    }
}

/// Breaker, drift and propagation settings of one provider.
#[derive(Debug, Clone)]
pub struct ProviderGuard {
    /// Circuit breaker thresholds.
    pub breaker: BreakerConfig,
    /// How often to compare the live state with the plan (`None`: never).
    pub drift_interval: Option<Duration>,
    /// What to do about drift.
    pub on_drift: OnDrift,
    /// Resolvers that must serve a DNS provider's new answer.
    pub resolvers: Vec<SocketAddr>,
    /// Bound on the propagation check.
    pub propagation_timeout: Duration,
}

impl Default for ProviderGuard {
    fn default() -> Self {
        Self {
            breaker: BreakerConfig::default(),
            drift_interval: None,
            on_drift: OnDrift::Reconcile,
            resolvers: Vec::new(),
            propagation_timeout: Duration::from_secs(30),
        }
    }
}

/// How to reach HAProxy's runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaproxyAdmin {
    /// `stats socket ipv4@IP:PORT level admin`.
    Tcp(SocketAddr),
    /// `stats socket /path level admin`.
    Unix(PathBuf),
}

/// HAProxy provider settings.
#[derive(Debug, Clone)]
pub struct HaproxyConfig {
    /// Provider name.
    pub name: String,
    /// The runtime API.
    pub admin: HaproxyAdmin,
    /// The backend.
    pub backend: String,
    /// Server name per region (`regions[].targets.<provider name>`, default the region name).
    pub servers: BTreeMap<RegionName, String>,
    /// Timeout of one command.
    pub timeout: Duration,
}

/// TSIG algorithms supported for RFC 2136 updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// hmac-sha256
    HmacSha256,
    /// hmac-sha384
    HmacSha384,
    /// hmac-sha512
    HmacSha512,
}

/// RFC 2136 provider settings.
#[derive(Debug, Clone)]
pub struct Rfc2136Config {
    /// Provider name.
    pub name: String,
    /// Primary server taking updates.
    pub server: SocketAddr,
    /// Other authoritative servers checked for propagation.
    pub secondaries: Vec<SocketAddr>,
    /// Zone with trailing dot.
    pub zone: String,
    /// Record with trailing dot.
    pub record: String,
    /// TTL.
    pub ttl: u32,
    /// TSIG key name.
    pub tsig_key_name: String,
    /// TSIG algorithm.
    pub tsig_algorithm: TsigAlgorithm,
    /// TSIG secret, as base64 text (secret); checked to decode by validation.
    pub tsig_secret: SecretString,
    /// Timeout of one exchange.
    pub timeout: Duration,
}

impl Rfc2136Config {
    /// The TSIG key bytes the updates are signed with; `None` only for a config
    /// built without validation (validation refuses a secret that does not decode).
    pub fn tsig_key(&self) -> Option<Vec<u8>> {
        decode_tsig_secret(self.tsig_secret.expose_secret())
    }
}

/// Decodes a TSIG secret written as standard base64, the way `tsig-keygen`
/// prints it; `None` when it is not base64 or decodes to nothing.
pub fn decode_tsig_secret(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).ok().filter(|k| !k.is_empty())
}

/// One region's Route 53 identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route53Target {
    /// `SetIdentifier` of the region's weighted record (default the region name).
    pub set_identifier: String,
    /// Optional health check id attached to the record.
    pub health_check_id: Option<String>,
}

/// Route 53 provider settings.
#[derive(Debug, Clone)]
pub struct Route53Config {
    /// Provider name.
    pub name: String,
    /// Hosted zone id.
    pub hosted_zone_id: String,
    /// Record with trailing dot.
    pub record: String,
    /// TTL.
    pub ttl: u32,
    /// AWS region.
    pub region: String,
    /// Endpoint override (emulators).
    pub endpoint_url: Option<String>,
    /// Static credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
    /// `AWS_SESSION_TOKEN`), when set; otherwise the SDK's default chain.
    pub credentials: Option<AwsKeys>,
    /// Per-region identifiers.
    pub targets: BTreeMap<RegionName, Route53Target>,
    /// Timeout of one API call.
    pub timeout: Duration,
}

/// AWS access keys (secret).
#[derive(Debug, Clone)]
pub struct AwsKeys {
    /// Access key id.
    pub access_key_id: SecretString,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Session token, if any.
    pub session_token: Option<SecretString>,
}

/// Webhook provider settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Provider name.
    pub name: String,
    /// Target URL.
    pub url: String,
    /// HMAC secret.
    pub secret: SecretString,
    /// Timeout of one POST.
    pub timeout: Duration,
}

/// A notification webhook.
#[derive(Debug, Clone)]
pub struct NotificationConfig {
    /// Name, for logs.
    pub name: String,
    /// Target URL.
    pub url: String,
    /// HMAC secret; unsigned when `None`.
    pub secret: Option<SecretString>,
    /// Deduplication window.
    pub dedup_window: Duration,
    /// Timeout of one POST.
    pub timeout: Duration,
}

/// The breaker / drift fields every provider table has.
pub(super) struct GuardFields<'a> {
    pub on_drift: Option<&'a String>,
    pub drift_interval: Option<Duration>,
    pub breaker_failures: Option<i64>,
    pub breaker_cool_down: Option<Duration>,
    pub resolvers: &'a [String],
    pub propagation_timeout: Option<Duration>,
}

pub(super) fn validate_guard(key: &str, g: GuardFields<'_>, p: &mut Problems) -> ProviderGuard {
    let d = ProviderGuard::default();
    let on_drift = match g.on_drift.map(String::as_str) {
        None | Some("reconcile") => OnDrift::Reconcile,
        Some("report") => OnDrift::Report,
        Some(o) => {
            p.push(
                format!("{key}.on_drift"),
                format!("`{o}` is not a drift action"),
                "use \"reconcile\" or \"report\"",
            );
            OnDrift::Reconcile
        }
    };
    if g.drift_interval.is_some_and(|d| d < Duration::from_millis(100)) {
        p.push(format!("{key}.drift_interval"), "is below 100ms", "use e.g. \"30s\", or leave it out to never check");
    }
    let threshold = match g.breaker_failures {
        None => d.breaker.threshold,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            p.push(
                format!("{key}.breaker_failures"),
                format!("{n} is outside 1–1000"),
                "use the consecutive failures that open the breaker, e.g. 5",
            );
            d.breaker.threshold
        }
    };
    let cool_down = g.breaker_cool_down.unwrap_or(d.breaker.cool_down);
    if cool_down.is_zero() {
        p.push(format!("{key}.breaker_cool_down"), "is zero", "use e.g. \"30s\"");
    }
    let resolvers = socket_addrs(&format!("{key}.resolvers"), g.resolvers, p);
    let propagation_timeout = g.propagation_timeout.unwrap_or(d.propagation_timeout);
    if propagation_timeout.is_zero() {
        p.push(format!("{key}.propagation_timeout"), "is zero", "use e.g. \"30s\"");
    }
    ProviderGuard {
        breaker: BreakerConfig { threshold, cool_down },
        drift_interval: g.drift_interval,
        on_drift,
        resolvers,
        propagation_timeout,
    }
}

fn socket_addrs(key: &str, v: &[String], p: &mut Problems) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (i, a) in v.iter().enumerate() {
        match a.parse::<SocketAddr>() {
            Ok(a) => out.push(a),
            Err(_) => p.push(format!("{key}[{i}]"), format!("`{a}` is not ip:port"), "write e.g. \"127.0.0.1:53\""),
        }
    }
    out
}

fn socket_addr(key: &str, v: Option<&String>, example: &str, p: &mut Problems) -> Option<SocketAddr> {
    match v {
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.push(key, format!("`{a}` is not ip:port"), format!("write e.g. \"{example}\""));
                None
            }
        },
        None => {
            p.push(key, "missing", format!("add it, e.g. \"{example}\""));
            None
        }
    }
}

/// The fully qualified zone and record, checking that the record is inside the zone.
pub(super) fn zone_and_record(
    key: &str,
    zone: Option<&String>,
    record: Option<&String>,
    p: &mut Problems,
) -> (Option<String>, Option<String>) {
    let zone = fqdn(key, "zone", zone, p);
    let record = fqdn(key, "record", record, p);
    if let (Some(z), Some(r)) = (&zone, &record) {
        if !(r == z || r.ends_with(&format!(".{z}"))) {
            p.push(
                format!("{key}.record"),
                format!("`{r}` is not inside zone `{z}`"),
                "use a name that ends with the zone",
            );
        }
    }
    (zone, record)
}

/// A TTL in seconds (default 5).
pub(super) fn ttl(key: &str, v: Option<i64>, p: &mut Problems) -> Option<u32> {
    match v {
        None => Some(5),
        Some(t) if (1..=86_400).contains(&t) => Some(t as u32),
        Some(t) => {
            p.push(
                format!("{key}.ttl"),
                format!("{t} is outside 1–86400"),
                "use a short TTL such as 5 seconds so failover takes effect quickly",
            );
            None
        }
    }
}

fn http_url(key: &str, v: Option<&String>, p: &mut Problems) -> Option<String> {
    match v {
        Some(u) if reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => Some(u.clone()),
        Some(u) => {
            p.push(key, format!("`{u}` is not an http(s) URL"), "write e.g. \"https://hooks.example.com/failover\"");
            None
        }
        None => {
            p.push(key, "missing", "add url = \"https://…\"");
            None
        }
    }
}

/// The region's `targets.<provider>` entry, if any.
fn target<'a>(r: &'a RegionConfig, provider: &str) -> Option<&'a toml::Value> {
    r.targets.get(provider)
}

fn region_key(regions: &[RegionConfig], r: &RegionConfig) -> String {
    format!("regions[{}]", regions.iter().position(|x| x.name == r.name).unwrap_or(0))
}

pub(super) fn validate_haproxy(
    key: &str,
    h: &RawHaproxyProvider,
    regions: &[RegionConfig],
    p: &mut Problems,
) -> Option<HaproxyConfig> {
    let name = h.name.clone().unwrap_or_else(|| "haproxy".into());
    let admin = match (&h.admin_addr, &h.admin_socket) {
        (Some(_), Some(_)) => {
            p.push(
                format!("{key}.admin_socket"),
                "both admin_addr and admin_socket are set",
                "keep one: admin_addr = \"ip:port\" or admin_socket = \"/path\"",
            );
            None
        }
        (Some(a), None) => {
            socket_addr(&format!("{key}.admin_addr"), Some(a), "127.0.0.1:9999", p).map(HaproxyAdmin::Tcp)
        }
        (None, Some(s)) if s.starts_with('/') => Some(HaproxyAdmin::Unix(PathBuf::from(s))),
        (None, Some(s)) => {
            p.push(
                format!("{key}.admin_socket"),
                format!("`{s}` is not an absolute path"),
                "write e.g. \"/run/haproxy/admin.sock\"",
            );
            None
        }
        (None, None) => {
            p.push(
                format!("{key}.admin_addr"),
                "missing",
                "add admin_addr = \"127.0.0.1:9999\" (HAProxy: stats socket ipv4@127.0.0.1:9999 level admin) or admin_socket = \"/path\"",
            );
            None
        }
    };
    let backend = match &h.backend {
        Some(b) if !b.is_empty() && !b.contains(char::is_whitespace) => Some(b.clone()),
        Some(b) => {
            p.push(
                format!("{key}.backend"),
                format!("`{b}` is not a backend name"),
                "use the name after `backend` in haproxy.cfg",
            );
            None
        }
        None => {
            p.push(format!("{key}.backend"), "missing", "add backend = \"<backend name in haproxy.cfg>\"");
            None
        }
    };
    let mut servers = BTreeMap::new();
    for r in regions {
        let server = match target(r, &name) {
            None => r.name.to_string(),
            Some(toml::Value::String(s)) if !s.is_empty() && !s.contains(char::is_whitespace) => s.clone(),
            Some(other) => {
                p.push(
                    format!("{}.targets.{name}", region_key(regions, r)),
                    format!("`{other}` is not a server name"),
                    "write the HAProxy server name of this region as a string, e.g. targets.haproxy = \"app1\"",
                );
                continue;
            }
        };
        servers.insert(r.name.clone(), server);
    }
    Some(HaproxyConfig {
        name,
        admin: admin?,
        backend: backend?,
        servers,
        timeout: h.timeout.unwrap_or(Duration::from_secs(2)),
    })
}

pub(super) fn validate_rfc2136(
    key: &str,
    d: &RawRfc2136Provider,
    regions: &[RegionConfig],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<Rfc2136Config> {
    let server = socket_addr(&format!("{key}.server"), d.server.as_ref(), "127.0.0.1:53", p);
    let secondaries = socket_addrs(&format!("{key}.secondaries"), &d.secondaries, p);
    let (zone, record) = zone_and_record(key, d.zone.as_ref(), d.record.as_ref(), p);
    let ttl = ttl(key, d.ttl, p);
    let tsig_key_name = match &d.tsig_key_name {
        Some(k) if !k.is_empty() => Some(k.clone()),
        _ => {
            p.push(format!("{key}.tsig_key_name"), "missing", "add tsig_key_name = \"<key name in named.conf>\"");
            None
        }
    };
    let tsig_algorithm = match d.tsig_algorithm.as_deref() {
        None | Some("hmac-sha256") => Some(TsigAlgorithm::HmacSha256),
        Some("hmac-sha384") => Some(TsigAlgorithm::HmacSha384),
        Some("hmac-sha512") => Some(TsigAlgorithm::HmacSha512),
        Some(o) => {
            p.push(
                format!("{key}.tsig_algorithm"),
                format!("`{o}` is not supported"),
                "use \"hmac-sha256\", \"hmac-sha384\" or \"hmac-sha512\" (tsig-keygen -a hmac-sha256)",
            );
            None
        }
    };
    let secret =
        secret_from(&format!("{key}.tsig_secret"), d.tsig_secret_env.as_ref(), d.tsig_secret_file.as_ref(), env, p);
    let secret = secret.and_then(|s| {
        if decode_tsig_secret(s.expose_secret()).is_some() {
            Some(s)
        } else {
            p.push(
                format!("{key}.tsig_secret_env"),
                "the TSIG secret is not base64",
                "use the `secret` value of the key that tsig-keygen printed",
            );
            None
        }
    });
    for r in regions {
        if r.weight > 0 && r.address.is_none() {
            p.push(
                format!("{}.address", region_key(regions, r)),
                format!("region `{}` has no address, which the rfc2136 provider publishes", r.name),
                "add address = \"<ip of the region's entry point>\"",
            );
        }
    }
    Some(Rfc2136Config {
        name: d.name.clone().unwrap_or_else(|| "rfc2136".into()),
        server: server?,
        secondaries,
        zone: zone?,
        record: record?,
        ttl: ttl?,
        tsig_key_name: tsig_key_name?,
        tsig_algorithm: tsig_algorithm?,
        tsig_secret: secret?,
        timeout: d.timeout.unwrap_or(Duration::from_secs(2)),
    })
}

pub(super) fn validate_route53(
    key: &str,
    d: &RawRoute53Provider,
    regions: &[RegionConfig],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<Route53Config> {
    let name = d.name.clone().unwrap_or_else(|| "route53".into());
    let hosted_zone_id = match &d.hosted_zone_id {
        Some(z) if !z.is_empty() && z.chars().all(|c| c.is_ascii_alphanumeric() || c == '/') => {
            Some(z.trim_start_matches("/hostedzone/").to_string())
        }
        Some(z) => {
            p.push(
                format!("{key}.hosted_zone_id"),
                format!("`{z}` is not a hosted zone id"),
                "copy the id from the Route 53 console, e.g. \"Z0123456789ABC\"",
            );
            None
        }
        None => {
            p.push(format!("{key}.hosted_zone_id"), "missing", "add hosted_zone_id = \"Z…\"");
            None
        }
    };
    let record = fqdn(key, "record", d.record.as_ref(), p);
    let ttl = ttl(key, d.ttl, p);
    let region = d.region.clone().or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION"));
    if region.is_none() {
        p.push(
            format!("{key}.region"),
            "missing, and AWS_REGION is not set",
            "add region = \"us-east-1\" or export AWS_REGION",
        );
    }
    let endpoint_url = match &d.endpoint_url {
        None => None,
        Some(u) => http_url(&format!("{key}.endpoint_url"), Some(u), p),
    };
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some(AwsKeys {
            access_key_id: SecretString::from(id),
            secret_access_key: SecretString::from(secret),
            session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()).map(SecretString::from),
        }),
        (Some(_), None) | (None, Some(_)) => {
            p.push(
                key.to_string(),
                "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set",
                "export both, or neither to use the SDK's default credential chain",
            );
            None
        }
        _ => None,
    };
    let mut targets = BTreeMap::new();
    for r in regions {
        let rk = format!("{}.targets.{name}", region_key(regions, r));
        let t = match target(r, &name) {
            None => Route53Target { set_identifier: r.name.to_string(), health_check_id: None },
            Some(toml::Value::String(s)) => Route53Target { set_identifier: s.clone(), health_check_id: None },
            Some(toml::Value::Table(t)) => {
                let set_identifier =
                    t.get("set_identifier").and_then(|v| v.as_str()).unwrap_or(r.name.as_str()).to_string();
                let health_check_id = t.get("health_check_id").and_then(|v| v.as_str()).map(str::to_string);
                for k in t.keys().filter(|k| !matches!(k.as_str(), "set_identifier" | "health_check_id")) {
                    p.push(format!("{rk}.{k}"), "unknown key", "use set_identifier and health_check_id only");
                }
                Route53Target { set_identifier, health_check_id }
            }
            Some(other) => {
                p.push(
                    rk,
                    format!("`{other}` is not a string or table"),
                    "write targets.route53 = { set_identifier = \"…\", health_check_id = \"…\" }",
                );
                continue;
            }
        };
        if r.weight > 0 && r.address.is_none() {
            p.push(
                format!("{}.address", region_key(regions, r)),
                format!("region `{}` has no address, which the route53 provider publishes", r.name),
                "add address = \"<ip of the region's entry point>\"",
            );
        }
        targets.insert(r.name.clone(), t);
    }
    Some(Route53Config {
        name,
        hosted_zone_id: hosted_zone_id?,
        record: record?,
        ttl: ttl?,
        region: region?,
        endpoint_url,
        credentials,
        targets,
        timeout: d.timeout.unwrap_or(Duration::from_secs(5)),
    })
}

pub(super) fn validate_webhook(
    key: &str,
    d: &RawWebhookProvider,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<WebhookConfig> {
    let url = http_url(&format!("{key}.url"), d.url.as_ref(), p);
    let secret = secret_from(&format!("{key}.secret"), d.secret_env.as_ref(), d.secret_file.as_ref(), env, p);
    Some(WebhookConfig {
        name: d.name.clone().unwrap_or_else(|| "webhook".into()),
        url: url?,
        secret: secret?,
        timeout: d.timeout.unwrap_or(Duration::from_secs(5)),
    })
}

pub(super) fn validate_notifications(
    raw: &[RawNotification],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Vec<NotificationConfig> {
    let mut out = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        let key = format!("notifications[{i}]");
        let url = http_url(&format!("{key}.url"), n.url.as_ref(), p);
        let secret = if n.secret_env.is_some() || n.secret_file.is_some() {
            let s = secret_from(&format!("{key}.secret"), n.secret_env.as_ref(), n.secret_file.as_ref(), env, p);
            if s.is_none() {
                continue;
            }
            s
        } else {
            None
        };
        let dedup_window = n.dedup_window.unwrap_or(Duration::from_secs(300));
        if let Some(url) = url {
            out.push(NotificationConfig {
                name: n.name.clone().unwrap_or_else(|| format!("notify-{i}")),
                url,
                secret,
                dedup_window,
                timeout: n.timeout.unwrap_or(Duration::from_secs(5)),
            });
        }
    }
    out
}
