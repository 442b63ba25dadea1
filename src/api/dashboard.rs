//! The dashboard: one page, a stylesheet and a hand-written script, compiled into the binary.
//!
//! The page renders the status snapshot it receives over Server-Sent Events
//! (`/api/v1/stream`) and reads history from the REST API. No CDN, no
//! third-party files.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// `GET /`
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /assets/dashboard.js`
pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], SCRIPT)
        .into_response()
}

/// `GET /assets/dashboard.css`
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLE).into_response()
}
