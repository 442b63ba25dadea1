//! The OpenAPI 3 document, generated from the handlers' annotations and served at `/api/v1/openapi.json`.
//!
//! A unit test walks the router's route table ([`super::route_table`]) and fails
//! when a route is missing from the document (or documented but not routed).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::dto::{
    AbortRequestDto, DrillRequestDto, ErrorDto, FailbackRequestDto, FailoverRequestDto, MaintenanceRequestDto,
    OperationDto, SwitchoverRequestDto,
};
use super::operator;

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
        MaintenanceRequestDto, OperationDto, ErrorDto,
    )),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document_and_every_documented_path_is_routed() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routes = super::super::route_table();
        let mut missing = Vec::new();
        for (method, path) in &routes {
            if UNDOCUMENTED.contains(path) {
                continue;
            }
            if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
        for (path, item) in paths {
            for method in item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
            {
                assert!(
                    routes.iter().any(|(m, p)| m == method && p == path),
                    "documented but not routed: {method} {path}"
                );
            }
        }
    }

    #[test]
    fn the_document_is_openapi_3_with_bearer_auth() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert!(doc["components"]["schemas"]["DrillRequestDto"]["properties"]["steps"].is_object());
    }
}
