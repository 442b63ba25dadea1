//! The validated provider and notification settings: one type per provider
//! (file, PowerDNS, HAProxy, RFC 2136, Route 53, webhook), the breaker / drift /
//! propagation guard every provider has, and the notification webhooks.
//!
//! Plain data built by `validate/providers/` and `validate/notifications.rs`;
//! the traffic providers and the notifier read it. TSIG key decoding lives here
//! (not in the RFC 2136 provider) because validation must check the key before
//! any provider exists.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::breaker::BreakerConfig;
use crate::redact;
use crate::region::RegionName;

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
            ProviderConfig::PowerDns(d) => format!("{} (powerdns {} {})", d.name, redact::url(&d.api_url), d.record),
            ProviderConfig::Haproxy(h) => {
                format!("{} (haproxy {} backend {})", h.name, h.admin, h.backend)
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
                r.endpoint_url.as_ref().map(|u| format!(" endpoint {}", redact::url(u))).unwrap_or_default()
            ),
            ProviderConfig::Webhook(w) => format!("{} (webhook {})", w.name, redact::url(&w.url)),
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

impl std::fmt::Display for HaproxyAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaproxyAdmin::Tcp(a) => write!(f, "{a}"),
            HaproxyAdmin::Unix(p) => write!(f, "{}", p.display()),
        }
    }
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
