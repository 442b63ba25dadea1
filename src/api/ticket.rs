//! Stream tickets: short-lived, single-use credentials for `GET /api/v1/stream?ticket=…`.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, and a long-lived bearer
//! token in a URL ends up in proxy and server logs. So a client with a bearer token asks
//! `POST /api/v1/stream/tickets` for a ticket: 256 random bits, valid [`TICKET_TTL`], bound to
//! the caller's principal, and good for **one** stream: the auth layer ([`super::auth`])
//! consumes it when the stream is opened, and the stream runs as that principal. A used,
//! expired or unknown ticket is a 401; a client reconnecting asks for a new one.
//!
//! Tickets live only in memory, in the [`TicketStore`] of the [`super::AppState`] (no
//! `static`): at most [`MAX_OUTSTANDING`] at once, and [`MAX_PER_PRINCIPAL`] for one token
//! holder, so one caller cannot lock the others out; expired ones are purged whenever a
//! ticket is issued. Only the SHA-256 of a ticket is kept, never the ticket itself. Time is
//! an argument (`now`), so the tests drive expiry without a clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::auth::Principal;

/// How long a ticket can wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// At most this many unused, unexpired tickets exist at once.
pub const MAX_OUTSTANDING: usize = 1_000;
/// At most this many of them belong to one principal (token name).
pub const MAX_PER_PRINCIPAL: usize = 100;

/// Why a ticket was not issued or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// [`MAX_OUTSTANDING`] tickets are waiting to be used.
    #[error("{MAX_OUTSTANDING} stream tickets are outstanding; retry in {} s", .retry_after.as_secs().max(1))]
    Full {
        /// When the oldest outstanding ticket expires.
        retry_after: Duration,
    },
    /// This principal holds [`MAX_PER_PRINCIPAL`] unused tickets.
    #[error("`{name}` holds {MAX_PER_PRINCIPAL} unused stream tickets; use one, or retry in {} s", .retry_after.as_secs().max(1))]
    TooManyForPrincipal {
        /// The token's name.
        name: String,
        /// When that principal's oldest ticket expires.
        retry_after: Duration,
    },
    /// Never issued, or already used (a used ticket is forgotten).
    #[error("the stream ticket is unknown or was already used: get a new one with POST /api/v1/stream/tickets")]
    Unknown,
    /// Issued, but not used within [`TICKET_TTL`].
    #[error("the stream ticket expired (tickets are valid {} s): get a new one with POST /api/v1/stream/tickets", TICKET_TTL.as_secs())]
    Expired,
}

/// A ticket just issued: the secret to put in the stream's URL, and until when it is valid.
#[derive(Debug, Clone)]
pub struct Issued {
    /// 64 hex digits; shown to the caller once and kept nowhere.
    pub ticket: String,
    /// The monotonic instant it expires at.
    pub expires: Instant,
}

#[derive(Debug)]
struct Entry {
    principal: Principal,
    expires: Instant,
}

/// The outstanding tickets, keyed by the SHA-256 of each ticket. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct TicketStore {
    inner: Arc<Mutex<HashMap<[u8; 32], Entry>>>,
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

impl TicketStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock leaves the map consistent (every operation is one
        // insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Issues a ticket for `principal`, valid until `now + TICKET_TTL`; purges expired ones first.
    ///
    /// # Errors
    /// [`TicketError::Full`] or [`TicketError::TooManyForPrincipal`] when a bound is reached,
    /// with how long until a slot frees up.
    pub fn issue(&self, principal: Principal, now: Instant) -> Result<Issued, TicketError> {
        let mut map = self.entries();
        map.retain(|_, e| e.expires > now);
        let wait = |expires: Option<Instant>| expires.map_or(TICKET_TTL, |t| t.saturating_duration_since(now));
        if map.len() >= MAX_OUTSTANDING {
            return Err(TicketError::Full { retry_after: wait(map.values().map(|e| e.expires).min()) });
        }
        let mine: Vec<Instant> =
            map.values().filter(|e| e.principal.name == principal.name).map(|e| e.expires).collect();
        if mine.len() >= MAX_PER_PRINCIPAL {
            let retry_after = wait(mine.into_iter().min());
            return Err(TicketError::TooManyForPrincipal { name: principal.name, retry_after });
        }
        let ticket = hex::encode(rand::random::<[u8; 32]>());
        let expires = now + TICKET_TTL;
        map.insert(digest(&ticket), Entry { principal, expires });
        Ok(Issued { ticket, expires })
    }

    /// Consumes `ticket`: the principal it was issued to, once; never again.
    ///
    /// # Errors
    /// [`TicketError::Unknown`] (never issued, or used already) or [`TicketError::Expired`].
    pub fn redeem(&self, ticket: &str, now: Instant) -> Result<Principal, TicketError> {
        let entry = self.entries().remove(&digest(ticket)).ok_or(TicketError::Unknown)?;
        if entry.expires <= now {
            return Err(TicketError::Expired);
        }
        Ok(entry.principal)
    }

    /// How many tickets are stored (unused; expired ones until the next purge).
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether no ticket is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The body of a 201 from `POST /api/v1/stream/tickets`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketDto {
    /// 64 hex digits: open `GET /api/v1/stream?ticket=<this>` once, within 30 s.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub ticket: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A single-use ticket for the live stream, for clients that cannot send `Authorization` (browsers' EventSource).
#[utoipa::path(post, path = "/api/v1/stream/tickets", tag = "system",
    responses(
        (status = 201, description = "a ticket for one `GET /api/v1/stream?ticket=…`, valid 30 s, bound to the caller", body = TicketDto),
        (status = 401, description = "no valid bearer token", body = super::dto::ErrorDto),
        (status = 403, description = "mutations are disabled: no `[auth]` section is configured (reads are open, so the stream needs no ticket)", body = super::dto::ErrorDto),
        (status = 429, description = "this token holds 100 unused tickets, or too many requests; `Retry-After` says when to retry", body = super::dto::ErrorDto,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "1000 tickets are outstanding; retry shortly", body = super::dto::ErrorDto)),
    security(("bearer" = [])))]
pub async fn create(State(s): State<AppState>, principal: Option<Extension<Principal>>) -> Response {
    let Some(Extension(principal)) = principal else {
        // The auth layer lets no request through here without a principal; say so rather than panic.
        return ApiError::Unauthorized("a bearer token is required: send Authorization: Bearer <token>".into())
            .into_response();
    };
    match s.tickets.issue(principal, Instant::now()) {
        Ok(issued) => {
            let left = issued.expires.saturating_duration_since(Instant::now());
            let expires_at = Utc::now() + chrono::Duration::from_std(left).unwrap_or_default();
            let body = TicketDto { ticket: issued.ticket, expires_at };
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e @ TicketError::TooManyForPrincipal { retry_after, .. }) => {
            ApiError::TooManyRequests { message: e.to_string(), retry_after }.into_response()
        }
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn who(name: &str, role: Role) -> Principal {
        Principal { name: name.into(), role }
    }

    #[test]
    fn a_ticket_opens_one_stream_and_is_refused_the_second_time() {
        let store = TicketStore::new();
        let now = Instant::now();
        let t = store.issue(who("alice", Role::Viewer), now).unwrap();
        assert_eq!(store.redeem(&t.ticket, now), Ok(who("alice", Role::Viewer)));
        assert_eq!(store.redeem(&t.ticket, now), Err(TicketError::Unknown));
        assert!(store.is_empty());
    }

    #[test]
    fn a_ticket_keeps_the_name_and_role_it_was_issued_to() {
        let store = TicketStore::new();
        let now = Instant::now();
        let a = store.issue(who("ops", Role::Operator), now).unwrap();
        let b = store.issue(who("wall", Role::Viewer), now).unwrap();
        assert_eq!(store.redeem(&b.ticket, now).unwrap(), who("wall", Role::Viewer));
        assert_eq!(store.redeem(&a.ticket, now).unwrap(), who("ops", Role::Operator));
    }

    #[test]
    fn a_ticket_is_valid_until_thirty_seconds_after_it_was_issued_and_not_after() {
        let store = TicketStore::new();
        let now = Instant::now();
        let early = store.issue(who("alice", Role::Viewer), now).unwrap();
        let late = store.issue(who("alice", Role::Viewer), now).unwrap();
        assert_eq!(early.expires, now + TICKET_TTL);
        let just_before = now + TICKET_TTL - Duration::from_millis(1);
        assert!(store.redeem(&early.ticket, just_before).is_ok());
        assert_eq!(store.redeem(&late.ticket, now + TICKET_TTL), Err(TicketError::Expired));
        // An expired ticket is gone too: asking again says unknown, not expired.
        assert_eq!(store.redeem(&late.ticket, now), Err(TicketError::Unknown));
    }

    #[test]
    fn unknown_and_malformed_tickets_are_refused() {
        let store = TicketStore::new();
        let now = Instant::now();
        store.issue(who("alice", Role::Viewer), now).unwrap();
        for t in ["", "not-hex", &"0".repeat(64), "../../etc/passwd"] {
            assert_eq!(store.redeem(t, now), Err(TicketError::Unknown), "{t:?}");
        }
        assert_eq!(store.len(), 1, "a failed redemption consumes nothing");
    }

    #[test]
    fn tickets_are_64_hex_digits_and_never_repeat() {
        let store = TicketStore::new();
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for i in 0..50 {
            let t = store.issue(who(&format!("u{i}"), Role::Viewer), now).unwrap().ticket;
            assert_eq!(t.len(), 64);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{t}");
            assert!(seen.insert(t));
        }
    }

    #[test]
    fn one_principal_holds_at_most_its_share_of_unused_tickets_and_others_still_get_theirs() {
        let store = TicketStore::new();
        let now = Instant::now();
        let first = store.issue(who("wall", Role::Viewer), now).unwrap();
        for i in 1..MAX_PER_PRINCIPAL {
            store.issue(who("wall", Role::Viewer), now + Duration::from_millis(i as u64)).unwrap();
        }
        let later = now + Duration::from_secs(5);
        match store.issue(who("wall", Role::Viewer), later) {
            Err(TicketError::TooManyForPrincipal { name, retry_after }) => {
                assert_eq!(name, "wall");
                assert_eq!(retry_after, TICKET_TTL - Duration::from_secs(5), "until its oldest ticket expires");
            }
            other => panic!("expected the per-principal bound, got {other:?}"),
        }
        assert!(store.issue(who("alice", Role::Viewer), later).is_ok(), "another principal is not locked out");
        // Using a ticket frees its slot.
        store.redeem(&first.ticket, later).unwrap();
        assert!(store.issue(who("wall", Role::Viewer), later).is_ok());
    }

    #[test]
    fn at_most_a_thousand_tickets_are_outstanding_and_expired_ones_free_their_slots() {
        let store = TicketStore::new();
        let now = Instant::now();
        for i in 0..MAX_OUTSTANDING {
            store.issue(who(&format!("u{}", i % 20), Role::Viewer), now).unwrap();
        }
        assert_eq!(store.len(), MAX_OUTSTANDING);
        match store.issue(who("late", Role::Viewer), now + Duration::from_secs(10)) {
            Err(e @ TicketError::Full { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(20));
                assert!(e.to_string().contains("retry in 20 s"), "{e}");
            }
            other => panic!("expected the global bound, got {other:?}"),
        }
        // Once they have expired, issuing purges them all.
        let t = store.issue(who("late", Role::Viewer), now + TICKET_TTL).unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(store.redeem(&t.ticket, now + TICKET_TTL).unwrap().name, "late");
    }

    #[test]
    fn the_openapi_document_gives_the_ticket_route_every_status_and_the_stream_no_token_parameter() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(super::super::openapi::ApiDoc::openapi()).unwrap();
        let post = &doc["paths"]["/api/v1/stream/tickets"]["post"];
        let codes: Vec<&str> = post["responses"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(codes, ["201", "401", "403", "429", "500", "503"]);
        assert!(post["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(doc["components"]["schemas"]["TicketDto"]["properties"]["expires_at"].is_object());
        let params = doc["paths"]["/api/v1/stream"]["get"]["parameters"].as_array().unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["ticket"], "no access_token: a long-lived token never goes in a URL");
        let who = &doc["components"]["schemas"]["WhoamiDto"]["properties"];
        assert!(who["role"].is_object() && who["public_reads"].is_object(), "{who}");
    }

    #[test]
    fn the_store_keeps_no_ticket_in_clear() {
        let store = TicketStore::new();
        let t = store.issue(who("alice", Role::Viewer), Instant::now()).unwrap();
        let dump = format!("{:?}", store);
        assert!(!dump.contains(&t.ticket), "{dump}");
        assert!(!dump.contains(&t.ticket[..16]), "{dump}");
    }
}
