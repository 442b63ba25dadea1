//! Human-readable tables of the API's answers. Pure: JSON in, text out.

use serde_json::Value;

/// Which answer is being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /api/v1/status`.
    Status,
    /// One drill.
    Drill,
    /// A list of drills.
    Drills,
    /// A failover / switchover / failback / maintenance result.
    Operation,
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(head.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// Renders an answer as text.
pub fn render(kind: Kind, v: &Value) -> String {
    match kind {
        Kind::Status => status(v),
        Kind::Drill => drill(v),
        Kind::Drills => {
            let rows: Vec<Vec<String>> = v["drills"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            vec![
                                s(&d["id"]),
                                s(&d["state"]),
                                s(&d["spec"]["evacuate"]),
                                s(&d["spec"]["target"]),
                                s(&d["requested_at"]),
                                s(&d["actor"]),
                                s(&d["report"]["time_to_shift_ms"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            table(&["ID", "STATE", "EVACUATE", "TARGET", "REQUESTED", "BY", "SHIFT MS"], &rows)
        }
        Kind::Operation => {
            let mut out = format!(
                "operation {}\nplan      {}\nweights   {}",
                s(&v["operation_id"]),
                s(&v["plan_id"]),
                s(&v["plan"]["weights"])
            );
            if let Some(r) = v["plan"]["reason"].as_str() {
                out.push_str(&format!("\nreason    {r}"));
            }
            out
        }
    }
}

fn status(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["regions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let lag = if r["lag"].is_null() {
                        "-".to_string()
                    } else {
                        format!("{} B / {} s", s(&r["lag"]["bytes"]), s(&r["lag"]["seconds"]))
                    };
                    vec![
                        s(&r["name"]),
                        s(&r["role"]),
                        s(&r["health"]),
                        format!("{}/{}", s(&r["weight"]), s(&r["normal_weight"])),
                        lag,
                        s(&r["maintenance"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = table(&["REGION", "ROLE", "HEALTH", "WEIGHT", "LAG", "MAINTENANCE"], &rows);
    out.push_str(&format!(
        "\n\nleader {} (epoch {}) · plan {} · verified {}",
        s(&v["leadership"]["leader"]),
        s(&v["leadership"]["epoch"]),
        s(&v["plan"]["kind"]),
        s(&v["plan"]["verified_at"])
    ));
    if let Some(d) = v.get("drill").filter(|d| !d.is_null()) {
        out.push_str(&format!(
            "\ndrill {} {} (step {} of {})",
            s(&d["id"]),
            s(&d["state"]),
            s(&d["step"]),
            s(&d["steps"])
        ));
    }
    for a in v["alarms"].as_array().into_iter().flatten() {
        out.push_str(&format!("\nALARM {}: {}", s(&a["kind"]), s(&a["message"])));
    }
    for r in v["acting"]["reasons"].as_array().into_iter().flatten() {
        out.push_str(&format!("\n  · {}", s(r)));
    }
    out
}

fn drill(v: &Value) -> String {
    let rep = &v["report"];
    let mut out = format!(
        "drill     {}\nstate     {}\nby        {} at {}\nmove      {} → {} in steps {} (hold {} ms){}\nbaseline  {}\nshift     {} ms (request → verified)\nrollback  {} ms\nmax lag   {} bytes / {} s (RPO {})\nerrors    {}\noutcome   {}",
        s(&v["id"]),
        s(&v["state"]),
        s(&v["actor"]),
        s(&v["requested_at"]),
        s(&v["spec"]["evacuate"]),
        s(&v["spec"]["target"]),
        s(&v["spec"]["steps"]),
        s(&v["spec"]["hold_ms"]),
        if v["spec"]["dry_run"] == true { " (dry run)" } else { "" },
        s(&v["baseline"]),
        s(&rep["time_to_shift_ms"]),
        s(&rep["time_to_rollback_ms"]),
        s(&rep["max_lag_bytes"]),
        s(&rep["max_lag_seconds"]),
        s(&rep["rpo"]),
        s(&rep["error_count"]),
        s(&rep["outcome_reason"])
    );
    let rows: Vec<Vec<String>> = v["timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| vec![s(&e["at"]), s(&e["kind"]), s(&e["step"]), s(&e["weights"]), s(&e["detail"])])
                .collect()
        })
        .unwrap_or_default();
    if !rows.is_empty() {
        out.push_str("\n\n");
        out.push_str(&table(&["AT", "EVENT", "STEP", "WEIGHTS", "DETAIL"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_show_missing_values_as_dashes() {
        let v = json!({ "drills": [
            { "id": "a", "state": "completed", "spec": { "evacuate": "primary", "target": "standby" }, "requested_at": "t", "actor": "alice", "report": { "time_to_shift_ms": 420 } },
            { "id": "bb", "state": "dry_run", "spec": { "evacuate": null, "target": "dr" }, "requested_at": "t", "actor": "bob", "report": {} }
        ]});
        let out = render(Kind::Drills, &v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  STATE"));
        assert!(lines[1].contains("completed") && lines[1].ends_with("420"));
        assert!(lines[2].contains(" - "), "{out}");
    }
}
