//! Coordination: who leads, and the fencing epoch every plan carries.
//!
//! Only the leader applies plans; every other orchestrator observes. This
//! first mode is `single`: one orchestrator, always the leader, taking a new
//! epoch from the store at every start so a plan decided before a restart can
//! never overwrite one decided after it. Multi-orchestrator modes (PostgreSQL
//! lease, etcd) plug in behind [`Leadership`].

use serde::Serialize;

use crate::plan::Epoch;
use crate::store::{Store, StoreError};

/// This orchestrator's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Leadership {
    /// Whether this orchestrator may apply plans.
    pub leader: bool,
    /// The fencing epoch of its plans.
    pub epoch: Epoch,
}

/// Single-orchestrator mode: lead, with a fresh epoch from the store.
///
/// # Errors
/// [`StoreError`] when the store cannot hand out an epoch.
pub async fn single(store: &Store, holder: &str) -> Result<Leadership, StoreError> {
    let epoch = store.bump_epoch(holder).await?;
    Ok(Leadership { leader: true, epoch })
}
