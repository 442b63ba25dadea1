//! Tests of the supervised-process wrapper: stop, drop, crash, and death of
//! the owning process by SIGKILL.

use std::path::Path;
use std::time::{Duration, Instant};

use fo_lab::process::{SpawnOpts, StopSignal, Supervised, pid_alive, unique_temp_dir};

fn sleeper(name: &str, dir: &Path) -> Supervised {
    Supervised::spawn(
        name,
        Path::new("/bin/sleep"),
        &["1000".to_string()],
        SpawnOpts {
            stop_signal: StopSignal::Term,
            cleanup_dir: Some(dir.to_path_buf()),
            log_file: Some(dir.join("wrapper.log")),
            run_as: Some("nobody".to_string()),
            ..SpawnOpts::default()
        },
    )
    .unwrap()
}

fn wait_gone(pid: u32, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while (pid_alive(pid) || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_alive(pid), "server pid {pid} still alive");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[tokio::test]
async fn stop_kills_server_and_removes_dir() {
    let dir = unique_temp_dir("t-stop").unwrap();
    let mut s = sleeper("t-stop", &dir);
    let pid = s.wait_server_pid(Duration::from_secs(5)).await.unwrap();
    assert!(s.is_running());
    s.stop().await.unwrap();
    wait_gone(pid, &dir);
}

#[tokio::test]
async fn drop_kills_server_and_removes_dir() {
    let dir = unique_temp_dir("t-drop").unwrap();
    let s = sleeper("t-drop", &dir);
    let pid = s.wait_server_pid(Duration::from_secs(5)).await.unwrap();
    drop(s);
    wait_gone(pid, &dir);
}

#[tokio::test]
async fn immediate_stop_does_not_leak() {
    let dir = unique_temp_dir("t-immediate").unwrap();
    let s = sleeper("t-immediate", &dir);
    s.stop().await.unwrap();
    assert!(!dir.exists());
}

#[tokio::test]
async fn crash_keeps_dir_until_handle_goes_away() {
    let dir = unique_temp_dir("t-crash").unwrap();
    let mut s = sleeper("t-crash", &dir);
    let pid = s.wait_server_pid(Duration::from_secs(5)).await.unwrap();
    s.kill_now();
    assert!(!pid_alive(pid));
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.is_running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!s.is_running());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(dir.exists(), "dir must survive a crash");
    s.stop_keep_dir().await.unwrap();
    assert!(dir.exists(), "stop_keep_dir must keep the dir");
    std::fs::remove_dir_all(&dir).unwrap();
}
