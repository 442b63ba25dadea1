//! `[[providers]]`: at least one, each name unique, each table validated by its
//! type's validator (one file per provider type) plus the breaker / drift /
//! propagation guard every provider table has.
//!
//! Also holds the field checks the provider validators share (socket
//! addresses, DNS names, TTLs, URLs, a region's `targets.<provider>` entry).

pub(in crate::config::validate) mod haproxy;
mod powerdns;
mod rfc2136;
mod route53;
mod webhook;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::breaker::BreakerConfig;
use crate::config::error::Problems;
use crate::config::raw::{RawFileProvider, RawProvider};
use crate::config::{OnDrift, ProviderConfig, ProviderGuard, RegionConfig};
use crate::policy::Policy;

/// Validates every provider table; returns the providers and each one's guard by name.
pub(in crate::config) fn validate(
    raw: &[RawProvider],
    regions: &[RegionConfig],
    policy: &Policy,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (Vec<ProviderConfig>, BTreeMap<String, ProviderGuard>) {
    let mut out = Vec::new();
    let mut guards = BTreeMap::new();
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
        // The guard is checked first, and even when the provider table is not
        // usable, so its problems show in the same run.
        let guard = guard(&key, guard_fields(prov), p);
        let Some(cfg) = provider(&key, prov, regions, policy, env, p) else { continue };
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
    (out, guards)
}

/// One provider table, by type.
fn provider(
    key: &str,
    prov: &RawProvider,
    regions: &[RegionConfig],
    policy: &Policy,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<ProviderConfig> {
    let served = Served { regions, policy };
    match prov {
        RawProvider::File(f) => file(key, f, p),
        RawProvider::Powerdns(d) => powerdns::validate(key, d, served, env, p).map(ProviderConfig::PowerDns),
        RawProvider::Haproxy(h) => haproxy::validate(key, h, regions, p).map(ProviderConfig::Haproxy),
        RawProvider::Rfc2136(d) => rfc2136::validate(key, d, served, env, p).map(ProviderConfig::Rfc2136),
        RawProvider::Route53(r) => route53::validate(key, r, served, env, p).map(ProviderConfig::Route53),
        RawProvider::Webhook(w) => webhook::validate(key, w, env, p).map(ProviderConfig::Webhook),
    }
}

/// `type = "file"`: a `path`.
fn file(key: &str, f: &RawFileProvider, p: &mut Problems) -> Option<ProviderConfig> {
    match &f.path {
        Some(path) if !path.is_empty() => Some(ProviderConfig::File {
            name: f.name.clone().unwrap_or_else(|| "file".into()),
            path: PathBuf::from(path),
        }),
        _ => {
            p.push(format!("{key}.path"), "missing", "add path = \"/var/lib/failover-orchestrator/plan.json\"");
            None
        }
    }
}

/// The regions a DNS provider publishes, with their normal weights (owned by
/// the policy, whose entries are in the same order as the regions).
#[derive(Clone, Copy)]
struct Served<'a> {
    regions: &'a [RegionConfig],
    policy: &'a Policy,
}

impl<'a> Served<'a> {
    /// Each region with its normal weight.
    fn iter(self) -> impl Iterator<Item = (&'a RegionConfig, u32)> {
        debug_assert_eq!(self.regions.len(), self.policy.regions.len(), "built together by the regions validator");
        self.regions.iter().zip(self.policy.regions.iter().map(|rp| rp.normal_weight))
    }

    /// A region that normally serves traffic needs an address for `provider` to publish.
    fn require_address(self, r: &RegionConfig, weight: u32, which: &str, p: &mut Problems) {
        if weight > 0 && r.address.is_none() {
            p.push(
                format!("{}.address", region_key(self.regions, r)),
                format!("region `{}` has no address, which {which}", r.name),
                "add address = \"<ip of the region's entry point>\"",
            );
        }
    }

    /// [`Self::require_address`] for every region.
    fn require_addresses(self, which: &str, p: &mut Problems) {
        for (r, weight) in self.iter() {
            self.require_address(r, weight, which, p);
        }
    }
}

/// The breaker / drift fields of any provider table.
struct GuardFields<'a> {
    on_drift: Option<&'a String>,
    drift_interval: Option<Duration>,
    breaker_failures: Option<i64>,
    breaker_cool_down: Option<Duration>,
    resolvers: &'a [String],
    propagation_timeout: Option<Duration>,
}

/// The guard fields of `prov`, whatever its type (only DNS providers have resolvers).
fn guard_fields(prov: &RawProvider) -> GuardFields<'_> {
    macro_rules! common {
        ($r:expr, $resolvers:expr, $prop:expr) => {
            GuardFields {
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

/// `on_drift`, `drift_interval`, `breaker_*`, `resolvers`, `propagation_timeout`.
fn guard(key: &str, g: GuardFields<'_>, p: &mut Problems) -> ProviderGuard {
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
    // Reading a provider back more often than this only loads its API.
    if g.drift_interval.is_some_and(|d| d < Duration::from_millis(100)) {
        p.push(format!("{key}.drift_interval"), "is below 100ms", "use e.g. \"30s\", or leave it out to never check");
    }
    let breaker = breaker(key, &g, d.breaker, p);
    let resolvers = socket_addrs(&format!("{key}.resolvers"), g.resolvers, p);
    let propagation_timeout = g.propagation_timeout.unwrap_or(d.propagation_timeout);
    if propagation_timeout.is_zero() {
        p.push(format!("{key}.propagation_timeout"), "is zero", "use e.g. \"30s\"");
    }
    ProviderGuard { breaker, drift_interval: g.drift_interval, on_drift, resolvers, propagation_timeout }
}

/// `breaker_failures` (1–1000) and a non-zero `breaker_cool_down`, over `default`.
fn breaker(key: &str, g: &GuardFields<'_>, default: BreakerConfig, p: &mut Problems) -> BreakerConfig {
    let threshold = match g.breaker_failures {
        None => default.threshold,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            p.push(
                format!("{key}.breaker_failures"),
                format!("{n} is outside 1–1000"),
                "use the consecutive failures that open the breaker, e.g. 5",
            );
            default.threshold
        }
    };
    let cool_down = g.breaker_cool_down.unwrap_or(default.cool_down);
    if cool_down.is_zero() {
        p.push(format!("{key}.breaker_cool_down"), "is zero", "use e.g. \"30s\"");
    }
    BreakerConfig { threshold, cool_down }
}

/// A list of ip:port at `key[i]`; bad entries are left out.
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

/// A required ip:port at `key`.
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

/// A required fully qualified DNS name at `key.field`, lower-cased.
fn fqdn(key: &str, field: &str, v: Option<&String>, p: &mut Problems) -> Option<String> {
    match v {
        // DNS names compare case-insensitively; the providers compare strings.
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

/// The fully qualified zone and record, checking that the record is inside the zone.
fn zone_and_record(
    key: &str,
    zone: Option<&String>,
    record: Option<&String>,
    p: &mut Problems,
) -> (Option<String>, Option<String>) {
    let zone = fqdn(key, "zone", zone, p);
    let record = fqdn(key, "record", record, p);
    if let (Some(z), Some(r)) = (&zone, &record)
        && !(r == z || r.ends_with(&format!(".{z}")))
    {
        p.push(
            format!("{key}.record"),
            format!("`{r}` is not inside zone `{z}`"),
            "use a name that ends with the zone",
        );
    }
    (zone, record)
}

/// A TTL in seconds (default 5).
fn ttl(key: &str, v: Option<i64>, p: &mut Problems) -> Option<u32> {
    match v {
        // Resolvers keep an answer for its TTL: a long one delays every failover.
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

/// A required http(s) URL at `key` (also used by `[[notifications]]`).
pub(in crate::config::validate) fn http_url(key: &str, v: Option<&String>, p: &mut Problems) -> Option<String> {
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

/// `regions[i]` of a validated region (its place among the validated regions,
/// which is its place in the file whenever every region validated).
fn region_key(regions: &[RegionConfig], r: &RegionConfig) -> String {
    format!("regions[{}]", regions.iter().position(|x| x.name == r.name).unwrap_or(0))
}
