//! Health: hysteresis per check and the combination into region health. PURE.
//!
//! A check moves to `Down` only after `fall` consecutive failures and back to
//! `Up` only after `rise` consecutive successes, so one lost packet moves
//! nothing. Slow-but-correct answers (over the latency threshold) count
//! toward `Degraded` with the same `fall`. Region health combines its layers:
//! any layer down → region down; otherwise unknown if any layer has not been
//! seen yet; otherwise degraded if any layer is degraded.
//!
//! This module must not import tokio, sqlx, reqwest or axum, nor read clocks.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::observation::Outcome;
use crate::region::Layer;

/// Health of a check, a layer or a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Serving normally.
    Up,
    /// Serving, but slower than allowed (or partly failing).
    Degraded,
    /// Not serving: confirmed by `fall` consecutive failures.
    Down,
    /// Not enough observations yet.
    Unknown,
}

impl Health {
    /// Ordering used to combine: Down is worst, then Unknown, Degraded, Up.
    fn severity(self) -> u8 {
        match self {
            Health::Up => 0,
            Health::Degraded => 1,
            Health::Unknown => 2,
            Health::Down => 3,
        }
    }

    /// The worse of two healths.
    pub fn worst(self, other: Health) -> Health {
        if other.severity() > self.severity() { other } else { self }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
            Health::Unknown => "unknown",
        })
    }
}

/// Thresholds of one check's hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive bad probes to go down (failed) or degraded (slow).
    pub fall: u32,
    /// Consecutive good probes to come back up.
    pub rise: u32,
}

/// The hysteresis state of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckState {
    /// Current health.
    pub health: Health,
    /// Consecutive failed probes.
    pub fail_streak: u32,
    /// Consecutive probes that were degraded or failed.
    pub bad_streak: u32,
    /// Consecutive probes that did not fail (ok or degraded).
    pub alive_streak: u32,
    /// Consecutive ok probes.
    pub ok_streak: u32,
    /// When `health` last changed (or the first observation).
    pub since: Option<DateTime<Utc>>,
}

impl Default for CheckState {
    fn default() -> Self {
        Self { health: Health::Unknown, fail_streak: 0, bad_streak: 0, alive_streak: 0, ok_streak: 0, since: None }
    }
}

/// A health change produced by [`CheckState::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Health before.
    pub from: Health,
    /// Health after.
    pub to: Health,
}

impl CheckState {
    /// Feeds one probe outcome; returns the transition if health changed.
    pub fn observe(&mut self, outcome: Outcome, t: Thresholds, at: DateTime<Utc>) -> Option<Transition> {
        match outcome {
            Outcome::Ok => {
                self.ok_streak += 1;
                self.alive_streak += 1;
                self.fail_streak = 0;
                self.bad_streak = 0;
            }
            Outcome::Degraded => {
                self.ok_streak = 0;
                self.alive_streak += 1;
                self.fail_streak = 0;
                self.bad_streak += 1;
            }
            Outcome::Failed => {
                self.ok_streak = 0;
                self.alive_streak = 0;
                self.fail_streak += 1;
                self.bad_streak += 1;
            }
        }
        let next = if self.fail_streak >= t.fall {
            Health::Down
        } else if self.ok_streak >= t.rise {
            Health::Up
        } else if self.health == Health::Down && self.alive_streak >= t.rise {
            // Answering again, but slowly: out of down, into degraded.
            Health::Degraded
        } else if matches!(self.health, Health::Up | Health::Unknown) && self.bad_streak >= t.fall {
            Health::Degraded
        } else {
            self.health
        };
        if self.since.is_none() {
            self.since = Some(at);
        }
        if next != self.health {
            let from = self.health;
            self.health = next;
            self.since = Some(at);
            Some(Transition { from, to: next })
        } else {
            None
        }
    }
}

/// The health of one layer: the worst of its checks; `None` when it has no checks.
pub fn layer_health(checks: impl IntoIterator<Item = Health>) -> Option<Health> {
    checks.into_iter().reduce(Health::worst)
}

/// The health of a region from its layers.
///
/// Any layer down → down; any unknown → unknown; any degraded → degraded; else up.
/// Layers without checks are ignored; a region with no checks at all is unknown.
pub fn region_health(layers: &[(Layer, Option<Health>)]) -> Health {
    layers.iter().filter_map(|(_, h)| *h).reduce(Health::worst).unwrap_or(Health::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { fall: 3, rise: 2 };

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid timestamp")
    }

    fn feed(state: &mut CheckState, outcomes: &[Outcome]) -> Vec<Transition> {
        outcomes.iter().enumerate().filter_map(|(i, o)| state.observe(*o, T, at(i as i64))).collect()
    }

    fn up() -> CheckState {
        let mut s = CheckState::default();
        feed(&mut s, &[Outcome::Ok, Outcome::Ok]);
        assert_eq!(s.health, Health::Up);
        s
    }

    use Outcome::{Degraded as D, Failed as F, Ok as O};

    #[test]
    fn unknown_until_rise_successes() {
        let mut s = CheckState::default();
        assert!(s.observe(O, T, at(0)).is_none());
        assert_eq!(s.health, Health::Unknown);
        assert_eq!(s.observe(O, T, at(1)), Some(Transition { from: Health::Unknown, to: Health::Up }));
    }

    #[test]
    fn single_failed_probe_moves_nothing() {
        let mut s = up();
        assert!(feed(&mut s, &[F, O, F, O, O, F]).is_empty());
        assert_eq!(s.health, Health::Up);
    }

    #[test]
    fn fall_consecutive_failures_go_down() {
        let mut s = up();
        let t = feed(&mut s, &[F, F, F]);
        assert_eq!(t, vec![Transition { from: Health::Up, to: Health::Down }]);
    }

    #[test]
    fn fall_minus_one_failures_stay_up() {
        let mut s = up();
        assert!(feed(&mut s, &[F, F, O, F, F]).is_empty());
        assert_eq!(s.fail_streak, 2);
    }

    #[test]
    fn rise_successes_come_back_up() {
        let mut s = up();
        feed(&mut s, &[F, F, F]);
        assert!(s.observe(O, T, at(10)).is_none());
        assert_eq!(s.observe(O, T, at(11)).map(|t| t.to), Some(Health::Up));
    }

    #[test]
    fn slow_answers_degrade_after_fall() {
        let mut s = up();
        let t = feed(&mut s, &[D, D, D]);
        assert_eq!(t, vec![Transition { from: Health::Up, to: Health::Degraded }]);
    }

    #[test]
    fn mixed_slow_and_failed_degrade_but_do_not_go_down() {
        let mut s = up();
        feed(&mut s, &[D, F, D]);
        assert_eq!(s.health, Health::Degraded);
    }

    #[test]
    fn down_then_slow_answers_become_degraded_after_rise() {
        let mut s = up();
        feed(&mut s, &[F, F, F]);
        assert!(s.observe(D, T, at(20)).is_none());
        assert_eq!(s.observe(D, T, at(21)).map(|t| t.to), Some(Health::Degraded));
    }

    #[test]
    fn degraded_recovers_after_rise_ok() {
        let mut s = up();
        feed(&mut s, &[D, D, D]);
        assert!(s.observe(O, T, at(30)).is_none());
        assert_eq!(s.observe(O, T, at(31)).map(|t| t.to), Some(Health::Up));
    }

    #[test]
    fn since_records_the_transition_time() {
        let mut s = up();
        s.observe(F, T, at(100));
        s.observe(F, T, at(101));
        s.observe(F, T, at(102));
        assert_eq!(s.since, Some(at(102)));
    }

    #[test]
    fn region_down_when_app_or_middleware_down() {
        let h = region_health(&[
            (Layer::Infra, Some(Health::Up)),
            (Layer::Middleware, Some(Health::Up)),
            (Layer::App, Some(Health::Down)),
        ]);
        assert_eq!(h, Health::Down);
        let h = region_health(&[(Layer::Middleware, Some(Health::Down)), (Layer::App, Some(Health::Up))]);
        assert_eq!(h, Health::Down);
    }

    #[test]
    fn region_degraded_when_any_layer_degraded() {
        let h = region_health(&[(Layer::Infra, Some(Health::Up)), (Layer::App, Some(Health::Degraded))]);
        assert_eq!(h, Health::Degraded);
    }

    #[test]
    fn region_ignores_layers_without_checks() {
        let h = region_health(&[(Layer::Infra, None), (Layer::App, Some(Health::Up))]);
        assert_eq!(h, Health::Up);
        assert_eq!(region_health(&[(Layer::Infra, None)]), Health::Unknown);
    }

    #[test]
    fn layer_is_its_worst_check() {
        assert_eq!(layer_health([Health::Up, Health::Degraded, Health::Up]), Some(Health::Degraded));
        assert_eq!(layer_health([Health::Up, Health::Down]), Some(Health::Down));
        assert_eq!(layer_health(Vec::<Health>::new()), None);
    }

    // ---------- properties (at least 10 000 cases each: crate::proptest_cases) ----------

    use proptest::prelude::*;

    fn arb_thresholds() -> impl Strategy<Value = Thresholds> {
        (1u32..=6, 1u32..=6).prop_map(|(fall, rise)| Thresholds { fall, rise })
    }

    /// Any sequence of outcomes, built from runs of 1–8 equal outcomes so that long streaks
    /// (which uniform draws almost never produce) are as common as alternation.
    fn arb_outcomes() -> impl Strategy<Value = Vec<Outcome>> {
        proptest::collection::vec((prop_oneof![Just(O), Just(D), Just(F)], 1usize..=8), 0..30)
            .prop_map(|runs| runs.into_iter().flat_map(|(o, n)| std::iter::repeat_n(o, n)).collect())
    }

    fn arb_health() -> impl Strategy<Value = Health> {
        prop_oneof![Just(Health::Up), Just(Health::Degraded), Just(Health::Down), Just(Health::Unknown)]
    }

    /// One step of a check's life: the health before and after one observation, and what it returned.
    struct Step {
        before: Health,
        after: Health,
        transition: Option<Transition>,
    }

    /// Feeds `seq` to a fresh check, one observation per second.
    fn life(seq: &[Outcome], th: Thresholds) -> (CheckState, Vec<Step>) {
        let mut s = CheckState::default();
        let steps = seq
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let before = s.health;
                let transition = s.observe(*o, th, at(i as i64));
                Step { before, after: s.health, transition }
            })
            .collect();
        (s, steps)
    }

    /// Whether the `n` outcomes ending at index `i` (included) all satisfy `pred`.
    fn last_n(seq: &[Outcome], i: usize, n: u32, pred: impl Fn(Outcome) -> bool) -> bool {
        let n = n as usize;
        i + 1 >= n && seq[i + 1 - n..=i].iter().all(|o| pred(*o))
    }

    /// Along `seq`, the check enters `health` only right after `n` consecutive `outcome`s, and is
    /// always in `health` right after such a streak.
    fn entered_exactly_after_a_streak(
        seq: &[Outcome],
        th: Thresholds,
        health: Health,
        outcome: Outcome,
        n: u32,
    ) -> Result<(), TestCaseError> {
        let (_, steps) = life(seq, th);
        for (i, st) in steps.iter().enumerate() {
            let streak = last_n(seq, i, n, |o| o == outcome);
            if st.before != health && st.after == health {
                prop_assert!(streak, "{} at #{} of {:?} with {:?}", health, i, seq, th);
            }
            if streak {
                prop_assert_eq!(st.after, health, "#{} of {:?} with {:?}", i, seq, th);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::proptest_cases::safety())]

        /// Going down takes `fall` consecutive failures, and `fall` consecutive failures always
        /// mean down: whatever came before, one lost packet short of `fall` moves nothing.
        #[test]
        fn a_check_goes_down_exactly_on_fall_consecutive_failures(seq in arb_outcomes(), th in arb_thresholds()) {
            entered_exactly_after_a_streak(&seq, th, Health::Down, F, th.fall)?;
        }

        /// Coming up takes `rise` consecutive successes (from unknown, down or degraded alike),
        /// and `rise` consecutive successes always mean up.
        #[test]
        fn a_check_comes_up_exactly_on_rise_consecutive_successes(seq in arb_outcomes(), th in arb_thresholds()) {
            entered_exactly_after_a_streak(&seq, th, Health::Up, O, th.rise)?;
        }

        /// Degraded is entered only from up or unknown after `fall` consecutive bad answers (slow
        /// or failed), or out of down after `rise` consecutive live answers (ok or slow).
        #[test]
        fn degraded_is_entered_only_on_fall_bad_or_rise_live_answers(seq in arb_outcomes(), th in arb_thresholds()) {
            let (_, steps) = life(&seq, th);
            for (i, st) in steps.iter().enumerate() {
                if st.before != Health::Degraded && st.after == Health::Degraded {
                    match st.before {
                        Health::Down => prop_assert!(last_n(&seq, i, th.rise, |o| o != F), "#{} of {:?}", i, seq),
                        _ => prop_assert!(last_n(&seq, i, th.fall, |o| o != O), "#{} of {:?}", i, seq),
                    }
                }
            }
        }

        /// Slow but correct answers never take a check down, however many there are; `fall` of
        /// them in a row from up make it degraded.
        #[test]
        fn slow_answers_alone_never_take_a_check_down(
            seq in arb_outcomes().prop_map(|v| v.into_iter().map(|o| if o == F { D } else { o }).collect::<Vec<_>>()),
            th in arb_thresholds(),
        ) {
            let (_, steps) = life(&seq, th);
            for (i, st) in steps.iter().enumerate() {
                prop_assert_ne!(st.after, Health::Down, "#{} of {:?}", i, seq);
                if st.before == Health::Up && last_n(&seq, i, th.fall, |o| o == D) {
                    prop_assert_eq!(st.after, Health::Degraded, "#{} of {:?}", i, seq);
                }
            }
        }

        /// A new check is unknown until its first transition, which needs at least
        /// min(fall, rise) observations, and no check ever becomes unknown again.
        #[test]
        fn a_check_is_unknown_until_enough_observations_and_never_again(seq in arb_outcomes(), th in arb_thresholds()) {
            let (_, steps) = life(&seq, th);
            let first = steps.iter().position(|st| st.transition.is_some());
            for (i, st) in steps.iter().enumerate() {
                if first.is_none_or(|f| i < f) {
                    prop_assert_eq!(st.after, Health::Unknown);
                }
                prop_assert!(st.transition.is_none_or(|t| t.to != Health::Unknown));
            }
            if let Some(f) = first {
                prop_assert!(f + 1 >= th.fall.min(th.rise) as usize, "first transition at #{} with {:?}", f, th);
            }
        }

        /// `observe` returns a transition exactly when health changed, naming the health before
        /// and after; `since` is the time of the last change (or of the first observation), and
        /// the streaks count the trailing outcomes.
        #[test]
        fn every_change_is_reported_once_with_its_time(seq in arb_outcomes(), th in arb_thresholds()) {
            let (s, steps) = life(&seq, th);
            for st in &steps {
                match st.transition {
                    Some(t) => prop_assert!(t.from == st.before && t.to == st.after && t.from != t.to),
                    None => prop_assert_eq!(st.before, st.after),
                }
            }
            let last_change = steps.iter().rposition(|st| st.transition.is_some());
            let expected_since = match (last_change, seq.is_empty()) {
                (Some(i), _) => Some(at(i as i64)),
                (None, false) => Some(at(0)),
                (None, true) => None,
            };
            prop_assert_eq!(s.since, expected_since);
            let trailing = |pred: fn(&Outcome) -> bool| seq.iter().rev().take_while(|o| pred(o)).count() as u32;
            prop_assert_eq!(s.fail_streak, trailing(|o| *o == F));
            prop_assert_eq!(s.ok_streak, trailing(|o| *o == O));
            prop_assert_eq!(s.bad_streak, trailing(|o| *o != O));
            prop_assert_eq!(s.alive_streak, trailing(|o| *o != F));
        }

        /// A region is down if any layer is down; else unknown if a layer is unknown or no layer
        /// has checks; else degraded if any is degraded; else up — in whatever order the layers come.
        #[test]
        fn region_health_rolls_up_its_layers_in_any_order(
            layers in proptest::collection::vec(
                (prop_oneof![Just(Layer::Infra), Just(Layer::Middleware), Just(Layer::App)], proptest::option::of(arb_health())),
                0..6,
            ),
        ) {
            let seen: Vec<Health> = layers.iter().filter_map(|(_, h)| *h).collect();
            let expected = if seen.contains(&Health::Down) {
                Health::Down
            } else if seen.is_empty() || seen.contains(&Health::Unknown) {
                Health::Unknown
            } else if seen.contains(&Health::Degraded) {
                Health::Degraded
            } else {
                Health::Up
            };
            prop_assert_eq!(region_health(&layers), expected, "{:?}", layers);
            let reversed: Vec<_> = layers.iter().rev().cloned().collect();
            prop_assert_eq!(region_health(&reversed), expected);
            prop_assert_eq!(layer_health(seen.iter().copied()), (!seen.is_empty()).then_some(expected));
        }

        /// `worst` is a proper combination: commutative, associative, idempotent, with up as the
        /// identity and down absorbing everything.
        #[test]
        fn worst_is_commutative_associative_with_up_neutral_and_down_absorbing(
            a in arb_health(), b in arb_health(), c in arb_health(),
        ) {
            prop_assert_eq!(a.worst(b), b.worst(a));
            prop_assert_eq!(a.worst(b).worst(c), a.worst(b.worst(c)));
            prop_assert_eq!(a.worst(a), a);
            prop_assert_eq!(a.worst(Health::Up), a);
            prop_assert_eq!(a.worst(Health::Down), Health::Down);
        }
    }
}
