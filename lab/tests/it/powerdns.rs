//! A real PowerDNS server answering LUA records.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use fo_lab::powerdns::PowerDns;
use serde_json::json;

fn lua_rrset(content: &str) -> serde_json::Value {
    json!([{
        "name": "app.lab.test.",
        "type": "LUA",
        "ttl": 5,
        "changetype": "REPLACE",
        "records": [{"content": content, "disabled": false}],
    }])
}

async fn dig_counts(addr: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let out = tokio::process::Command::new("dig")
            .arg(format!("@{}", addr.ip()))
            .args(["-p", &addr.port().to_string()])
            .args(["app.lab.test", "A", "+short", "+tries=1", "+time=2"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "dig failed: {out:?}");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            *counts.entry(line.trim().to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_pickwrandom() {
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let t = Instant::now();
    let pdns = PowerDns::start(ip).await.unwrap();
    eprintln!("pdns startup: {:?}", t.elapsed());
    pdns.create_zone("lab.test.").await.unwrap();

    pdns.patch_rrsets("lab.test.", lua_rrset("A \"pickwrandom({{80, '127.0.0.11'}, {20, '127.0.0.12'}})\""))
        .await
        .unwrap();
    let c = dig_counts(pdns.dns_addr(), 50).await;
    eprintln!("80/20: {c:?}");
    assert_eq!(c.values().sum::<usize>(), 50);
    assert!(c.contains_key("127.0.0.11") && c.contains_key("127.0.0.12"), "{c:?}");
    assert_eq!(c.len(), 2, "{c:?}");

    pdns.patch_rrsets("lab.test.", lua_rrset("A \"pickwrandom({{100, '127.0.0.12'}})\"")).await.unwrap();
    let c = dig_counts(pdns.dns_addr(), 50).await;
    assert_eq!(c, BTreeMap::from([("127.0.0.12".to_string(), 50)]));

    // A weight of 0 is accepted and never picked.
    pdns.patch_rrsets("lab.test.", lua_rrset("A \"pickwrandom({{0, '127.0.0.11'}, {100, '127.0.0.12'}})\""))
        .await
        .unwrap();
    let c = dig_counts(pdns.dns_addr(), 50).await;
    assert_eq!(c, BTreeMap::from([("127.0.0.12".to_string(), 50)]));

    let dir = pdns.dir().to_path_buf();
    if std::env::var_os("LAB_SHOW_LOG").is_some() {
        eprintln!("{}", std::fs::read_to_string(dir.join("pdns.conf")).unwrap());
        eprintln!("{}", std::fs::read_to_string(dir.join("pdns.log")).unwrap());
    }
    pdns.stop().await.unwrap();
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_pdns_leaves_nothing() {
    let ip: IpAddr = "127.0.0.7".parse().unwrap();
    let pdns = PowerDns::start(ip).await.unwrap();
    pdns.create_zone("drop.test").await.unwrap();
    let dir = pdns.dir().to_path_buf();
    drop(pdns);
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    while dir.exists() && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!dir.exists());
    let out = std::process::Command::new("pgrep").args(["-a", "-f", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}
