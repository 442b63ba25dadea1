//! The etcd backend: one session at a time (a lease, a watch, a campaign), rebuilt
//! from scratch whenever etcd stops answering.
//!
//! Keys under `prefix`:
//! - `leader`: `{region, api}` on the leader's lease, created only when absent
//!   (`create_revision == 0`); its create revision is the **epoch**, which grows
//!   across the cluster with every new leader;
//! - `views/<region>`: each orchestrator's [`View`], on its lease, re-put every
//!   third of `view_ttl` so the others can tell a live view from a stale one;
//! - `plan`: the last [`PublishedPlan`], written only by [`EtcdFence::confirm`] in a
//!   transaction that first compares the leader key's create revision with the
//!   plan's epoch — a deposed leader's write fails there.
//!
//! A session ends (and this orchestrator steps down at once) when the lease is not
//! renewed before `lease_ttl` minus a safety margin has passed since the last
//! renewal was sent, when the keep-alive or watch stream breaks, or when a
//! request times out — except a view's re-put: a slow write (etcd fsyncing under
//! load, or electing its own leader) costs no leadership while the lease lives,
//! and the next heartbeat puts the view again. On shutdown the lease is revoked so that a successor is
//! elected without waiting for the TTL (rolling restarts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::view::View;
use super::{CoordHealth, Fence, FenceError, Leadership, Links, Peer, Peers, PublishedPlan, Standing};
use crate::config::{Backend, Config};
use crate::plan::{Epoch, TrafficPlan};
use crate::region::RegionName;
use crate::retry::Backoff;

/// The value of the leader key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaderValue {
    region: RegionName,
    api: String,
}

struct Keys {
    leader: String,
    plan: String,
    views: String,
    root: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            leader: format!("{prefix}/leader"),
            plan: format!("{prefix}/plan"),
            views: format!("{prefix}/views/"),
            root: format!("{prefix}/"),
        }
    }

    fn view(&self, region: &RegionName) -> String {
        format!("{}{region}", self.views)
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    #[error("lease not renewed within its TTL")]
    LeaseLost,
    #[error("{0} stream ended")]
    StreamEnded(&'static str),
}

/// Shared by the session task and the fence.
struct Shared {
    keys: Keys,
    me: RegionName,
    op_timeout: Duration,
    client: watch::Sender<Option<Client>>,
    standing: watch::Sender<Standing>,
    requests: AtomicU64,
}

impl Shared {
    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the etcd sessions; built with [`EtcdCoordinator::new`], run with [`EtcdCoordinator::run`].
pub struct EtcdCoordinator {
    shared: Arc<Shared>,
    endpoints: Vec<String>,
    lease_ttl: Duration,
    view_ttl: Duration,
    api: String,
    peers: watch::Sender<Arc<Peers>>,
    plans: mpsc::Sender<PublishedPlan>,
    own_view: watch::Receiver<Option<View>>,
    health: watch::Sender<CoordHealth>,
    /// The last plan seen in etcd, handed to a new leader.
    last_plan: Option<PublishedPlan>,
    /// Leases this process granted in earlier sessions: a leader key still on one of them
    /// is our own stale claim (the session broke before etcd expired it), revoked at once.
    /// A key on anyone else's lease, even a lease of a process of our own region, is left
    /// to expire.
    earlier_leases: Vec<i64>,
}

/// The fence of the etcd backend.
pub struct EtcdFence {
    shared: Arc<Shared>,
}

impl EtcdCoordinator {
    /// The coordinator and the links the rest of the orchestrator uses. None when the
    /// configuration's backend is not etcd.
    pub fn new(config: &Config) -> Option<(EtcdCoordinator, Links)> {
        let Backend::Etcd { endpoints } = &config.coordination.backend else { return None };
        let me = config.orchestrator.vantage.clone();
        let (standing_tx, standing) = watch::channel(Standing { leadership: Leadership::none("etcd"), plan: None });
        let (client, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            keys: Keys::new(&config.coordination.prefix),
            me,
            op_timeout: (config.coordination.lease_ttl / 3).max(Duration::from_millis(300)),
            client,
            standing: standing_tx,
            requests: AtomicU64::new(0),
        });
        let (peers_tx, peers) = watch::channel(Arc::new(Peers::new()));
        let (plans_tx, plans) = mpsc::channel(64);
        let (view, own_view) = watch::channel(None);
        let (health_tx, health) = watch::channel(CoordHealth {
            backend: "etcd",
            connected: false,
            since: Utc::now(),
            last_error: None,
            endpoints: endpoints.iter().map(|e| host_port(e)).collect(),
            requests: 0,
        });
        let fence: Arc<dyn Fence> = Arc::new(EtcdFence { shared: shared.clone() });
        let coordinator = EtcdCoordinator {
            shared,
            endpoints: endpoints.clone(),
            lease_ttl: config.coordination.lease_ttl,
            view_ttl: config.coordination.view_ttl,
            api: config.coordination.advertise.clone(),
            peers: peers_tx,
            plans: plans_tx,
            own_view,
            health: health_tx,
            last_plan: None,
            earlier_leases: Vec::new(),
        };
        Some((coordinator, Links { standing, peers, plans, view, health, fence }))
    }

    /// Keeps a session with etcd until cancelled; steps down whenever the session breaks.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        while !cancel.is_cancelled() {
            let started = Instant::now();
            let end = self.session(&cancel).await;
            self.step_down();
            self.peers.send_replace(Arc::new(Peers::new()));
            match end {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, "etcd session ended: not leading, views withdrawn until it is back");
                    self.set_health(false, Some(e.to_string()));
                    if started.elapsed() > self.lease_ttl {
                        backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
                    }
                    let _ = backoff.next_wait();
                    let wait = backoff.ceiling().mul_f64(0.5 + rand::random::<f64>() / 2.0);
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        info!("etcd coordination stopped");
    }

    fn step_down(&self) {
        self.shared.client.send_replace(None);
        let was = self.shared.standing.borrow().leadership.leader;
        self.shared.standing.send_modify(|s| {
            s.leadership.leader = false;
            s.leadership.holder = None;
            s.leadership.leader_api = None;
        });
        if was {
            warn!("stepped down: no longer the leader");
        }
    }

    fn set_health(&self, connected: bool, error: Option<String>) {
        let requests = self.shared.requests.load(Ordering::Relaxed);
        self.health.send_modify(|h| {
            if h.connected != connected {
                h.since = Utc::now();
            }
            h.connected = connected;
            if error.is_some() || connected {
                h.last_error = error;
            }
            h.requests = requests;
        });
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, SessionEnd> {
        self.shared.count();
        match tokio::time::timeout(self.shared.op_timeout, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(SessionEnd::Timeout(self.shared.op_timeout, what)),
        }
    }

    /// One session: connect, lease, snapshot, watch, campaign, then serve until it breaks.
    async fn session(&mut self, cancel: &CancellationToken) -> Result<(), SessionEnd> {
        let t = self.shared.op_timeout;
        let opts = ConnectOptions::new()
            .with_connect_timeout(t)
            .with_timeout(t)
            .with_keep_alive(t, t)
            .with_require_leader(true);
        let mut client = self.timed("connect", Client::connect(&self.endpoints, Some(opts))).await?;
        let ttl_secs = self.lease_ttl.as_secs().max(1) as i64;
        let lease = self.timed("lease grant", client.lease_grant(ttl_secs, None)).await?;
        let lease_id = lease.id();
        if self.earlier_leases.len() >= 16 {
            self.earlier_leases.remove(0);
        }
        self.earlier_leases.push(lease_id);
        let mut renewed_at = Instant::now();
        let (mut keeper, mut keep_alive) = self.timed("keep-alive", client.lease_keep_alive(lease_id)).await?;
        let keys = &self.shared.keys;
        let root = keys.root.clone();
        let snapshot = self.timed("snapshot", client.get(root.clone(), Some(GetOptions::new().with_prefix()))).await?;
        let revision = snapshot.header().map_or(0, |h| h.revision());
        let mut peers = Peers::new();
        let mut leader_seen = false;
        for kv in snapshot.kvs() {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            if key == keys.leader {
                if self.is_own_stale_claim(kv.lease(), lease_id) {
                    info!(
                        stale_lease = kv.lease(),
                        "our own leadership from a broken session is still in etcd; revoking it"
                    );
                    self.timed("revoke stale lease", client.lease_revoke(kv.lease())).await?;
                    continue;
                }
                leader_seen = true;
                self.follow(kv.value(), kv.create_revision());
            } else if key == keys.plan {
                if let Ok(p) = serde_json::from_slice::<PublishedPlan>(kv.value()) {
                    self.last_plan = Some(p);
                }
            } else if let Some(v) = self.peer_view(&key, kv.value()) {
                peers.insert(v.vantage.clone(), Peer { view: v, received: Instant::now() });
            }
        }
        self.peers.send_replace(Arc::new(peers.clone()));
        let mut watch = self
            .timed(
                "watch",
                client.watch(root, Some(WatchOptions::new().with_prefix().with_start_revision(revision + 1))),
            )
            .await?;
        self.shared.client.send_replace(Some(client.clone()));
        self.set_health(true, None);
        info!(lease = lease_id, ttl_s = ttl_secs, "etcd session established");
        if !leader_seen {
            self.campaign(&mut client, lease_id).await?;
        }
        let mut own_view = self.own_view.clone();
        self.put_view(&mut client, lease_id, &mut own_view).await?;

        let mut renew = tokio::time::interval(self.lease_ttl / 3);
        renew.reset();
        let mut heartbeat = tokio::time::interval(self.view_ttl / 3);
        heartbeat.reset();
        let mut pending_renewal: Option<Instant> = None;
        // Step down a little before the server could expire the lease.
        let margin = (self.lease_ttl / 10).max(Duration::from_millis(100));
        loop {
            let deadline = renewed_at + self.lease_ttl - margin;
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.step_down();
                    let _ = tokio::time::timeout(t, client.lease_revoke(lease_id)).await;
                    info!("lease revoked on shutdown: a successor is elected at once");
                    return Ok(());
                }
                _ = tokio::time::sleep_until(deadline) => return Err(SessionEnd::LeaseLost),
                _ = renew.tick() => {
                    pending_renewal.get_or_insert_with(Instant::now);
                    self.timed("keep-alive", keeper.keep_alive()).await?;
                }
                msg = keep_alive.message() => {
                    match msg? {
                        Some(r) if r.ttl() > 0 => {
                            renewed_at = pending_renewal.take().unwrap_or_else(Instant::now);
                        }
                        Some(_) => return Err(SessionEnd::LeaseLost),
                        None => return Err(SessionEnd::StreamEnded("keep-alive")),
                    }
                }
                msg = watch.message() => {
                    let Some(resp) = msg? else { return Err(SessionEnd::StreamEnded("watch")) };
                    if resp.canceled() {
                        return Err(SessionEnd::StreamEnded("watch (cancelled)"));
                    }
                    let mut leader_gone = false;
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key()).to_string();
                        let put = ev.event_type() == EventType::Put;
                        if key == self.shared.keys.leader {
                            if put {
                                self.follow(kv.value(), kv.create_revision());
                            } else {
                                // A delete older than our own claim (our stale key revoked
                                // after we were elected) says nothing about us.
                                let s = self.shared.standing.borrow();
                                let older = s.leadership.leader && kv.mod_revision() < s.leadership.epoch.0;
                                leader_gone |= !older;
                            }
                        } else if key == self.shared.keys.plan && put {
                            if let Ok(p) = serde_json::from_slice::<PublishedPlan>(kv.value()) {
                                self.last_plan = Some(p.clone());
                                let _ = self.plans.try_send(p);
                            }
                        } else if let Some(region) = key.strip_prefix(&self.shared.keys.views) {
                            if put {
                                if let Some(v) = self.peer_view(&key, kv.value()) {
                                    peers.insert(v.vantage.clone(), Peer { view: v, received: Instant::now() });
                                }
                            } else {
                                peers.remove(&RegionName::new(region));
                            }
                            self.peers.send_replace(Arc::new(peers.clone()));
                        }
                    }
                    if leader_gone {
                        self.shared.standing.send_modify(|s| {
                            s.leadership.leader = false;
                            s.leadership.holder = None;
                        });
                        self.campaign(&mut client, lease_id).await?;
                    }
                }
                Ok(()) = own_view.changed() => self.put_view(&mut client, lease_id, &mut own_view).await?,
                _ = heartbeat.tick() => {
                    self.put_view(&mut client, lease_id, &mut own_view).await?;
                    self.set_health(true, None);
                }
            }
        }
    }

    /// Whether a leader key on `key_lease` is this process's own claim from an earlier session.
    fn is_own_stale_claim(&self, key_lease: i64, lease_id: i64) -> bool {
        key_lease != lease_id && self.earlier_leases.contains(&key_lease)
    }

    /// A peer's view from its key (None for this orchestrator's own or an unreadable one).
    fn peer_view(&self, key: &str, value: &[u8]) -> Option<View> {
        let region = key.strip_prefix(&self.shared.keys.views)?;
        if region == self.shared.me.as_str() {
            return None;
        }
        match serde_json::from_slice::<View>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                warn!(key, error = %e, "unreadable view in etcd; ignored");
                None
            }
        }
    }

    /// Records who leads, from the leader key.
    fn follow(&self, value: &[u8], create_revision: i64) {
        let Ok(v) = serde_json::from_slice::<LeaderValue>(value) else {
            warn!("unreadable leader key in etcd");
            return;
        };
        let mine = v.region == self.shared.me
            && self.shared.standing.borrow().leadership.leader
            && self.shared.standing.borrow().leadership.epoch == Epoch(create_revision);
        if mine {
            return;
        }
        self.shared.standing.send_modify(|s| {
            s.leadership = Leadership {
                leader: false,
                epoch: Epoch(create_revision),
                holder: Some(v.region.clone()),
                leader_api: Some(v.api.clone()),
                backend: "etcd",
            };
        });
    }

    /// Tries to create the leader key on our lease; follows the holder otherwise.
    async fn campaign(&self, client: &mut Client, lease_id: i64) -> Result<(), SessionEnd> {
        let keys = &self.shared.keys;
        let value = serde_json::to_vec(&LeaderValue { region: self.shared.me.clone(), api: self.api.clone() })
            .unwrap_or_default();
        let txn = Txn::new()
            .when(vec![Compare::create_revision(keys.leader.clone(), CompareOp::Equal, 0)])
            .and_then(vec![TxnOp::put(keys.leader.clone(), value, Some(PutOptions::new().with_lease(lease_id)))])
            .or_else(vec![TxnOp::get(keys.leader.clone(), None)]);
        let resp = self.timed("campaign", client.txn(txn)).await?;
        if resp.succeeded() {
            let epoch = Epoch(resp.header().map_or(0, |h| h.revision()));
            info!(%epoch, "elected leader");
            let plan = self.last_plan.clone();
            self.shared.standing.send_replace(Standing {
                leadership: Leadership {
                    leader: true,
                    epoch,
                    holder: Some(self.shared.me.clone()),
                    leader_api: Some(self.api.clone()),
                    backend: "etcd",
                },
                plan,
            });
        } else {
            for op in resp.op_responses() {
                if let TxnOpResponse::Get(g) = op
                    && let Some(kv) = g.kvs().first()
                {
                    if self.is_own_stale_claim(kv.lease(), lease_id) {
                        // Our own claim from a broken session: revoke it; its delete
                        // event brings us back here.
                        self.timed("revoke stale lease", client.lease_revoke(kv.lease())).await?;
                    } else {
                        self.follow(kv.value(), kv.create_revision());
                    }
                }
            }
        }
        Ok(())
    }

    async fn put_view(
        &self,
        client: &mut Client,
        lease_id: i64,
        own_view: &mut watch::Receiver<Option<View>>,
    ) -> Result<(), SessionEnd> {
        let Some(mut view) = own_view.borrow_and_update().clone() else { return Ok(()) };
        view.at = Utc::now();
        let key = self.shared.keys.view(&self.shared.me);
        let value = serde_json::to_vec(&view).unwrap_or_default();
        match self.timed("put view", client.put(key, value, Some(PutOptions::new().with_lease(lease_id)))).await {
            Ok(_) => Ok(()),
            // The lease, not one slow write, decides leadership: its deadline still ends the
            // session if etcd is really gone.
            Err(e @ SessionEnd::Timeout(..)) => {
                warn!(error = %e, "view not published in time; the next heartbeat puts it again");
                self.set_health(true, Some(e.to_string()));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Fence for EtcdFence {
    async fn confirm(&self, plan: &TrafficPlan) -> Result<(), FenceError> {
        let published = PublishedPlan { plan: plan.clone(), leader: self.shared.me.clone() };
        let value = serde_json::to_vec(&published).map_err(|e| FenceError::Unreachable(e.to_string()))?;
        self.fenced_txn(plan.epoch, vec![TxnOp::put(self.shared.keys.plan.clone(), value, None)]).await
    }

    async fn confirm_epoch(&self, epoch: Epoch) -> Result<(), FenceError> {
        self.fenced_txn(epoch, vec![]).await
    }
}

impl EtcdFence {
    /// Runs `ops` only if the leader key still carries `epoch` (this orchestrator's own).
    async fn fenced_txn(&self, epoch: Epoch, ops: Vec<TxnOp>) -> Result<(), FenceError> {
        let leadership = self.shared.standing.borrow().leadership.clone();
        if !leadership.leader {
            return Err(FenceError::NotLeader { holder: leadership.holder });
        }
        if epoch != leadership.epoch {
            return Err(FenceError::StaleEpoch { plan: epoch, current: leadership.epoch });
        }
        let Some(mut client) = self.shared.client.borrow().clone() else {
            return Err(FenceError::Unreachable("no etcd session".into()));
        };
        let txn = Txn::new()
            .when(vec![Compare::create_revision(self.shared.keys.leader.clone(), CompareOp::Equal, epoch.0)])
            .and_then(ops);
        self.shared.count();
        match tokio::time::timeout(self.shared.op_timeout, client.txn(txn)).await {
            Ok(Ok(r)) if r.succeeded() => Ok(()),
            Ok(Ok(_)) => {
                self.shared.standing.send_modify(|s| s.leadership.leader = false);
                Err(FenceError::Lost(epoch))
            }
            Ok(Err(e)) => Err(FenceError::Unreachable(e.to_string())),
            Err(_) => Err(FenceError::Unreachable(format!("no answer within {:?}", self.shared.op_timeout))),
        }
    }
}

/// `host:port` of an endpoint URL (a URL may carry credentials: never shown whole).
fn host_port(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}:{}", u.host_str().unwrap_or("?"), u.port_or_known_default().unwrap_or(0)),
        Err(_) => "?".into(),
    }
}
