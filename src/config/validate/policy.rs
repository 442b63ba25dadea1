//! `[policy]`: degraded share, failover order, failback mode and pace, the
//! failover budget and the quorum. The regions' entries (role, normal weight,
//! RPO gate) come from the regions validator; the policy becomes their owner.

use std::time::Duration;

use super::list;
use crate::config::error::Problems;
use crate::config::raw::{RawBudget, RawPolicy};
use crate::policy::{Budget, Failback, Policy, RegionPolicy};
use crate::region::{RegionName, Role};

/// Validates `[policy]` over the regions' policy entries (file order).
pub(super) fn validate(raw: &RawPolicy, regions: Vec<RegionPolicy>, p: &mut Problems) -> Policy {
    let degraded_weight_percent = degraded_weight_percent(raw, p);
    let failover_order = failover_order(raw, &regions, p);
    let failback = failback(raw, p);
    let failback_step = failback_step(raw, p);
    // An invalid value is reported and replaced by its default, so the rest of
    // the configuration (scheduled drills) can still be checked against a policy.
    let budget = raw.failover_budget.as_ref().map_or(DEFAULT_BUDGET, |b| budget(b, p));
    let quorum = quorum(raw, p);
    Policy {
        regions,
        degraded_weight_percent,
        failover_order,
        dwell: raw.dwell.unwrap_or(Duration::from_secs(30)),
        failback,
        failback_hold: raw.failback_hold.unwrap_or(Duration::from_secs(60)),
        failback_step,
        budget,
        quorum,
    }
}

/// Three automatic failovers per hour.
const DEFAULT_BUDGET: Budget = Budget { max: 3, window: Duration::from_secs(3600) };

/// `policy.degraded_weight_percent`: 0–100 (default 50).
fn degraded_weight_percent(raw: &RawPolicy, p: &mut Problems) -> u32 {
    match raw.degraded_weight_percent {
        None => 50,
        Some(v) if (0..=100).contains(&v) => v as u32,
        Some(v) => {
            p.push(
                "policy.degraded_weight_percent",
                format!("{v} is outside 0–100"),
                "use the percent of its normal weight a degraded region keeps, e.g. 50",
            );
            50
        }
    }
}

/// `policy.failover_order`: region names, each once; regions left out follow in role order.
fn failover_order(raw: &RawPolicy, regions: &[RegionPolicy], p: &mut Problems) -> Vec<RegionName> {
    // Same-city standbys before DR is the safe default (lower RPO, lower latency).
    let Some(order) = &raw.failover_order else { return default_order(regions) };
    let names: Vec<RegionName> = regions.iter().map(|r| r.name.clone()).collect();
    let mut ok = Vec::new();
    for (i, n) in order.iter().enumerate() {
        match names.iter().find(|r| r.as_str() == n) {
            Some(r) if !ok.contains(r) => ok.push(r.clone()),
            Some(_) => {
                p.push(format!("policy.failover_order[{i}]"), format!("`{n}` is listed twice"), "list each region once")
            }
            None => p.push(
                format!("policy.failover_order[{i}]"),
                format!("`{n}` is not a region"),
                format!("use region names: {}", list(&names)),
            ),
        }
    }
    // Regions left out go last, in role order, so every region has a place.
    for r in default_order(regions) {
        if !ok.contains(&r) {
            ok.push(r);
        }
    }
    ok
}

/// Primary, then standbys, then DR regions, each group in file order.
fn default_order(regions: &[RegionPolicy]) -> Vec<RegionName> {
    let mut v: Vec<&RegionPolicy> = regions.iter().collect();
    v.sort_by_key(|r| match r.role {
        Role::Primary => 0,
        Role::Standby => 1,
        Role::Dr => 2,
    });
    v.into_iter().map(|r| r.name.clone()).collect()
}

/// `policy.failback`: `auto` (default) or `manual`.
fn failback(raw: &RawPolicy, p: &mut Problems) -> Failback {
    match raw.failback.as_deref() {
        None | Some("auto") => Failback::Auto,
        Some("manual") => Failback::Manual,
        Some(o) => {
            p.push("policy.failback", format!("`{o}` is not a failback mode"), "use \"manual\" or \"auto\"");
            Failback::Auto
        }
    }
}

/// `policy.failback_step`: weight points per dwell period, 1–100 (default 20).
fn failback_step(raw: &RawPolicy, p: &mut Problems) -> u32 {
    match raw.failback_step {
        None => 20,
        Some(v) if (1..=100).contains(&v) => v as u32,
        Some(v) => {
            p.push(
                "policy.failback_step",
                format!("{v} is outside 1–100"),
                "use the weight points moved back per dwell period, e.g. 20",
            );
            20
        }
    }
}

/// `policy.failover_budget`: `max` 1–1000 (default 3) per a non-zero `window` (default 1h).
fn budget(b: &RawBudget, p: &mut Problems) -> Budget {
    let max = match b.max {
        None => DEFAULT_BUDGET.max,
        Some(v) if (1..=1000).contains(&v) => v as u32,
        Some(v) => {
            p.push(
                "policy.failover_budget.max",
                format!("{v} is outside 1–1000"),
                "allow at least one automatic failover per window, e.g. max = 3",
            );
            DEFAULT_BUDGET.max
        }
    };
    let window = b.window.unwrap_or(DEFAULT_BUDGET.window);
    if window.is_zero() {
        p.push("policy.failover_budget.window", "is zero", "use a duration such as \"1h\"");
    }
    Budget { max, window }
}

/// `policy.quorum`: vantages that must agree, at least 1 (default 1).
fn quorum(raw: &RawPolicy, p: &mut Problems) -> usize {
    match raw.quorum {
        None => 1,
        Some(v) if v >= 1 => v as usize,
        Some(v) => {
            p.push(
                "policy.quorum",
                format!("{v} is below 1"),
                "use the number of vantages that must agree, e.g. 2 of 3",
            );
            1
        }
    }
}
