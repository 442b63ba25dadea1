//! One proxied connection: the accept loop, blackholed connections, and the two bounded delay
//! lines (client → upstream, upstream → client) that apply latency, jitter, bandwidth limits,
//! pauses and resets as the [`Faults`] change. The semantics are stated in the parent module.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::{
    BLACKHOLE_HOLD, CHUNK_SIZE, Counters, Faults, PIPELINE_DEPTH, RETRY_PAUSE, THROTTLE_SLICES_PER_SEC,
    UPSTREAM_CONNECT_TIMEOUT, bump,
};

/// What every connection task needs.
#[derive(Clone)]
pub(super) struct ConnCtx {
    pub(super) upstream: SocketAddr,
    pub(super) counters: Arc<Counters>,
    pub(super) faults: watch::Receiver<Faults>,
    pub(super) cancel: CancellationToken,
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
pub(super) async fn accept_loop(listener: TcpListener, addr: SocketAddr, ctx: ConnCtx, tracker: TaskTracker) {
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
pub(super) fn roll_drop(drop_rate: f64) -> bool {
    if drop_rate >= 1.0 {
        return true;
    }
    // NaN and values <= 0 never drop.
    drop_rate > 0.0 && rand::rng().random::<f64>() < drop_rate
}

/// `latency + U(0..=jitter)`.
pub(super) fn one_way_delay(faults: &Faults) -> Duration {
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
