//! The Route 53 provider against moto's AWS emulator (the one provider tested
//! against an emulator, not the real service): weighted records per region,
//! read-back, idempotence, fencing through the epoch TXT record.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use failover_orchestrator::config::{AwsKeys, Route53Config, Route53Target};
use failover_orchestrator::plan::Epoch;
use failover_orchestrator::region::RegionName;
use failover_orchestrator::traffic::route53::Route53Provider;
use failover_orchestrator::traffic::{ProviderError, TrafficProvider, nonzero};
use fo_lab::moto::Moto;

use crate::common::{REGIONS, init_tracing, plan, test_addresses, unique, w};

pub fn route53_config(endpoint: &str, zone_id: &str, zone: &str) -> Route53Config {
    Route53Config {
        name: "route53".into(),
        hosted_zone_id: zone_id.into(),
        record: format!("app.{zone}"),
        ttl: 5,
        region: "us-east-1".into(),
        endpoint_url: Some(endpoint.into()),
        credentials: Some(AwsKeys {
            access_key_id: "AKIDTEST".to_string().into(),
            secret_access_key: "fo-test-secret-access-key".to_string().into(),
            session_token: None,
        }),
        targets: REGIONS
            .iter()
            .map(|r| {
                let t = Route53Target {
                    set_identifier: format!("{r}-set"),
                    health_check_id: (*r == "primary").then(|| "11111111-2222-3333-4444-555555555555".to_string()),
                };
                (RegionName::new(*r), t)
            })
            .collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_secs(5),
    }
}

pub async fn start_moto() -> Moto {
    init_tracing();
    Moto::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("start moto (run scripts/install-deps.sh to install moto[server] into target/moto-venv)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_records_follow_the_plan_on_the_emulator() {
    let moto = start_moto().await;
    let zone = format!("r{}.test.", unique());
    let zone_id = moto.create_hosted_zone(&zone).await.unwrap();
    let p = Route53Provider::new(route53_config(&moto.endpoint(), &zone_id, &zone), test_addresses()).await;

    assert!(p.read_back().await.unwrap().weights.0.is_empty());

    let p1 = plan(2, w(80, 20, 0));
    p.apply(&p1).await.unwrap();
    let live = p.read_back().await.unwrap();
    assert_eq!(live.weights, nonzero(&w(80, 20, 0)));
    assert_eq!(live.epoch, Some(Epoch(2)));

    p.apply(&p1).await.unwrap(); // idempotent
    p.apply(&plan(2, w(0, 40, 60))).await.unwrap();
    assert_eq!(p.read_back().await.unwrap().weights, nonzero(&w(0, 40, 60)));

    let err = p.apply(&plan(1, w(100, 0, 0))).await.unwrap_err();
    assert!(matches!(err, ProviderError::StaleEpoch { .. }), "{err}");

    // An unknown hosted zone is an error that names no secret.
    let bad = Route53Provider::new(route53_config(&moto.endpoint(), "ZNOSUCHZONE", &zone), test_addresses()).await;
    let err = bad.apply(&plan(3, w(100, 0, 0))).await.unwrap_err().to_string();
    assert!(!err.contains("fo-test-secret-access-key"), "{err}");
    moto.stop().await.unwrap();
}
