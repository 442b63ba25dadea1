//! Coordination: who leads, the fencing epoch every plan carries, and the
//! views the orchestrators share.
//!
//! Only the leader applies plans; every other orchestrator observes. Two backends:
//! - `single`: one orchestrator, always the leader, taking a new epoch from the
//!   store at every start so a plan decided before a restart can never overwrite
//!   one decided after it;
//! - `etcd` ([`etcd`]): one orchestrator per region. The leader key lives on the
//!   orchestrator's lease and its create revision is the epoch; every view is
//!   published on the lease (it disappears when its orchestrator is cut off);
//!   before each provider write the leader confirms its key and publishes the plan
//!   in one transaction ([`Fence`]).
//!
//! The engine sees both through [`Links`]: the standing (leadership), the peers'
//! views, the plans seen in etcd and a sender for its own view. [`view`] holds
//! the pure quorum rule.

pub mod etcd;
pub mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::plan::{Epoch, TrafficPlan};
use crate::region::RegionName;
use crate::store::{Store, StoreError};
use view::View;

/// This orchestrator's standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leadership {
    /// Whether this orchestrator may apply plans.
    pub leader: bool,
    /// The fencing epoch: this orchestrator's own when it leads, the leader's otherwise.
    pub epoch: Epoch,
    /// The region whose orchestrator leads (None: nobody known to lead).
    pub holder: Option<RegionName>,
    /// The leader's API URL, for followers to point operators at.
    pub leader_api: Option<String>,
    /// `single` or `etcd`.
    pub backend: &'static str,
}

impl Leadership {
    /// Nobody known to lead (etcd unreachable, or before the first election).
    pub fn none(backend: &'static str) -> Self {
        Self { leader: false, epoch: Epoch(0), holder: None, leader_api: None, backend }
    }
}

/// A plan as published in etcd, with the region of the orchestrator that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedPlan {
    /// The plan.
    pub plan: TrafficPlan,
    /// The leader that decided it.
    pub leader: RegionName,
}

/// The standing and the plan etcd held when it began (a new leader carries it on).
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Leadership.
    pub leadership: Leadership,
    /// The last plan published in etcd when this standing began.
    pub plan: Option<PublishedPlan>,
}

/// A peer's view and when it arrived (freshness uses the receiver's clock).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The view.
    pub view: View,
    /// When this orchestrator received it.
    pub received: Instant,
}

/// Views of the other orchestrators, by vantage.
pub type Peers = BTreeMap<RegionName, Peer>;

/// The coordination backend's own health, for the status page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoordHealth {
    /// `single` or `etcd`.
    pub backend: &'static str,
    /// Whether this orchestrator holds a live session (lease) with the etcd majority.
    pub connected: bool,
    /// Since when `connected` has its value.
    pub since: DateTime<Utc>,
    /// The last error talking to etcd (secret-free).
    pub last_error: Option<String>,
    /// The etcd endpoints (host:port).
    pub endpoints: Vec<String>,
    /// etcd requests made so far.
    pub requests: u64,
}

/// Why a write was refused by the fence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FenceError {
    /// This orchestrator does not lead.
    #[error("not the leader (leader: {})", holder.as_ref().map_or("unknown", |h| h.as_str()))]
    NotLeader {
        /// Who leads, if known.
        holder: Option<RegionName>,
    },
    /// The plan was decided in an older epoch than the one this orchestrator holds now.
    #[error("plan from epoch {plan} but this orchestrator is at epoch {current}")]
    StaleEpoch {
        /// The plan's epoch.
        plan: Epoch,
        /// The current one.
        current: Epoch,
    },
    /// etcd says another leader took over (the leader key is gone or newer).
    #[error("leadership lost: the leader key no longer carries epoch {0}")]
    Lost(Epoch),
    /// etcd could not confirm in time.
    #[error("cannot confirm leadership with etcd: {0}")]
    Unreachable(String),
}

/// Confirms leadership immediately before a provider write or a promotion step.
#[async_trait]
pub trait Fence: Send + Sync {
    /// Ok when this orchestrator still leads in `plan.epoch`; with etcd the plan is published in the same transaction.
    ///
    /// # Errors
    /// [`FenceError`] when the write must not happen.
    async fn confirm(&self, plan: &TrafficPlan) -> Result<(), FenceError>;
}

/// The single backend's fence: this orchestrator always leads.
pub struct AlwaysLeader;

#[async_trait]
impl Fence for AlwaysLeader {
    async fn confirm(&self, _plan: &TrafficPlan) -> Result<(), FenceError> {
        Ok(())
    }
}

/// What the engine and the applier get from the coordination backend.
pub struct Links {
    /// Leadership, changing over time.
    pub standing: watch::Receiver<Standing>,
    /// The other orchestrators' views.
    pub peers: watch::Receiver<Arc<Peers>>,
    /// Plans published in etcd (every orchestrator records them).
    pub plans: mpsc::Receiver<PublishedPlan>,
    /// Where this orchestrator's own view goes.
    pub view: watch::Sender<Option<View>>,
    /// The backend's health.
    pub health: watch::Receiver<CoordHealth>,
    /// The fence the applier and promotions call.
    pub fence: Arc<dyn Fence>,
}

impl Links {
    /// Links of the single backend: always the leader in `epoch`, no peers, no published plans.
    pub fn single(epoch: Epoch, me: RegionName) -> (Links, SingleKeep) {
        let leadership =
            Leadership { leader: true, epoch, holder: Some(me), leader_api: None, backend: "single" };
        let (standing_tx, standing) = watch::channel(Standing { leadership, plan: None });
        let (peers_tx, peers) = watch::channel(Arc::new(Peers::new()));
        let (plans_tx, plans) = mpsc::channel(1);
        let (view, view_rx) = watch::channel(None);
        let (health_tx, health) = watch::channel(CoordHealth {
            backend: "single",
            connected: true,
            since: Utc::now(),
            last_error: None,
            endpoints: vec![],
            requests: 0,
        });
        let keep = SingleKeep { _standing: standing_tx, _peers: peers_tx, _plans: plans_tx, _view: view_rx, _health: health_tx };
        (Links { standing, peers, plans, view, health, fence: Arc::new(AlwaysLeader) }, keep)
    }
}

/// Keeps the single backend's channels open for as long as the orchestrator runs.
pub struct SingleKeep {
    _standing: watch::Sender<Standing>,
    _peers: watch::Sender<Arc<Peers>>,
    _plans: mpsc::Sender<PublishedPlan>,
    _view: watch::Receiver<Option<View>>,
    _health: watch::Sender<CoordHealth>,
}

/// Single-orchestrator mode: lead, with a fresh epoch from the store.
///
/// # Errors
/// [`StoreError`] when the store cannot hand out an epoch.
pub async fn single(store: &Store, holder: &str) -> Result<Epoch, StoreError> {
    store.bump_epoch(holder).await
}
