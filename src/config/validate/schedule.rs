//! `[schedule]`: the store housekeeping cron, retention, and the scheduled
//! drills (`[[schedule.drills]]`: cron, time zone, blackouts and the drill
//! request, checked by the same rules as a drill started through the API).

use std::collections::HashSet;
use std::time::Duration;

use crate::config::ScheduleConfig;
use crate::config::error::Problems;
use crate::config::raw::{RawSchedule, RawScheduledDrill};
use crate::drill::schedule::{Blackout, ScheduledDrill, parse_cron};
use crate::drill::{self, DrillRequest};
use crate::policy::Policy;

/// `schedule.housekeeping` and `schedule.retention`; the drills are validated
/// later ([`validate_drills`]), once the policy they are checked against exists.
pub(super) fn validate_housekeeping(raw: &RawSchedule, p: &mut Problems) -> ScheduleConfig {
    let schedule = ScheduleConfig {
        housekeeping: raw.housekeeping.clone().unwrap_or_else(|| "0 */5 * * * *".to_string()),
        retention: raw.retention.unwrap_or(Duration::from_secs(7 * 24 * 3600)),
        drills: Vec::new(),
    };
    if schedule.housekeeping.split_whitespace().count() != 6 {
        p.push(
            "schedule.housekeeping",
            format!("`{}` is not a 6-field cron expression", schedule.housekeeping),
            "write seconds first, e.g. \"0 */5 * * * *\" for every five minutes",
        );
    }
    schedule
}

/// `[[schedule.drills]]`: every drill with a unique name; nameless ones are left out.
pub(super) fn validate_drills(raw: &[RawScheduledDrill], policy: &Policy, p: &mut Problems) -> Vec<ScheduledDrill> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, d) in raw.iter().enumerate() {
        let key = format!("schedule.drills[{i}]");
        let Some(name) = d.name.clone().filter(|n| !n.trim().is_empty()) else {
            p.push(format!("{key}.name"), "missing", "give the scheduled drill a unique name");
            continue;
        };
        if !names.insert(name.clone()) {
            p.push(
                format!("{key}.name"),
                format!("`{name}` is used twice"),
                "give every scheduled drill a unique name",
            );
        }
        out.push(scheduled_drill(&key, name, d, policy, p));
    }
    out
}

/// One scheduled drill: cron, time zone, blackouts, then the drill request itself.
fn scheduled_drill(
    key: &str,
    name: String,
    d: &RawScheduledDrill,
    policy: &Policy,
    p: &mut Problems,
) -> ScheduledDrill {
    let cron = d.cron.clone().unwrap_or_default();
    if let Err(e) = parse_cron(&cron) {
        p.push(format!("{key}.cron"), e, "write 6 fields, seconds first, e.g. \"0 0 10 * * Tue\"");
    }
    let timezone = timezone(key, d, p);
    let blackouts = blackouts(key, d, p);
    let request = DrillRequest {
        evacuate: d.evacuate.clone(),
        target: d.target.clone(),
        steps: d.steps.clone(),
        hold_seconds: d.hold.map(|h| h.as_secs_f64()),
        dry_run: d.dry_run.unwrap_or(false),
        synthetic_failure: d.synthetic_failure.unwrap_or(false),
        reason: d.reason.clone().unwrap_or_else(|| format!("scheduled drill {name}")),
    };
    // The same rules as a drill started through the API; the API's field name
    // `hold_seconds` is `hold` in the file.
    if let Err(e) = drill::validate(policy, &request) {
        let field = if e.field == "hold_seconds" { "hold".to_string() } else { e.field };
        p.push(format!("{key}.{field}"), e.message, "see the drill fields in README.md");
    }
    ScheduledDrill { name, cron, timezone, request, blackouts }
}

/// `timezone`: an IANA name (default UTC).
fn timezone(key: &str, d: &RawScheduledDrill, p: &mut Problems) -> chrono_tz::Tz {
    let tz_name = d.timezone.clone().unwrap_or_else(|| "UTC".into());
    match tz_name.parse::<chrono_tz::Tz>() {
        Ok(t) => t,
        Err(_) => {
            p.push(
                format!("{key}.timezone"),
                format!("`{tz_name}` is not an IANA time zone"),
                "use a name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\"",
            );
            chrono_tz::Tz::UTC
        }
    }
}

/// `blackout[j]`: daily local windows or absolute intervals.
fn blackouts(key: &str, d: &RawScheduledDrill, p: &mut Problems) -> Vec<Blackout> {
    let mut out = Vec::new();
    for (j, b) in d.blackout.iter().enumerate() {
        match Blackout::parse(b) {
            Ok(b) => out.push(b),
            Err(e) => p.push(
                format!("{key}.blackout[{j}]"),
                e,
                "write \"HH:MM-HH:MM\" (daily, local) or \"2026-12-24T00:00:00Z/2026-12-27T00:00:00Z\"",
            ),
        }
    }
    out
}
