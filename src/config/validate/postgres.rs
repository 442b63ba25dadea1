//! `[regions.postgres]`: a region's database (DSN, overridable per region from
//! the environment), its lag limits and how it is promoted.
//!
//! The RPO gate (`max_lag`, `max_lag_bytes`) is returned beside the model: the
//! policy owns it. `degrade_lag` stays with the database model.

use secrecy::SecretString;

use crate::config::RegionPostgres;
use crate::config::dsn::{looks_like_dsn, region_dsn_env};
use crate::config::error::Problems;
use crate::config::raw::{RawRegion, RawRegionPostgres};
use crate::policy::LagLimit;
use crate::region::RegionName;

/// The region's database and its RPO gate; `None` when the DSN is missing or malformed.
pub(super) fn validate(
    key: &str,
    pg: &RawRegionPostgres,
    r: &RawRegion,
    name: Option<&RegionName>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<(RegionPostgres, LagLimit)> {
    let dsn = dsn(key, pg, name, env, p);
    let bytes = lag_bytes(&format!("{key}.postgres.max_lag_bytes"), pg.max_lag_bytes, p);
    let degrade_bytes = lag_bytes(&format!("{key}.postgres.degrade_lag_bytes"), pg.degrade_lag_bytes, p);
    // PostgreSQL truncates application_name to 63 bytes (NAMEDATALEN - 1), so a
    // longer one would never match the standby's row in pg_stat_replication.
    let application_name = pg.application_name.clone().or_else(|| r.name.clone()).unwrap_or_default();
    if application_name.is_empty() || application_name.len() > 63 {
        p.push(
            format!("{key}.postgres.application_name"),
            "must be 1–63 characters",
            "use the standby's application_name from primary_conninfo",
        );
    }
    let max_lag = LagLimit { bytes, time: pg.max_lag };
    let model = RegionPostgres {
        dsn: dsn?,
        degrade_lag: LagLimit { bytes: degrade_bytes, time: pg.degrade_lag },
        application_name,
        promote: pg.promote.unwrap_or(false),
    };
    Some((model, max_lag))
}

/// `regions[i].postgres.dsn`, overridden by `FO_PG_DSN_<REGION>`.
fn dsn(
    key: &str,
    pg: &RawRegionPostgres,
    name: Option<&RegionName>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SecretString> {
    // The environment wins over the file, so a password need never be written
    // into regions.toml; without a valid name there is no variable to read.
    let env_key = name.map(region_dsn_env);
    match env_key.as_deref().and_then(env).or_else(|| pg.dsn.clone()) {
        Some(d) if looks_like_dsn(&d) => Some(SecretString::from(d)),
        Some(_) => {
            p.push(format!("{key}.postgres.dsn"), "is not a PostgreSQL DSN", "use postgres://user@host:port/db");
            None
        }
        None => {
            p.push(
                format!("{key}.postgres.dsn"),
                "missing",
                format!("set dsn = \"postgres://…\" or the environment variable {}", env_key.unwrap_or_default()),
            );
            None
        }
    }
}

/// A lag limit in bytes at `key`: absent, or 0 or more.
fn lag_bytes(key: &str, v: Option<i64>, p: &mut Problems) -> Option<u64> {
    match v {
        Some(b) if b >= 0 => Some(b as u64),
        Some(b) => {
            p.push(key, format!("{b} is negative"), "use 0 or more bytes");
            None
        }
        None => None,
    }
}
