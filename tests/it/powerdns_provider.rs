//! The PowerDNS provider against a real pdns_server: apply, read back, idempotence, fencing.

use std::collections::BTreeMap;
use std::time::Duration;

use failover_orchestrator::config::PowerDnsConfig;
use failover_orchestrator::plan::Epoch;
use failover_orchestrator::traffic::powerdns::PowerDnsProvider;
use failover_orchestrator::traffic::{ProviderError, TrafficProvider, nonzero};

use crate::common::{pdns, pdns_zone, plan, w};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_reads_back_is_idempotent_and_refuses_stale_epochs() {
    let (cfg, addrs) = pdns_zone("p", 10).await;
    let (server, zone) = (pdns().await, cfg.zone.clone());
    let p = PowerDnsProvider::new(cfg, addrs).unwrap();

    // Nothing there yet.
    let live = p.read_back().await.unwrap();
    assert!(live.weights.0.is_empty());

    let p1 = plan(5, w(80, 20, 0));
    p.apply(&p1).await.unwrap();
    let live = p.read_back().await.unwrap();
    assert_eq!(live.weights, nonzero(&w(80, 20, 0)));
    assert_eq!(live.epoch, Some(Epoch(5)));

    // Re-applying the same plan is a no-op.
    p.apply(&p1).await.unwrap();
    assert_eq!(p.read_back().await.unwrap().weights, nonzero(&w(80, 20, 0)));

    // DNS serves only the region left.
    p.apply(&plan(5, w(0, 0, 100))).await.unwrap();
    for _ in 0..10 {
        let a = fo_lab::lab::dig(server.dns_addr(), &format!("app.{zone}")).await.unwrap();
        assert_eq!(a, Some("127.0.10.3".parse().unwrap()));
    }

    // Propagation: the DNS listener serves only the region left.
    let target = p.propagation_target(&plan(5, w(0, 0, 100))).unwrap();
    let report = failover_orchestrator::traffic::propagation::check(&target, &[], Duration::from_secs(5)).await;
    assert!(report.converged, "{report:?}");

    // A plan from an older epoch is refused and changes nothing.
    let err = p.apply(&plan(4, w(100, 0, 0))).await.unwrap_err();
    assert!(matches!(err, ProviderError::StaleEpoch { .. }), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(p.read_back().await.unwrap().weights, nonzero(&w(0, 0, 100)));

    // A wrong key is a clear error without the key in it.
    let bad = PowerDnsProvider::new(
        PowerDnsConfig {
            name: "pdns".into(),
            api_url: server.api_url().trim_end_matches("/api/v1").to_string(),
            api_key: "wrong-key-123".to_string().into(),
            server_id: "localhost".into(),
            zone: zone.clone(),
            record: format!("app.{zone}"),
            ttl: 1,
            timeout: Duration::from_secs(2),
            dns_addr: None,
        },
        BTreeMap::new(),
    )
    .unwrap();
    let err = bad.read_back().await.unwrap_err().to_string();
    assert!(err.contains("401") || err.contains("rejected"), "{err}");
    assert!(!err.contains("wrong-key-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_api_is_an_error_not_a_hang() {
    let cfg = PowerDnsConfig {
        name: "pdns".into(),
        api_url: "http://127.0.0.1:9".into(),
        api_key: "k".to_string().into(),
        server_id: "localhost".into(),
        zone: "x.test.".into(),
        record: "app.x.test.".into(),
        ttl: 1,
        timeout: Duration::from_millis(500),
        dns_addr: None,
    };
    let p = PowerDnsProvider::new(cfg, BTreeMap::new()).unwrap();
    let err = p.apply(&plan(1, w(100, 0, 0))).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
}
