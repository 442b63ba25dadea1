//! The store writer: an in-order, buffering queue in front of the store.
//!
//! The engine hands writes to a [`StoreHandle`] and never waits on the
//! database (except, briefly and bounded, for a plan's acknowledgement). The
//! writer task writes them one by one; when the store is unreachable it keeps
//! them in memory, retries with backoff, and writes everything, in order, when
//! the store is back. Its [`StoreStatus`] says whether the store is reachable
//! and how many writes wait.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{Store, Write};
use crate::metrics::Metrics;
use crate::retry::Backoff;

/// Writes kept in memory at most; beyond that the oldest are dropped and counted.
pub const MAX_BUFFERED: usize = 200_000;

/// The writer's state, for status and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreStatus {
    /// Whether the last write (or ping) succeeded.
    pub reachable: bool,
    /// Writes waiting.
    pub pending: usize,
    /// Writes done since start.
    pub written: u64,
    /// Writes dropped because the buffer was full (should stay 0).
    pub dropped: u64,
    /// The last error (secret-free).
    pub last_error: Option<String>,
}

struct Item {
    write: Write,
    ack: Option<oneshot::Sender<()>>,
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
        if self.tx.send(Item { write, ack: None }).is_err() {
            warn!("store writer stopped; write not queued");
        }
    }

    /// Queues a write and returns a receiver that fires once it is in the store.
    pub fn send_acked(&self, write: Write) -> oneshot::Receiver<()> {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Item { write, ack: Some(ack) }).is_err() {
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

/// The writer task.
pub struct StoreWriter {
    store: Store,
    rx: mpsc::UnboundedReceiver<Item>,
    queue: VecDeque<Item>,
    status: watch::Sender<StoreStatus>,
    metrics: Arc<Metrics>,
}

/// Creates a writer and its handle.
pub fn channel(store: Store, metrics: Arc<Metrics>) -> (StoreWriter, StoreHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (status, status_rx) = watch::channel(StoreStatus { reachable: true, ..Default::default() });
    (StoreWriter { store, rx, queue: VecDeque::new(), status, metrics }, StoreHandle { tx, status: status_rx })
}

impl StoreWriter {
    /// Writes until cancelled; then flushes what it can within `flush_timeout`.
    pub async fn run(mut self, cancel: CancellationToken, flush_timeout: Duration) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            self.drain_channel();
            if self.queue.is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    item = self.rx.recv() => match item {
                        Some(i) => self.push(i),
                        None => break,
                    },
                }
                continue;
            }
            if self.write_front().await {
                backoff.reset();
            } else {
                let wait = backoff.next_wait().max(Duration::from_millis(50));
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        // Shutdown: flush what is queued, bounded.
        self.drain_channel();
        let deadline = tokio::time::Instant::now() + flush_timeout;
        while !self.queue.is_empty() && tokio::time::Instant::now() < deadline {
            if !self.write_front().await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.drain_channel();
        }
        if !self.queue.is_empty() {
            error!(pending = self.queue.len(), "store writes not flushed at shutdown");
        } else {
            info!("store writes flushed");
        }
    }

    fn drain_channel(&mut self) {
        while let Ok(i) = self.rx.try_recv() {
            self.push(i);
        }
    }

    fn push(&mut self, item: Item) {
        if self.queue.len() >= MAX_BUFFERED {
            self.queue.pop_front();
            self.status.send_modify(|s| s.dropped += 1);
            error!("store buffer full: dropped the oldest write");
        }
        self.queue.push_back(item);
        self.publish(None);
    }

    /// Tries the oldest write; true when it was written.
    async fn write_front(&mut self) -> bool {
        let Some(front) = self.queue.front() else { return true };
        let result = tokio::time::timeout(Duration::from_secs(5), self.store.write(&front.write)).await;
        match result {
            Ok(Ok(())) => {
                if let Some(item) = self.queue.pop_front() {
                    if let Some(ack) = item.ack {
                        let _ = ack.send(());
                    }
                }
                let was_down = !self.status.borrow().reachable;
                self.status.send_modify(|s| {
                    s.written += 1;
                    s.reachable = true;
                });
                if was_down {
                    info!(pending = self.queue.len(), "store reachable again; writing buffered records");
                }
                self.publish(None);
                true
            }
            Ok(Err(e)) => {
                self.fail(e.to_string());
                false
            }
            Err(_) => {
                self.fail("write timed out".to_string());
                false
            }
        }
    }

    fn fail(&mut self, e: String) {
        let was_up = self.status.borrow().reachable;
        if was_up {
            error!(error = %e, pending = self.queue.len(), "store unreachable; buffering writes");
        }
        self.status.send_modify(|s| s.reachable = false);
        self.publish(Some(e));
    }

    fn publish(&mut self, err: Option<String>) {
        let pending = self.queue.len();
        self.metrics.set_store_pending(pending);
        self.status.send_if_modified(|s| {
            let changed = s.pending != pending || (err.is_some() && s.last_error != err);
            s.pending = pending;
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

    /// Every write received so far, oldest first.
    pub(crate) fn writes(&self) -> Vec<Write> {
        self.written.lock().expect("test store lock").clone()
    }

    /// Sets the status the engine reads (e.g. unreachable with writes pending).
    pub(crate) fn set_status(&self, status: StoreStatus) {
        self.status.send_replace(status);
    }
}
