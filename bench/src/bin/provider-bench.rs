//! Provider bench: time to apply and verify (read back) a plan on each provider
//! against real local servers (PowerDNS, HAProxy, BIND, moto for Route 53, a
//! local webhook receiver), as the median of repeated runs, plus the traffic
//! split observed through HAProxy against the plan.
//!
//! `cargo run --release -p fo-bench --bin provider-bench -- [runs]` (default 30 runs).
//! Prints a table on stdout; needs the packages from `scripts/install-deps.sh`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use failover_orchestrator::config::{
    AwsKeys, HaproxyAdmin, HaproxyConfig, PowerDnsConfig, Rfc2136Config, Route53Config, Route53Target, TsigAlgorithm,
    WebhookConfig,
};
use failover_orchestrator::plan::{Epoch, PlanId, PlanKind, TrafficPlan, Weights};
use failover_orchestrator::region::RegionName;
use failover_orchestrator::traffic::TrafficProvider;
use fo_lab::app_stub::AppStub;
use fo_lab::{bind, haproxy, moto, powerdns};

const REGIONS: [&str; 3] = ["primary", "standby", "dr"];
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn weights(p: u32, s: u32, d: u32) -> Weights {
    Weights::from_pairs([(RegionName::new("primary"), p), (RegionName::new("standby"), s), (RegionName::new("dr"), d)])
}

fn plan(w: Weights) -> TrafficPlan {
    TrafficPlan {
        id: PlanId::new(),
        epoch: Epoch(1),
        weights: w,
        kind: PlanKind::Manual,
        reason: "bench".into(),
        reasons: vec![],
        inputs: serde_json::Value::Null,
        decided_at: chrono::Utc::now(),
    }
}

fn addresses() -> BTreeMap<RegionName, IpAddr> {
    REGIONS
        .iter()
        .enumerate()
        .map(|(i, r)| (RegionName::new(*r), IpAddr::V4(Ipv4Addr::new(127, 0, 10, 1 + i as u8))))
        .collect()
}

/// Applies alternating plans `runs` times; returns (median, p90) of apply + verified read-back.
async fn time_provider(p: &dyn TrafficProvider, runs: usize) -> anyhow::Result<(Duration, Duration)> {
    let plans = [weights(80, 20, 0), weights(0, 100, 0)];
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let pl = plan(plans[i % 2].clone());
        let t = Instant::now();
        p.apply(&pl).await.with_context(|| format!("{} apply", p.name()))?;
        let live = p.read_back().await.with_context(|| format!("{} read-back", p.name()))?;
        anyhow::ensure!(live.weights == p.expressible(&pl.weights), "{}: read-back differs", p.name());
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], times[(times.len() * 9 / 10).min(times.len() - 1)]))
}

async fn webhook_receiver() -> anyhow::Result<String> {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30).max(2);
    let mut out = std::io::stdout().lock();
    writeln!(out, "provider apply + verified read-back, {runs} runs (alternating 80/20/0 and 0/100/0)")?;
    writeln!(out, "{:<10} {:>12} {:>12}", "provider", "median", "p90")?;
    let row = |out: &mut std::io::StdoutLock<'_>, name: &str, r: (Duration, Duration)| {
        writeln!(out, "{:<10} {:>9.2} ms {:>9.2} ms", name, r.0.as_secs_f64() * 1e3, r.1.as_secs_f64() * 1e3)
    };

    // PowerDNS.
    let pdns = powerdns::PowerDns::start(LOCALHOST).await?;
    pdns.create_zone("bench.test.").await?;
    let p = failover_orchestrator::traffic::powerdns::PowerDnsProvider::new(
        PowerDnsConfig {
            name: "powerdns".into(),
            api_url: pdns.api_url().trim_end_matches("/api/v1").to_string(),
            api_key: pdns.api_key().to_string().into(),
            server_id: "localhost".into(),
            zone: "bench.test.".into(),
            record: "app.bench.test.".into(),
            ttl: 5,
            timeout: Duration::from_secs(2),
            dns_addr: Some(pdns.dns_addr()),
        },
        addresses(),
    )?;
    row(&mut out, "powerdns", time_provider(&p, runs).await?)?;
    pdns.stop().await?;

    // HAProxy, plus the traffic split.
    let mut apps = Vec::new();
    let mut servers = Vec::new();
    for r in REGIONS {
        let a = AppStub::start(r, SocketAddr::new(LOCALHOST, 0)).await?;
        servers.push((r.to_string(), a.addr()));
        apps.push(a);
    }
    let hap = haproxy::Haproxy::start(LOCALHOST, &servers).await?;
    let p = failover_orchestrator::traffic::haproxy::HaproxyProvider::new(HaproxyConfig {
        name: "haproxy".into(),
        admin: HaproxyAdmin::Tcp(hap.admin()),
        backend: haproxy::BACKEND.into(),
        servers: REGIONS.iter().map(|r| (RegionName::new(*r), r.to_string())).collect(),
        timeout: Duration::from_secs(2),
    });
    row(&mut out, "haproxy", time_provider(&p, runs).await?)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    for target in [weights(80, 20, 0), weights(50, 30, 20)] {
        p.apply(&plan(target.clone())).await?;
        let n = 400;
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..n {
            let body = http.get(format!("http://{}/", hap.frontend())).send().await?.text().await?;
            *counts.entry(body.trim().trim_start_matches("region ").to_string()).or_default() += 1;
        }
        let observed: Vec<String> = REGIONS
            .iter()
            .map(|r| format!("{r} {:.1}%", 100.0 * f64::from(*counts.get(*r).unwrap_or(&0)) / f64::from(n)))
            .collect();
        writeln!(out, "haproxy split over {n} requests: plan {target} → observed {}", observed.join(", "))?;
    }
    hap.stop().await?;
    drop(apps);

    // BIND (RFC 2136 + TSIG).
    let named = bind::Bind::start(LOCALHOST, "bench.test.").await?;
    let p = failover_orchestrator::traffic::rfc2136::Rfc2136Provider::new(
        Rfc2136Config {
            name: "rfc2136".into(),
            server: named.addr(),
            secondaries: vec![],
            zone: "bench.test.".into(),
            record: "app.bench.test.".into(),
            ttl: 5,
            tsig_key_name: bind::KEY_NAME.into(),
            tsig_algorithm: TsigAlgorithm::HmacSha256,
            tsig_secret: named.tsig_secret().to_string().into(),
            timeout: Duration::from_secs(2),
        },
        addresses(),
    )?;
    row(&mut out, "rfc2136", time_provider(&p, runs).await?)?;
    named.stop().await?;

    // Route 53 on moto.
    let m = moto::Moto::start(LOCALHOST).await?;
    let zone_id = m.create_hosted_zone("bench.test.").await?;
    let p = failover_orchestrator::traffic::route53::Route53Provider::new(
        Route53Config {
            name: "route53".into(),
            hosted_zone_id: zone_id,
            record: "app.bench.test.".into(),
            ttl: 5,
            region: "us-east-1".into(),
            endpoint_url: Some(m.endpoint()),
            credentials: Some(AwsKeys {
                access_key_id: "bench".to_string().into(),
                secret_access_key: "bench".to_string().into(),
                session_token: None,
            }),
            targets: REGIONS
                .iter()
                .map(|r| (RegionName::new(*r), Route53Target { set_identifier: r.to_string(), health_check_id: None }))
                .collect(),
            timeout: Duration::from_secs(5),
        },
        addresses(),
    )
    .await;
    row(&mut out, "route53*", time_provider(&p, runs).await?)?;
    m.stop().await?;

    // Webhook to a local receiver.
    let url = webhook_receiver().await?;
    let p = failover_orchestrator::traffic::webhook::WebhookProvider::new(WebhookConfig {
        name: "webhook".into(),
        url,
        secret: "bench".to_string().into(),
        timeout: Duration::from_secs(2),
    })?;
    row(&mut out, "webhook", time_provider(&p, runs).await?)?;
    writeln!(out, "* route53 against the moto emulator on loopback, not AWS")?;
    Ok(())
}
