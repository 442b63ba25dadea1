//! `GET /api/v1/incidents` and `GET /api/v1/incidents/{id}`: incident timelines from the store,
//! each with its headline figures (first failed probe → detection, decision, verified flip).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::incidents::Incident;

/// Query of `GET /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
}

fn with_figures(i: &Incident) -> serde_json::Value {
    let mut v = serde_json::to_value(i).unwrap_or_default();
    v["figures"] = serde_json::to_value(i.figures()).unwrap_or_default();
    v
}

fn unavailable(e: crate::store::StoreError) -> ApiError {
    ApiError::Unavailable(format!("the store is unreachable ({e}); incidents are written once it returns"))
}

/// The newest incidents first, each with its timeline and figures.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents",
    params(("limit" = Option<i64>, Query, description = "1–500 (default 50)")),
    responses((status = 200, description = "`{incidents}`, newest first", body = Object),
        (status = 400, body = super::dto::ErrorDto), (status = 503, body = super::dto::ErrorDto)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest { field: "query".into(), message: e.body_text() })?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest { field: "limit".into(), message: format!("{limit} is outside 1–500") });
    }
    let list = s.store.incidents(limit).await.map_err(unavailable)?;
    Ok(Json(json!({ "incidents": list.iter().map(with_figures).collect::<Vec<_>>() })))
}

/// One incident with its timeline: first failed probe → health transitions → quorum → decision →
/// provider writes → read-back verified, and `figures` (ms from the first failed probe).
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path, description = "incident id")),
    responses((status = 200, description = "the incident with `timeline` and `figures`", body = Object),
        (status = 400, body = super::dto::ErrorDto), (status = 404, body = super::dto::ErrorDto), (status = 503, body = super::dto::ErrorDto)),
    security(("bearer" = [])))]
pub async fn one(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::BadRequest { field: "id".into(), message: format!("`{id}` is not a UUID") })?;
    match s.store.incident(id).await.map_err(unavailable)? {
        Some(i) => Ok(Json(with_figures(&i))),
        None => Err(ApiError::NotFound(format!("no incident {id}"))),
    }
}
