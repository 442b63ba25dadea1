//! The RFC 2136 provider against a real BIND 9 `named`: TSIG-signed updates
//! replace the record set, read-back by DNS query, idempotence, fencing,
//! a wrong key refused without leaking it, and the propagation check.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use failover_orchestrator::config::{Rfc2136Config, TsigAlgorithm};
use failover_orchestrator::plan::Epoch;
use failover_orchestrator::traffic::propagation::{self, Expect};
use failover_orchestrator::traffic::rfc2136::{Rfc2136Provider, served};
use failover_orchestrator::traffic::{ProviderError, TrafficProvider};
use fo_lab::bind::{Bind, KEY_NAME};

use crate::common::{init_tracing, plan, test_addresses, unique, w};

pub fn rfc2136_config(bind: &Bind, secret: &str) -> Rfc2136Config {
    Rfc2136Config {
        name: "bind".into(),
        server: bind.addr(),
        secondaries: vec![],
        zone: bind.zone().to_string(),
        record: format!("app.{}", bind.zone()),
        ttl: 1,
        tsig_key_name: KEY_NAME.into(),
        tsig_algorithm: TsigAlgorithm::HmacSha256,
        tsig_secret: secret.to_string().into(),
        timeout: Duration::from_secs(2),
    }
}

pub async fn start_bind() -> Bind {
    init_tracing();
    Bind::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &format!("b{}.test.", unique()))
        .await
        .expect("start named (is bind9 installed? run scripts/install-deps.sh)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_updates_replace_the_record_set_and_read_back_maps_it_to_served_regions() {
    let bind = start_bind().await;
    let p = Rfc2136Provider::new(rfc2136_config(&bind, bind.tsig_secret()), test_addresses()).unwrap();
    let name = format!("app.{}", bind.zone());

    assert!(p.read_back().await.unwrap().weights.0.is_empty(), "nothing published yet");

    let p1 = plan(4, w(80, 20, 0));
    p.apply(&p1).await.unwrap();
    let live = p.read_back().await.unwrap();
    assert_eq!(live.weights, served(&w(80, 20, 0)), "every region with a weight is served");
    assert_eq!(live.epoch, Some(Epoch(4)));
    let answer = propagation::query_addresses(bind.addr(), &name, Duration::from_secs(1)).await.unwrap();
    assert_eq!(answer, ["127.0.10.1", "127.0.10.2"].iter().map(|a| a.parse().unwrap()).collect());

    // Idempotent.
    p.apply(&p1).await.unwrap();
    assert_eq!(p.read_back().await.unwrap().weights, served(&w(80, 20, 0)));

    // Failover to DR: the others are removed from the set.
    let p2 = plan(4, w(0, 0, 100));
    p.apply(&p2).await.unwrap();
    let answer = propagation::query_addresses(bind.addr(), &name, Duration::from_secs(1)).await.unwrap();
    assert_eq!(answer, ["127.0.10.3".parse().unwrap()].into_iter().collect());

    // Propagation: the authoritative server serves exactly the new set.
    let target = p.propagation_target(&p2).unwrap();
    assert_eq!(target.expect, Expect::Exactly(answer.clone()));
    let report = propagation::check(&target, &[], Duration::from_secs(5)).await;
    assert!(report.converged, "{report:?}");

    // A plan from an older epoch is refused.
    let err = p.apply(&plan(3, w(100, 0, 0))).await.unwrap_err();
    assert!(matches!(err, ProviderError::StaleEpoch { .. }), "{err}");

    // A wrong key is refused by the server, and the error does not contain it.
    let wrong = "d3JvbmctdHNpZy1zZWNyZXQtMTIzNDU2Nzg5MA==";
    let bad = Rfc2136Provider::new(rfc2136_config(&bind, wrong), test_addresses()).unwrap();
    let err = bad.apply(&plan(9, w(100, 0, 0))).await.unwrap_err().to_string();
    assert!(!err.contains(wrong) && !err.contains(bind.tsig_secret()), "{err}");
    assert_eq!(
        propagation::query_addresses(bind.addr(), &name, Duration::from_secs(1)).await.unwrap(),
        answer,
        "a refused update changes nothing"
    );
    bind.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_to_a_server_that_never_answers_is_bounded_and_reported() {
    let bind = start_bind().await;
    let p = Rfc2136Provider::new(rfc2136_config(&bind, bind.tsig_secret()), test_addresses()).unwrap();
    let p1 = plan(1, w(100, 0, 0));
    p.apply(&p1).await.unwrap();
    let target = p.propagation_target(&p1).unwrap();
    // A "resolver" on a port where nothing listens never converges.
    let dead: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let report = propagation::check(&target, &[dead], Duration::from_millis(800)).await;
    assert!(!report.converged);
    let by_server: Vec<(std::net::SocketAddr, bool)> = report.servers.iter().map(|s| (s.server, s.converged)).collect();
    assert_eq!(by_server, vec![(bind.addr(), true), (dead, false)]);
    bind.stop().await.unwrap();
}
