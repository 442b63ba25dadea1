//! The lag sampler: on every interval, reads the primary's and each standby's
//! view of replication, writes the heartbeat, reconciles (pure
//! [`lag::reconcile`](crate::lag::reconcile)), and sends one
//! [`LagSample`] per standby to the engine and one batch to the store.
//!
//! Order within a tick matters: the primary's WAL position is read first and
//! the standbys' replay positions after it (so bytes never overestimate), and
//! the heartbeat is written last (so the standby has had a full interval to
//! replay the previous one).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use super::fence::{FenceError, fence, restore_logins};
use super::promotion::{PromotionStep, ReplicationCommand, StepKind, StepOutcome};
use crate::config::{Config, ReplicationConfig};
use crate::coord::{AlwaysLeader, Fence};
use crate::lag::LagSample;
use crate::lag::reconcile::{PrimaryView, ReplicaRow, StandbyView, Views, parse_lsn, reconcile};
use crate::pg_error::describe;
use crate::plan::Epoch;
use crate::region::{RegionName, Role};
use crate::store::Write;
use crate::store::writer::StoreHandle;

struct Member {
    name: RegionName,
    application_name: String,
    /// For connections of their own (the fence), apart from the pool.
    options: PgConnectOptions,
    pool: PgPool,
    catching_up_bytes: Option<u64>,
    dsn: secrecy::SecretString,
}

/// Samples the lag of every standby region.
pub struct LagSampler {
    /// The whole configuration: the policy answers the RPO gate before a promotion.
    config: Arc<Config>,
    cfg: ReplicationConfig,
    members: Vec<Member>,
    primary: RegionName,
    heartbeat_written: Option<DateTime<Utc>>,
    heartbeat_ready: bool,
    writer_id: String,
    tx: mpsc::Sender<LagSample>,
    store: Option<StoreHandle>,
    commands: Option<mpsc::Receiver<ReplicationCommand>>,
    steps: Option<mpsc::Sender<PromotionStep>>,
    /// Queries run since start (for the cost benchmark).
    pub queries: u64,
    /// Confirms leadership before each promotion step.
    fence: Arc<dyn Fence>,
}

impl LagSampler {
    /// A sampler over every region with a `[regions.postgres]` table; `None` when
    /// fewer than two regions have one (nothing replicates).
    pub fn new(config: &Arc<Config>, tx: mpsc::Sender<LagSample>, store: Option<StoreHandle>) -> Option<Self> {
        let cfg = config.replication.clone();
        let mut members = Vec::new();
        for r in &config.regions {
            let Some(pg) = &r.postgres else { continue };
            let Ok(opts) = PgConnectOptions::from_str(pg.dsn.expose_secret()) else {
                warn!(region = %r.name, "region postgres DSN does not parse; lag not collected");
                continue;
            };
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .min_connections(0)
                .acquire_timeout(cfg.timeout)
                .idle_timeout(Duration::from_secs(30))
                .connect_lazy_with(opts.clone().application_name("failover-orchestrator-lag"));
            members.push(Member {
                name: r.name.clone(),
                application_name: pg.application_name.clone(),
                options: opts,
                pool,
                catching_up_bytes: pg.degrade_lag.bytes,
                dsn: pg.dsn.clone(),
            });
        }
        let primary = config.regions.iter().find(|r| r.role == Role::Primary)?.name.clone();
        if members.len() < 2 || !members.iter().any(|m| m.name == primary) {
            return None;
        }
        Some(Self {
            config: Arc::clone(config),
            cfg,
            members,
            primary,
            heartbeat_written: None,
            heartbeat_ready: false,
            writer_id: config.orchestrator.vantage.to_string(),
            tx,
            store,
            commands: None,
            steps: None,
            queries: 0,
            fence: Arc::new(AlwaysLeader),
        })
    }

    /// Confirms leadership through `fence` before each promotion step.
    pub fn with_fence(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Takes promotion requests on `commands` and reports steps on `steps`.
    pub fn with_promotion(
        mut self,
        commands: mpsc::Receiver<ReplicationCommand>,
        steps: mpsc::Sender<PromotionStep>,
    ) -> Self {
        self.commands = Some(commands);
        self.steps = Some(steps);
        self
    }

    /// Which region is the writer now.
    pub fn primary(&self) -> &RegionName {
        &self.primary
    }

    /// Re-points lag tracking to a new primary (after a promotion).
    pub fn set_primary(&mut self, region: RegionName) {
        info!(%region, "lag tracking re-pointed to the new primary");
        self.primary = region;
        self.heartbeat_ready = false;
        self.heartbeat_written = None;
    }

    /// Samples until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut commands = self.commands.take();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
                Some(cmd) = async { match commands.as_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                    self.on_command(cmd).await;
                    continue;
                }
            }
            let samples = tokio::select! {
                _ = cancel.cancelled() => break,
                s = self.tick(Utc::now()) => s,
            };
            if let Some(store) = &self.store {
                store.send(Write::LagSamples(samples.clone()));
            }
            for s in samples {
                if self.tx.send(s).await.is_err() {
                    return;
                }
            }
        }
        for m in &self.members {
            m.pool.close().await;
        }
    }

    /// One collection: reads every view, writes the heartbeat, returns one sample per standby.
    #[instrument(skip_all)]
    pub async fn tick(&mut self, at: DateTime<Utc>) -> Vec<LagSample> {
        let primary_pool = self.members.iter().find(|m| m.name == self.primary).map(|m| m.pool.clone());
        let primary_view = match &primary_pool {
            Some(pool) => self.read_primary(pool).await,
            None => None,
        };
        let mut standby_views: BTreeMap<RegionName, Option<StandbyView>> = BTreeMap::new();
        let standbys: Vec<(RegionName, PgPool)> =
            self.members.iter().filter(|m| m.name != self.primary).map(|m| (m.name.clone(), m.pool.clone())).collect();
        let reads = standbys.iter().map(|(_, pool)| read_standby(pool, &self.cfg));
        let results = futures::future::join_all(reads).await;
        for ((name, _), (view, q)) in standbys.iter().zip(results) {
            self.queries += q;
            standby_views.insert(name.clone(), view);
        }
        let mut out = Vec::new();
        for m in self.members.iter().filter(|m| m.name != self.primary) {
            let standby = standby_views.get(&m.name).and_then(|v| v.as_ref());
            let views = Views {
                region: &m.name,
                application_name: &m.application_name,
                primary: primary_view.as_ref(),
                standby,
                heartbeat_written: self.heartbeat_written,
                catching_up_bytes: m.catching_up_bytes,
            };
            let sample = reconcile(&views, at);
            debug!(region = %m.name, bytes = ?sample.bytes, seconds = ?sample.seconds, state = ?sample.state, "lag");
            out.push(sample);
        }
        if self.cfg.heartbeat
            && primary_view.is_some()
            && let Some(pool) = primary_pool
        {
            self.write_heartbeat(&pool).await;
        }
        out
    }

    async fn on_command(&mut self, cmd: ReplicationCommand) {
        match cmd {
            ReplicationCommand::Promote { target, old_primary, epoch, reply } => {
                let steps = self.promote(&target, &old_primary, epoch).await;
                if let Some(tx) = &self.steps {
                    for s in &steps {
                        let _ = tx.send(s.clone()).await;
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(steps);
                }
            }
        }
    }

    /// Gate, fence, promote, unlock, re-point, track: see [`super::promotion`].
    #[instrument(skip_all, fields(target = %target, old_primary = %old_primary))]
    pub async fn promote(&mut self, target: &RegionName, old_primary: &RegionName, epoch: Epoch) -> Vec<PromotionStep> {
        let mut steps = Vec::new();
        let Some(t) = self.members.iter().find(|m| &m.name == target) else {
            steps.push(PromotionStep::failed(StepKind::Gate, target, "region has no database"));
            return steps;
        };
        let (t_pool, t_dsn) = (t.pool.clone(), t.dsn.clone());
        // 1. The RPO gate, now.
        let samples = self.tick(Utc::now()).await;
        let sample = samples.iter().find(|s| &s.region == target);
        match self.config.policy.failover_gate(target, sample.map(|s| s.reading()).as_ref()) {
            Ok(()) => steps.push(PromotionStep::ok(
                StepKind::Gate,
                target,
                format!(
                    "lag within limit: {:?} bytes, {:?} s",
                    sample.and_then(|s| s.bytes),
                    sample.and_then(|s| s.seconds)
                ),
            )),
            Err(why) => {
                warn!(%why, "promotion refused by the RPO gate");
                steps.push(PromotionStep::failed(StepKind::Gate, target, format!("refused: {why}")));
                return steps;
            }
        }
        // 2. Fence the old primary (only while this orchestrator leads).
        if let Err(e) = self.fence.confirm_epoch(epoch).await {
            steps.push(PromotionStep::failed(StepKind::Leadership, target, format!("not promoting: {e}")));
            return steps;
        }
        let fence_step = self.fence_old_primary(old_primary, target).await;
        let stop = fence_step.outcome == StepOutcome::Failed;
        steps.push(fence_step);
        if stop {
            return steps;
        }
        // 3. Promote (leadership confirmed again: the fence step may have taken seconds).
        if let Err(e) = self.fence.confirm_epoch(epoch).await {
            steps.push(PromotionStep::failed(StepKind::Leadership, target, format!("not promoting: {e}")));
            return steps;
        }
        let promote =
            sqlx::query_scalar::<_, bool>("SELECT pg_promote(wait => true, wait_seconds => 30)").fetch_one(&t_pool);
        let failed = match tokio::time::timeout(Duration::from_secs(35), promote).await {
            Ok(Ok(true)) => None,
            Ok(Ok(false)) => Some("pg_promote returned false (not promoted within 30 s)".to_string()),
            Ok(Err(e)) => Some(format!("pg_promote failed: {}", describe(&e))),
            Err(_) => Some("pg_promote timed out".to_string()),
        };
        if let Some(why) = failed {
            steps.push(PromotionStep::failed(StepKind::Promote, target, why));
            return steps;
        }
        steps.push(PromotionStep::ok(StepKind::Promote, target, "pg_promote: promoted"));
        // 4. The fence's lock replicated here before the promotion: give the logins back.
        let roles = &self.cfg.app_roles;
        if !roles.is_empty() {
            let names = roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
            steps.push(match restore_logins(&t_pool, roles, self.cfg.fence_timeout).await {
                Ok(()) => PromotionStep::ok(StepKind::Unlock, target, format!("application roles {names} may log in")),
                Err(e) => {
                    warn!(error = %e, "application logins not restored on the new primary");
                    PromotionStep::failed(StepKind::Unlock, target, e.to_string())
                }
            });
        }
        // 5. Re-point the other standbys.
        let others: Vec<(RegionName, PgPool, String)> = self
            .members
            .iter()
            .filter(|m| &m.name != target && &m.name != old_primary)
            .map(|m| (m.name.clone(), m.pool.clone(), m.application_name.clone()))
            .collect();
        for (name, pool, app) in others {
            let Some(conninfo) = super::promotion::primary_conninfo(&t_dsn, &app) else {
                steps.push(PromotionStep::failed(StepKind::Repoint, &name, "the new primary's DSN does not parse"));
                continue;
            };
            let work = async {
                sqlx::query(&format!("ALTER SYSTEM SET primary_conninfo = '{}'", conninfo.replace('\'', "''")))
                    .execute(&pool)
                    .await?;
                sqlx::query("SELECT pg_reload_conf()").execute(&pool).await?;
                Ok::<_, sqlx::Error>(())
            };
            steps.push(match tokio::time::timeout(self.cfg.timeout * 4, work).await {
                Ok(Ok(())) => PromotionStep::ok(StepKind::Repoint, &name, format!("now follows {target}")),
                Ok(Err(e)) => PromotionStep::failed(StepKind::Repoint, &name, describe(&e)),
                Err(_) => PromotionStep::failed(StepKind::Repoint, &name, "timed out"),
            });
        }
        // 6. Track lag against the new primary.
        self.set_primary(target.clone());
        steps.push(PromotionStep::ok(StepKind::Track, target, "lag now measured against the new primary"));
        info!(steps = steps.len(), "promotion finished");
        steps
    }

    /// The fence step: `ok` when fenced, `skipped` when unreachable (the promotion goes on),
    /// `failed` when reachable but not fenced (the promotion stops).
    async fn fence_old_primary(&self, old_primary: &RegionName, target: &RegionName) -> PromotionStep {
        let Some(old) = self.members.iter().find(|m| &m.name == old_primary) else {
            return PromotionStep::new(
                StepKind::Fence,
                old_primary,
                StepOutcome::Skipped,
                "no database configured for the old primary: not fenced",
            );
        };
        let roles = &self.cfg.app_roles;
        match fence(&old.options, roles, self.cfg.fence_timeout).await {
            Ok(fenced) => {
                info!(locked = fenced.locked.len(), terminated = fenced.terminated, "old primary fenced");
                PromotionStep::ok(StepKind::Fence, old_primary, fenced.describe(roles))
            }
            Err(e @ FenceError::Unreachable { .. }) => {
                warn!(error = %e, "old primary unreachable: promoting without a fence");
                PromotionStep::new(
                    StepKind::Fence,
                    old_primary,
                    StepOutcome::Skipped,
                    format!(
                        "old primary {e}; promoting {target} anyway. It must not come back as a primary: \
                         before starting it again, re-clone it as a standby of {target} (pg_basebackup, or \
                         pg_rewind + standby.signal)"
                    ),
                )
            }
            Err(e) => {
                warn!(error = %e, "old primary reachable but not fenced: not promoting");
                PromotionStep::failed(
                    StepKind::Fence,
                    old_primary,
                    format!("old primary {e}. Not promoting: {target} stays a standby and {old_primary} the writer"),
                )
            }
        }
    }

    async fn read_primary(&mut self, pool: &PgPool) -> Option<PrimaryView> {
        self.queries += 1;
        let q = sqlx::query(
            "SELECT pg_current_wal_lsn()::text AS current,
                    application_name::text, state::text, sync_state::text, replay_lsn::text,
                    EXTRACT(epoch FROM replay_lag)::float8 AS replay_lag
               FROM (SELECT 1) one LEFT JOIN pg_stat_replication ON true",
        );
        let rows = match tokio::time::timeout(self.cfg.timeout, q.fetch_all(pool)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                debug!(error = %describe(&e), "primary view unavailable");
                return None;
            }
            Err(_) => {
                debug!("primary view timed out");
                return None;
            }
        };
        let current = rows.first().and_then(|r| r.get::<Option<String>, _>("current")).and_then(|s| parse_lsn(&s))?;
        let replicas = rows
            .iter()
            .filter_map(|r| {
                Some(ReplicaRow {
                    application_name: r.get::<Option<String>, _>("application_name")?,
                    state: r.get::<Option<String>, _>("state").unwrap_or_default(),
                    sync_state: r.get::<Option<String>, _>("sync_state").unwrap_or_default(),
                    replay_lsn: r.get::<Option<String>, _>("replay_lsn").and_then(|s| parse_lsn(&s)),
                    replay_lag: r.get::<Option<f64>, _>("replay_lag"),
                })
            })
            .collect();
        Some(PrimaryView { current_lsn: current, replicas })
    }

    async fn write_heartbeat(&mut self, pool: &PgPool) {
        let table = self.cfg.heartbeat_table.clone();
        let writer = self.writer_id.clone();
        let ready = self.heartbeat_ready;
        let work = async move {
            let mut tx = pool.begin().await?;
            // Never wait for a synchronous standby: the heartbeat must not block when it is down.
            sqlx::query("SET LOCAL synchronous_commit = local").execute(&mut *tx).await?;
            if !ready {
                sqlx::query(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (id integer PRIMARY KEY, at timestamptz NOT NULL, writer text NOT NULL)"
                ))
                .execute(&mut *tx)
                .await?;
            }
            let at: DateTime<Utc> = sqlx::query_scalar(&format!(
                "INSERT INTO {table} (id, at, writer) VALUES (1, clock_timestamp(), $1)
                 ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at, writer = EXCLUDED.writer RETURNING at"
            ))
            .bind(writer)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(at)
        };
        self.queries += 3;
        match tokio::time::timeout(self.cfg.timeout, work).await {
            Ok(Ok(at)) => {
                self.heartbeat_written = Some(at);
                self.heartbeat_ready = true;
            }
            Ok(Err(e)) => warn!(error = %describe(&e), "heartbeat write failed"),
            Err(_) => warn!("heartbeat write timed out"),
        }
    }
}

/// Reads a standby's own view; returns it (None when unreachable) and the number of queries run.
async fn read_standby(pool: &PgPool, cfg: &ReplicationConfig) -> (Option<StandbyView>, u64) {
    let q = sqlx::query(
        "SELECT pg_is_in_recovery() AS in_recovery,
                pg_last_wal_receive_lsn()::text AS receive,
                pg_last_wal_replay_lsn()::text AS replay,
                pg_last_xact_replay_timestamp() AS last_replay,
                CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused,
                (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver,
                now() AS now",
    );
    let row = match tokio::time::timeout(cfg.timeout, q.fetch_one(pool)).await {
        Ok(Ok(r)) => r,
        _ => return (None, 1),
    };
    let hb_sql = format!("SELECT at FROM {} WHERE id = 1", cfg.heartbeat_table);
    let hb = sqlx::query_scalar::<_, DateTime<Utc>>(&hb_sql);
    let heartbeat = match tokio::time::timeout(cfg.timeout, hb.fetch_optional(pool)).await {
        Ok(Ok(v)) => v,
        _ => None, // table not replicated yet
    };
    let view = StandbyView {
        in_recovery: row.get("in_recovery"),
        receive_lsn: row.get::<Option<String>, _>("receive").and_then(|s| parse_lsn(&s)),
        replay_lsn: row.get::<Option<String>, _>("replay").and_then(|s| parse_lsn(&s)),
        last_replay_at: row.get("last_replay"),
        paused: row.get("paused"),
        receiver_status: row.get("receiver"),
        now: row.get("now"),
        heartbeat,
    };
    (Some(view), 2)
}
