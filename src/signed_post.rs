//! The signed JSON POST: the webhook provider sends plans with it and the
//! notifier sends events with it, so a receiver verifies both the same way.
//!
//! A body is POSTed as `application/json` with `X-Failover-Timestamp: <unix
//! seconds>` and, when a secret is configured, `X-Failover-Signature:
//! sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, plus an optional
//! `Idempotency-Key`. 5xx, 429 and unanswered requests are retryable; other 4xx
//! answers are rejections. Error texts never hold the secret. A leaf: it imports
//! nothing of the crate; the callers own their retries.

use chrono::Utc;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Failover-Signature";
/// Header carrying the timestamp that is signed with the body.
pub const TIMESTAMP_HEADER: &str = "X-Failover-Timestamp";

/// `sha256=<hex>` over `<timestamp>.<body>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature in constant time (for receivers, and the tests).
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else { return false };
    let Ok(tag) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else { return false };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// Why a signed POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No answer (connection refused, timeout).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A non-2xx answer.
    #[error("answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
}

impl PostError {
    /// Whether a retry may help: timeouts, connection errors, 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            PostError::Unreachable(_) => true,
            PostError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

/// POSTs `body` as JSON, signed with `secret` when given.
///
/// # Errors
/// [`PostError`]; the error text never contains the secret.
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&SecretString>,
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> Result<(), PostError> {
    let ts = Utc::now().timestamp();
    let mut req = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string());
    if let Some(secret) = secret {
        req = req.header(SIGNATURE_HEADER, sign(secret.expose_secret().as_bytes(), ts, &body));
    }
    if let Some(key) = idempotency_key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.body(body).send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        PostError::Unreachable(what.into())
    })?;
    if resp.status().is_success() {
        return Ok(());
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default().chars().take(200).collect();
    Err(PostError::Status { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let sig = sign(b"k", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify(b"k", 1_700_000_000, b"{\"a\":1}", &sig));
        assert!(!verify(b"k", 1_700_000_001, b"{\"a\":1}", &sig), "another timestamp");
        assert!(!verify(b"k", 1_700_000_000, b"{\"a\":2}", &sig), "another body");
        assert!(!verify(b"other", 1_700_000_000, b"{\"a\":1}", &sig), "another key");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently: printf '1.x' | openssl dgst -sha256 -hmac key
        assert_eq!(sign(b"key", 1, b"x"), "sha256=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec");
    }

    #[test]
    fn server_errors_and_timeouts_are_retryable_client_errors_are_not() {
        assert!(PostError::Unreachable("x".into()).is_retryable());
        assert!(PostError::Status { status: 503, body: String::new() }.is_retryable());
        assert!(!PostError::Status { status: 400, body: String::new() }.is_retryable());
    }
}
