//! The store writer: an in-order queue in front of the store that no bad write can stop
//! and no outage or crash can empty.
//!
//! The engine and the API hand writes to a [`StoreHandle`] and never wait on the database
//! (except, briefly and bounded, for a plan's acknowledgement). The writer task:
//! - appends each write to the [`spill`] file first (when `orchestrator.spill_dir` is set;
//!   fsynced for every write but lag samples), so it survives SIGTERM, SIGKILL and power loss;
//! - writes them to the store one by one, in order. A **transient** failure (connection,
//!   timeout, admin shutdown, a store not yet migrated) keeps the write at the front and
//!   retries with backoff; while the store is down, a write is acknowledged once it is
//!   fsynced in the spill file (durable, DESIGN rule 6). A **permanent** failure
//!   ([`StoreError::is_permanent`]: bad data, a constraint, an oversize value) moves that
//!   write to the [`dead_letters`](crate::store::dead_letters) at once (the table, else the
//!   spill directory's file, else the log) and goes on with the next write;
//! - keeps what waits in a [`buffer`] that never drops a plan, transition, operation, drill
//!   or audit row to make room: only lag samples are thinned (and counted) when it is full;
//! - truncates the spill file each time everything has landed; at start, the writes a
//!   previous run left in it go first ([`StoreWriter::replay`]).
//!
//! Its [`StoreStatus`] says whether the store is reachable, how many writes wait, what was
//! thinned, the dead letters and the spill file.

mod buffer;
pub mod spill;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use self::buffer::{Buffer, Item, thinnable};
pub use self::spill::{Replay, Spill, SpillError, SpillStatus};
use super::dead_letters::DeadLetter;
use super::{Store, StoreError, Write};
use crate::metrics::Metrics;
use crate::retry::Backoff;

/// Writes kept in memory before lag samples are thinned (kept writes are never dropped).
pub const MAX_BUFFERED: usize = 200_000;

/// Bound on one write to the store.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an idle writer checks that the store still answers.
const IDLE_PING: Duration = Duration::from_secs(2);

/// The latest dead letter, for status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterNote {
    /// When.
    pub at: DateTime<Utc>,
    /// The write's kind.
    pub kind: String,
    /// Why the store refused it.
    pub error: String,
    /// Where it is kept: `store` (table `dead_letters`), `file` (the spill directory's
    /// `dead-letters.jsonl`) or `log` (nowhere else could take it).
    pub kept_in: &'static str,
}

/// The writer's state, for status and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreStatus {
    /// Whether the last write (or ping) succeeded.
    pub reachable: bool,
    /// Writes waiting.
    pub pending: usize,
    /// Writes taken since start.
    pub accepted: u64,
    /// Writes done since start.
    pub written: u64,
    /// Writes thinned out of a full buffer since start, per kind (only lag samples are).
    pub thinned: BTreeMap<String, u64>,
    /// Writes the store refused for good since start (moved to the dead letters).
    pub dead_letters: u64,
    /// The latest of them.
    pub last_dead_letter: Option<DeadLetterNote>,
    /// The spill file (None without `orchestrator.spill_dir`).
    pub spill: Option<SpillStatus>,
    /// The last error (secret-free).
    pub last_error: Option<String>,
}

/// The engine's side: sends writes, never blocks.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::UnboundedSender<Item>,
    status: watch::Receiver<StoreStatus>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

impl StoreHandle {
    /// Queues a write.
    pub fn send(&self, write: Write) {
        if self.tx.send(Item { write, ack: None, spilled: false }).is_err() {
            warn!("store writer stopped; write not queued");
        }
    }

    /// Queues a write and returns a receiver that fires once it is durable: in the store,
    /// or (while the store is down) fsynced in the spill file. Dropped unanswered when
    /// the write is dead-lettered.
    pub fn send_acked(&self, write: Write) -> oneshot::Receiver<()> {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Item { write, ack: Some(ack), spilled: false }).is_err() {
            warn!("store writer stopped; write not queued");
        }
        rx
    }

    /// The writer's current status.
    pub fn status(&self) -> StoreStatus {
        self.status.borrow().clone()
    }

    /// A receiver of status changes.
    pub fn subscribe(&self) -> watch::Receiver<StoreStatus> {
        self.status.clone()
    }
}

/// How one try of the oldest write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tried {
    /// In the store (or nothing was queued).
    Landed,
    /// Refused for good and moved to the dead letters.
    DeadLettered,
    /// Not written; retry later.
    Failed,
}

/// The writer task.
pub struct StoreWriter {
    store: Store,
    rx: mpsc::UnboundedReceiver<Item>,
    buffer: Buffer,
    spill: Option<Spill>,
    status: watch::Sender<StoreStatus>,
    metrics: Arc<Metrics>,
    /// The last write failed transiently (the store is down).
    down: bool,
}

/// Creates a writer and its handle. `spill` is the opened spill directory and the writes a
/// previous run left in it: they are queued first.
pub fn channel(store: Store, metrics: Arc<Metrics>, spill: Option<(Spill, Vec<Write>)>) -> (StoreWriter, StoreHandle) {
    with_capacity(store, metrics, spill, MAX_BUFFERED)
}

fn with_capacity(
    store: Store,
    metrics: Arc<Metrics>,
    spill: Option<(Spill, Vec<Write>)>,
    capacity: usize,
) -> (StoreWriter, StoreHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (status, status_rx) = watch::channel(StoreStatus { reachable: true, ..Default::default() });
    let mut buffer = Buffer::new(capacity);
    let spill = spill.map(|(spill, left)| {
        for write in left {
            buffer.push(Item { write, ack: None, spilled: true });
        }
        spill
    });
    let mut w = StoreWriter { store, rx, buffer, spill, status, metrics, down: false };
    w.publish(None);
    (w, StoreHandle { tx, status: status_rx })
}

impl StoreWriter {
    /// Writes what a previous run left in the spill file (and anything queued), in order,
    /// before the orchestrator reads the store to resume: returns how many landed. Stops at
    /// the first transient failure or after `timeout`; what is left goes on in [`Self::run`].
    pub async fn replay(&mut self, timeout: Duration) -> u64 {
        let before = self.status.borrow().written;
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.buffer.is_empty() && tokio::time::Instant::now() < deadline {
            if self.try_front().await == Tried::Failed {
                break;
            }
        }
        self.settle_spill();
        let landed = self.status.borrow().written - before;
        if landed > 0 {
            info!(landed, left = self.buffer.len(), "writes from the spill file replayed into the store");
        }
        landed
    }

    /// Writes until cancelled; then flushes what it can within `flush_timeout` (what it
    /// cannot stays in the spill file for the next start).
    pub async fn run(mut self, cancel: CancellationToken, flush_timeout: Duration) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            self.drain_channel();
            if self.buffer.is_empty() {
                self.settle_spill();
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    item = self.rx.recv() => match item {
                        Some(i) => self.accept(i),
                        None => break,
                    },
                    // Idle: a ping keeps `reachable` true to the store, not to the last write.
                    _ = tokio::time::sleep(IDLE_PING) => self.ping().await,
                }
                continue;
            }
            match self.try_front().await {
                Tried::Landed | Tried::DeadLettered => backoff.reset(),
                Tried::Failed => {
                    let wait = backoff.next_wait().max(Duration::from_millis(50));
                    if self.wait_accepting(wait, &cancel).await {
                        break;
                    }
                }
            }
        }
        self.flush(flush_timeout).await;
    }

    /// Shutdown: writes what is queued, bounded; a store that is down and a spill file that
    /// holds everything end it at once.
    async fn flush(&mut self, flush_timeout: Duration) {
        self.drain_channel();
        let deadline = tokio::time::Instant::now() + flush_timeout;
        while !self.buffer.is_empty() && tokio::time::Instant::now() < deadline {
            if self.down && self.spill.is_some() && self.buffer.all_spilled() {
                break;
            }
            if self.try_front().await == Tried::Failed {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.drain_channel();
        }
        self.settle_spill();
        let left = self.buffer.len();
        if left == 0 {
            info!("store writes flushed");
        } else if self.spill.is_some() && self.buffer.all_spilled() {
            warn!(pending = left, "store writes not flushed at shutdown: kept in the spill file for the next start");
        } else {
            error!(pending = left, "store writes not flushed at shutdown and not all spilled: lost");
        }
    }

    fn drain_channel(&mut self) {
        while let Ok(i) = self.rx.try_recv() {
            self.accept(i);
        }
    }

    /// Takes a write: spills it (fsynced unless thinnable), then queues it.
    fn accept(&mut self, mut item: Item) {
        // Counted silently: a status change per write would wake every watcher.
        self.status.send_if_modified(|s| {
            s.accepted += 1;
            false
        });
        if let Some(spill) = &mut self.spill {
            let sync = !thinnable(&item.write);
            match spill.append(&item.write, sync) {
                Ok(_) => {
                    item.spilled = true;
                    // While the store is down, durable in the spill file is recorded.
                    if self.down
                        && sync
                        && let Some(ack) = item.ack.take()
                    {
                        let _ = ack.send(());
                    }
                }
                Err(e) => {
                    error!(error = %e, kind = item.write.kind(), "spill file not written; the write is only in memory")
                }
            }
        }
        let thinned_before: u64 = self.buffer.thinned().values().sum();
        self.buffer.push(item);
        let thinned_after: u64 = self.buffer.thinned().values().sum();
        if thinned_after > thinned_before {
            let n = thinned_after - thinned_before;
            warn!(thinned = n, pending = self.buffer.len(), "store buffer full: lag samples thinned to make room");
            self.metrics.store_thinned("lag_samples", n);
        }
        self.publish(None);
    }

    /// Tries the oldest write, taking new writes meanwhile.
    async fn try_front(&mut self) -> Tried {
        let Some(front) = self.buffer.front() else { return Tried::Landed };
        let write = front.write.clone();
        let store = self.store.clone();
        let attempt = async move {
            match tokio::time::timeout(WRITE_TIMEOUT, store.write(&write)).await {
                Ok(r) => r.map_err(Some),
                Err(_) => Err(None),
            }
        };
        let result = self.accepting(attempt).await;
        match result {
            Ok(()) => {
                self.landed();
                Tried::Landed
            }
            Err(Some(e)) if e.is_permanent() => {
                self.dead_letter(e).await;
                Tried::DeadLettered
            }
            Err(Some(e)) => {
                self.fail(e.to_string());
                Tried::Failed
            }
            Err(None) => {
                self.fail("write timed out".to_string());
                Tried::Failed
            }
        }
    }

    /// The front write is in the store.
    fn landed(&mut self) {
        if let Some(item) = self.buffer.pop()
            && let Some(ack) = item.ack
        {
            let _ = ack.send(());
        }
        let was_down = std::mem::replace(&mut self.down, false);
        self.status.send_modify(|s| {
            s.written += 1;
            s.reachable = true;
        });
        if was_down {
            info!(pending = self.buffer.len(), "store reachable again; writing buffered records");
        }
        // Settled before publishing: no observer sees nothing pending but a spill file still full.
        self.settle_spill();
        self.publish(None);
    }

    /// The front write was refused for good: it leaves the queue for the dead letters.
    async fn dead_letter(&mut self, e: StoreError) {
        let Some(item) = self.buffer.pop() else { return };
        let letter = DeadLetter::new(&item.write, &e, Utc::now());
        let in_store =
            matches!(tokio::time::timeout(WRITE_TIMEOUT, self.store.record_dead_letter(&letter)).await, Ok(Ok(())));
        let kept_in = if in_store {
            "store"
        } else if self.spill.as_ref().is_some_and(|s| s.dead_letter(&letter).is_ok()) {
            "file"
        } else {
            "log"
        };
        error!(kind = %letter.kind, error = %letter.error, id = %letter.id, kept_in, "store refused a write for good: dead-lettered, going on with the next");
        self.metrics.store_dead_letter();
        let note = DeadLetterNote { at: letter.at, kind: letter.kind, error: letter.error, kept_in };
        self.status.send_modify(|s| {
            s.dead_letters += 1;
            s.last_dead_letter = Some(note);
            // The store answered: it is up, the write was the problem.
            s.reachable = true;
        });
        self.down = false;
        self.settle_spill();
        self.publish(None);
    }

    /// A transient failure: the write stays first; everything spilled is durable now.
    fn fail(&mut self, e: String) {
        if !self.down {
            error!(error = %e, pending = self.buffer.len(), "store unreachable; buffering writes");
            self.down = true;
            self.buffer.ack_spilled();
        }
        self.status.send_modify(|s| s.reachable = false);
        self.publish(Some(e));
    }

    /// Checks an idle store: a failed ping counts as an outage (so status, `/readyz` and the
    /// `store_unreachable` alarm follow the store, not the last write); a good one ends it.
    async fn ping(&mut self) {
        let store = self.store.clone();
        let check = async move { matches!(tokio::time::timeout(WRITE_TIMEOUT, store.ping()).await, Ok(true)) };
        let answered = self.accepting(check).await;
        if answered {
            if std::mem::replace(&mut self.down, false) {
                info!("store answers again");
            }
            self.status.send_if_modified(|s| !std::mem::replace(&mut s.reachable, true));
        } else {
            self.fail("the store does not answer (idle check)".to_string());
        }
    }

    /// Awaits `work` while taking (and spilling) the writes that arrive meanwhile, so a slow
    /// or dead store never leaves a write unspilled in the channel.
    async fn accepting<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                Some(i) = self.rx.recv() => self.accept(i),
            }
        }
    }

    /// Waits `wait`, taking new writes; true when cancelled.
    async fn wait_accepting(&mut self, wait: Duration, cancel: &CancellationToken) -> bool {
        tokio::select! {
            _ = cancel.cancelled() => true,
            _ = self.accepting(tokio::time::sleep(wait)) => false,
        }
    }

    /// Empties the spill file once everything in it has landed.
    fn settle_spill(&mut self) {
        if !self.buffer.is_empty() {
            return;
        }
        if let Some(spill) = &mut self.spill
            && spill.entries() > 0
        {
            if let Err(e) = spill.clear() {
                error!(error = %e, "spill file not truncated (its writes are in the store; a replay is harmless)");
            }
            self.publish(None);
        }
    }

    fn publish(&mut self, err: Option<String>) {
        let pending = self.buffer.len();
        self.metrics.set_store_pending(pending);
        let spill = self.spill.as_ref().map(Spill::status);
        if let Some(s) = &spill {
            self.metrics.set_store_spill_entries(s.entries);
        }
        let thinned: BTreeMap<String, u64> = self.buffer.thinned().iter().map(|(k, v)| (k.to_string(), *v)).collect();
        self.status.send_if_modified(|s| {
            let changed = s.pending != pending
                || (err.is_some() && s.last_error != err)
                || s.spill != spill
                || s.thinned != thinned;
            s.pending = pending;
            s.spill = spill;
            s.thinned = thinned;
            if err.is_some() {
                s.last_error = err;
            }
            changed
        });
    }
}

/// A writer with no database behind it, for unit tests of the engine: every write is
/// acknowledged at once and kept in order, and the test sets the status the engine sees.
#[cfg(test)]
pub(crate) struct MemoryWriter {
    written: Arc<std::sync::Mutex<Vec<Write>>>,
    status: watch::Sender<StoreStatus>,
}

#[cfg(test)]
impl MemoryWriter {
    /// A reachable in-memory writer and its handle; the task draining the queue runs on
    /// the current tokio runtime until the handle is dropped.
    pub(crate) fn start() -> (Self, StoreHandle) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
        let (status, status_rx) = watch::channel(StoreStatus { reachable: true, ..Default::default() });
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = written.clone();
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                sink.lock().expect("test store lock").push(item.write);
                if let Some(ack) = item.ack {
                    let _ = ack.send(());
                }
            }
        });
        (Self { written, status }, StoreHandle { tx, status: status_rx })
    }

    /// Every write received so far, oldest first. Each one is also checked to read back
    /// equal from its spill-file JSON, so every engine test proves the spill file can carry
    /// every write the engine makes.
    pub(crate) fn writes(&self) -> Vec<Write> {
        let writes = self.written.lock().expect("test store lock").clone();
        for w in &writes {
            let text = serde_json::to_string(w).expect("a write encodes");
            let back: Write = serde_json::from_str(&text).expect("a write decodes from its own JSON");
            assert_eq!(&back, w, "a {} write reads back equal from the spill file's JSON", w.kind());
        }
        writes
    }

    /// Sets the status the engine reads (e.g. unreachable with writes pending).
    pub(crate) fn set_status(&self, status: StoreStatus) {
        self.status.send_replace(status);
    }
}
