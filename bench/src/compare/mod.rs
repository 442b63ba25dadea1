//! Side-by-side benchmark: the orchestrator against HAProxy's own health checks and PowerDNS
//! `ifurlup` LUA records, on the same targets in the same run.
//!
//! Three apps (primary, standby, dr) listen on `127.0.0.1:0`; each sits behind a [`FaultProxy`]
//! on its region address (`127.0.0.11/12/13`) at one common port, because `ifurlup` fetches one
//! URL from every candidate address. All three mechanisms probe `GET /health` through those
//! proxies, so a broken app (503) or a blackholed proxy is seen by all of them at once:
//!
//! * **ours**: the lab orchestrator (PowerDNS provider, weights 80/20/0) — moved when `dig`
//!   stops answering the primary; false flips are plans that lower the primary's weight;
//! * **HAProxy**: `option httpchk GET /health` with the same `inter`/`fall`/`rise`, standby and
//!   dr as `backup` servers — moved when HTTP requests through it stop reaching the primary
//!   (`GET /` names the region); false flips are `show servers state` DOWN transitions;
//! * **PowerDNS `ifurlup`**: `ifurlup(url, {{primary}, {standby}})` in the same PowerDNS —
//!   moved when `dig` stops answering the primary; false flips are answers that drop it.
//!
//! Figures are returned for the benchmark binary to print; nothing here asserts a time.

pub mod report;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use failover_orchestrator::config::CheckKind;
use failover_orchestrator::status::Status;
use fo_lab::app_stub::AppStub;
use fo_lab::faultproxy::FaultProxy;
use fo_lab::haproxy::{BACKEND, BackendServer, Haproxy, HttpCheck};
use fo_lab::lab::{Lab, LabTuning, RECORD, dig};
use fo_lab::measure::Summary;

/// The `ifurlup` name in the lab zone.
pub const LUA_RECORD: &str = "lua.lab.test.";
/// Answers in a row that must avoid the primary before a move counts (see [`MoveDetector`]).
pub const STREAK: usize = 8;
/// Longest wait for one mechanism to move before the run counts as "did not move".
const MOVE_LIMIT: Duration = Duration::from_secs(30);
/// Client timeout of one HTTP request through HAProxy (a blackholed backend never answers).
const HTTP_TIMEOUT: Duration = Duration::from_millis(200);
/// Sampling period of the false-flip phase.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What the comparison runs.
#[derive(Debug, Clone, Copy)]
pub struct CompareOptions {
    /// Check interval of all three (PowerDNS can only do whole seconds).
    pub interval: Duration,
    /// Consecutive failures before down (ours and HAProxy; PowerDNS 4.7 has no such option).
    pub fall: u32,
    /// Consecutive successes before up again (ours and HAProxy).
    pub rise: u32,
    /// Runs per fault for the time to move.
    pub runs: usize,
    /// How long the 30 % connection loss lasts.
    pub window: Duration,
    /// How long the blackhole hiccup lasts.
    pub hiccup: Duration,
}

/// One of the compared failover mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// The orchestrator, PowerDNS provider.
    Ours,
    /// HAProxy active HTTP health checks.
    Haproxy,
    /// PowerDNS LUA `ifurlup`.
    PowerdnsIfurlup,
}

impl Mechanism {
    /// All three, ours first.
    pub const ALL: [Mechanism; 3] = [Mechanism::Ours, Mechanism::Haproxy, Mechanism::PowerdnsIfurlup];

    /// A label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Mechanism::Ours => "failover-orchestrator",
            Mechanism::Haproxy => "HAProxy httpchk",
            Mechanism::PowerdnsIfurlup => "PowerDNS ifurlup",
        }
    }
}

/// Time to move for one fault and mechanism.
#[derive(Debug, Clone, Serialize)]
pub struct MoveRow {
    /// The fault injected on the primary.
    pub fault: String,
    /// Who moved.
    pub mechanism: Mechanism,
    /// Over the runs that moved.
    pub summary: Summary,
    /// Each moved run, in milliseconds.
    pub times_ms: Vec<f64>,
    /// Runs that did not move within the limit.
    pub not_moved: usize,
    /// This mechanism's p50 divided by ours (1.0 for ours).
    pub p50_ratio_to_ours: Option<f64>,
}

/// False flips for one fault and mechanism.
#[derive(Debug, Clone, Serialize)]
pub struct FlipRow {
    /// The fault that should move nothing.
    pub fault: String,
    /// Who (wrongly) moved.
    pub mechanism: Mechanism,
    /// Moves away from the primary.
    pub moves: usize,
    /// Seconds spent away from the primary.
    pub seconds_off_primary: f64,
    /// Samples taken.
    pub samples: usize,
}

/// Everything the comparison measured.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// Check interval, milliseconds.
    pub interval_ms: u128,
    /// fall.
    pub fall: u32,
    /// rise.
    pub rise: u32,
    /// Runs per fault.
    pub runs: usize,
    /// The settings of each mechanism, as configured.
    pub settings: Vec<String>,
    /// Time to move.
    pub time_to_move: Vec<MoveRow>,
    /// False flips.
    pub false_flips: Vec<FlipRow>,
}

/// Detects that answers moved away from the primary: [`STREAK`]-like `needed` answers in a row
/// that are not the primary. The move time is that of the first of them. A missing answer
/// (timeout, error) breaks the streak: a client that gets nothing has not been moved.
#[derive(Debug, Clone)]
pub struct MoveDetector {
    needed: usize,
    streak: usize,
    start: Option<Duration>,
}

impl MoveDetector {
    /// A detector needing `needed` (at least 1) answers in a row.
    pub fn new(needed: usize) -> Self {
        Self { needed: needed.max(1), streak: 0, start: None }
    }

    /// Feeds one answer taken at `at`: `Some(true)` the primary, `Some(false)` elsewhere,
    /// `None` no answer. Returns the move time once the streak is complete.
    pub fn observe(&mut self, at: Duration, on_primary: Option<bool>) -> Option<Duration> {
        if on_primary == Some(false) {
            let start = *self.start.get_or_insert(at);
            self.streak += 1;
            if self.streak >= self.needed {
                return Some(start);
            }
        } else {
            self.streak = 0;
            self.start = None;
        }
        None
    }
}

/// Moves away from the primary in a timed series of samples (`true` = on the primary).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlipCount {
    /// Transitions from on to off the primary.
    pub moves: usize,
    /// Time spent off the primary (from each off sample to the next sample).
    pub off: Duration,
}

/// Counts the moves in `samples` (sorted by time). A series that starts off the primary
/// counts no move for that start: the move happened before the window.
pub fn count_flips(samples: &[(Duration, bool)]) -> FlipCount {
    let mut moves = 0;
    let mut off = Duration::ZERO;
    for pair in samples.windows(2) {
        let ((t0, on0), (t1, on1)) = (pair[0], pair[1]);
        if on0 && !on1 {
            moves += 1;
        }
        if !on0 {
            off += t1.saturating_sub(t0);
        }
    }
    FlipCount { moves, off }
}

/// `theirs / ours`, when both are measured.
pub fn ratio(theirs: f64, ours: f64) -> Option<f64> {
    (ours > 0.0 && theirs > 0.0).then(|| theirs / ours)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Broken,
    Blackhole,
}

impl Fault {
    fn label(self) -> &'static str {
        match self {
            Fault::Broken => "app /health answers 503",
            Fault::Blackhole => "blackhole (fault proxy)",
        }
    }
}

/// The targets and the three mechanisms watching them.
struct Bench {
    apps: Vec<AppStub>,
    proxies: Vec<FaultProxy>,
    ips: [IpAddr; 3],
    lab: Lab,
    haproxy: Haproxy,
    http: reqwest::Client,
    status: watch::Receiver<Arc<Status>>,
    dns: SocketAddr,
}

/// Runs the whole comparison: starts apps, fault proxies, the lab (PostgreSQL, PowerDNS,
/// orchestrator) and HAProxy, measures, and tears everything down.
///
/// # Errors
/// When a server does not start or a mechanism never reaches its normal state.
pub async fn run(opts: CompareOptions, mut progress: impl FnMut(&str)) -> anyhow::Result<CompareReport> {
    if opts.interval.subsec_millis() != 0 || opts.interval < Duration::from_secs(1) {
        bail!("PowerDNS checks in whole seconds: use an interval of 1s, 2s, …");
    }
    let ips = [11u8, 12, 13].map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)));
    let names = ["primary", "standby", "dr"];
    let mut apps = Vec::new();
    for name in names {
        apps.push(AppStub::start(name, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?);
    }
    let (proxies, port) = start_proxies(&ips, &apps).await?;
    let targets = [0, 1, 2].map(|i| SocketAddr::new(ips[i], port));
    let tuning = LabTuning {
        dwell: Duration::from_secs(1),
        failback_hold: Duration::from_secs(1),
        failback_step: 80,
        probe_targets: Some(targets),
        // As in the shipped regions.toml.
        fast_interval: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    progress("starting the lab (PostgreSQL ×4, PowerDNS, orchestrator) and HAProxy …");
    let lab = Lab::start_tuned("127.0.0.1:0".parse()?, opts.interval, opts.fall, tuning).await?;
    let check = HttpCheck {
        path: "/health".into(),
        inter: opts.interval,
        fall: opts.fall,
        rise: opts.rise,
        timeout: opts.interval.mul_f64(0.8).min(Duration::from_secs(2)),
    };
    let servers: Vec<BackendServer> =
        (0..3).map(|i| BackendServer { name: names[i].into(), addr: targets[i], backup: i > 0 }).collect();
    let haproxy = Haproxy::start_checked(IpAddr::V4(Ipv4Addr::LOCALHOST), &servers, Some(&check)).await?;
    // One URL, fetched by PowerDNS from each candidate address (the port is the common one).
    let lua = format!(
        "A \"ifurlup('http://{}:{port}/health', {{{{'{}'}}, {{'{}'}}}}, {{timeout='1'}})\"",
        ips[0], ips[0], ips[1]
    );
    lab.pdns.replace_rrset("lab.test.", LUA_RECORD, "LUA", 1, std::slice::from_ref(&lua)).await?;
    let app =
        failover_orchestrator::app::App::build(lab.config.clone(), failover_orchestrator::app::AppOptions::default())
            .await?;
    let status = app.status();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run(cancel.clone()));
    let http = reqwest::Client::builder().no_proxy().timeout(HTTP_TIMEOUT).build().context("HTTP client")?;
    let dns = lab.pdns.dns_addr();
    // The pace of ours confirming the primary's app check (the lab sets one for every check).
    let fast = lab
        .config
        .checks()
        .find(|c| matches!(c.kind, CheckKind::Http { .. }))
        .map_or(opts.interval, |c| c.fast_interval);
    let mut bench = Bench { apps, proxies, ips, lab, haproxy, http, status, dns };
    let settings = vec![
        format!(
            "ours: interval {}, timeout {}, overlapping confirmation every {} (at most {} probes in flight), fall {}, rise {}, 3 hedged attempts per probe; PowerDNS weights 80/20/0; confirmed after the first failing probe starts: 503 in (fall − 1) × fast = {}, silent in timeout + (fall − 1) × fast = {}",
            humantime::format_duration(opts.interval),
            humantime::format_duration(check.timeout),
            humantime::format_duration(fast),
            opts.fall.max(opts.rise),
            opts.fall,
            opts.rise,
            humantime::format_duration(fast * opts.fall.saturating_sub(1)),
            humantime::format_duration(check.timeout + fast * opts.fall.saturating_sub(1)),
        ),
        format!("HAProxy: {}", check.directives().trim().replace('\n', ";").replace("  ", " ")),
        format!(
            "PowerDNS ifurlup: {lua}, lua-health-checks-interval=1 (whole seconds; 4.7 has no minimumFailures, so one failed check moves)"
        ),
    ];
    let result = bench.measure(opts, &mut progress).await;
    cancel.cancel();
    let _ = task.await;
    let Bench { proxies, haproxy, lab, .. } = bench;
    for p in proxies {
        p.stop().await;
    }
    let _ = haproxy.stop().await;
    lab.stop().await;
    let (time_to_move, false_flips) = result?;
    Ok(CompareReport {
        interval_ms: opts.interval.as_millis(),
        fall: opts.fall,
        rise: opts.rise,
        runs: opts.runs,
        settings,
        time_to_move,
        false_flips,
    })
}

/// Starts a fault proxy per app on its region address, all at one common port.
async fn start_proxies(ips: &[IpAddr; 3], apps: &[AppStub]) -> anyhow::Result<(Vec<FaultProxy>, u16)> {
    for _ in 0..50 {
        let port = fo_lab::process::free_port(ips[0]);
        let mut proxies = Vec::new();
        for (ip, app) in ips.iter().zip(apps) {
            match FaultProxy::start(SocketAddr::new(*ip, port), app.addr()).await {
                Ok(p) => proxies.push(p),
                Err(_) => break,
            }
        }
        if proxies.len() == ips.len() {
            return Ok((proxies, port));
        }
        for p in proxies {
            p.stop().await;
        }
    }
    bail!("no port free on all of {ips:?}")
}

/// Polls `sample` until the detector sees a move, or [`MOVE_LIMIT`].
async fn until_moved<F, Fut>(t0: Instant, pause: Duration, mut sample: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<bool>>,
{
    let mut det = MoveDetector::new(STREAK);
    while t0.elapsed() < MOVE_LIMIT {
        let at = t0.elapsed();
        if let Some(t) = det.observe(at, sample().await) {
            return Some(t);
        }
        tokio::time::sleep(pause).await;
    }
    None
}

impl Bench {
    async fn measure(
        &mut self,
        opts: CompareOptions,
        progress: &mut impl FnMut(&str),
    ) -> anyhow::Result<(Vec<MoveRow>, Vec<FlipRow>)> {
        let mut moves = Vec::new();
        for fault in [Fault::Broken, Fault::Blackhole] {
            progress(&format!("time to move, {}: {} runs …", fault.label(), opts.runs));
            let mut times: [Vec<Duration>; 3] = Default::default();
            let mut not_moved = [0usize; 3];
            for run in 0..opts.runs {
                self.wait_normal().await.with_context(|| format!("before run {} ({})", run + 1, fault.label()))?;
                // A random phase over a whole interval: the last mechanism back to normal was
                // just probed, and a fault injected at once would always wait a full interval.
                tokio::time::sleep(opts.interval.mul_f64(rand::random::<f64>())).await;
                let t0 = Instant::now();
                self.inject(fault, true).await?;
                let this = &*self;
                let (a, b, c) = tokio::join!(
                    until_moved(t0, Duration::ZERO, || this.ours_dig()),
                    until_moved(t0, Duration::from_millis(10), || this.haproxy_http()),
                    until_moved(t0, Duration::ZERO, || this.lua_dig()),
                );
                self.inject(fault, false).await?;
                let mut line = format!("  run {}:", run + 1);
                for (i, t) in [a, b, c].into_iter().enumerate() {
                    match t {
                        Some(t) => {
                            line.push_str(&format!(" {} {:.0} ms;", Mechanism::ALL[i].label(), t.as_secs_f64() * 1e3));
                            times[i].push(t);
                        }
                        None => {
                            line.push_str(&format!(" {} did not move;", Mechanism::ALL[i].label()));
                            not_moved[i] += 1;
                        }
                    }
                }
                progress(&line);
            }
            let ours_p50 = Summary::of(&times[0]).p50_ms;
            for (i, m) in Mechanism::ALL.into_iter().enumerate() {
                let summary = Summary::of(&times[i]);
                moves.push(MoveRow {
                    fault: fault.label().into(),
                    mechanism: m,
                    summary,
                    times_ms: times[i].iter().map(|t| t.as_secs_f64() * 1e3).collect(),
                    not_moved: not_moved[i],
                    p50_ratio_to_ours: ratio(summary.p50_ms, ours_p50),
                });
            }
        }

        let mut flips = Vec::new();
        let window = format!("30 % connection loss for {}", humantime::format_duration(opts.window));
        progress(&format!("false flips: {window} …"));
        self.wait_normal().await.context("before the loss window")?;
        self.proxies[0].update(|f| f.drop_rate = 0.3);
        let samples = self.sample_for(opts.window, Duration::from_secs(3), false).await;
        flips.extend(flip_rows(&window, &samples));
        let hiccup = format!("{} blackhole hiccup", humantime::format_duration(opts.hiccup));
        progress(&format!("false flips: {hiccup} …"));
        self.wait_normal().await.context("before the hiccup")?;
        let samples = self.sample_for(opts.hiccup, Duration::from_secs(8), true).await;
        flips.extend(flip_rows(&hiccup, &samples));
        Ok((moves, flips))
    }

    async fn inject(&mut self, fault: Fault, on: bool) -> anyhow::Result<()> {
        match (fault, on) {
            (Fault::Broken, true) => self.apps[0].break_health(),
            (Fault::Broken, false) => self.apps[0].restore().await?,
            (Fault::Blackhole, true) => self.proxies[0].update(|f| f.blackhole = true),
            (Fault::Blackhole, false) => self.proxies[0].clear(),
        }
        Ok(())
    }

    /// Samples the three mechanisms' state every [`SAMPLE_EVERY`] while the primary's proxy
    /// has its fault for `fault_for` (the fault already set, or a blackhole set here when
    /// `blackhole`), then clears the fault and keeps sampling for `after`.
    async fn sample_for(&self, fault_for: Duration, after: Duration, blackhole: bool) -> [Vec<(Duration, bool)>; 3] {
        if blackhole {
            self.proxies[0].update(|f| f.blackhole = true);
        }
        let t0 = Instant::now();
        let mut out: [Vec<(Duration, bool)>; 3] = Default::default();
        let mut cleared = false;
        while t0.elapsed() < fault_for + after {
            if !cleared && t0.elapsed() >= fault_for {
                self.proxies[0].clear();
                cleared = true;
            }
            let tick = Instant::now();
            let at = t0.elapsed();
            out[0].push((at, self.ours_weight_normal()));
            if let Some(up) = self.haproxy_primary_up().await {
                out[1].push((at, up));
            }
            if let Some(on) = self.lua_dig().await {
                out[2].push((at, on));
            }
            tokio::time::sleep(SAMPLE_EVERY.saturating_sub(tick.elapsed())).await;
        }
        self.proxies[0].clear();
        out
    }

    /// Waits until all three serve from the primary again.
    async fn wait_normal(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ours = self.ours_weight_normal()
                && self.status.borrow().plan.as_ref().is_some_and(|p| p.verified_at.is_some());
            let mut ok = ours && self.haproxy_primary_up().await == Some(true);
            for _ in 0..3 {
                ok = ok && self.haproxy_http().await == Some(true) && self.lua_dig().await == Some(true);
            }
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "not back to normal within 120 s (ours {ours}, HAProxy {:?}, ifurlup {:?})",
                    self.haproxy_primary_up().await,
                    self.lua_dig().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn ours_weight_normal(&self) -> bool {
        self.status
            .borrow()
            .regions
            .iter()
            .find(|r| r.name.as_str() == "primary")
            .is_some_and(|r| r.weight == r.normal_weight)
    }

    async fn ours_dig(&self) -> Option<bool> {
        dig(self.dns, RECORD).await.ok().flatten().map(|ip| ip == self.ips[0])
    }

    async fn lua_dig(&self) -> Option<bool> {
        dig(self.dns, LUA_RECORD).await.ok().flatten().map(|ip| ip == self.ips[0])
    }

    async fn haproxy_http(&self) -> Option<bool> {
        let resp = self.http.get(format!("http://{}/", self.haproxy.frontend())).send().await.ok()?;
        let body = resp.text().await.ok()?;
        body.strip_prefix("region ").map(|r| r.trim() == "primary")
    }

    async fn haproxy_primary_up(&self) -> Option<bool> {
        let text = self.haproxy.command(&format!("show servers state {BACKEND}")).await.ok()?;
        let servers = failover_orchestrator::traffic::haproxy::parse_servers_state(&text).ok()?;
        servers.iter().find(|s| s.name == "primary").map(|s| s.op_state == 2)
    }
}

fn flip_rows(fault: &str, samples: &[Vec<(Duration, bool)>; 3]) -> Vec<FlipRow> {
    Mechanism::ALL
        .into_iter()
        .zip(samples)
        .map(|(m, s)| {
            let c = count_flips(s);
            FlipRow {
                fault: fault.into(),
                mechanism: m,
                moves: c.moves,
                seconds_off_primary: c.off.as_secs_f64(),
                samples: s.len(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_move_is_timed_at_the_first_answer_of_the_streak() {
        let mut d = MoveDetector::new(3);
        assert_eq!(d.observe(ms(0), Some(true)), None);
        assert_eq!(d.observe(ms(10), Some(false)), None);
        assert_eq!(d.observe(ms(20), Some(false)), None);
        assert_eq!(d.observe(ms(30), Some(false)), Some(ms(10)));
    }

    #[test]
    fn a_primary_answer_or_no_answer_breaks_the_streak() {
        let mut d = MoveDetector::new(2);
        assert_eq!(d.observe(ms(0), Some(false)), None);
        assert_eq!(d.observe(ms(10), Some(true)), None);
        assert_eq!(d.observe(ms(20), Some(false)), None);
        assert_eq!(d.observe(ms(30), None), None);
        assert_eq!(d.observe(ms(40), Some(false)), None);
        assert_eq!(d.observe(ms(50), Some(false)), Some(ms(40)));
    }

    #[test]
    fn flips_count_each_departure_from_the_primary_and_the_time_away() {
        let s = [(ms(0), true), (ms(100), false), (ms(200), false), (ms(300), true), (ms(400), false), (ms(500), true)];
        assert_eq!(count_flips(&s), FlipCount { moves: 2, off: ms(300) });
    }

    #[test]
    fn a_series_that_starts_away_counts_no_move_for_it() {
        let s = [(ms(0), false), (ms(100), true), (ms(200), true)];
        assert_eq!(count_flips(&s), FlipCount { moves: 0, off: ms(100) });
        assert_eq!(count_flips(&[]), FlipCount { moves: 0, off: Duration::ZERO });
    }

    #[test]
    fn ratio_needs_both_figures() {
        assert_eq!(ratio(300.0, 100.0), Some(3.0));
        assert_eq!(ratio(300.0, 0.0), None);
        assert_eq!(ratio(0.0, 100.0), None);
    }
}
