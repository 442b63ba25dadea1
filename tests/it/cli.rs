//! The command line: `check-config` exit codes and messages.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_failover-orchestrator"))
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let out = bin()
        .args(["check-config", concat!(env!("CARGO_MANIFEST_DIR"), "/regions.toml")])
        .env("FO_PDNS_API_KEY", "x")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("valid"));
    assert!(stdout.contains("primary"));
    assert!(!stdout.contains("s3cret"), "no password in the summary");
}

#[test]
fn check_config_rejects_bad_files_with_exit_2_and_names_the_keys() {
    let dir = std::env::temp_dir().join(format!("fo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/regions.toml"))
        .unwrap()
        .replace("weight = 80", "weight = 90")
        .replacen("timeout = \"800ms\"", "timeout = \"5s\"", 1);
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = bin().args(["check-config", path.to_str().unwrap()]).env("FO_PDNS_API_KEY", "x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("regions[].weight"), "{stderr}");
    assert!(stderr.contains(".timeout"), "{stderr}");
    assert!(stderr.contains("fix:"), "{stderr}");

    std::fs::write(&path, "[orchestrator]\nvantag = \"x\"\n").unwrap();
    let out = bin().args(["check-config", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vantag"), "unknown key named");

    let out = bin().args(["check-config", "/nonexistent/regions.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
