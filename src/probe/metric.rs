//! Metric check: scrapes a Prometheus exposition endpoint (node_exporter on the region's hosts,
//! or the app's own `/metrics`) and judges one number of it against limits.
//!
//! The number is the one sample a selector names, or a node_exporter host signal
//! ([`crate::signal::node`]). CPU busy is a rate: it compares this scrape with the previous
//! one, and a probe with no previous scrape, or one younger than a quarter of the timeout (at
//! most 250 ms), scrapes twice that far apart, so that it too has a value (two scrapes a few
//! milliseconds apart can read the same counters). The parsing and judging are pure ([`crate::signal`]); this file
//! only fetches.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use prometheus_parse::Scrape;

use super::{Probe, ProbeResult};
use crate::config::MetricSource;
use crate::signal::ValueLimits;
use crate::signal::selector::parse_scrape;

/// A scrape longer than this fails the check (node_exporter's is about 100 KiB).
const SCRAPE_LIMIT: usize = 16 << 20;

/// Scrapes `url` and judges one number of it.
#[derive(Debug)]
pub struct MetricProbe {
    client: reqwest::Client,
    url: String,
    source: MetricSource,
    limits: ValueLimits,
    timeout: Duration,
    /// The previous scrape and when it was taken, kept for a rate (CPU busy) only.
    previous: Mutex<Option<(std::time::Instant, Scrape)>>,
}

impl MetricProbe {
    /// A probe of `url` reading `source`, judged by `limits`, each fetch bounded by `timeout`.
    pub fn new(
        client: reqwest::Client,
        url: String,
        source: MetricSource,
        limits: ValueLimits,
        timeout: Duration,
    ) -> Self {
        Self { client, url, source, limits, timeout, previous: Mutex::new(None) }
    }

    async fn scrape(&self) -> Result<Scrape, String> {
        let text = get_text(&self.client, &self.url, self.timeout, SCRAPE_LIMIT).await?;
        parse_scrape(&text, Utc::now())
    }

    fn previous(&self) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, Scrape)>> {
        self.previous.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// GETs `url` (2xx expected) and returns its body as text, at most `limit` bytes.
///
/// # Errors
/// The request failed or timed out, the status is not 2xx, or the body is too long.
///
/// # Cancel safety
/// Cancel-safe: dropping the future abandons the request.
pub(super) async fn get_text(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<String, String> {
    let fail = |what: String| format!("GET {}: {what}", crate::redact::url(url));
    let resp = client.get(url).timeout(timeout).send().await.map_err(|e| fail(super::http::describe(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("status {}", resp.status().as_u16())));
    }
    read_body(resp, limit).await.map_err(fail)
}

/// The body of `resp` as text, at most `limit` bytes.
///
/// # Errors
/// The body could not be read, is longer than `limit` or is not UTF-8.
pub(super) async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| super::http::describe(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is longer than {} MiB", limit >> 20));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".into())
}

#[async_trait]
impl Probe for MetricProbe {
    async fn probe(&self) -> ProbeResult {
        let now = match self.scrape().await {
            Ok(s) => s,
            Err(e) => return ProbeResult::failed(e),
        };
        let value = match &self.source {
            MetricSource::Selector(sel) => sel.value_in(&now).map(|v| (sel.to_string(), v)),
            MetricSource::Node(signal) if signal.needs_previous() => {
                // A rate needs two scrapes some time apart: with none kept, or one taken just
                // now (probes in quick succession), this probe waits out the gap and scrapes again.
                let gap = (self.timeout / 4).min(Duration::from_millis(250));
                let mut before = self.previous().take().filter(|(at, _)| at.elapsed() >= gap).map(|(_, s)| s);
                let mut now = now;
                if before.is_none() {
                    tokio::time::sleep(gap).await;
                    match self.scrape().await {
                        Ok(second) => before = Some(std::mem::replace(&mut now, second)),
                        Err(e) => return ProbeResult::failed(e),
                    }
                }
                let v = signal.value(before.as_ref(), &now).map(|v| (signal.to_string(), v));
                *self.previous() = Some((std::time::Instant::now(), now));
                v
            }
            MetricSource::Node(signal) => signal.value(None, &now).map(|v| (signal.to_string(), v)),
        };
        match value {
            Ok((what, v)) => ProbeResult::of_reading(self.limits.judge(&what, v)),
            Err(e) => ProbeResult::failed(format!("{}: {e}", crate::redact::url(&self.url))),
        }
    }
}
