//! A small HTTP reverse proxy that can answer errors instead of forwarding:
//! the provider-API side of the chaos scenarios ("PowerDNS API returns 500s").
//!
//! The TCP-level [`FaultProxy`](crate::faultproxy::FaultProxy) covers timeouts,
//! resets and refusals; an HTTP 500 needs someone who speaks HTTP. Put this in
//! front of the real API and, when needed, a `FaultProxy` in front of this.
//! It forwards method, path, query, body and the `X-API-Key` / `Content-Type`
//! headers, and counts the requests it failed and forwarded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    failing: AtomicBool,
    failed: AtomicU64,
    forwarded: AtomicU64,
}

/// The running proxy; stops when dropped.
pub struct HttpFault {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for HttpFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFault").field("addr", &self.addr).field("upstream", &self.shared.upstream).finish()
    }
}

impl HttpFault {
    /// Listens on `listen` (port 0 picks one) and forwards to `upstream` (`http://host:port`).
    ///
    /// # Errors
    /// When the address cannot be bound or the HTTP client cannot be built.
    pub async fn start(listen: SocketAddr, upstream: &str) -> anyhow::Result<HttpFault> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder().build().context("building the proxy's HTTP client")?,
            failing: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        let router = Router::new().fallback(forward).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(HttpFault { addr, shared, server })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, answer every request with 500 (true) or forward it (false).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Requests answered with 500 so far.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Requests forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for HttpFault {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(State(s): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if s.failing.load(Ordering::SeqCst) {
        s.failed.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure\n").into_response();
    }
    s.forwarded.fetch_add(1, Ordering::SeqCst);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = s.client.request(method, format!("{}{path}", s.upstream)).body(body);
    for name in ["x-api-key", "content-type", "accept"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let ctype = r.headers().get("content-type").cloned();
            let body = r.bytes().await.unwrap_or_default();
            let mut resp = (status, body).into_response();
            if let Some(c) = ctype {
                resp.headers_mut().insert("content-type", c);
            }
            resp
        }
        Err(_) => (StatusCode::BAD_GATEWAY, "upstream unreachable\n").into_response(),
    }
}
