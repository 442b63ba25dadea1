//! App-layer probe: an HTTP GET with expected status and optional body match.

use std::time::Duration;

use async_trait::async_trait;

use super::{Probe, ProbeResult};

/// GETs a URL and checks the status and, optionally, that the body contains a text.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    url: String,
    expect_status: u16,
    body_contains: Option<String>,
    timeout: Duration,
}

impl HttpProbe {
    /// A probe of `url`.
    pub fn new(
        client: reqwest::Client,
        url: String,
        expect_status: u16,
        body_contains: Option<String>,
        timeout: Duration,
    ) -> Self {
        Self { client, url, expect_status, body_contains, timeout }
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn probe(&self) -> ProbeResult {
        let resp = match self.client.get(&self.url).timeout(self.timeout).send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "connection failed".to_string()
                } else {
                    "request failed".to_string()
                };
                return ProbeResult::failed(format!("GET {}: {what}", self.url));
            }
        };
        let status = resp.status().as_u16();
        if status != self.expect_status {
            return ProbeResult::failed(format!("GET {}: status {status}, expected {}", self.url, self.expect_status));
        }
        if let Some(needle) = &self.body_contains {
            match resp.text().await {
                Ok(body) if body.contains(needle.as_str()) => {}
                Ok(_) => return ProbeResult::failed(format!("GET {}: body does not contain {needle:?}", self.url)),
                Err(_) => return ProbeResult::failed(format!("GET {}: body could not be read", self.url)),
            }
        }
        ProbeResult::ok(Some(format!("status {status}")))
    }
}
