//! Scheduled drills (`[[schedule.drills]]`): cron in an explicit time zone, blackout windows,
//! missed-run detection. PURE.
//!
//! The scheduler itself (tokio-cron-scheduler) is wired in `app.rs`; each run
//! checks [`ScheduledDrill::blocked`] and then asks the engine for a drill like
//! an operator would. tokio-cron-scheduler computes the zone's UTC offset when
//! the job is created, so a daylight-saving change takes effect at the next
//! restart; blackout windows here use the real zone rules at every check.
//!
//! Missed runs (the orchestrator was down, or not the leader, when a run was
//! due) are reported once at start-up and never replayed in a burst.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::DrillRequest;

/// One `[[schedule.drills]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledDrill {
    /// Unique name (recorded as the drill's actor, `schedule:<name>`).
    pub name: String,
    /// 6-field cron expression (seconds first), in `timezone`.
    pub cron: String,
    /// The zone the cron expression and daily blackouts are read in.
    pub timezone: Tz,
    /// The drill to run (validated against the regions at configuration time).
    pub request: DrillRequest,
    /// Windows in which the drill does not run.
    pub blackouts: Vec<Blackout>,
}

/// A window in which scheduled drills are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blackout {
    /// Every day between two local times (`"22:00-06:00"` wraps midnight).
    Daily {
        /// Start, local time.
        from: NaiveTime,
        /// End, local time (exclusive).
        to: NaiveTime,
    },
    /// An absolute range (`"2026-12-24T00:00:00Z/2026-12-27T00:00:00Z"`).
    Range {
        /// Start.
        from: DateTime<Utc>,
        /// End (exclusive).
        to: DateTime<Utc>,
    },
}

impl Blackout {
    /// Parses `"HH:MM-HH:MM"` or `"<RFC 3339>/<RFC 3339>"`.
    ///
    /// # Errors
    /// A sentence saying which form is expected.
    pub fn parse(s: &str) -> Result<Blackout, String> {
        if let Some((a, b)) = s.split_once('/') {
            let from = DateTime::parse_from_rfc3339(a.trim()).map_err(|e| format!("`{a}`: {e}"))?;
            let to = DateTime::parse_from_rfc3339(b.trim()).map_err(|e| format!("`{b}`: {e}"))?;
            if to <= from {
                return Err(format!("`{s}` ends before it starts"));
            }
            return Ok(Blackout::Range { from: from.with_timezone(&Utc), to: to.with_timezone(&Utc) });
        }
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is neither \"HH:MM-HH:MM\" nor \"<RFC 3339>/<RFC 3339>\""))?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| format!("`{x}` is not HH:MM"));
        let (from, to) = (t(a)?, t(b)?);
        if from == to {
            return Err(format!("`{s}` is empty"));
        }
        Ok(Blackout::Daily { from, to })
    }

    /// Whether `now` falls inside the window (daily windows are read in `tz`).
    pub fn contains(&self, now: DateTime<Utc>, tz: &Tz) -> bool {
        match *self {
            Blackout::Range { from, to } => from <= now && now < to,
            Blackout::Daily { from, to } => {
                let local = now.with_timezone(tz).time();
                if from < to { from <= local && local < to } else { local >= from || local < to }
            }
        }
    }
}

/// Parses a 6-field cron expression the way tokio-cron-scheduler does.
///
/// # Errors
/// The parser's message.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    if expr.split_whitespace().count() != 6 {
        return Err(format!("`{expr}` is not a 6-field cron expression (seconds first)"));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("`{expr}`: {e}"))
}

impl ScheduledDrill {
    /// Why the run due at `now` must be skipped by the calendar, if it must.
    pub fn blocked(&self, now: DateTime<Utc>) -> Option<String> {
        self.blackouts.iter().find(|b| b.contains(now, &self.timezone)).map(|b| match b {
            Blackout::Daily { from, to } => {
                format!("inside the daily blackout {}–{} ({})", from.format("%H:%M"), to.format("%H:%M"), self.timezone)
            }
            Blackout::Range { from, to } => format!("inside the blackout {from} – {to}"),
        })
    }

    /// The last time a run was due at or before `now`.
    pub fn last_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = parse_cron(&self.cron).ok()?;
        let local = self.timezone.from_utc_datetime(&now.naive_utc());
        cron.find_previous_occurrence(&local, true).ok().map(|t| t.with_timezone(&Utc))
    }

    /// A run that was due after the last recorded one (or after `since`, when none is recorded)
    /// and before `now`, and that the calendar allowed: a missed run to report.
    pub fn missed_run(
        &self,
        now: DateTime<Utc>,
        last_run: Option<DateTime<Utc>>,
        since: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let due = self.last_due(now)?;
        let floor = last_run.unwrap_or(since).max(since);
        (due > floor && self.blocked(due).is_none()).then_some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn drill(cron: &str, tz: Tz, blackouts: &[&str]) -> ScheduledDrill {
        ScheduledDrill {
            name: "weekly".into(),
            cron: cron.into(),
            timezone: tz,
            request: DrillRequest::default(),
            blackouts: blackouts.iter().map(|b| Blackout::parse(b).unwrap()).collect(),
        }
    }

    #[test]
    fn daily_blackouts_wrap_midnight_in_the_local_zone() {
        let d = drill("0 0 3 * * *", chrono_tz::Europe::Paris, &["22:00-06:00"]);
        // 01:30 UTC in January is 02:30 in Paris: inside.
        assert!(d.blocked(at("2026-01-10T01:30:00Z")).is_some());
        // 12:00 UTC is 13:00 in Paris: outside.
        assert!(d.blocked(at("2026-01-10T12:00:00Z")).is_none());
        // 21:30 UTC is 22:30 in Paris: inside.
        assert!(d.blocked(at("2026-01-10T21:30:00Z")).is_some());
    }

    #[test]
    fn absolute_blackouts_are_half_open() {
        let d = drill("0 0 3 * * *", Tz::UTC, &["2026-12-24T00:00:00Z/2026-12-27T00:00:00Z"]);
        assert!(d.blocked(at("2026-12-24T00:00:00Z")).is_some());
        assert!(d.blocked(at("2026-12-26T23:59:59Z")).is_some());
        assert!(d.blocked(at("2026-12-27T00:00:00Z")).is_none());
    }

    #[test]
    fn bad_blackouts_and_crons_are_refused_with_the_expected_form() {
        assert!(Blackout::parse("soon").unwrap_err().contains("HH:MM"));
        assert!(Blackout::parse("10:00-10:00").is_err());
        assert!(Blackout::parse("2026-12-27T00:00:00Z/2026-12-24T00:00:00Z").unwrap_err().contains("before"));
        assert!(parse_cron("0 3 * * *").unwrap_err().contains("6-field"));
        assert!(parse_cron("0 0 3 * * *").is_ok());
    }

    #[test]
    fn last_due_is_read_in_the_schedule_zone() {
        // 03:00 in New York (EST, UTC-5) is 08:00 UTC.
        let d = drill("0 0 3 * * *", chrono_tz::America::New_York, &[]);
        assert_eq!(d.last_due(at("2026-01-10T09:00:00Z")), Some(at("2026-01-10T08:00:00Z")));
        assert_eq!(d.last_due(at("2026-01-10T07:00:00Z")), Some(at("2026-01-09T08:00:00Z")));
    }

    #[test]
    fn a_run_due_while_down_is_reported_once_not_replayed() {
        let d = drill("0 0 * * * *", Tz::UTC, &[]);
        let since = at("2026-01-01T00:00:00Z");
        // Last run 10:00, now 12:30: the 12:00 run was missed (reported once, as the latest).
        assert_eq!(
            d.missed_run(at("2026-01-10T12:30:00Z"), Some(at("2026-01-10T10:00:00Z")), since),
            Some(at("2026-01-10T12:00:00Z"))
        );
        // Ran at 12:00: nothing missed.
        assert_eq!(d.missed_run(at("2026-01-10T12:30:00Z"), Some(at("2026-01-10T12:00:01Z")), since), None);
        // Never ran, but the schedule is newer than the last due time: nothing missed.
        assert_eq!(d.missed_run(at("2026-01-10T12:30:00Z"), None, at("2026-01-10T12:10:00Z")), None);
    }

    #[test]
    fn a_run_due_inside_a_blackout_is_not_missed() {
        let d = drill("0 0 12 * * *", Tz::UTC, &["11:00-13:00"]);
        assert_eq!(d.missed_run(at("2026-01-10T12:30:00Z"), None, at("2026-01-01T00:00:00Z")), None);
    }
}
