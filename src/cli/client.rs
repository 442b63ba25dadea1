//! The HTTP client of the operator CLI (and of `lab --measure-drills`): JSON over the REST API.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not usable.
    #[error("--url / FO_URL `{0}` is not an http(s) URL")]
    Url(String),
    /// The client could not be built.
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// No answer.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error.
    #[error("{status}: {message}{}", if reasons.is_empty() { String::new() } else { format!("\n  - {}", reasons.join("\n  - ")) })]
    Api {
        /// HTTP status.
        status: u16,
        /// The `error` field.
        message: String,
        /// The `reasons` field (refusals).
        reasons: Vec<String>,
    },
}

/// A client bound to one orchestrator and (optionally) one token.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`ClientError::Url`] or [`ClientError::Build`].
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(base.to_string()));
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().map_err(ClientError::Build)?;
        Ok(Self { base: base.trim_end_matches('/').to_string(), token: token.map(SecretString::from), http })
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: String) -> Result<Value, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t.expose_secret()),
            None => req,
        };
        let resp = req.send().await.map_err(|source| ClientError::Unreachable { url: url.clone(), source })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            return Err(ClientError::Api {
                status,
                message: body["error"].as_str().unwrap_or("(no message)").to_string(),
                reasons: body["reasons"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(body)
    }

    /// GET `path` as JSON.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), url).await
    }

    /// POST `body` to `path`, with an optional Idempotency-Key.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn post(&self, path: &str, body: &Value, idempotency_key: Option<&str>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.post(&url).json(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req, url).await
    }
}
