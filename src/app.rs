//! Wiring: builds every part from the configuration and runs them as named, cancellable tasks.
//!
//! This is the only place that spawns long-lived tasks and picks implementations. Every task
//! is supervised ([`crate::supervise`]): a probe runner or provider worker that panics is
//! restarted alone; the engine, applier, store writer, coordination, HTTP server, lag sampler
//! and notifier are critical — one that ends while nothing asked it to (panic or return) makes
//! [`App::run`] shut down and return an error naming it, so the process exits non-zero and its
//! service manager restarts it. The rate limits' bookkeeping (`api-limits`) and the audit prune
//! (`audit-prune`, past `auth.audit_retention`) restart alone, as probe runners do. The HTTP
//! server speaks TLS (axum-server, rustls with ring) when `orchestrator.tls_cert` is set, and
//! always hands each request its client's address (`ConnectInfo`) for the limits.
//! Shutdown order (on cancellation or a critical task's end): the root token is cancelled → the
//! HTTP server drains → probe runners, applier and engine stop (the engine records the last
//! reports), then the trace exporter sends the incidents still waiting → the housekeeping
//! scheduler stops → tracked tasks are awaited under
//! `shutdown_timeout` (names still running are logged) → the store writer flushes its buffer →
//! the pool closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info, info_span, warn};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::coord::etcd::EtcdCoordinator;
use crate::coord::{self, Leadership, Links, SingleKeep};
use crate::engine::{Command, Engine, EngineChannels, Resume};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::probe::{self, runner::Runner};
use crate::region::RegionName;
use crate::replication::sampler::LagSampler;
use crate::status::Status;
use crate::store::Store;
use crate::store::writer::{self, StoreHandle, StoreWriter};
use crate::supervise::{Faults, RestartPolicy, SuperviseError, Supervisor, Task, Vitals};
use crate::traffic;
use crate::traffic::applier::{Applier, ProviderSlot, RetryPolicy};

/// Bound of the shutdown steps that have no timeout of their own (scheduler, store pool).
const SHUTDOWN_STEP: Duration = Duration::from_secs(5);

/// Knobs that are not configuration: mostly for tests and the lab.
#[derive(Clone, Default)]
pub struct AppOptions {
    /// Providers to use instead of building them from the configuration.
    pub providers: Option<Vec<ProviderSlot>>,
    /// Retry timing of the applier.
    pub retry: Option<RetryPolicy>,
    /// How long to keep trying the store at start-up (default 30 s).
    pub store_wait: Option<Duration>,
    /// Test-only fault injection into named tasks; `None` (the product) injects nothing.
    pub faults: Option<Faults>,
}

/// The coordination backend's task, or what keeps the single backend's channels open.
enum Backend {
    Single(SingleKeep),
    Etcd(Box<EtcdCoordinator>),
}

/// A built, not yet running, orchestrator.
pub struct App {
    config: Arc<Config>,
    listener: TcpListener,
    store: Store,
    links: Links,
    backend: Backend,
    /// Migrations still to apply (the store was down at start; etcd let us start anyway).
    migrate_later: bool,
    resume: Resume,
    providers: Vec<ProviderSlot>,
    metrics: Arc<Metrics>,
    /// The store writer (already holding what the spill file had left) and its handle.
    store_writer: StoreWriter,
    store_handle: StoreHandle,
    retry: RetryPolicy,
    status_tx: watch::Sender<Arc<Status>>,
    status_rx: watch::Receiver<Arc<Status>>,
    commands_tx: mpsc::Sender<Command>,
    commands_rx: mpsc::Receiver<Command>,
    faults: Option<Faults>,
    /// The API's TLS (orchestrator.tls_cert / tls_key), loaded at build.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl App {
    /// Connects the store (migrating it), takes leadership, reads what to resume, binds the listener.
    ///
    /// # Errors
    /// When the store stays unreachable, migrations fail, or the address cannot be bound.
    pub async fn build(config: Config, opts: AppOptions) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let store = Store::connect_lazy(&config.orchestrator.store_dsn)?;
        let metrics = Arc::new(Metrics::new());
        let (mut store_writer, store_handle) = writer::channel(store.clone(), metrics.clone(), open_spill(&config)?);
        let etcd = EtcdCoordinator::new(&config);
        // With etcd the orchestrator starts without its store (the leader and the plan live in
        // etcd; records are buffered): a region's failover must not wait for its store.
        let default_wait = if etcd.is_some() { Duration::from_secs(3) } else { Duration::from_secs(30) };
        let wait = opts.store_wait.unwrap_or(default_wait);
        let deadline = tokio::time::Instant::now() + wait;
        let mut migrate_later = false;
        loop {
            match store.migrate().await {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    warn!(error = %e, "store not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) if etcd.is_some() => {
                    error!(error = %e, "store unreachable: starting without it (records are buffered until it is back)");
                    migrate_later = true;
                    break;
                }
                Err(e) => {
                    return Err(e).context("migrating the store (is orchestrator.store_dsn / FO_STORE_DSN right?)");
                }
            }
        }
        // What a previous run left in the spill file lands before the store is read to resume.
        if !migrate_later {
            store_writer.replay(Duration::from_secs(30)).await;
        }
        let resume = if migrate_later { Resume::default() } else { resume_from_store(&config, &store).await? };
        let (links, backend) = match etcd {
            Some((coordinator, links)) => (links, Backend::Etcd(Box::new(coordinator))),
            None => {
                let holder = format!("{}@{}", config.orchestrator.vantage, hostname());
                let epoch = coord::single(&store, &holder).await.context("taking the leadership epoch")?;
                let (links, keep) = Links::single(epoch, config.orchestrator.vantage.clone());
                (links, Backend::Single(keep))
            }
        };
        let leadership = links.standing.borrow().leadership.clone();
        let providers = match opts.providers {
            Some(p) => p,
            None => traffic::build(&config).await.context("building traffic providers")?,
        };
        let tls = match &config.orchestrator.tls {
            Some(files) => Some(tls_config(files)?),
            None => None,
        };
        let listener = TcpListener::bind(config.orchestrator.listen)
            .await
            .with_context(|| format!("binding {} (orchestrator.listen)", config.orchestrator.listen))?;
        let placeholder = Arc::new(empty_status(&config, leadership.clone()));
        let (status_tx, status_rx) = watch::channel(placeholder);
        let (commands_tx, commands_rx) = mpsc::channel(64);
        info!(epoch = %leadership.epoch, backend = leadership.backend, listen = %listener.local_addr()?, "orchestrator built");
        Ok(App {
            config,
            listener,
            store,
            links,
            backend,
            migrate_later,
            resume,
            providers,
            metrics,
            store_writer,
            store_handle,
            retry: opts.retry.unwrap_or_default(),
            status_tx,
            status_rx,
            commands_tx,
            commands_rx,
            faults: opts.faults,
            tls,
        })
    }

    /// The bound API address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.orchestrator.listen)
    }

    /// A receiver of status snapshots.
    pub fn status(&self) -> watch::Receiver<Arc<Status>> {
        self.status_rx.clone()
    }

    /// A sender of engine commands.
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands_tx.clone()
    }

    /// The store.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Runs everything until `cancel` fires or a critical task ends, then shuts down in order.
    ///
    /// # Errors
    /// When the scheduler cannot start, or a critical task ended (panic, or return while not
    /// shutting down): a [`SuperviseError`] naming it.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let addr = self.addr();
        let tracker = TaskTracker::new();
        let mut names: Vec<(String, JoinHandle<()>)> = Vec::new();
        // Not a child of `cancel`: the tasks stop only once supervision knows it is shutting down.
        let work = CancellationToken::new();
        let vitals = Vitals::new();
        let (sup, mut exits) =
            Supervisor::new(self.metrics.clone(), vitals.clone(), self.faults.clone(), RestartPolicy::default());
        let mut spawn = |task: Task, fut: futures::future::BoxFuture<'static, ()>| {
            let name = task.to_string();
            let span = info_span!("task", name = %name);
            let h = tracker.spawn(fut.instrument(span));
            names.push((name, h));
        };

        // Store writer: its own token, cancelled last so it can flush; critical like the others.
        let writer_cancel = CancellationToken::new();
        let (store_writer, store_handle) = (self.store_writer, self.store_handle);
        let flush = self.config.orchestrator.shutdown_timeout;
        let wc = writer_cancel.clone();
        let writer_task = tokio::spawn(
            sup.critical(Task::StoreWriter, async move { store_writer.run(wc, flush).await })
                .instrument(info_span!("task", name = "store-writer")),
        );

        // Coordination.
        let Links { standing, peers, plans, view, health, fence } = self.links;
        let applier_standing = standing.clone();
        let mut _single_keep = None;
        match self.backend {
            Backend::Etcd(coordinator) => {
                // Cancelled with the other tasks: it revokes its lease so a successor takes over at once.
                let token = work.child_token();
                spawn(Task::Coordination, sup.critical(Task::Coordination, coordinator.run(token)).boxed());
            }
            Backend::Single(keep) => _single_keep = Some(keep),
        }
        if self.migrate_later {
            let store = self.store.clone();
            let token = work.child_token();
            spawn(Task::StoreMigrate, sup.one_shot(Task::StoreMigrate, migrate_when_back(store, token)).boxed());
        }

        // Probes → engine; each region's runners can be told to probe at once.
        let (obs_tx, obs_rx) = mpsc::channel(4096);
        let http = probe::http_client().context("building the probe HTTP client")?;
        let mut reprobe = std::collections::BTreeMap::new();
        // A synthetic-failure drill's injection, set by the engine, read by every runner.
        let (injection, injection_rx) = watch::channel(None);
        for r in &self.config.regions {
            reprobe.insert(r.name.clone(), watch::channel(0u64).0);
        }
        for check in self.config.checks() {
            let probe = probe::build(check, &http);
            let (vantage, obs_tx, metrics) =
                (self.config.orchestrator.vantage.clone(), obs_tx.clone(), self.metrics.clone());
            let reprobe_rx = reprobe.get(&check.id.region).map(|tx| tx.subscribe());
            let injection_rx = injection_rx.clone();
            let (check, token) = (check.clone(), work.child_token());
            let task = Task::Probe(check.id.clone());
            // A restart builds a fresh runner on the same channels.
            let t = token.clone();
            let run = sup.restarting(task.clone(), token, move || {
                let mut runner =
                    Runner::new(check.clone(), probe.clone(), vantage.clone(), obs_tx.clone(), metrics.clone());
                if let Some(rx) = &reprobe_rx {
                    runner = runner.with_reprobe(rx.clone());
                }
                runner.with_injection(injection_rx.clone()).run(t.clone())
            });
            spawn(task, run.boxed());
        }
        drop(obs_tx);

        // Engine ↔ applier.
        // Replication lag of every standby (when at least two regions have a database).
        let (lag_tx, lag_rx) = mpsc::channel(256);
        let (steps_tx, steps_rx) = mpsc::channel(64);
        let mut replication = None;
        match LagSampler::new(&self.config, lag_tx, Some(store_handle.clone())) {
            Some(sampler) => {
                let (cmd_tx, cmd_rx) = mpsc::channel(4);
                replication = Some(cmd_tx);
                let mut sampler = sampler.with_promotion(cmd_rx, steps_tx).with_fence(fence.clone());
                if let Some(w) = &self.resume.writer {
                    sampler.set_primary(w.clone());
                }
                let token = work.child_token();
                spawn(Task::LagSampler, sup.critical(Task::LagSampler, sampler.run(token)).boxed());
            }
            None => info!("fewer than two regions have a database: replication lag not collected"),
        }
        let (plans_tx, plans_rx) = watch::channel(None);
        let (reports_tx, reports_rx) = mpsc::channel(1024);
        let applier = Applier::new(self.providers.clone(), plans_rx, reports_tx, self.metrics.clone(), self.retry)
            .with_fence(fence, applier_standing);
        // One supervised worker per provider: a panicking one restarts alone, the others go on.
        let token = work.child_token();
        let workers: Vec<_> = applier
            .into_workers()
            .into_iter()
            .map(|worker| {
                let t = token.clone();
                sup.restarting(Task::Provider(worker.provider().to_string()), token.clone(), move || {
                    worker.run(t.clone())
                })
            })
            .collect();
        spawn(Task::Applier, sup.critical(Task::Applier, futures::future::join_all(workers).map(drop)).boxed());

        // Notifications: a bounded queue from the engine; the notifier never blocks it.
        let notify_tx = if self.config.notifications.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::channel(256);
            let notifier = Notifier::new(self.config.notifications.clone(), rx, self.metrics.clone())
                .context("building the notifier")?;
            let token = work.child_token();
            spawn(Task::Notifier, sup.critical(Task::Notifier, notifier.run(token)).boxed());
            Some(tx)
        };
        // Incident traces, when an OTLP endpoint is configured: a bounded queue from the engine,
        // which never waits on it. The exporter ends once the engine is gone, after sending
        // what still waits; cancellation only stops its retries.
        let traces = match crate::traces::channel(&self.config, self.metrics.clone())
            .context("building the incident trace exporter ([traces])")?
        {
            Some((exporter, sink)) => {
                spawn(Task::Traces, sup.critical(Task::Traces, exporter.run(work.child_token())).boxed());
                Some(sink)
            }
            None => None,
        };
        let mut engine = Engine::new(
            self.config.clone(),
            store_handle.clone(),
            EngineChannels {
                observations: obs_rx,
                reports: reports_rx,
                commands: self.commands_rx,
                lag: lag_rx,
                replication,
                promotion_steps: steps_rx,
                plans: plans_tx,
                status: self.status_tx,
                notify: notify_tx,
                coord: Links { standing, peers, plans, view, health, fence: Arc::new(coord::AlwaysLeader) },
                reprobe,
                injection,
            },
            self.metrics.clone(),
            self.resume,
        )
        .with_heartbeat(vitals.heartbeat());
        if let Some(sink) = traces {
            engine = engine.with_traces(sink);
        }
        let token = work.child_token();
        spawn(Task::Engine, sup.critical(Task::Engine, engine.run(token)).boxed());

        // HTTP API.
        let guard = Arc::new(api::guard::Guard::new(self.config.limits, self.metrics.clone()));
        let state = AppState {
            status: self.status_rx.clone(),
            commands: self.commands_tx.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            config: self.config.clone(),
            shutdown: work.clone(),
            writes: store_handle.clone(),
            vitals,
            guard: guard.clone(),
            tickets: api::ticket::TicketStore::new(),
        };
        let router = api::router(state);
        let http =
            serve(self.listener, router, self.tls.clone(), work.clone(), self.config.orchestrator.shutdown_timeout);
        spawn(Task::Http, sup.critical(Task::Http, http).boxed());
        let token = work.child_token();
        spawn(
            Task::ApiLimits,
            sup.restarting(Task::ApiLimits, token.clone(), move || forget_idle_clients(guard.clone(), token.clone()))
                .boxed(),
        );
        let (store, retention, token) = (self.store.clone(), self.config.audit_retention(), work.child_token());
        spawn(
            Task::AuditPrune,
            sup.restarting(Task::AuditPrune, token.clone(), move || {
                prune_audit(store.clone(), retention, token.clone())
            })
            .boxed(),
        );

        // Scheduler: housekeeping and the `[[schedule.drills]]`.
        let mut scheduler = JobScheduler::new().await.context("creating the scheduler")?;
        let store = self.store.clone();
        let retention = self.config.schedule.retention;
        let raw_retention = self.config.replication.raw_retention;
        let job = Job::new_async(self.config.schedule.housekeeping.as_str(), move |_id, _sched| {
            let store = store.clone();
            Box::pin(async move {
                match store.housekeeping(retention).await {
                    Ok(n) => info!(deleted = n, "housekeeping done"),
                    Err(e) => warn!(error = %e, "housekeeping failed"),
                }
                match store.roll_up_lag(raw_retention).await {
                    Ok(n) => info!(rolled_up = n, "lag samples rolled up into minutes"),
                    Err(e) => warn!(error = %e, "lag roll-up failed"),
                }
            })
        })
        .context("schedule.housekeeping is not a valid cron expression")?;
        scheduler.add(job).await.context("adding the housekeeping job")?;
        for d in &self.config.schedule.drills {
            let run = ScheduledRun {
                drill: Arc::new(d.clone()),
                config: self.config.clone(),
                status: self.status_rx.clone(),
                commands: self.commands_tx.clone(),
                writes: store_handle.clone(),
            };
            let job = Job::new_async_tz(d.cron.as_str(), d.timezone, move |_id, _sched| {
                let run = run.clone();
                Box::pin(async move { run.fire().await })
            })
            .with_context(|| format!("schedule.drills `{}`: invalid cron expression", d.name))?;
            scheduler.add(job).await.context("adding a scheduled drill")?;
            info!(schedule = %d.name, cron = %d.cron, tz = %d.timezone, "scheduled drill");
        }
        scheduler.start().await.context("starting the scheduler")?;

        info!(%addr, "orchestrator running");
        let failed = tokio::select! {
            () = cancel.cancelled() => None,
            Some(exit) = exits.recv() => Some(exit),
        };
        match &failed {
            None => info!("shutting down"),
            Some(exit) => {
                error!(task = %exit.task, exit = %exit.exit, "a critical task ended: shutting down so that the process is restarted")
            }
        }
        sup.stop();
        work.cancel();
        // Every step of the shutdown is bounded: a process that must exit to be restarted never
        // hangs on its way out.
        match tokio::time::timeout(SHUTDOWN_STEP, scheduler.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "scheduler did not stop cleanly"),
            Err(_) => warn!("scheduler did not stop in time; abandoned"),
        }
        tracker.close();
        let timeout = self.config.orchestrator.shutdown_timeout;
        if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
            let running: Vec<&str> = names.iter().filter(|(_, h)| !h.is_finished()).map(|(n, _)| n.as_str()).collect();
            error!(?running, "tasks still running after the shutdown timeout; abandoning them");
            for (_, h) in &names {
                h.abort();
            }
        }
        writer_cancel.cancel();
        if tokio::time::timeout(timeout + Duration::from_secs(1), writer_task).await.is_err() {
            error!("store writer did not finish flushing in time");
        }
        if tokio::time::timeout(SHUTDOWN_STEP, self.store.close()).await.is_err() {
            warn!("store connections not closed in time; abandoned");
        }
        info!("shutdown complete");
        // A critical task that panicked while stopping fails the run too.
        match failed.or_else(|| exits.try_recv().ok()) {
            Some(exit) => Err(SuperviseError::CriticalTaskEnded(exit).into()),
            None => Ok(()),
        }
    }
}

/// Serves the API on `listener` (over TLS when configured) until `cancel`, with each client's
/// address for the rate limits; in-flight requests get `drain` to finish.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: CancellationToken,
    drain: Duration,
) {
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(e) = server.await {
            error!(error = %e, "http server failed");
        }
        return;
    };
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        stop.graceful_shutdown(Some(drain));
    });
    let server = listener
        .into_std()
        .and_then(|l| axum_server::from_tcp_rustls(l, axum_server::tls_rustls::RustlsConfig::from_config(tls)));
    match server {
        Ok(server) => {
            if let Err(e) = server.handle(handle).serve(app).await {
                error!(error = %e, "https server failed");
            }
        }
        Err(e) => error!(error = %e, "https server could not take over the listener"),
    }
}

/// The rustls server configuration of `orchestrator.tls_cert` / `tls_key` (ring provider).
///
/// # Errors
/// When a file cannot be read or parsed, or the key does not belong to the certificate;
/// the message names the key, never the files' content.
fn tls_config(files: &crate::config::TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs =
        CertificateDer::pem_file_iter(&files.cert).and_then(|i| i.collect::<Result<Vec<_>, _>>()).map_err(|e| {
            anyhow::anyhow!("orchestrator.tls_cert: cannot read a PEM certificate from {}: {e}", files.cert.display())
        })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        anyhow::anyhow!("orchestrator.tls_key: cannot read a PEM private key from {}: {e}", files.key.display())
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions of the ring provider")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("orchestrator.tls_key does not fit orchestrator.tls_cert (give the key of the leaf certificate)")?;
    Ok(Arc::new(config))
}

/// How often the rate limits forget clients that went quiet.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// Keeps the rate limits' memory to the clients seen lately.
async fn forget_idle_clients(guard: Arc<api::guard::Guard>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(FORGET_IDLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => guard.forget_idle(std::time::Instant::now()),
        }
    }
}

/// Deletes audit entries older than `retention`: at start, then every hour (or every half
/// retention when that is shorter, at least each second).
async fn prune_audit(store: Store, retention: Duration, cancel: CancellationToken) {
    let every = (retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => match tokio::time::timeout(Duration::from_secs(60), store.prune_audit(retention)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => info!(deleted = n, retention = %humantime::format_duration(retention), "audit entries past their retention deleted"),
                Ok(Err(e)) => warn!(error = %e, "audit prune failed; retried at the next tick"),
                Err(_) => warn!("audit prune took over 60 s; retried at the next tick"),
            },
        }
    }
}

/// Opens `orchestrator.spill_dir` (when set) and reads back what a previous run left there.
fn open_spill(config: &Config) -> anyhow::Result<Option<(writer::Spill, Vec<crate::store::Write>)>> {
    let Some(dir) = &config.orchestrator.spill_dir else {
        warn!("orchestrator.spill_dir is not set: writes waiting for the store are kept in memory only");
        return Ok(None);
    };
    let (spill, left, replay) = writer::Spill::open(dir).context("opening the spill directory")?;
    if replay.writes > 0 || replay.torn || replay.unreadable > 0 {
        warn!(writes = replay.writes, torn = replay.torn, unreadable = replay.unreadable, dir = %dir.display(),
            "the spill file holds writes of a previous run: they are written first");
    }
    Ok(Some((spill, left)))
}

/// What the store remembers from the previous run (and the records of that run settled).
async fn resume_from_store(config: &Config, store: &Store) -> anyhow::Result<Resume> {
    let previous_start = store.previous_start().await.context("reading the previous start")?;
    let last = store.last_plan().await.context("reading the last plan")?;
    let maintenance = store.maintenance().await.context("reading maintenance")?.into_iter().collect();
    let hold = store.hold().await.context("reading the operator hold")?;
    let interrupted_drill = recover_drills(store).await.context("reading unfinished drills")?;
    for msg in store.settle_operations(last.as_ref().map(|p| p.plan.id)).await.context("settling operations")? {
        warn!(operation = %msg, "operation left open by the previous run");
        record_system_audit(store, "operation.recovered", &msg).await;
    }
    report_missed_drills(config, store, previous_start).await;
    let writer = store.last_promoted().await.context("reading the last promotion")?;
    Ok(Resume { plan: last.map(|p| p.plan), maintenance, hold, interrupted_drill, writer })
}

/// One scheduled drill's run: the leader starts it like an operator would, or records why not.
#[derive(Clone)]
struct ScheduledRun {
    drill: Arc<crate::drill::schedule::ScheduledDrill>,
    config: Arc<Config>,
    status: watch::Receiver<Arc<Status>>,
    commands: mpsc::Sender<Command>,
    writes: StoreHandle,
}

impl ScheduledRun {
    async fn fire(&self) {
        let now = chrono::Utc::now();
        let st = self.status.borrow().clone();
        if !st.leadership.leader {
            // Followers do not run drills and do not record them either: the leader does.
            return;
        }
        let skip = self.drill.blocked(now).or_else(|| {
            st.regions
                .iter()
                .find(|r| r.health != crate::health::Health::Up)
                .map(|r| format!("region {} is {}, not up: skipping", r.name, r.health))
        });
        let (action, outcome, details) = match skip {
            Some(why) => ("schedule.skipped", why, serde_json::json!({})),
            None => match self.start().await {
                Ok(id) => ("schedule.run", format!("started drill {id}"), serde_json::json!({ "drill_id": id })),
                Err(why) => ("schedule.refused", why, serde_json::json!({})),
            },
        };
        info!(schedule = %self.drill.name, action, outcome = %outcome, "scheduled drill");
        self.writes.send(crate::store::Write::Audit(crate::store::AuditRecord {
            id: uuid::Uuid::new_v4(),
            at: now,
            actor: format!("schedule:{}", self.drill.name),
            action: action.into(),
            target: self.drill.request.evacuate.clone().or(self.drill.request.target.clone()),
            outcome,
            request_id: None,
            details,
        }));
    }

    async fn start(&self) -> Result<crate::drill::DrillId, String> {
        let mut spec = crate::drill::validate(&self.config.policy, &self.drill.request).map_err(|e| e.to_string())?;
        spec.schedule = Some(self.drill.name.clone());
        let (reply, rx) = tokio::sync::oneshot::channel();
        let actor = format!("schedule:{}", self.drill.name);
        self.commands
            .send(Command::StartDrill { spec, actor, reply })
            .await
            .map_err(|_| "engine stopped".to_string())?;
        match rx.await {
            Ok(Ok(rec)) => Ok(rec.id),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("engine stopped".into()),
        }
    }
}

/// The newest unfinished live drill is rolled back by the engine at start-up; any
/// older one (there should be none) is marked interrupted here.
async fn recover_drills(store: &Store) -> Result<Option<crate::drill::DrillRecord>, crate::store::StoreError> {
    let mut unfinished = store.unfinished_drills().await?.into_iter();
    let newest = unfinished.next();
    for mut d in unfinished {
        d.state = crate::drill::DrillState::Interrupted;
        d.finished_at = Some(chrono::Utc::now());
        d.report.outcome_reason = Some("interrupted by a restart; a newer drill superseded it".into());
        store.write(&crate::store::Write::Drill(Box::new(d))).await?;
    }
    Ok(newest)
}

async fn record_system_audit(store: &Store, action: &str, what: &str) {
    let rec = crate::store::AuditRecord {
        id: uuid::Uuid::new_v4(),
        at: chrono::Utc::now(),
        actor: "system".into(),
        action: action.into(),
        target: None,
        outcome: what.into(),
        request_id: None,
        details: serde_json::json!({}),
    };
    if let Err(e) = store.write(&crate::store::Write::Audit(rec)).await {
        warn!(error = %e, "audit entry not written");
    }
}

/// Reports (once, never replays) scheduled drills that were due while no orchestrator ran them.
async fn report_missed_drills(config: &Config, store: &Store, previous_start: Option<chrono::DateTime<chrono::Utc>>) {
    let now = chrono::Utc::now();
    let Some(since) = previous_start else { return };
    for d in &config.schedule.drills {
        let last = store.last_scheduled_run(&d.name).await.ok().flatten();
        if let Some(due) = d.missed_run(now, last, since) {
            let msg = format!(
                "scheduled drill `{}` due at {due} did not run (orchestrator down or not leading); not replayed",
                d.name
            );
            warn!(schedule = %d.name, %due, "missed scheduled drill");
            let rec = crate::store::AuditRecord {
                id: uuid::Uuid::new_v4(),
                at: now,
                actor: format!("schedule:{}", d.name),
                action: "schedule.missed".into(),
                target: None,
                outcome: msg,
                request_id: None,
                details: serde_json::json!({ "due": due }),
            };
            if let Err(e) = store.write(&crate::store::Write::Audit(rec)).await {
                warn!(error = %e, "missed-run report not written");
            }
        }
    }
}

/// Applies the migrations once the store answers (it was down at start-up); the writer's
/// buffered records then go in.
async fn migrate_when_back(store: Store, cancel: CancellationToken) {
    loop {
        match store.migrate().await {
            Ok(()) => {
                info!("store reachable: migrations applied");
                return;
            }
            Err(e) => warn!(error = %e, "store still unreachable; migrations wait"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn empty_status(config: &Config, leadership: Leadership) -> Status {
    Status {
        generated_at: chrono::Utc::now(),
        vantage: config.orchestrator.vantage.clone(),
        leadership,
        regions: Vec::new(),
        plan: None,
        acting: crate::status::Acting { active: false, reasons: vec!["starting".into()], decided_at: None },
        alarms: Vec::new(),
        store: Default::default(),
        drift: Vec::new(),
        failed_over: false,
        drill: None,
        operator_hold: None,
        coordination: crate::status::CoordinationStatus {
            backend: None,
            quorum: config.policy.quorum,
            vantages: config.coordination.vantages.clone(),
        },
        writer: config
            .regions
            .iter()
            .find(|r| r.role == crate::region::Role::Primary)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| RegionName::new("primary")),
        promotion: Vec::new(),
    }
}
