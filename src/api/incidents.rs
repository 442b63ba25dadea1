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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–500 (default 50).
    #[serde(default, deserialize_with = "super::dto::optional_whole")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
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
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery),
    responses((status = 200, description = "the incidents, newest first", body = super::dto::IncidentsPageDto),
        (status = 400, description = "a bad or unknown query parameter, named in `field`", body = super::dto::ErrorDto)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = super::page_limit(super::query(q)?.limit)?;
    let list = s.store.incidents(limit).await.map_err(unavailable)?;
    Ok(Json(json!({ "incidents": list.iter().map(with_figures).collect::<Vec<_>>() })))
}

/// One incident with its timeline: first failed probe → health transitions → quorum → decision →
/// provider writes → read-back verified, and `figures` (ms from the first failed probe).
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, description = "the incident with `timeline` and `figures`", body = super::dto::IncidentDto),
        (status = 400, description = "`id` is not a UUID", body = super::dto::ErrorDto),
        (status = 404, description = "no such incident", body = super::dto::ErrorDto)),
    security(("bearer" = [])))]
pub async fn one(
    State(s): State<AppState>,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = super::uuid_in_path(id)?;
    match s.store.incident(id).await.map_err(unavailable)? {
        Some(i) => Ok(Json(with_figures(&i))),
        None => Err(ApiError::NotFound(format!("no incident {id}"))),
    }
}
