//! The etcd backend in-process against a real etcd member and a real PowerDNS: one leader,
//! epochs that grow with each new leader, the fence, and a stale leader's write refused.

use std::sync::Arc;
use std::time::Duration;

use failover_orchestrator::config::Config;
use failover_orchestrator::coord::etcd::EtcdCoordinator;
use failover_orchestrator::coord::{FenceError, Links};
use failover_orchestrator::region::RegionName;
use failover_orchestrator::traffic::powerdns::PowerDnsProvider;
use failover_orchestrator::traffic::{ProviderError, TrafficProvider};
use fo_lab::etcd::{EtcdCluster, EtcdMemberSpec};
use tokio_util::sync::CancellationToken;

use crate::common::{pdns_zone, plan, unique, w};

fn config(vantage: &str, endpoint: &str, prefix: &str) -> Arc<Config> {
    let text = format!(
        r#"
[orchestrator]
vantage = "{vantage}"
listen = "127.0.0.1:0"
store_dsn = "postgres://fo@127.0.0.1:1/fo"

[coordination]
backend = "etcd"
endpoints = ["{endpoint}"]
lease_ttl = "2s"
prefix = "{prefix}"

[[regions]]
name = "primary"
role = "primary"
weight = 80
[[regions.checks]]
name = "tcp"
layer = "infra"
type = "tcp"
target = "127.0.0.1:1"

[[regions]]
name = "standby"
role = "standby"
weight = 20
[[regions.checks]]
name = "tcp"
layer = "infra"
type = "tcp"
target = "127.0.0.1:1"

[[providers]]
type = "file"
name = "f"
path = "/nonexistent/f.json"
"#
    );
    Arc::new(Config::parse(&text, "fence-test.toml", &|_| None).expect("valid test config"))
}

/// Starts a coordinator; returns its links and the token that stops it (revoking its lease).
fn run(config: &Config) -> (Links, CancellationToken) {
    let (coordinator, links) = EtcdCoordinator::new(config).expect("etcd backend");
    let token = CancellationToken::new();
    tokio::spawn(coordinator.run(token.clone()));
    (links, token)
}

async fn wait_for(links: &mut Links, what: &str, pred: impl Fn(&failover_orchestrator::coord::Standing) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(15), links.standing.wait_for(|s| pred(s)))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(waited, "{what}: standing is {:?}", *links.standing.borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_growing_epochs_and_a_stale_leaders_write_refused_by_fence_and_provider() {
    crate::common::init_tracing();
    let etcd = EtcdCluster::start(&[EtcdMemberSpec::new("solo", "127.0.0.1".parse().unwrap())])
        .await
        .expect("etcd starts (scripts/install-deps.sh installs etcd-server)");
    let endpoint = etcd.client_url("solo").unwrap();
    let prefix = format!("/fence-test-{}", unique());

    let (mut a, stop_a) = run(&config("primary", &endpoint, &prefix));
    wait_for(&mut a, "the first coordinator leads", |s| s.leadership.leader).await;
    let epoch_a = a.standing.borrow().leadership.epoch;
    assert!(epoch_a.0 > 0, "the epoch is the leader key's create revision");

    let (mut b, stop_b) = run(&config("standby", &endpoint, &prefix));
    wait_for(&mut b, "the second follows the first", |s| {
        !s.leadership.leader && s.leadership.holder.as_ref().map(RegionName::as_str) == Some("primary")
    })
    .await;
    assert_eq!(b.standing.borrow().leadership.epoch, epoch_a, "a follower knows the leader's epoch");

    // The leader's fence passes and publishes the plan; the follower sees it published.
    let plan_a = plan(epoch_a.0, w(80, 20, 0));
    a.fence.confirm(&plan_a).await.expect("the leader may write");
    let seen = tokio::time::timeout(Duration::from_secs(5), b.plans.recv()).await.expect("published").unwrap();
    assert_eq!((seen.plan.id, seen.leader.as_str()), (plan_a.id, "primary"));
    // The follower's fence refuses, naming the leader.
    let refused = b.fence.confirm(&plan(epoch_a.0, w(0, 100, 0))).await.unwrap_err();
    assert_eq!(refused, FenceError::NotLeader { holder: Some(RegionName::new("primary")) });

    // Real PowerDNS holds the leader's epoch.
    let (cfg, addrs) = pdns_zone("f", 20).await;
    let provider = PowerDnsProvider::new(cfg, addrs).unwrap();
    provider.apply(&plan_a).await.unwrap();

    // The leader stops (its lease revoked): the follower takes over in a newer epoch at once.
    stop_a.cancel();
    wait_for(&mut b, "the follower takes over", |s| s.leadership.leader).await;
    let epoch_b = b.standing.borrow().leadership.epoch;
    assert!(epoch_b > epoch_a, "epochs grow across the cluster: {epoch_a} then {epoch_b}");
    let plan_b = plan(epoch_b.0, w(0, 100, 0));
    b.fence.confirm(&plan_b).await.expect("the new leader may write");
    provider.apply(&plan_b).await.unwrap();

    // The old leader's plan is stale everywhere: its fence refuses it …
    let stale = a.fence.confirm(&plan(epoch_a.0, w(80, 20, 0))).await.unwrap_err();
    assert!(matches!(stale, FenceError::NotLeader { .. } | FenceError::Lost(_)), "{stale}");
    // … the new leader's fence refuses an old epoch too …
    let old = b.fence.confirm(&plan(epoch_a.0, w(80, 20, 0))).await.unwrap_err();
    assert_eq!(old, FenceError::StaleEpoch { plan: epoch_a, current: epoch_b });
    // … and the provider, holding the newer epoch, refuses the stale write.
    let err = provider.apply(&plan(epoch_a.0, w(80, 20, 0))).await.unwrap_err();
    assert!(matches!(err, ProviderError::StaleEpoch { .. }), "{err}");
    assert!(!err.is_retryable());

    stop_b.cancel();
    etcd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_etcd_steps_down_within_its_lease_and_its_fence_refuses() {
    crate::common::init_tracing();
    use fo_lab::faultproxy::{FaultProxy, Faults};
    let etcd =
        EtcdCluster::start(&[EtcdMemberSpec::new("solo", "127.0.0.1".parse().unwrap())]).await.expect("etcd starts");
    let member = etcd.member("solo").unwrap().client_addr();
    let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), member).await.unwrap();
    let endpoint = format!("http://{}", proxy.addr());
    let prefix = format!("/cutoff-test-{}", unique());
    let (mut a, stop_a) = run(&config("primary", &endpoint, &prefix));
    wait_for(&mut a, "leads", |s| s.leadership.leader).await;
    let epoch = a.standing.borrow().leadership.epoch;
    let mut health = a.health.clone();
    assert!(health.borrow().connected);

    proxy.set(Faults { blackhole: true, ..Faults::default() });
    let cut = std::time::Instant::now();
    wait_for(&mut a, "steps down once its lease cannot be renewed", |s| !s.leadership.leader).await;
    let took = cut.elapsed();
    assert!(took < Duration::from_secs(10), "stepped down after {took:?}");
    let err = a.fence.confirm(&plan(epoch.0, w(0, 100, 0))).await.unwrap_err();
    assert!(matches!(err, FenceError::NotLeader { .. }), "{err}");
    // (The Ref that wait_for returns is dropped at once: holding it would block the sender.)
    let lost =
        tokio::time::timeout(Duration::from_secs(10), health.wait_for(|h| !h.connected)).await.is_ok_and(|r| r.is_ok());
    assert!(lost, "the backend reports the lost session");

    // Healed: a new session and, nobody else being there, leadership again in a newer epoch.
    proxy.clear();
    wait_for(&mut a, "leads again after the link heals", |s| s.leadership.leader).await;
    assert!(a.standing.borrow().leadership.epoch > epoch);

    stop_a.cancel();
    proxy.stop().await;
    etcd.stop().await;
}

/// Scenario f at the provider: an orchestrator whose epoch is older than the one PowerDNS holds (a
/// stale leader whose fence passed just before it stalled) decides a failover; PowerDNS refuses
/// the write, nothing changes in DNS, and the refusal is recorded: `stale_write_refused` raised
/// (and stored), the plan's outcome in the store says refused, the plan never verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epochs_write_is_refused_by_the_provider_and_recorded() {
    use failover_orchestrator::config::ProviderConfig;
    use failover_orchestrator::traffic::addresses;
    crate::common::init_tracing();
    let mut app = crate::common::spawn_app(crate::common::Spec::default()).await;
    let t = Duration::from_secs(30);
    app.wait_for_verified(&w(80, 20, 0), t).await;
    let mine = app.status.borrow().leadership.epoch;
    // A newer leader writes PowerDNS in a later epoch (the same weights).
    let cfg = app
        .config
        .providers
        .iter()
        .find_map(|p| if let ProviderConfig::PowerDns(c) = p { Some(c.clone()) } else { None })
        .expect("the test app has PowerDNS");
    let newer = PowerDnsProvider::new(cfg, addresses(&app.config)).unwrap();
    newer.apply(&plan(mine.0 + 100, w(80, 20, 0))).await.expect("the newer leader writes");

    app.apps[0].kill().await;
    app.wait_for("stale_write_refused", t, |s| s.alarms.iter().any(|a| a.kind.as_str() == "stale_write_refused")).await;
    let refused = app.status.borrow().clone();
    let alarm = refused.alarms.iter().find(|a| a.kind.as_str() == "stale_write_refused").unwrap();
    assert!(alarm.message.contains("epoch"), "{}", alarm.message);
    let plan_id = refused.plan.as_ref().map(|p| p.plan.id).expect("a plan");
    assert_eq!(refused.plan.as_ref().unwrap().plan.weights, w(0, 100, 0), "the stale leader's failover");
    assert!(refused.plan.as_ref().unwrap().verified_at.is_none(), "never verified");
    // DNS still carries the newer epoch's weights.
    let live = newer.read_back().await.unwrap();
    assert_eq!(live.epoch, Some(failover_orchestrator::plan::Epoch(mine.0 + 100)));
    // Recorded in the store: the plan's outcome and the alarm.
    let deadline = std::time::Instant::now() + t;
    loop {
        let outcome: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT outcome FROM plans WHERE id = $1 AND verified_at IS NULL")
                .bind(plan_id.0)
                .fetch_optional(app.store.pool())
                .await
                .unwrap();
        let alarms: i64 = sqlx::query_scalar("SELECT count(*) FROM alarms WHERE kind = 'stale_write_refused'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        let text = outcome.map(|o| o.to_string()).unwrap_or_default();
        if alarms > 0 && text.contains("refused") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not recorded: outcome {text}, {alarms} alarms");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shutdown().await;
}
