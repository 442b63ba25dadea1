//! `[limits]`: rate limits of the API per client IP and the bound on live streams.
//! Every limit is a positive number; none can be switched off, only raised.

use std::num::NonZeroU32;

use crate::config::LimitsConfig;
use crate::config::error::Problems;
use crate::config::raw::RawLimits;

/// Above this a limit no longer limits anything a single orchestrator could serve.
const MAX_LIMIT: i64 = 1_000_000;

/// Validates `[limits]`; an absent key takes its default.
pub(super) fn validate(raw: &RawLimits, p: &mut Problems) -> LimitsConfig {
    let d = LimitsConfig::default();
    let mutations_per_minute = rate(p, "limits.mutations_per_minute", raw.mutations_per_minute, d.mutations_per_minute);
    let auth_failures_per_minute =
        rate(p, "limits.auth_failures_per_minute", raw.auth_failures_per_minute, d.auth_failures_per_minute);
    let max_streams = match raw.max_streams {
        None => d.max_streams,
        Some(n) => match usize::try_from(n) {
            Ok(v) if (1..=MAX_LIMIT).contains(&n) => v,
            _ => {
                p.push(
                    "limits.max_streams",
                    format!("{n} is outside 1–{MAX_LIMIT}"),
                    "give how many dashboards may watch at once, e.g. 64 (the default)",
                );
                d.max_streams
            }
        },
    };
    LimitsConfig { mutations_per_minute, auth_failures_per_minute, max_streams }
}

/// A per-minute rate in 1–[`MAX_LIMIT`].
fn rate(p: &mut Problems, key: &str, raw: Option<i64>, default: NonZeroU32) -> NonZeroU32 {
    let Some(n) = raw else { return default };
    match u32::try_from(n).ok().filter(|_| n <= MAX_LIMIT).and_then(NonZeroU32::new) {
        Some(v) => v,
        None => {
            p.push(
                key,
                format!("{n} is outside 1–{MAX_LIMIT} per minute"),
                format!("give a positive number of requests per minute, e.g. {default} (the default)"),
            );
            default
        }
    }
}
