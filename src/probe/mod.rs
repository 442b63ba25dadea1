//! Probes: one target at one layer, probed with a hard timeout: a TCP connect, an HTTP GET, a
//! PostgreSQL query; a number scraped from a metrics endpoint or asked of Prometheus and judged
//! against limits ([`metric`], [`promql`]); and, passive, HAProxy's view of the live traffic
//! ([`haproxy`]).
//!
//! A [`Probe`] answers with a [`ProbeResult`]; a refused connection, a wrong
//! status or a timeout is a result, never an `Err`. The [`runner`] turns
//! results into [`Observation`](crate::observation::Observation)s on the
//! check's own interval, one task per check, so a slow target never delays
//! another.

pub mod attempts;
pub mod haproxy;
pub mod http;
pub mod metric;
pub mod postgres;
pub mod promql;
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
    /// Answered, but what it answered is past a degraded limit (a metric check's value):
    /// why. The runner records the probe as degraded whatever its latency.
    pub degraded: Option<String>,
}

impl ProbeResult {
    /// A correct answer.
    pub fn ok(detail: Option<String>) -> Self {
        Self { ok: true, error: None, detail, latency: None, degraded: None }
    }

    /// A correct answer whose content is past a degraded limit, with the reason.
    pub fn degraded(reason: impl Into<String>, detail: Option<String>) -> Self {
        Self { ok: true, error: None, detail, latency: None, degraded: Some(crate::redact::text(&reason.into())) }
    }

    /// The probe result of a judged [`Reading`](crate::signal::Reading): the value's text
    /// becomes the detail of a pass.
    pub fn of_reading(reading: crate::signal::Reading) -> Self {
        match reading {
            crate::signal::Reading::Ok(detail) => Self::ok(Some(detail)),
            crate::signal::Reading::Degraded(why) => Self::degraded(why, None),
            crate::signal::Reading::Failed(why) => Self::failed(why),
        }
    }

    /// A failure with its reason, redacted ([`crate::redact::text`]): an HTTP
    /// client's error names the URL, credentials included.
    pub fn failed(error: impl Into<String>) -> Self {
        Self { ok: false, error: Some(crate::redact::text(&error.into())), detail: None, latency: None, degraded: None }
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
        CheckKind::Metric { url, source, limits } => {
            Arc::new(metric::MetricProbe::new(http.clone(), url.clone(), source.clone(), *limits, check.timeout))
        }
        CheckKind::Promql { url, query, limits } => {
            Arc::new(promql::PromqlProbe::new(http.clone(), url, query.clone(), *limits, check.timeout))
        }
        CheckKind::Haproxy { admin, backend, server, limits } => {
            Arc::new(haproxy::HaproxyProbe::new(admin.clone(), backend.clone(), server.clone(), *limits))
        }
    };
    if check.attempts > 1 { Arc::new(attempts::Attempts::new(probe, check.attempts, check.timeout)) } else { probe }
}

/// The HTTP client of the probes reqwest makes (`https://`, URLs with credentials; plain
/// `http://` probes open their own connection, see [`http`]): no connection reuse, so every
/// probe really connects.
///
/// Every request says `Connection: close`, so the target closes first and the closing side's
/// `TIME_WAIT` (60 s on Linux) stays with the target, where it costs no port, instead of with
/// us: a prober that closes first keeps one of its ~28 000 ephemeral ports per connection for a
/// minute, which runs out at a few hundred probes per second to one `host:port`
/// (`Cannot assign requested address`). HAProxy's health checks send the same header.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::CONNECTION, reqwest::header::HeaderValue::from_static("close"));
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(http::PROBE_USER_AGENT)
        .build()
}

/// Raises this process's soft limit of open files to its hard limit, as servers do at start-up:
/// every probe in flight holds a socket, and the common soft default (1 024) would turn a few
/// thousand checks into `Too many open files`. Returns the (soft, hard) limits now in force.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    let now = getrlimit(Resource::Nofile);
    Ok((now.current.unwrap_or(u64::MAX), now.maximum.unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = super::raise_open_files_limit().unwrap();
        assert_eq!(soft, hard);
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current, now.maximum);
    }
}
