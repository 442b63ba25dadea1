//! A region's stand-in application for the lab and the tests: an HTTP server
//! whose health can be broken, slowed, killed and restored on command.
//!
//! `GET /health` answers `200 ok` when healthy, `503` when broken, and waits
//! first when slowed; when killed the listener is closed, so connections are
//! refused. `GET /` names the region (what a client reaching it through DNS sees).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

/// How the stub behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppMode {
    /// 200 ok.
    Healthy,
    /// 503.
    Broken,
    /// 200 ok after a delay.
    Slow,
}

struct Shared {
    region: String,
    mode: AtomicU8,
    delay_ms: AtomicU64,
    served: AtomicU64,
}

/// One region's app.
pub struct AppStub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AppStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStub").field("addr", &self.addr).field("region", &self.shared.region).finish()
    }
}

impl AppStub {
    /// Starts a healthy stub on `addr` (port 0 picks one).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(region: &str, addr: SocketAddr) -> anyhow::Result<AppStub> {
        let shared = Arc::new(Shared {
            region: region.to_string(),
            mode: AtomicU8::new(0),
            delay_ms: AtomicU64::new(0),
            served: AtomicU64::new(0),
        });
        let listener = bind(addr).with_context(|| format!("binding the {region} app on {addr}"))?;
        let addr = listener.local_addr()?;
        let server = Some(serve(listener, shared.clone()));
        Ok(AppStub { addr, shared, server })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its health URL.
    pub fn health_url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// How many `GET /health` it has answered so far.
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// Answers 503 from now on.
    pub fn break_health(&self) {
        self.shared.mode.store(1, Ordering::SeqCst);
    }

    /// Answers after `delay` from now on.
    pub fn slow(&self, delay: Duration) {
        self.shared.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
        self.shared.mode.store(2, Ordering::SeqCst);
    }

    /// Healthy again (and listening, if it was killed).
    ///
    /// # Errors
    /// When a killed stub cannot bind its address again.
    pub async fn restore(&mut self) -> anyhow::Result<()> {
        self.shared.mode.store(0, Ordering::SeqCst);
        if self.server.is_none() {
            let listener = bind(self.addr).with_context(|| format!("re-binding {}", self.addr))?;
            self.server = Some(serve(listener, self.shared.clone()));
        }
        Ok(())
    }

    /// Closes the listener: connections are refused until [`Self::restore`].
    pub async fn kill(&mut self) {
        if let Some(h) = self.server.take() {
            h.abort();
            let _ = h.await;
        }
    }

    /// The current mode, or None when killed.
    pub fn mode(&self) -> Option<AppMode> {
        self.server.as_ref()?;
        Some(mode_of(&self.shared))
    }
}

impl Drop for AppStub {
    fn drop(&mut self) {
        if let Some(h) = self.server.take() {
            h.abort();
        }
    }
}

fn mode_of(s: &Shared) -> AppMode {
    match s.mode.load(Ordering::SeqCst) {
        1 => AppMode::Broken,
        2 => AppMode::Slow,
        _ => AppMode::Healthy,
    }
}

/// A listener with the longest accept queue the kernel allows by default (`somaxconn`, 4 096),
/// not tokio's 1 024: thousands of probes a second must not lose SYNs to a short queue.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    let router = Router::new().route("/health", get(health)).route("/", get(index)).with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

async fn health(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    s.served.fetch_add(1, Ordering::Relaxed);
    match mode_of(&s) {
        AppMode::Broken => (StatusCode::SERVICE_UNAVAILABLE, format!("{} broken\n", s.region)),
        AppMode::Slow => {
            tokio::time::sleep(Duration::from_millis(s.delay_ms.load(Ordering::SeqCst))).await;
            (StatusCode::OK, "ok\n".into())
        }
        AppMode::Healthy => (StatusCode::OK, "ok\n".into()),
    }
}

async fn index(State(s): State<Arc<Shared>>) -> String {
    format!("region {}\n", s.region)
}
