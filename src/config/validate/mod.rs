//! The second stage of loading: one validator per section of `regions.toml`,
//! run in a fixed order by [`Config::from_raw`].
//!
//! Every validator reads its raw section, pushes one [`Problem`] per issue (key
//! path, what is wrong, the fix) and returns what it could build, so the user
//! sees every problem at once. The order of the calls below is the order of the
//! problems in `check-config`'s output: keep it.
//!
//! The regions validator builds both the region models and their policy entries
//! (normal weight, RPO gate); the policy validator takes those entries over, so
//! each of those facts has one owner, [`Policy`](crate::policy::Policy).

mod auth;
mod checks;
mod coordination;
mod limits;
mod notifications;
mod orchestrator;
mod policy;
mod postgres;
mod providers;
mod regions;
mod replication;
mod schedule;
mod signal_checks;
mod traces;

use secrecy::SecretString;

use super::error::Problems;
use super::raw::RawConfig;
use super::{Config, ConfigError, Problem};
use crate::region::RegionName;

impl Config {
    /// Validates a parsed file. Lists every problem, not only the first.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with one [`Problem`] per issue found.
    pub fn from_raw(raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let (regions, region_policies) = regions::validate(&raw.regions, env, &mut p);
        let names: Vec<RegionName> = regions.iter().map(|r| r.name.clone()).collect();
        let orchestrator = orchestrator::validate(&raw.orchestrator, &names, env, &mut p);
        let policy = policy::validate(&raw.policy, region_policies, &mut p);
        let (providers, guards) = providers::validate(&raw.providers, &regions, &policy, env, &mut p);
        let notifications = notifications::validate(&raw.notifications, env, &mut p);
        let replication = replication::validate(&raw.replication, &regions, &mut p);
        let mut schedule = schedule::validate_housekeeping(&raw.schedule, &mut p);
        let auth = raw.auth.as_ref().and_then(|a| auth::validate(a, env, &mut p));
        schedule.drills = schedule::validate_drills(&raw.schedule.drills, &policy, &mut p);
        let mut policy = policy;
        let me = orchestrator.as_ref().map(|o| (&o.vantage, o.listen));
        let coordination = coordination::validate(&raw.coordination, &names, me, &mut p);
        policy.quorum = coordination::quorum(raw.policy.quorum, &coordination, &mut p);
        let limits = limits::validate(&raw.limits, &mut p);
        let traces = traces::validate(&raw.traces, env, &mut p);
        if !p.0.is_empty() {
            return Err(ConfigError::Invalid(p.0));
        }
        // The orchestrator is None only when a problem was pushed, which returned above.
        let Some(orchestrator) = orchestrator else {
            return Err(ConfigError::Invalid(vec![Problem {
                key: "orchestrator".into(),
                what: "incomplete".into(),
                fix: "see the configuration reference in README.md".into(),
            }]));
        };
        Ok(Config {
            orchestrator,
            policy,
            regions,
            providers,
            guards,
            notifications,
            schedule,
            auth,
            replication,
            coordination,
            limits,
            traces,
        })
    }
}

/// A secret from the environment variable named by `<key>_env` or the file named
/// by `<key>_file` (environment first); a problem when neither is set or usable.
pub(super) fn secret_from(
    key: &str,
    env_name: Option<&String>,
    file: Option<&String>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<SecretString> {
    if let Some(var) = env_name {
        return match env(var) {
            Some(v) if !v.is_empty() => Some(SecretString::from(v)),
            _ => {
                p.push(
                    format!("{key}_env"),
                    format!("environment variable {var} is not set"),
                    format!("export {var}=… before starting"),
                );
                None
            }
        };
    }
    if let Some(path) = file {
        return secret_file(key, path, p);
    }
    p.push(
        format!("{key}_env"),
        "missing",
        format!("set {key}_env = \"VAR\" (an environment variable) or {key}_file = \"/path\""),
    );
    None
}

/// The trimmed contents of the secret file at `path`; a problem when it is empty or unreadable.
fn secret_file(key: &str, path: &str, p: &mut Problems) -> Option<SecretString> {
    match std::fs::read_to_string(path) {
        Ok(v) if !v.trim().is_empty() => Some(SecretString::from(v.trim().to_string())),
        Ok(_) => {
            p.push(format!("{key}_file"), format!("{path} is empty"), "write the secret into the file");
            None
        }
        Err(e) => {
            p.push(
                format!("{key}_file"),
                format!("cannot read {path}: {e}"),
                "point it at a readable file holding the secret",
            );
            None
        }
    }
}

/// `"a", "b", "c"`: region names as a fix text lists them.
pub(super) fn list(names: &[RegionName]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}
