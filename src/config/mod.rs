//! `regions.toml`: schema, validation and environment overrides.
//!
//! Two stages: [`raw`] parses exactly what is written (unknown keys are errors),
//! then [`Config::from_raw`] checks everything and returns either a typed
//! [`Config`] or a [`ConfigError::Invalid`] listing *all* problems, each with its
//! key path, what is wrong and the fix. Secrets (DSNs, API keys) are held as
//! [`SecretString`](secrecy::SecretString) and never printed; environment
//! variables override them.
//!
//! Where things are:
//! - this file: [`Config`] itself, how it is loaded and looked up;
//! - `model.rs`: the validated sections (orchestrator, regions, checks, …) and
//!   `providers.rs` the validated provider and notification settings;
//! - `validate/`: one validator per section, named after the section, and
//!   [`Config::from_raw`], which runs them in a fixed order;
//! - `summary.rs`: the secret-free `check-config` summary; `dsn.rs`: DSN
//!   overrides, shape check and redaction.
//!
//! The decision [`Policy`] is the one owner of each region's normal weight and
//! RPO gate (`max_lag`); the region models borrow them from it.

mod dsn;
mod error;
mod model;
mod providers;
pub mod raw;
mod summary;
mod validate;

use std::collections::BTreeMap;

pub use dsn::{ENV_STORE_DSN, region_dsn_env};
pub use error::{ConfigError, Problem};
pub use model::{
    AppRole, AuthConfig, Backend, CheckConfig, CheckKind, CoordinationConfig, DEFAULT_ATTEMPTS,
    DEFAULT_AUDIT_RETENTION, LimitsConfig, MetricSource, OrchestratorConfig, RegionConfig, RegionPostgres,
    ReplicationConfig, ScheduleConfig, TlsFiles, TracesConfig,
};
pub use providers::{
    AwsKeys, HaproxyAdmin, HaproxyConfig, NotificationConfig, OnDrift, PowerDnsConfig, ProviderConfig, ProviderGuard,
    Rfc2136Config, Route53Config, Route53Target, TsigAlgorithm, WebhookConfig, decode_tsig_secret,
};
use raw::RawConfig;

use crate::policy::Policy;
use crate::region::RegionName;

/// The validated configuration. Built only by [`Config::from_raw`].
#[derive(Debug, Clone)]
pub struct Config {
    /// This orchestrator's settings.
    pub orchestrator: OrchestratorConfig,
    /// The decision policy; the owner of every region's normal weight and `max_lag`.
    pub policy: Policy,
    /// The regions, in file order.
    pub regions: Vec<RegionConfig>,
    /// Where plans are applied.
    pub providers: Vec<ProviderConfig>,
    /// Breaker, drift and propagation settings per provider name.
    pub guards: BTreeMap<String, ProviderGuard>,
    /// Webhooks told about events.
    pub notifications: Vec<NotificationConfig>,
    /// Housekeeping and drill schedule.
    pub schedule: ScheduleConfig,
    /// Replication lag collection.
    pub replication: ReplicationConfig,
    /// API tokens; None: reads open, mutations refused.
    pub auth: Option<AuthConfig>,
    /// Leader election and shared views.
    pub coordination: CoordinationConfig,
    /// Rate limits and bounds of the API.
    pub limits: LimitsConfig,
    /// Export of incident traces over OTLP; None: off.
    pub traces: Option<TracesConfig>,
}

impl Config {
    /// How long audit entries are kept: `[auth] audit_retention`, or 90 days (also without `[auth]`).
    pub fn audit_retention(&self) -> std::time::Duration {
        self.auth.as_ref().map_or(DEFAULT_AUDIT_RETENTION, |a| a.audit_retention)
    }

    /// Reads and validates a file, taking secrets and overrides from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read, parsed or validated.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        Self::load_for(path, None)
    }

    /// [`Config::load`] for the orchestrator of `region` (`serve --region`, `FO_REGION`), which
    /// replaces `orchestrator.vantage` so that every region can run the same file.
    ///
    /// # Errors
    /// As [`Config::load`]; an unknown region is a problem on `orchestrator.vantage`.
    pub fn load_for(path: &std::path::Path, region: Option<&str>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse_for(&text, &path.display().to_string(), region, &|k| std::env::var(k).ok())
    }

    /// Parses and validates TOML text; `env` looks up environment variables.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::parse_for(text, origin, None, env)
    }

    /// [`Config::parse`] with the vantage replaced by `region` when given.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse_for(
        text: &str,
        origin: &str,
        region: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?;
        if let Some(r) = region {
            raw.orchestrator.vantage = Some(r.to_string());
        }
        Self::from_raw(raw, env)
    }

    /// The region named `name`.
    pub fn region(&self, name: &RegionName) -> Option<&RegionConfig> {
        self.regions.iter().find(|r| &r.name == name)
    }

    /// Every check of every region.
    pub fn checks(&self) -> impl Iterator<Item = &CheckConfig> {
        self.regions.iter().flat_map(|r| r.checks.iter())
    }
}

#[cfg(test)]
mod tests;
