//! PromQL check: asks a Prometheus server an instant query (`GET <url>/api/v1/query?query=…`)
//! and judges the single value of its answer against limits, e.g. the app's 5xx ratio or p99
//! latency in the region as the operators' own Prometheus computes it. An empty or ambiguous
//! answer fails the check with the reason ([`crate::signal::promql`]).

use std::time::Duration;

use async_trait::async_trait;

use super::metric::read_body;
use super::{Probe, ProbeResult};
use crate::signal::ValueLimits;
use crate::signal::promql::single_value;

/// An answer longer than this fails the check.
const ANSWER_LIMIT: usize = 4 << 20;

/// Asks one instant query and judges its value.
#[derive(Debug, Clone)]
pub struct PromqlProbe {
    client: reqwest::Client,
    /// `<url>/api/v1/query?query=<query>`, built once.
    query_url: Result<String, String>,
    query: String,
    limits: ValueLimits,
    timeout: Duration,
}

impl PromqlProbe {
    /// A probe asking the Prometheus server at `url` for `query`.
    pub fn new(client: reqwest::Client, url: &str, query: String, limits: ValueLimits, timeout: Duration) -> Self {
        let query_url = reqwest::Url::parse(url)
            .and_then(|base| base.join("api/v1/query").map(|u| (base, u)))
            .map(|(base, mut u)| {
                // `join` replaces the last path segment unless the base ends with `/`.
                if !base.path().ends_with('/') {
                    u.set_path(&format!("{}/api/v1/query", base.path().trim_end_matches('/')));
                }
                u.query_pairs_mut().append_pair("query", &query);
                u.to_string()
            })
            .map_err(|e| format!("not a URL: {e}"));
        Self { client, query_url, query, limits, timeout }
    }
}

#[async_trait]
impl Probe for PromqlProbe {
    async fn probe(&self) -> ProbeResult {
        let url = match &self.query_url {
            Ok(u) => u,
            Err(e) => return ProbeResult::failed(e.clone()),
        };
        // Prometheus answers a bad query with 400 and a JSON error: read it either way.
        let body = match self.client.get(url).timeout(self.timeout).send().await {
            Ok(resp)
                if resp.status().is_success() || resp.status().as_u16() == 400 || resp.status().as_u16() == 422 =>
            {
                read_body(resp, ANSWER_LIMIT).await
            }
            Ok(resp) => Err(format!("status {}", resp.status().as_u16())),
            Err(e) => Err(super::http::describe(&e)),
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => return ProbeResult::failed(format!("query `{}`: {e}", self.query)),
        };
        match single_value(&body) {
            Ok(v) => ProbeResult::of_reading(self.limits.judge(&format!("`{}`", self.query), v)),
            Err(e) => ProbeResult::failed(format!("query `{}`: {e}", self.query)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_url_keeps_the_servers_path_and_encodes_the_query() {
        let c = reqwest::Client::new();
        let l = ValueLimits { down_above: Some(1.0), ..ValueLimits::default() };
        let q = "sum(rate(x{code=~\"5..\"}[1m]))";
        let p = PromqlProbe::new(c.clone(), "http://p:9090", q.into(), l, Duration::from_secs(1));
        let u = reqwest::Url::parse(p.query_url.as_ref().unwrap()).unwrap();
        assert_eq!(u.path(), "/api/v1/query");
        assert_eq!(u.query_pairs().next().unwrap().1, q);
        let p = PromqlProbe::new(c.clone(), "http://p:9090/prom", q.into(), l, Duration::from_secs(1));
        assert!(p.query_url.unwrap().starts_with("http://p:9090/prom/api/v1/query?query="));
        let p = PromqlProbe::new(c, "http://p:9090/prom/", q.into(), l, Duration::from_secs(1));
        assert!(p.query_url.unwrap().starts_with("http://p:9090/prom/api/v1/query?query="));
    }
}
