//! Probes: one target at one layer, probed with a hard timeout.
//!
//! A [`Probe`] answers with a [`ProbeResult`]; a refused connection, a wrong
//! status or a timeout is a result, never an `Err`. The [`runner`] turns
//! results into [`Observation`](crate::observation::Observation)s on the
//! check's own interval, one task per check, so a slow target never delays
//! another.

pub mod attempts;
pub mod http;
pub mod postgres;
pub mod runner;
pub mod tcp;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{CheckConfig, CheckKind};

/// What one probe attempt found, before latency thresholds are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the target answered correctly.
    pub ok: bool,
    /// Why not, when `ok` is false.
    pub error: Option<String>,
    /// Extra facts (e.g. `in_recovery=false`).
    pub detail: Option<String>,
    /// The latency of the attempt that answered, when it differs from the whole
    /// probe's (see [`attempts`]); None: the runner measures the whole probe.
    pub latency: Option<Duration>,
}

impl ProbeResult {
    /// A correct answer.
    pub fn ok(detail: Option<String>) -> Self {
        Self { ok: true, error: None, detail, latency: None }
    }

    /// A failure with its reason.
    pub fn failed(error: impl Into<String>) -> Self {
        Self { ok: false, error: Some(error.into()), detail: None, latency: None }
    }
}

/// One probe target. Implementations must return within their own timeout or be
/// cancel-safe, since the runner wraps every call in `tokio::time::timeout`.
#[async_trait]
pub trait Probe: Send + Sync {
    /// Probes once.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future abandons the attempt and leaks nothing.
    async fn probe(&self) -> ProbeResult;
}

/// Builds the probe for a check.
pub fn build(check: &CheckConfig, http: &reqwest::Client) -> Arc<dyn Probe> {
    let probe: Arc<dyn Probe> = match &check.kind {
        CheckKind::Tcp { target } => Arc::new(tcp::TcpProbe::new(target.clone())),
        CheckKind::Http { url, expect_status, body_contains } => Arc::new(http::HttpProbe::new(
            http.clone(),
            url.clone(),
            *expect_status,
            body_contains.clone(),
            check.timeout,
        )),
        CheckKind::Postgres { dsn, expect_recovery } => {
            Arc::new(postgres::PostgresProbe::new(dsn.clone(), *expect_recovery, check.timeout))
        }
    };
    if check.attempts > 1 { Arc::new(attempts::Attempts::new(probe, check.attempts, check.timeout)) } else { probe }
}

/// An HTTP client for probes: no connection reuse, so every probe really connects.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("failover-orchestrator/", env!("CARGO_PKG_VERSION")))
        .build()
}
