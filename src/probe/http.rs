//! App-layer probe: an HTTP GET with expected status and optional body match.

use std::time::Duration;

use async_trait::async_trait;

use super::{Probe, ProbeResult};

/// GETs a URL and checks the status and, optionally, that the body contains a text.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    url: String,
    /// `url`, parsed once rather than on every probe; the parse error when it is not a URL.
    parsed: Result<reqwest::Url, String>,
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
        let parsed = reqwest::Url::parse(&url).map_err(|e| e.to_string());
        Self { client, url, parsed, expect_status, body_contains, timeout }
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn probe(&self) -> ProbeResult {
        let url = match &self.parsed {
            Ok(u) => u.clone(),
            Err(e) => return ProbeResult::failed(format!("GET {}: not a URL: {e}", self.url)),
        };
        let resp = match self.client.get(url).timeout(self.timeout).send().await {
            Ok(r) => r,
            Err(e) => return ProbeResult::failed(format!("GET {}: {}", self.url, describe(&e))),
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

/// What went wrong, with its innermost cause (the OS error of a failed connect, e.g. `Cannot
/// assign requested address (os error 99)`), so that the reason of a failure can be told from
/// the observation. The innermost cause never holds the URL, hence never its credentials.
fn describe(e: &reqwest::Error) -> String {
    let what = match (e.is_timeout(), e.is_connect()) {
        (true, _) => "timed out",
        (false, true) => "connection failed",
        (false, false) => "request failed",
    };
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    if std::ptr::addr_eq(inner, e as &dyn std::error::Error) { what.to_string() } else { format!("{what}: {inner}") }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::HttpProbe;
    use crate::probe::Probe as _;

    fn probe_of(url: String) -> HttpProbe {
        let client = crate::probe::http_client().unwrap();
        HttpProbe::new(client, url, 200, Some("ok".into()), Duration::from_secs(2))
    }

    /// Accepts one connection, answers `200 ok` without closing first, and returns the request.
    async fn answer_once(listener: &TcpListener) -> String {
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        let (mut conn, _) = accepted.expect("no new connection for this probe").unwrap();
        let mut buf = vec![0u8; 4096];
        let mut request = String::new();
        while !request.contains("\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the probe closed before it sent a whole request: {request:?}");
            request.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n").await.unwrap();
        // Wait for the probe to close its side, as a server honouring `Connection: close` would.
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        request
    }

    #[tokio::test]
    async fn every_probe_opens_its_own_connection_and_asks_the_target_to_close_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probe = probe_of(format!("http://{}/health", listener.local_addr().unwrap()));
        for _ in 0..2 {
            let (result, request) = tokio::join!(probe.probe(), answer_once(&listener));
            assert!(result.ok, "{result:?}");
            assert!(request.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{request}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_os_error() {
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let result = probe_of(format!("http://127.0.0.1:{port}/health")).probe().await;
        let error = result.error.unwrap_or_default();
        assert!(error.contains("connection failed: Connection refused (os error 111)"), "{error}");
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_fails_every_probe_with_the_reason() {
        let result = probe_of("http//no-colon/health".into()).probe().await;
        let error = result.error.unwrap_or_default();
        assert!(error.starts_with("GET http//no-colon/health: not a URL: "), "{error}");
    }
}
