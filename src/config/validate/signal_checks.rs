//! The checks that judge a number rather than an answer: `type = "metric"` (a Prometheus
//! exposition endpoint: a selector or a node_exporter signal), `type = "promql"` (an instant
//! query to a Prometheus server) with their limits, and the passive `type = "haproxy"` (HAProxy's
//! view of the region's server) with its limits. Fields of these types given on another
//! type are refused, so a limit never silently means nothing.

use super::providers::haproxy::{admin, backend};
use crate::config::CheckKind;
use crate::config::MetricSource;
use crate::config::error::Problems;
use crate::config::raw::RawCheck;
use crate::region::RegionName;
use crate::signal::ValueLimits;
use crate::signal::haproxy::PassiveLimits;
use crate::signal::node::{self, NodeSignal};
use crate::signal::selector::Selector;

/// Each field of these check types and the types it belongs to.
fn owners(c: &RawCheck) -> [(&'static str, bool, &'static [&'static str]); 18] {
    const METRIC: &[&str] = &["metric"];
    const NUMBERS: &[&str] = &["metric", "promql"];
    const HAPROXY: &[&str] = &["haproxy"];
    [
        ("metric", c.metric.is_some(), METRIC),
        ("node", c.node.is_some(), METRIC),
        ("mountpoint", c.mountpoint.is_some(), METRIC),
        ("query", c.query.is_some(), &["promql"]),
        ("degraded_above", c.degraded_above.is_some(), NUMBERS),
        ("down_above", c.down_above.is_some(), NUMBERS),
        ("degraded_below", c.degraded_below.is_some(), NUMBERS),
        ("down_below", c.down_below.is_some(), NUMBERS),
        ("admin_addr", c.admin_addr.is_some(), HAPROXY),
        ("admin_socket", c.admin_socket.is_some(), HAPROXY),
        ("backend", c.backend.is_some(), HAPROXY),
        ("server", c.server.is_some(), HAPROXY),
        ("degraded_error_ratio", c.degraded_error_ratio.is_some(), HAPROXY),
        ("down_error_ratio", c.down_error_ratio.is_some(), HAPROXY),
        ("min_sessions", c.min_sessions.is_some(), HAPROXY),
        ("degraded_queue", c.degraded_queue.is_some(), HAPROXY),
        ("down_queue", c.down_queue.is_some(), HAPROXY),
        ("url", c.url.is_some() && c.kind.as_deref() == Some("haproxy"), &["http", "metric", "promql"]),
    ]
}

/// Refuses a field of these types set on a check of `kind`.
pub(super) fn foreign_fields(key: &str, kind: &str, c: &RawCheck, p: &mut Problems) {
    for (field, set, types) in owners(c) {
        if set && !types.contains(&kind) {
            let on = types.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" or ");
            p.push(
                format!("{key}.{field}"),
                format!("means nothing for type = \"{kind}\""),
                format!("remove it, or use it on a check of type = {on}"),
            );
        }
    }
}

/// An http(s) URL at `key.url`, `example` in the fix.
fn url(key: &str, c: &RawCheck, kind: &str, example: &str, p: &mut Problems) -> Option<String> {
    match &c.url {
        Some(u) if reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => Some(u.clone()),
        Some(u) => {
            let shown = crate::redact::url(u);
            p.push(
                format!("{key}.url"),
                format!("`{shown}` is not an http(s) URL"),
                format!("write e.g. \"{example}\""),
            );
            None
        }
        None => {
            p.push(format!("{key}.url"), format!("missing for type = \"{kind}\""), format!("add url = \"{example}\""));
            None
        }
    }
}

/// The four limits of a number: at least one, each finite, each pair in order.
fn value_limits(key: &str, c: &RawCheck, p: &mut Problems) -> Option<ValueLimits> {
    let limits = ValueLimits {
        degraded_above: c.degraded_above,
        down_above: c.down_above,
        degraded_below: c.degraded_below,
        down_below: c.down_below,
    };
    let mut ok = true;
    for (field, v) in [
        ("degraded_above", limits.degraded_above),
        ("down_above", limits.down_above),
        ("degraded_below", limits.degraded_below),
        ("down_below", limits.down_below),
    ] {
        if v.is_some_and(|v| !v.is_finite()) {
            p.push(format!("{key}.{field}"), "is not a finite number", "use a plain number, e.g. 80 or 0.05");
            ok = false;
        }
    }
    if !limits.is_set() {
        p.push(
            format!("{key}.down_above"),
            "no limit is set, so the value could never fail",
            "add degraded_above / down_above (a value that must stay low) or degraded_below / down_below (one that must stay high)",
        );
        ok = false;
    }
    if let (Some(d), Some(x)) = (limits.degraded_above, limits.down_above)
        && d > x
    {
        p.push(
            format!("{key}.degraded_above"),
            format!("({d}) is above down_above ({x})"),
            "degraded comes first: degraded_above <= down_above",
        );
        ok = false;
    }
    if let (Some(d), Some(x)) = (limits.degraded_below, limits.down_below)
        && d < x
    {
        p.push(
            format!("{key}.degraded_below"),
            format!("({d}) is below down_below ({x})"),
            "degraded comes first: degraded_below >= down_below",
        );
        ok = false;
    }
    ok.then_some(limits)
}

/// `type = "metric"`: `url`, exactly one of `metric` (a selector) or `node` (with
/// `mountpoint` for `filesystem_free_percent`), and limits.
pub(super) fn metric(key: &str, c: &RawCheck, p: &mut Problems) -> Option<CheckKind> {
    let url = url(key, c, "metric", "http://10.0.0.5:9100/metrics", p);
    let source = match (&c.metric, &c.node) {
        (Some(_), Some(_)) => {
            p.push(
                format!("{key}.node"),
                "both metric and node are set",
                "keep one: a selector in metric, or a node signal in node",
            );
            None
        }
        (Some(m), None) => match Selector::parse(m) {
            Ok(s) => {
                if c.mountpoint.is_some() {
                    p.push(
                        format!("{key}.mountpoint"),
                        "means nothing with metric",
                        "put the label in the selector: name{mountpoint=\"/\"}",
                    );
                }
                Some(MetricSource::Selector(s))
            }
            Err(e) => {
                p.push(
                    format!("{key}.metric"),
                    e,
                    "write name or name{label=\"value\",…}, e.g. app_error_ratio{region=\"eu\"}",
                );
                None
            }
        },
        (None, Some(n)) => match NodeSignal::parse(n, c.mountpoint.as_deref()) {
            Ok(s) => Some(MetricSource::Node(s)),
            Err(e) => {
                let field = if e.contains("mountpoint") { "mountpoint" } else { "node" };
                p.push(format!("{key}.{field}"), e, format!("node is one of {}", node::NAMES.join(", ")));
                None
            }
        },
        (None, None) => {
            p.push(
                format!("{key}.metric"),
                "missing for type = \"metric\"",
                format!("add metric = \"name{{label=\\\"value\\\"}}\" or node = one of {}", node::NAMES.join(", ")),
            );
            None
        }
    };
    let limits = value_limits(key, c, p);
    Some(CheckKind::Metric { url: url?, source: source?, limits: limits? })
}

/// `type = "promql"`: the Prometheus server's `url`, a `query` and limits.
pub(super) fn promql(key: &str, c: &RawCheck, p: &mut Problems) -> Option<CheckKind> {
    let url = url(key, c, "promql", "http://prometheus:9090", p);
    let query = match c.query.as_deref().map(str::trim) {
        Some(q) if !q.is_empty() => Some(q.to_string()),
        Some(_) => {
            p.push(format!("{key}.query"), "is empty", "write a PromQL expression giving one number");
            None
        }
        None => {
            p.push(
                format!("{key}.query"),
                "missing for type = \"promql\"",
                "add query = \"sum(rate(http_requests_total{code=~\\\"5..\\\"}[1m])) / sum(rate(http_requests_total[1m]))\"",
            );
            None
        }
    };
    let limits = value_limits(key, c, p);
    Some(CheckKind::Promql { url: url?, query: query?, limits: limits? })
}

/// A ratio 0–1 at `key.field`.
fn ratio(key: &str, field: &str, v: Option<f64>, default: Option<f64>, p: &mut Problems) -> Option<Option<f64>> {
    match v {
        None => Some(default),
        Some(r) if r > 0.0 && r <= 1.0 => Some(Some(r)),
        Some(r) => {
            p.push(
                format!("{key}.{field}"),
                format!("{r} is not a share above 0 and at most 1"),
                "write e.g. 0.05 for 5 %",
            );
            None
        }
    }
}

/// A count ≥ 1 at `key.field`.
fn positive(key: &str, field: &str, v: Option<i64>, p: &mut Problems) -> Option<Option<u64>> {
    match v {
        None => Some(None),
        Some(n) if n >= 1 => Some(Some(n as u64)),
        Some(n) => {
            p.push(format!("{key}.{field}"), format!("{n} is not a positive count"), "use 1 or more");
            None
        }
    }
}

/// `type = "haproxy"`: the runtime API, `backend`, `server` (default the region name) and the
/// limits of the passive signal.
pub(super) fn haproxy(key: &str, c: &RawCheck, region: Option<&RegionName>, p: &mut Problems) -> Option<CheckKind> {
    let admin = admin(key, c.admin_addr.as_ref(), c.admin_socket.as_deref(), p);
    let backend = backend(key, c.backend.as_deref(), p);
    let server = match (&c.server, region) {
        (Some(s), _) if !s.is_empty() && !s.contains(char::is_whitespace) => Some(s.clone()),
        (Some(s), _) => {
            p.push(
                format!("{key}.server"),
                format!("`{s}` is not a server name"),
                "use the name after `server` in haproxy.cfg",
            );
            None
        }
        (None, r) => r.map(ToString::to_string),
    };
    let defaults = PassiveLimits::default();
    let degraded = ratio(key, "degraded_error_ratio", c.degraded_error_ratio, defaults.degraded_error_ratio, p);
    let down = ratio(key, "down_error_ratio", c.down_error_ratio, defaults.down_error_ratio, p);
    let min_sessions = positive(key, "min_sessions", c.min_sessions, p);
    let degraded_queue = positive(key, "degraded_queue", c.degraded_queue, p);
    let down_queue = positive(key, "down_queue", c.down_queue, p);
    if let (Some(Some(d)), Some(Some(x))) = (degraded, down)
        && d > x
    {
        p.push(
            format!("{key}.degraded_error_ratio"),
            format!("({d}) is above down_error_ratio ({x})"),
            "degraded comes first",
        );
    }
    if let (Some(Some(d)), Some(Some(x))) = (degraded_queue, down_queue)
        && d > x
    {
        p.push(format!("{key}.degraded_queue"), format!("({d}) is above down_queue ({x})"), "degraded comes first");
    }
    let limits = PassiveLimits {
        degraded_error_ratio: degraded?,
        down_error_ratio: down?,
        min_sessions: min_sessions?.unwrap_or(defaults.min_sessions),
        degraded_queue: degraded_queue?,
        down_queue: down_queue?,
    };
    Some(CheckKind::Haproxy { admin: admin?, backend: backend?, server: server?, limits })
}
