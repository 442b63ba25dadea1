//! Propagation check for DNS providers: after a write, ask every authoritative
//! server of the zone (and any configured resolvers) until each serves the new
//! answer, and record how long that took.
//!
//! A provider says what "serving the new answer" means through a [`Target`]:
//! either the exact address set (RFC 2136: every served region is in the
//! rrset), or answers drawn only from the allowed addresses (PowerDNS LUA
//! records answer one weighted-random address per query, so several queries
//! are sampled). The check is bounded; servers that never converge are named
//! in the report and the engine raises an alarm.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use serde::Serialize;
use tokio::time::Instant;

/// Queries sampled per server and round when answers are weighted-random.
const SAMPLES: usize = 6;
/// Pause between two rounds of queries.
const ROUND_PAUSE: Duration = Duration::from_millis(50);
/// Timeout of one DNS query.
const QUERY_TIMEOUT: Duration = Duration::from_millis(800);

/// What the servers must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The A + AAAA answer is exactly this set.
    Exactly(BTreeSet<IpAddr>),
    /// Every answer is one of these addresses (weighted-random answers).
    Within(BTreeSet<IpAddr>),
}

/// A name to check on a set of servers.
#[derive(Debug, Clone)]
pub struct Target {
    /// Fully qualified name, e.g. `app.example.test.`
    pub name: String,
    /// Authoritative servers of the zone.
    pub servers: Vec<SocketAddr>,
    /// What they must answer.
    pub expect: Expect,
}

/// One server's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerPropagation {
    /// The server asked.
    pub server: SocketAddr,
    /// Whether it served the new answer within the bound.
    pub converged: bool,
    /// Time from the start of the check until it did.
    #[serde(with = "crate::serde_util::duration")]
    pub after: Duration,
    /// The last answer seen (addresses), for the report.
    pub last_answer: Vec<IpAddr>,
}

/// The result of a propagation check, recorded in the plan's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropagationReport {
    /// Whether every server converged within the bound.
    pub converged: bool,
    /// Time until the last server converged (or the bound).
    #[serde(with = "crate::serde_util::duration")]
    pub elapsed: Duration,
    /// Per server.
    pub servers: Vec<ServerPropagation>,
}

/// Whether `answers` (all answers seen in one round) satisfy `expect`.
pub fn satisfied(expect: &Expect, answers: &[BTreeSet<IpAddr>]) -> bool {
    if answers.is_empty() {
        return false;
    }
    match expect {
        Expect::Exactly(want) => answers.iter().all(|a| a == want),
        Expect::Within(allowed) => answers.iter().all(|a| !a.is_empty() && a.is_subset(allowed)),
    }
}

/// Asks every server in `target` (plus `resolvers`) until each satisfies the expectation, at most `bound`.
pub async fn check(target: &Target, resolvers: &[SocketAddr], bound: Duration) -> PropagationReport {
    let started = Instant::now();
    let servers: Vec<SocketAddr> = target.servers.iter().chain(resolvers).copied().collect();
    let checks = servers.iter().map(|s| check_one(*s, &target.name, &target.expect, started, bound));
    let servers = futures::future::join_all(checks).await;
    let converged = servers.iter().all(|s| s.converged);
    let elapsed = servers.iter().map(|s| s.after).max().unwrap_or_default();
    PropagationReport { converged, elapsed, servers }
}

async fn check_one(
    server: SocketAddr,
    name: &str,
    expect: &Expect,
    started: Instant,
    bound: Duration,
) -> ServerPropagation {
    let samples = if matches!(expect, Expect::Within(_)) { SAMPLES } else { 1 };
    let mut last = BTreeSet::new();
    loop {
        let mut round = Vec::new();
        for _ in 0..samples {
            match query_addresses(server, name, QUERY_TIMEOUT).await {
                Ok(a) => {
                    last = a.clone();
                    round.push(a);
                }
                Err(_) => {
                    round.clear();
                    break;
                }
            }
        }
        if satisfied(expect, &round) {
            return ServerPropagation {
                server,
                converged: true,
                after: started.elapsed(),
                last_answer: last.into_iter().collect(),
            };
        }
        if started.elapsed() >= bound {
            return ServerPropagation {
                server,
                converged: false,
                after: bound,
                last_answer: last.into_iter().collect(),
            };
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// Errors of a DNS query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The name is not a valid DNS name.
    #[error("`{name}` is not a DNS name: {source}")]
    Name {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: hickory_net::proto::ProtoError,
    },
    /// The query failed or timed out.
    #[error("query to {server} failed: {source}")]
    Query {
        /// The server.
        server: SocketAddr,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer within the timeout.
    #[error("query to {server} timed out")]
    Timeout {
        /// The server.
        server: SocketAddr,
    },
}

/// The A and AAAA addresses `server` answers for `name` (UDP, no recursion).
///
/// # Errors
/// [`QueryError`] when the name is invalid or the server does not answer.
pub async fn query_addresses(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<BTreeSet<IpAddr>, QueryError> {
    let fqdn = Name::from_ascii(name).map_err(|source| QueryError::Name { name: name.to_string(), source })?;
    let work = async {
        let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new()).with_timeout(Some(timeout)).build();
        let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
        // The exchange's background future runs beside the queries, not as a spawned task.
        tokio::select! {
            r = query_both(client, server, fqdn) => r,
            _ = bg => Err(QueryError::Timeout { server }),
        }
    };
    tokio::time::timeout(timeout * 3, work).await.map_err(|_| QueryError::Timeout { server })?
}

async fn query_both(
    mut client: Client<TokioRuntimeProvider>,
    server: SocketAddr,
    fqdn: Name,
) -> Result<BTreeSet<IpAddr>, QueryError> {
    let mut out = BTreeSet::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        let resp = client
            .query(fqdn.clone(), DNSClass::IN, rtype)
            .await
            .map_err(|e| QueryError::Query { server, source: Box::new(e) })?;
        for r in &resp.answers {
            match &r.data {
                RData::A(a) => {
                    out.insert(IpAddr::V4(a.0));
                }
                RData::AAAA(a) => {
                    out.insert(IpAddr::V6(a.0));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(a: &[&str]) -> BTreeSet<IpAddr> {
        a.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn exact_expectation_needs_the_whole_set_on_every_answer() {
        let e = Expect::Exactly(set(&["192.0.2.1", "192.0.2.2"]));
        assert!(satisfied(&e, &[set(&["192.0.2.1", "192.0.2.2"])]));
        assert!(!satisfied(&e, &[set(&["192.0.2.1"])]));
        assert!(!satisfied(&e, &[]));
    }

    #[test]
    fn within_expectation_refuses_any_answer_outside_the_allowed_set() {
        let e = Expect::Within(set(&["192.0.2.2"]));
        assert!(satisfied(&e, &[set(&["192.0.2.2"]), set(&["192.0.2.2"])]));
        assert!(!satisfied(&e, &[set(&["192.0.2.2"]), set(&["192.0.2.1"])]));
        assert!(!satisfied(&e, &[BTreeSet::new()]));
    }
}
