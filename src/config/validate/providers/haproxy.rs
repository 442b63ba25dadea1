//! `type = "haproxy"`: the runtime API (TCP or UNIX socket, never both), the
//! backend, and each region's server name (`regions[].targets.<provider>`,
//! default the region name).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{region_key, socket_addr, target};
use crate::config::error::Problems;
use crate::config::raw::RawHaproxyProvider;
use crate::config::{HaproxyAdmin, HaproxyConfig, RegionConfig};
use crate::region::RegionName;

/// Validates an HAProxy provider table.
pub(super) fn validate(
    key: &str,
    h: &RawHaproxyProvider,
    regions: &[RegionConfig],
    p: &mut Problems,
) -> Option<HaproxyConfig> {
    let name = h.name.clone().unwrap_or_else(|| "haproxy".into());
    let admin = admin(key, h.admin_addr.as_ref(), h.admin_socket.as_deref(), p);
    let backend = backend(key, h.backend.as_deref(), p);
    let servers = servers(&name, regions, p);
    Some(HaproxyConfig {
        name,
        admin: admin?,
        backend: backend?,
        servers,
        timeout: h.timeout.unwrap_or(Duration::from_secs(2)),
    })
}

/// `admin_addr` or `admin_socket`: exactly one (also for the passive `haproxy` check).
pub(in crate::config::validate) fn admin(
    key: &str,
    admin_addr: Option<&String>,
    admin_socket: Option<&str>,
    p: &mut Problems,
) -> Option<HaproxyAdmin> {
    match (admin_addr, admin_socket) {
        // One runtime API per provider: two could drive two different processes.
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
    }
}

/// `backend`: a name without whitespace (also for the passive `haproxy` check).
pub(in crate::config::validate) fn backend(key: &str, backend: Option<&str>, p: &mut Problems) -> Option<String> {
    match backend {
        Some(b) if !b.is_empty() && !b.contains(char::is_whitespace) => Some(b.to_string()),
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
    }
}

/// The HAProxy server of each region; a region with a malformed entry is left out.
fn servers(name: &str, regions: &[RegionConfig], p: &mut Problems) -> BTreeMap<RegionName, String> {
    let mut servers = BTreeMap::new();
    for r in regions {
        // HAProxy commands are whitespace-separated: a server name with a space
        // would address another server.
        let server = match target(r, name) {
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
    servers
}
