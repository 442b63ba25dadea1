//! Validation tests: every error names the key and the fix; all problems are listed at once.

use super::*;

const GOOD: &str = r#"
[orchestrator]
vantage = "primary"
listen = "127.0.0.1:8080"
store_dsn = "postgres://fo:s3cret@127.0.0.1:5432/fo"

[policy]
failover_order = ["primary", "standby", "dr"]
dwell = "30s"
failback = "auto"
failback_hold = "1m"

[[regions]]
name = "primary"
role = "primary"
weight = 80
address = "127.0.0.11"
[regions.postgres]
dsn = "postgres://postgres@127.0.0.11:5432/postgres"
[[regions.checks]]
name = "app"
layer = "app"
type = "http"
url = "http://127.0.0.11:8000/health"
degraded_latency = "300ms"
interval = "1s"
timeout = "800ms"
[[regions.checks]]
name = "db"
layer = "middleware"
type = "postgres"

[[regions]]
name = "standby"
role = "standby"
weight = 20
address = "127.0.0.12"
[[regions.checks]]
name = "tcp"
layer = "infra"
type = "tcp"
target = "127.0.0.12:8000"

[[regions]]
name = "dr"
role = "dr"
weight = 0
[[regions.checks]]
name = "tcp"
layer = "infra"
type = "tcp"
target = "127.0.0.13:8000"

[[providers]]
type = "file"
path = "/tmp/plan.json"
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn problems(text: &str) -> Vec<Problem> {
    match Config::parse(text, "test.toml", &no_env) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn good_config_parses_with_defaults() {
    let c = Config::parse(GOOD, "test.toml", &no_env).expect("valid");
    assert_eq!(c.regions.len(), 3);
    let app = &c.regions[0].checks[0];
    assert_eq!(app.fall, 3);
    assert_eq!(app.rise, 2);
    assert_eq!(c.policy.failback_step, 20);
    assert!(matches!(c.regions[0].checks[1].kind, CheckKind::Postgres { .. }));
}

#[test]
fn summary_hides_passwords() {
    let c = Config::parse(GOOD, "test.toml", &no_env).expect("valid");
    let s = c.summary();
    assert!(!s.contains("s3cret"), "{s}");
    assert!(s.contains("fo:***@127.0.0.1"), "{s}");
}

#[test]
fn env_overrides_the_store_dsn() {
    let env = |k: &str| (k == ENV_STORE_DSN).then(|| "postgres://other@10.0.0.1/x".to_string());
    let c = Config::parse(GOOD, "t", &env).expect("valid");
    assert_eq!(c.orchestrator.store_dsn.expose_secret(), "postgres://other@10.0.0.1/x");
}

#[test]
fn unknown_keys_are_errors() {
    let text = GOOD.replace("dwell = \"30s\"", "dwel = \"30s\"");
    match Config::parse(&text, "t.toml", &no_env) {
        Err(ConfigError::Parse { message, .. }) => assert!(message.contains("dwel"), "{message}"),
        other => panic!("expected parse error, got {other:?}"),
    }
}

#[test]
fn timeout_above_interval_names_key_and_fix() {
    let text = GOOD.replace("timeout = \"800ms\"", "timeout = \"6s\"");
    let p = problems(&text);
    let t = p.iter().find(|p| p.key == "regions[0].checks[0].timeout").expect("timeout problem");
    assert!(t.what.contains("6s"), "{}", t.what);
    assert!(t.fix.contains("interval"));
}

#[test]
fn all_problems_are_listed_at_once() {
    let text = GOOD
        .replace("weight = 80", "weight = 70")
        .replace("role = \"dr\"", "role = \"disaster\"")
        .replace("fall = 3", "")
        .replace("failback = \"auto\"", "failback = \"sometimes\"");
    let p = problems(&text);
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"regions[2].role"), "{keys:?}");
    assert!(keys.contains(&"policy.failback"), "{keys:?}");
    assert!(p.len() >= 2);
}

#[test]
fn weights_must_sum_to_100() {
    let p = problems(&GOOD.replace("weight = 80", "weight = 70"));
    assert!(p.iter().any(|p| p.key == "regions[].weight" && p.what.contains("90")), "{p:?}");
}

#[test]
fn http_check_needs_a_url() {
    let p = problems(&GOOD.replace("url = \"http://127.0.0.11:8000/health\"", ""));
    assert!(p.iter().any(|p| p.key == "regions[0].checks[0].url"), "{p:?}");
}

#[test]
fn vantage_must_be_a_region() {
    let p = problems(&GOOD.replace("vantage = \"primary\"", "vantage = \"mars\""));
    assert!(p.iter().any(|p| p.key == "orchestrator.vantage" && p.fix.contains("\"primary\"")), "{p:?}");
}

#[test]
fn powerdns_key_must_come_from_env_or_file() {
    let text = format!(
        "{GOOD}\n[[providers]]\ntype = \"powerdns\"\napi_url = \"http://127.0.0.1:8081\"\napi_key_env = \"PDNS_KEY\"\nzone = \"example.test.\"\nrecord = \"app.example.test.\"\n"
    );
    let p = problems(&text);
    assert!(p.iter().any(|p| p.key == "providers[1].api_key_env" && p.what.contains("PDNS_KEY")), "{p:?}");
    let env = |k: &str| (k == "PDNS_KEY").then(|| "k".to_string());
    assert!(Config::parse(&text, "t", &env).is_ok());
}

#[test]
fn redact_dsn_handles_both_forms() {
    assert_eq!(redact_dsn("postgres://u:p@h:5/db"), "postgres://u:***@h:5/db");
    assert_eq!(redact_dsn("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_dsn("host=h password=x user=u"), "host=h password=*** user=u");
}

#[test]
fn auth_tokens_come_from_the_environment_and_bad_lines_are_named_without_their_content() {
    let hash = crate::auth::hash_token("t0ken");
    let text = format!("{GOOD}\n[auth]\ntokens_env = \"FO_TOKENS\"\n");
    let env = |k: &str| (k == "FO_TOKENS").then(|| format!("ops operator {hash}"));
    let c = Config::parse(&text, "t", &env).unwrap();
    let auth = c.auth.unwrap();
    assert_eq!(auth.tokens.authenticate("t0ken").map(|p| p.name), Some("ops".into()));
    assert!(!auth.public_reads && auth.healthz_public);

    let env = |k: &str| (k == "FO_TOKENS").then(|| "ops operator my-plain-secret".to_string());
    let e = Config::parse(&text, "t", &env).unwrap_err().to_string();
    assert!(e.contains("auth.tokens_env line 1") && e.contains("sha256sum"), "{e}");
    assert!(!e.contains("my-plain-secret"), "{e}");
    assert!(problems(&format!("{GOOD}\n[auth]\n")).iter().any(|p| p.key == "auth"));
}

#[test]
fn scheduled_drills_name_every_bad_key() {
    let text = format!(
        "{GOOD}\n[[schedule.drills]]\nname = \"weekly\"\ncron = \"0 10 * * Tue\"\ntimezone = \"Mars/Olympus\"\nevacuate = \"nowhere\"\nblackout = [\"soon\"]\n"
    );
    let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
    for k in [
        "schedule.drills[0].cron",
        "schedule.drills[0].timezone",
        "schedule.drills[0].evacuate",
        "schedule.drills[0].blackout[0]",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
    }
    let ok = format!(
        "{GOOD}\n[[schedule.drills]]\nname = \"weekly\"\ncron = \"0 0 10 * * Tue\"\ntimezone = \"Europe/Paris\"\nevacuate = \"primary\"\nsteps = [50, 100]\nhold = \"1m\"\nblackout = [\"22:00-06:00\"]\n"
    );
    let c = Config::parse(&ok, "t", &no_env).unwrap();
    assert_eq!(c.schedule.drills[0].timezone, chrono_tz::Europe::Paris);
    assert_eq!(c.schedule.drills[0].request.hold_seconds, Some(60.0));
}
