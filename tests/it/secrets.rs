//! Secrets never shown: a check URL with credentials and DSNs with passwords in every form
//! never reach the status, the events, the API's answers or `check-config`'s output.

use std::process::Command;
use std::time::Duration;

use crate::common::{Spec, spawn_app};

const USERINFO_SECRET: &str = "ZqUserinfoSecret1";
const QUERY_SECRET: &str = "ZqQueryToken2";
const PG_QUOTED_SECRET: &str = "Zq quoted secret 3";
const PG_QUERY_SECRET: &str = "ZqPgQuerySecret4";
const STORE_SECRET: &str = "ZqStoreSecret5";

fn assert_no_secret(what: &str, text: &str) {
    for s in [USERINFO_SECRET, QUERY_SECRET, PG_QUOTED_SECRET, PG_QUERY_SECRET, STORE_SECRET] {
        assert!(!text.contains(s), "{what} shows the secret {s:?}: {text}");
    }
}

#[tokio::test]
async fn a_check_url_with_credentials_never_reaches_the_status_events_or_api() {
    // A failing check (nothing listens on port 1) whose URL carries a password and a token:
    // the HTTP client's error names the URL, which the status shows as the last error.
    let spec = Spec {
        extra: format!(
            "[[regions.checks]]\nname = \"leaky\"\nlayer = \"app\"\ntype = \"http\"\n\
             url = \"http://fo:{USERINFO_SECRET}@127.0.0.1:1/health?token={QUERY_SECRET}\"\n\
             interval = \"200ms\"\ntimeout = \"150ms\"\n"
        ),
        ..Spec::default()
    };
    let mut app = spawn_app(spec).await;
    app.wait_for("the leaky check has failed and shows its error", Duration::from_secs(20), |s| {
        s.regions.iter().flat_map(|r| r.checks.iter()).any(|c| c.name == "leaky" && c.last_error.is_some())
    })
    .await;
    let viewer = app.tokens.viewer.clone();
    let operator = app.tokens.operator.clone();
    let (code, status) = app.get_as("/api/v1/status", Some(&viewer)).await;
    assert_eq!(code, 200);
    let text = status.to_string();
    assert_no_secret("/api/v1/status", &text);
    let leaky = status["regions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["checks"].as_array().unwrap().iter())
        .find(|c| c["name"] == "leaky")
        .unwrap()
        .clone();
    // What is shown still says where: the host and port, the user, the masked parts.
    assert_eq!(leaky["target"], "http://fo:***@127.0.0.1:1/health?token=***", "{leaky}");
    let error = leaky["last_error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1:1") && error.contains("***"), "{error}");
    for path in ["/api/v1/events?limit=500", "/api/v1/audit", "/api/v1/incidents"] {
        let (code, body) = app.get_as(path, Some(&operator)).await;
        assert!(code == 200, "{path}: {code} {body}");
        assert_no_secret(path, &body.to_string());
    }
    app.shutdown().await;
}

#[test]
fn check_config_shows_no_password_of_any_dsn_form_nor_of_a_check_url() {
    let dir = std::env::temp_dir().join(format!("fo-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/regions.toml"))
        .unwrap()
        .replace(
            "dsn = \"postgres://monitor@10.0.1.5:5432/app\"",
            &format!("dsn = \"host=10.0.1.5 user=monitor password='{PG_QUOTED_SECRET}' dbname=app\""),
        )
        .replace(
            "dsn = \"postgres://monitor@10.0.2.5:5432/app\"",
            &format!("dsn = \"postgres://monitor@10.0.2.5:5432/app?sslmode=require&password={PG_QUERY_SECRET}\""),
        )
        .replace(
            "url = \"http://10.0.1.10:8080/health\"",
            &format!("url = \"http://probe:{USERINFO_SECRET}@10.0.1.10:8080/health?api_key={QUERY_SECRET}\""),
        );
    assert!(text.contains(PG_QUOTED_SECRET) && text.contains(PG_QUERY_SECRET) && text.contains(USERINFO_SECRET));
    let path = dir.join("regions.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_failover-orchestrator"))
        .args(["check-config", path.to_str().unwrap()])
        .env("FO_PDNS_API_KEY", "x")
        .env("FO_STORE_DSN", format!("postgres://failover:{STORE_SECRET}@127.0.0.1:5432/failover"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_no_secret("check-config's output", &format!("{stdout}\n{stderr}"));
    // The summary still names what it checks.
    assert!(stdout.contains("failover:***@127.0.0.1:5432"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `docker-compose.yml` gives no secret a value or a default: each comes from the environment
/// with `${NAME:?…}` (compose refuses to start without it) or is a Docker secret; the image runs
/// as an unprivileged user.
#[test]
fn the_compose_file_holds_no_secret_and_the_image_runs_unprivileged() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let secret_like = ["PASSWORD", "API_KEY", "DSN", "TOKEN", "SECRET"];
    let mut seen = 0;
    for (n, line) in compose.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(": ") else { continue };
        if !secret_like.iter().any(|s| key.to_ascii_uppercase().contains(s)) {
            continue;
        }
        seen += 1;
        // Every `${…}` in the value must be required (`:?`), never defaulted (`:-` or `-`).
        let refs: Vec<&str> = value.split("${").skip(1).map(|r| r.split('}').next().unwrap_or("")).collect();
        assert!(!refs.is_empty(), "line {}: {key} is written in the file: {value}", n + 1);
        for r in &refs {
            assert!(r.contains(":?") && !r.contains(":-"), "line {}: ${{{r}}} must be required (`:?`)", n + 1);
        }
        // What is left once the references are removed holds no password: a DSN's userinfo
        // password is a reference.
        let mut bare = value.to_string();
        for r in &refs {
            bare = bare.replace(&format!("${{{r}}}"), "");
        }
        if let Some(userinfo) = bare.split("://").nth(1).and_then(|rest| rest.split_once('@')).map(|(u, _)| u) {
            assert!(!userinfo.contains(':') || userinfo.ends_with(':'), "line {}: a password in {value}", n + 1);
        }
    }
    assert!(seen >= 4, "the store password, the DSN and the PowerDNS key (twice) are configured: {seen}");
    assert!(compose.contains("secrets:") && compose.contains("fo_tokens"), "API tokens come as a Docker secret");

    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let user = dockerfile.lines().rev().find_map(|l| l.trim().strip_prefix("USER ")).expect("the image names a USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "the image runs as {user}");
}
