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

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

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
struct Counters {
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

fn bump(counter: &AtomicU64) {
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

/// What every connection task needs.
#[derive(Clone)]
struct ConnCtx {
    upstream: SocketAddr,
    counters: Arc<Counters>,
    faults: watch::Receiver<Faults>,
    cancel: CancellationToken,
}

/// Decrements the active-connection gauge when a connection task ends.
struct ActiveGuard(Arc<Counters>);

impl ActiveGuard {
    fn new(counters: &Arc<Counters>) -> Self {
        bump(&counters.active);
        ActiveGuard(Arc::clone(counters))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until cancelled; closes and re-binds the listener as
/// `refuse` is switched on and off.
async fn accept_loop(listener: TcpListener, addr: SocketAddr, ctx: ConnCtx, tracker: TaskTracker) {
    let mut listener = Some(listener);
    let mut faults = ctx.faults.clone();
    loop {
        let refuse = faults.borrow_and_update().refuse;
        if refuse {
            if listener.take().is_some() {
                info!(proxy = %addr, "refuse fault: listener closed");
            }
            tokio::select! {
                () = ctx.cancel.cancelled() => return,
                changed = faults.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(bound) => {
                    info!(proxy = %addr, "listener re-bound");
                    listener = Some(bound);
                }
                Err(error) => {
                    warn!(proxy = %addr, %error, "fault proxy: re-binding failed; retrying");
                    if sleep_or_cancel(RETRY_PAUSE, &ctx.cancel).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(active) = listener.as_ref() else {
            continue;
        };
        tokio::select! {
            () = ctx.cancel.cancelled() => return,
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            accepted = active.accept() => match accepted {
                Ok((stream, peer)) => {
                    bump(&ctx.counters.accepted);
                    tracker.spawn(handle_conn(stream, peer, ctx.clone()));
                }
                Err(error) => {
                    warn!(proxy = %addr, %error, "fault proxy: accept failed");
                    if sleep_or_cancel(RETRY_PAUSE, &ctx.cancel).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Sleeps, or returns `Err(())` early when cancelled.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> Result<(), ()> {
    tokio::select! {
        () = cancel.cancelled() => Err(()),
        () = tokio::time::sleep(duration) => Ok(()),
    }
}

/// Closes the socket with an RST when it is dropped.
fn arm_reset(stream: &TcpStream) {
    if let Err(error) = stream.set_zero_linger() {
        debug!(%error, "fault proxy: setting SO_LINGER 0 failed");
    }
}

/// Whether a new connection is blackholed under `drop_rate`.
fn roll_drop(drop_rate: f64) -> bool {
    if drop_rate >= 1.0 {
        return true;
    }
    // NaN and values <= 0 never drop.
    drop_rate > 0.0 && rand::rng().random::<f64>() < drop_rate
}

/// `latency + U(0..=jitter)`.
fn one_way_delay(faults: &Faults) -> Duration {
    if faults.jitter.is_zero() {
        return faults.latency;
    }
    let max = u64::try_from(faults.jitter.as_nanos()).unwrap_or(u64::MAX);
    let extra = rand::rng().random_range(0..=max);
    faults.latency.saturating_add(Duration::from_nanos(extra))
}

/// Whether data may flow at all under `faults`.
fn flowing(faults: &Faults) -> bool {
    !faults.blackhole && faults.bandwidth_bytes_per_sec != Some(0)
}

/// Waits until data may flow. If the proxy is gone, waits forever (the
/// caller is always raced against the cancel token).
async fn wait_flowing(faults: &mut watch::Receiver<Faults>) {
    if faults.wait_for(flowing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves when the `reset` fault is on.
async fn wait_reset(faults: &mut watch::Receiver<Faults>) {
    if faults.wait_for(|f| f.reset).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn handle_conn(client: TcpStream, peer: SocketAddr, ctx: ConnCtx) {
    let _active = ActiveGuard::new(&ctx.counters);
    let faults = ctx.faults.borrow().clone();
    if faults.reset || faults.refuse {
        debug!(%peer, "fault proxy: resetting new connection");
        bump(&ctx.counters.reset);
        arm_reset(&client);
        return;
    }
    if faults.blackhole || roll_drop(faults.drop_rate) {
        debug!(%peer, "fault proxy: blackholing new connection");
        bump(&ctx.counters.blackholed);
        hold_blackholed(client, ctx).await;
        return;
    }
    forward(client, peer, ctx).await;
}

/// Reads and discards from a blackholed client until it closes, the hold
/// time passes, the proxy stops, or `reset` is switched on.
async fn hold_blackholed(mut client: TcpStream, ctx: ConnCtx) {
    let mut faults = ctx.faults.clone();
    let mut sink = vec![0u8; CHUNK_SIZE];
    let hold = tokio::time::sleep(BLACKHOLE_HOLD);
    tokio::pin!(hold);
    loop {
        tokio::select! {
            () = ctx.cancel.cancelled() => return,
            () = &mut hold => return,
            () = wait_reset(&mut faults) => {
                bump(&ctx.counters.reset);
                arm_reset(&client);
                return;
            }
            read = client.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// How a forwarded connection ended.
enum Outcome {
    /// Both directions reached EOF and were flushed.
    Done,
    /// The proxy is stopping.
    Cancelled,
    /// The `reset` fault was switched on.
    Reset,
    /// The upstream could not be reached.
    UpstreamUnreachable,
    /// An I/O error on either side.
    Failed(io::Error),
}

async fn forward(mut client: TcpStream, peer: SocketAddr, ctx: ConnCtx) {
    let mut reset_watch = ctx.faults.clone();
    let mut upstream_slot: Option<TcpStream> = None;
    let outcome = {
        let body = connect_and_pump(&mut client, &mut upstream_slot, &ctx);
        tokio::select! {
            () = ctx.cancel.cancelled() => Outcome::Cancelled,
            () = wait_reset(&mut reset_watch) => Outcome::Reset,
            outcome = body => outcome,
        }
    };
    let abort = match outcome {
        Outcome::Done => false,
        Outcome::Cancelled => false,
        Outcome::Reset => {
            bump(&ctx.counters.reset);
            true
        }
        Outcome::UpstreamUnreachable => {
            bump(&ctx.counters.upstream_failures);
            true
        }
        Outcome::Failed(error) => {
            debug!(%peer, %error, "fault proxy: connection failed; resetting both sides");
            true
        }
    };
    if abort {
        arm_reset(&client);
        if let Some(upstream) = &upstream_slot {
            arm_reset(upstream);
        }
    }
    debug!(%peer, reset = abort, "fault proxy: connection closed");
}

async fn connect_and_pump(client: &mut TcpStream, upstream_slot: &mut Option<TcpStream>, ctx: &ConnCtx) -> Outcome {
    let mut faults = ctx.faults.clone();
    let setup_delay = one_way_delay(&faults.borrow());
    tokio::time::sleep(setup_delay).await;
    wait_flowing(&mut faults).await;
    let upstream = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(ctx.upstream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            warn!(upstream = %ctx.upstream, %error, "fault proxy: upstream connect failed");
            return Outcome::UpstreamUnreachable;
        }
        Err(_) => {
            warn!(upstream = %ctx.upstream, "fault proxy: upstream connect timed out");
            return Outcome::UpstreamUnreachable;
        }
    };
    // Chunks are written whole; Nagle would only add delay.
    for stream in [&*client, &upstream] {
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "fault proxy: setting TCP_NODELAY failed");
        }
    }
    let upstream = upstream_slot.insert(upstream);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let counters = &ctx.counters;
    let up = pump(client_read, upstream_write, &ctx.faults, &counters.bytes_up);
    let down = pump(upstream_read, client_write, &ctx.faults, &counters.bytes_down);
    match tokio::try_join!(up, down) {
        Ok(((), ())) => Outcome::Done,
        Err(error) => Outcome::Failed(error),
    }
}

/// One queued chunk of a direction's delay line.
struct Chunk {
    data: Vec<u8>,
    due: Instant,
}

/// Forwards one direction until EOF (then half-closes the writer).
async fn pump(
    from: ReadHalf<'_>,
    to: WriteHalf<'_>,
    faults: &watch::Receiver<Faults>,
    counter: &AtomicU64,
) -> io::Result<()> {
    let (tx, rx) = mpsc::channel(PIPELINE_DEPTH);
    tokio::try_join!(read_side(from, tx, faults.clone()), write_side(to, rx, faults.clone(), counter),)
        .map(|((), ())| ())
}

async fn read_side(
    mut from: ReadHalf<'_>,
    tx: mpsc::Sender<Chunk>,
    mut faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    loop {
        wait_flowing(&mut faults).await;
        let mut data = vec![0u8; CHUNK_SIZE];
        let n = from.read(&mut data).await?;
        if n == 0 {
            return Ok(());
        }
        data.truncate(n);
        let due = Instant::now() + one_way_delay(&faults.borrow());
        if tx.send(Chunk { data, due }).await.is_err() {
            // The writer is gone, which only happens when it failed; its
            // error is what gets reported.
            return Ok(());
        }
    }
}

async fn write_side(
    mut to: WriteHalf<'_>,
    mut rx: mpsc::Receiver<Chunk>,
    mut faults: watch::Receiver<Faults>,
    counter: &AtomicU64,
) -> io::Result<()> {
    let mut next_slot = Instant::now();
    while let Some(chunk) = rx.recv().await {
        tokio::time::sleep_until(chunk.due).await;
        let mut rest = chunk.data.as_slice();
        while !rest.is_empty() {
            wait_flowing(&mut faults).await;
            let rate = faults.borrow_and_update().bandwidth_bytes_per_sec;
            let len = match rate {
                Some(rate) => {
                    let slice = (rate / THROTTLE_SLICES_PER_SEC).max(1);
                    usize::try_from(slice).unwrap_or(usize::MAX).min(rest.len())
                }
                None => rest.len(),
            };
            let (now_part, later) = rest.split_at(len);
            to.write_all(now_part).await?;
            counter.fetch_add(len as u64, Ordering::Relaxed);
            rest = later;
            if let Some(rate) = rate {
                let cost = Duration::from_secs_f64(len as f64 / rate.max(1) as f64);
                next_slot = next_slot.max(Instant::now()) + cost;
                tokio::select! {
                    () = tokio::time::sleep_until(next_slot) => {}
                    // A fault change applies at once: restart the budget.
                    _ = faults.changed() => next_slot = Instant::now(),
                }
            }
        }
    }
    to.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const LOCALHOST_ANY_PORT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    /// Hang guard for operations that must complete; not a performance bound.
    const HANG_GUARD: Duration = Duration::from_secs(5);
    const REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: lab\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// Echoes every byte back, half-closing after the client's EOF.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        addr
    }

    /// Answers every `\r\n\r\n`-terminated request with [`RESPONSE`]
    /// (keep-alive).
    async fn http_server() -> SocketAddr {
        let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            if stream.write_all(RESPONSE).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn read_response(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < RESPONSE.len() {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(got)
    }

    async fn round_trip(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
        stream.write_all(REQUEST).await?;
        read_response(stream).await
    }

    async fn start(upstream: SocketAddr) -> FaultProxy {
        FaultProxy::start(LOCALHOST_ANY_PORT, upstream).await.unwrap()
    }

    /// Polls `check` until it holds or the hang guard expires.
    async fn eventually(mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + HANG_GUARD;
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        check()
    }

    /// Sends `payload` and reads back as many bytes through an echo path.
    async fn echo_through(addr: SocketAddr, payload: Vec<u8>) -> Vec<u8> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut r, mut w) = stream.into_split();
        let writer = tokio::spawn(async move {
            w.write_all(&payload).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        back
    }

    fn pattern(len: usize) -> Vec<u8> {
        let mut rng = rand::rng();
        (0..len).map(|_| rng.random::<u8>()).collect()
    }

    #[tokio::test]
    async fn passes_bytes_unchanged_both_ways() {
        let proxy = start(echo_server().await).await;
        let payload = pattern(1024 * 1024);
        let back = tokio::time::timeout(HANG_GUARD * 2, echo_through(proxy.addr(), payload.clone())).await.unwrap();
        assert_eq!(back.len(), payload.len());
        assert!(back == payload, "echoed bytes differ");
        let stats = proxy.stats();
        assert_eq!(stats.bytes_up, payload.len() as u64);
        assert_eq!(stats.bytes_down, payload.len() as u64);
        assert_eq!(stats.accepted, 1);
        assert_eq!(stats.blackholed, 0);
        proxy.stop().await;
    }

    #[tokio::test]
    async fn latency_delays_new_and_existing_connections() {
        let proxy = start(http_server().await).await;
        let mut existing = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

        proxy.set(Faults { latency: Duration::from_millis(200), ..Faults::default() });
        // New connection: setup, request and response are each delayed.
        let started = Instant::now();
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh).await.unwrap(), RESPONSE);
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());

        // Existing connection: the change applies to live traffic, both ways.
        let started = Instant::now();
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);
        assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
        proxy.stop().await;
    }

    #[tokio::test]
    async fn blackhole_hangs_then_clears() {
        let proxy = start(http_server().await).await;
        let mut existing = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

        proxy.update(|f| f.blackhole = true);
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        fresh.write_all(REQUEST).await.unwrap();
        existing.write_all(REQUEST).await.unwrap();
        let (fresh_read, existing_read) = tokio::join!(
            tokio::time::timeout(Duration::from_millis(500), read_response(&mut fresh)),
            tokio::time::timeout(Duration::from_millis(500), read_response(&mut existing)),
        );
        assert!(fresh_read.is_err(), "new connection answered during blackhole");
        assert!(existing_read.is_err(), "existing connection answered during blackhole");
        assert_eq!(proxy.stats().blackholed, 1);

        proxy.clear();
        // The paused connection resumes and delivers the held request.
        let resumed = tokio::time::timeout(HANG_GUARD, read_response(&mut existing)).await;
        assert_eq!(resumed.unwrap().unwrap(), RESPONSE);
        // A new connection works.
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        let answered = tokio::time::timeout(HANG_GUARD, round_trip(&mut after)).await;
        assert_eq!(answered.unwrap().unwrap(), RESPONSE);
        proxy.stop().await;
    }

    /// Opens `n` connections at once, sends a request on each and returns
    /// how many were answered within `wait`.
    async fn answered_of(addr: SocketAddr, n: usize, wait: Duration) -> usize {
        let mut probes = tokio::task::JoinSet::new();
        for _ in 0..n {
            probes.spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.write_all(REQUEST).await.unwrap();
                matches!(tokio::time::timeout(wait, read_response(&mut stream)).await, Ok(Ok(_)))
            });
        }
        let mut answered = 0;
        while let Some(ok) = probes.join_next().await {
            answered += usize::from(ok.unwrap());
        }
        answered
    }

    #[tokio::test]
    async fn drop_rate_blackholes_new_connections() {
        let proxy = start(http_server().await).await;
        proxy.set(Faults { drop_rate: 1.0, ..Faults::default() });
        assert_eq!(answered_of(proxy.addr(), 10, Duration::from_millis(500)).await, 0);
        assert_eq!(proxy.stats().blackholed, 10);

        proxy.set(Faults { drop_rate: 0.3, ..Faults::default() });
        let answered = answered_of(proxy.addr(), 200, Duration::from_secs(1)).await;
        assert!(eventually(|| proxy.stats().accepted == 210).await);
        let dropped = proxy.stats().blackholed - 10;
        assert!((30..=90).contains(&dropped), "{dropped} of 200 dropped at 0.3");
        assert_eq!(answered as u64 + dropped, 200, "client view disagrees with stats");
        proxy.stop().await;
    }

    #[tokio::test]
    async fn reset_kills_new_and_existing_connections() {
        let proxy = start(http_server().await).await;
        let mut existing = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

        proxy.update(|f| f.reset = true);
        let mut buf = [0u8; 16];
        let read =
            tokio::time::timeout(HANG_GUARD, existing.read(&mut buf)).await.expect("existing connection not reset");
        let error = read.expect_err("expected an RST, got data or EOF");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);

        // A new connection completes the handshake, then dies.
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = fresh.write_all(REQUEST).await;
        let read = tokio::time::timeout(HANG_GUARD, fresh.read(&mut buf)).await.expect("new connection not reset");
        assert!(matches!(read, Ok(0) | Err(_)), "got data: {read:?}");
        assert!(eventually(|| proxy.stats().reset == 2).await, "{:?}", proxy.stats());
        proxy.stop().await;
    }

    #[tokio::test]
    async fn bandwidth_limit_throttles() {
        let proxy = start(echo_server().await).await;
        proxy.set(Faults { bandwidth_bytes_per_sec: Some(100 * 1024), ..Faults::default() });
        let payload = pattern(200 * 1024);
        let started = Instant::now();
        let back = tokio::time::timeout(HANG_GUARD * 2, echo_through(proxy.addr(), payload.clone())).await.unwrap();
        let elapsed = started.elapsed();
        assert!(back == payload, "echoed bytes differ");
        assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
        proxy.stop().await;
    }

    #[tokio::test]
    async fn refuse_closes_the_port_until_cleared() {
        let proxy = start(http_server().await).await;
        let addr = proxy.addr();
        let mut existing = TcpStream::connect(addr).await.unwrap();
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

        proxy.update(|f| f.refuse = true);
        let mut refused = false;
        let deadline = Instant::now() + HANG_GUARD;
        while !refused && Instant::now() < deadline {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => refused = true,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        assert!(refused, "connections were not refused");
        // Existing connections are not affected.
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);

        proxy.clear();
        let mut works = false;
        let deadline = Instant::now() + HANG_GUARD;
        while !works && Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(addr).await {
                works = matches!(tokio::time::timeout(HANG_GUARD, round_trip(&mut stream)).await, Ok(Ok(_)));
            }
            if !works {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        assert!(works, "port did not come back after clear()");
        proxy.stop().await;
    }

    #[tokio::test]
    async fn unreachable_upstream_resets_client() {
        let closed = {
            let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
            listener.local_addr().unwrap()
        };
        let proxy = start(closed).await;
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(HANG_GUARD, client.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "got data: {read:?}");
        assert!(eventually(|| proxy.stats().upstream_failures == 1).await);
        proxy.stop().await;
    }

    #[tokio::test]
    async fn stop_closes_connections_and_port() {
        let proxy = start(http_server().await).await;
        let addr = proxy.addr();
        let mut existing = TcpStream::connect(addr).await.unwrap();
        assert_eq!(round_trip(&mut existing).await.unwrap(), RESPONSE);
        let mut held = {
            proxy.set(Faults { blackhole: true, ..Faults::default() });
            TcpStream::connect(addr).await.unwrap()
        };
        assert!(eventually(|| proxy.stats().active == 2).await);

        tokio::time::timeout(HANG_GUARD, proxy.stop()).await.expect("stop() hung");
        let mut buf = [0u8; 16];
        for stream in [&mut existing, &mut held] {
            let read = tokio::time::timeout(HANG_GUARD, stream.read(&mut buf)).await.unwrap();
            assert!(matches!(read, Ok(0) | Err(_)), "got data: {read:?}");
        }
        let after = TcpStream::connect(addr).await;
        assert_eq!(after.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn set_update_clear_round_trip() {
        let proxy = start(echo_server().await).await;
        assert_eq!(proxy.faults(), Faults::default());
        let faults = Faults {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(1),
            drop_rate: 0.5,
            bandwidth_bytes_per_sec: Some(1),
            ..Faults::default()
        };
        proxy.set(faults.clone());
        assert_eq!(proxy.faults(), faults);
        proxy.update(|f| f.blackhole = true);
        assert!(proxy.faults().blackhole);
        assert_eq!(proxy.faults().drop_rate, 0.5);
        proxy.clear();
        assert_eq!(proxy.faults(), Faults::default());
        proxy.stop().await;
    }

    #[test]
    fn delay_and_drop_helpers_stay_in_range() {
        let faults =
            Faults { latency: Duration::from_millis(10), jitter: Duration::from_millis(5), ..Faults::default() };
        for _ in 0..1000 {
            let d = one_way_delay(&faults);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15), "{d:?}");
        }
        assert!(!roll_drop(0.0));
        assert!(!roll_drop(-1.0));
        assert!(!roll_drop(f64::NAN));
        assert!(roll_drop(1.0));
        assert!(roll_drop(2.0));
    }
}
