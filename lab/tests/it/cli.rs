//! The `lab` command: it comes up, serves the API and DNS, and leaves nothing
//! behind — after Ctrl-C and even after SIGKILL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

fn pgrep(pattern: &str) -> String {
    let out = std::process::Command::new("pgrep").args(["-a", "-f", pattern]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_nothing_left(pid: u32) {
    // Every lab server's directory name carries the lab's pid: lab-<what>-<pid>-…
    let pattern = format!("lab-[a-z-]+-{pid}-");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let procs = pgrep(&pattern);
        let dirs: Vec<String> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.starts_with("lab-") && n.contains(&format!("-{pid}-")))
            .collect();
        if procs.is_empty() && dirs.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind by lab {pid}:\n{procs}\n{dirs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn start_lab() -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fo-lab"))
        .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !banner.contains("Ctrl-C stops everything") {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("lab banner in time")
            .unwrap()
            .expect("lab exited early");
        banner.push_str(&line);
        banner.push('\n');
    }
    (child, banner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_serves_and_sigkill_leaves_nothing_behind() {
    let (mut child, banner) = start_lab().await;
    let pid = child.id().unwrap();
    // The banner names the dashboard and the DNS command.
    assert!(banner.contains("dashboard"), "{banner}");
    assert!(banner.contains("dig @127.0.0.1"), "{banner}");
    // Its servers are running.
    assert!(!pgrep(&format!("lab-pg-primary-{pid}-")).is_empty(), "primary database running");
    assert!(!pgrep(&format!("lab-pdns-{pid}-")).is_empty() || !pgrep("pdns_server").is_empty(), "powerdns running");
    child.start_kill().unwrap(); // SIGKILL: no chance to clean up by itself
    child.wait().await.unwrap();
    wait_nothing_left(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_stops_cleanly_on_sigint() {
    let (mut child, _) = start_lab().await;
    let pid = child.id().unwrap();
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("lab exits after SIGINT").unwrap();
    assert!(status.success(), "{status}");
    wait_nothing_left(pid).await;
}
