//! The passive signal: what an HAProxy in front of a region sees of that region's server.
//!
//! HAProxy carries the live traffic, so it learns of a dead or failing server from the traffic
//! itself (`observe layer4|layer7` with `on-error`) and from its own health checks, often
//! before any prober's next cycle. Its runtime API's `show stat` gives, per server: `status`
//! (`UP`, `DOWN`, `UP 1/3` while its checks are failing, `MAINT`, `DRAIN`, `NOLB`, `no check`),
//! `check_status` and `last_chk` (the last check's result), `qcur` (requests queued for it),
//! `stot` (sessions so far), and its errors so far: `econ` (connections that failed), `eresp`
//! (responses that failed) and `hrsp_5xx`.
//!
//! [`judge`] turns two readings of one server into a [`Reading`]. The signal can only say
//! "worse": the engine never counts a passive check's up as health (see `engine::observe`), so a
//! quiet HAProxy, a server in maintenance or a runtime API that does not answer make a region
//! no healthier and no worse than its active checks say.
//!
//! Limits (in the README): HAProxy's view is one load balancer's; its error ratio needs traffic
//! (below `min_sessions` per reading it is not judged); `MAINT`/`DRAIN` are an operator's (or
//! the haproxy provider's) doing, not the server's health.

use super::{Number, Reading};

/// One server's row of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    /// `status`: `UP`, `DOWN`, `UP 1/3`, `DOWN 1/2`, `MAINT`, `DRAIN`, `NOLB`, `no check`.
    pub status: String,
    /// `check_status`: `L4OK`, `L4CON`, `L7STS` … (empty without checks).
    pub check_status: String,
    /// `last_chk`: the last check's detail.
    pub last_chk: String,
    /// `qcur`: requests queued for this server now.
    pub queue: u64,
    /// `stot`: sessions so far.
    pub sessions: u64,
    /// `econ + eresp + hrsp_5xx` so far.
    pub errors: u64,
}

/// When the passive signal says degraded or down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassiveLimits {
    /// Degraded when this share of the sessions since the last reading failed.
    pub degraded_error_ratio: Option<f64>,
    /// Down when this share failed.
    pub down_error_ratio: Option<f64>,
    /// Sessions since the last reading below which the error ratio is not judged.
    pub min_sessions: u64,
    /// Degraded when this many requests wait in the server's queue.
    pub degraded_queue: Option<u64>,
    /// Down when this many wait.
    pub down_queue: Option<u64>,
}

impl Default for PassiveLimits {
    fn default() -> Self {
        Self {
            degraded_error_ratio: Some(0.05),
            down_error_ratio: Some(0.5),
            min_sessions: 20,
            degraded_queue: None,
            down_queue: None,
        }
    }
}

/// Parses `show stat` output (CSV with a `# pxname,svname,…` header) and returns the row of
/// `server` in `backend`.
///
/// # Errors
/// No header, a row that does not parse, a column missing, or no such server.
pub fn server_stat(csv_text: &str, backend: &str, server: &str) -> Result<ServerStat, String> {
    let text = csv_text.trim_start().strip_prefix("# ").ok_or_else(|| {
        format!("not `show stat` output: `{}`", csv_text.chars().take(120).collect::<String>().trim())
    })?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| format!("unreadable `show stat` header: {e}"))?.clone();
    let col =
        |name: &str| header.iter().position(|h| h == name).ok_or_else(|| format!("`show stat` has no `{name}` column"));
    let (px, sv) = (col("pxname")?, col("svname")?);
    let cols = [col("status")?, col("check_status")?, col("last_chk")?, col("qcur")?, col("stot")?];
    let errs = [col("econ")?, col("eresp")?, col("hrsp_5xx")?];
    for row in reader.records() {
        let row = row.map_err(|e| format!("unreadable `show stat` row: {e}"))?;
        if row.get(px) != Some(backend) || row.get(sv) != Some(server) {
            continue;
        }
        let text = |i: usize| row.get(i).unwrap_or("").to_string();
        // An empty counter is one HAProxy does not keep for this server (no HTTP mode, no checks).
        let num = |i: usize| -> Result<u64, String> {
            match row.get(i).unwrap_or("") {
                "" => Ok(0),
                s => s.parse().map_err(|_| format!("`{}` of {backend}/{server} is `{s}`, not a count", &header[i])),
            }
        };
        let mut errors = 0;
        for i in errs {
            errors += num(i)?;
        }
        return Ok(ServerStat {
            status: text(cols[0]),
            check_status: text(cols[1]),
            last_chk: text(cols[2]),
            queue: num(cols[3])?,
            sessions: num(cols[4])?,
            errors,
        });
    }
    Err(format!("HAProxy has no server {backend}/{server}"))
}

/// What HAProxy's view of `server` says, from this reading `now` and the one before
/// (`previous`, for the error ratio since then).
pub fn judge(server: &str, previous: Option<&ServerStat>, now: &ServerStat, limits: &PassiveLimits) -> Reading {
    let check = if now.check_status.is_empty() {
        String::new()
    } else if now.last_chk.is_empty() {
        format!(" ({})", now.check_status)
    } else {
        format!(" ({}: {})", now.check_status, now.last_chk)
    };
    let status = now.status.as_str();
    if status.starts_with("DOWN") {
        return Reading::Failed(format!("HAProxy marks {server} {status}{check}"));
    }
    if ["MAINT", "DRAIN", "NOLB"].iter().any(|s| status.starts_with(s)) {
        return Reading::Ok(format!("HAProxy has {server} in {status}: not judged"));
    }
    // `UP 1/3`: HAProxy's checks are failing and it will mark the server down at 3/3.
    if let Some(going) = status.strip_prefix("UP ") {
        return Reading::Degraded(format!("HAProxy's checks of {server} are failing ({going}){check}"));
    }
    if let Some(limit) = limits.down_queue.filter(|l| now.queue >= *l) {
        return Reading::Failed(format!("HAProxy queues {} requests for {server} (down limit {limit})", now.queue));
    }
    let ratio = previous.and_then(|p| {
        let sessions = now.sessions.checked_sub(p.sessions)?;
        let errors = now.errors.checked_sub(p.errors)?;
        (sessions >= limits.min_sessions && sessions > 0)
            .then(|| (errors, sessions, (errors as f64 / sessions as f64).min(1.0)))
    });
    if let Some((errors, sessions, r)) = ratio {
        let said = format!("{errors} of {sessions} sessions to {server} failed ({}%)", Number(100.0 * r));
        if let Some(l) = limits.down_error_ratio.filter(|l| r >= *l) {
            return Reading::Failed(format!("{said}, down limit {}%", Number(100.0 * l)));
        }
        if let Some(l) = limits.degraded_error_ratio.filter(|l| r >= *l) {
            return Reading::Degraded(format!("{said}, degraded limit {}%", Number(100.0 * l)));
        }
    }
    if let Some(limit) = limits.degraded_queue.filter(|l| now.queue >= *l) {
        return Reading::Degraded(format!(
            "HAProxy queues {} requests for {server} (degraded limit {limit})",
            now.queue
        ));
    }
    let traffic = match ratio {
        Some((errors, sessions, _)) => format!("{errors}/{sessions} sessions failed"),
        None => "too little traffic to judge errors".into(),
    };
    Reading::Ok(format!("HAProxy sees {server} {status}{check}, {traffic}, queue {}", now.queue))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,\n\
fe,FRONTEND,,,0,1,262,10,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,0,10,0,0,0,0,,0,1,10,,,0,0,0,0,,,\n\
app,primary,0,0,0,1,,120,0,0,,0,,2,1,0,0,UP,1,1,0,0,0,5,0,,1,3,1,,120,,2,0,,1,L7OK,200,1,0,117,0,0,0,0,,,,,0,0,,,,,0,\"HTTP status check returned code <3C>200<3E>, fine\",\n\
app,standby,0,0,0,1,,5,0,0,,0,,5,0,0,0,DOWN,1,1,0,3,1,2,2,,1,3,2,,5,,2,0,,1,L4CON,,0,0,0,0,0,0,0,,,,,0,0,,,,,2,Connection refused,\n\
app,dr,3,3,0,1,,0,0,0,,0,,,,0,0,UP 1/3,1,1,0,1,0,9,0,,1,3,3,,0,,2,0,,1,L4TOUT,,1001,0,0,0,0,0,0,,,,,0,0,,,,,-1,,\n\
app,BACKEND,0,0,0,1,26,125,0,0,0,0,,7,1,0,0,UP,2,2,0,,0,9,0,,1,3,0,,125,,1,0,,1,,,,0,117,0,0,0,0,,,,125,0,0,0,0,0,0,0,,\n";

    fn stat(status: &str, sessions: u64, errors: u64, queue: u64) -> ServerStat {
        ServerStat {
            status: status.into(),
            check_status: "L7OK".into(),
            last_chk: String::new(),
            queue,
            sessions,
            errors,
        }
    }

    #[test]
    fn show_stat_rows_are_found_by_backend_and_server_with_quoted_fields() {
        let p = server_stat(STAT, "app", "primary").unwrap();
        assert_eq!(p.status, "UP");
        assert_eq!(p.last_chk, "HTTP status check returned code <3C>200<3E>, fine", "a quoted field with a comma");
        assert_eq!((p.sessions, p.errors, p.queue), (120, 3, 0));
        let s = server_stat(STAT, "app", "standby").unwrap();
        assert_eq!(
            (s.status.as_str(), s.check_status.as_str(), s.last_chk.as_str()),
            ("DOWN", "L4CON", "Connection refused")
        );
        assert_eq!(server_stat(STAT, "app", "dr").unwrap().status, "UP 1/3");
        assert_eq!(server_stat(STAT, "app", "nope").unwrap_err(), "HAProxy has no server app/nope");
        assert!(server_stat("Unknown command", "app", "x").unwrap_err().starts_with("not `show stat` output"));
        assert!(server_stat("# pxname,svname\napp,x\n", "app", "x").unwrap_err().contains("no `status` column"));
    }

    #[test]
    fn haproxy_marking_a_server_down_or_failing_its_checks_is_down_or_degraded() {
        let l = PassiveLimits::default();
        let down = server_stat(STAT, "app", "standby").unwrap();
        assert_eq!(
            judge("standby", None, &down, &l),
            Reading::Failed("HAProxy marks standby DOWN (L4CON: Connection refused)".into())
        );
        let going = server_stat(STAT, "app", "dr").unwrap();
        assert_eq!(
            judge("dr", None, &going, &l),
            Reading::Degraded("HAProxy's checks of dr are failing (1/3) (L4TOUT)".into())
        );
        assert!(matches!(judge("p", None, &stat("MAINT", 0, 0, 0), &l), Reading::Ok(t) if t.contains("not judged")));
        assert!(matches!(judge("p", None, &stat("DRAIN", 0, 0, 0), &l), Reading::Ok(_)));
    }

    #[test]
    fn the_error_ratio_since_the_last_reading_is_judged_only_with_enough_traffic() {
        let l = PassiveLimits::default();
        let before = stat("UP", 1000, 10, 0);
        assert!(matches!(judge("p", Some(&before), &stat("UP", 1100, 11, 0), &l), Reading::Ok(_)));
        assert_eq!(
            judge("p", Some(&before), &stat("UP", 1100, 20, 0), &l),
            Reading::Degraded("10 of 100 sessions to p failed (10%), degraded limit 5%".into())
        );
        assert_eq!(
            judge("p", Some(&before), &stat("UP", 1100, 70, 0), &l),
            Reading::Failed("60 of 100 sessions to p failed (60%), down limit 50%".into())
        );
        // 10 sessions, all failed: below min_sessions, not judged.
        assert!(
            matches!(judge("p", Some(&before), &stat("UP", 1010, 20, 0), &l), Reading::Ok(t) if t.contains("too little traffic"))
        );
        // Counters went back (HAProxy restarted): not judged.
        assert!(matches!(judge("p", Some(&before), &stat("UP", 10, 0, 0), &l), Reading::Ok(_)));
        assert!(matches!(judge("p", None, &stat("UP", 1100, 70, 0), &l), Reading::Ok(_)), "no ratio from one reading");
    }

    #[test]
    fn a_long_queue_is_degraded_or_down_when_limits_are_set() {
        let l = PassiveLimits { degraded_queue: Some(10), down_queue: Some(100), ..PassiveLimits::default() };
        assert!(matches!(judge("p", None, &stat("UP", 0, 0, 9), &l), Reading::Ok(_)));
        assert!(matches!(judge("p", None, &stat("UP", 0, 0, 10), &l), Reading::Degraded(_)));
        assert!(matches!(judge("p", None, &stat("UP", 0, 0, 100), &l), Reading::Failed(_)));
        assert!(matches!(judge("p", None, &stat("UP", 0, 0, 1000), &PassiveLimits::default()), Reading::Ok(_)));
    }
}
