//! How many cases the property tests of the pure core run (tests only; not in the binary).
//!
//! Every safety property runs at least [`SAFETY_CASES`] cases, in CI and in a plain `cargo test`
//! alike: the floor is a constant, not an environment setting a run could forget. `PROPTEST_CASES`
//! can raise the count for a longer soak, never lower it. A `proptest!` block opts in with
//! `#![proptest_config(crate::proptest_cases::safety())]`; an explicit `with_cases(n)` elsewhere
//! would override both, so none is used.

use proptest::test_runner::Config;

/// The least number of cases a safety property runs (issue 12: at least 10 000 in CI).
pub(crate) const SAFETY_CASES: u32 = 10_000;

/// Proptest's defaults (which read `PROPTEST_CASES`), with at least [`SAFETY_CASES`] cases.
pub(crate) fn safety() -> Config {
    let base = Config::default();
    Config { cases: base.cases.max(SAFETY_CASES), ..base }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_properties_run_at_least_ten_thousand_cases() {
        let c = safety();
        assert!(c.cases >= 10_000, "{} cases", c.cases);
    }
}
