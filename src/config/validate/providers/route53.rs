//! `type = "route53"`: the hosted zone and weighted record, the AWS region and
//! endpoint, credentials from the standard AWS environment variables (or the
//! SDK's default chain), and each region's `SetIdentifier` / health check
//! (`regions[].targets.<provider>`). Every region that normally serves traffic
//! needs an address.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;

use super::{Served, fqdn, http_url, region_key, target, ttl};
use crate::config::error::Problems;
use crate::config::raw::RawRoute53Provider;
use crate::config::{AwsKeys, RegionConfig, Route53Config, Route53Target};
use crate::region::RegionName;

/// Validates a Route 53 provider table.
pub(super) fn validate(
    key: &str,
    d: &RawRoute53Provider,
    served: Served<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<Route53Config> {
    let name = d.name.clone().unwrap_or_else(|| "route53".into());
    let hosted_zone_id = hosted_zone_id(key, d, p);
    let record = fqdn(key, "record", d.record.as_ref(), p);
    let ttl = ttl(key, d.ttl, p);
    // The same precedence as the AWS CLI: the file, then AWS_REGION, then AWS_DEFAULT_REGION.
    let region = d.region.clone().or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION"));
    if region.is_none() {
        p.push(
            format!("{key}.region"),
            "missing, and AWS_REGION is not set",
            "add region = \"us-east-1\" or export AWS_REGION",
        );
    }
    let endpoint_url = d.endpoint_url.as_ref().and_then(|u| http_url(&format!("{key}.endpoint_url"), Some(u), p));
    let credentials = credentials(key, env, p);
    let targets = targets(&name, served, p);
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

/// `hosted_zone_id`: letters and digits, a `/hostedzone/` prefix dropped.
fn hosted_zone_id(key: &str, d: &RawRoute53Provider, p: &mut Problems) -> Option<String> {
    match &d.hosted_zone_id {
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
    }
}

/// Static keys from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (both or neither).
fn credentials(key: &str, env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) -> Option<AwsKeys> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some(AwsKeys {
            access_key_id: SecretString::from(id),
            secret_access_key: SecretString::from(secret),
            session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()).map(SecretString::from),
        }),
        // Half a key pair is a mistake, not a request for the default chain.
        (Some(_), None) | (None, Some(_)) => {
            p.push(
                key.to_string(),
                "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set",
                "export both, or neither to use the SDK's default credential chain",
            );
            None
        }
        _ => None,
    }
}

/// Each region's identifiers; a region with a malformed entry is left out.
fn targets(name: &str, served: Served<'_>, p: &mut Problems) -> BTreeMap<RegionName, Route53Target> {
    let mut targets = BTreeMap::new();
    for (r, weight) in served.iter() {
        // A region whose entry is malformed gets no address problem on top.
        let Some(t) = region_target(name, served.regions, r, p) else { continue };
        served.require_address(r, weight, "the route53 provider publishes", p);
        targets.insert(r.name.clone(), t);
    }
    targets
}

/// `regions[i].targets.<provider>`: absent, a `SetIdentifier` string, or a table
/// with `set_identifier` and `health_check_id`.
fn region_target(name: &str, regions: &[RegionConfig], r: &RegionConfig, p: &mut Problems) -> Option<Route53Target> {
    let rk = format!("{}.targets.{name}", region_key(regions, r));
    match target(r, name) {
        None => Some(Route53Target { set_identifier: r.name.to_string(), health_check_id: None }),
        Some(toml::Value::String(s)) => Some(Route53Target { set_identifier: s.clone(), health_check_id: None }),
        Some(toml::Value::Table(t)) => {
            let set_identifier =
                t.get("set_identifier").and_then(|v| v.as_str()).unwrap_or(r.name.as_str()).to_string();
            let health_check_id = t.get("health_check_id").and_then(|v| v.as_str()).map(str::to_string);
            for k in t.keys().filter(|k| !matches!(k.as_str(), "set_identifier" | "health_check_id")) {
                p.push(format!("{rk}.{k}"), "unknown key", "use set_identifier and health_check_id only");
            }
            Some(Route53Target { set_identifier, health_check_id })
        }
        Some(other) => {
            p.push(
                rk,
                format!("`{other}` is not a string or table"),
                "write targets.route53 = { set_identifier = \"…\", health_check_id = \"…\" }",
            );
            None
        }
    }
}
