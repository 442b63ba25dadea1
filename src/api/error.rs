//! API errors: JSON bodies, 4xx for the caller's mistakes (naming the field), generic 5xx.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    /// Missing or unknown resource.
    #[error("{0}")]
    NotFound(String),
    /// Refused because of the current state (conflict).
    #[error("{0}")]
    Conflict(String),
    /// A dependency (the store) is unreachable; the message is safe to show.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest { field, message } => {
                (StatusCode::BAD_REQUEST, json!({ "error": format!("{field}: {message}"), "field": field }))
            }
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "error": m })),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "error": m })),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": m })),
            ApiError::Internal(e) => {
                tracing::error!(error = %e, error.chain = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error; see the orchestrator's log (request id in the x-request-id header)" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
