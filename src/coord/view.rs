//! Views and the quorum view. PURE.
//!
//! Every orchestrator publishes its [`View`]: the health it sees of each region.
//! [`quorum_view`] combines the fresh views (its own included) into what the
//! decision acts on: a region is down only when at least `quorum` vantages see
//! it down, degraded only when at least `quorum` see it degraded or down. A
//! region seen down by a minority stays `Down` with too few votes, so `decide`
//! refuses to act and says why; one seen degraded by a minority counts as up,
//! with a note naming the vantages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::drill::synthetic::Injection;
use crate::health::Health;
use crate::region::RegionName;

/// What one orchestrator sees of every region, as it publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The orchestrator's region.
    pub vantage: RegionName,
    /// When it was published (the publisher's clock; freshness uses the receiver's).
    pub at: DateTime<Utc>,
    /// One entry per region.
    pub regions: Vec<RegionView>,
    /// The leader's synthetic-failure drill, injected into every vantage's probes while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Injection>,
}

/// One vantage's view of one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionView {
    /// The region.
    pub name: RegionName,
    /// Its health from this vantage (hysteresis applied).
    pub health: Health,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// A check of the region failed at least once and is not yet confirmed: peers re-probe at once.
    pub suspect: bool,
    /// Why, in a few words (failing checks and their errors).
    pub reasons: Vec<String>,
}

impl View {
    /// This view's entry for `region`.
    pub fn region(&self, region: &RegionName) -> Option<&RegionView> {
        self.regions.iter().find(|r| &r.name == region)
    }

    /// The view without its timestamp, to tell a change from a heartbeat.
    pub fn same_content(&self, other: &View) -> bool {
        self.vantage == other.vantage && self.regions == other.regions && self.synthetic == other.synthetic
    }
}

/// A view and whether it is still fresh (own view: always).
#[derive(Debug, Clone, PartialEq)]
pub struct Voter<'a> {
    /// The view.
    pub view: &'a View,
    /// Whether it counts.
    pub fresh: bool,
}

/// The combined verdict on one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuorumRegion {
    /// The region.
    pub name: RegionName,
    /// The health the decision acts on.
    pub health: Health,
    /// Fresh vantages that see it down.
    pub down_votes: usize,
    /// Fresh vantages that see it degraded or down.
    pub bad_votes: usize,
    /// Fresh vantages with an opinion (not unknown).
    pub voters: usize,
    /// Vantages seeing it down, degraded, up.
    pub down_from: Vec<RegionName>,
    /// Vantages seeing it degraded.
    pub degraded_from: Vec<RegionName>,
    /// Vantages seeing it up.
    pub up_from: Vec<RegionName>,
    /// A sentence for the reasons when the vantages disagree or a quorum decided.
    pub note: Option<String>,
}

/// Combines the voters' views of `regions` under `quorum` (of `configured` vantages).
pub fn quorum_view(
    regions: &[RegionName],
    voters: &[Voter<'_>],
    quorum: usize,
    configured: usize,
) -> Vec<QuorumRegion> {
    regions.iter().map(|r| region_verdict(r, voters, quorum.max(1), configured)).collect()
}

fn region_verdict(region: &RegionName, voters: &[Voter<'_>], quorum: usize, configured: usize) -> QuorumRegion {
    let mut down_from = Vec::new();
    let mut degraded_from = Vec::new();
    let mut up_from = Vec::new();
    for v in voters.iter().filter(|v| v.fresh) {
        match v.view.region(region).map(|r| r.health) {
            Some(Health::Down) => down_from.push(v.view.vantage.clone()),
            Some(Health::Degraded) => degraded_from.push(v.view.vantage.clone()),
            Some(Health::Up) => up_from.push(v.view.vantage.clone()),
            Some(Health::Unknown) | None => {}
        }
    }
    let down = down_from.len();
    let bad = down + degraded_from.len();
    let voters_n = bad + up_from.len();
    let names = |v: &[RegionName]| v.iter().map(RegionName::as_str).collect::<Vec<_>>().join(", ");
    let only = |v: &[RegionName]| if v.len() == 1 { format!("{} only", names(v)) } else { names(v) };
    let tally = |n: usize| format!("{n} of {configured} vantages, quorum {quorum}");
    let up_part = if up_from.is_empty() { String::new() } else { format!("; up from {}", names(&up_from)) };
    let (health, note) = if down >= quorum {
        (Health::Down, Some(format!("{region}: down from {} ({}){up_part}", names(&down_from), tally(down))))
    } else if bad >= quorum {
        let mut from = down_from.clone();
        from.extend(degraded_from.iter().cloned());
        (Health::Degraded, Some(format!("{region}: degraded or down from {} ({}){up_part}", names(&from), tally(bad))))
    } else if down > 0 {
        // A minority sees it down: decide refuses to act on too few votes and says so.
        (Health::Down, Some(format!("{region}: down from {} ({}){up_part}", only(&down_from), tally(down))))
    } else if !degraded_from.is_empty() {
        let note = format!(
            "{region}: degraded from {} ({}), counted as up{up_part}",
            only(&degraded_from),
            tally(degraded_from.len())
        );
        (Health::Up, Some(note))
    } else if !up_from.is_empty() {
        (Health::Up, None)
    } else {
        (Health::Unknown, None)
    };
    // One vantage alone (single mode) needs no sentence: its own reasons say it all.
    let note = if configured <= 1 { None } else { note };
    QuorumRegion {
        name: region.clone(),
        health,
        down_votes: down,
        bad_votes: bad,
        voters: voters_n,
        down_from,
        degraded_from,
        up_from,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rn(s: &str) -> RegionName {
        RegionName::new(s)
    }

    fn view(vantage: &str, seen: &[(&str, Health)]) -> View {
        View {
            vantage: rn(vantage),
            at: DateTime::<Utc>::UNIX_EPOCH,
            regions: seen
                .iter()
                .map(|(n, h)| RegionView { name: rn(n), health: *h, since: None, suspect: false, reasons: vec![] })
                .collect(),
            synthetic: None,
        }
    }

    fn verdict(views: &[(View, bool)], quorum: usize) -> QuorumRegion {
        let voters: Vec<Voter<'_>> = views.iter().map(|(v, fresh)| Voter { view: v, fresh: *fresh }).collect();
        quorum_view(&[rn("primary")], &voters, quorum, 3).remove(0)
    }

    use Health::{Degraded, Down, Unknown, Up};

    #[test]
    fn a_minority_seeing_down_stays_below_quorum_and_is_named() {
        let q = verdict(
            &[
                (view("primary", &[("primary", Up)]), true),
                (view("standby", &[("primary", Down)]), true),
                (view("dr", &[("primary", Up)]), true),
            ],
            2,
        );
        assert_eq!((q.health, q.down_votes, q.voters), (Down, 1, 3));
        let note = q.note.unwrap();
        assert!(note.contains("down from standby only (1 of 3 vantages, quorum 2)"), "{note}");
        assert!(note.contains("up from primary, dr"), "{note}");
    }

    #[test]
    fn a_quorum_seeing_down_makes_it_down() {
        let q = verdict(
            &[
                (view("primary", &[("primary", Up)]), true),
                (view("standby", &[("primary", Down)]), true),
                (view("dr", &[("primary", Down)]), true),
            ],
            2,
        );
        assert_eq!((q.health, q.down_votes), (Down, 2));
        assert_eq!(q.down_from, vec![rn("standby"), rn("dr")]);
    }

    #[test]
    fn stale_views_do_not_vote() {
        let q = verdict(
            &[
                (view("primary", &[("primary", Up)]), true),
                (view("standby", &[("primary", Down)]), true),
                (view("dr", &[("primary", Down)]), false),
            ],
            2,
        );
        assert_eq!((q.down_votes, q.voters), (1, 2));
    }

    #[test]
    fn degraded_needs_a_quorum_too_and_down_counts_toward_it() {
        let minority = verdict(
            &[(view("primary", &[("primary", Up)]), true), (view("standby", &[("primary", Degraded)]), true)],
            2,
        );
        assert_eq!(minority.health, Up);
        assert!(minority.note.unwrap().contains("degraded from standby only"));
        let quorum =
            verdict(&[(view("standby", &[("primary", Degraded)]), true), (view("dr", &[("primary", Down)]), true)], 2);
        assert_eq!((quorum.health, quorum.bad_votes), (Degraded, 2));
    }

    #[test]
    fn nobody_with_an_opinion_is_unknown() {
        let q = verdict(&[(view("primary", &[("primary", Unknown)]), true), (view("dr", &[]), true)], 2);
        assert_eq!((q.health, q.voters), (Unknown, 0));
    }

    #[test]
    fn one_vantage_with_quorum_one_is_its_own_view_without_a_note() {
        for h in [Up, Degraded, Down, Unknown] {
            let v = view("primary", &[("primary", h)]);
            let q = quorum_view(&[rn("primary")], &[Voter { view: &v, fresh: true }], 1, 1).remove(0);
            assert_eq!(q.health, h);
            assert_eq!(q.down_votes, usize::from(h == Down));
            assert!(q.note.is_none());
        }
    }
}
