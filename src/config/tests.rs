//! Validation tests: every error names the key and the fix; all problems are listed at once.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::ExposeSecret;

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
fn dsns_are_redacted_in_both_forms() {
    assert_eq!(crate::redact::dsn("postgres://u:p@h:5/db"), "postgres://u:***@h:5/db");
    assert_eq!(crate::redact::dsn("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(crate::redact::dsn("host=h password=x user=u"), "host=h password=*** user=u");
}

const PROVIDERS: &str = r#"
[[providers]]
type = "haproxy"
admin_addr = "127.0.0.1:9999"
backend = "app"
on_drift = "report"
drift_interval = "30s"

[[providers]]
type = "rfc2136"
server = "127.0.0.1:53"
zone = "example.test."
record = "app.example.test."
tsig_key_name = "fo-key"
tsig_secret_env = "FO_TSIG"
resolvers = ["127.0.0.1:5300"]

[[providers]]
type = "route53"
hosted_zone_id = "Z0123456789ABC"
record = "app.example.test."
endpoint_url = "http://127.0.0.1:5000"

[[providers]]
type = "webhook"
url = "https://hooks.example.test/failover"
secret_env = "FO_HOOK"
breaker_failures = 3
breaker_cool_down = "10s"

[[notifications]]
url = "https://hooks.example.test/notify"
dedup_window = "2m"
"#;

fn provider_env(k: &str) -> Option<String> {
    match k {
        "FO_TSIG" => Some("c2VjcmV0LXRzaWcta2V5LTEyMzQ=".into()),
        "FO_HOOK" => Some("hook-secret-zyx".into()),
        "AWS_REGION" => Some("eu-west-1".into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("aws-secret-qwe".into()),
        _ => None,
    }
}

#[test]
fn every_provider_type_validates_with_guard_settings() {
    let text = format!("{GOOD}\n{PROVIDERS}");
    let c = Config::parse(&text, "t", &provider_env).expect("valid");
    let names: Vec<&str> = c.providers.iter().map(ProviderConfig::name).collect();
    assert!(names.ends_with(&["haproxy", "rfc2136", "route53", "webhook"]), "{names:?}");
    assert_eq!(c.guards["haproxy"].on_drift, OnDrift::Report);
    assert_eq!(c.guards["haproxy"].drift_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.guards["webhook"].breaker.threshold, 3);
    assert_eq!(c.guards["rfc2136"].resolvers, vec!["127.0.0.1:5300".parse::<SocketAddr>().unwrap()]);
    let ProviderConfig::Route53(r) = &c.providers[c.providers.len() - 2] else { panic!("route53") };
    assert_eq!(r.region, "eu-west-1");
    assert!(r.credentials.is_some());
    assert_eq!(r.targets[&RegionName::new("primary")].set_identifier, "primary");
    assert_eq!(c.notifications[0].dedup_window, Duration::from_secs(120));
    // Secrets appear neither in the summary nor in Debug output.
    let shown = format!("{}{:?}", c.summary(), c);
    for secret in ["c2VjcmV0LXRzaWcta2V5LTEyMzQ=", "hook-secret-zyx", "aws-secret-qwe", "AKIDEXAMPLE"] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
}

#[test]
fn provider_problems_name_key_what_and_fix_without_secrets() {
    let text = format!("{GOOD}\n{PROVIDERS}")
        .replace("admin_addr = \"127.0.0.1:9999\"", "admin_addr = \"localhost\"")
        .replace("on_drift = \"report\"", "on_drift = \"ignore\"")
        .replace("tsig_secret_env = \"FO_TSIG\"", "tsig_secret_env = \"FO_TSIG_BAD\"")
        .replace("url = \"https://hooks.example.test/failover\"", "url = \"ftp://x\"")
        .replace("breaker_failures = 3", "breaker_failures = 0");
    let env = |k: &str| if k == "FO_TSIG_BAD" { Some("not base64 %%% s3cr3t".to_string()) } else { provider_env(k) };
    let p = match Config::parse(&text, "t", &env) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    };
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "providers[1].admin_addr",
        "providers[1].on_drift",
        "providers[2].tsig_secret_env",
        "providers[4].url",
        "providers[4].breaker_failures",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(p.iter().all(|p| !p.fix.is_empty()));
    let all = p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(!all.contains("s3cr3t"), "{all}");
}

#[test]
fn route53_needs_a_region() {
    let text = format!("{GOOD}\n{PROVIDERS}");
    let env = |k: &str| if k == "AWS_REGION" { None } else { provider_env(k) };
    let p = match Config::parse(&text, "t", &env) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    };
    assert!(p.iter().any(|p| p.key == "providers[3].region" && p.fix.contains("AWS_REGION")), "{p:?}");
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

#[test]
fn tsig_secrets_decode_from_base64_and_never_from_empty_text() {
    assert_eq!(decode_tsig_secret("c2VjcmV0"), Some(b"secret".to_vec()));
    assert_eq!(decode_tsig_secret(" c2VjcmV0\n"), Some(b"secret".to_vec()));
    assert_eq!(decode_tsig_secret("not base64!"), None);
    assert_eq!(decode_tsig_secret(""), None);
}

const ETCD: &str = "\n[coordination]\nbackend = \"etcd\"\nendpoints = [\"http://10.0.1.5:2379\", \"http://u:pw@10.0.2.5:2379\", \"http://10.0.3.5:2379\"]\n";

#[test]
fn single_is_the_default_backend_with_quorum_one() {
    let c = Config::parse(GOOD, "t", &no_env).expect("valid");
    assert_eq!(c.coordination.backend, Backend::Single);
    assert_eq!(c.policy.quorum, 1);
    assert_eq!(c.coordination.vantages.len(), 3, "every region is a vantage by default");
    assert_eq!(c.coordination.advertise, "http://127.0.0.1:8080");
}

#[test]
fn etcd_defaults_to_a_majority_quorum_and_a_short_lease() {
    let c = Config::parse(&format!("{GOOD}{ETCD}"), "t", &no_env).expect("valid");
    assert!(matches!(&c.coordination.backend, Backend::Etcd { endpoints } if endpoints.len() == 3));
    assert_eq!(c.policy.quorum, 2, "a majority of three");
    assert_eq!(c.coordination.lease_ttl, Duration::from_secs(3));
    assert_eq!(c.coordination.prefix, "/failover-orchestrator");
    let summary = c.summary();
    assert!(
        summary.contains("coordination: etcd (3 endpoint(s): 10.0.1.5:2379, 10.0.2.5:2379, 10.0.3.5:2379)"),
        "{summary}"
    );
    assert!(!summary.contains("pw"), "no credentials in the summary: {summary}");
}

#[test]
fn quorum_above_one_needs_etcd_and_never_exceeds_the_vantages() {
    let single = problems(&GOOD.replace("dwell = \"30s\"", "dwell = \"30s\"\nquorum = 2"));
    assert!(single.iter().any(|p| p.key == "policy.quorum" && p.fix.contains("backend = \"etcd\"")), "{single:?}");
    let too_many = problems(&format!("{}{ETCD}", GOOD.replace("dwell = \"30s\"", "dwell = \"30s\"\nquorum = 4")));
    assert!(
        too_many.iter().any(|p| p.key == "policy.quorum" && p.what.contains("more than the 3 vantage")),
        "{too_many:?}"
    );
    let ok = Config::parse(
        &format!("{}{ETCD}", GOOD.replace("dwell = \"30s\"", "dwell = \"30s\"\nquorum = 3")),
        "t",
        &no_env,
    )
    .expect("3 of 3 is allowed");
    assert_eq!(ok.policy.quorum, 3);
}

#[test]
fn coordination_mistakes_name_the_key_and_the_fix() {
    let p = problems(&format!("{GOOD}\n[coordination]\nbackend = \"zookeeper\"\n"));
    assert!(p.iter().any(|p| p.key == "coordination.backend" && p.fix.contains("\"etcd\"")), "{p:?}");
    let p = problems(&format!("{GOOD}\n[coordination]\nbackend = \"etcd\"\n"));
    assert!(p.iter().any(|p| p.key == "coordination.endpoints" && p.what.contains("missing")), "{p:?}");
    let p = problems(&format!(
        "{GOOD}\n[coordination]\nbackend = \"etcd\"\nendpoints = [\"10.0.1.5\"]\nlease_ttl = \"1500ms\"\n"
    ));
    assert!(p.iter().any(|p| p.key == "coordination.endpoints[0]"), "{p:?}");
    assert!(p.iter().any(|p| p.key == "coordination.lease_ttl" && p.what.contains("whole number")), "{p:?}");
    let p = problems(&format!("{GOOD}{ETCD}vantages = [\"standby\", \"mars\"]\n"));
    assert!(p.iter().any(|p| p.key == "coordination.vantages[1]"), "{p:?}");
    assert!(p.iter().any(|p| p.key == "coordination.vantages" && p.what.contains("`primary`")), "{p:?}");
}

#[test]
fn the_region_flag_replaces_the_vantage_and_is_checked() {
    let c = Config::parse_for(GOOD, "t", Some("dr"), &no_env).expect("valid");
    assert_eq!(c.orchestrator.vantage.as_str(), "dr");
    let Err(ConfigError::Invalid(p)) = Config::parse_for(GOOD, "t", Some("mars"), &no_env) else {
        panic!("an unknown region must be refused")
    };
    assert!(p.iter().any(|p| p.key == "orchestrator.vantage" && p.what.contains("mars")), "{p:?}");
}

#[test]
fn app_roles_are_typed_with_a_default_fence_timeout() {
    let c = Config::parse(&format!("{GOOD}\n[replication]\napp_roles = [\"app\", \"Reports Role\"]\n"), "t", &no_env)
        .expect("valid");
    let roles: Vec<&str> = c.replication.app_roles.iter().map(AppRole::as_str).collect();
    assert_eq!(roles, ["app", "Reports Role"]);
    assert_eq!(c.replication.fence_timeout, Duration::from_secs(5));
    assert!(Config::parse(GOOD, "t", &no_env).unwrap().replication.app_roles.is_empty());
}

#[test]
fn bad_app_roles_and_fence_timeout_name_the_key_and_the_fix() {
    let text = format!(
        "{GOOD}\n[replication]\napp_roles = [\"app\", \"\", \"pg_monitor\", \"app\", \"postgres\", \"{}\", \"a\\u0000b\"]\nfence_timeout = \"0s\"\n",
        "x".repeat(64)
    );
    let p = problems(&text);
    let at = |i: usize| {
        p.iter().find(|p| p.key == format!("replication.app_roles[{i}]")).unwrap_or_else(|| panic!("[{i}] in {p:?}"))
    };
    assert!(at(1).what.contains("1–63 bytes"), "{:?}", at(1));
    assert!(at(2).what.contains("reserved or built-in"), "{:?}", at(2));
    assert!(at(3).what.contains("listed twice"), "{:?}", at(3));
    // The region's DSN logs in as postgres: locking it would lock the orchestrator out.
    assert!(at(4).what.contains("the role the orchestrator logs in with"), "{:?}", at(4));
    assert!(at(5).what.contains("1–63 bytes"), "{:?}", at(5));
    assert!(at(6).what.contains("control character"), "{:?}", at(6));
    assert!(!p.iter().any(|p| p.key == "replication.app_roles[0]"), "{p:?}");
    let t = p.iter().find(|p| p.key == "replication.fence_timeout").expect("fence_timeout problem");
    assert!(t.fix.contains("5s"), "{t:?}");
    assert!(p.iter().all(|p| !p.fix.is_empty()));
}

#[test]
fn the_summary_says_how_hard_the_old_primary_is_fenced() {
    let off = Config::parse(GOOD, "t", &no_env).unwrap().summary();
    assert!(off.contains("promotion: off (no region has postgres.promote = true) · soft fence only"), "{off}");
    let promoting = GOOD.replacen(
        "address = \"127.0.0.12\"",
        "address = \"127.0.0.12\"\n[regions.postgres]\ndsn = \"postgres://postgres@127.0.0.12/postgres\"\npromote = true",
        1,
    );
    let soft = Config::parse(&promoting, "t", &no_env).unwrap().summary();
    assert!(soft.contains("promotion: standby · soft fence only"), "{soft}");
    let hard = Config::parse(
        &format!("{promoting}\n[replication]\napp_roles = [\"app\", \"reports\"]\nfence_timeout = \"2s\"\n"),
        "t",
        &no_env,
    )
    .unwrap()
    .summary();
    assert!(
        hard.contains("promotion: standby · fence locks app roles app, reports (NOLOGIN + sessions ended + read-only) · fence timeout 2s"),
        "{hard}"
    );
}

#[test]
fn limits_and_audit_retention_have_defaults_without_their_sections() {
    let c = Config::parse(GOOD, "t", &no_env).unwrap();
    assert_eq!(c.limits, LimitsConfig::default());
    assert_eq!((c.limits.mutations_per_minute.get(), c.limits.auth_failures_per_minute.get()), (60, 10));
    assert_eq!(c.limits.max_streams, 64);
    assert_eq!(c.audit_retention(), Duration::from_secs(90 * 24 * 3600));
    let hash = crate::auth::hash_token("t0ken");
    let text = format!(
        "{GOOD}\n[auth]\ntokens_env = \"FO_TOKENS\"\naudit_retention = \"30d\"\n\
         [limits]\nmutations_per_minute = 600\nauth_failures_per_minute = 3\nmax_streams = 2\n"
    );
    let env = |k: &str| (k == "FO_TOKENS").then(|| format!("ops operator {hash}"));
    let c = Config::parse(&text, "t", &env).unwrap();
    assert_eq!(c.audit_retention(), Duration::from_secs(30 * 24 * 3600));
    assert_eq!((c.limits.mutations_per_minute.get(), c.limits.auth_failures_per_minute.get()), (600, 3));
    assert_eq!(c.limits.max_streams, 2);
}

#[test]
fn bad_limits_and_audit_retention_name_the_key_and_the_fix() {
    let text = format!(
        "{GOOD}\n[auth]\ntokens_env = \"FO_TOKENS\"\naudit_retention = \"0s\"\n\
         [limits]\nmutations_per_minute = 0\nauth_failures_per_minute = -4\nmax_streams = 0\n"
    );
    let hash = crate::auth::hash_token("t0ken");
    let env = |k: &str| (k == "FO_TOKENS").then(|| format!("ops operator {hash}"));
    let Err(ConfigError::Invalid(p)) = Config::parse(&text, "t", &env) else { panic!("expected problems") };
    for key in
        ["auth.audit_retention", "limits.mutations_per_minute", "limits.auth_failures_per_minute", "limits.max_streams"]
    {
        let found = p.iter().find(|x| x.key == key).unwrap_or_else(|| panic!("no problem for {key}: {p:?}"));
        assert!(found.fix.contains("e.g."), "{found:?}");
    }
    let text = format!("{GOOD}\n[limits]\nmax_stream = 3\n");
    assert!(
        matches!(Config::parse(&text, "t", &no_env), Err(ConfigError::Parse { message, .. }) if message.contains("max_stream"))
    );
}

#[test]
fn tls_needs_both_files_readable_and_in_pem_and_names_the_key() {
    let with = |extra: &str| GOOD.replacen("[policy]", &format!("{extra}\n[policy]"), 1);
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (crt, key, junk) = (dir.path().join("a.crt"), dir.path().join("a.key"), dir.path().join("junk.pem"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(&junk, "secret-looking text, not PEM").unwrap();
    let line = |k: &str, p: &std::path::Path| format!("{k} = {:?}", p.display().to_string());

    let c =
        Config::parse(&with(&format!("{}\n{}", line("tls_cert", &crt), line("tls_key", &key))), "t", &no_env).unwrap();
    assert_eq!(c.orchestrator.tls, Some(TlsFiles { cert: crt.clone(), key: key.clone() }));
    assert_eq!(Config::parse(GOOD, "t", &no_env).unwrap().orchestrator.tls, None);

    let p = problems(&with(&line("tls_cert", &crt)));
    assert!(p.iter().any(|x| x.key == "orchestrator.tls_key" && x.fix.contains("both")), "{p:?}");
    let p = problems(&with(&line("tls_key", &key)));
    assert!(p.iter().any(|x| x.key == "orchestrator.tls_cert"), "{p:?}");
    let p = problems(&with(&format!("{}\n{}", line("tls_cert", &dir.path().join("none.crt")), line("tls_key", &junk))));
    assert!(p.iter().any(|x| x.key == "orchestrator.tls_cert" && x.what.contains("cannot read")), "{p:?}");
    assert!(p.iter().any(|x| x.key == "orchestrator.tls_key" && x.what.contains("no PEM private key")), "{p:?}");
    let p = problems(&with(&format!("{}\n{}", line("tls_cert", &key), line("tls_key", &key))));
    assert!(p.iter().any(|x| x.key == "orchestrator.tls_cert" && x.what.contains("no PEM certificate")), "{p:?}");
    assert!(p.iter().all(|x| !x.what.contains("secret-looking") && !x.what.contains("PRIVATE KEY-----")), "{p:?}");
}

#[test]
fn traces_are_off_without_an_endpoint_in_the_file_or_the_environment() {
    let c = Config::parse(GOOD, "t", &no_env).expect("valid");
    assert_eq!(c.traces, None);
    // An empty standard variable counts as unset.
    let empty = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(String::new);
    assert_eq!(Config::parse(GOOD, "t", &empty).expect("valid").traces, None);
}

#[test]
fn traces_endpoint_comes_from_the_file_first_then_the_standard_variables() {
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://env-base:4318/".to_string()),
        "OTEL_SERVICE_NAME" => Some("fo-eu".to_string()),
        _ => None,
    };
    let t = Config::parse(GOOD, "t", &env).expect("valid").traces.expect("on through the environment");
    assert_eq!(
        (t.endpoint.as_str(), t.endpoint_from),
        ("http://env-base:4318/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT")
    );
    assert_eq!((t.service_name.as_str(), t.timeout), ("fo-eu", Duration::from_secs(10)));
    // The per-signal variable is the whole URL and wins over the base one.
    let signal = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some("https://collector:4318/custom".to_string()),
        other => env(other),
    };
    let t = Config::parse(GOOD, "t", &signal).expect("valid").traces.unwrap();
    assert_eq!(t.endpoint, "https://collector:4318/custom");
    // The file wins over both; a path already ending in /v1/traces is kept.
    let text = format!(
        "{GOOD}\n[traces]\notlp_endpoint = \"http://127.0.0.1:4318/otlp/v1/traces\"\nservice_name = \"fo\"\ntimeout = \"2s\"\n"
    );
    let t = Config::parse(&text, "t", &signal).expect("valid").traces.unwrap();
    assert_eq!(
        (t.endpoint.as_str(), t.endpoint_from),
        ("http://127.0.0.1:4318/otlp/v1/traces", "traces.otlp_endpoint")
    );
    assert_eq!((t.service_name.as_str(), t.timeout), ("fo", Duration::from_secs(2)));
}

#[test]
fn a_bad_traces_endpoint_names_the_key_or_variable_and_the_fix_without_its_secret() {
    let with = |v: &str| format!("{GOOD}\n[traces]\notlp_endpoint = \"{v}\"\n");
    for (value, what) in [
        ("collector:4318", "not an http(s) URL"),
        ("grpc://collector:4317", "not an http(s) URL"),
        ("not a url", "not a URL"),
        ("", "is empty"),
        ("http://otel:hunter2@collector:4318", "credentials"),
        ("http://collector:4318/#x", "fragment"),
    ] {
        let p = problems(&with(value));
        let t = p.iter().find(|p| p.key == "traces.otlp_endpoint").unwrap_or_else(|| panic!("{value}: {p:?}"));
        assert!(t.what.contains(what), "{value}: {}", t.what);
        assert!(!t.fix.is_empty());
        assert!(!format!("{p:?}").contains("hunter2"), "the password is never shown: {p:?}");
    }
    // From the environment, the problem names the variable.
    let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "ftp://x".to_string());
    let p = match Config::parse(GOOD, "t", &env) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert!(p.iter().any(|p| p.key == "OTEL_EXPORTER_OTLP_ENDPOINT" && p.fix.contains("4318")), "{p:?}");
    // The other keys are checked too, all at once.
    let p = problems(&format!(
        "{GOOD}\n[traces]\notlp_endpoint = \"http://c:4318\"\nservice_name = \"\"\ntimeout = \"0s\"\n"
    ));
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["traces.service_name", "traces.timeout"]);
}
