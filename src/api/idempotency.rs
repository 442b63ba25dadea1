//! `Idempotency-Key` on POSTs: a retried request gets the first response instead of running twice.
//!
//! Keys are scoped to the caller (token name) and persisted in the store with a
//! fingerprint of the request (method, route, body) and, once it finished, the
//! response. A retry with the same key and request replays the response; the
//! same key with a different request is refused (422); a retry while the first
//! is still running gets a 409. 5xx responses are not kept, so they can be retried.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ApiError;
use super::auth::AuditNote;
use crate::store::Store;
use crate::store::operations::IdempotencyClaim;

/// The header.
pub const HEADER: &str = "idempotency-key";

/// What to do with a request carrying a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// First use: run it.
    Run,
    /// Seen and finished: answer this.
    Answer(u16, serde_json::Value),
    /// Seen with a different request.
    Mismatch,
    /// Seen, still running.
    InProgress,
}

/// The fingerprint of a request: SHA-256 of method, route and body.
pub fn fingerprint(method: &str, route: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(route.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// Decides from a claim.
pub fn replay(claim: IdempotencyClaim, fingerprint: &str) -> Replay {
    match claim {
        IdempotencyClaim::Claimed => Replay::Run,
        IdempotencyClaim::Seen { fingerprint: f, .. } if f != fingerprint => Replay::Mismatch,
        IdempotencyClaim::Seen { response: Some((status, body)), .. } => Replay::Answer(status, body),
        IdempotencyClaim::Seen { response: None, .. } => Replay::InProgress,
    }
}

/// The key of a request, validated.
///
/// # Errors
/// 400 when the key is empty, too long or not printable ASCII.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(HEADER) else { return Ok(None) };
    match v.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 200 => Ok(Some(k.trim().to_string())),
        _ => Err(ApiError::field("Idempotency-Key", "must be 1–200 printable ASCII characters")),
    }
}

/// What a mutating handler produced.
pub type Outcome = Result<(StatusCode, serde_json::Value, AuditNote), (ApiError, AuditNote)>;

fn respond(outcome: Outcome) -> Response {
    match outcome {
        Ok((status, body, note)) => (status, axum::Extension(note), Json(body)).into_response(),
        Err((e, note)) => {
            let mut r = e.into_response();
            r.extensions_mut().insert(note);
            r
        }
    }
}

/// Runs `run` at most once per (actor, key).
pub async fn once<F>(store: &Store, actor: &str, key: Option<String>, fp: String, note: AuditNote, run: F) -> Response
where
    F: Future<Output = Outcome>,
{
    let Some(key) = key else { return respond(run.await) };
    let claim = match store.idempotency_claim(actor, &key, &fp).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "idempotency key not checked: store unreachable");
            return respond(Err((
                ApiError::Unavailable(
                    "the store is unreachable, so the Idempotency-Key cannot be honoured; retry later or without the key"
                        .into(),
                ),
                note,
            )));
        }
    };
    match replay(claim, &fp) {
        Replay::Run => {}
        Replay::Answer(status, body) => {
            let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(body)).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            r.extensions_mut().insert(AuditNote { replayed: true, ..note });
            return r;
        }
        Replay::Mismatch => {
            return respond(Err((
                ApiError::Unprocessable("this Idempotency-Key was already used for a different request".into()),
                note,
            )));
        }
        Replay::InProgress => {
            return respond(Err((
                ApiError::Conflict("a request with this Idempotency-Key is still in progress".into()),
                note,
            )));
        }
    }
    let outcome = run.await;
    let (status, body) = match &outcome {
        Ok((s, b, _)) => (*s, b.clone()),
        Err((e, _)) => (e.status(), e.body()),
    };
    let kept = if status.is_server_error() {
        store.idempotency_release(actor, &key).await
    } else {
        store.idempotency_complete(actor, &key, status.as_u16(), &body).await
    };
    if let Err(e) = kept {
        tracing::warn!(error = %e, "idempotency key outcome not stored");
    }
    respond(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_method_route_and_body() {
        let a = fingerprint("POST", "/api/v1/drills", b"{}");
        assert_eq!(a, fingerprint("POST", "/api/v1/drills", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/v1/failover", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/v1/drills", b"{ }"));
        // No ambiguity between route and body boundaries.
        assert_ne!(fingerprint("POST", "/a", b"b"), fingerprint("POST", "/ab", b""));
    }

    #[test]
    fn a_retry_replays_the_first_answer_and_a_reuse_is_refused() {
        let fp = fingerprint("POST", "/x", b"1");
        assert_eq!(replay(IdempotencyClaim::Claimed, &fp), Replay::Run);
        let seen = |f: &str, r: Option<(u16, serde_json::Value)>| IdempotencyClaim::Seen {
            fingerprint: f.to_string(),
            response: r,
        };
        assert_eq!(
            replay(seen(&fp, Some((201, serde_json::json!({"id": 1})))), &fp),
            Replay::Answer(201, serde_json::json!({"id": 1}))
        );
        assert_eq!(replay(seen(&fp, None), &fp), Replay::InProgress);
        assert_eq!(replay(seen("other", Some((201, serde_json::json!({})))), &fp), Replay::Mismatch);
    }

    #[test]
    fn keys_must_be_short_printable_and_non_empty() {
        let mut h = HeaderMap::new();
        assert_eq!(key(&h).unwrap(), None);
        h.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(key(&h).unwrap(), Some("abc-123".into()));
        h.insert(HEADER, HeaderValue::from_static("  "));
        assert!(key(&h).is_err());
        h.insert(HEADER, HeaderValue::from_str(&"k".repeat(201)).unwrap());
        assert!(key(&h).is_err());
    }
}
