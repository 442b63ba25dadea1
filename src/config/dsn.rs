//! PostgreSQL DSNs in the configuration: which environment variable overrides
//! which DSN, and what counts as a DSN at all. How one is printed without its
//! secrets is [`crate::redact::dsn`], the one redaction function.

use crate::region::RegionName;

/// Environment variable that overrides `orchestrator.store_dsn`.
pub const ENV_STORE_DSN: &str = "FO_STORE_DSN";

/// The environment variable that overrides region `name`'s PostgreSQL DSN.
pub fn region_dsn_env(name: &RegionName) -> String {
    format!("FO_PG_DSN_{}", name.as_str().to_ascii_uppercase().replace('-', "_"))
}

/// Whether `s` has the shape of a PostgreSQL DSN (URL or key=value form).
pub(super) fn looks_like_dsn(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains("host=")
}
