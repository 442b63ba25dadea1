//! The structured form of a decision's traffic moves, and the sentence each one reads as.
//!
//! `decide` records a [`Move`] wherever a rule moves points and pushes its
//! `Display` text into the reasons; the engine names a plan after the last move.
//! Nothing downstream searches the reasons' text to find a move.

use std::time::Duration;

use serde::Serialize;

use crate::region::RegionName;

/// What a move does with traffic, and the facts its sentence quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// A region down (with quorum) gave its whole share away.
    Failover,
    /// A region in maintenance gave its whole share away.
    Drain,
    /// A degraded region gave the part of its share above `keep_percent` of its normal weight.
    DegradeShift {
        /// The percent of its normal weight the degraded region keeps.
        keep_percent: u32,
    },
    /// A recovered region took points back from the regions holding more than their share.
    Failback {
        /// How long the region has been healthy.
        healthy_for: Duration,
        /// Its weight after the move.
        now: u32,
        /// The weight it is entitled to (its normal weight, or its degraded cap).
        entitled: u32,
    },
}

/// One traffic move a decision made: the structured form of its "moving …" reason.
///
/// The engine names a plan after its last move (`Display` gives the sentence the
/// reasons carry); nothing downstream reads the reason text to find a move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// Why the points moved.
    pub kind: MoveKind,
    /// The region giving points; `None` for a failback, where every region holding
    /// more than its share gives (the least preferred first).
    pub from: Option<RegionName>,
    /// The region taking them: the failover target, or the region a failback restores.
    pub to: RegionName,
    /// Points moved.
    pub points: u32,
}

impl std::fmt::Display for Move {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (to, points) = (&self.to, self.points);
        let from = self.from.as_ref().map(|r| r.as_str()).unwrap_or("the other regions");
        match self.kind {
            MoveKind::Failover => write!(f, "{from} is down: moving its {points} points to {to}"),
            MoveKind::Drain => write!(f, "{from} is in maintenance: draining its {points} points to {to}"),
            MoveKind::DegradeShift { keep_percent } => write!(
                f,
                "{from} is degraded: keeping {keep_percent}% of its normal weight, moving {points} points to {to}"
            ),
            MoveKind::Failback { healthy_for, now, entitled } => write!(
                f,
                "{to} healthy for {}: returning {points} points (now {now} of {entitled})",
                humantime::format_duration(Duration::from_secs(healthy_for.as_secs()))
            ),
        }
    }
}
