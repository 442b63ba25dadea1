//! Signals beyond probes, with the real servers: metric checks against Debian's
//! node_exporter (a textfile-collector metric the test moves across its limits, and the host
//! signals of the machine itself), PromQL checks against a real Prometheus scraping it, and the
//! passive HAProxy check against a real HAProxy health-checking region apps, through a whole
//! orchestrator: it flips traffic when HAProxy sees the primary dead, and never keeps a region
//! up that its active checks see down.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use failover_orchestrator::config::{HaproxyAdmin, MetricSource};
use failover_orchestrator::probe::Probe;
use failover_orchestrator::probe::haproxy::HaproxyProbe;
use failover_orchestrator::probe::metric::MetricProbe;
use failover_orchestrator::probe::promql::PromqlProbe;
use failover_orchestrator::signal::ValueLimits;
use failover_orchestrator::signal::haproxy::PassiveLimits;
use failover_orchestrator::signal::node::NodeSignal;
use failover_orchestrator::signal::selector::Selector;
use fo_lab::app_stub::AppStub;
use fo_lab::haproxy::{BackendServer, Haproxy, HttpCheck};
use fo_lab::prometheus::{NodeExporter, Prometheus};

use crate::common::{Spec, spawn_app, w};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn client() -> reqwest::Client {
    failover_orchestrator::probe::http_client().unwrap()
}

/// What a probe said: `ok <detail>`, `degraded <why>` or `failed <why>`.
async fn said(p: &dyn Probe) -> String {
    let r = p.probe().await;
    match (r.ok, r.degraded) {
        (false, _) => format!("failed {}", r.error.unwrap_or_default()),
        (true, Some(why)) => format!("degraded {why}"),
        (true, None) => format!("ok {}", r.detail.unwrap_or_default()),
    }
}

/// Probes until the answer starts with `want` or `timeout` passes; returns the last answer.
async fn until(p: &dyn Probe, want: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let got = said(p).await;
        if got.starts_with(want) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const QUEUE_LIMITS: ValueLimits =
    ValueLimits { degraded_above: Some(5.0), down_above: Some(10.0), degraded_below: None, down_below: None };

#[tokio::test]
async fn a_metric_check_follows_a_real_node_exporter_across_its_limits_and_reads_the_host() {
    let node = NodeExporter::start(LO).await.unwrap();
    let timeout = Duration::from_secs(2);
    let queue = MetricSource::Selector(Selector::parse(r#"fo_test_queue_depth{queue="orders"}"#).unwrap());
    let probe = MetricProbe::new(client(), node.url(), queue, QUEUE_LIMITS, timeout);

    // Nothing written yet: no such sample is a failure with its reason, never a pass.
    let got = said(&probe).await;
    assert!(got.starts_with("failed") && got.contains("no sample fo_test_queue_depth"), "{got}");

    let depth = |v: &str| {
        format!(
            "# TYPE fo_test_queue_depth gauge\nfo_test_queue_depth{{queue=\"orders\"}} {v}\nfo_test_queue_depth{{queue=\"mail\"}} 99\n"
        )
    };
    for (value, want) in [("1", "ok"), ("7", "degraded"), ("25", "failed"), ("3", "ok"), ("NaN", "failed")] {
        node.write_textfile("queue", &depth(value)).unwrap();
        let got = said(&probe).await;
        assert!(got.starts_with(want), "value {value}: {got}");
    }
    node.write_textfile("queue", &depth("25")).unwrap();
    assert_eq!(said(&probe).await, "failed fo_test_queue_depth{queue=\"orders\"} 25 above the down limit 10");

    // Two samples under one selector: ambiguous, a failure naming them.
    let both = MetricSource::Selector(Selector::parse("fo_test_queue_depth").unwrap());
    let got = said(&MetricProbe::new(client(), node.url(), both, QUEUE_LIMITS, timeout)).await;
    assert!(got.starts_with("failed") && got.contains("ambiguous: 2 samples"), "{got}");

    // The host signals of this machine, from node_exporter's own collectors: each a number
    // within its range (limits no real value can pass, so each reads ok with its value).
    let wide = ValueLimits { down_below: Some(-1.0), ..ValueLimits::default() };
    for (signal, max) in [
        (NodeSignal::CpuBusyPercent, 100.0),
        (NodeSignal::MemoryAvailablePercent, 100.0),
        (NodeSignal::FilesystemFreePercent { mountpoint: "/".into() }, 100.0),
        (NodeSignal::LoadPerCore, 1e6),
    ] {
        let p = MetricProbe::new(client(), node.url(), MetricSource::Node(signal.clone()), wide, timeout);
        for round in 0..2 {
            let got = said(&p).await;
            let value: f64 = got.rsplit(' ').next().unwrap().parse().unwrap_or(f64::NAN);
            assert!(got.starts_with("ok") && (0.0..=max).contains(&value), "{signal} (probe {round}): {got}");
        }
    }
    // Memory cannot be below 0 % available: a limit of 101 % makes it down, with the figure.
    let full = ValueLimits { down_below: Some(101.0), ..ValueLimits::default() };
    let got = said(&MetricProbe::new(
        client(),
        node.url(),
        MetricSource::Node(NodeSignal::MemoryAvailablePercent),
        full,
        timeout,
    ))
    .await;
    assert!(got.starts_with("failed memory_available_percent") && got.contains("below the down limit 101"), "{got}");
    // A mount point that does not exist is a failure, not a pass.
    let nowhere = MetricSource::Node(NodeSignal::FilesystemFreePercent { mountpoint: "/no/such/mount".into() });
    let got = said(&MetricProbe::new(client(), node.url(), nowhere, wide, timeout)).await;
    assert!(got.starts_with("failed") && got.contains("no sample node_filesystem_avail_bytes"), "{got}");
    // node_exporter gone: the check fails with the connection error.
    let url = node.url();
    node.stop().await.unwrap();
    let got = said(&MetricProbe::new(client(), url, MetricSource::Node(NodeSignal::LoadPerCore), wide, timeout)).await;
    assert!(got.starts_with("failed GET http://127.0.0.1:"), "{got}");
}

#[tokio::test]
async fn a_promql_check_judges_the_one_value_a_real_prometheus_answers() {
    let node = NodeExporter::start(LO).await.unwrap();
    let ratio = |v: &str| {
        format!(
            "# TYPE fo_test_error_ratio gauge\nfo_test_error_ratio{{region=\"primary\"}} {v}\nfo_test_error_ratio{{region=\"standby\"}} 0.01\n"
        )
    };
    node.write_textfile("errors", &ratio("0.001")).unwrap();
    let prom = Prometheus::start(LO, &[node.addr()], Duration::from_millis(200)).await.unwrap();
    let limits = ValueLimits { degraded_above: Some(0.05), down_above: Some(0.2), ..ValueLimits::default() };
    let timeout = Duration::from_secs(2);
    let query = r#"max(fo_test_error_ratio{region="primary"})"#;
    let probe = PromqlProbe::new(client(), &prom.url(), query.into(), limits, timeout);

    // Prometheus has scraped once the query has a value.
    let got = until(&probe, "ok", Duration::from_secs(20)).await;
    assert_eq!(got, format!("ok `{query}` 0.001"));
    for (value, want) in [("0.1", "degraded"), ("0.5", "failed"), ("0.002", "ok")] {
        node.write_textfile("errors", &ratio(value)).unwrap();
        let got = until(&probe, want, Duration::from_secs(10)).await;
        assert!(got.starts_with(want), "ratio {value}: {got}");
    }

    let ask = |q: &str| PromqlProbe::new(client(), &prom.url(), q.into(), limits, timeout);
    let got = said(&ask("fo_test_error_ratio")).await;
    assert!(got.starts_with("failed") && got.contains("ambiguous: 2 series"), "{got}");
    let got = said(&ask("fo_test_no_such_metric")).await;
    assert!(got.starts_with("failed") && got.contains("no series"), "{got}");
    let got = said(&ask("sum(rate(fo_test_error_ratio[1m]")).await;
    assert!(got.starts_with("failed") && got.contains("bad_data"), "{got}");
    let got = said(&ask("vector(0.3)")).await;
    assert!(got.starts_with("failed `vector(0.3)` 0.3 above the down limit 0.2"), "{got}");
    prom.stop().await.unwrap();
    node.stop().await.unwrap();
}

/// HAProxy health-checking `servers` every 100 ms (fall 1, rise 1).
async fn checked_haproxy(servers: Vec<BackendServer>) -> Haproxy {
    let check = HttpCheck {
        path: "/health".into(),
        inter: Duration::from_millis(100),
        fall: 1,
        rise: 1,
        timeout: Duration::from_millis(500),
    };
    Haproxy::start_checked(LO, &servers, Some(&check)).await.unwrap()
}

#[tokio::test]
async fn the_passive_haproxy_check_reads_what_a_real_haproxy_sees_of_a_server() {
    let mut app = AppStub::start("primary", "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let haproxy =
        checked_haproxy(vec![BackendServer { name: "primary".into(), addr: app.addr(), backup: false }]).await;
    let admin = HaproxyAdmin::Tcp(haproxy.admin());
    let probe =
        HaproxyProbe::new(admin.clone(), fo_lab::haproxy::BACKEND.into(), "primary".into(), PassiveLimits::default());
    let got = until(&probe, "ok HAProxy sees primary UP", Duration::from_secs(10)).await;
    assert!(got.starts_with("ok HAProxy sees primary UP"), "{got}");

    app.break_health();
    let got = until(&probe, "failed", Duration::from_secs(10)).await;
    assert!(got.starts_with("failed HAProxy marks primary DOWN") && got.contains("L7STS"), "{got}");
    app.restore().await.unwrap();
    let got = until(&probe, "ok", Duration::from_secs(10)).await;
    assert!(got.starts_with("ok HAProxy sees primary UP"), "{got}");
    app.kill().await;
    let got = until(&probe, "failed", Duration::from_secs(10)).await;
    assert!(got.starts_with("failed HAProxy marks primary DOWN") && got.contains("L4CON"), "{got}");

    // What HAProxy cannot tell is no signal, never a failure of the region.
    let unknown = HaproxyProbe::new(admin, fo_lab::haproxy::BACKEND.into(), "nobody".into(), PassiveLimits::default());
    assert_eq!(said(&unknown).await, "ok no signal: HAProxy has no server app/nobody");
    let gone = haproxy.admin();
    haproxy.stop().await.unwrap();
    let got =
        said(&HaproxyProbe::new(HaproxyAdmin::Tcp(gone), "app".into(), "primary".into(), PassiveLimits::default()))
            .await;
    assert!(got.starts_with("ok no signal: runtime API"), "{got}");
}

#[tokio::test]
async fn haproxy_seeing_the_primary_dead_moves_traffic_and_its_up_never_keeps_a_region_up() {
    // HAProxy's servers are other stubs than the ones the orchestrator probes, so HAProxy's
    // view and the active checks can disagree either way.
    let mut seen_by_haproxy = AppStub::start("primary", "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let haproxy =
        checked_haproxy(vec![BackendServer { name: "primary".into(), addr: seen_by_haproxy.addr(), backup: false }])
            .await;
    let passive = format!(
        "name = \"lb\"\nlayer = \"app\"\ntype = \"haproxy\"\nadmin_addr = \"{}\"\nbackend = \"{}\"\nserver = \"primary\"\ninterval = \"200ms\"\nfast_interval = \"100ms\"\ntimeout = \"150ms\"\nfall = 1\nrise = 1",
        haproxy.admin(),
        fo_lab::haproxy::BACKEND
    );
    let mut app = spawn_app(Spec { region_checks: [vec![passive], vec![], vec![]], ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    let lb = |s: &failover_orchestrator::status::Status| {
        s.regions[0].checks.iter().find(|c| c.name == "lb").map(|c| c.health)
    };
    assert_eq!(lb(&app.status.borrow()), Some(failover_orchestrator::health::Health::Up));

    // HAProxy marks the primary down; every active check of the orchestrator still passes.
    seen_by_haproxy.break_health();
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    {
        let s = app.status.borrow();
        let c = s.regions[0].checks.iter().find(|c| c.name == "lb").unwrap();
        let err = c.last_error.clone().unwrap_or_default();
        assert!(err.starts_with("HAProxy marks primary DOWN"), "{err}");
        assert!(
            s.regions[0]
                .checks
                .iter()
                .filter(|c| c.name != "lb")
                .all(|c| c.health == failover_orchestrator::health::Health::Up),
            "only HAProxy saw the primary down"
        );
    }
    // HAProxy sees it again: traffic comes back (automatic failback).
    seen_by_haproxy.restore().await.unwrap();
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(40)).await;

    // Now the orchestrator's own checks see the primary broken while HAProxy sees it up: the
    // passive up must not hold the region up.
    app.apps[0].break_health();
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    assert_eq!(lb(&app.status.borrow()), Some(failover_orchestrator::health::Health::Up));
    app.shutdown().await;
    haproxy.stop().await.unwrap();
}
