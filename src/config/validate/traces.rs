//! `[traces]`: where incident traces go over OTLP/HTTP. The endpoint is `traces.otlp_endpoint`,
//! else the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the whole traces URL), else
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL); the file wins over the environment. None of them
//! set: traces are off and nothing is exported. Also the service name and the export timeout.

use std::time::Duration;

use crate::config::TracesConfig;
use crate::config::error::Problems;
use crate::config::raw::RawTraces;
use crate::redact;

/// The standard variable holding the whole OTLP traces URL (used as it is).
const ENV_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The standard variable holding the OTLP base URL (`/v1/traces` is added).
const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable naming the service.
const ENV_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// The traces path of an OTLP/HTTP receiver.
const TRACES_PATH: &str = "/v1/traces";
/// `service.name` when neither the file nor the environment names one.
const DEFAULT_SERVICE_NAME: &str = "failover-orchestrator";
/// Bound of one export request when `traces.timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Validates `[traces]` and the standard variables; `None` when traces are off or a problem
/// was pushed.
pub(super) fn validate(
    raw: &RawTraces,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<TracesConfig> {
    let service_name = service_name(raw, env, p);
    let timeout = match raw.timeout {
        Some(t) if t.is_zero() => {
            p.push("traces.timeout", "is zero", "use e.g. \"10s\", or remove the key for the default");
            None
        }
        t => Some(t.unwrap_or(DEFAULT_TIMEOUT)),
    };
    // An empty variable counts as unset (as OpenTelemetry's SDKs read it); an empty key does not.
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (from, value, whole_url) = if let Some(v) = &raw.otlp_endpoint {
        ("traces.otlp_endpoint", v.clone(), false)
    } else if let Some(v) = set(ENV_TRACES_ENDPOINT) {
        (ENV_TRACES_ENDPOINT, v, true)
    } else if let Some(v) = set(ENV_ENDPOINT) {
        (ENV_ENDPOINT, v, false)
    } else {
        return None;
    };
    let endpoint = endpoint(from, &value, whole_url, p);
    Some(TracesConfig { endpoint: endpoint?, endpoint_from: from, service_name: service_name?, timeout: timeout? })
}

/// `traces.service_name`, else `OTEL_SERVICE_NAME`, else the default; printable text.
fn service_name(raw: &RawTraces, env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) -> Option<String> {
    let (key, name) = match &raw.service_name {
        Some(n) => ("traces.service_name", n.clone()),
        None => match env(ENV_SERVICE_NAME).filter(|v| !v.trim().is_empty()) {
            Some(n) => (ENV_SERVICE_NAME, n),
            None => return Some(DEFAULT_SERVICE_NAME.to_string()),
        },
    };
    if name.trim().is_empty() {
        p.push(key, "is empty", format!("name the service, e.g. \"{DEFAULT_SERVICE_NAME}\", or remove the key"));
        return None;
    }
    if name.chars().any(char::is_control) {
        p.push(key, "holds a control character", "write the service name without them");
        return None;
    }
    Some(name)
}

/// The traces URL from `value` (found at `key`): an http(s) URL without credentials or
/// fragment; `/v1/traces` is added to a base URL unless its path already ends so.
fn endpoint(key: &str, value: &str, whole_url: bool, p: &mut Problems) -> Option<String> {
    // The value may hold a secret (a password, a token parameter): shown redacted only.
    let shown = redact::url(value);
    let example = if whole_url { "http://127.0.0.1:4318/v1/traces" } else { "http://127.0.0.1:4318" };
    let url = match reqwest::Url::parse(value.trim()) {
        Ok(u) => u,
        Err(e) => {
            let what =
                if value.trim().is_empty() { "is empty".to_string() } else { format!("`{shown}` is not a URL ({e})") };
            p.push(
                key,
                what,
                format!(
                    "give the OTLP/HTTP receiver's URL, e.g. \"{example}\"{}",
                    if whole_url { "" } else { " (/v1/traces is added), or remove it to turn traces off" }
                ),
            );
            return None;
        }
    };
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        p.push(
            key,
            format!("`{shown}` is not an http(s) URL with a host"),
            format!(
                "traces go over OTLP/HTTP with protobuf: write e.g. \"{example}\" (port 4318; gRPC on 4317 is not supported)"
            ),
        );
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        p.push(
            key,
            format!("`{shown}` holds credentials, which the exporter does not send"),
            "remove them from the URL and give them as a header in OTEL_EXPORTER_OTLP_HEADERS, \
             e.g. authorization=Basic%20<base64 of user:password>",
        );
        return None;
    }
    if url.fragment().is_some() {
        p.push(key, format!("`{shown}` has a fragment (#…)"), format!("remove it, e.g. \"{example}\""));
        return None;
    }
    let mut url = url;
    if !whole_url && !url.path().ends_with(TRACES_PATH) {
        let path = format!("{}{TRACES_PATH}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Some(url.to_string())
}
