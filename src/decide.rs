//! Decide: policy + region health + lag + quorum + current plan + now → desired weights. PURE.
//!
//! The judgement of the system lives here. [`decide`] takes values and returns
//! a [`Decision`]: the weights wanted now, whether they changed, the kind of
//! move, every reason (including reasons for *not* acting) and the alarms to
//! raise. It never reads a clock, never does I/O, never logs: the engine
//! feeds it and acts on what it returns.
//!
//! The rules, in the order they are applied:
//! 1. If every region is down, keep the last plan and alarm (never blackhole everything).
//! 2. Evacuate: a region that is down (with quorum) or in maintenance gives its whole
//!    share to the first eligible region in the failover order; eligible means up
//!    or degraded, not in maintenance, and within its RPO gate (`max_lag`), unless an
//!    operator forced that region. No eligible target: keep and alarm. Automatic
//!    failovers are limited by the failover budget; past it automation pauses and
//!    an alarm asks a human.
//! 3. Degrade shift: a degraded region keeps only `degraded_weight_percent` of its
//!    normal weight; the excess goes to the first *up* eligible region.
//! 4. Restore / failback: only when nothing else moved, the dwell has passed since the
//!    last change and the region stayed healthy for `failback_hold`; at most
//!    `failback_step` points per dwell period; never automatically in `manual` mode
//!    for a region that a failover emptied.
//!
//! Steps 2 and 3 are moves toward safety and ignore the dwell.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alarm::{Alarm, AlarmKind};
use crate::health::Health;
use crate::lag::LagReading;
use crate::plan::{PlanKind, Weights};
use crate::policy::{Failback, Policy};
use crate::region::RegionName;

pub use moves::{Move, MoveKind};

/// What the engine knows of one region right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionInput {
    /// The region.
    pub name: RegionName,
    /// Combined health from this vantage's checks.
    pub health: Health,
    /// When `health` last changed (None: never observed).
    pub since: Option<DateTime<Utc>>,
    /// Vantages (including this one) that currently see the region down.
    pub down_votes: usize,
    /// Vantages that reported on the region.
    pub vantages: usize,
    /// Latest replication lag, for regions with a database replica.
    pub lag: Option<LagReading>,
    /// Drained by an operator.
    pub maintenance: bool,
    /// Facts worth saying even when nothing moves, e.g. "check app: 2 of fall=3 failures".
    pub notes: Vec<String>,
}

/// Everything [`decide`] looks at besides the policy and its memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Inputs {
    /// One entry per configured region.
    pub regions: Vec<RegionInput>,
    /// Regions an operator allowed as failover targets despite their lag, with the reason.
    pub lag_overrides: Vec<(RegionName, String)>,
    /// Whether automatic failover is paused by an operator.
    pub automation_paused: bool,
}

impl Inputs {
    fn region(&self, name: &RegionName) -> Option<&RegionInput> {
        self.regions.iter().find(|r| &r.name == name)
    }
}

/// The decision core's own state, carried from one call to the next by the engine.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Memory {
    /// The weights last decided (what the providers are being driven to).
    pub current: Weights,
    /// When `current` last changed.
    pub last_change: Option<DateTime<Utc>>,
    /// When automatic failovers happened, within the budget window.
    pub failovers: Vec<DateTime<Utc>>,
    /// Regions a failover emptied and that have not been given their share back.
    pub evacuated: BTreeSet<RegionName>,
}

impl Memory {
    /// The memory at start-up: the configured normal weights.
    pub fn normal(policy: &Policy) -> Self {
        Self { current: normal_weights(policy), last_change: None, failovers: Vec::new(), evacuated: BTreeSet::new() }
    }
}

/// The configured weights.
pub fn normal_weights(policy: &Policy) -> Weights {
    Weights::from_pairs(policy.regions.iter().map(|r| (r.name.clone(), r.normal_weight)))
}

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The weights wanted now (equal to the current ones when nothing changes).
    pub weights: Weights,
    /// Whether `weights` differ from the current plan.
    pub changed: bool,
    /// The kind of move (meaningful when `changed`).
    pub kind: PlanKind,
    /// Every reason, including for not acting.
    pub reasons: Vec<String>,
    /// The moves made, in the order the rules made them (empty when nothing moved).
    pub moves: Vec<Move>,
    /// Alarms to raise.
    pub alarms: Vec<Alarm>,
    /// The memory to carry into the next call.
    pub memory: Memory,
}

impl Decision {
    /// One line naming the decision: the sentence of its last move, or every reason
    /// joined when nothing moved.
    pub fn summary(&self) -> String {
        match self.moves.last() {
            Some(m) => m.to_string(),
            None => self.reasons.join("; "),
        }
    }
}

/// The region health the rules act on, after quorum and maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effective {
    Up,
    Degraded,
    Down,
    Unknown,
    Maintenance,
}

fn effective(policy: &Policy, r: &RegionInput, alarms: &mut Vec<Alarm>, reasons: &mut Vec<String>) -> Effective {
    if r.maintenance {
        return Effective::Maintenance;
    }
    match r.health {
        Health::Up => Effective::Up,
        Health::Degraded => Effective::Degraded,
        Health::Unknown => Effective::Unknown,
        Health::Down if r.down_votes >= policy.quorum => Effective::Down,
        Health::Down => {
            let msg = format!(
                "{} looks down from {} of {} vantage(s), quorum {} not reached: not acting",
                r.name, r.down_votes, r.vantages, policy.quorum
            );
            reasons.push(msg.clone());
            alarms.push(Alarm { kind: AlarmKind::QuorumNotReached, region: Some(r.name.clone()), message: msg });
            Effective::Unknown
        }
    }
}

/// Decides the weights wanted now.
///
/// `now` is the only clock; the same arguments always give the same decision.
pub fn decide(policy: &Policy, inputs: &Inputs, memory: &Memory, now: DateTime<Utc>) -> Decision {
    let mut reasons = Vec::new();
    let mut moves = Vec::new();
    let mut alarms = Vec::new();
    let mut mem = memory.clone();
    // Forget failovers that left the budget window.
    let window = chrono::Duration::from_std(policy.budget.window).unwrap_or(chrono::Duration::MAX);
    mem.failovers.retain(|t| now.signed_duration_since(*t) < window);

    let eff: Vec<(RegionName, Effective)> = policy
        .regions
        .iter()
        .map(|rp| {
            let e = match inputs.region(&rp.name) {
                Some(r) => effective(policy, r, &mut alarms, &mut reasons),
                None => Effective::Unknown,
            };
            (rp.name.clone(), e)
        })
        .collect();
    let eff_of = |n: &RegionName| eff.iter().find(|(r, _)| r == n).map(|(_, e)| *e).unwrap_or(Effective::Unknown);

    for r in &inputs.regions {
        if eff_of(&r.name) != Effective::Down {
            reasons.extend(r.notes.iter().cloned());
        }
    }
    for (name, e) in &eff {
        if *e == Effective::Down {
            let w = memory.current.get(name);
            alarms.push(Alarm {
                kind: AlarmKind::RegionDown,
                region: Some(name.clone()),
                message: if w > 0 {
                    format!("{name} is down while serving {w}% of traffic")
                } else if policy.region(name).is_some_and(|r| r.normal_weight > 0) {
                    format!("{name} is down; its traffic has been moved away")
                } else {
                    format!("{name} is down (it serves no traffic; failover capacity is reduced)")
                },
            });
        }
    }

    // Rule 1: all down → keep and alarm.
    if !eff.is_empty() && eff.iter().all(|(_, e)| matches!(e, Effective::Down | Effective::Maintenance)) {
        let msg = "every region is down or drained: keeping the last plan rather than routing nowhere".to_string();
        reasons.push(msg.clone());
        alarms.push(Alarm { kind: AlarmKind::AllDown, region: None, message: msg });
        let said = Said { reasons, moves, alarms };
        return finish(memory, mem, memory.current.clone(), PlanKind::Failover, said, now, false);
    }

    let mut next = memory.current.clone();
    let mut kind: Option<PlanKind> = None;
    let budget_spent = mem.failovers.len() as u32 >= policy.budget.max;
    let mut failed_over = false;

    // Rule 2: evacuate down and drained regions.
    for (name, e) in &eff {
        if !matches!(e, Effective::Down | Effective::Maintenance) || next.get(name) == 0 {
            continue;
        }
        let automatic = *e == Effective::Down;
        if automatic && inputs.automation_paused {
            reasons.push(format!("{name} is down but automatic failover is paused by an operator"));
            continue;
        }
        if automatic && budget_spent {
            let oldest = mem.failovers.first().copied().unwrap_or(now);
            let free_at = oldest + window;
            let msg = format!(
                "{name} is down but the failover budget is spent ({} automatic failovers in the last {}, max {}): automation paused until {} unless an operator acts",
                mem.failovers.len(),
                humantime::format_duration(policy.budget.window),
                policy.budget.max,
                free_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            reasons.push(msg.clone());
            alarms.push(Alarm { kind: AlarmKind::BudgetSpent, region: Some(name.clone()), message: msg });
            continue;
        }
        let target = pick_target(policy, inputs, name, &eff, false, &mut reasons, &mut alarms);
        match target {
            Some(t) => {
                let moved = next.shift(name, &t, next.get(name));
                let how = if automatic { MoveKind::Failover } else { MoveKind::Drain };
                record(&mut reasons, &mut moves, Move { kind: how, from: Some(name.clone()), to: t, points: moved });
                if automatic {
                    failed_over = true;
                    mem.evacuated.insert(name.clone());
                    kind = Some(PlanKind::Failover);
                } else {
                    kind.get_or_insert(PlanKind::Maintenance);
                }
            }
            None => {
                let msg = format!(
                    "{name} is {} but no region can take its {} points: keeping traffic where it is",
                    if automatic { "down" } else { "drained" },
                    next.get(name)
                );
                reasons.push(msg.clone());
                alarms.push(Alarm { kind: AlarmKind::NoFailoverTarget, region: Some(name.clone()), message: msg });
            }
        }
    }

    // Rule 3: shift part of a degraded region's share.
    for (name, e) in &eff {
        if *e != Effective::Degraded {
            continue;
        }
        let cap = degraded_cap(policy, name);
        let have = next.get(name);
        if have <= cap {
            continue;
        }
        match pick_target(policy, inputs, name, &eff, true, &mut reasons, &mut alarms) {
            Some(t) => {
                let moved = next.shift(name, &t, have - cap);
                let how = MoveKind::DegradeShift { keep_percent: policy.degraded_weight_percent };
                record(&mut reasons, &mut moves, Move { kind: how, from: Some(name.clone()), to: t, points: moved });
                kind.get_or_insert(PlanKind::DegradeShift);
            }
            None => reasons.push(format!("{name} is degraded but no healthy region can take part of its share")),
        }
    }

    // Rule 4: restore toward the normal weights, in steps, only when nothing else moved.
    if next == memory.current
        && let Some(m) = restore(policy, inputs, &eff, memory, &mut mem, &mut next, &mut reasons, now)
    {
        kind.get_or_insert(PlanKind::Failback);
        record(&mut reasons, &mut moves, m);
    }

    if failed_over {
        mem.failovers.push(now);
    }
    let changed = next != memory.current;
    if !changed && reasons.is_empty() {
        reasons.push("all regions as expected: keeping the current plan".to_string());
    }
    let kind = kind.unwrap_or(if next == normal_weights(policy) { PlanKind::Normal } else { PlanKind::Failback });
    finish(memory, mem, next, kind, Said { reasons, moves, alarms }, now, changed)
}

/// Appends a move, and its sentence to the reasons.
fn record(reasons: &mut Vec<String>, moves: &mut Vec<Move>, m: Move) {
    reasons.push(m.to_string());
    moves.push(m);
}

/// What a decision says besides its weights.
struct Said {
    reasons: Vec<String>,
    moves: Vec<Move>,
    alarms: Vec<Alarm>,
}

fn finish(
    old: &Memory,
    mut mem: Memory,
    next: Weights,
    kind: PlanKind,
    said: Said,
    now: DateTime<Utc>,
    changed: bool,
) -> Decision {
    debug_assert_eq!(next.total(), old.current.total(), "weights must keep their sum");
    if changed {
        mem.current = next.clone();
        mem.last_change = Some(now);
    }
    let Said { reasons, moves, alarms } = said;
    Decision { weights: next, changed, kind, reasons, moves, alarms, memory: mem }
}

fn degraded_cap(policy: &Policy, name: &RegionName) -> u32 {
    let normal = policy.region(name).map(|r| r.normal_weight).unwrap_or(0);
    normal * policy.degraded_weight_percent / 100
}

/// The first region in failover order that may take `from`'s share.
///
/// `healthy_only` asks for an `up` target (degrade shifts must not pile onto another degraded region).
fn pick_target(
    policy: &Policy,
    inputs: &Inputs,
    from: &RegionName,
    eff: &[(RegionName, Effective)],
    healthy_only: bool,
    reasons: &mut Vec<String>,
    alarms: &mut Vec<Alarm>,
) -> Option<RegionName> {
    for cand in policy.failover_order.iter().filter(|c| *c != from) {
        let e = eff.iter().find(|(r, _)| r == cand).map(|(_, e)| *e).unwrap_or(Effective::Unknown);
        let ok_health = match e {
            Effective::Up => true,
            Effective::Degraded => !healthy_only,
            _ => false,
        };
        if !ok_health {
            continue;
        }
        if policy.region(cand).is_none() {
            continue;
        }
        let lag = inputs.region(cand).and_then(|r| r.lag.as_ref());
        if let Err(why) = policy.failover_gate(cand, lag) {
            if let Some((_, reason)) = inputs.lag_overrides.iter().find(|(r, _)| r == cand) {
                reasons.push(format!("{cand} is over its lag limit ({why}) but an operator forced it: {reason}"));
            } else {
                let msg = format!("{cand} cannot take {from}'s traffic: {why}");
                reasons.push(msg.clone());
                alarms.push(Alarm { kind: AlarmKind::LagBlocksFailover, region: Some(cand.clone()), message: msg });
                continue;
            }
        }
        return Some(cand.clone());
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn restore(
    policy: &Policy,
    inputs: &Inputs,
    eff: &[(RegionName, Effective)],
    old: &Memory,
    mem: &mut Memory,
    next: &mut Weights,
    reasons: &mut Vec<String>,
    now: DateTime<Utc>,
) -> Option<Move> {
    let entitled = |name: &RegionName| -> u32 {
        let normal = policy.region(name).map(|r| r.normal_weight).unwrap_or(0);
        match eff.iter().find(|(r, _)| r == name).map(|(_, e)| *e) {
            Some(Effective::Up) => normal,
            Some(Effective::Degraded) => degraded_cap(policy, name),
            _ => 0,
        }
    };
    for name in &policy.failover_order {
        let want = entitled(name);
        let have = next.get(name);
        if have >= want {
            if have == policy.region(name).map(|r| r.normal_weight).unwrap_or(0) {
                mem.evacuated.remove(name);
            }
            continue;
        }
        if policy.failback == Failback::Manual && old.evacuated.contains(name) {
            reasons.push(format!(
                "{name} is healthy again but failback is manual: an operator moves traffic back (POST /api/v1/failback)"
            ));
            continue;
        }
        let region = inputs.region(name);
        let healthy_for = region
            .and_then(|r| r.since)
            .map(|s| now.signed_duration_since(s).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO);
        if healthy_for < policy.failback_hold {
            reasons.push(format!(
                "{name} healthy for {} of the {} hold before traffic returns",
                humantime::format_duration(Duration::from_secs(healthy_for.as_secs())),
                humantime::format_duration(policy.failback_hold)
            ));
            continue;
        }
        if let Some(last) = old.last_change {
            let since = now.signed_duration_since(last).to_std().unwrap_or(Duration::ZERO);
            if since < policy.dwell {
                reasons.push(format!(
                    "{name} may take traffic back, but the last change was {} ago (dwell {})",
                    humantime::format_duration(Duration::from_secs(since.as_secs())),
                    humantime::format_duration(policy.dwell)
                ));
                continue;
            }
        }
        // Take the points back from regions holding more than they are entitled to,
        // least preferred first (DR gives back before the same-city standby).
        let mut need = (want - have).min(policy.failback_step);
        let mut moved_total = 0;
        for donor in policy.failover_order.iter().rev().filter(|d| *d != name) {
            if need == 0 {
                break;
            }
            let surplus = next.get(donor).saturating_sub(entitled(donor));
            if surplus == 0 {
                continue;
            }
            let moved = next.shift(donor, name, surplus.min(need));
            need -= moved;
            moved_total += moved;
        }
        if moved_total > 0 {
            if next.get(name) >= policy.region(name).map(|r| r.normal_weight).unwrap_or(0) {
                mem.evacuated.remove(name);
            }
            // One step per dwell period, one region at a time.
            let kind = MoveKind::Failback { healthy_for, now: next.get(name), entitled: want };
            return Some(Move { kind, from: None, to: name.clone(), points: moved_total });
        }
    }
    None
}

mod moves;
#[cfg(test)]
mod tests;
