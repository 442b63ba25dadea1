//! API errors: JSON bodies, 4xx for the caller's mistakes (naming the field), generic 5xx.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::engine::CommandError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: names the field.
    #[error("{field}: {message}")]
    BadRequest {
        /// The offending field.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No (valid) bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// A token whose role does not allow this, or mutations disabled.
    #[error("{0}")]
    Forbidden(String),
    /// Missing or unknown resource.
    #[error("{0}")]
    NotFound(String),
    /// Refused because of the current state (conflict).
    #[error("{0}")]
    Conflict(String),
    /// Refused, with every reason (preflight, operation lock …).
    #[error("{message}")]
    Refused {
        /// One sentence.
        message: String,
        /// Every reason.
        reasons: Vec<String>,
    },
    /// Refused because this orchestrator does not lead (409): names the leader and its API
    /// URL as fields too, so a client can point the operator at it without parsing the text.
    #[error("{message}")]
    NotLeader {
        /// One sentence, naming the leader when it is known.
        message: String,
        /// The leader's region, when known.
        leader: Option<String>,
        /// The leader's API URL, when known.
        api: Option<String>,
    },
    /// The same Idempotency-Key was used for a different request.
    #[error("{0}")]
    Unprocessable(String),
    /// A rate limit or bound was reached (429): `Retry-After` says when to try again.
    #[error("{message}")]
    TooManyRequests {
        /// Which limit, and how to stay under it.
        message: String,
        /// When the client may try again (sent as whole seconds, at least 1).
        retry_after: std::time::Duration,
    },
    /// A dependency (the store) is unreachable; the message is safe to show.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A bad field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest { field: field.into(), message: message.into() }
    }

    /// Maps an engine refusal; `region_field` names the request field an unknown region came from.
    pub fn from_command(e: CommandError, region_field: &str) -> Self {
        match e {
            CommandError::UnknownRegion(r) => ApiError::field(region_field, format!("unknown region `{r}`")),
            CommandError::NoSuchDrill(m) => ApiError::Conflict(m),
            ref e @ CommandError::NotLeader { ref leader, ref api } => {
                ApiError::NotLeader { message: format!("refused: {e}"), leader: leader.clone(), api: api.clone() }
            }
            CommandError::Refused(reasons) => {
                ApiError::Refused { message: format!("refused: {}", reasons.join("; ")), reasons }
            }
            CommandError::ShuttingDown => ApiError::Unavailable("the orchestrator is shutting down".into()),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::Refused { .. } | ApiError::NotLeader { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body. Every message goes through [`crate::redact::text`]: a refusal that quotes
    /// a provider's error or a DSN shows no secret.
    pub fn body(&self) -> serde_json::Value {
        use crate::redact::text;
        match self {
            ApiError::BadRequest { field, message } => {
                json!({ "error": text(&format!("{field}: {message}")), "field": field })
            }
            ApiError::Refused { message, reasons } => {
                let reasons: Vec<String> = reasons.iter().map(|r| text(r)).collect();
                json!({ "error": text(message), "reasons": reasons })
            }
            ApiError::NotLeader { message, leader, api } => {
                let message = text(message);
                json!({ "error": message, "reasons": [message], "leader": leader, "leader_api": api.as_deref().map(crate::redact::url) })
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, error.chain = ?e, "internal error");
                json!({ "error": "internal error; see the orchestrator's log (request id in the x-request-id header)" })
            }
            other => json!({ "error": text(&other.to_string()) }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), Json(self.body())).into_response();
        match &self {
            ApiError::Unauthorized(_) => {
                resp.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer realm=\"failover-orchestrator\""),
                );
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_seconds(*retry_after).into());
            }
            _ => {}
        }
        resp
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1 (0 would invite an immediate retry).
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_carries_retry_after_in_whole_seconds_rounded_up_and_the_json_body() {
        let e = ApiError::TooManyRequests {
            message: "slow down".into(),
            retry_after: std::time::Duration::from_millis(1200),
        };
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "2");
        assert_eq!(retry_after_seconds(std::time::Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(std::time::Duration::from_secs(7)), 7);
        let body = ApiError::TooManyRequests { message: "slow down".into(), retry_after: Default::default() }.body();
        assert_eq!(body, json!({ "error": "slow down" }));
    }

    #[test]
    fn a_follower_refusal_names_the_leader_and_its_api_as_fields() {
        let e = CommandError::NotLeader { leader: Some("dr".into()), api: Some("http://10.0.3.5:8080".into()) };
        let api = ApiError::from_command(e, "region");
        assert_eq!(api.status(), StatusCode::CONFLICT);
        let body = api.body();
        assert_eq!(body["leader"], "dr");
        assert_eq!(body["leader_api"], "http://10.0.3.5:8080");
        let message = body["error"].as_str().unwrap();
        assert!(message.starts_with("refused: this orchestrator is not the leader"), "{message}");
        assert!(message.contains("dr") && message.contains("http://10.0.3.5:8080"), "{message}");
    }

    #[test]
    fn a_follower_refusal_without_a_known_leader_says_so() {
        let body = ApiError::from_command(CommandError::NotLeader { leader: None, api: None }, "region").body();
        assert!(body["leader"].is_null() && body["leader_api"].is_null());
        assert!(body["error"].as_str().unwrap().contains("no leader is known"));
    }
}
