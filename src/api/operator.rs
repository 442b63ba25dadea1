//! Operator endpoints: drills, manual failover, switchover, failback, maintenance, the audit log.
//!
//! Mutations validate their body (400 naming the field), then send an engine
//! [`Command`] and wait for its oneshot reply; refusals come back as 409 with
//! every reason. Each honours `Idempotency-Key` and is audited by the
//! middleware, with an [`AuditNote`] saying what it did.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::auth::AuditNote;
use super::dto::{
    AbortRequestDto, AuditPageDto, DrillDto, DrillRequestDto, DrillWithTimelineDto, DrillsPageDto, ErrorDto,
    FailbackRequestDto, FailoverRequestDto, MAX_REASON_CHARS, MaintenanceRequestDto, OperationDto,
    SwitchoverRequestDto,
};
use super::idempotency::{self, Outcome};
use super::text;
use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::drill::{self, DrillId, DrillRequest};
use crate::engine::{Command, CommandError, CommandOutcome};
use crate::region::RegionName;

/// Longest switchover wait an operator may ask for (below the request timeout).
const MAX_SWITCHOVER_WAIT: f64 = 25.0;

/// Parses a JSON body; a bad one is a 400 naming the field (`body` when malformed).
///
/// # Errors
/// [`ApiError::BadRequest`].
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field("body", "expected a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let v = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let named = |prefix: &str| msg.split(prefix).nth(1).and_then(|r| r.split('`').next()).map(str::to_string);
        let field = if inner.is_syntax() || inner.is_eof() {
            "body".to_string()
        } else if !matches!(path.as_str(), "." | "?" | "") {
            path
        } else {
            named("unknown field `").or_else(|| named("missing field `")).unwrap_or_else(|| "body".into())
        };
        ApiError::field(field, msg)
    })?;
    // Free text is checked on the document as sent (every string, whatever the type keeps).
    let raw: Value = serde_json::from_slice(body).map_err(|e| ApiError::field("body", e.to_string()))?;
    text::check_json(&raw)?;
    Ok(v)
}

/// A reason as the document states it ([`dto::REASON_PATTERN`](super::dto::REASON_PATTERN)):
/// at most 500 characters as sent, not only white space; kept trimmed.
fn reason(r: &str) -> Result<String, ApiError> {
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::field("reason", format!("at most {MAX_REASON_CHARS} characters")));
    }
    match r.trim() {
        "" => Err(ApiError::field("reason", "say why: it goes into the audit log and the record")),
        r => Ok(r.to_string()),
    }
}

/// The `Idempotency-Key` header of the mutations.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// A retry with the same key returns the first result (header `idempotent-replayed: true`);
    /// the same key with a different request is a 422. 1–200 printable ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\x20-\x7E]*[\x21-\x7E][\t\x20-\x7E]*$"
    )]
    pub key: Option<String>,
}

async fn ask<T>(
    s: &AppState,
    make: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
) -> Result<Result<T, CommandError>, ApiError> {
    let (tx, rx) = oneshot::channel();
    s.commands.send(make(tx)).await.map_err(|_| ApiError::Unavailable("the engine is shutting down".into()))?;
    rx.await.map_err(|_| ApiError::Unavailable("the engine stopped before answering".into()))
}

fn operation(out: CommandOutcome) -> Value {
    json!(OperationDto {
        operation_id: out.operation_id,
        plan_id: out.plan.as_ref().map(|p| p.id.0),
        plan: out.plan.map(|p| json!(p)),
        reasons: out.reasons,
    })
}

/// Runs a mutation with its audit note, idempotency and error mapping.
async fn mutation<F, Fut>(
    s: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    route: &str,
    body: &Bytes,
    note: AuditNote,
    f: F,
) -> Response
where
    F: FnOnce(AuditNote) -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value, AuditNote), ApiError>>,
{
    // A path parameter (region name, drill id) is the audit row's target: refuse control
    // characters before it is stored, and audit it escaped.
    if let Some(e) = note.target.as_deref().and_then(|t| text::check("path", t).err()) {
        let mut note = note;
        note.target = note.target.map(|t| t.escape_debug().to_string());
        return idempotency::once(&s.store, &p.name, None, String::new(), note.clone(), async { Err((e, note)) }).await;
    }
    let key = match idempotency::key(headers) {
        Ok(k) => k,
        Err(e) => {
            return idempotency::once(&s.store, &p.name, None, String::new(), note.clone(), async { Err((e, note)) })
                .await;
        }
    };
    let fp = idempotency::fingerprint("POST", route, body);
    let n = note.clone();
    let run = async move {
        let r: Outcome = f(n.clone()).await.map_err(|e| (e, n));
        r
    };
    idempotency::once(&s.store, &p.name, key, fp, note, run).await
}

/// Starts a drill (or records a dry run).
#[utoipa::path(post, path = "/api/v1/drills", tag = "drills", request_body = DrillRequestDto, params(IdempotencyKey),
    responses(
        (status = 201, description = "the drill as recorded (running, or finished for a dry run)", body = DrillDto),
        (status = 400, description = "a bad field, named in `field`", body = ErrorDto),
        (status = 409, description = "refused by the preflight (every reason in `reasons`), or not the leader", body = ErrorDto),
        (status = 422, description = "the Idempotency-Key was used for a different request", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn start_drill(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = AuditNote { action: "drill.start".into(), ..Default::default() };
    mutation(&s, &p, &headers, "/api/v1/drills", &body, note, |mut note| {
        let (s, p, body) = (&s, &p, &body);
        async move {
            let req: DrillRequestDto = parse_json(body)?;
            let request = DrillRequest {
                evacuate: req.evacuate,
                target: req.target,
                steps: req.steps.map(|s| s.into_iter().map(|w| w.0).collect()),
                hold_seconds: req.hold_seconds,
                dry_run: req.dry_run,
                synthetic_failure: req.synthetic_failure,
                reason: req.reason,
            };
            let spec = drill::validate(&s.config.policy, &request).map_err(|e| ApiError::field(e.field, e.message))?;
            note.target = spec.evacuate.as_ref().or(spec.target.as_ref()).map(|r| r.to_string());
            note.details = json!({ "reason": spec.reason, "dry_run": spec.dry_run, "steps": spec.steps, "synthetic": spec.synthetic });
            let actor = p.name.clone();
            match ask(s, |reply| Command::StartDrill { spec, actor, reply }).await? {
                Ok(rec) => {
                    note.details["drill_id"] = json!(rec.id);
                    Ok((StatusCode::CREATED, json!(rec), note))
                }
                Err(e) => Err(ApiError::from_command(e, "target")),
            }
        }
    })
    .await
}

/// Query of `GET /api/v1/drills`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DrillsQuery {
    /// Page size, 1–500 (default 50).
    #[serde(default, deserialize_with = "super::dto::optional_whole")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1–500 (default 50).
    #[serde(default, deserialize_with = "super::dto::optional_whole")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only entries strictly older than this (RFC 3339): the `next_before` of the previous page.
    pub before: Option<DateTime<Utc>>,
}

fn store_down(e: crate::store::StoreError) -> ApiError {
    ApiError::Unavailable(format!("the store is unreachable ({e}); the live drill is in /api/v1/status"))
}

/// Lists drills, newest first.
#[utoipa::path(get, path = "/api/v1/drills", tag = "drills", params(DrillsQuery),
    responses((status = 200, description = "the drills, newest first", body = DrillsPageDto),
        (status = 400, description = "a bad or unknown query parameter, named in `field`", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn list_drills(
    State(s): State<AppState>,
    q: Result<Query<DrillsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(super::query(q)?.limit)?;
    let drills = s.store.drills(limit).await.map_err(store_down)?;
    Ok(Json(json!({ "drills": drills })))
}

fn drill_id(id: &str) -> Result<DrillId, ApiError> {
    Uuid::parse_str(id).map(DrillId).map_err(|_| ApiError::field("id", format!("`{id}` is not a drill id (a UUID)")))
}

/// One drill: its step timeline and report (time to shift, errors, max lag and RPO, outcome).
#[utoipa::path(get, path = "/api/v1/drills/{id}", tag = "drills", params(("id" = Uuid, Path, description = "drill id")),
    responses((status = 200, description = "the drill with `timeline` and `report`", body = DrillWithTimelineDto),
        (status = 400, description = "`id` is not a UUID", body = ErrorDto),
        (status = 404, description = "no such drill", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn get_drill(
    State(s): State<AppState>,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = DrillId(super::uuid_in_path(id)?);
    let Some((rec, timeline)) = s.store.drill(id).await.map_err(store_down)? else {
        return Err(ApiError::NotFound(format!("no drill {id}")));
    };
    let mut v = json!(rec);
    v["timeline"] = json!(timeline);
    Ok(Json(v))
}

/// Aborts the running drill: rolls back now.
#[utoipa::path(post, path = "/api/v1/drills/{id}/abort", tag = "drills",
    params(("id" = Uuid, Path, description = "drill id"), IdempotencyKey),
    request_body(content = Option<AbortRequestDto>, description = "optional (no body, or `null`: no reason given)"),
    responses((status = 200, description = "the drill, rolling back", body = DrillDto),
        (status = 400, description = "`id` is not a UUID, or a bad field", body = ErrorDto),
        (status = 409, description = "no such drill running, or not the leader", body = ErrorDto),
        (status = 422, description = "the Idempotency-Key was used for a different request", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn abort_drill(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = AuditNote { action: "drill.abort".into(), target: Some(id.clone()), ..Default::default() };
    mutation(&s, &p, &headers, &format!("/api/v1/drills/{id}/abort"), &body, note, |mut note| {
        let (s, p, body) = (&s, &p, &body);
        async move {
            let id = drill_id(&id)?;
            // No body, or JSON `null`, is no reason given.
            let absent = body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null";
            let req: AbortRequestDto = if absent { AbortRequestDto::default() } else { parse_json(body)? };
            let reason = match req.reason.as_deref() {
                None => "aborted by an operator".to_string(),
                Some(r) => reason(r)?,
            };
            note.details = json!({ "reason": reason });
            let actor = p.name.clone();
            match ask(s, |reply| Command::AbortDrill { id, actor, reason, reply }).await? {
                Ok(rec) => Ok((StatusCode::OK, json!(rec), note)),
                Err(e) => Err(ApiError::from_command(e, "id")),
            }
        }
    })
    .await
}

/// Moves all traffic to a region and holds it there until a failback.
#[utoipa::path(post, path = "/api/v1/failover", tag = "operations", request_body = FailoverRequestDto, params(IdempotencyKey),
    responses((status = 200, description = "the plan and the operation's record id", body = OperationDto),
        (status = 400, description = "a bad field, named in `field`", body = ErrorDto),
        (status = 403, description = "`force` needs the admin role; or the token's role is too low", body = ErrorDto),
        (status = 409, description = "refused (target lagging or unhealthy, lock held, not the leader)", body = ErrorDto),
        (status = 422, description = "the Idempotency-Key was used for a different request", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn failover(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = AuditNote { action: "failover".into(), ..Default::default() };
    mutation(&s, &p, &headers, "/api/v1/failover", &body, note, |mut note| {
        let (s, p, body) = (&s, &p, &body);
        async move {
            let req: FailoverRequestDto = parse_json(body)?;
            let reason = reason(&req.reason)?;
            note.target = Some(req.target.clone());
            note.details = json!({ "reason": reason, "force": req.force });
            if req.force && !p.role.allows(Role::Admin) {
                return Err(ApiError::Forbidden(format!(
                    "`force` accepts losing data on a lagging target and needs the admin role; `{}` is {}",
                    p.name, p.role
                )));
            }
            let target = RegionName::new(req.target);
            let force = req.force.then(|| reason.clone());
            let actor = p.name.clone();
            match ask(s, |reply| Command::Failover { target, force, reason, actor, reply }).await? {
                Ok(out) => Ok((StatusCode::OK, operation(out), note)),
                Err(e) => Err(ApiError::from_command(e, "target")),
            }
        }
    })
    .await
}

/// Planned move: waits until the target's lag is ~0 (within the timeout), then moves all traffic.
#[utoipa::path(post, path = "/api/v1/switchover", tag = "operations", request_body = SwitchoverRequestDto, params(IdempotencyKey),
    responses((status = 200, description = "the plan and the operation's record id", body = OperationDto),
        (status = 400, description = "a bad field, named in `field`", body = ErrorDto),
        (status = 409, description = "refused, timed out waiting for the lag, or not the leader", body = ErrorDto),
        (status = 422, description = "the Idempotency-Key was used for a different request", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn switchover(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = AuditNote { action: "switchover".into(), ..Default::default() };
    mutation(&s, &p, &headers, "/api/v1/switchover", &body, note, |mut note| {
        let (s, p, body) = (&s, &p, &body);
        async move {
            let req: SwitchoverRequestDto = parse_json(body)?;
            let reason = reason(&req.reason)?;
            let wait = req.timeout_seconds.unwrap_or(10.0);
            if !wait.is_finite() || !(0.0..=MAX_SWITCHOVER_WAIT).contains(&wait) {
                return Err(ApiError::field("timeout_seconds", format!("{wait} is outside 0–{MAX_SWITCHOVER_WAIT}")));
            }
            let max_lag_bytes = req.max_lag_bytes.unwrap_or(0);
            if max_lag_bytes < 0 {
                return Err(ApiError::field("max_lag_bytes", "must not be negative"));
            }
            note.target = Some(req.target.clone());
            note.details = json!({ "reason": reason, "timeout_seconds": wait });
            let (target, actor) = (RegionName::new(req.target), p.name.clone());
            let timeout = Duration::from_secs_f64(wait);
            let cmd = |reply| Command::Switchover {
                target,
                timeout,
                max_lag_bytes: max_lag_bytes as u64,
                reason,
                actor,
                reply,
            };
            match ask(s, cmd).await? {
                Ok(out) => Ok((StatusCode::OK, operation(out), note)),
                Err(e) => Err(ApiError::from_command(e, "target")),
            }
        }
    })
    .await
}

/// Releases an operator hold and returns traffic to the normal weights.
#[utoipa::path(post, path = "/api/v1/failback", tag = "operations", request_body = FailbackRequestDto, params(IdempotencyKey),
    responses((status = 200, description = "the plan and the operation's record id", body = OperationDto),
        (status = 400, description = "a bad field, named in `field`", body = ErrorDto),
        (status = 409, description = "refused (nothing to fail back, lock held, not the leader)", body = ErrorDto),
        (status = 422, description = "the Idempotency-Key was used for a different request", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn failback(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = AuditNote { action: "failback".into(), ..Default::default() };
    mutation(&s, &p, &headers, "/api/v1/failback", &body, note, |mut note| {
        let (s, p, body) = (&s, &p, &body);
        async move {
            let req: FailbackRequestDto = parse_json(body)?;
            let reason = reason(&req.reason)?;
            note.details = json!({ "reason": reason });
            let actor = p.name.clone();
            match ask(s, |reply| Command::Failback { reason, actor, reply }).await? {
                Ok(out) => Ok((StatusCode::OK, operation(out), note)),
                Err(e) => Err(ApiError::from_command(e, "target")),
            }
        }
    })
    .await
}

/// Drains (or undrains) a region; kept across restarts.
#[utoipa::path(post, path = "/api/v1/regions/{name}/maintenance", tag = "operations",
    params(("name" = String, Path, description = "region name"), IdempotencyKey), request_body = MaintenanceRequestDto,
    responses((status = 200, description = "the plan (if traffic moved) and the operation's record id", body = OperationDto),
        (status = 400, description = "a bad field, named in `field`", body = ErrorDto),
        (status = 404, description = "unknown region", body = ErrorDto),
        (status = 409, description = "refused (lock held, not the leader)", body = ErrorDto),
        (status = 422, description = "the Idempotency-Key was used for a different request", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn maintenance(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = AuditNote { action: "maintenance".into(), target: Some(name.clone()), ..Default::default() };
    let route = format!("/api/v1/regions/{name}/maintenance");
    mutation(&s, &p, &headers, &route, &body, note, |mut note| {
        let (s, p, body) = (&s, &p, &body);
        async move {
            let region = RegionName::new(name.clone());
            if s.config.region(&region).is_none() {
                return Err(ApiError::NotFound(format!("name: unknown region `{name}`")));
            }
            let req: MaintenanceRequestDto = parse_json(body)?;
            let reason = reason(&req.reason)?;
            note.action = if req.drain { "maintenance.drain".into() } else { "maintenance.undrain".into() };
            note.details = json!({ "reason": reason });
            let (drain, actor) = (req.drain, p.name.clone());
            match ask(s, |reply| Command::Maintenance { region, drain, reason, actor, reply }).await? {
                Ok(out) => Ok((StatusCode::OK, operation(out), note)),
                Err(e) => Err(ApiError::from_command(e, "name")),
            }
        }
    })
    .await
}

/// The audit log, newest first: every mutating call with who, what, when, outcome and request id.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "a page of the audit log, newest first", body = AuditPageDto),
        (status = 400, description = "a bad or unknown query parameter, named in `field`", body = ErrorDto),
        (status = 403, description = "needs the operator role", body = ErrorDto)),
    security(("bearer" = [])))]
pub async fn audit(
    State(s): State<AppState>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPageDto>, ApiError> {
    let q = super::query(q)?;
    let limit = super::page_limit(q.limit)?;
    let entries = s.store.audit(q.before, limit).await.map_err(store_down)?;
    let next_before = if entries.len() as i64 == limit { entries.last().map(|e| e.at) } else { None };
    Ok(Json(AuditPageDto { entries: entries.into_iter().map(Into::into).collect(), next_before }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dto::{REASON_PATTERN, TEXT_PATTERN};
    use proptest::prelude::*;

    fn pattern(p: &str) -> regex::Regex {
        regex::Regex::new(p).expect("the document's patterns are valid regular expressions")
    }

    /// Short strings rich in the characters the rules are about: white space of every kind,
    /// control characters (C0, DEL, C1), look-alikes that are neither, and plain text.
    fn tricky_text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{0}', '\u{b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}', '\u{1680}',
            '\u{2007}', '\u{200b}', '\u{2028}', '\u{202f}', '\u{3000}', '\u{feff}', 'x', '漢', '🙂',
        ]);
        prop::collection::vec(prop_oneof![any::<char>(), special], 0..10).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn a_reason_matches_the_documented_pattern_exactly_when_the_handler_accepts_it(s in tricky_text()) {
            let documented = pattern(REASON_PATTERN).is_match(&s) && s.chars().count() <= MAX_REASON_CHARS;
            // parse_json refuses control characters in any string, then reason() the blank ones.
            let accepted = text::check("reason", &s).is_ok() && reason(&s).is_ok();
            prop_assert_eq!(documented, accepted, "{:?}", s);
        }

        #[test]
        fn free_text_matches_the_documented_pattern_exactly_when_the_edge_accepts_it(s in tricky_text()) {
            prop_assert_eq!(pattern(TEXT_PATTERN).is_match(&s), text::check("target", &s).is_ok(), "{:?}", s);
        }
    }

    #[test]
    fn malformed_json_names_the_body_and_bad_fields_name_themselves() {
        let e = parse_json::<DrillRequestDto>(b"{not json").unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field, .. } if field == "body"), "{e:?}");
        let e = parse_json::<DrillRequestDto>(br#"{"steps": [50, "x"]}"#).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field, .. } if field == "steps[1]"), "{e:?}");
        let e = parse_json::<DrillRequestDto>(br#"{"evacuate": "primary", "colour": 1}"#).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field, .. } if field == "colour"), "{e:?}");
        let e = parse_json::<MaintenanceRequestDto>(br#"{"reason": "x"}"#).unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field, .. } if field == "drain"), "{e:?}");
        let e = parse_json::<MaintenanceRequestDto>(b"").unwrap_err();
        assert!(matches!(&e, ApiError::BadRequest { field, .. } if field == "body"), "{e:?}");
    }

    #[test]
    fn a_reason_is_required_and_bounded_in_characters_as_sent() {
        assert!(reason("").is_err());
        assert!(reason("  ").is_err());
        assert!(reason(&"x".repeat(501)).is_err());
        // 500 characters of three bytes each: within the limit the document states.
        assert_eq!(reason(&"漢".repeat(500)).unwrap().chars().count(), 500);
        // Counted as sent: padding past 500 characters is refused even when trimming would fit.
        assert!(reason(&format!(" {} ", "x".repeat(499))).is_err());
        assert_eq!(reason(" game day ").unwrap(), "game day");
    }
}
