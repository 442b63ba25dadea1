//! Traffic providers: where a [`TrafficPlan`] becomes real DNS answers or load-balancer weights.
//!
//! Every provider implements [`TrafficProvider`]: apply a plan idempotently and
//! read back what is live. The [`applier`] drives all providers toward the
//! latest plan, retrying with exponential backoff and full jitter, verifying by
//! read-back, and reporting each outcome to the engine, where a failure is an
//! alarm and never a crash. A provider refuses a plan older than the epoch it
//! last applied (fencing).

pub mod applier;
pub mod file;
pub mod haproxy;
pub mod powerdns;
pub mod propagation;
pub mod rfc2136;
pub mod route53;
pub mod webhook;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, ProviderConfig};
use crate::plan::{Epoch, TrafficPlan, Weights};
use crate::region::RegionName;

/// What a provider serves right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveState {
    /// Weight per region as the provider expresses it (regions it does not serve are 0).
    pub weights: Weights,
    /// The epoch of the plan that wrote it, if the provider records one.
    pub epoch: Option<Epoch>,
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or timed out.
    #[error("{provider}: unreachable: {detail}")]
    Unreachable {
        /// Provider name.
        provider: String,
        /// What happened (no secrets).
        detail: String,
    },
    /// The provider answered with an error.
    #[error("{provider}: rejected ({status}): {detail}")]
    Rejected {
        /// Provider name.
        provider: String,
        /// Status code or error class.
        status: String,
        /// The provider's message.
        detail: String,
    },
    /// The plan is older than what the provider last applied.
    #[error("{provider}: refused plan from stale epoch {plan} (provider is at epoch {live})")]
    StaleEpoch {
        /// Provider name.
        provider: String,
        /// The plan's epoch.
        plan: Epoch,
        /// The epoch the provider has.
        live: Epoch,
    },
    /// The read-back after applying did not match the plan.
    #[error("{provider}: read-back shows {got}, expected {expected}")]
    Verify {
        /// Provider name.
        provider: String,
        /// Wanted weights.
        expected: Weights,
        /// Live weights.
        got: Weights,
    },
    /// The provider's live state could not be understood.
    #[error("{provider}: cannot read live state: {detail}")]
    Malformed {
        /// Provider name.
        provider: String,
        /// What could not be parsed.
        detail: String,
    },
    /// The fence stopped the write: this orchestrator does not (or can no longer prove it does) lead.
    #[error("{provider}: not written: {detail}")]
    Fenced {
        /// Provider name.
        provider: String,
        /// Why (from the fence).
        detail: String,
        /// Whether trying again may help (etcd briefly unreachable) or not (leadership lost).
        retryable: bool,
    },
    /// Local I/O (file provider).
    #[error("{provider}: {context}")]
    Io {
        /// Provider name.
        provider: String,
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ProviderError {
    /// Whether retrying may help (not after a stale epoch or a lost leadership).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::StaleEpoch { .. } => false,
            ProviderError::Fenced { retryable, .. } => *retryable,
            _ => true,
        }
    }
}

/// A place where traffic weights live.
///
/// Contract: `apply` is idempotent (applying the same plan twice changes nothing),
/// refuses a plan whose epoch is below the live one, and returns only when the
/// provider accepted the write; `read_back` reports what is really served.
#[async_trait]
pub trait TrafficProvider: Send + Sync {
    /// The provider's configured name.
    fn name(&self) -> &str;

    /// Writes the plan's weights.
    ///
    /// # Errors
    /// [`ProviderError`]; `StaleEpoch` must not be retried.
    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError>;

    /// Reads the live weights.
    ///
    /// # Errors
    /// [`ProviderError`] when the provider cannot be read or understood.
    async fn read_back(&self) -> Result<LiveState, ProviderError>;

    /// The weights as this provider can express them, to compare with [`Self::read_back`].
    ///
    /// The default drops regions at zero. DNS without weights (RFC 2136)
    /// overrides it: every region with a weight is served, equally.
    fn expressible(&self, weights: &Weights) -> Weights {
        nonzero(weights)
    }

    /// For DNS providers: what the authoritative servers must answer once
    /// `plan` has propagated. `None` (the default) skips the propagation check.
    fn propagation_target(&self, _plan: &TrafficPlan) -> Option<propagation::Target> {
        None
    }
}

/// Weights as a provider can express them: drops regions at zero so that
/// `{a: 100, b: 0}` and `{a: 100}` compare equal.
pub fn nonzero(w: &Weights) -> Weights {
    Weights::from_pairs(w.iter().filter(|(_, v)| *v > 0).map(|(r, v)| (r.clone(), v)))
}

/// The address each region is served at (for DNS providers).
pub fn addresses(config: &Config) -> BTreeMap<RegionName, IpAddr> {
    config.regions.iter().filter_map(|r| r.address.map(|a| (r.name.clone(), a))).collect()
}

/// Builds every configured provider, each with its breaker / drift settings.
///
/// # Errors
/// When a provider's client cannot be built.
pub async fn build(config: &Config) -> anyhow::Result<Vec<applier::ProviderSlot>> {
    let mut out = Vec::new();
    for p in &config.providers {
        let provider: Arc<dyn TrafficProvider> = match p {
            ProviderConfig::File { name, path } => Arc::new(file::FileProvider::new(name.clone(), path.clone())),
            ProviderConfig::PowerDns(c) => Arc::new(powerdns::PowerDnsProvider::new(c.clone(), addresses(config))?),
            ProviderConfig::Haproxy(c) => Arc::new(haproxy::HaproxyProvider::new(c.clone())),
            ProviderConfig::Rfc2136(c) => Arc::new(rfc2136::Rfc2136Provider::new(c.clone(), addresses(config))?),
            ProviderConfig::Route53(c) => Arc::new(route53::Route53Provider::new(c.clone(), addresses(config)).await),
            ProviderConfig::Webhook(c) => Arc::new(webhook::WebhookProvider::new(c.clone())?),
        };
        let guard = config.guards.get(p.name()).cloned().unwrap_or_default();
        out.push(applier::ProviderSlot { provider, guard });
    }
    Ok(out)
}
