//! App-layer probe: an HTTP GET with expected status and optional body match.
//!
//! A plain `http://` URL is fetched over a connection of the probe's own (hyper's HTTP/1.1
//! client on one new socket, see [`super::tcp::connect`]): a new connection per probe, reset
//! as soon as the answer is in (so neither side keeps it in `TIME_WAIT`), no connection pool,
//! no resolver for an IP literal. `https://` URLs, and URLs with credentials, go through
//! reqwest (TLS, basic auth), also without connection reuse and asking `Connection: close`.

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{HOST, HeaderValue, USER_AGENT};

use super::{Probe, ProbeResult};

/// The `User-Agent` of every probe.
pub const PROBE_USER_AGENT: &str = concat!("failover-orchestrator/", env!("CARGO_PKG_VERSION"));

/// A health body longer than this fails the body check.
const BODY_LIMIT: usize = 1 << 20;

/// GETs a URL and checks the status and, optionally, that the body contains a text.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    url: String,
    /// How `url` is fetched, decided once rather than on every probe.
    target: Target,
    expect_status: u16,
    body_contains: Option<String>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Target {
    /// `http://` without credentials: our own connection.
    Plain {
        /// Host to connect to (an IPv6 literal without brackets) and port.
        host: String,
        port: u16,
        /// The `Host` header: the URL's authority.
        authority: HeaderValue,
        /// Path and query.
        path: String,
    },
    /// Anything else reqwest fetches.
    Reqwest(reqwest::Url),
    /// Not a URL: every probe fails with the reason.
    Invalid(String),
}

impl Target {
    fn of(url: &str) -> Self {
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Target::Invalid(e.to_string()),
        };
        let plain = parsed.scheme() == "http" && parsed.username().is_empty() && parsed.password().is_none();
        let Some(host) = parsed.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()) else {
            return Target::Invalid("no host".into());
        };
        let authority = parsed.host_str().map(|h| match parsed.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        });
        match (plain, authority.and_then(|a| HeaderValue::from_str(&a).ok()), parsed.port_or_known_default()) {
            (true, Some(authority), Some(port)) => {
                let path = match parsed.query() {
                    Some(q) => format!("{}?{q}", parsed.path()),
                    None => parsed.path().to_string(),
                };
                Target::Plain { host, port, authority, path }
            }
            _ => Target::Reqwest(parsed),
        }
    }
}

/// What the target answered: the status and, when asked for, the body.
type Answer = (u16, Option<Result<String, String>>);

impl HttpProbe {
    /// A probe of `url`.
    pub fn new(
        client: reqwest::Client,
        url: String,
        expect_status: u16,
        body_contains: Option<String>,
        timeout: Duration,
    ) -> Self {
        let target = Target::of(&url);
        Self { client, url, target, expect_status, body_contains, timeout }
    }

    /// Whether the body is worth reading for this status.
    fn wants_body(&self, status: u16) -> bool {
        status == self.expect_status && self.body_contains.is_some()
    }

    async fn get_plain(&self, host: &str, port: u16, authority: &HeaderValue, path: &str) -> Result<Answer, String> {
        let stream = super::tcp::connect((host, port)).await.map_err(|e| format!("connection failed: {e}"))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
            .await
            .map_err(|e| format!("request failed: {}", innermost(&e)))?;
        let request = hyper::Request::get(path)
            .header(HOST, authority)
            .header(USER_AGENT, PROBE_USER_AGENT)
            .body(Empty::new())
            .map_err(|e| format!("request failed: {e}"))?;
        let exchange = async move {
            let resp = sender.send_request(request).await.map_err(|e| format!("request failed: {}", innermost(&e)))?;
            let status = resp.status().as_u16();
            let body = if self.wants_body(status) {
                Some(match Limited::new(resp.into_body(), BODY_LIMIT).collect().await {
                    Ok(b) => Ok(String::from_utf8_lossy(&b.to_bytes()).into_owned()),
                    Err(e) => Err(e.to_string()),
                })
            } else {
                None
            };
            Ok((status, body))
        };
        // Done as soon as the answer is in: dropping the connection then resets it from
        // ESTABLISHED (see `tcp::connect`), before hyper or the target could start an orderly
        // close that would leave one side in TIME_WAIT. Should the target close first, the
        // answer may still be buffered: wait for it.
        tokio::pin!(exchange, conn);
        tokio::select! {
            biased;
            answer = &mut exchange => answer,
            _ = &mut conn => exchange.await,
        }
    }

    async fn get_reqwest(&self, url: &reqwest::Url) -> Result<Answer, String> {
        let resp = self.client.get(url.clone()).timeout(self.timeout).send().await.map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        let body = if self.wants_body(status) { Some(resp.text().await.map_err(|e| describe(&e))) } else { None };
        Ok((status, body))
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn probe(&self) -> ProbeResult {
        let answer = match &self.target {
            Target::Plain { host, port, authority, path } => {
                match tokio::time::timeout(self.timeout, self.get_plain(host, *port, authority, path)).await {
                    Ok(a) => a,
                    Err(_) => Err("timed out".into()),
                }
            }
            Target::Reqwest(url) => self.get_reqwest(url).await,
            Target::Invalid(e) => Err(format!("not a URL: {e}")),
        };
        let (status, body) = match answer {
            Ok(a) => a,
            Err(what) => return ProbeResult::failed(format!("GET {}: {what}", self.url)),
        };
        if status != self.expect_status {
            return ProbeResult::failed(format!("GET {}: status {status}, expected {}", self.url, self.expect_status));
        }
        match (&self.body_contains, body) {
            (Some(needle), Some(Ok(body))) if !body.contains(needle.as_str()) => {
                ProbeResult::failed(format!("GET {}: body does not contain {needle:?}", self.url))
            }
            (Some(_), Some(Err(e))) => ProbeResult::failed(format!("GET {}: body could not be read: {e}", self.url)),
            _ => ProbeResult::ok(Some(format!("status {status}"))),
        }
    }
}

/// The innermost cause of an error: the OS error of a failed connect (`Connection refused (os
/// error 111)`), hyper's `connection closed before message completed` … It never holds the URL,
/// hence never its credentials.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// What went wrong in reqwest, with its innermost cause, so that the reason of a failure can be
/// told from the observation.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let what = match (e.is_timeout(), e.is_connect()) {
        (true, _) => "timed out",
        (false, true) => "connection failed",
        (false, false) => "request failed",
    };
    if std::error::Error::source(e).is_some() { format!("{what}: {}", innermost(e)) } else { what.to_string() }
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

    /// Accepts one connection, answers `200 ok` keeping it open (HTTP/1.1 keep-alive) until the
    /// probe closes it, and returns the request.
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
        // Keep the connection open until the probe closes it, as a keep-alive server does.
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        request
    }

    #[tokio::test]
    async fn every_probe_opens_its_own_connection_and_names_the_host_and_itself() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probe = probe_of(format!("http://{}/health", listener.local_addr().unwrap()));
        for _ in 0..2 {
            let (result, request) = tokio::join!(probe.probe(), answer_once(&listener));
            assert!(result.ok, "{result:?}");
            let request = request.to_ascii_lowercase();
            assert!(request.starts_with("get /health http/1.1\r\n"), "{request}");
            assert!(request.contains(&format!("\r\nhost: {}\r\n", listener.local_addr().unwrap())), "{request}");
            assert!(request.contains("\r\nuser-agent: failover-orchestrator/"), "{request}");
        }
    }

    /// Sockets in `TIME_WAIT` with `port` at either end (`/proc/net/tcp`).
    fn time_wait_on(port: u16) -> usize {
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let port_of = |a: &str| a.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.get(3) == Some(&"06"))
            .filter(|f| port_of(f[1]) == Some(port) || port_of(f[2]) == Some(port))
            .count()
    }

    #[tokio::test]
    async fn a_probe_leaves_no_connection_in_time_wait_on_either_side() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = probe_of(format!("http://127.0.0.1:{port}/health"));
        for _ in 0..3 {
            let (result, _) = tokio::join!(probe.probe(), answer_once(&listener));
            assert!(result.ok, "{result:?}");
        }
        assert_eq!(time_wait_on(port), 0, "the probe's connections must close with a reset");
    }

    #[tokio::test]
    async fn a_wrong_status_or_body_fails_with_what_was_wrong() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health?deep=1", listener.local_addr().unwrap());
        let probe = probe_of(url.clone());
        let serve = |answer: &'static [u8]| {
            let listener = &listener;
            async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap();
                conn.write_all(answer).await.unwrap();
                String::from_utf8_lossy(&buf[..n]).into_owned()
            }
        };
        let (result, request) =
            tokio::join!(probe.probe(), serve(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"));
        assert!(request.starts_with("GET /health?deep=1 HTTP/1.1\r\n"), "{request}");
        assert_eq!(result.error.as_deref(), Some(format!("GET {url}: status 503, expected 200").as_str()));
        let (result, _) = tokio::join!(probe.probe(), serve(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nbusy\n"));
        assert_eq!(result.error.as_deref(), Some(format!("GET {url}: body does not contain \"ok\"").as_str()));
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
