//! Signals: numbers read from metrics and load-balancer statistics, judged against limits.
//!
//! Pure: the metric and PromQL probes and the passive HAProxy probe fetch text over the network
//! and hand it here; this module parses it, finds the one number a check asks for and says
//! whether that number is ok, degraded or down. It never fetches, never reads a clock (times
//! are arguments) and never guesses: no sample, several samples where one was asked for, or a
//! value that is not a number is a [`Reading::Failed`] with its reason, never a pass.
//!
//! - [`selector`]: `name{label="value",…}`, an exact match on a metric name and labels.
//! - [`node`]: the node_exporter signals operators watch (CPU busy %, memory available %,
//!   filesystem free % of a mount, load per core), computed from one or two scrapes.
//! - [`promql`]: the single value of a Prometheus instant query's answer.
//! - [`haproxy`]: one server's row of HAProxy's `show stat`, and the verdict of the passive
//!   signal (HAProxy's own view of the server, error ratio, queue).

pub mod haproxy;
pub mod node;
pub mod promql;
pub mod selector;

use std::fmt;

/// The limits of a number: above (or below) each one the check is degraded, or down.
///
/// At least one limit is set (the configuration checks it); `degraded_above <= down_above`
/// and `degraded_below >= down_below` when both of a pair are set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ValueLimits {
    /// Degraded when the value is above this.
    pub degraded_above: Option<f64>,
    /// Down when the value is above this.
    pub down_above: Option<f64>,
    /// Degraded when the value is below this.
    pub degraded_below: Option<f64>,
    /// Down when the value is below this.
    pub down_below: Option<f64>,
}

/// What one reading of a signal says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Within every limit; the text names the value (`cpu_busy_percent 12.5`).
    Ok(String),
    /// Past a degraded limit, with the reason.
    Degraded(String),
    /// Past a down limit, or no usable value at all, with the reason.
    Failed(String),
}

impl ValueLimits {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.degraded_above.is_some()
            || self.down_above.is_some()
            || self.degraded_below.is_some()
            || self.down_below.is_some()
    }

    /// Judges `value` of the signal called `what`; NaN and infinities are failures.
    pub fn judge(&self, what: &str, value: f64) -> Reading {
        if !value.is_finite() {
            return Reading::Failed(format!("{what} is {value}, not a number to compare"));
        }
        let shown = Number(value);
        if let Some(l) = self.down_above.filter(|l| value > *l) {
            return Reading::Failed(format!("{what} {shown} above the down limit {}", Number(l)));
        }
        if let Some(l) = self.down_below.filter(|l| value < *l) {
            return Reading::Failed(format!("{what} {shown} below the down limit {}", Number(l)));
        }
        if let Some(l) = self.degraded_above.filter(|l| value > *l) {
            return Reading::Degraded(format!("{what} {shown} above the degraded limit {}", Number(l)));
        }
        if let Some(l) = self.degraded_below.filter(|l| value < *l) {
            return Reading::Degraded(format!("{what} {shown} below the degraded limit {}", Number(l)));
        }
        Reading::Ok(format!("{what} {shown}"))
    }

    /// The limits in words: `degraded above 80, down above 95`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("degraded above", self.degraded_above),
            ("down above", self.down_above),
            ("degraded below", self.degraded_below),
            ("down below", self.down_below),
        ]
        .into_iter()
        .filter_map(|(what, l)| l.map(|l| format!("{what} {}", Number(l))))
        .collect();
        parts.join(", ")
    }
}

/// A number as people read it: at most 4 decimals, no trailing zeros (`12.5`, `0.0833`, `3`).
#[derive(Debug, Clone, Copy)]
pub struct Number(pub f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_finite() {
            return write!(f, "{}", self.0);
        }
        let s = format!("{:.4}", self.0);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        f.write_str(if s == "-0" { "0" } else { s })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CPU: ValueLimits =
        ValueLimits { degraded_above: Some(80.0), down_above: Some(95.0), degraded_below: None, down_below: None };
    const FREE: ValueLimits =
        ValueLimits { degraded_above: None, down_above: None, degraded_below: Some(20.0), down_below: Some(5.0) };

    #[test]
    fn a_value_is_ok_degraded_or_down_by_the_limit_it_passes() {
        assert_eq!(CPU.judge("cpu", 12.5), Reading::Ok("cpu 12.5".into()));
        assert_eq!(CPU.judge("cpu", 80.0), Reading::Ok("cpu 80".into()), "a limit itself is still within");
        assert_eq!(CPU.judge("cpu", 80.01), Reading::Degraded("cpu 80.01 above the degraded limit 80".into()));
        assert_eq!(CPU.judge("cpu", 99.0), Reading::Failed("cpu 99 above the down limit 95".into()));
        assert_eq!(FREE.judge("free", 50.0), Reading::Ok("free 50".into()));
        assert_eq!(FREE.judge("free", 10.0), Reading::Degraded("free 10 below the degraded limit 20".into()));
        assert_eq!(FREE.judge("free", 1.0), Reading::Failed("free 1 below the down limit 5".into()));
    }

    #[test]
    fn nan_and_infinities_fail_whatever_the_limits() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(CPU.judge("x", v), Reading::Failed(_)), "{v}");
            assert!(matches!(FREE.judge("x", v), Reading::Failed(_)), "{v}");
        }
    }

    #[test]
    fn limits_are_described_in_words() {
        assert_eq!(CPU.describe(), "degraded above 80, down above 95");
        assert_eq!(FREE.describe(), "degraded below 20, down below 5");
        assert_eq!(Number(0.083_333).to_string(), "0.0833");
        assert_eq!(Number(-0.000_01).to_string(), "0");
    }

    proptest! {
        #![proptest_config(crate::proptest_cases::safety())]

        /// Moving a value further past a limit never makes the reading better.
        #[test]
        fn a_worse_value_never_reads_better(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let rank = |r: Reading| match r { Reading::Ok(_) => 0, Reading::Degraded(_) => 1, Reading::Failed(_) => 2 };
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(rank(CPU.judge("x", hi)) >= rank(CPU.judge("x", lo)));
            prop_assert!(rank(FREE.judge("x", lo)) >= rank(FREE.judge("x", hi)));
        }
    }
}
