//! The etcd cluster harness against real etcd: healthy with all members, with a majority, not
//! without one, not while frozen, and healthy again when a killed member comes back on its own data.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use fo_lab::etcd::{EtcdCluster, EtcdMemberSpec};

/// Polls `member`'s health until it equals `want`; panics (with the member's log) after `timeout`.
async fn wait_health(cluster: &EtcdCluster, member: &str, want: bool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while cluster.is_healthy(member).await.unwrap() != want {
        assert!(
            Instant::now() < deadline,
            "etcd member {member} never reported health={want}; log:\n{}",
            fo_lab::process::tail_file(&cluster.member(member).unwrap().log_file(), 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_members_stay_healthy_with_a_majority_and_recover_a_killed_member() {
    let specs: Vec<EtcdMemberSpec> = ["primary", "standby", "dr"]
        .iter()
        .zip(11..)
        .map(|(name, i)| EtcdMemberSpec::new(name, IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))))
        .collect();
    let mut cluster = EtcdCluster::start(&specs).await.unwrap();
    let dirs: Vec<_> = cluster.members().iter().map(|m| m.log_file().parent().unwrap().to_path_buf()).collect();
    for m in ["primary", "standby", "dr"] {
        assert!(cluster.is_healthy(m).await.unwrap(), "{m} should be healthy after start");
    }

    // A frozen member answers nothing, and is healthy again once it runs.
    cluster.pause("dr").unwrap();
    assert!(!cluster.is_healthy("dr").await.unwrap(), "a paused member cannot answer");
    cluster.resume("dr").unwrap();
    wait_health(&cluster, "dr", true, Duration::from_secs(10)).await;

    // One member lost: the other two are still a majority.
    cluster.kill("primary").unwrap();
    assert!(!cluster.is_healthy("primary").await.unwrap(), "a killed member cannot answer");
    wait_health(&cluster, "standby", true, Duration::from_secs(10)).await;
    wait_health(&cluster, "dr", true, Duration::from_secs(10)).await;

    // Two lost: the last one has no leader.
    cluster.kill("standby").unwrap();
    wait_health(&cluster, "dr", false, Duration::from_secs(15)).await;

    // The first one back on its own data: a majority again.
    cluster.restart("primary").await.unwrap();
    cluster.wait_healthy("primary", Duration::from_secs(20)).await.unwrap();
    wait_health(&cluster, "dr", true, Duration::from_secs(20)).await;

    cluster.stop().await;
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}
