//! `type = "powerdns"`: the PowerDNS Authoritative HTTP API (URL, key, server
//! id), the weighted record in its zone, and the DNS listener answers are
//! verified on. Every region that normally serves traffic needs an address.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::secret_from;
use super::{Served, ttl, zone_and_record};
use crate::config::PowerDnsConfig;
use crate::config::error::Problems;
use crate::config::raw::RawPowerDnsProvider;

/// Validates a PowerDNS provider table.
pub(super) fn validate(
    key: &str,
    d: &RawPowerDnsProvider,
    served: Served<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<PowerDnsConfig> {
    let api_url = api_url(key, d, p);
    let api_key = secret_from(&format!("{key}.api_key"), d.api_key_env.as_ref(), d.api_key_file.as_ref(), env, p);
    let (zone, record) = zone_and_record(key, d.zone.as_ref(), d.record.as_ref(), p);
    let ttl = ttl(key, d.ttl, p);
    let dns_addr = dns_addr(key, d, p);
    served.require_addresses("the powerdns provider answers with", p);
    Some(PowerDnsConfig {
        name: d.name.clone().unwrap_or_else(|| "powerdns".into()),
        api_url: api_url?,
        api_key: api_key?,
        server_id: d.server_id.clone().unwrap_or_else(|| "localhost".into()),
        zone: zone?,
        record: record?,
        ttl: ttl?,
        timeout: d.timeout.unwrap_or(Duration::from_secs(2)),
        dns_addr,
    })
}

/// `api_url`: a URL, kept without its trailing `/`.
fn api_url(key: &str, d: &RawPowerDnsProvider, p: &mut Problems) -> Option<String> {
    match &d.api_url {
        // Kept without a trailing `/`: the provider appends `/api/v1/…`.
        Some(u) if reqwest::Url::parse(u).is_ok() => Some(u.trim_end_matches('/').to_string()),
        Some(u) => {
            p.push(format!("{key}.api_url"), format!("`{u}` is not a URL"), "write e.g. \"http://127.0.0.1:8081\"");
            None
        }
        None => {
            p.push(format!("{key}.api_url"), "missing", "add api_url = \"http://pdns-host:8081\"");
            None
        }
    }
}

/// `dns_addr`: optional ip:port of the DNS listener.
fn dns_addr(key: &str, d: &RawPowerDnsProvider, p: &mut Problems) -> Option<SocketAddr> {
    let a = d.dns_addr.as_ref()?;
    match a.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(format!("{key}.dns_addr"), format!("`{a}` is not ip:port"), "write e.g. \"127.0.0.1:53\"");
            None
        }
    }
}
