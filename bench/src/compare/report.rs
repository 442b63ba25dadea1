//! `fo-bench compare`: prints and tabulates the comparison's report
//! (ours against HAProxy health checks and PowerDNS `ifurlup`, same targets, same run).

use std::time::Duration;

use super::CompareOptions;
use serde_json::json;

/// Runs the comparison, prints its table and returns the JSON for `compare.json`.
pub async fn compare(opts: CompareOptions, machine: String) -> anyhow::Result<serde_json::Value> {
    println!(
        "side by side at interval {} fall {} rise {}: {} runs per fault …",
        humantime::format_duration(opts.interval),
        opts.fall,
        opts.rise,
        opts.runs
    );
    let r = super::run(opts, |line| println!("{line}")).await?;
    let v = json!({ "machine": machine, "build": build(), "compare": r });
    println!("\n{}", markdown(&v));
    Ok(v)
}

/// Default options of `fo-bench all`.
pub fn defaults() -> CompareOptions {
    CompareOptions {
        interval: Duration::from_secs(1),
        fall: 3,
        rise: 2,
        runs: 5,
        window: Duration::from_secs(30),
        hiccup: Duration::from_secs(3),
    }
}

fn build() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

/// The markdown tables of a `compare.json` value.
pub fn markdown(v: &serde_json::Value) -> String {
    let c = &v["compare"];
    let mut s = format!(
        "\nSide by side ({} build, {}): same three apps behind fault proxies on 127.0.0.11/12/13, interval {} ms, fall {}, rise {}, {} runs per fault.\n\n",
        v["build"].as_str().unwrap_or(""),
        v["machine"].as_str().unwrap_or(""),
        c["interval_ms"],
        c["fall"],
        c["rise"],
        c["runs"]
    );
    for line in c["settings"].as_array().into_iter().flatten() {
        s.push_str(&format!("- {}\n", line.as_str().unwrap_or("")));
    }
    s.push_str("\n| time to move | mechanism | p50 | max | p50 ÷ ours | not moved |\n|---|---|---|---|---|---|\n");
    for r in c["time_to_move"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {} | {:.0} ms | {:.0} ms | {} | {} |\n",
            r["fault"].as_str().unwrap_or(""),
            label(&r["mechanism"]),
            r["summary"]["p50_ms"].as_f64().unwrap_or(0.0),
            r["summary"]["max_ms"].as_f64().unwrap_or(0.0),
            r["p50_ratio_to_ours"].as_f64().map_or("—".into(), |x| format!("{x:.2}×")),
            r["not_moved"]
        ));
    }
    s.push_str("\n| false flips | mechanism | moves | time away from the primary |\n|---|---|---|---|\n");
    for r in c["false_flips"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} s |\n",
            r["fault"].as_str().unwrap_or(""),
            label(&r["mechanism"]),
            r["moves"],
            r["seconds_off_primary"].as_f64().unwrap_or(0.0)
        ));
    }
    s
}

fn label(m: &serde_json::Value) -> &'static str {
    match m.as_str() {
        Some("ours") => super::Mechanism::Ours.label(),
        Some("haproxy") => super::Mechanism::Haproxy.label(),
        Some("powerdns_ifurlup") => super::Mechanism::PowerdnsIfurlup.label(),
        _ => "?",
    }
}
