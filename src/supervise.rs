//! Supervision: every long-lived task is watched, so the orchestrator is never half-dead.
//!
//! `app.rs` spawns every task through one of three wrappers of a [`Supervisor`]:
//! - [`Supervisor::restarting`]: probe runners and provider workers. Each is rebuilt from the
//!   configuration and owns nothing another part waits on, so one that panics is logged with its
//!   panic message, counted (`fo_task_restarts_total{task}`) and started again after a backoff
//!   with jitter, alone: the other runners and providers never notice.
//! - [`Supervisor::critical`]: the engine, the applier, the store writer, the coordination, the
//!   HTTP server and every other task that owns a channel the rest depends on. One that ends
//!   while the orchestrator is not shutting down — a panic, or a return — is reported to
//!   `App::run` as a [`TaskExit`]; it shuts down in order and returns a [`SuperviseError`] naming
//!   the task, so the process exits non-zero and systemd or Kubernetes restarts it.
//! - [`Supervisor::one_shot`]: a task that may finish by itself (the late migration); only its
//!   panic is reported.
//!
//! [`Vitals`] is what `/healthz` and `/readyz` read: the engine's [`Heartbeat`] (when it last
//! completed a cycle), the critical tasks gone and the restartable tasks waiting to restart.
//! [`Faults`] lets a test make a named task panic, stall or return; it is inert unless
//! `AppOptions::faults` sets it, and the product never sets it.
//!
//! Panics are caught with `catch_unwind` inside the task, so this relies on the default
//! `panic = "unwind"` (the workspace never sets `abort`). This module spawns nothing itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::metrics::Metrics;
use crate::region::CheckId;
use crate::retry::Backoff;
use crate::selfcheck::{GoneTask, ProviderWorkerSign, VitalSigns};

/// A long-lived task, by what it does. `Display` is its name in logs, metrics and errors.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Task {
    /// The engine actor.
    Engine,
    /// The applier (every provider worker).
    Applier,
    /// The store writer.
    StoreWriter,
    /// The etcd coordination.
    Coordination,
    /// The HTTP server.
    Http,
    /// The replication lag sampler (and promotions).
    LagSampler,
    /// The notifier.
    Notifier,
    /// The exporter of incident traces.
    Traces,
    /// The migrations applied once the store is back.
    StoreMigrate,
    /// Forgets idle clients of the API's rate limits.
    ApiLimits,
    /// Deletes audit entries older than `auth.audit_retention`.
    AuditPrune,
    /// One check's probe runner.
    Probe(CheckId),
    /// One provider's worker inside the applier.
    Provider(String),
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Engine => f.write_str("engine"),
            Task::Applier => f.write_str("applier"),
            Task::StoreWriter => f.write_str("store-writer"),
            Task::Coordination => f.write_str("coordination"),
            Task::Http => f.write_str("http"),
            Task::LagSampler => f.write_str("lag-sampler"),
            Task::Notifier => f.write_str("notifier"),
            Task::Traces => f.write_str("traces"),
            Task::StoreMigrate => f.write_str("store-migrate"),
            Task::ApiLimits => f.write_str("api-limits"),
            Task::AuditPrune => f.write_str("audit-prune"),
            Task::Probe(id) => write!(f, "probe {id}"),
            Task::Provider(name) => write!(f, "provider {name}"),
        }
    }
}

/// How long a critical task that returned waits before reporting it, so that a panic which
/// made it return (a closed channel) is reported first.
const RETURN_REPORT_DELAY: Duration = Duration::from_millis(200);

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It panicked, with this message.
    Panicked(String),
    /// It returned although nothing asked it to stop.
    Returned,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Panicked(msg) => write!(f, "panicked: {msg}"),
            Exit::Returned => f.write_str("ended while the orchestrator was running"),
        }
    }
}

/// A critical task that ended when it should not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    /// Which.
    pub task: Task,
    /// How.
    pub exit: Exit,
}

/// Why `App::run` failed: a critical task ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuperviseError {
    /// A critical task ended (panic or return) while the orchestrator was running.
    #[error("critical task `{}` {}; the orchestrator stopped so that it can be restarted", .0.task, .0.exit)]
    CriticalTaskEnded(TaskExit),
}

impl SuperviseError {
    /// The task that ended.
    pub fn task(&self) -> &Task {
        match self {
            SuperviseError::CriticalTaskEnded(e) => &e.task,
        }
    }
}

/// How restartable tasks are restarted.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// First backoff ceiling (the wait is between half of it and all of it).
    pub base: Duration,
    /// Largest backoff ceiling: a task that panics again and again restarts this often at most.
    pub max: Duration,
    /// A run that lasted this long counts as healthy: the next panic starts the backoff over.
    pub healthy_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self { base: Duration::from_millis(100), max: Duration::from_secs(30), healthy_after: Duration::from_secs(60) }
    }
}

/// What a test can make a task do ([`Faults::arm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic.
    Panic,
    /// Stop making progress without ending (a deadlock): its state stays alive, never polled again.
    Stall,
    /// Return as if its work were done.
    Return,
}

/// A test-only hook: makes a named task panic, stall or return at once. Inert unless passed in
/// `AppOptions::faults`; each arming fires once (a restarted task runs normally).
#[derive(Clone, Default)]
pub struct Faults {
    armed: Arc<watch::Sender<BTreeMap<Task, Fault>>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").field("armed", &*self.armed.borrow()).finish()
    }
}

impl Faults {
    /// No fault armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `task` do `fault` now (or as soon as it starts).
    pub fn arm(&self, task: Task, fault: Fault) {
        self.armed.send_modify(|m| {
            m.insert(task, fault);
        });
    }

    /// Resolves with the fault armed for `task`, disarming it.
    async fn tripped(&self, task: &Task) -> Fault {
        let mut rx = self.armed.subscribe();
        loop {
            let mut fault = None;
            self.armed.send_if_modified(|m| {
                fault = m.remove(task);
                fault.is_some()
            });
            if let Some(f) = fault {
                return f;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs `fut`, unless a fault is armed for `task` first.
async fn with_faults(faults: Option<Faults>, task: Task, fut: impl Future<Output = ()>) {
    let Some(faults) = faults else { return fut.await };
    let mut fut = std::pin::pin!(fut);
    let fault = tokio::select! {
        () = &mut fut => return,
        f = faults.tripped(&task) => f,
    };
    match fault {
        Fault::Panic => panic!("fault injected into task `{task}`"),
        Fault::Return => warn!(%task, "fault injected: task returns"),
        Fault::Stall => {
            warn!(%task, "fault injected: task stalls");
            // `fut` stays alive (its channels open) but is never polled again.
            std::future::pending::<()>().await;
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

/// What the self-checks read about the tasks: shared between the supervisor and the API.
#[derive(Default)]
struct Book {
    /// Every restartable task ever started.
    supervised: BTreeSet<Task>,
    /// Restartable tasks waiting out their backoff after a panic.
    restarting: BTreeSet<Task>,
    /// Critical tasks that ended unexpectedly, with how.
    gone: BTreeMap<Task, String>,
}

struct VitalsInner {
    born: Instant,
    /// Milliseconds from `born` to the engine's last completed cycle.
    last_beat_ms: AtomicU64,
    book: watch::Sender<Book>,
}

/// The tasks' vital signs, for `/healthz` and `/readyz`. Cheap to clone.
#[derive(Clone)]
pub struct Vitals {
    inner: Arc<VitalsInner>,
}

impl fmt::Debug for Vitals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vitals")
    }
}

impl Default for Vitals {
    fn default() -> Self {
        Self::new()
    }
}

impl Vitals {
    /// Fresh signs; creation counts as the engine's first beat (it gets the liveness bound to start).
    pub fn new() -> Self {
        Self {
            inner: Arc::new(VitalsInner {
                born: Instant::now(),
                last_beat_ms: AtomicU64::new(0),
                book: watch::Sender::new(Book::default()),
            }),
        }
    }

    /// The handle the engine beats after every completed cycle.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat { inner: self.inner.clone() }
    }

    /// The signs now.
    pub fn signs(&self) -> VitalSigns {
        let beat = Duration::from_millis(self.inner.last_beat_ms.load(Ordering::Relaxed));
        let engine_idle = self.inner.born.elapsed().saturating_sub(beat);
        let book = self.inner.book.borrow();
        VitalSigns {
            engine_idle,
            gone: book.gone.iter().map(|(t, how)| GoneTask { task: t.to_string(), how: how.clone() }).collect(),
            providers: book
                .supervised
                .iter()
                .filter_map(|t| match t {
                    Task::Provider(name) => {
                        Some(ProviderWorkerSign { provider: name.clone(), restarting: book.restarting.contains(t) })
                    }
                    _ => None,
                })
                .collect(),
            restarting: book.restarting.iter().map(Task::to_string).collect(),
        }
    }

    fn edit(&self, f: impl FnOnce(&mut Book)) {
        self.inner.book.send_modify(f);
    }
}

/// The engine's side of [`Vitals`]: one relaxed atomic store per cycle.
#[derive(Clone)]
pub struct Heartbeat {
    inner: Arc<VitalsInner>,
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Heartbeat")
    }
}

impl Heartbeat {
    /// Records that a cycle completed now.
    pub fn beat(&self) {
        let ms = u64::try_from(self.inner.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.last_beat_ms.store(ms, Ordering::Relaxed);
    }
}

/// Watches tasks: restarts the restartable ones, reports the critical ones that end. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    exits: mpsc::UnboundedSender<TaskExit>,
    stopping: CancellationToken,
    metrics: Arc<Metrics>,
    vitals: Vitals,
    faults: Option<Faults>,
    policy: RestartPolicy,
}

impl Supervisor {
    /// A supervisor writing to `vitals`, and the receiver of critical tasks' unexpected ends.
    pub fn new(
        metrics: Arc<Metrics>,
        vitals: Vitals,
        faults: Option<Faults>,
        policy: RestartPolicy,
    ) -> (Supervisor, mpsc::UnboundedReceiver<TaskExit>) {
        let (exits, rx) = mpsc::unbounded_channel();
        (Supervisor { exits, stopping: CancellationToken::new(), metrics, vitals, faults, policy }, rx)
    }

    /// Shutdown has begun: from now on a task that returns does so because it was asked to.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Wraps a critical task: its panic, or its return before [`Supervisor::stop`], is reported.
    pub fn critical(
        &self,
        task: Task,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.watch(task, fut, false)
    }

    /// Wraps a task that may finish by itself: only its panic is reported.
    pub fn one_shot(
        &self,
        task: Task,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.watch(task, fut, true)
    }

    fn watch(
        &self,
        task: Task,
        fut: impl Future<Output = ()> + Send + 'static,
        may_return: bool,
    ) -> impl Future<Output = ()> + Send + 'static {
        let me = self.clone();
        async move {
            let run = with_faults(me.faults.clone(), task.clone(), fut);
            let exit = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(()) if may_return || me.stopping.is_cancelled() => return,
                Ok(()) => Exit::Returned,
                Err(payload) => Exit::Panicked(panic_message(&*payload)),
            };
            if exit == Exit::Returned {
                // A task that returns may do so because another died: the engine's panic drops
                // its plan channel while it unwinds, and the applier, seeing the channel close,
                // returns on another thread before the engine's panic is caught. The cause is
                // reported first, so that the run's error names the task that failed.
                tokio::time::sleep(RETURN_REPORT_DELAY).await;
            }
            error!(%task, %exit, "critical task ended");
            me.vitals.edit(|b| {
                b.gone.insert(task.clone(), exit.to_string());
            });
            // The receiver is gone only once `App::run` has returned.
            let _ = me.exits.send(TaskExit { task, exit });
        }
    }

    /// Runs the task `make` builds and, each time it panics, logs the panic, waits a backoff
    /// (equal jitter, starting over after a healthy run) and runs a fresh one. Ends when the
    /// task returns or `cancel` fires.
    pub fn restarting<F, Fut>(
        &self,
        task: Task,
        cancel: CancellationToken,
        mut make: F,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let me = self.clone();
        async move {
            me.vitals.edit(|b| {
                b.supervised.insert(task.clone());
            });
            let mut backoff = Backoff::new(me.policy.base, me.policy.max);
            let mut restarts = 0u64;
            loop {
                let started = Instant::now();
                let run = with_faults(me.faults.clone(), task.clone(), make());
                let panic = match AssertUnwindSafe(run).catch_unwind().await {
                    Ok(()) => {
                        if !cancel.is_cancelled() && !me.stopping.is_cancelled() {
                            // Only happens when what feeds it is gone (the engine), which is reported itself.
                            warn!(%task, "task ended by itself; not restarted");
                        }
                        return;
                    }
                    Err(payload) => panic_message(&*payload),
                };
                if cancel.is_cancelled() {
                    error!(%task, panic = %panic, "task panicked while stopping");
                    return;
                }
                if started.elapsed() >= me.policy.healthy_after {
                    backoff.reset();
                }
                let ceiling = backoff.ceiling();
                let _ = backoff.next_wait();
                let wait = ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0);
                error!(%task, panic = %panic, restart_in_ms = wait.as_millis() as u64, restarts, "task panicked; restarting it after a backoff");
                me.vitals.edit(|b| {
                    b.restarting.insert(task.clone());
                });
                let cancelled = tokio::select! {
                    () = cancel.cancelled() => true,
                    () = tokio::time::sleep(wait) => false,
                };
                me.vitals.edit(|b| {
                    b.restarting.remove(&task);
                });
                if cancelled {
                    return;
                }
                restarts += 1;
                me.metrics.task_restarted(&task.to_string());
                info!(%task, restarts, "task restarted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn supervisor(faults: Option<Faults>) -> (Supervisor, mpsc::UnboundedReceiver<TaskExit>, Vitals, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let vitals = Vitals::new();
        let policy = RestartPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            healthy_after: Duration::from_secs(60),
        };
        let (s, rx) = Supervisor::new(metrics.clone(), vitals.clone(), faults, policy);
        (s, rx, vitals, metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_counted_and_runs_again() {
        let (sup, _exits, vitals, metrics) = supervisor(None);
        let runs = Arc::new(AtomicU32::new(0));
        let cancel = CancellationToken::new();
        let (r, c) = (runs.clone(), cancel.clone());
        let task = Task::Provider("pdns".into());
        let handle = tokio::spawn(sup.restarting(task, cancel.clone(), move || {
            let (r, c) = (r.clone(), c.clone());
            async move {
                // The first two runs panic; the third runs until cancelled.
                if r.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("worker bug");
                }
                c.cancelled().await;
            }
        }));
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(metrics.encode().contains("fo_task_restarts_total{task=\"provider pdns\"} 2"), "{}", metrics.encode());
        let signs = vitals.signs();
        assert_eq!(signs.providers.len(), 1);
        assert!(!signs.providers[0].restarting);
        cancel.cancel();
        handle.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_waiting_to_restart_shows_in_the_signs() {
        let (sup, _exits, vitals, _) = supervisor(None);
        let cancel = CancellationToken::new();
        let handle =
            tokio::spawn(sup.restarting(Task::Provider("file".into()), cancel.clone(), || async { panic!("always") }));
        tokio::time::sleep(Duration::from_millis(1)).await;
        let signs = vitals.signs();
        assert_eq!(signs.restarting, ["provider file"]);
        assert!(signs.providers[0].restarting);
        cancel.cancel();
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn a_critical_task_that_panics_or_returns_is_reported_with_its_name() {
        let (sup, mut exits, vitals, _) = supervisor(None);
        tokio::spawn(sup.critical(Task::Engine, async { panic!("engine bug") }));
        let exit = exits.recv().await.unwrap();
        assert_eq!(exit, TaskExit { task: Task::Engine, exit: Exit::Panicked("engine bug".into()) });
        tokio::spawn(sup.critical(Task::Http, async {}));
        assert_eq!(exits.recv().await.unwrap(), TaskExit { task: Task::Http, exit: Exit::Returned });
        let gone: Vec<String> = vitals.signs().gone.into_iter().map(|g| g.task).collect();
        assert_eq!(gone, ["engine", "http"]);
        let err = SuperviseError::CriticalTaskEnded(exit);
        assert!(err.to_string().contains("`engine` panicked: engine bug"), "{err}");
    }

    #[tokio::test]
    async fn after_stop_a_returning_critical_task_is_not_reported_and_a_one_shot_never_is() {
        let (sup, mut exits, vitals, _) = supervisor(None);
        tokio::spawn(sup.one_shot(Task::StoreMigrate, async {})).await.unwrap();
        sup.stop();
        tokio::spawn(sup.critical(Task::Engine, async {})).await.unwrap();
        assert!(exits.try_recv().is_err());
        assert!(vitals.signs().gone.is_empty());
    }

    #[tokio::test]
    async fn an_armed_fault_fires_once_in_the_named_task_only() {
        let faults = Faults::new();
        let (sup, mut exits, _, _) = supervisor(Some(faults.clone()));
        let other = tokio::spawn(sup.critical(Task::Http, std::future::pending()));
        tokio::spawn(sup.critical(Task::Engine, std::future::pending()));
        faults.arm(Task::Engine, Fault::Panic);
        let exit = exits.recv().await.unwrap();
        assert_eq!(exit.task, Task::Engine);
        assert!(matches!(exit.exit, Exit::Panicked(ref m) if m.contains("fault injected")), "{exit:?}");
        assert!(!other.is_finished());
        assert!(faults.armed.borrow().is_empty(), "the fault was disarmed when it fired");
        other.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_task_neither_ends_nor_beats() {
        let faults = Faults::new();
        let (sup, mut exits, vitals, _) = supervisor(Some(faults.clone()));
        let hb = vitals.heartbeat();
        let h = tokio::spawn(sup.critical(Task::Engine, async move {
            loop {
                hb.beat();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(vitals.signs().engine_idle <= Duration::from_millis(250));
        faults.arm(Task::Engine, Fault::Stall);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(vitals.signs().engine_idle >= Duration::from_secs(9), "{:?}", vitals.signs().engine_idle);
        assert!(!h.is_finished());
        assert!(exits.try_recv().is_err());
        h.abort();
    }
}
