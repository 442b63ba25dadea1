//! `[coordination]`: which engine elects the leader (`single` or `etcd`), its
//! endpoints, lease and prefix, the regions that run an orchestrator, and the
//! quorum of vantages that follows from them (`policy.quorum`, checked here
//! because its bounds depend on this section).

use std::net::SocketAddr;
use std::time::Duration;

use super::list;
use crate::config::error::Problems;
use crate::config::model::{Backend, CoordinationConfig};
use crate::config::raw::RawCoordination;
use crate::region::RegionName;

/// Default lease lifetime: a cut-off leader steps down within it.
pub(crate) const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);
const DEFAULT_PREFIX: &str = "/failover-orchestrator";

/// Validates `[coordination]` against the region names and the API address.
pub(super) fn validate(
    raw: &RawCoordination,
    regions: &[RegionName],
    me: Option<(&RegionName, SocketAddr)>,
    p: &mut Problems,
) -> CoordinationConfig {
    let listen = me.map(|(_, l)| l);
    let backend = backend(raw, p);
    let lease_ttl = raw.lease_ttl.unwrap_or(DEFAULT_LEASE_TTL);
    if lease_ttl < Duration::from_secs(1) {
        p.push(
            "coordination.lease_ttl",
            format!("{} is below 1s (etcd leases count whole seconds)", humantime::format_duration(lease_ttl)),
            "use a few seconds, e.g. lease_ttl = \"3s\"",
        );
    } else if lease_ttl.subsec_nanos() != 0 {
        p.push(
            "coordination.lease_ttl",
            format!("{} is not a whole number of seconds", humantime::format_duration(lease_ttl)),
            "etcd leases count whole seconds: use e.g. \"2s\" or \"3s\"",
        );
    }
    let view_ttl = raw.view_ttl.unwrap_or(lease_ttl);
    if view_ttl.is_zero() {
        p.push("coordination.view_ttl", "is zero", "use a duration such as \"3s\" (default: the lease TTL)");
    }
    let prefix = match &raw.prefix {
        Some(s) if s.is_empty() || !s.starts_with('/') => {
            p.push(
                "coordination.prefix",
                format!("`{s}` does not start with /"),
                "use a key path such as \"/failover-orchestrator/prod\"",
            );
            DEFAULT_PREFIX.to_string()
        }
        Some(s) => s.trim_end_matches('/').to_string(),
        None => DEFAULT_PREFIX.to_string(),
    };
    let vantages = vantages(raw, regions, p);
    if let Some((me, _)) = me
        && !vantages.contains(me)
        && raw.vantages.is_some()
    {
        p.push(
            "coordination.vantages",
            format!("does not list this orchestrator's region `{me}`"),
            format!("add \"{me}\", or start this orchestrator with --region set to one of {}", list(&vantages)),
        );
    }
    let advertise = match &raw.advertise {
        Some(u) if reqwest::Url::parse(u).is_ok_and(|x| matches!(x.scheme(), "http" | "https")) => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            p.push(
                "coordination.advertise",
                format!("`{u}` is not an http(s) URL"),
                "use the URL peers and operators reach this orchestrator's API at, e.g. \"http://10.0.1.5:8080\"",
            );
            String::new()
        }
        None => listen.map(|l| format!("http://{l}")).unwrap_or_default(),
    };
    CoordinationConfig { backend, vantages, lease_ttl, view_ttl, prefix, advertise }
}

fn backend(raw: &RawCoordination, p: &mut Problems) -> Backend {
    match raw.backend.as_deref().unwrap_or("single") {
        "single" => {
            if raw.endpoints.is_some() {
                p.push(
                    "coordination.endpoints",
                    "set while backend is \"single\"",
                    "set backend = \"etcd\" to use them, or remove endpoints",
                );
            }
            Backend::Single
        }
        "etcd" => {
            let endpoints = raw.endpoints.clone().unwrap_or_default();
            if endpoints.is_empty() {
                p.push(
                    "coordination.endpoints",
                    "missing or empty with backend = \"etcd\"",
                    "list the etcd members' client URLs, one per region, e.g. [\"http://10.0.1.5:2379\", \"http://10.0.2.5:2379\", \"http://10.0.3.5:2379\"]",
                );
            }
            for (i, e) in endpoints.iter().enumerate() {
                let ok = reqwest::Url::parse(e).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.port_or_known_default().is_some()
                });
                if !ok {
                    p.push(
                        format!("coordination.endpoints[{i}]"),
                        format!("`{e}` is not an http(s) URL with a host"),
                        "write a client URL such as \"http://10.0.1.5:2379\"",
                    );
                }
            }
            Backend::Etcd { endpoints }
        }
        other => {
            p.push(
                "coordination.backend",
                format!("unknown backend `{other}`"),
                "use \"single\" (one orchestrator) or \"etcd\" (one orchestrator per region)",
            );
            Backend::Single
        }
    }
}

fn vantages(raw: &RawCoordination, regions: &[RegionName], p: &mut Problems) -> Vec<RegionName> {
    let Some(listed) = &raw.vantages else { return regions.to_vec() };
    let mut out: Vec<RegionName> = Vec::new();
    for (i, v) in listed.iter().enumerate() {
        if !regions.iter().any(|r| r.as_str() == v) {
            p.push(
                format!("coordination.vantages[{i}]"),
                format!("`{v}` is not one of the regions"),
                format!("list regions that run an orchestrator: {}", list(regions)),
            );
        } else if out.iter().any(|o| o.as_str() == v) {
            p.push(format!("coordination.vantages[{i}]"), format!("`{v}` is listed twice"), "list each region once");
        } else {
            out.push(RegionName::new(v.clone()));
        }
    }
    if listed.is_empty() {
        p.push("coordination.vantages", "is empty", "list the regions that run an orchestrator, or remove the key");
    }
    out
}

/// `policy.quorum` given the coordination: default 1 with `single` and a majority of the
/// vantages with etcd; more than 1 with `single`, or more than the vantages, is a problem.
pub(super) fn quorum(raw: Option<i64>, c: &CoordinationConfig, p: &mut Problems) -> usize {
    let vantages = c.vantages.len().max(1);
    let Some(q) = raw else {
        return match c.backend {
            Backend::Single => 1,
            Backend::Etcd { .. } => vantages / 2 + 1,
        };
    };
    if q < 1 {
        return 1; // reported by the policy validator
    }
    let q = q as usize;
    if c.backend == Backend::Single && q > 1 {
        p.push(
            "policy.quorum",
            format!("{q} with coordination.backend = \"single\": one orchestrator is one vantage, so no region could ever be declared down"),
            "set quorum = 1, or run one orchestrator per region with [coordination] backend = \"etcd\"",
        );
        return 1;
    }
    if q > vantages {
        p.push(
            "policy.quorum",
            format!("{q} is more than the {vantages} vantage(s) ({})", list(&c.vantages)),
            format!("use at most {vantages}; a majority is {}", vantages / 2 + 1),
        );
        return vantages;
    }
    q
}
