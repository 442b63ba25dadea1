//! The HAProxy provider against a real haproxy with three region apps behind it:
//! weights applied through the runtime API, read back, traffic split measured
//! with real HTTP requests through HAProxy, drain at zero, drift detection.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use failover_orchestrator::config::{HaproxyAdmin, HaproxyConfig, OnDrift, ProviderGuard};
use failover_orchestrator::metrics::Metrics;
use failover_orchestrator::plan::Weights;
use failover_orchestrator::region::RegionName;
use failover_orchestrator::traffic::applier::{Applier, ApplyResult, ProviderSlot, RetryPolicy};
use failover_orchestrator::traffic::haproxy::HaproxyProvider;
use failover_orchestrator::traffic::{ProviderError, TrafficProvider, nonzero};
use fo_lab::app_stub::AppStub;
use fo_lab::haproxy::{BACKEND, Haproxy};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::common::{REGIONS, init_tracing, plan, w};

/// Three apps and an HAProxy in front of them, plus a provider for it.
pub struct HaproxyLab {
    pub haproxy: Haproxy,
    /// Kept alive for the test.
    pub _apps: Vec<AppStub>,
    pub provider: HaproxyProvider,
    pub cfg: HaproxyConfig,
}

pub async fn haproxy_lab() -> HaproxyLab {
    init_tracing();
    let mut apps = Vec::new();
    let mut servers = Vec::new();
    for r in REGIONS {
        let app = AppStub::start(r, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        servers.push((r.to_string(), app.addr()));
        apps.push(app);
    }
    let haproxy = Haproxy::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &servers)
        .await
        .expect("start HAProxy (is haproxy installed? run scripts/install-deps.sh)");
    let cfg = HaproxyConfig {
        name: "haproxy".into(),
        admin: HaproxyAdmin::Tcp(haproxy.admin()),
        backend: BACKEND.into(),
        servers: REGIONS.iter().map(|r| (RegionName::new(*r), r.to_string())).collect(),
        timeout: Duration::from_secs(2),
    };
    let provider = HaproxyProvider::new(cfg.clone());
    HaproxyLab { haproxy, _apps: apps, provider, cfg }
}

/// Sends `n` requests through HAProxy (a new connection each) and counts answers per region.
pub async fn split(haproxy: &Haproxy, n: usize) -> BTreeMap<String, usize> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = format!("http://{}/", haproxy.frontend());
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let body = http.get(&url).send().await.unwrap().text().await.unwrap();
        let region = body.trim().strip_prefix("region ").unwrap_or(body.trim()).to_string();
        *counts.entry(region).or_default() += 1;
    }
    counts
}

fn share(counts: &BTreeMap<String, usize>, region: &str, n: usize) -> f64 {
    100.0 * *counts.get(region).unwrap_or(&0) as f64 / n as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_follow_the_plan_and_real_traffic_splits_accordingly() {
    let lab = haproxy_lab().await;
    let p = &lab.provider;

    let p1 = plan(3, w(80, 20, 0));
    p.apply(&p1).await.unwrap();
    assert_eq!(p.read_back().await.unwrap().weights, nonzero(&w(80, 20, 0)));

    let n = 400;
    let counts = split(&lab.haproxy, n).await;
    for (region, want) in [("primary", 80.0), ("standby", 20.0), ("dr", 0.0)] {
        let got = share(&counts, region, n);
        assert!((got - want).abs() <= 10.0, "{region}: {got:.1}% of traffic, plan says {want}% ({counts:?})");
    }

    // Idempotent: the same plan again changes nothing.
    p.apply(&p1).await.unwrap();
    assert_eq!(p.read_back().await.unwrap().weights, nonzero(&w(80, 20, 0)));

    // Failover: primary drained at zero, all traffic to the standby.
    p.apply(&plan(3, w(0, 100, 0))).await.unwrap();
    let servers = p.servers().await.unwrap();
    let primary = servers.iter().find(|s| s.name == "primary").unwrap();
    assert_ne!(primary.admin_state & 0x08, 0, "primary is in drain: {primary:?}");
    let counts = split(&lab.haproxy, 100).await;
    assert_eq!(counts.get("standby"), Some(&100), "{counts:?}");

    // Fencing within the process: an older epoch is refused.
    let err = p.apply(&plan(2, w(100, 0, 0))).await.unwrap_err();
    assert!(matches!(err, ProviderError::StaleEpoch { .. }), "{err}");
    lab.haproxy.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_changed_behind_our_back_is_reported_as_drift_and_reconciled() {
    let lab = haproxy_lab().await;
    let other = HaproxyProvider::new(lab.cfg.clone()); // "someone else" on the same runtime API
    let metrics = Arc::new(Metrics::new());
    let (plans_tx, plans_rx) = watch::channel(None);
    let (reports_tx, mut reports) = mpsc::channel(64);
    let guard = ProviderGuard {
        drift_interval: Some(Duration::from_millis(200)),
        on_drift: OnDrift::Reconcile,
        ..ProviderGuard::default()
    };
    let slot = ProviderSlot { provider: Arc::new(HaproxyProvider::new(lab.cfg.clone())), guard };
    let retry =
        RetryPolicy { base: Duration::from_millis(50), max: Duration::from_millis(200), ..RetryPolicy::default() };
    let applier = Applier::new(vec![slot], plans_rx, reports_tx, metrics.clone(), retry);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(applier.run(cancel.clone()));

    let p1 = plan(1, w(80, 20, 0));
    plans_tx.send(Some(p1.clone())).unwrap();
    let rep = tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.unwrap().unwrap();
    assert_eq!(rep.result, ApplyResult::Verified, "{rep:?}");

    // An operator moves everything to DR by hand.
    other.apply(&plan(1, w(0, 0, 100))).await.unwrap();
    let drift = loop {
        let rep = tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.unwrap().unwrap();
        if let ApplyResult::Drift { .. } = rep.result {
            break rep;
        }
    };
    let ApplyResult::Drift { expected, live, action } = drift.result else { unreachable!() };
    assert_eq!(expected, nonzero(&w(80, 20, 0)));
    assert_eq!(live, Weights::from_pairs([(RegionName::new("dr"), 100)]));
    assert_eq!(action, OnDrift::Reconcile);
    assert!(metrics.encode().contains("fo_provider_drift{provider=\"haproxy\"} 1"), "{}", metrics.encode());

    // Reconciled: verified again, and HAProxy serves the plan.
    loop {
        let rep = tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.unwrap().unwrap();
        if rep.result == ApplyResult::Verified {
            break;
        }
    }
    assert_eq!(lab.provider.read_back().await.unwrap().weights, nonzero(&w(80, 20, 0)));
    assert!(metrics.encode().contains("fo_provider_drift{provider=\"haproxy\"} 0"));
    cancel.cancel();
    task.await.unwrap();
    lab.haproxy.stop().await.unwrap();
}
