//! The HTTP API: REST under `/api/v1`, Server-Sent Events, `/metrics`, `/healthz`, `/readyz`, and the dashboard at `/`.
//!
//! [`router`] is a plain function of [`AppState`] so tests can call it without
//! a socket. Handlers read the engine's `watch<Arc<Status>>`, query the store
//! for history, and send [`Command`]s to the engine
//! for anything that changes state ([`operator`]). Errors are JSON `{ "error": … }`; a 5xx
//! carries a generic message and the request id, never an internal error text.
//! [`auth`] authenticates every request and audits every mutation; [`guard`] puts the
//! security headers on every response and holds the rate limits and the stream bound;
//! [`ticket`] hands out the single-use tickets a browser opens the stream with; the
//! routes are described by the OpenAPI document in [`openapi`]. `/healthz` (liveness) and `/readyz`
//! (readiness) answer 200 or 503 with the verdicts of [`crate::selfcheck`], each part saying why.

pub mod auth;
pub mod dashboard;
pub mod dto;
pub mod error;
pub mod guard;
pub mod idempotency;
pub mod incidents;
pub mod openapi;
pub mod operator;
pub mod text;
pub mod ticket;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::handler::Handler;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::config::Config;
use crate::engine::Command;
use crate::metrics::Metrics;
use crate::selfcheck;
use crate::status::Status;
use crate::store::EventKind;
use crate::store::Store;
use crate::store::writer::StoreHandle;
use crate::supervise::Vitals;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Latest status snapshot.
    pub status: watch::Receiver<Arc<Status>>,
    /// Commands to the engine.
    pub commands: mpsc::Sender<Command>,
    /// History.
    pub store: Store,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The configuration.
    pub config: Arc<Config>,
    /// Cancelled at shutdown: ends SSE streams so the server can drain.
    pub shutdown: CancellationToken,
    /// Buffered store writes (the audit log).
    pub writes: StoreHandle,
    /// The tasks' vital signs (engine heartbeat, critical tasks gone, workers restarting).
    pub vitals: Vitals,
    /// Rate limits, the stream bound and the refusal audit throttle.
    pub guard: Arc<guard::Guard>,
    /// Outstanding single-use stream tickets (in memory only).
    pub tickets: ticket::TicketStore,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with a table of what it routes, for the OpenAPI completeness test.
struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn get<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, get(h));
        self.table.push(("get", path));
        self
    }

    fn post<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, post(h));
        self.table.push(("post", path));
        self
    }
}

fn routes() -> Routes {
    Routes { router: Router::new(), table: Vec::new() }
        .get("/", dashboard::index)
        .get("/assets/{file}", dashboard::asset)
        .get("/healthz", healthz)
        .get("/readyz", readyz)
        .get("/metrics", metrics)
        .get("/api/v1/status", status)
        .get("/api/v1/events", events)
        .get("/api/v1/stream", stream)
        .get("/api/v1/whoami", whoami)
        .get("/api/v1/regions/{name}/lag", lag_series)
        .get("/api/v1/incidents", incidents::list)
        .get("/api/v1/incidents/{id}", incidents::one)
        .get("/api/v1/openapi.json", openapi_json)
        .get("/api/v1/drills", operator::list_drills)
        .post("/api/v1/drills", operator::start_drill)
        .get("/api/v1/drills/{id}", operator::get_drill)
        .post("/api/v1/drills/{id}/abort", operator::abort_drill)
        .post("/api/v1/failover", operator::failover)
        .post("/api/v1/switchover", operator::switchover)
        .post("/api/v1/failback", operator::failback)
        .post("/api/v1/regions/{name}/maintenance", operator::maintenance)
        .get("/api/v1/audit", operator::audit)
}

/// Routes that take a POST but are not mutations: outside the mutation rate limit.
///
/// A stream ticket changes nothing but an in-memory ticket, has bounds of its own (100 unused
/// per token, 1 000 in all) and is asked for on every (re)connect of every dashboard, so
/// dashboards behind one address must not use up the limit operators act within.
fn unlimited_routes() -> Routes {
    Routes { router: Router::new(), table: Vec::new() }.post("/api/v1/stream/tickets", ticket::create)
}

/// Every (method, path) the router serves.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    let mut table = routes().table;
    table.extend(unlimited_routes().table);
    table
}

/// The whole HTTP surface.
///
/// Layers, outermost first: request id, security headers, tracing, request-id propagation, the
/// 30 s timeout, then per route the rate limit of mutations (before any token is checked; not
/// on [`unlimited_routes`]) and authentication and audit. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so the limits see each client's address.
pub fn router(state: AppState) -> Router {
    let tls = state.config.orchestrator.tls.is_some();
    let mutations = state.guard.mutation_layer();
    let auth = || axum::middleware::from_fn_with_state(state.clone(), auth::layer);
    let unlimited = unlimited_routes().router.route_layer(auth());
    let router = routes()
        .router
        .route_layer(auth())
        .route_layer(mutations)
        .merge(unlimited)
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(time_limit))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let matched = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let rid = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            tracing::debug_span!("http", method = %req.method(), path = %matched, request_id = %rid)
        }));
    guard::with_security_headers(router, tls).layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// This document, adapted to this orchestrator's configuration (see [`openapi::document`]).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "the OpenAPI 3 document", body = Object)))]
async fn openapi_json(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = openapi::document(&s.config).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(doc))
}

/// The query string of a request as `T`; a bad one is a 400 naming the parameter at fault
/// (serde names it before a colon: `before: premature end of input`), else `query`.
///
/// # Errors
/// [`ApiError::BadRequest`].
pub fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| {
        let text = e.body_text();
        let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
        match detail.split_once(": ") {
            Some((f, rest)) if !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                ApiError::BadRequest { field: f.to_string(), message: rest.to_string() }
            }
            _ => ApiError::BadRequest {
                field: named_in(detail, "unknown field `").unwrap_or_else(|| "query".into()),
                message: detail.to_string(),
            },
        }
    })
}

/// The name between `prefix` and the next backquote in `message` (serde's `unknown field `x``).
fn named_in(message: &str, prefix: &str) -> Option<String> {
    message.split(prefix).nth(1).and_then(|r| r.split('`').next()).map(str::to_string)
}

/// The `{id}` of a path, a UUID; anything else is a 400 naming `id`.
///
/// # Errors
/// [`ApiError::BadRequest`].
pub fn uuid_in_path(
    id: Result<axum::extract::Path<uuid::Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<uuid::Uuid, ApiError> {
    id.map(|axum::extract::Path(id)| id).map_err(|e| {
        ApiError::field("id", format!("is not a UUID (like 0b6f3c52-8a8e-4a7e-9a53-2f1d1e6f0c1a): {}", e.body_text()))
    })
}

/// The `limit` of a list query: default 50, 1–500.
///
/// # Errors
/// [`ApiError::BadRequest`] naming `limit`.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest { field: "limit".into(), message: format!("{limit} is outside 1–500") });
    }
    Ok(limit)
}

/// How long a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers a request that has no response after [`REQUEST_TIMEOUT`] with a 503 and the usual
/// JSON error body (tower-http's timeout answers with an empty one). It bounds the time to the
/// response head: a stream, once open, runs on.
async fn time_limit(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Unavailable(format!(
            "no answer within {} s; the orchestrator is busy or the store is slow: retry shortly",
            REQUEST_TIMEOUT.as_secs()
        ))
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see /api/v1/openapi.json".into())
}

/// 200 when ready (or live), 503 when not.
fn verdict_code(ok: bool) -> StatusCode {
    if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// Liveness: the engine completed a cycle within the bound and no critical task is gone.
#[utoipa::path(get, path = "/healthz", tag = "system", responses(
    (status = 200, description = "live: `{status: \"ok\", engine: {ok, why}, engine_idle_ms, tasks: {ok, why}, leader, store_reachable}`", body = Object),
    (status = 503, description = "not live (`status: \"failing\"`): the engine has not completed a cycle within the bound, or a critical task is gone; `engine.why` / `tasks.why` say which", body = Object)))]
async fn healthz(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let st = s.status.borrow().clone();
    let l = selfcheck::liveness(&s.vitals.signs(), selfcheck::ENGINE_STALL_AFTER);
    let body = json!({
        "status": if l.live { "ok" } else { "failing" },
        "engine": l.engine,
        "engine_idle_ms": l.engine_idle_ms,
        "tasks": l.tasks,
        "leader": st.leadership.leader,
        "store_reachable": s.writes.status().reachable,
    });
    (verdict_code(l.live), Json(body))
}

/// Readiness: whether this orchestrator can act now (engine, store, providers, coordination).
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "ready: `{ready: true, failing: [], engine, store, providers, coordination}`, each part `{ok, why}`", body = Object),
    (status = 503, description = "not ready: `failing` names the parts (`engine`, `store`, `providers`, `coordination`) and each part's `why` says what is wrong", body = Object)))]
async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<selfcheck::Readiness>) {
    let st = s.status.borrow().clone();
    let r = selfcheck::readiness(&s.vitals.signs(), selfcheck::ENGINE_STALL_AFTER, &s.writes.status(), &st);
    (verdict_code(r.ready), Json(r))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
        .into_response()
}

/// The live status: regions, health per layer and check, the plan, why, alarms, the live drill.
#[utoipa::path(get, path = "/api/v1/status", tag = "system", responses((status = 200, description = "the status snapshot", body = dto::StatusDto)), security(("bearer" = [])))]
async fn status(State(s): State<AppState>) -> Json<Arc<Status>> {
    Json(s.status.borrow().clone())
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events strictly older than this (RFC 3339): the `next_before` of the previous page.
    pub before: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 50).
    #[serde(default, deserialize_with = "dto::optional_whole")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only this region.
    #[param(value_type = Option<String>)]
    pub region: Option<String>,
    /// Only this kind; `audit` entries are shown to operators and admins only.
    #[param(value_type = Option<dto::EventKindDto>)]
    pub kind: Option<String>,
}

/// Transitions, plans, alarms and audit entries, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "system", params(EventsQuery),
    responses((status = 200, description = "a page of events, newest first", body = dto::EventsPageDto),
        (status = 400, description = "a bad or unknown query parameter, named in `field`", body = dto::ErrorDto)),
    security(("bearer" = [])))]
async fn events(
    State(s): State<AppState>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<dto::EventsPageDto>, ApiError> {
    let q = query(q)?;
    let limit = page_limit(q.limit)?;
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(EventKind::parse(k).ok_or_else(|| ApiError::BadRequest {
            field: "kind".into(),
            message: format!("`{k}` is not one of transition, plan, alarm, audit"),
        })?),
    };
    if let Some(r) = &q.region
        && !s.config.regions.iter().any(|x| x.name.as_str() == r)
    {
        return Err(ApiError::BadRequest { field: "region".into(), message: format!("unknown region `{r}`") });
    }
    // The audit log is for operators and admins, as at /api/v1/audit: a viewer (or an
    // anonymous reader with public_reads) gets the timeline without it.
    let caller = principal.map(|axum::Extension(p)| p);
    let sees_audit = caller.as_ref().is_some_and(|p| p.role.allows(crate::auth::Role::Operator));
    if kind == Some(EventKind::Audit) && !sees_audit {
        let who =
            caller.map_or_else(|| "an anonymous reader".to_string(), |p| format!("`{}` (role {})", p.name, p.role));
        return Err(ApiError::Forbidden(format!(
            "kind=audit needs role operator: the audit log is for operators and admins, and {who} is not one"
        )));
    }
    let events = s.store.events(q.before, limit, q.region.as_deref(), kind, sees_audit).await.map_err(|e| {
        ApiError::Unavailable(format!("the store is unreachable ({e}); recent state is in /api/v1/status"))
    })?;
    let next_before = if events.len() as i64 == limit { events.last().map(|e| e.at) } else { None };
    Ok(Json(dto::EventsPageDto { events: events.into_iter().map(dto::EventDto::from).collect(), next_before }))
}

/// Query of `GET /api/v1/regions/{name}/lag`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LagQuery {
    /// Start of the series (RFC 3339); default one hour ago. A time in the future gives no points.
    pub since: Option<DateTime<Utc>>,
    /// Bucket width in seconds, 1–86400 (default: about 120 points over the range, within 1–86400).
    #[serde(default, deserialize_with = "dto::optional_whole")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 86400)]
    pub step: Option<i64>,
}

/// Widest lag bucket, seconds (a day).
const MAX_LAG_STEP: i64 = 86_400;

/// Replication lag of a region over time (raw samples, then per-minute aggregates).
#[utoipa::path(get, path = "/api/v1/regions/{name}/lag", tag = "system",
    params(("name" = String, Path, description = "region name"), LagQuery),
    responses((status = 200, description = "the lag series", body = dto::LagSeriesDto),
        (status = 400, description = "a bad or unknown query parameter, named in `field`", body = dto::ErrorDto),
        (status = 404, description = "no such region, or it has no database", body = dto::ErrorDto)),
    security(("bearer" = [])))]
async fn lag_series(
    State(s): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    q: Result<Query<LagQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<dto::LagSeriesDto>, ApiError> {
    let q = query(q)?;
    let Some(region) = s.config.regions.iter().find(|r| r.name.as_str() == name) else {
        return Err(ApiError::NotFound(format!("unknown region `{name}`")));
    };
    if region.postgres.is_none() {
        return Err(ApiError::NotFound(format!("region `{name}` has no database, so no replication lag")));
    }
    let now = Utc::now();
    let since = q.since.unwrap_or(now - chrono::Duration::hours(1));
    let range = (now - since).num_seconds().max(1);
    let step = q.step.unwrap_or((range / 120).clamp(1, MAX_LAG_STEP));
    if !(1..=MAX_LAG_STEP).contains(&step) {
        return Err(ApiError::BadRequest {
            field: "step".into(),
            message: format!("{step} is outside 1–{MAX_LAG_STEP} seconds"),
        });
    }
    let points = s
        .store
        .lag_series(&name, since, Duration::from_secs(step as u64))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store is unreachable ({e})")))?;
    let latest = s.status.borrow().regions.iter().find(|r| r.name.as_str() == name).and_then(|r| r.lag.clone());
    Ok(Json(dto::LagSeriesDto {
        region: name,
        since,
        step,
        points: points.into_iter().map(dto::LagPointDto::from).collect(),
        latest: latest.map(|l| json!(l)),
    }))
}

/// The caller's name and role: what the dashboard shows after sign-in, and whether it may act.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "system", responses(
    (status = 200, description = "the caller: its token's name and role; `anonymous` viewer, not authenticated, without a token where reads are public", body = dto::WhoamiDto),
    (status = 401, description = "no valid bearer token, or (even where reads are public) a token that is not valid", body = dto::ErrorDto)),
    security(("bearer" = [])))]
async fn whoami(
    State(s): State<AppState>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
    headers: axum::http::HeaderMap,
) -> Result<Json<dto::WhoamiDto>, ApiError> {
    let public_reads = s.config.auth.as_ref().is_none_or(|a| a.public_reads);
    match principal {
        Some(axum::Extension(p)) => Ok(Json(dto::WhoamiDto {
            name: p.name,
            role: p.role,
            authenticated: s.config.auth.is_some(),
            public_reads,
        })),
        // Reads are public, so the auth layer let an unknown token through: here it is the question.
        None if s.config.auth.is_some() && headers.contains_key(header::AUTHORIZATION) => {
            Err(ApiError::Unauthorized("the bearer token is not valid".into()))
        }
        None => Ok(Json(dto::WhoamiDto {
            name: "anonymous".into(),
            role: crate::auth::Role::Viewer,
            authenticated: false,
            public_reads,
        })),
    }
}

/// Query of `GET /api/v1/stream`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// A single-use ticket from `POST /api/v1/stream/tickets` (read and consumed by the auth layer).
    pub ticket: Option<String>,
}

/// Server-Sent Events: a `status` event with the full snapshot whenever it changes.
///
/// Authorised by `Authorization: Bearer` (curl, the CLI) or, for browsers, by `?ticket=`: a
/// single-use ticket from `POST /api/v1/stream/tickets`. A long-lived token is never taken
/// from the URL: `?access_token=` is refused with a 400 saying so.
#[utoipa::path(get, path = "/api/v1/stream", tag = "system",
    params(("ticket" = Option<String>, Query, description = "a single-use ticket from POST /api/v1/stream/tickets (for EventSource clients, which cannot send Authorization); valid 30 s",
        pattern = "^[0-9a-f]{64}$")),
    responses((status = 200, description = "text/event-stream of `status` events", content_type = "text/event-stream"),
        (status = 400, description = "a query parameter other than `ticket`", body = dto::ErrorDto),
        (status = 401, description = "no valid bearer token, or a ticket that is unknown, used or expired", body = dto::ErrorDto)),
    security(("bearer" = [])))]
async fn stream(
    State(s): State<AppState>,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    if let Err(e) = q {
        let message = if e.body_text().contains("access_token") {
            "`access_token` is not accepted: a token in a URL ends up in logs. Send Authorization: Bearer <token>, \
             or open the stream with ?ticket= from POST /api/v1/stream/tickets"
                .to_string()
        } else {
            e.body_text()
        };
        return Err(ApiError::BadRequest { field: "query".into(), message });
    }
    // Held by the stream: dropped (the place freed) when the client leaves or the server stops.
    let place = s.guard.stream_permit()?;
    let rx = s.status.clone();
    let stop = s.shutdown.clone();
    let stream = futures::stream::unfold((rx, stop, true, place), |(mut rx, stop, first, place)| async move {
        if !first {
            tokio::select! {
                _ = stop.cancelled() => return None,
                r = rx.changed() => if r.is_err() { return None },
            }
            // Coalesce bursts: at most ~4 snapshots a second per client.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let snapshot = rx.borrow_and_update().clone();
        let data = serde_json::to_string(&*snapshot).unwrap_or_else(|_| "{}".into());
        Some((Ok(SseEvent::default().event("status").data(data)), (rx, stop, false, place)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Uri;

    fn events(q: &str) -> Result<EventsQuery, ApiError> {
        query(Query::<EventsQuery>::try_from_uri(&Uri::try_from(format!("/api/v1/events?{q}")).unwrap()))
    }

    fn field(r: Result<EventsQuery, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_without_an_answer_in_time_gets_a_503_with_the_json_error_body() {
        use tower::ServiceExt;
        let slow = Router::new()
            .route("/slow", get(|| async { tokio::time::sleep(REQUEST_TIMEOUT * 2).await }))
            .route("/quick", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(time_limit));
        let get_ = |path: &str| axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        let resp = slow.clone().oneshot(get_("/slow")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["error"].as_str().unwrap().contains("no answer within 30 s"), "{body}");
        assert_eq!(slow.oneshot(get_("/quick")).await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn a_bad_query_parameter_is_named_in_the_error() {
        assert_eq!(field(events("before=yesterday")), "before");
        assert_eq!(field(events("before=")), "before");
        assert_eq!(field(events("limit=2.5")), "limit");
        assert_eq!(field(events("colour=red")), "colour");
        let Err(ApiError::BadRequest { message, .. }) = events("before=yesterday") else { unreachable!() };
        assert!(!message.starts_with("before"), "the field is not repeated in the message: {message}");
    }

    #[test]
    fn a_whole_number_is_accepted_however_json_schema_writes_it() {
        assert_eq!(events("limit=20").unwrap().limit, Some(20));
        assert_eq!(events("limit=20.0").unwrap().limit, Some(20));
        assert_eq!(events("limit=-3").unwrap().limit, Some(-3), "the range is checked after, naming `limit`");
        assert_eq!(field(events("limit=1e400")), "limit");
        assert_eq!(field(events("limit=9223372036854775808")), "limit");
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(501)).is_err());
        assert_eq!(page_limit(None).unwrap(), 50);
    }
}
