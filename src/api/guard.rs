//! What protects the API from its clients: security headers on every response, rate limits
//! per client IP, the bound on concurrent streams, and the bounded audit of refused requests.
//!
//! | what | limit | answer past it |
//! | --- | --- | --- |
//! | mutating requests (POST, PUT, PATCH, DELETE) | `limits.mutations_per_minute` per client IP (tower_governor, GCRA) | 429 + `Retry-After` |
//! | requests with an invalid bearer token | `limits.auth_failures_per_minute` per client IP (governor) | every request of that IP presenting a token gets 429 + `Retry-After` *before its token is looked at*, until a failure may be counted again |
//! | `/api/v1/stream` clients | `limits.max_streams` at once (a semaphore; a client that leaves frees its place) | 429 + `Retry-After` |
//! | audit rows for refused requests (401, 403, 429 of the failure limit) | one per client IP and reason per [`REFUSAL_AUDIT_EVERY`]; the next row counts those left out | — |
//!
//! The client IP is the TCP peer (`ConnectInfo`); `X-Forwarded-For` is not trusted, since any
//! client could write it. Behind a reverse proxy every client shares the proxy's budget.
//! A request without `ConnectInfo` (a router called in-process) counts as `0.0.0.0`.
//! Requests without a token are never counted as failed authentication: a signed-out
//! dashboard polling gets its 401s without locking the browser's address out.
//!
//! Every refusal is counted in `/metrics` (`fo_http_auth_refused_total{reason}`,
//! `fo_http_rate_limited_total{limit}`); the counters are exact, the audit is sampled.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use super::ApiError;
use crate::config::LimitsConfig;
use crate::metrics::Metrics;

/// At most one audit row per client IP and refusal reason in this window.
pub const REFUSAL_AUDIT_EVERY: Duration = Duration::from_secs(10);

/// How long a client refused a stream is told to wait.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Bound of the per-client bookkeeping (throttled refusals, blocked IPs): past it, entries that
/// no longer matter are dropped first, then the oldest.
const MAX_TRACKED_CLIENTS: usize = 4096;

/// The dashboard needs nothing from elsewhere and nothing inline: no inline script, no
/// `<style>` element, no style attribute (it sets styles through the CSSOM,
/// `src/api/assets/dom.js`), no `data:` image (its favicon is served from this origin).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Why a request was refused before its handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No bearer token where one is needed (401).
    Missing,
    /// A bearer token that is not valid (401).
    Invalid,
    /// A valid token whose role is too low, or mutations without `[auth]` (403).
    Forbidden,
    /// Too many invalid tokens from this client IP (429, token not looked at).
    Limited,
}

impl Refusal {
    /// The word in metrics labels and audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Invalid => "invalid",
            Refusal::Forbidden => "forbidden",
            Refusal::Limited => "limited",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which limit answered 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `limits.mutations_per_minute`.
    Mutations,
    /// `limits.auth_failures_per_minute`.
    AuthFailures,
    /// `limits.max_streams`.
    Streams,
}

impl Limit {
    /// The word in the `limit` label of `fo_http_rate_limited_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Mutations => "mutations",
            Limit::AuthFailures => "auth_failures",
            Limit::Streams => "streams",
        }
    }
}

/// The client's IP: the TCP peer, or `0.0.0.0` when the router runs without a socket.
pub fn client_ip<B>(req: &Request<B>) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

/// tower_governor's key: [`client_ip`] (never fails, unlike its `PeerIpKeyExtractor`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp;

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(client_ip(req))
    }
}

/// Decides which refused requests get an audit row: one per key per window, with the count of
/// those left out since the previous row. PURE: time is a parameter.
#[derive(Debug)]
pub struct RefusalThrottle {
    every: Duration,
    slots: HashMap<(IpAddr, Refusal), Slot>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the last row for this key was written.
    written: Instant,
    /// Refusals of this key left out since then.
    suppressed: u64,
}

impl RefusalThrottle {
    /// A throttle writing at most one row per key per `every`.
    pub fn new(every: Duration) -> Self {
        Self { every, slots: HashMap::new() }
    }

    /// `Some(n)` when this refusal gets an audit row (`n` refusals of the same client and reason
    /// were left out since the previous one), `None` when it is only counted.
    pub fn admit(&mut self, ip: IpAddr, reason: Refusal, now: Instant) -> Option<u64> {
        let key = (ip, reason);
        if let Some(slot) = self.slots.get_mut(&key) {
            if now.saturating_duration_since(slot.written) < self.every {
                slot.suppressed += 1;
                return None;
            }
            let left_out = slot.suppressed;
            *slot = Slot { written: now, suppressed: 0 };
            return Some(left_out);
        }
        if self.slots.len() >= MAX_TRACKED_CLIENTS {
            self.forget(now);
        }
        self.slots.insert(key, Slot { written: now, suppressed: 0 });
        Some(0)
    }

    /// Drops the keys whose window is over with nothing left out (their next refusal is
    /// written anyway); past the bound, the oldest go too (their left-out count with them).
    fn forget(&mut self, now: Instant) {
        let every = self.every;
        self.slots.retain(|_, s| s.suppressed > 0 || now.saturating_duration_since(s.written) < every);
        if self.slots.len() >= MAX_TRACKED_CLIENTS {
            let mut by_age: Vec<Instant> = self.slots.values().map(|s| s.written).collect();
            by_age.sort_unstable();
            let cut = by_age[by_age.len() / 2];
            self.slots.retain(|_, s| s.written > cut);
        }
    }

    /// Number of keys tracked (for tests and the bound).
    pub fn tracked(&self) -> usize {
        self.slots.len()
    }
}

/// A place among the live streams; dropping it (the client left) frees the place.
#[derive(Debug)]
pub struct StreamPermit {
    _permit: OwnedSemaphorePermit,
    open: Arc<Semaphore>,
    max: usize,
    metrics: Arc<Metrics>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        // The permit is released after this body: one more place is free then.
        let open = self.max.saturating_sub(self.open.available_permits() + 1);
        self.metrics.set_http_streams(open);
    }
}

/// The API's limits and what they remember about clients. One per server, shared by every
/// request through [`super::AppState`].
pub struct Guard {
    limits: LimitsConfig,
    metrics: Arc<Metrics>,
    mutations: Arc<GovernorConfig<ClientIp, NoOpMiddleware>>,
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
    /// IPs over the failure limit, with when their next failure may be counted again.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    refusals: Mutex<RefusalThrottle>,
    streams: Arc<Semaphore>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// `n` per minute, all of it available at once.
fn per_minute(n: std::num::NonZeroU32) -> Quota {
    Quota::per_minute(n).allow_burst(n)
}

impl Guard {
    /// The limits of `limits`, counting refusals into `metrics`.
    pub fn new(limits: LimitsConfig, metrics: Arc<Metrics>) -> Self {
        let n = limits.mutations_per_minute;
        let mutations = GovernorConfigBuilder::default()
            .key_extractor(ClientIp)
            // One cell every 60 s / n, n at once.
            .period(Duration::from_secs(60) / n.get())
            .burst_size(n.get())
            .methods(vec![Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .finish();
        // Startup invariant: `finish` refuses only a zero period or burst, which the validated
        // NonZeroU32 (at most 1 000 000 a minute, so a period of at least 60 µs) rules out.
        let mutations = Arc::new(mutations.expect("positive rate limits (config/validate/limits.rs)"));
        Self {
            limits,
            metrics,
            mutations,
            auth_failures: RateLimiter::keyed(per_minute(limits.auth_failures_per_minute)),
            blocked: Mutex::new(HashMap::new()),
            refusals: Mutex::new(RefusalThrottle::new(REFUSAL_AUDIT_EVERY)),
            streams: Arc::new(Semaphore::new(limits.max_streams)),
        }
    }

    /// The layer limiting mutating requests per client IP (429 + `Retry-After`, JSON body).
    pub fn mutation_layer(&self) -> GovernorLayer<ClientIp, NoOpMiddleware, axum::body::Body> {
        let metrics = self.metrics.clone();
        let per_minute = self.limits.mutations_per_minute;
        GovernorLayer::new(self.mutations.clone()).error_handler(move |e| {
            let wait = match e {
                GovernorError::TooManyRequests { wait_time, .. } => Duration::from_secs(wait_time),
                // ClientIp never fails; answer as a limit rather than a 500 if that ever changes.
                _ => Duration::from_secs(1),
            };
            metrics.http_rate_limited(Limit::Mutations.as_str());
            let message = format!(
                "too many changes from this address: at most {per_minute} mutating requests a minute \
                 (limits.mutations_per_minute); retry after the Retry-After seconds"
            );
            axum::response::IntoResponse::into_response(ApiError::TooManyRequests { message, retry_after: wait })
        })
    }

    /// Refuses (429) a client that presents a token while over the failed-authentication limit,
    /// before its token is looked at.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] with the time until the next failure may be counted.
    pub fn check_not_blocked(&self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let mut blocked = self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match blocked.get(&ip) {
            Some(&until) if until > now => Err(self.auth_limited(until - now)),
            Some(_) => {
                blocked.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a request with an invalid token; past the limit the client is blocked and this
    /// request already gets the 429 instead of the 401.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] when this failure is over the limit.
    pub fn count_auth_failure(&self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let Err(not_until) = self.auth_failures.check_key(&ip) else { return Ok(()) };
        let wait = not_until.wait_time_from(self.auth_failures.clock().now());
        let mut blocked = self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocked.len() >= MAX_TRACKED_CLIENTS {
            blocked.retain(|_, until| *until > now);
        }
        // Still full of live blocks: an address flood; the failure limiter keeps refusing them anyway.
        if blocked.len() < MAX_TRACKED_CLIENTS {
            blocked.insert(ip, now + wait);
        }
        Err(self.auth_limited(wait))
    }

    fn auth_limited(&self, wait: Duration) -> ApiError {
        self.metrics.http_rate_limited(Limit::AuthFailures.as_str());
        ApiError::TooManyRequests {
            message: format!(
                "too many invalid bearer tokens from this address (at most {} a minute, \
                 limits.auth_failures_per_minute): no token is checked until Retry-After has passed",
                self.limits.auth_failures_per_minute
            ),
            retry_after: wait,
        }
    }

    /// Counts a refusal in `/metrics`; `Some(n)` when it also gets an audit row (`n` refusals of
    /// this client and reason were left out since the last one).
    pub fn refused(&self, ip: IpAddr, reason: Refusal, now: Instant) -> Option<u64> {
        self.metrics.http_auth_refused(reason.as_str());
        self.refusals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).admit(ip, reason, now)
    }

    /// A place for one more stream client.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] when `limits.max_streams` clients are already connected.
    pub fn stream_permit(&self) -> Result<StreamPermit, ApiError> {
        match self.streams.clone().try_acquire_owned() {
            Ok(permit) => {
                let max = self.limits.max_streams;
                self.metrics.set_http_streams(max.saturating_sub(self.streams.available_permits()));
                Ok(StreamPermit { _permit: permit, open: self.streams.clone(), max, metrics: self.metrics.clone() })
            }
            Err(_) => {
                self.metrics.http_rate_limited(Limit::Streams.as_str());
                Err(ApiError::TooManyRequests {
                    message: format!(
                        "{} live streams are open, the most this orchestrator serves (limits.max_streams): \
                         close another dashboard or retry after Retry-After seconds",
                        self.limits.max_streams
                    ),
                    retry_after: STREAM_RETRY_AFTER,
                })
            }
        }
    }

    /// Forgets clients that no longer matter (rate-limiter state that has fully replenished,
    /// blocks that are over); called periodically so memory follows the live clients.
    pub fn forget_idle(&self, now: Instant) {
        self.mutations.limiter().retain_recent();
        self.auth_failures.retain_recent();
        self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, until| *until > now);
        let mut refusals = self.refusals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        refusals.forget(now);
    }
}

/// `router` with the security headers on every response (API, assets, errors, the fallback
/// 404, the 429s and timeouts of the layers inside): a handler's own value wins.
/// `Strict-Transport-Security` only when the server speaks TLS (browsers ignore it over http).
pub fn with_security_headers(router: Router, tls: bool) -> Router {
    let fixed = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(fixed(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .layer(fixed(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(fixed(header::REFERRER_POLICY, "no-referrer"))
        .layer(fixed(header::X_FRAME_OPTIONS, "DENY"))
        .layer(SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, move |_: &Response<_>| {
            tls.then(|| HeaderValue::from_static("max-age=31536000"))
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn one_refusal_row_per_client_and_reason_per_window_counting_the_rest() {
        let t0 = Instant::now();
        let mut t = RefusalThrottle::new(Duration::from_secs(10));
        assert_eq!(t.admit(ip(1), Refusal::Invalid, t0), Some(0));
        for i in 1..=99 {
            assert_eq!(t.admit(ip(1), Refusal::Invalid, t0 + Duration::from_millis(i * 50)), None);
        }
        // Another reason or another client is its own key.
        assert_eq!(t.admit(ip(1), Refusal::Missing, t0 + Duration::from_secs(1)), Some(0));
        assert_eq!(t.admit(ip(2), Refusal::Invalid, t0 + Duration::from_secs(1)), Some(0));
        // The window is over: a row, with the 99 left out.
        assert_eq!(t.admit(ip(1), Refusal::Invalid, t0 + Duration::from_secs(10)), Some(99));
        assert_eq!(t.admit(ip(1), Refusal::Invalid, t0 + Duration::from_secs(11)), None);
        assert_eq!(t.admit(ip(1), Refusal::Invalid, t0 + Duration::from_secs(25)), Some(1));
    }

    #[test]
    fn the_refusal_throttle_stays_bounded_under_an_address_flood() {
        let t0 = Instant::now();
        let mut t = RefusalThrottle::new(Duration::from_secs(10));
        for i in 0..(3 * MAX_TRACKED_CLIENTS as u32) {
            let a = IpAddr::V6(std::net::Ipv6Addr::from(u128::from(i) + 1));
            assert_eq!(t.admit(a, Refusal::Missing, t0 + Duration::from_micros(u64::from(i))), Some(0));
            assert!(t.tracked() <= MAX_TRACKED_CLIENTS, "{} tracked", t.tracked());
        }
    }

    #[test]
    fn past_the_failure_limit_a_client_is_blocked_and_others_are_not() {
        let limits = LimitsConfig {
            auth_failures_per_minute: std::num::NonZeroU32::MIN.saturating_add(2),
            ..Default::default()
        };
        let g = Guard::new(limits, Arc::new(Metrics::new()));
        let now = Instant::now();
        for _ in 0..3 {
            assert!(g.check_not_blocked(ip(1), now).is_ok());
            assert!(g.count_auth_failure(ip(1), now).is_ok());
        }
        let e = g.count_auth_failure(ip(1), now).unwrap_err();
        assert!(matches!(e, ApiError::TooManyRequests { retry_after, .. } if retry_after > Duration::ZERO), "{e:?}");
        assert!(g.check_not_blocked(ip(1), now).is_err());
        assert!(g.check_not_blocked(ip(2), now).is_ok());
        assert!(g.count_auth_failure(ip(2), now).is_ok());
        // Once the block is over the client may try again.
        assert!(g.check_not_blocked(ip(1), now + Duration::from_secs(60)).is_ok());
        let text = g.metrics.encode();
        assert!(text.contains("fo_http_rate_limited_total{limit=\"auth_failures\"} 2"), "{text}");
    }

    #[test]
    fn stream_places_are_bounded_and_freed_when_a_client_leaves() {
        let limits = LimitsConfig { max_streams: 2, ..Default::default() };
        let g = Guard::new(limits, Arc::new(Metrics::new()));
        let a = g.stream_permit().unwrap();
        let _b = g.stream_permit().unwrap();
        assert!(g.metrics.encode().contains("fo_http_streams 2"));
        assert!(matches!(g.stream_permit(), Err(ApiError::TooManyRequests { .. })));
        drop(a);
        assert!(g.metrics.encode().contains("fo_http_streams 1"), "{}", g.metrics.encode());
        assert!(g.stream_permit().is_ok());
    }
}
