//! The OpenAPI 3 document, generated from the handlers' annotations and served at `/api/v1/openapi.json`.
//!
//! The document is the API's contract, and is meant to be *true*: every status a route can
//! answer is in it with its body, and a request its schemas allow is one the handler accepts.
//! Three steps make it so:
//! - the handlers' `#[utoipa::path]` annotations and the bodies in [`super::dto`] give each
//!   route's own statuses, parameters (ranges, formats, enums) and body shapes;
//! - [`CommonResponses`] (a [`Modify`]) then walks *every* operation, so routes added later get
//!   them too: 401 and 403 on routes that need a token, and on every route 429 (a rate limit,
//!   with `Retry-After`), 500 and 503 (the request timeout, the store unreachable), each with
//!   the [`ErrorDto`] body;
//! - [`document`] adapts it to the running configuration: which routes need a token under this
//!   `[auth]` ([`crate::auth::access`]), and the configured region names as `enum`s wherever a
//!   region is named (path, query, bodies), so a client (or a fuzzer) knows the valid values.
//!
//! Unit tests walk the router's route table ([`super::route_table`]) and fail when a route is
//! missing from the document (or documented but not routed), and check the rules above.

use serde_json::{Value, json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::dto::{
    AbortRequestDto, ActingDto, AuditEntryDto, AuditPageDto, CheckStatusDto, DrillDto, DrillRequestDto,
    DrillWithTimelineDto, DrillsPageDto, ErrorDto, EventDto, EventKindDto, EventsPageDto, FailbackRequestDto,
    FailoverRequestDto, HealthDto, IncidentDto, IncidentsPageDto, LagPointDto, LagSeriesDto, LayerDto, LayerStatusDto,
    LeadershipDto, MaintenanceRequestDto, OperationDto, OutcomeDto, RegionRoleDto, RegionStatusDto, StatusDto,
    SwitchoverRequestDto,
};
use super::operator;
use crate::auth::Access;
use crate::config::Config;

/// Routes deliberately left out of the document: the dashboard page and its assets.
pub const UNDOCUMENTED: &[&str] = &["/", "/assets/{file}"];

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds the responses any route can give to every operation (see the module doc).
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        add_common_responses(doc);
    }
}

/// The statuses every operation documents, each a `#/components/responses/…` entry.
const EVERY_ROUTE: [(&str, &str); 3] = [("429", "TooManyRequests"), ("500", "Internal"), ("503", "Unavailable")];

/// The statuses an operation that needs a token documents.
const SECURED_ROUTE: [(&str, &str); 2] = [("401", "Unauthorized"), ("403", "Forbidden")];

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorDto"))))
}

/// The header every 401 carries.
fn www_authenticate() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some("`Bearer realm=\"failover-orchestrator\"`"))
        .build()
}

fn common_components() -> [(&'static str, Response); 5] {
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
    [
        (
            "Unauthorized",
            error_response("no bearer token, or one that is not valid")
                .header("WWW-Authenticate", www_authenticate())
                .build(),
        ),
        ("Forbidden", error_response("the token's role does not allow this (or mutations are disabled)").build()),
        (
            "TooManyRequests",
            error_response("rate limited (mutations, failed authentication): retry after `Retry-After` seconds")
                .header(
                    "Retry-After",
                    HeaderBuilder::new().schema(seconds).description(Some("seconds to wait before retrying")).build(),
                )
                .build(),
        ),
        ("Internal", error_response("an internal error: a generic message; the log has the detail").build()),
        (
            "Unavailable",
            error_response("the request timed out (30 s), the store is unreachable, or the engine is shutting down")
                .build(),
        ),
    ]
}

/// Every operation of a path item, with its method.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
}

fn is_secured(op: &Operation) -> bool {
    op.security.as_ref().is_some_and(|s| !s.is_empty())
}

/// Adds 429, 500 and 503 to every operation, and 401 and 403 to those that need a token
/// (and takes them off those that do not); a status an annotation already documents keeps
/// its own description. Idempotent: [`document`] runs it again once it has set the security.
pub fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, response) in common_components() {
        components.responses.insert(name.to_string(), RefOr::T(response));
    }
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            let secured = is_secured(op);
            let responses = &mut op.responses.responses;
            for (code, name) in SECURED_ROUTE {
                if secured {
                    let response = responses.entry(code.to_string()).or_insert_with(|| common_ref(name));
                    // A route's own 401 (its wording) still says how to authenticate.
                    if let (RefOr::T(own), "401") = (response, code) {
                        own.headers.entry("WWW-Authenticate".to_string()).or_insert_with(www_authenticate);
                    }
                } else {
                    responses.remove(code);
                }
            }
            for (code, name) in EVERY_ROUTE {
                responses.entry(code.to_string()).or_insert_with(|| common_ref(name));
            }
        }
    }
}

fn common_ref(name: &str) -> RefOr<Response> {
    RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "failover-orchestrator", description = "Regional failover orchestrator: status, history, drills and manual control."),
    paths(
        super::healthz, super::readyz, super::metrics, super::status, super::events, super::stream, super::lag_series, super::openapi_json,
        operator::start_drill, operator::list_drills, operator::get_drill, operator::abort_drill,
        operator::failover, operator::switchover, operator::failback, operator::maintenance, operator::audit,
        super::incidents::list, super::incidents::one,
        super::ticket::create, super::whoami,
    ),
    components(schemas(
        DrillRequestDto, AbortRequestDto, FailoverRequestDto, SwitchoverRequestDto, FailbackRequestDto,
        MaintenanceRequestDto, OperationDto, ErrorDto, StatusDto, LeadershipDto, RegionStatusDto, LayerStatusDto,
        CheckStatusDto, ActingDto, HealthDto, RegionRoleDto, LayerDto, OutcomeDto, EventKindDto, EventDto,
        EventsPageDto, AuditEntryDto, AuditPageDto, DrillDto, DrillWithTimelineDto, DrillsPageDto, IncidentDto,
        IncidentsPageDto, LagPointDto, LagSeriesDto, crate::drill::DrillState,
    )),
    modifiers(&Bearer, &CommonResponses)
)]
pub struct ApiDoc;

/// The document as this orchestrator serves it: who needs a token under its `[auth]`, and the
/// configured regions as `enum`s.
///
/// # Errors
/// When the document does not serialise (it always does; the handler answers 500 if not).
pub fn document(config: &Config) -> Result<Value, serde_json::Error> {
    let mut doc = ApiDoc::openapi();
    set_security(&mut doc, config);
    add_common_responses(&mut doc);
    let mut v = serde_json::to_value(&doc)?;
    let names: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
    restrict_regions(&mut v, &names);
    Ok(v)
}

/// Marks each operation with the bearer scheme exactly when [`crate::auth::access`] asks a
/// token for it under this configuration. Without `[auth]`, reads are open and mutations
/// stay marked (they are refused with a 403 saying how to configure tokens).
fn set_security(doc: &mut utoipa::openapi::OpenApi, config: &Config) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations_mut(item) {
            let public = match &config.auth {
                None => method == "GET",
                Some(a) => matches!(
                    crate::auth::access(
                        method,
                        path,
                        a.healthz_public,
                        config.orchestrator.metrics_public,
                        a.public_reads
                    ),
                    Access::Public
                ),
            };
            op.security =
                if public { None } else { Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]) };
        }
    }
}

/// Puts the configured region names wherever a region is named: the `{name}` path
/// parameter, the `region` query parameter, and the region fields of the request bodies;
/// and states the drill's cross-field rules (`evacuate` or `target`, not the same region).
fn restrict_regions(doc: &mut Value, names: &[&str]) {
    // `get_mut`, not indexing: indexing a `Value` mutably inserts `null` for a missing key.
    let one_of_them = json!({ "type": "string", "enum": names });
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for op in operations {
        let params = op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten();
        for p in params {
            let named_region = matches!(
                (p.get("in").and_then(Value::as_str), p.get("name").and_then(Value::as_str)),
                (Some("path"), Some("name")) | (Some("query"), Some("region"))
            );
            if named_region {
                p["schema"] = one_of_them.clone();
            }
        }
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas") else { return };
    let mut or_null: Vec<Value> = names.iter().map(|n| json!(n)).collect();
    or_null.push(Value::Null);
    for (schema, field, nullable) in [
        ("DrillRequestDto", "evacuate", true),
        ("DrillRequestDto", "target", true),
        ("FailoverRequestDto", "target", false),
        ("SwitchoverRequestDto", "target", false),
    ] {
        if let Some(p) = schemas.pointer_mut(&format!("/{schema}/properties/{field}")).and_then(Value::as_object_mut) {
            p.remove("pattern");
            p.remove("minLength");
            p.insert("enum".into(), if nullable { json!(or_null) } else { json!(names) });
        }
    }
    if let Some(drill) = schemas.get_mut("DrillRequestDto").and_then(Value::as_object_mut) {
        let named = |f: &str| json!({ "required": [f], "properties": { f: { "type": "string" } } });
        drill.insert("anyOf".into(), json!([named("evacuate"), named("target")]));
        let same: Vec<Value> = names
            .iter()
            .map(|n| json!({ "required": ["evacuate", "target"], "properties": { "evacuate": { "const": n }, "target": { "const": n } } }))
            .collect();
        // A synthetic-failure drill names the region whose failure is injected and nothing the
        // automation decides (`drill::validate`): with `synthetic_failure: true`, a target, steps,
        // a dry run, no `evacuate` or a hold over its maximum is refused.
        let max_hold = crate::drill::synthetic::MAX_HOLD.as_secs();
        let synthetic_bad = json!({
            "required": ["synthetic_failure"],
            "properties": { "synthetic_failure": { "const": true } },
            "anyOf": [
                { "required": ["target"], "properties": { "target": { "type": "string" } } },
                { "required": ["steps"], "properties": { "steps": { "type": "array" } } },
                { "required": ["dry_run"], "properties": { "dry_run": { "const": true } } },
                { "not": { "required": ["evacuate"], "properties": { "evacuate": { "type": "string" } } } },
                { "required": ["hold_seconds"], "properties": { "hold_seconds": { "type": "number", "exclusiveMinimum": max_hold } } },
            ],
        });
        let mut refused = same;
        refused.push(synthetic_bad);
        drill.insert("not".into(), json!({ "anyOf": refused }));
    }
}

#[cfg(test)]
mod tests;
