//! `[[regions]]`: name, role, normal weight, address, the `[regions.postgres]`
//! table and the checks; then the rules across regions (exactly one primary,
//! weights summing to 100).
//!
//! Builds two things per region: its [`RegionConfig`] and its policy entry
//! ([`RegionPolicy`]: role, normal weight, RPO gate), which the policy
//! validator takes over as their one owner. Both lists are in file order and
//! hold the same regions.

use std::collections::HashSet;
use std::net::IpAddr;

use super::{checks, postgres};
use crate::config::error::Problems;
use crate::config::raw::RawRegion;
use crate::config::{CheckConfig, RegionConfig, RegionPostgres};
use crate::policy::RegionPolicy;
use crate::region::{RegionName, Role};

/// Validates every region, then the rules across them.
pub(super) fn validate(
    raw: &[RawRegion],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> (Vec<RegionConfig>, Vec<RegionPolicy>) {
    if raw.len() < 2 {
        p.push(
            "regions",
            format!("{} region(s) configured", raw.len()),
            "configure at least two [[regions]] (a primary and a standby)",
        );
    }
    let mut seen = HashSet::new();
    let (regions, policies): (Vec<_>, Vec<_>) =
        raw.iter().enumerate().filter_map(|(i, r)| region(&format!("regions[{i}]"), r, &mut seen, env, p)).unzip();
    check_one_primary(&policies, p);
    // A sum over only the regions that validated would name a misleading total:
    // check it only when every region did.
    if policies.len() == raw.len() && !policies.is_empty() {
        check_weight_sum(&policies, p);
    }
    (regions, policies)
}

/// One region and its policy entry; `None` when its name, role or weight is invalid.
fn region(
    key: &str,
    r: &RawRegion,
    seen: &mut HashSet<String>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<(RegionConfig, RegionPolicy)> {
    let name = name(key, r, seen, p);
    let role = role(key, r, p);
    let weight = weight(key, r, p);
    let address = address(key, r, p);
    // The database and checks are validated even when the name, role or weight
    // is not, so every problem of the region shows at once.
    let pg = r.postgres.as_ref().and_then(|pg| postgres::validate(key, pg, r, name.as_ref(), env, p));
    let (postgres, max_lag) = pg.map_or((None, Default::default()), |(pg, max_lag)| (Some(pg), max_lag));
    let checks = checks(key, r, name.as_ref(), postgres.as_ref(), p);
    let (name, role, weight) = (name?, role?, weight?);
    // The policy entry owns the weight and the RPO gate from here on.
    let policy = RegionPolicy { name: name.clone(), role, normal_weight: weight, max_lag };
    Some((RegionConfig { name, role, address, postgres, checks, targets: r.targets.clone() }, policy))
}

/// `regions[i].name`: a valid, unique region name.
fn name(key: &str, r: &RawRegion, seen: &mut HashSet<String>, p: &mut Problems) -> Option<RegionName> {
    match &r.name {
        Some(n) if RegionName::is_valid(n) => {
            if !seen.insert(n.clone()) {
                p.push(format!("{key}.name"), format!("`{n}` is used twice"), "give every region a unique name");
            }
            Some(RegionName::new(n.clone()))
        }
        Some(n) => {
            p.push(
                format!("{key}.name"),
                format!("`{n}` is not a valid name"),
                "use lowercase letters, digits and '-', starting with a letter",
            );
            None
        }
        None => {
            p.push(format!("{key}.name"), "missing", "add name = \"…\"");
            None
        }
    }
}

/// `regions[i].role`: `primary`, `standby` or `dr`.
fn role(key: &str, r: &RawRegion, p: &mut Problems) -> Option<Role> {
    match r.role.as_deref() {
        Some("primary") => Some(Role::Primary),
        Some("standby") => Some(Role::Standby),
        Some("dr") => Some(Role::Dr),
        Some(other) => {
            p.push(format!("{key}.role"), format!("`{other}` is not a role"), "use \"primary\", \"standby\" or \"dr\"");
            None
        }
        None => {
            p.push(format!("{key}.role"), "missing", "add role = \"primary\" | \"standby\" | \"dr\"");
            None
        }
    }
}

/// `regions[i].weight`: the normal share, 0–100.
fn weight(key: &str, r: &RawRegion, p: &mut Problems) -> Option<u32> {
    match r.weight {
        Some(w) if (0..=100).contains(&w) => Some(w as u32),
        Some(w) => {
            p.push(
                format!("{key}.weight"),
                format!("{w} is outside 0–100"),
                "use a share between 0 and 100; all regions sum to 100",
            );
            None
        }
        None => {
            p.push(
                format!("{key}.weight"),
                "missing",
                "add weight = N (normal share of traffic, all regions sum to 100)",
            );
            None
        }
    }
}

/// `regions[i].address`: optional, an IP address.
fn address(key: &str, r: &RawRegion, p: &mut Problems) -> Option<IpAddr> {
    let a = r.address.as_ref()?;
    match a.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            p.push(
                format!("{key}.address"),
                format!("`{a}` is not an IP address"),
                "write an IPv4 or IPv6 address, e.g. \"192.0.2.10\"",
            );
            None
        }
    }
}

/// `regions[i].checks`: at least one, names unique within the region.
fn checks(
    key: &str,
    r: &RawRegion,
    region: Option<&RegionName>,
    pg: Option<&RegionPostgres>,
    p: &mut Problems,
) -> Vec<CheckConfig> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (j, c) in r.checks.iter().enumerate() {
        let ck = format!("{key}.checks[{j}]");
        if let Some(n) = &c.name
            && !names.insert(n.clone())
        {
            p.push(
                format!("{ck}.name"),
                format!("`{n}` is used twice in this region"),
                "give every check of a region a unique name",
            );
        }
        out.extend(checks::validate(&ck, c, region, pg, p));
    }
    if r.checks.is_empty() {
        p.push(
            format!("{key}.checks"),
            "no checks",
            "add at least one [[regions.checks]] (an app-layer http check is the usual start)",
        );
    }
    out
}

/// `regions[].role`: exactly one primary among the valid regions.
fn check_one_primary(regions: &[RegionPolicy], p: &mut Problems) {
    let primaries = regions.iter().filter(|r| r.role == Role::Primary).count();
    if !regions.is_empty() && primaries != 1 {
        p.push(
            "regions[].role",
            format!("{primaries} regions have role \"primary\""),
            "mark exactly one region as role = \"primary\"",
        );
    }
}

/// `regions[].weight`: the normal weights add up to 100.
fn check_weight_sum(regions: &[RegionPolicy], p: &mut Problems) {
    let sum: u32 = regions.iter().map(|r| r.normal_weight).sum();
    if sum != 100 {
        p.push(
            "regions[].weight",
            format!("weights sum to {sum}"),
            "make the normal weights of all regions add up to 100 (e.g. 80 / 20 / 0)",
        );
    }
}
