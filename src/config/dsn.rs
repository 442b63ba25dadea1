//! PostgreSQL DSNs in the configuration: which environment variable overrides
//! which DSN, what counts as a DSN at all, and how one is printed without its
//! password. Validation, the summary, the check descriptions and the engine's
//! logs all go through here, so a password has one way out: `***`.

use crate::region::RegionName;

/// Environment variable that overrides `orchestrator.store_dsn`.
pub const ENV_STORE_DSN: &str = "FO_STORE_DSN";

/// Replaces the password of a DSN (URL or key=value form) with `***`.
pub fn redact_dsn(dsn: &str) -> String {
    if let Some(scheme_end) = dsn.find("://") {
        let rest = &dsn[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!("{}{}:***{}", &dsn[..scheme_end + 3], &userinfo[..colon], &rest[at..]);
            }
        }
        return dsn.to_string();
    }
    dsn.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The environment variable that overrides region `name`'s PostgreSQL DSN.
pub fn region_dsn_env(name: &RegionName) -> String {
    format!("FO_PG_DSN_{}", name.as_str().to_ascii_uppercase().replace('-', "_"))
}

/// Whether `s` has the shape of a PostgreSQL DSN (URL or key=value form).
pub(super) fn looks_like_dsn(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains("host=")
}
