//! The observability shipped with the product (`deploy/`): the Prometheus alerting rules pass
//! `promtool check rules` and their own unit tests, every alert has a firing and a non-firing
//! case there, and every metric the Grafana dashboard and the rules query is one a running
//! orchestrator exports — read from its `/metrics`, and through a real Prometheus scraping it,
//! which also runs every dashboard query (so each one parses).
//!
//! *Exported* means a sample line in `/metrics` under the name Prometheus stores
//! (`fo_plans_applied_total`, `fo_probe_latency_seconds_bucket`); a `# TYPE` line alone does not
//! count. The families that have no series until something happens are made to have them: the
//! orchestrator runs over real streaming replication (lag), its provider applies the start-up
//! plan (apply latency, breaker, drift), and its checks come up (check and layer health). The
//! label names a query's matchers use must be on the metric's samples too, apart from `job` and
//! `instance`, which Prometheus adds when it scrapes.
//!
//! The PromQL reader below is small on purpose: it finds the selectors of an expression (metric
//! names, and the label names of their matchers) and skips everything else, and it has its own
//! tests, including one where it must report a metric that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fo_lab::prometheus::{PROMTOOL, Prometheus};

use crate::common::{spawn_app, w};
use crate::lag::{lag_spec, topology};

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const ALERTS_TEST: &str = "deploy/prometheus/alerts_test.yml";
const DASHBOARD: &str = "deploy/grafana/failover-orchestrator.json";

/// Labels a Prometheus scrape adds to every series (not in `/metrics` itself).
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Runs promtool from the repository root; its output when it succeeds, a panic naming what it
/// said otherwise. A missing promtool fails too: these checks are never skipped.
fn promtool(args: &[&str]) -> String {
    let out = Command::new(PROMTOOL).args(args).current_dir(root()).output().unwrap_or_else(|e| {
        panic!("cannot run {PROMTOOL} ({e}): install Debian's prometheus package (scripts/install-deps.sh)")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed ({}):\n{text}", args.join(" "), out.status);
    text
}

#[test]
fn the_alert_rules_pass_promtool_check_rules_and_every_rule_is_read_here() {
    let out = promtool(&["check", "rules", ALERTS]);
    // The count ties promtool's reading to ours: no rule's expression escapes the metric check.
    let rules = rule_exprs(&read(ALERTS)).unwrap();
    assert!(out.contains(&format!("SUCCESS: {} rules found", rules.len())), "{out}");
    assert_eq!(rules.len(), alert_names(&read(ALERTS)).len(), "one expr per alert");
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let out = promtool(&["test", "rules", ALERTS_TEST]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_a_firing_and_a_non_firing_case() {
    let alerts = alert_names(&read(ALERTS));
    let cases = alert_cases(&read(ALERTS_TEST));
    assert!(alerts.len() >= 6, "{alerts:?}");
    for a in &alerts {
        let c = cases.get(a).copied().unwrap_or_default();
        assert!(
            c.firing > 0 && c.quiet > 0,
            "{a}: {} firing and {} non-firing case(s) in {ALERTS_TEST}",
            c.firing,
            c.quiet
        );
    }
    for tested in cases.keys() {
        assert!(alerts.contains(tested), "{ALERTS_TEST} tests {tested}, which {ALERTS} does not define");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported_by_a_running_orchestrator() {
    let queries = shipped_queries();
    let t = topology("obs").await;
    let mut app = spawn_app(lag_spec(&t, "obs", &[], &[])).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.wait_for("every check probed and both standbys' lag known", Duration::from_secs(30), |s| {
        s.regions.iter().all(|r| r.checks.iter().all(|c| c.health != failover_orchestrator::health::Health::Unknown))
            && s.regions
                .iter()
                .filter(|r| r.lag.as_ref().is_some_and(|l| l.bytes.is_some() && l.seconds.is_some()))
                .count()
                == 2
    })
    .await;

    let text = app.http.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    let exported = exported(&text);
    let missing = unexported(&queries, &exported);
    assert!(missing.is_empty(), "queried but not exported:\n{}\n\n/metrics:\n{text}", missing.join("\n"));

    // A real Prometheus scraping the orchestrator stores the same names and runs every query.
    let prom =
        Prometheus::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &[app.addr], Duration::from_millis(200)).await.unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let names: BTreeSet<String> = instant_query(&http, &prom, "group by (__name__) ({__name__=~\"fo_.+\"})")
            .await
            .unwrap()
            .iter()
            .filter_map(|r| r["metric"]["__name__"].as_str().map(str::to_string))
            .collect();
        if names.len() >= exported.len() || Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let wanted: BTreeSet<&String> = queries.iter().flat_map(|q| q.selected.iter().map(|s| &s.metric)).collect();
    let absent: Vec<&&String> = wanted.iter().filter(|m| !stored.contains(m.as_str())).collect();
    assert!(absent.is_empty(), "Prometheus stored none of {absent:?}; it has {stored:?}");
    for q in &queries {
        let runnable = grafana_variables_filled(&q.promql);
        if let Err(e) = instant_query(&http, &prom, &runnable).await {
            panic!("{}: Prometheus refused `{runnable}`: {e}", q.place);
        }
    }
    prom.stop().await.unwrap();
    app.shutdown().await;
}

/// The result vector of an instant query, or Prometheus's error.
async fn instant_query(
    http: &reqwest::Client,
    prom: &Prometheus,
    promql: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let body: serde_json::Value = http
        .get(format!("{}/api/v1/query", prom.url()))
        .query(&[("query", promql)])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{} {}", body["errorType"], body["error"]));
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// A dashboard query as Grafana sends it: interval variables become a duration, the others
/// (only ever inside a regex matcher) match anything.
fn grafana_variables_filled(promql: &str) -> String {
    let mut s = promql.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1m");
    for v in ["${job}", "${instance}", "${region}", "$job", "$instance", "$region"] {
        s = s.replace(v, ".*");
    }
    s
}

// --- what the shipped files query ---

/// One query of a shipped file: where it is, its PromQL, and what it selects.
#[derive(Debug)]
struct Query {
    place: String,
    promql: String,
    selected: Vec<Selected>,
}

/// Every query of the dashboard (panel targets, annotations, template variables) and of the
/// alerting rules.
fn shipped_queries() -> Vec<Query> {
    let mut out = Vec::new();
    let dashboard: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    for (place, promql) in dashboard_queries(&dashboard) {
        let selected = selected(&promql).unwrap_or_else(|e| panic!("{DASHBOARD} {place}: {e}: {promql}"));
        out.push(Query { place: format!("{DASHBOARD} {place}"), promql, selected });
    }
    for (alert, promql) in rule_exprs(&read(ALERTS)).unwrap() {
        let selected = selected(&promql).unwrap_or_else(|e| panic!("{ALERTS} {alert}: {e}: {promql}"));
        out.push(Query { place: format!("{ALERTS} {alert}"), promql, selected });
    }
    assert!(out.iter().all(|q| !q.selected.is_empty()), "a query that selects nothing: {out:#?}");
    out
}

/// The PromQL of a dashboard: every `expr` (panel targets, annotations) and every query
/// variable, each with the title of the panel (or the name of the variable or annotation) it is
/// in. A `label_values(<selector>, <label>)` variable yields `<selector>{<label>=~".*"}`, so that
/// its label is checked as a matcher's.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, place: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                let here = m.get("title").or(m.get("name")).and_then(|t| t.as_str()).unwrap_or(place);
                if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                    out.push((format!("`{here}`"), e.to_string()));
                }
                if m.get("type").and_then(|t| t.as_str()) == Some("query") {
                    // Grafana runs `query` (a string, or an object holding it); `definition` is its label.
                    let q = match m.get("query") {
                        Some(serde_json::Value::Object(o)) => o.get("query").and_then(|q| q.as_str()),
                        Some(q) => q.as_str(),
                        None => None,
                    };
                    let q = q.or(m.get("definition").and_then(|d| d.as_str())).unwrap_or_default();
                    out.push((format!("variable `{here}`"), variable_promql(q)));
                }
                for (k, child) in m {
                    if k != "expr" {
                        walk(child, here, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| walk(c, place, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, "dashboard", &mut out);
    out
}

/// The PromQL a Grafana variable query stands for.
fn variable_promql(q: &str) -> String {
    let q = q.trim();
    if let Some(args) = q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')'))
        && let Some((sel, label)) = args.rsplit_once(',')
    {
        let (sel, label) = (sel.trim(), label.trim());
        return match sel.strip_suffix('}') {
            Some(open) => format!("{open}, {label}=~\".*\"}}"),
            None => format!("{sel}{{{label}=~\".*\"}}"),
        };
    }
    q.strip_prefix("query_result(").and_then(|r| r.strip_suffix(')')).unwrap_or(q).to_string()
}

/// `/metrics` as Prometheus stores it: each sample name with the label names its samples carry.
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_string()).or_default();
        if line[end..].starts_with('{') {
            let mut lx = Lexer::new(&line[end + 1..]);
            labels.extend(lx.matchers().unwrap_or_else(|e| panic!("unreadable /metrics line `{line}`: {e}")));
        }
    }
    out
}

/// Every selection of `queries` whose metric has no sample in `exported`, or whose matchers
/// name a label none of its samples carries (`job` and `instance` aside), said with its place.
fn unexported(queries: &[Query], exported: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for q in queries {
        for s in &q.selected {
            match exported.get(&s.metric) {
                None => out.push(format!("{}: metric {} (in `{}`)", q.place, s.metric, q.promql)),
                Some(have) => {
                    for l in s.labels.iter().filter(|l| !have.contains(*l) && !TARGET_LABELS.contains(&l.as_str())) {
                        out.push(format!("{}: label {l} of {} (it has {have:?})", q.place, s.metric));
                    }
                }
            }
        }
    }
    out
}

// --- the alerting rules and their tests, read as the YAML subset they are written in ---

/// The names of the alerts (`- alert: NAME`).
fn alert_names(yaml: &str) -> Vec<String> {
    yaml.lines().filter_map(|l| l.trim().strip_prefix("- alert:")).map(|n| n.trim().to_string()).collect()
}

/// The `expr` of every rule, with its alert (or record) name. Reads a plain, quoted or block
/// (`|`, `>`) value with its continuation lines (those indented deeper than the key).
fn rule_exprs(yaml: &str) -> Result<Vec<(String, String)>, String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut rule = String::from("?");
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(n) = t.strip_prefix("alert:").or(t.strip_prefix("record:")) {
            rule = n.trim().to_string();
        }
        let Some(first) = t.strip_prefix("expr:") else { continue };
        let more: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
            .map(|l| l.trim())
            .collect();
        let first = first.trim();
        let expr = if first.starts_with(['|', '>']) {
            more.join("\n")
        } else {
            let joined = std::iter::once(first).chain(more).collect::<Vec<_>>().join(" ");
            let joined = joined.trim();
            if let Some(q) = joined.strip_prefix('"') {
                q.strip_suffix('"')
                    .ok_or(format!("{rule}: unterminated \""))?
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\")
            } else if let Some(q) = joined.strip_prefix('\'') {
                q.strip_suffix('\'').ok_or(format!("{rule}: unterminated '"))?.replace("''", "'")
            } else {
                joined.to_string()
            }
        };
        if expr.trim().is_empty() {
            return Err(format!("{rule}: empty expr"));
        }
        out.push((rule.clone(), expr));
    }
    Ok(out)
}

/// How many cases of a promtool test file expect an alert to fire, and how many expect it not to.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Cases {
    firing: usize,
    quiet: usize,
}

/// The cases per alert of a promtool test file: each `- eval_time:` entry with its `alertname`;
/// one with `exp_labels` expects it to fire, one without (`exp_alerts: []`) expects it not to.
fn alert_cases(yaml: &str) -> BTreeMap<String, Cases> {
    let mut out: BTreeMap<String, Cases> = BTreeMap::new();
    let mut entry: Option<(Option<String>, bool)> = None;
    let mut close = |e: Option<(Option<String>, bool)>| {
        if let Some((Some(name), fires)) = e {
            let c = out.entry(name).or_default();
            if fires { c.firing += 1 } else { c.quiet += 1 }
        }
    };
    for l in yaml.lines().map(str::trim) {
        if l.starts_with("- eval_time:") || l.starts_with("- interval:") {
            close(entry.take());
            if l.starts_with("- eval_time:") {
                entry = Some((None, false));
            }
        } else if let Some((name, fires)) = &mut entry {
            if let Some(n) = l.strip_prefix("alertname:") {
                *name = Some(n.trim().to_string());
            }
            *fires |= l.starts_with("- exp_labels:");
        }
    }
    close(entry);
    out
}

// --- PromQL selectors ---

/// A metric a PromQL expression selects, with the label names its matchers use.
#[derive(Debug, Clone, PartialEq)]
struct Selected {
    metric: String,
    labels: Vec<String>,
}

/// Words followed by a label list in parentheses, which is not an expression.
const LABEL_LIST_KEYWORDS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Other words that are no metric: binary operators, modifiers, numbers, aggregations (which may
/// stand before `by (…)` rather than before their parenthesis).
const KEYWORDS: [&str; 22] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The selectors of a PromQL expression, in order. Skips function names (a word before `(`),
/// keywords, label lists of `by`/`on`/…, numbers and durations, `[…]` ranges, string literals,
/// comments and Grafana variables (`$name`, `${name}`).
///
/// # Errors
/// An unterminated string, matcher list or range, or a matcher that is not `label op "value"`.
fn selected(expr: &str) -> Result<Vec<Selected>, String> {
    let mut lx = Lexer::new(expr);
    let mut out = Vec::new();
    while let Some(c) = lx.peek() {
        match c {
            c if c.is_whitespace() => lx.bump(),
            '#' => lx.skip_while(|c| c != '\n'),
            '"' | '\'' | '`' => {
                lx.string()?;
            }
            '$' => lx.variable(),
            '[' => lx.range()?,
            '{' => {
                // A selector without a metric name: its matchers select no metric we can check.
                lx.bump();
                lx.matchers()?;
            }
            c if c.is_ascii_digit() || (c == '.' && lx.peek_at(1).is_some_and(|d| d.is_ascii_digit())) => {
                lx.skip_while(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let word = lx.word();
                lx.skip_while(char::is_whitespace);
                let next = lx.peek();
                if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                    if next == Some('(') {
                        lx.skip_while(|c| c != ')');
                        lx.bump();
                    }
                } else if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) || next == Some('(') {
                    // An operator, a number word, an aggregation or a function.
                } else {
                    let mut labels = Vec::new();
                    if next == Some('{') {
                        lx.bump();
                        labels = lx.matchers()?;
                    }
                    out.push(Selected { metric: word, labels });
                }
            }
            _ => lx.bump(),
        }
    }
    Ok(out)
}

/// A cursor over PromQL text (also reads the label part of `/metrics` lines).
struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    fn new(text: &str) -> Self {
        Lexer { chars: text.chars().collect(), at: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.at + n).copied()
    }

    fn bump(&mut self) {
        self.at += 1;
    }

    fn skip_while(&mut self, f: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&f) {
            self.bump();
        }
    }

    fn word(&mut self) -> String {
        let start = self.at;
        self.skip_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        self.chars[start..self.at].iter().collect()
    }

    /// A quoted string (`"…"` and `'…'` with backslash escapes, `` `…` `` raw), its value.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("a string expected")?;
        self.bump();
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated string {quote}{value}")),
                Some(c) if c == quote => {
                    self.bump();
                    return Ok(value);
                }
                Some('\\') if quote != '`' => {
                    self.bump();
                    value.extend(self.peek());
                    self.bump();
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    /// `$name` or `${name…}`.
    fn variable(&mut self) {
        self.bump();
        if self.peek() == Some('{') {
            self.skip_while(|c| c != '}');
            self.bump();
        } else {
            self.word();
        }
    }

    /// `[5m]`, `[$__rate_interval]`, `[10m:1m]`.
    fn range(&mut self) -> Result<(), String> {
        self.skip_while(|c| c != ']');
        if self.peek().is_none() {
            return Err("unterminated range [".into());
        }
        self.bump();
        Ok(())
    }

    /// After `{`: `label op "value", …}`, the label names; consumes the closing brace.
    fn matchers(&mut self) -> Result<Vec<String>, String> {
        let mut labels = Vec::new();
        // A matcher may follow the brace or a comma, not another matcher.
        let mut after_matcher = false;
        loop {
            self.skip_while(char::is_whitespace);
            match self.peek() {
                None => return Err("unterminated matchers {".into()),
                Some('}') => {
                    self.bump();
                    return Ok(labels);
                }
                Some(',') if after_matcher => {
                    self.bump();
                    after_matcher = false;
                }
                Some(c) if (c.is_ascii_alphabetic() || c == '_') && !after_matcher => {
                    let label = self.word();
                    self.skip_while(char::is_whitespace);
                    let op_start = self.at;
                    self.skip_while(|c| matches!(c, '=' | '!' | '~'));
                    let op: String = self.chars[op_start..self.at].iter().collect();
                    if !["=", "!=", "=~", "!~"].contains(&op.as_str()) {
                        return Err(format!("matcher {label} without an operator (found `{op}`)"));
                    }
                    self.skip_while(char::is_whitespace);
                    if !matches!(self.peek(), Some('"' | '\'' | '`')) {
                        return Err(format!("matcher {label}{op} without a quoted value"));
                    }
                    self.string()?;
                    labels.push(label);
                    after_matcher = true;
                }
                Some(c) => return Err(format!("unexpected `{c}` among matchers")),
            }
        }
    }
}

// --- the reader's own tests ---

fn metrics(expr: &str) -> Vec<String> {
    selected(expr).unwrap().into_iter().map(|s| s.metric).collect()
}

#[test]
fn the_reader_finds_metric_names_and_skips_functions_keywords_labels_durations_strings_and_variables() {
    assert_eq!(
        metrics(
            r#"histogram_quantile(0.95, sum by (le, region) (rate(fo_probe_latency_seconds_bucket{region=~"$region", check!="a}b"}[$__rate_interval])))"#
        ),
        ["fo_probe_latency_seconds_bucket"]
    );
    assert_eq!(
        metrics("fo_provider_breaker == 2 and on (job, instance) (fo_leader == bool 1) offset 5m"),
        ["fo_provider_breaker", "fo_leader"]
    );
    assert_eq!(
        metrics("sum(rate(a_total[5m])) without (x) / ignoring(y) group_left(z) max(b) unless count_values(\"v\", c)"),
        ["a_total", "b", "c"]
    );
    assert_eq!(
        metrics("topk(3, x{a='q\\'uote'}) > 1e3 or absent(y) * inf # z is a comment\n + ${DS} + $__interval"),
        ["x", "y"]
    );
    assert_eq!(metrics(r#"label_replace(up, "dst", "$1", "src", "(.*)") + {job="x"} + .5 + 0x1f"#), ["up"]);
    assert_eq!(
        selected(r#"fo_check_health{job=~"$job", region = "p", layer!~'x'} + fo_leader"#).unwrap(),
        [
            Selected { metric: "fo_check_health".into(), labels: vec!["job".into(), "region".into(), "layer".into()] },
            Selected { metric: "fo_leader".into(), labels: vec![] },
        ]
    );
    assert_eq!(variable_promql("label_values(fo_leader, job)"), "fo_leader{job=~\".*\"}");
    assert_eq!(
        variable_promql(r#"label_values(fo_leader{job=~"$job"}, instance)"#),
        r#"fo_leader{job=~"$job", instance=~".*"}"#
    );
}

#[test]
fn broken_promql_is_an_error_not_a_silent_skip() {
    for bad in [r#"x{a="b"#, "x{a}", r#"x{a="b" c="d"}"#, "rate(x[5m)", r#"x + "open"#, "x{a=b}"] {
        assert!(selected(bad).is_err(), "{bad} read as {:?}", selected(bad));
    }
}

#[test]
fn a_query_of_a_metric_or_label_the_orchestrator_does_not_export_is_reported() {
    let exported = exported(
        "# HELP fo_leader 1 when this orchestrator is the leader\n# TYPE fo_leader gauge\nfo_leader 1\n\
         # TYPE fo_region_weight gauge\nfo_region_weight{region=\"primary\"} 80\n\
         # TYPE fo_task_restarts counter\n\
         # TYPE fo_probe_latency_seconds histogram\n\
         fo_probe_latency_seconds_bucket{le=\"0.001\",region=\"p\",check=\"a,b}\",layer=\"app\"} 0\n\
         fo_probe_latency_seconds_sum{region=\"p\",check=\"a\",layer=\"app\"} 0.1\n# EOF\n",
    );
    let query =
        |promql: &str| Query { place: "test".into(), promql: promql.into(), selected: selected(promql).unwrap() };
    let fine = [
        query(r#"fo_region_weight{job=~"$job", region=~"$region"} and on (job, instance) (fo_leader == 1)"#),
        query("histogram_quantile(0.5, sum by (le) (rate(fo_probe_latency_seconds_bucket{layer=\"app\"}[5m])))"),
    ];
    assert_eq!(unexported(&fine, &exported), Vec::<String>::new());
    let wrong = [
        query("fo_no_such_metric > 0"),
        // Declared by a `# TYPE` line, but no sample: not exported.
        query("rate(fo_task_restarts_total[5m])"),
        // A histogram's own name is no series: Prometheus stores _bucket, _sum and _count.
        query("fo_probe_latency_seconds"),
        query(r#"fo_region_weight{regoin="primary"}"#),
    ];
    let missing = unexported(&wrong, &exported);
    assert_eq!(missing.len(), 4, "{missing:#?}");
    assert!(missing[0].contains("metric fo_no_such_metric"), "{missing:?}");
    assert!(missing[3].contains("label regoin of fo_region_weight"), "{missing:?}");
}

#[test]
fn rule_exprs_are_read_from_plain_quoted_and_block_values() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: Plain\n        expr: up == 0\n        for: 1m\n\
                \x20     - alert: Block\n        expr: |\n          sum(a)\n            > 1\n        labels:\n          x: y\n\
                \x20     - alert: Quoted\n        expr: \"b{c=\\\"d\\\"} > 0\"\n\
                \x20     - record: job:c:sum\n        expr: 'sum(c{d=''e''})'\n\
                \x20     - alert: Continued\n        expr: d\n          > 2\n";
    assert_eq!(
        rule_exprs(yaml).unwrap(),
        [
            ("Plain".to_string(), "up == 0".to_string()),
            ("Block".into(), "sum(a)\n> 1".into()),
            ("Quoted".into(), "b{c=\"d\"} > 0".into()),
            ("job:c:sum".into(), "sum(c{d='e'})".into()),
            ("Continued".into(), "d > 2".into()),
        ]
    );
    assert_eq!(alert_names(yaml), ["Plain", "Block", "Quoted", "Continued"]);
    assert!(rule_exprs("      - alert: Empty\n        expr:\n").is_err());
}

#[test]
fn alert_cases_count_firing_and_quiet_entries_per_alert() {
    let yaml = "tests:\n  - interval: 1m\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: A\n        exp_alerts: []\n\
                \x20     - eval_time: 5m\n        alertname: A\n        exp_alerts:\n          - exp_labels:\n              x: y\n\
                \x20 - interval: 1m\n    alert_rule_test:\n      - eval_time: 2m\n        alertname: B\n        exp_alerts: []\n";
    let cases = alert_cases(yaml);
    assert_eq!(cases["A"], Cases { firing: 1, quiet: 1 });
    assert_eq!(cases["B"], Cases { firing: 0, quiet: 1 });
}
