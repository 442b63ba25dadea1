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
        for method in
            item.as_object().unwrap().keys().filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
        {
            assert!(routes.iter().any(|(m, p)| m == method && p == path), "documented but not routed: {method} {path}");
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

fn static_doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

/// Every (method, path, operation) of a document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

/// A response of an operation, its `$ref` to `#/components/responses/…` followed.
fn response<'a>(doc: &'a Value, op: &'a Value, code: &str) -> Option<&'a Value> {
    let r = op["responses"].get(code)?;
    match r["$ref"].as_str() {
        Some(reference) => doc.pointer(&reference.replacen("#/", "/", 1)),
        None => Some(r),
    }
}

fn secured(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| !s.is_empty())
}

/// The configuration shipped in the repository, with auth on (public reads off) when `auth`.
fn shipped_config(auth: bool) -> Config {
    let mut text = include_str!("../../../regions.toml").to_string();
    if auth {
        text.push_str("\n[auth]\ntokens_env = \"FO_TOKENS\"\n");
    }
    let hash = crate::auth::hash_token("t0ken");
    let env = move |k: &str| match k {
        "FO_TOKENS" => Some(format!("ops operator {hash}")),
        k if k.ends_with("API_KEY") || k.ends_with("_KEY") => Some("example".into()),
        _ => None,
    };
    Config::parse(&text, "regions.toml", &env).expect("the shipped regions.toml is valid")
}

#[test]
fn every_operation_documents_rate_limits_timeouts_and_internal_errors_with_the_error_body() {
    let doc = static_doc();
    for (method, path, op) in operations(&doc) {
        for code in ["429", "500", "503"] {
            let r = response(&doc, &op, code).unwrap_or_else(|| panic!("{method} {path} lacks {code}"));
            // The probes' own 503 is their verdict, with its own body (documented by the handler).
            if code == "503" && ["/healthz", "/readyz"].contains(&path.as_str()) {
                assert!(r["content"]["application/json"]["schema"].is_object(), "{method} {path}");
                continue;
            }
            assert_eq!(
                r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorDto",
                "{method} {path} {code}"
            );
        }
        let limited = response(&doc, &op, "429").unwrap();
        assert_eq!(limited["headers"]["Retry-After"]["schema"]["type"], "integer", "{method} {path}");
        if secured(&op) {
            let unauthorised = response(&doc, &op, "401").unwrap_or_else(|| panic!("{method} {path} lacks 401"));
            assert!(unauthorised["headers"]["WWW-Authenticate"].is_object(), "{method} {path}");
            assert!(response(&doc, &op, "403").is_some(), "{method} {path} lacks 403");
        } else {
            assert!(op["responses"].get("401").is_none(), "{method} {path} is public but documents a 401");
        }
    }
}

#[test]
fn an_operation_without_annotations_still_gets_the_common_responses_once() {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    let mut doc = utoipa::openapi::OpenApiBuilder::new().build();
    let secured = OperationBuilder::new()
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .response("200", ResponseBuilder::new().description("ok"))
        .build();
    let open = OperationBuilder::new().response("403", ResponseBuilder::new().description("own 403")).build();
    doc.paths.paths.insert("/new/secured".into(), PathItem::new(HttpMethod::Post, secured));
    doc.paths.paths.insert("/new/open".into(), PathItem::new(HttpMethod::Get, open));
    add_common_responses(&mut doc);
    add_common_responses(&mut doc);
    let v = serde_json::to_value(&doc).unwrap();
    let codes = |p: &str, m: &str| -> Vec<String> {
        v["paths"][p][m]["responses"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(codes("/new/secured", "post"), ["200", "401", "403", "429", "500", "503"]);
    // A public route: no 401 or 403 (not even one it documented itself, which cannot happen).
    assert_eq!(codes("/new/open", "get"), ["429", "500", "503"]);
    assert!(v["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object());
}

#[test]
fn ids_in_paths_are_uuids_and_times_are_date_times() {
    let doc = static_doc();
    let mut seen = (0, 0);
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            match (p["in"].as_str().unwrap(), p["name"].as_str().unwrap()) {
                ("path", "id") => {
                    seen.0 += 1;
                    assert_eq!(p["schema"]["format"], "uuid", "{method} {path}");
                }
                ("query", "before" | "since") => {
                    seen.1 += 1;
                    assert_eq!(p["schema"]["format"], "date-time", "{method} {path}");
                }
                _ => {}
            }
        }
    }
    assert_eq!(seen, (3, 3), "drills/{{id}}, its abort and incidents/{{id}}; events, audit and lag");
}

#[test]
fn limits_and_steps_state_their_ranges() {
    let doc = static_doc();
    let mut limits = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let (min, max) = (&p["schema"]["minimum"], &p["schema"]["maximum"]);
            match p["name"].as_str().unwrap() {
                "limit" => {
                    limits += 1;
                    assert_eq!((min, max), (&json!(1), &json!(500)), "{method} {path}");
                }
                "step" => assert_eq!((min, max), (&json!(1), &json!(86400)), "{method} {path}"),
                _ => {}
            }
        }
    }
    assert_eq!(limits, 4, "events, drills, incidents, audit");
    let steps = &doc["components"]["schemas"]["DrillRequestDto"]["properties"]["steps"];
    assert_eq!((&steps["items"]["minimum"], &steps["items"]["maximum"]), (&json!(1), &json!(100)));
    assert_eq!(steps["uniqueItems"], true);
}

#[test]
fn request_bodies_refuse_unknown_fields_and_state_the_text_rules() {
    let doc = static_doc();
    let schemas = &doc["components"]["schemas"];
    for name in [
        "DrillRequestDto",
        "AbortRequestDto",
        "FailoverRequestDto",
        "SwitchoverRequestDto",
        "FailbackRequestDto",
        "MaintenanceRequestDto",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        let reason = &schemas[name]["properties"]["reason"];
        assert_eq!(reason["pattern"], super::super::dto::REASON_PATTERN, "{name}");
        assert_eq!(reason["maxLength"], 500, "{name}");
        let required = schemas[name]["required"].as_array().cloned().unwrap_or_default();
        assert_eq!(required.contains(&json!("reason")), name != "AbortRequestDto", "{name}: {required:?}");
    }
    assert_eq!(schemas["EventKindDto"]["enum"], json!(["transition", "plan", "alarm", "audit"]));
    assert_eq!(schemas["HealthDto"]["enum"], json!(["up", "degraded", "down", "unknown"]));
    assert_eq!(schemas["LayerDto"]["enum"], json!(["infra", "middleware", "app"]));
    assert_eq!(schemas["RegionRoleDto"]["enum"], json!(["primary", "standby", "dr"]));
}

#[test]
fn the_schema_enums_are_the_words_the_domain_serialises() {
    use crate::health::Health;
    use crate::observation::Outcome;
    use crate::region::{Layer, Role};
    let doc = static_doc();
    let words = |values: Vec<Value>| json!(values);
    let schemas = &doc["components"]["schemas"];
    let health = [Health::Up, Health::Degraded, Health::Down, Health::Unknown];
    assert_eq!(schemas["HealthDto"]["enum"], words(health.iter().map(|h| json!(h)).collect()));
    assert_eq!(schemas["LayerDto"]["enum"], words(Layer::ALL.iter().map(|l| json!(l)).collect()));
    let roles = [Role::Primary, Role::Standby, Role::Dr];
    assert_eq!(schemas["RegionRoleDto"]["enum"], words(roles.iter().map(|r| json!(r)).collect()));
    let outcomes = [Outcome::Ok, Outcome::Degraded, Outcome::Failed];
    assert_eq!(schemas["OutcomeDto"]["enum"], words(outcomes.iter().map(|o| json!(o)).collect()));
    let kinds = crate::store::EventKind::parse;
    for word in schemas["EventKindDto"]["enum"].as_array().unwrap() {
        let k = kinds(word.as_str().unwrap()).expect("an event kind the store knows");
        assert_eq!(json!(super::super::dto::EventKindDto::from(k)), *word);
    }
}

#[test]
fn the_served_document_asks_a_token_exactly_where_the_configuration_does() {
    let private = document(&shipped_config(true)).unwrap();
    let public_reads_off: Vec<(String, String, bool)> =
        operations(&private).into_iter().map(|(m, p, op)| (m, p, secured(&op))).collect();
    for (method, path, is_secured) in &public_reads_off {
        let open = ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"].contains(&path.as_str());
        assert_eq!(*is_secured, !open, "{method} {path} with [auth] and public reads off");
    }
    // Without [auth]: reads open, mutations still marked (they are refused with a 403).
    let open = document(&shipped_config(false)).unwrap();
    for (method, path, op) in operations(&open) {
        assert_eq!(secured(&op), method == "post", "{method} {path} without [auth]");
        assert_eq!(op["responses"].get("401").is_some(), method == "post", "{method} {path}");
    }
}

#[test]
fn the_served_document_lists_the_configured_regions_wherever_a_region_is_named() {
    let doc = document(&shipped_config(true)).unwrap();
    let regions = json!(["primary", "standby", "dr"]);
    let lag = &doc["paths"]["/api/v1/regions/{name}/lag"]["get"]["parameters"][0];
    assert_eq!((&lag["name"], &lag["schema"]["enum"]), (&json!("name"), &regions));
    let events = doc["paths"]["/api/v1/events"]["get"]["parameters"].as_array().unwrap();
    let region = events.iter().find(|p| p["name"] == "region").unwrap();
    assert_eq!(region["schema"]["enum"], regions);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["FailoverRequestDto"]["properties"]["target"]["enum"], regions);
    assert_eq!(schemas["SwitchoverRequestDto"]["properties"]["target"]["enum"], regions);
    assert_eq!(schemas["DrillRequestDto"]["properties"]["evacuate"]["enum"], json!(["primary", "standby", "dr", null]));
    // The drill's cross-field rules: one of evacuate and target, not the same region twice, and a
    // synthetic-failure drill with evacuate only (no target, steps or dry run).
    let drill = &schemas["DrillRequestDto"];
    assert_eq!(drill["anyOf"].as_array().unwrap().len(), 2);
    let refused = drill["not"]["anyOf"].as_array().unwrap();
    assert_eq!(refused.len(), 4);
    assert_eq!(refused[3]["properties"]["synthetic_failure"]["const"], true);
    assert_eq!(refused[3]["anyOf"].as_array().unwrap().len(), 5);
    // Indexing must not have planted nulls: every operation's parameters are a list or absent.
    for (method, path, op) in operations(&doc) {
        assert!(op.get("parameters").is_none_or(Value::is_array), "{method} {path}: {}", op["parameters"]);
    }
}

/// Checks `value` against `schema` of `doc` for what the response schemas use (`$ref`,
/// `type` (one or a list), `required`, `properties`, `additionalProperties: false`, `items`,
/// `enum`, `allOf`, `format: uuid | date-time`); returns every mismatch with its JSON path.
fn mismatches(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc.pointer(&r.replacen("#/", "/", 1)).unwrap_or_else(|| panic!("dangling {r}"));
        return mismatches(doc, target, value, at, out);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        mismatches(doc, part, value, at, out);
    }
    let type_name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits = |t: &str| t == type_name || (t == "number" && type_name == "integer");
    if !allowed.is_empty() && !allowed.iter().any(|t| fits(t)) {
        out.push(format!("{at}: {type_name}, the schema says {allowed:?}"));
        return;
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {values:?}"));
    }
    match (value, schema["format"].as_str()) {
        (Value::String(s), Some("uuid")) if uuid::Uuid::parse_str(s).is_err() => out.push(format!("{at}: not a uuid")),
        (Value::String(s), Some("date-time")) if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
            out.push(format!("{at}: not a date-time"))
        }
        _ => {}
    }
    match value {
        Value::Object(map) => {
            for key in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !map.contains_key(key) {
                    out.push(format!("{at}: `{key}` is required"));
                }
            }
            for (k, v) in map {
                match schema["properties"].get(k) {
                    Some(s) => mismatches(doc, s, v, &format!("{at}.{k}"), out),
                    None if schema["additionalProperties"] == json!(false) => {
                        out.push(format!("{at}.{k}: not allowed"))
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) if schema.get("items").is_some() => {
            for (i, item) in items.iter().enumerate() {
                mismatches(doc, &schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Asserts that `value` fits the response schema `name`, and that every property the schema
/// lists is one the value has (so a renamed domain field fails here, not in a client).
fn assert_fits(doc: &Value, name: &str, value: &Value) {
    let schema = &doc["components"]["schemas"][name];
    let mut out = Vec::new();
    mismatches(doc, schema, value, name, &mut out);
    for key in schema["properties"].as_object().into_iter().flat_map(|p| p.keys()) {
        if value.get(key).is_none() {
            out.push(format!("{name}.{key}: documented, never serialised"));
        }
    }
    assert!(out.is_empty(), "{value:#}\n{out:#?}");
}

#[test]
fn the_mismatch_finder_finds_mismatches() {
    let doc = static_doc();
    let mut out = Vec::new();
    let bad = json!({ "events": [{ "id": "x", "at": "yesterday", "kind": "gossip", "message": 1 }], "extra": 1 });
    mismatches(&doc, &json!({ "$ref": "#/components/schemas/EventsPageDto" }), &bad, "page", &mut out);
    // id, at, kind, message and the missing `details`; `extra` is allowed (responses do not say
    // additionalProperties: false, so a new field does not break a client).
    assert_eq!(out.len(), 5, "{out:#?}");
}

#[test]
fn status_drill_incident_event_and_audit_values_fit_their_documented_schemas() {
    use crate::drill::{DrillId, DrillRecord, DrillReport, DrillSpec, DrillState};
    use crate::plan::Weights;
    let doc = static_doc();
    let at = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").unwrap().with_timezone(&chrono::Utc);

    let config = shipped_config(true);
    let mut status = crate::status::Status {
        generated_at: at,
        vantage: config.orchestrator.vantage.clone(),
        leadership: crate::coord::Leadership::none("single"),
        regions: vec![],
        plan: None,
        acting: crate::status::Acting { active: false, reasons: vec!["starting".into()], decided_at: None },
        alarms: vec![],
        store: Default::default(),
        drift: vec![],
        failed_over: false,
        writer: config.orchestrator.vantage.clone(),
        promotion: vec![],
        drill: None,
        operator_hold: None,
        coordination: crate::status::CoordinationStatus { backend: None, quorum: 1, vantages: vec![] },
    };
    assert_fits(&doc, "StatusDto", &json!(status));
    status.acting.decided_at = Some(at);
    assert_fits(&doc, "StatusDto", &json!(status));

    let spec = DrillSpec {
        evacuate: Some(crate::region::RegionName::new("primary")),
        target: None,
        steps: vec![50, 100],
        hold_ms: 1000,
        dry_run: true,
        reason: "game day".into(),
        schedule: None,
        planned: vec![],
        synthetic: false,
    };
    let drill = DrillRecord {
        id: DrillId(uuid::Uuid::new_v4()),
        requested_at: at,
        actor: "ops".into(),
        spec,
        baseline: Weights::default(),
        state: DrillState::DryRun,
        step: None,
        report: DrillReport::default(),
        updated_at: at,
        finished_at: Some(at),
    };
    assert_fits(&doc, "DrillDto", &json!(drill));
    assert_fits(&doc, "DrillsPageDto", &json!({ "drills": [drill] }));

    let incident: crate::incidents::Incident = serde_json::from_value(json!({
        "id": uuid::Uuid::new_v4(), "region": "primary", "opened_at": at, "plan_id": null, "kind": "failover",
        "from_weights": null, "to_weights": null, "timeline": [], "verified_at": null
    }))
    .unwrap();
    let mut served = json!(incident);
    served["figures"] = json!(incident.figures());
    assert_fits(&doc, "IncidentDto", &served);

    let event = crate::store::Event {
        id: uuid::Uuid::new_v4(),
        at,
        kind: crate::store::EventKind::Plan,
        region: None,
        message: "failover".into(),
        details: json!({}),
    };
    let page = super::super::dto::EventsPageDto { events: vec![event.into()], next_before: Some(at) };
    assert_fits(&doc, "EventsPageDto", &json!(page));
}
