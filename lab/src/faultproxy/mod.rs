//! User-space TCP fault-injection proxy for lab tests and chaos scenarios.
//!
//! `tc netem` (kernel traffic control) is not available where this project's
//! tests and chaos scenarios run, so network faults are injected in user
//! space instead: a [`FaultProxy`] listens on a loopback address and forwards
//! every accepted TCP connection to one upstream (HTTP app, PostgreSQL,
//! provider API). The orchestrator is pointed at the proxy instead of at the
//! target, and the test flips [`Faults`] at run time while connections are
//! live.
//!
//! # Model
//!
//! * The fault state lives in a [`tokio::sync::watch`] channel. The accept
//!   loop and every connection task hold a receiver, so [`FaultProxy::set`]
//!   takes effect at once for new connections *and* for data already flowing.
//! * Each connection runs in its own task with two directions (client →
//!   upstream, "up"; upstream → client, "down"). Each direction is a small
//!   bounded delay line: a reader reads chunks of at most [`CHUNK_SIZE`]
//!   bytes, stamps each with its due time (`now + latency + jitter`) and
//!   queues it in a channel of [`PIPELINE_DEPTH`] chunks; a writer waits for
//!   the due time, then writes, honouring the bandwidth limit. Latency
//!   therefore delays data without dividing throughput by the latency, and
//!   memory stays bounded: at most `PIPELINE_DEPTH + 2` chunks per direction
//!   (96 KiB), never more, whatever the peers do.
//! * Every wait (connect, read, write, sleep, pause) is raced against the
//!   proxy's [`CancellationToken`], so [`FaultProxy::stop`] closes everything
//!   promptly.
//!
//! # Fault semantics
//!
//! | fault | new connections | existing connections |
//! | --- | --- | --- |
//! | `latency`/`jitter` | upstream connect delayed once by `latency + U(0..=jitter)` | each chunk read *after* the change is delayed by `latency + U(0..=jitter)` (per direction); chunks already in flight keep their due time |
//! | `drop_rate` | each connection is blackholed with this probability (see below) | not affected |
//! | `blackhole` | blackholed (see below) | forwarding pauses in both directions: nothing is read or written, so the kernel buffers fill and the peers see back-pressure, exactly like a partition. When `blackhole` is cleared, forwarding **resumes** with no data lost (like a healed partition where TCP retransmits). A peer that closes while paused is noticed only after resumption. |
//! | `reset` | accepted, then closed with an RST (`SO_LINGER` 0): the client's `connect()` succeeds and its next read/write fails with "connection reset" | both sockets (client and upstream) are closed with an RST |
//! | `refuse` | the listening socket itself is closed, so `connect()` fails with `ECONNREFUSED`, like a port with nothing listening. It is re-bound on the same address when `refuse` is cleared. Connections that the kernel had already queued are reset. | not affected (combine with `reset` to simulate a crashed process) |
//! | `bandwidth_bytes_per_sec` | — | each direction of each connection is throttled to this rate from the next write on; `Some(0)` pauses forwarding like `blackhole` |
//!
//! A *blackholed* connection is accepted but never connected upstream:
//! whatever the client sends is read and discarded, nothing is sent back. It
//! is closed normally (FIN) when the client closes it, after
//! [`BLACKHOLE_HOLD`], or on [`FaultProxy::stop`]; it is reset if the `reset`
//! fault is switched on. It is *not* revived when the fault is cleared (a new
//! connection is needed), which models a lost SYN / lost request for
//! request/response probes.
//!
//! `reset` differs from `refuse` in what the client observes: with `reset`
//! the TCP handshake completes and the connection then dies ("connection
//! reset by peer"), with `refuse` the handshake itself fails ("connection
//! refused"). Orchestrator probes classify the two differently, so both are
//! kept.
//!
//! An I/O error on either side of a forwarded connection (e.g. the upstream
//! resets it) is propagated to the other side as an RST; a clean EOF is
//! propagated as a half-close (FIN) after the queued data has been written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use connection::{ConnCtx, accept_loop};

mod connection;

/// Largest chunk read from one socket in one go (the per-read buffer size).
pub const CHUNK_SIZE: usize = 16 * 1024;
/// Chunks queued between the reader and the writer of one direction.
pub const PIPELINE_DEPTH: usize = 4;
/// How long a blackholed connection is held open at most.
pub const BLACKHOLE_HOLD: Duration = Duration::from_secs(60);
/// Upper bound on connecting to the upstream.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`FaultProxy::stop`] waits for tasks to wind down.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// Pause between retries when accepting or re-binding fails.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// A throttled writer writes at most `rate / THROTTLE_SLICES_PER_SEC` bytes
/// per write, so the rate is smooth and a rate change applies within ~50 ms.
const THROTTLE_SLICES_PER_SEC: u64 = 20;

/// The faults applied by a [`FaultProxy`]; the default is "no faults".
///
/// Several faults may be combined. See the module documentation for their
/// exact effect on new and on existing connections. With serde, missing
/// fields take their default, so `{"blackhole": true}` is a valid value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// One-way delay added to each forwarded chunk (both directions) and,
    /// once, to connection setup.
    pub latency: Duration,
    /// Uniformly random extra delay in `0..=jitter`, drawn per chunk and per
    /// connection setup.
    pub jitter: Duration,
    /// Probability (0.0–1.0; values outside are clamped, NaN counts as 0)
    /// that a new connection is blackholed.
    pub drop_rate: f64,
    /// Network partition: new connections are blackholed, existing ones stop
    /// forwarding until it is cleared, then resume.
    pub blackhole: bool,
    /// New connections are accepted then reset; existing ones are reset.
    pub reset: bool,
    /// The listening socket is closed: new connections are refused by the
    /// kernel. Existing connections are not affected.
    pub refuse: bool,
    /// Throttle each direction of each connection to this many bytes per
    /// second; `Some(0)` pauses forwarding.
    pub bandwidth_bytes_per_sec: Option<u64>,
}

/// A snapshot of a proxy's counters, see [`FaultProxy::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStats {
    /// Connections accepted from clients (including blackholed and reset
    /// ones; refused connections never reach the proxy).
    pub accepted: u64,
    /// New connections blackholed by `blackhole` or `drop_rate`.
    pub blackholed: u64,
    /// Connections (new or existing) closed with an RST by `reset`, or
    /// accepted while `refuse` was being switched on.
    pub reset: u64,
    /// Connections reset because the upstream could not be reached.
    pub upstream_failures: u64,
    /// Connections currently open (being forwarded, held or closing).
    pub active: u64,
    /// Bytes written to the upstream (client → upstream).
    pub bytes_up: u64,
    /// Bytes written to clients (upstream → client).
    pub bytes_down: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    accepted: AtomicU64,
    blackholed: AtomicU64,
    reset: AtomicU64,
    upstream_failures: AtomicU64,
    active: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            blackholed: self.blackholed.load(Ordering::Relaxed),
            reset: self.reset.load(Ordering::Relaxed),
            upstream_failures: self.upstream_failures.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A running TCP proxy that forwards to one upstream and injects [`Faults`].
///
/// Dropping it without calling [`FaultProxy::stop`] also cancels all its
/// tasks, but does not wait for them.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    accept_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("faults", &*self.faults.borrow())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Binds `listen` (port 0 picks a free port, see [`FaultProxy::addr`])
    /// and starts forwarding every accepted connection to `upstream`, with
    /// no faults.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await.with_context(|| format!("fault proxy: binding {listen}"))?;
        let addr = listener.local_addr().context("fault proxy: reading the bound address")?;
        let (faults, faults_rx) = watch::channel(Faults::default());
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ctx = ConnCtx { upstream, counters: Arc::clone(&counters), faults: faults_rx, cancel: cancel.clone() };
        let accept_task = tokio::spawn(accept_loop(listener, addr, ctx, tracker.clone()));
        info!(proxy = %addr, %upstream, "fault proxy started");
        Ok(FaultProxy { addr, upstream, faults, counters, cancel, tracker, accept_task: Some(accept_task) })
    }

    /// The address the proxy listens on (with the actual port when started
    /// with port 0). Clients connect here instead of to the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Replaces the fault state. Takes effect immediately for new
    /// connections and for data flowing on existing ones (closing the
    /// listener for `refuse` happens on the proxy's task, within a
    /// scheduling tick).
    pub fn set(&self, faults: Faults) {
        info!(proxy = %self.addr, ?faults, "faults set");
        self.faults.send_replace(faults);
    }

    /// Changes the fault state in place, e.g.
    /// `proxy.update(|f| f.blackhole = true)` keeps the other faults.
    pub fn update(&self, change: impl FnOnce(&mut Faults)) {
        self.faults.send_modify(change);
        info!(proxy = %self.addr, faults = ?*self.faults.borrow(), "faults updated");
    }

    /// The current fault state.
    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    /// Removes all faults (same as `set(Faults::default())`).
    pub fn clear(&self) {
        self.set(Faults::default());
    }

    /// A snapshot of the proxy's counters.
    pub fn stats(&self) -> ProxyStats {
        self.counters.snapshot()
    }

    /// Stops accepting (the port is closed when this returns), closes all
    /// connections and waits for their tasks, for at most about one second.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let deadline = Instant::now() + STOP_GRACE;
        if let Some(task) = self.accept_task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                warn!(proxy = %self.addr, "fault proxy: accept loop did not stop in time; aborting");
                abort.abort();
            }
        }
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait()).await.is_err() {
            warn!(
                proxy = %self.addr,
                remaining = self.tracker.len(),
                "fault proxy: connection tasks still closing after stop"
            );
        }
        info!(proxy = %self.addr, stats = ?self.stats(), "fault proxy stopped");
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests;
