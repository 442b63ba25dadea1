//! Supervised child processes for the local lab that can never outlive the
//! Rust process that started them.
//!
//! Every server is started through a small `sh -c` wrapper.  The wrapper starts
//! the server in the background and keeps a reader blocked on its stdin, which
//! is a pipe whose write end only this Rust process holds.  The write end is
//! closed when the [`Supervised`] handle is stopped or dropped, and also by the
//! kernel when this process exits for any reason (including `SIGKILL`), so the
//! wrapper always notices.  It then sends the server the configured stop signal,
//! waits for it (escalating to `SIGKILL` after [`WRAPPER_GRACE`]), removes the
//! optional cleanup directory and exits.  `TERM`/`INT`/`HUP` sent to the wrapper
//! trigger the same shutdown.  When the server dies on its own, the wrapper
//! stays until the pipe closes, so a crashed server's data directory is kept
//! for a restart (see [`Supervised::stop_keep_dir`]) yet still cleaned up when
//! the handle goes away.
//!
//! When running as root, the server runs as another OS user via
//! `runuser -u USER --`.  `runuser` forks and turns any signal it receives into
//! `SIGTERM` + `SIGKILL`, so the wrapper never signals it: the server's own pid
//! is written to a pid file (by an `exec`ing inner `sh`) and signalled directly.
//!
//! This module must not: use `unsafe`/libc, leave processes or directories
//! behind, or talk to anything but local processes and files.  It also contains
//! small helpers used by the lab: free ports, TCP readiness, users, temp dirs.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use std::io::Write as _;
use std::process::{Child, ChildStdin, Command};

/// How long the wrapper waits for the server after the stop signal before it
/// sends `SIGKILL`.
pub const WRAPPER_GRACE: Duration = Duration::from_secs(10);

/// How long [`Supervised::stop`] waits for the wrapper before killing it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The `sh` wrapper.  Positional parameters: `$1` control dir (holds `pid`
/// and `cmd`), `$2` stop signal name, `$3` grace seconds, `$4` cleanup dir
/// (may be empty), then the command to run.  fd 0 is the Rust-held pipe.
const WRAPPER_SCRIPT: &str = r#"
ctl=$1 sig=$2 grace=$3 cleanup=$4
shift 4
pidfile=$ctl/pid
child= reader= finishing=
exec 3<&0 0</dev/null
alive() {
  st=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
finish() {
  [ -n "$finishing" ] && return 0
  finishing=1
  [ -n "$child" ] || child=$!
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    n=0
    while [ ! -s "$pidfile" ] && [ "$n" -lt 100 ] && kill -0 "$child" 2>/dev/null; do
      sleep 0.05; n=$((n + 1))
    done
    pid=$(cat "$pidfile" 2>/dev/null) || pid=
    [ -n "$pid" ] || pid=$child
    echo "lab-wrapper: stopping pid $pid with SIG$sig" >&2
    kill -s "$sig" "$pid" 2>/dev/null
    n=0
    while alive "$pid"; do
      if [ "$n" -eq $((grace * 10)) ]; then
        echo "lab-wrapper: pid $pid still alive after ${grace}s, sending SIGKILL" >&2
        kill -s KILL "$pid" 2>/dev/null
      fi
      sleep 0.1; n=$((n + 1))
    done
    while kill -0 "$child" 2>/dev/null; do
      wait "$child"
      [ "$?" -eq 127 ] && break
    done
  fi
  [ -n "$reader" ] && kill "$reader" 2>/dev/null
  if [ -n "$cleanup" ] && [ "$(cat "$ctl/cmd" 2>/dev/null)" != keep ]; then
    rm -rf -- "$cleanup"
  fi
  rm -rf -- "$ctl"
  exit 0
}
trap finish TERM INT HUP
"$@" 3<&- &
child=$!
{ if IFS= read -r line <&3; then printf '%s\n' "$line" > "$ctl/cmd"; fi
  kill -s TERM $$; } &
reader=$!
exec 3<&-
wait "$child"
echo "lab-wrapper: server exited by itself (status $?), waiting for the handle to go away" >&2
wait "$reader"
finish
"#;

/// Inner command: records its own pid, then `exec`s the server (same pid).
const EXEC_SCRIPT: &str = r#"echo $$ > "$0" && exec "$@""#;

/// Signal used to ask a server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// `SIGINT` (PostgreSQL: fast shutdown).
    Int,
    /// `SIGTERM` (the default for most servers).
    Term,
}

impl StopSignal {
    fn name(self) -> &'static str {
        match self {
            StopSignal::Int => "INT",
            StopSignal::Term => "TERM",
        }
    }
}

/// Options for [`Supervised::spawn`].
#[derive(Debug, Clone)]
pub struct SpawnOpts {
    /// OS user to run the server as.  Only honoured when we are root
    /// (`runuser -u USER --`); ignored otherwise.
    pub run_as: Option<String>,
    /// Signal the wrapper sends to stop the server.
    pub stop_signal: StopSignal,
    /// Directory removed (`rm -rf`) by the wrapper after the server stopped,
    /// unless the handle was stopped with [`Supervised::stop_keep_dir`].
    pub cleanup_dir: Option<PathBuf>,
    /// File that server stdout and stderr (and wrapper messages) are appended to.
    pub log_file: Option<PathBuf>,
    /// Extra environment variables for the server.
    pub env: Vec<(String, String)>,
    /// Working directory of the server (must be accessible by `run_as`).
    pub cwd: Option<PathBuf>,
}

impl Default for SpawnOpts {
    fn default() -> Self {
        SpawnOpts {
            run_as: None,
            stop_signal: StopSignal::Term,
            cleanup_dir: None,
            log_file: None,
            env: Vec::new(),
            cwd: None,
        }
    }
}

impl SpawnOpts {
    /// Stop with `SIGTERM`, log to `log`, run in `dir` and remove it on stop (the usual lab server).
    pub fn in_dir(dir: &Path, log: &Path) -> Self {
        SpawnOpts {
            stop_signal: StopSignal::Term,
            cleanup_dir: Some(dir.to_path_buf()),
            log_file: Some(log.to_path_buf()),
            cwd: Some(dir.to_path_buf()),
            ..SpawnOpts::default()
        }
    }
}

/// Stops a server handle held as an `Option` (taken, so a second call does nothing).
///
/// # Errors
/// When the supervisor cannot stop it; `what` names the server in the error.
pub async fn stop_taken(sup: &mut Option<Supervised>, what: &str) -> Result<()> {
    match sup.take() {
        Some(s) => s.stop().await.with_context(|| format!("stopping {what}")),
        None => Ok(()),
    }
}

/// A server process owned by an `sh` wrapper that stops it (and removes its
/// cleanup dir) as soon as this handle is stopped or dropped, or this process
/// exits in any way.
///
/// It uses `std::process` (not tokio's), so it is not tied to the runtime it
/// was created in: a handle kept in a `static` and used from several
/// `#[tokio::test]` runtimes keeps working, and dies with the process.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    /// `None` only after shutdown.
    wrapper: Option<Child>,
    stdin: Option<ChildStdin>,
    ctl_dir: PathBuf,
    cleanup_dir: Option<PathBuf>,
}

impl Supervised {
    /// Starts `program args…` under a wrapper (see the module docs).  Does
    /// not wait for the server to be ready.
    pub fn spawn(name: &str, program: &Path, args: &[String], opts: SpawnOpts) -> Result<Self> {
        let run_as = match &opts.run_as {
            Some(user) if is_root() => Some(user.clone()),
            _ => None,
        };
        let ctl_dir =
            unique_temp_dir(&format!("ctl-{name}")).with_context(|| format!("creating control dir for {name}"))?;
        if let Some(user) = &run_as {
            chown_to(user, &ctl_dir).with_context(|| format!("handing control dir of {name} to {user}"))?;
        }
        let pid_file = ctl_dir.join("pid");

        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WRAPPER_SCRIPT)
            .arg(format!("lab-wrapper-{name}"))
            .arg(&ctl_dir)
            .arg(opts.stop_signal.name())
            .arg(WRAPPER_GRACE.as_secs().to_string())
            .arg(opts.cleanup_dir.as_deref().unwrap_or(Path::new("")));
        if let Some(user) = &run_as {
            cmd.args(["runuser", "-u", user, "--"]);
        }
        cmd.args(["sh", "-c", EXEC_SCRIPT]).arg(&pid_file).arg(program).args(args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        if let Some(cwd) = &opts.cwd {
            cmd.current_dir(cwd);
        }
        let (out, err) = match &opts.log_file {
            Some(path) => {
                let f = open_append(path).with_context(|| format!("log file of {name}"))?;
                let f2 = f.try_clone().with_context(|| format!("duplicating log file handle for {name}"))?;
                (Stdio::from(f), Stdio::from(f2))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        cmd.stdin(Stdio::piped()).stdout(out).stderr(err);

        let mut wrapper = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&ctl_dir);
                return Err(e).with_context(|| format!("spawning wrapper for {name} ({})", program.display()));
            }
        };
        let stdin = wrapper.stdin.take();
        tracing::debug!(name, program = %program.display(), wrapper_pid = wrapper.id(), "spawned supervised process");
        Ok(Supervised { name: name.to_string(), wrapper: Some(wrapper), stdin, ctl_dir, cleanup_dir: opts.cleanup_dir })
    }

    /// Name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Pid of the server itself (not the wrapper), once it has started.
    pub fn server_pid(&self) -> Option<u32> {
        fs::read_to_string(self.ctl_dir.join("pid")).ok().and_then(|s| s.trim().parse().ok())
    }

    /// Waits up to `timeout` for the server pid to be known.
    pub async fn wait_server_pid(&self, timeout: Duration) -> Result<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pid) = self.server_pid() {
                return Ok(pid);
            }
            if Instant::now() >= deadline {
                bail!("{}: server pid not known after {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True while the server process is alive (not exited, not a zombie).
    pub fn is_running(&mut self) -> bool {
        match self.wrapper.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => {}
            _ => return false,
        }
        match self.server_pid() {
            Some(pid) => pid_alive(pid),
            // Not started yet (pid file not written) counts as running.
            None => true,
        }
    }

    /// Kills the server itself with `SIGKILL` (a crash, not a shutdown) and
    /// waits up to 5 s for it to vanish.  The wrapper stays until the handle
    /// is stopped or dropped; the cleanup dir is kept until then.
    pub fn kill_now(&mut self) {
        let Some(pid) = self.server_pid() else {
            tracing::warn!(name = %self.name, "kill_now: server pid unknown");
            return;
        };
        match std::process::Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status() {
            Ok(st) if st.success() => {}
            Ok(st) => tracing::warn!(name = %self.name, pid, %st, "kill -9 failed"),
            Err(e) => tracing::warn!(name = %self.name, pid, error = %e, "running kill failed"),
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (closes the pipe), waits for the wrapper to finish
    /// (at most [`STOP_TIMEOUT`], then kills wrapper and server) and removes
    /// the cleanup dir.
    pub async fn stop(self) -> Result<()> {
        self.shutdown(false).await
    }

    /// Like [`Supervised::stop`] but keeps the cleanup dir (used to restart a
    /// server on the same data directory).
    pub async fn stop_keep_dir(self) -> Result<()> {
        self.shutdown(true).await
    }

    async fn shutdown(mut self, keep_dir: bool) -> Result<()> {
        let server_pid = self.server_pid();
        if let Some(mut stdin) = self.stdin.take() {
            if keep_dir {
                // The wrapper may already be gone; a broken pipe is fine then.
                let _ = stdin.write_all(b"keep\n").and_then(|()| stdin.flush());
            }
            drop(stdin);
        }
        let name = self.name.clone();
        if let Some(mut wrapper) = self.wrapper.take() {
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match wrapper.try_wait() {
                    Ok(Some(status)) => {
                        tracing::debug!(name, %status, "supervised process stopped");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(None) => {
                        tracing::warn!(name, "wrapper did not finish in {STOP_TIMEOUT:?}; killing");
                        if let Some(pid) = server_pid {
                            let _ = std::process::Command::new("kill")
                                .args(["-9", &pid.to_string()])
                                .stderr(Stdio::null())
                                .status();
                        }
                        let _ = wrapper.kill();
                        let _ = wrapper.wait();
                        break;
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("waiting for wrapper of {name}"));
                    }
                }
            }
        }
        // Fallback cleanup in case the wrapper could not do it.
        if let (false, Some(dir)) = (keep_dir, &self.cleanup_dir) {
            remove_dir_if_exists(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        remove_dir_if_exists(&self.ctl_dir).with_context(|| format!("removing {}", self.ctl_dir.display()))?;
        Ok(())
    }
}

impl Drop for Supervised {
    /// Closes the pipe (the wrapper then stops the server and cleans up) and
    /// reaps the wrapper from a detached thread, without blocking.
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut wrapper) = self.wrapper.take() {
            let spawned = std::thread::Builder::new().name("lab-reaper".to_string()).spawn(move || {
                let _ = wrapper.wait();
            });
            if let Err(e) = spawned {
                tracing::debug!(name = %self.name, error = %e, "cannot spawn reaper thread");
            }
        }
    }
}

fn remove_dir_if_exists(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// True if `pid` exists and is not a zombie (reads `/proc/PID/stat`).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Ports handed out by [`free_port`] in this process, never handed out twice.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Returns a TCP port that is currently free on `ip`.  A port is never
/// returned twice by this process.  Ports come from below the kernel's
/// ephemeral range (see [`port_pool`]), so that no outgoing connection (a
/// probe, a client pool, etcd) can take the port between this call and the
/// server binding it.  Panics only if no port can be bound at all (the lab
/// cannot work then).
pub fn free_port(ip: IpAddr) -> u16 {
    free_port_inner(ip, false).unwrap_or_else(|e| panic!("no free TCP port on {ip}: {e:#}"))
}

/// Like [`free_port`] but the port is free for both TCP and UDP (DNS servers).
pub fn free_port_tcp_udp(ip: IpAddr) -> Result<u16> {
    free_port_inner(ip, true)
}

/// The lowest port the lab hands out: above the registered services most
/// machines run.
const POOL_FLOOR: u16 = 10_000;

/// The ports the lab picks from: from [`POOL_FLOOR`] up to just below the
/// kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768–60999 by
/// default), where the kernel never picks a local port by itself.  `None`
/// when that leaves fewer than 1 000 ports; then the kernel picks (port 0).
fn port_pool() -> Option<std::ops::Range<u16>> {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = range.split_whitespace().next()?.parse().ok()?;
    (low >= POOL_FLOOR + 1_000).then_some(POOL_FLOOR..low)
}

/// True if `port` can be bound on `ip` now (TCP, and UDP too if asked).
fn bindable(ip: IpAddr, port: u16, udp_too: bool) -> bool {
    TcpListener::bind(SocketAddr::new(ip, port)).is_ok()
        && (!udp_too || UdpSocket::bind(SocketAddr::new(ip, port)).is_ok())
}

fn free_port_inner(ip: IpAddr, udp_too: bool) -> Result<u16> {
    use rand::Rng as _;
    let pool = port_pool();
    let mut rng = rand::rng();
    for _ in 0..500 {
        let port = match &pool {
            // A random start keeps two lab processes on one machine apart.
            Some(pool) => {
                let port = rng.random_range(pool.clone());
                if !bindable(ip, port, udp_too) {
                    continue;
                }
                port
            }
            None => {
                let listener =
                    TcpListener::bind(SocketAddr::new(ip, 0)).with_context(|| format!("binding a TCP port on {ip}"))?;
                let port = listener.local_addr().context("reading bound TCP address")?.port();
                drop(listener);
                if udp_too && UdpSocket::bind(SocketAddr::new(ip, port)).is_err() {
                    continue;
                }
                port
            }
        };
        let mut seen = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.insert(port) {
            return Ok(port);
        }
    }
    bail!("could not find a free port on {ip} after 500 attempts")
}

/// Polls until a TCP connection to `addr` succeeds, or fails after `timeout`.
pub async fn wait_for_tcp(addr: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await;
        let err = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".to_string(),
        };
        if Instant::now() >= deadline {
            bail!("{addr} not accepting TCP connections after {timeout:?}: {err}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True if the effective uid of this process is 0 (from `/proc/self/status`).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `(uid, gid)` of `user`, from `/etc/passwd`.
pub fn user_ids(user: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == user {
            let uid = fields[2].parse().with_context(|| format!("parsing uid of {user} in /etc/passwd"))?;
            let gid = fields[3].parse().with_context(|| format!("parsing gid of {user} in /etc/passwd"))?;
            return Ok((uid, gid));
        }
    }
    bail!("user {user} not found in /etc/passwd")
}

fn chown_to(user: &str, path: &Path) -> Result<()> {
    let (uid, gid) = user_ids(user)?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {} to {user}", path.display()))
}

/// Creates `path` (and parents) and, when `user` is given and we are root,
/// hands it to that user so a non-root server can write it.
pub fn make_dir_for(user: Option<&str>, path: &Path) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    match user {
        Some(user) if is_root() => chown_to(user, path),
        _ => Ok(()),
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh directory `TMP/lab-PREFIX-PID-N-RANDOM` with mode 0755 (so
/// a server user can traverse it) and returns its path.  The caller owns its
/// removal (usually through [`SpawnOpts::cleanup_dir`]).
pub fn unique_temp_dir(prefix: &str) -> Result<PathBuf> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("lab-{prefix}-{}-{n}-{:08x}", std::process::id(), rand::random::<u32>()));
    fs::create_dir(&dir).with_context(|| format!("creating temp dir {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod 0755 {}", dir.display()))?;
    Ok(dir)
}

/// Last `max_lines` lines of a log file, for error messages.
pub fn tail_file(path: &Path, max_lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(max_lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Runs a command to completion, failing with its stderr when it exits
/// non-zero.  When `run_as` is given and we are root, runs it through
/// `runuser -u USER --`.  Returns stdout.
pub async fn run_command(
    what: &str,
    run_as: Option<&str>,
    cwd: Option<&Path>,
    program: &Path,
    args: &[String],
) -> Result<String> {
    let mut cmd = match run_as {
        Some(user) if is_root() => {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        _ => tokio::process::Command::new(program),
    };
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let out = cmd.output().await.with_context(|| format!("{what}: running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{what}: {} {:?} failed ({}): {}{}",
            program.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{what}: output is not UTF-8"))
}

/// Opens (creating) a file for appending; small convenience for log files.
pub fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} for appending", path.display()))
}

/// Sends signal `sig` (a name such as `STOP`) to `pid` with kill(1).
///
/// # Errors
/// When kill cannot run or fails.
pub fn send_signal(sig: &str, pid: u32) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .with_context(|| format!("running kill -s {sig} {pid}"))?;
    if !status.success() {
        bail!("kill -s {sig} {pid} failed ({status})");
    }
    Ok(())
}
