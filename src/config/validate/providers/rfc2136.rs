//! `type = "rfc2136"`: the DNS server taking signed dynamic updates, its
//! secondaries, the record in its zone, and the TSIG key (name, algorithm and
//! a base64 secret from the environment or a file, checked to decode). Every
//! region that normally serves traffic needs an address.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::super::secret_from;
use super::{Served, socket_addr, socket_addrs, ttl, zone_and_record};
use crate::config::error::Problems;
use crate::config::raw::RawRfc2136Provider;
use crate::config::{Rfc2136Config, TsigAlgorithm, decode_tsig_secret};

/// Validates an RFC 2136 provider table.
pub(super) fn validate(
    key: &str,
    d: &RawRfc2136Provider,
    served: Served<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<Rfc2136Config> {
    let server = socket_addr(&format!("{key}.server"), d.server.as_ref(), "127.0.0.1:53", p);
    let secondaries = socket_addrs(&format!("{key}.secondaries"), &d.secondaries, p);
    let (zone, record) = zone_and_record(key, d.zone.as_ref(), d.record.as_ref(), p);
    let ttl = ttl(key, d.ttl, p);
    let tsig_key_name = tsig_key_name(key, d, p);
    let tsig_algorithm = tsig_algorithm(key, d, p);
    let secret = tsig_secret(key, d, env, p);
    served.require_addresses("the rfc2136 provider publishes", p);
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

/// `tsig_key_name`: the key's name in the server's configuration.
fn tsig_key_name(key: &str, d: &RawRfc2136Provider, p: &mut Problems) -> Option<String> {
    match &d.tsig_key_name {
        Some(k) if !k.is_empty() => Some(k.clone()),
        _ => {
            p.push(format!("{key}.tsig_key_name"), "missing", "add tsig_key_name = \"<key name in named.conf>\"");
            None
        }
    }
}

/// `tsig_algorithm`: hmac-sha256 (default), hmac-sha384 or hmac-sha512.
fn tsig_algorithm(key: &str, d: &RawRfc2136Provider, p: &mut Problems) -> Option<TsigAlgorithm> {
    match d.tsig_algorithm.as_deref() {
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
    }
}

/// `tsig_secret_env` / `tsig_secret_file`: a secret that decodes from base64.
fn tsig_secret(
    key: &str,
    d: &RawRfc2136Provider,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SecretString> {
    let secret =
        secret_from(&format!("{key}.tsig_secret"), d.tsig_secret_env.as_ref(), d.tsig_secret_file.as_ref(), env, p)?;
    // Decoded now so a bad key fails `check-config`, not the first failover.
    if decode_tsig_secret(secret.expose_secret()).is_some() {
        return Some(secret);
    }
    p.push(
        format!("{key}.tsig_secret_env"),
        "the TSIG secret is not base64",
        "use the `secret` value of the key that tsig-keygen printed",
    );
    None
}
