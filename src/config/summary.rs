//! The one-screen, secret-free summary `check-config` prints: one line for the
//! orchestrator, one per region and per check, one for the policy and one for
//! the providers. DSNs and URLs go through [`crate::redact`]; no secret is ever read here.
//!
//! The layout is part of the command's output that operators and scripts read:
//! change it only on purpose (the tests compare it).

use secrecy::ExposeSecret;

use super::{Backend, CheckConfig, Config, ProviderConfig, RegionConfig};
use crate::policy::{LagLimit, Policy};
use crate::redact;

impl Config {
    /// A one-screen, secret-free summary for `check-config`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let o = &self.orchestrator;
        s.push_str(&format!(
            "orchestrator: vantage {} · listen {} · store {} · spill {}\n",
            o.vantage,
            o.listen,
            redact::dsn(o.store_dsn.expose_secret()),
            o.spill_dir
                .as_ref()
                .map_or_else(|| "off (writes wait in memory only)".to_string(), |d| d.display().to_string())
        ));
        s.push_str(&coordination_line(self));
        // One line per region, its checks indented under it, in file order.
        s.push_str(&format!("regions ({}):\n", self.regions.len()));
        for r in &self.regions {
            s.push_str(&region_line(r, &self.policy));
            for c in &r.checks {
                s.push_str(&check_line(c));
            }
        }
        s.push_str(&policy_line(&self.policy));
        s.push_str(&promotion_line(self));
        s.push_str("providers: ");
        s.push_str(&self.providers.iter().map(ProviderConfig::describe).collect::<Vec<_>>().join(", "));
        s.push('\n');
        if let Some(t) = &self.traces {
            s.push_str(&format!(
                "traces: OTLP/HTTP to {} (from {}) · service {}\n",
                redact::url(&t.endpoint),
                t.endpoint_from,
                t.service_name
            ));
        }
        s
    }
}

/// `  standby    standby  weight  20 · max lag 16777216 B / 5s`: the weight and the
/// RPO gate come from the policy, the gate only for a region with a database.
fn region_line(r: &RegionConfig, policy: &Policy) -> String {
    let lag = r.postgres.as_ref().map(|_| max_lag_text(policy.max_lag(&r.name))).unwrap_or_default();
    format!("  {:<10} {:<8} weight {:>3}{}\n", r.name.as_str(), r.role.to_string(), policy.normal_weight(&r.name), lag)
}

/// ` · max lag <bytes> B / <time>`, `-` for an unset half.
fn max_lag_text(max_lag: LagLimit) -> String {
    let b = max_lag.bytes.map(|b| format!("{b} B")).unwrap_or_else(|| "-".into());
    let t = max_lag.time.map(|t| humantime::format_duration(t).to_string()).unwrap_or_else(|| "-".into());
    format!(" · max lag {b} / {t}")
}

/// `    app        app          every 1s (timeout 800ms, fall 3, rise 2) http GET …`.
fn check_line(c: &CheckConfig) -> String {
    format!(
        "    {:<10} {:<12} every {} (timeout {}, fall {}, rise {}) {}\n",
        c.layer.to_string(),
        c.id.name,
        humantime::format_duration(c.interval),
        humantime::format_duration(c.timeout),
        c.fall,
        c.rise,
        c.kind.describe()
    )
}

/// `policy: degraded keeps 50% · order … · quorum 1`.
fn policy_line(pol: &Policy) -> String {
    format!(
        "policy: degraded keeps {}% · order {} · dwell {} · failback {:?} (hold {}, step {}) · budget {} per {} · quorum {}\n",
        pol.degraded_weight_percent,
        pol.failover_order.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" → "),
        humantime::format_duration(pol.dwell),
        pol.failback,
        humantime::format_duration(pol.failback_hold),
        pol.failback_step,
        pol.budget.max,
        humantime::format_duration(pol.budget.window),
        pol.quorum,
    )
}

/// `promotion: standby · fence locks app roles app, reports … · fence timeout 5s`: which
/// databases are promoted and how hard the old primary is fenced first.
fn promotion_line(c: &Config) -> String {
    let targets: Vec<&str> = c
        .regions
        .iter()
        .filter(|r| r.postgres.as_ref().is_some_and(|pg| pg.promote))
        .map(|r| r.name.as_str())
        .collect();
    let targets =
        if targets.is_empty() { "off (no region has postgres.promote = true)".to_string() } else { targets.join(", ") };
    let r = &c.replication;
    let fence = if r.app_roles.is_empty() {
        "soft fence only (read-only + sessions ended, which a client can undo: set replication.app_roles)".to_string()
    } else {
        let roles: Vec<&str> = r.app_roles.iter().map(|a| a.as_str()).collect();
        format!("fence locks app roles {} (NOLOGIN + sessions ended + read-only)", roles.join(", "))
    };
    format!("promotion: {targets} · {fence} · fence timeout {}\n", humantime::format_duration(r.fence_timeout))
}

/// `coordination: etcd (3 endpoints: 10.0.1.5:2379, …) · lease 3s · prefix /x · vantages a, b, c · quorum 2`.
fn coordination_line(c: &Config) -> String {
    let k = &c.coordination;
    let vantages = k.vantages.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ");
    match &k.backend {
        Backend::Single => {
            format!("coordination: single (this orchestrator always leads) · quorum {}\n", c.policy.quorum)
        }
        Backend::Etcd { endpoints } => {
            // Host and port only: a URL may carry credentials.
            let hosts: Vec<String> = endpoints
                .iter()
                .map(|e| match reqwest::Url::parse(e) {
                    Ok(u) => format!("{}:{}", u.host_str().unwrap_or("?"), u.port_or_known_default().unwrap_or(0)),
                    Err(_) => "?".into(),
                })
                .collect();
            format!(
                "coordination: etcd ({} endpoint(s): {}) · lease {} · prefix {} · vantages {} · quorum {}\n",
                endpoints.len(),
                hosts.join(", "),
                humantime::format_duration(k.lease_ttl),
                k.prefix,
                vantages,
                c.policy.quorum
            )
        }
    }
}
