//! The authentication and audit middleware.
//!
//! Every request is matched against [`crate::auth::access`]: public routes pass,
//! others need a credential whose role is high enough — 401 without a valid one,
//! 403 with too low a role. The credential is a bearer token (`Authorization:
//! Bearer …`), or, for the SSE stream only, a single-use `?ticket=` from
//! [`super::ticket`] (browsers' EventSource cannot set headers, and a long-lived
//! token never goes in a URL: there is no `?access_token=`). A ticket is consumed
//! here, and the stream runs as the principal it was issued to. Without an
//! `[auth]` section reads are open and mutations get a 403 saying how to
//! configure tokens.
//!
//! Every mutating request (anything but GET/HEAD) that passes is written to the audit log
//! after it finishes (except a 405, and stream tickets: they only open a read) — who, what, on what, the outcome and the request id. Handlers add
//! detail with an [`AuditNote`] response extension. Every request refused here (reads too)
//! is counted in `/metrics` and audited at a bounded rate: one row per client IP and reason
//! per [`guard::REFUSAL_AUDIT_EVERY`](super::guard::REFUSAL_AUDIT_EVERY), with the number
//! left out since the previous one ([`super::guard`]). A client over the failed-authentication
//! limit gets 429 for any token it presents, before the token is looked at.
//! Tokens are never logged or stored.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::guard::{Refusal, client_ip};
use super::{ApiError, AppState, REQUEST_ID};
use crate::auth::{Access, Principal, Role};
use crate::store::records::{AuditRecord, Write};

/// The one mutating route whose requests are not audited: `POST /api/v1/stream/tickets`.
const NOT_AUDITED: &str = "/api/v1/stream/tickets";

/// What a handler tells the audit log about a mutation.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    /// The action (`drill.start`, `failover` …).
    pub action: String,
    /// What it was about (region, drill id).
    pub target: Option<String>,
    /// Extra detail (ids of the records created, the reason).
    pub details: serde_json::Value,
    /// Whether the response was replayed from an Idempotency-Key.
    pub replayed: bool,
}

/// The request id set by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// How a request says who it is.
enum Credential {
    /// Nothing (or an `Authorization` header that is not `Bearer …`).
    Missing,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `GET /api/v1/stream?ticket=<ticket>` without an `Authorization` header.
    Ticket(String),
}

/// The request's credential: its bearer token, else (on the stream only) its ticket.
fn credential(req: &Request, path: &str) -> Credential {
    if let Some(v) = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map_or(Credential::Missing, |t| Credential::Bearer(t.trim().to_string()));
    }
    if path == "/api/v1/stream" {
        let ticket = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ticket=")));
        if let Some(t) = ticket {
            return Credential::Ticket(t.to_string());
        }
    }
    Credential::Missing
}

/// The principal a credential stands for: `Ok(None)` for none or an unknown bearer token (the
/// caller decides whether that is enough), an error for a ticket that is not valid (consuming
/// a ticket is a deliberate act: a bad one is a 401 even where no credential is needed).
fn principal(s: &AppState, tokens: &crate::auth::TokenSet, cred: &Credential) -> Result<Option<Principal>, ApiError> {
    match cred {
        Credential::Missing => Ok(None),
        Credential::Bearer(t) => Ok(tokens.authenticate(t)),
        Credential::Ticket(t) => {
            s.tickets.redeem(t, std::time::Instant::now()).map(Some).map_err(|e| ApiError::Unauthorized(e.to_string()))
        }
    }
}

/// The caller, or why not (with the caller's name when the token was valid but its role too low).
fn check(s: &AppState, req: &Request, path: &str) -> Result<Option<Principal>, (ApiError, Option<String>)> {
    let method = req.method().as_str();
    let Some(auth) = &s.config.auth else {
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        return if read {
            Ok(Some(Principal { name: "anonymous".into(), role: Role::Viewer }))
        } else {
            Err((
                ApiError::Forbidden(
                    "mutations are disabled because no [auth] section is configured: add [auth] tokens_file = \"…\" \
                     (lines `name role sha256-hex-of-token`, role operator or admin) and send Authorization: Bearer <token>"
                        .into(),
                ),
                None,
            ))
        };
    };
    let access =
        crate::auth::access(method, path, auth.healthz_public, s.config.orchestrator.metrics_public, auth.public_reads);
    let cred = credential(req, path);
    let found = principal(s, &auth.tokens, &cred).map_err(|e| (e, None))?;
    let Access::Needs(needed) = access else {
        return Ok(found);
    };
    let Some(p) = found else {
        let e = match cred {
            Credential::Missing => ApiError::Unauthorized(if path == "/api/v1/stream" {
                "a credential is required: send Authorization: Bearer <token>, or open the stream with \
                 ?ticket= from POST /api/v1/stream/tickets"
                    .into()
            } else {
                "a bearer token is required: send Authorization: Bearer <token>".into()
            }),
            _ => ApiError::Unauthorized("the bearer token is not valid".into()),
        };
        return Err((e, None));
    };
    if !p.role.allows(needed) {
        let e = ApiError::Forbidden(format!("`{}` has role {}, this needs {needed}", p.name, p.role));
        return Err((e, Some(p.name)));
    }
    Ok(Some(p))
}

/// Authenticates, authorises and (for mutations) audits one request.
pub async fn layer(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    let method = req.method().to_string();
    let rid = request_id(req.headers());
    let at = Utc::now();
    let ip = client_ip(&req);
    let now = std::time::Instant::now();
    // A bearer token counts toward the failed-authentication limit; a stream ticket (256 random
    // bits, single use) does not.
    let presented = matches!(credential(&req, &path), Credential::Bearer(_));
    let refused = if presented { s.guard.check_not_blocked(ip, now).err().map(|e| (e, None)) } else { None };
    match refused.map_or_else(|| check(&s, &req, &path), Err) {
        Err((e, who)) => {
            let (reason, e) = match e {
                e @ ApiError::TooManyRequests { .. } => (Refusal::Limited, e),
                e @ ApiError::Forbidden(_) => (Refusal::Forbidden, e),
                // A bad token counts toward the failure limit; the one over it is answered 429.
                e if presented => match s.guard.count_auth_failure(ip, now) {
                    Ok(()) => (Refusal::Invalid, e),
                    Err(limited) => (Refusal::Limited, limited),
                },
                e => (Refusal::Missing, e),
            };
            if let Some(left_out) = s.guard.refused(ip, reason, now) {
                let note = AuditNote {
                    action: format!("{method} {path}"),
                    details: json!({ "client_ip": ip.to_string(), "refused": reason.as_str(), "suppressed": left_out }),
                    ..Default::default()
                };
                let who = who.as_deref().unwrap_or("anonymous");
                audit(&s, who, &note, &format!("{} {e}", e.status().as_u16()), rid, at);
            }
            e.into_response()
        }
        Ok(principal) => {
            let actor = principal.as_ref().map(|p| p.name.clone()).unwrap_or_else(|| "anonymous".into());
            if let Some(p) = principal {
                req.extensions_mut().insert(p);
            }
            let resp = next.run(req).await;
            // Not audited: a method the route does not take (405: nothing was attempted), and
            // stream tickets (one per dashboard (re)connect; they only open a read).
            let audited = resp.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED && path != NOT_AUDITED;
            if mutating && audited {
                let note = resp
                    .extensions()
                    .get::<AuditNote>()
                    .cloned()
                    .unwrap_or_else(|| AuditNote { action: format!("{method} {path}"), ..Default::default() });
                let status = resp.status();
                let mut outcome = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
                if note.replayed {
                    outcome.push_str(" (replayed for Idempotency-Key)");
                }
                audit(&s, &actor, &note, outcome.trim(), rid, at);
            }
            resp
        }
    }
}

fn audit(
    s: &AppState,
    actor: &str,
    note: &AuditNote,
    outcome: &str,
    request_id: Option<String>,
    at: chrono::DateTime<Utc>,
) {
    s.writes.send(Write::Audit(AuditRecord {
        id: Uuid::new_v4(),
        at,
        actor: actor.to_string(),
        action: note.action.clone(),
        target: note.target.clone(),
        outcome: outcome.to_string(),
        request_id,
        details: if note.details.is_null() { json!({}) } else { note.details.clone() },
    }));
}
