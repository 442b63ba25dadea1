//! `[[regions.checks]]`: one probe target at one layer: its type (`tcp`,
//! `http`, `postgres`; `metric`, `promql` and the passive `haproxy` in [`signal_checks`]) with
//! that type's fields, its timing (interval, re-probe
//! interval, timeout, degraded latency) and its counts (fall, rise, attempts).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::signal_checks;
use crate::config::dsn::looks_like_dsn;
use crate::config::error::Problems;
use crate::config::raw::RawCheck;
use crate::config::{CheckConfig, CheckKind, DEFAULT_ATTEMPTS, RegionPostgres};
use crate::region::{CheckId, Layer, RegionName};

/// One check of `region`; `pg` is the region's database, the default target of a postgres check.
pub(super) fn validate(
    key: &str,
    c: &RawCheck,
    region: Option<&RegionName>,
    pg: Option<&RegionPostgres>,
    p: &mut Problems,
) -> Option<CheckConfig> {
    let name = c.name.clone().filter(|n| !n.is_empty());
    if name.is_none() {
        p.push(format!("{key}.name"), "missing", "add name = \"…\" (unique within the region)");
    }
    // Every field is checked even when an earlier one failed, so one run of
    // `check-config` lists all of a check's problems; the `?`s come last.
    let layer = layer(key, c, p);
    let kind = kind(key, c, region, pg, p);
    let timing = timing(key, c, p);
    let fall = count(key, "fall", c.fall, 3, p);
    let rise = count(key, "rise", c.rise, 2, p);
    // Hedged attempts rescue a lost connection; a number past its limit would only be read
    // again, so the checks that judge numbers make one attempt unless told otherwise.
    let default_attempts = match c.kind.as_deref() {
        Some("metric" | "promql" | "haproxy") => 1,
        _ => DEFAULT_ATTEMPTS,
    };
    let attempts = count(key, "attempts", c.attempts, default_attempts, p);
    Some(CheckConfig {
        id: CheckId::new(region?.clone(), name?),
        layer: layer?,
        kind: kind?,
        interval: timing.interval,
        fast_interval: timing.fast_interval,
        timeout: timing.timeout,
        fall: fall?,
        rise: rise?,
        degraded_latency: c.degraded_latency,
        attempts: attempts?,
    })
}

/// `layer`: `infra`, `middleware` or `app`.
fn layer(key: &str, c: &RawCheck, p: &mut Problems) -> Option<Layer> {
    match c.layer.as_deref() {
        Some("infra") => Some(Layer::Infra),
        Some("middleware") => Some(Layer::Middleware),
        Some("app") => Some(Layer::App),
        Some(o) => {
            p.push(format!("{key}.layer"), format!("`{o}` is not a layer"), "use \"infra\", \"middleware\" or \"app\"");
            None
        }
        None => {
            p.push(format!("{key}.layer"), "missing", "add layer = \"infra\" | \"middleware\" | \"app\"");
            None
        }
    }
}

/// `type` and the fields that type needs.
fn kind(
    key: &str,
    c: &RawCheck,
    region: Option<&RegionName>,
    pg: Option<&RegionPostgres>,
    p: &mut Problems,
) -> Option<CheckKind> {
    if let Some(kind) = c.kind.as_deref() {
        signal_checks::foreign_fields(key, kind, c, p);
    }
    match c.kind.as_deref() {
        Some("tcp") => tcp(key, c, p),
        Some("http") => http(key, c, p),
        Some("postgres") => postgres(key, c, pg, p),
        Some("metric") => signal_checks::metric(key, c, p),
        Some("promql") => signal_checks::promql(key, c, p),
        Some("haproxy") => signal_checks::haproxy(key, c, region, p),
        Some(o) => {
            p.push(format!("{key}.type"), format!("`{o}` is not a check type"), format!("use {TYPES}"));
            None
        }
        None => {
            p.push(format!("{key}.type"), "missing", format!("add type = {TYPES}"));
            None
        }
    }
}

/// Every check type, as a fix names them.
const TYPES: &str = "\"tcp\" | \"http\" | \"postgres\" | \"metric\" | \"promql\" | \"haproxy\"";

/// `type = "tcp"`: `target` is host:port.
fn tcp(key: &str, c: &RawCheck, p: &mut Problems) -> Option<CheckKind> {
    match &c.target {
        Some(t) if t.rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok()) => {
            Some(CheckKind::Tcp { target: t.clone() })
        }
        Some(t) => {
            p.push(format!("{key}.target"), format!("`{t}` is not host:port"), "write e.g. \"10.0.0.5:443\"");
            None
        }
        None => {
            p.push(format!("{key}.target"), "missing for type = \"tcp\"", "add target = \"host:port\"");
            None
        }
    }
}

/// `type = "http"`: an http(s) `url` and an `expect_status` (default 200).
fn http(key: &str, c: &RawCheck, p: &mut Problems) -> Option<CheckKind> {
    let expect_status = match c.expect_status {
        None => Some(200),
        Some(s) if (100..=599).contains(&s) => Some(s as u16),
        Some(s) => {
            p.push(
                format!("{key}.expect_status"),
                format!("{s} is not an HTTP status"),
                "use a code between 100 and 599",
            );
            None
        }
    };
    match &c.url {
        Some(u) if reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => {
            expect_status.map(|expect_status| CheckKind::Http {
                url: u.clone(),
                expect_status,
                body_contains: c.body_contains.clone(),
            })
        }
        Some(u) => {
            p.push(
                format!("{key}.url"),
                format!("`{u}` is not an http(s) URL"),
                "write e.g. \"http://10.0.0.5:8080/health\"",
            );
            None
        }
        None => {
            p.push(format!("{key}.url"), "missing for type = \"http\"", "add url = \"http://…\"");
            None
        }
    }
}

/// `type = "postgres"`: its own `dsn`, or the region's database.
fn postgres(key: &str, c: &RawCheck, pg: Option<&RegionPostgres>, p: &mut Problems) -> Option<CheckKind> {
    // The check's own DSN wins (e.g. a monitoring user); otherwise it probes the
    // region's database, whose DSN may come from `FO_PG_DSN_<REGION>`.
    let dsn = c.dsn.clone().map(SecretString::from).or_else(|| pg.map(|pg| pg.dsn.clone()));
    match dsn {
        Some(dsn) if looks_like_dsn(dsn.expose_secret()) => {
            Some(CheckKind::Postgres { dsn, expect_recovery: c.expect_recovery })
        }
        Some(_) => {
            p.push(format!("{key}.dsn"), "is not a PostgreSQL DSN", "use postgres://user@host:port/db");
            None
        }
        None => {
            p.push(
                format!("{key}.dsn"),
                "missing for type = \"postgres\" and the region has no [regions.postgres]",
                "add dsn = \"postgres://…\" here or a [regions.postgres] table with dsn",
            );
            None
        }
    }
}

/// A check's timing, defaults applied.
struct Timing {
    interval: Duration,
    fast_interval: Duration,
    timeout: Duration,
}

/// `interval` (default 1s), `timeout` (default 80 % of it), `fast_interval`
/// (default the interval) and `degraded_latency`, checked against each other.
fn timing(key: &str, c: &RawCheck, p: &mut Problems) -> Timing {
    let interval = c.interval.unwrap_or(Duration::from_secs(1));
    // A probe must end before the next one starts: the default leaves a fifth of
    // the interval for the runner to record the result.
    let timeout = c.timeout.unwrap_or(interval.mul_f64(0.8));
    let fast_interval = c.fast_interval.unwrap_or(interval);
    let fmt = humantime::format_duration;
    if interval.is_zero() {
        p.push(format!("{key}.interval"), "is zero", "use a positive duration, e.g. \"1s\"");
    }
    if timeout.is_zero() {
        p.push(format!("{key}.timeout"), "is zero", "use a positive duration below interval");
    } else if timeout > interval {
        p.push(
            format!("{key}.timeout"),
            format!("({}) must be <= interval ({})", fmt(timeout), fmt(interval)),
            "lower timeout or raise interval",
        );
    }
    if fast_interval.is_zero() || fast_interval > interval {
        p.push(
            format!("{key}.fast_interval"),
            format!("({}) must be > 0 and <= interval ({})", fmt(fast_interval), fmt(interval)),
            "use e.g. \"100ms\", or leave it out to re-probe at the steady interval",
        );
    }
    // A latency threshold at or above the timeout can never be seen: the probe
    // would time out (fail) before it could count as slow (degraded).
    if let Some(d) = c.degraded_latency
        && d >= timeout
        && !timeout.is_zero()
    {
        p.push(
            format!("{key}.degraded_latency"),
            format!("({}) must be < timeout ({})", fmt(d), fmt(timeout)),
            "lower degraded_latency or raise timeout, or slow probes will fail instead of degrading",
        );
    }
    Timing { interval, fast_interval, timeout }
}

/// A count of consecutive probes at `key.field`, 1–100 (`default` when absent).
fn count(key: &str, field: &str, v: Option<i64>, default: u32, p: &mut Problems) -> Option<u32> {
    match v {
        None => Some(default),
        Some(n) if (1..=100).contains(&n) => Some(n as u32),
        Some(n) => {
            p.push(
                format!("{key}.{field}"),
                format!("{n} is outside 1–100"),
                format!("use a count of consecutive probes, e.g. {field} = {default}"),
            );
            None
        }
    }
}
