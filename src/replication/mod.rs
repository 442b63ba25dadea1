//! Replication of the regions' databases: collecting every standby's lag and
//! promoting a standby on failover. The I/O half of lag: the values it produces
//! ([`LagSample`](crate::lag::LagSample)) and the pure maths that reconcile the
//! views into them live in [`crate::lag`], which the store and the status read
//! without depending on this module.
//!
//! The [`sampler`] queries the primary and every standby on an interval and
//! sends one sample per standby to the engine (which turns it into the decision
//! core's [`LagReading`](crate::lag::LagReading) for the RPO gate and publishes
//! it in the status); [`promotion`] describes the steps of a promotion the
//! sampler carries out on the engine's command, and [`fence`] how the old primary is
//! fenced before it (and the application's logins given back on the new primary after).

pub mod fence;
pub mod promotion;
pub mod sampler;
