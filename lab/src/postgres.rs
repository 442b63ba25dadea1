//! Temporary PostgreSQL clusters for the local lab, with real streaming
//! replication between them.
//!
//! A [`PgCluster`] is a data directory in a fresh temp dir plus a `postgres`
//! server run by [`crate::process::Supervised`] (stop signal `SIGINT` = fast
//! shutdown, cleanup dir = the cluster's temp dir).  Primaries are created with
//! `initdb`, standbys with `pg_basebackup -R` from a running primary, so the
//! standby's `primary_conninfo` carries its `application_name` and it shows up
//! under that name in the primary's `pg_stat_replication`.
//!
//! PostgreSQL refuses to run as root, so when we are root every server binary
//! runs as the OS user `postgres` and the data directories belong to it.
//!
//! This module must not: touch system clusters (it never uses the default
//! port, socket dir or `pg_ctlcluster`), leave processes or directories
//! behind (even when a handle is leaked), or listen on non-loopback addresses.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::{Connection, PgConnection};

use crate::process::{
    SpawnOpts, StopSignal, Supervised, free_port, is_root, make_dir_for, run_command, tail_file, unique_temp_dir,
};

/// How long to wait for a server to accept connections / start streaming.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(100);

/// OS user the servers run as when we are root.
const PG_OS_USER: &str = "postgres";

/// Finds the directory holding `initdb`, `postgres` and `pg_basebackup`:
/// `$PG_BIN`, else `pg_config --bindir` if it contains `initdb`, else the
/// highest `/usr/lib/postgresql/*/bin`.
pub fn pg_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        bail!("PG_BIN={} does not contain initdb", dir.display());
    }
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let version: Option<Vec<u32>> =
                entry.file_name().to_string_lossy().split('.').map(|p| p.parse().ok()).collect();
            let bin = entry.path().join("bin");
            let Some(version) = version else { continue };
            if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    best.map(|(_, bin)| bin).context(
        "PostgreSQL server binaries (initdb) not found: install postgresql \
         (apt-get install postgresql) or set PG_BIN",
    )
}

/// Per-node settings for [`PgCluster::start_primary`] / [`PgCluster::start_standby`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `synchronous_commit` (default `on`).
    pub synchronous_commit: String,
    /// `synchronous_standby_names` (default: none, i.e. asynchronous).
    pub synchronous_standby_names: Option<String>,
    /// Extra raw `postgresql.conf` lines.
    pub extra_conf: Vec<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { synchronous_commit: "on".to_string(), synchronous_standby_names: None, extra_conf: Vec::new() }
    }
}

/// A running temporary PostgreSQL server (primary or streaming standby).
/// Dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct PgCluster {
    name: String,
    ip: IpAddr,
    port: u16,
    dir: PathBuf,
    data_dir: PathBuf,
    bin: PathBuf,
    sup: Option<Supervised>,
}

impl PgCluster {
    /// Creates a new primary with `initdb` and starts it on `ip` (e.g.
    /// 127.0.0.1) and a free port; waits until it accepts queries.
    pub async fn start_primary(name: &str, ip: IpAddr, opts: &PgOptions) -> Result<PgCluster> {
        let started = Instant::now();
        let bin = pg_bin_dir()?;
        let dir = unique_temp_dir(&format!("pg-{name}"))?;
        // From here on `guard` removes `dir` if we fail before the server owns it.
        let guard = DirGuard(Some(dir.clone()));
        let data_dir = dir.join("data");
        make_dir_for(run_as(), &data_dir)?;
        set_mode(&data_dir, 0o700)?;
        let args: Vec<String> =
            ["-D", &path_str(&data_dir)?, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        run_command(&format!("initdb for {name}"), run_as(), Some(&dir), &bin.join("initdb"), &args).await?;
        append(
            &data_dir.join("pg_hba.conf"),
            "\n# lab\nhost all all 127.0.0.0/8 trust\nhost all all ::1/128 trust\n\
             host replication all 127.0.0.0/8 trust\nhost replication all ::1/128 trust\n",
        )?;
        append(&data_dir.join("postgresql.conf"), "\n# lab: per-node settings\ninclude = 'lab.conf'\n")?;
        let port = free_port(ip);
        let mut cluster = PgCluster { name: name.to_string(), ip, port, dir, data_dir, bin, sup: None };
        cluster.write_lab_conf(opts)?;
        guard.disarm();
        cluster.spawn_and_wait().await?;
        tracing::info!(name, %ip, port, elapsed = ?started.elapsed(), "postgres primary ready");
        Ok(cluster)
    }

    /// Creates a standby of `primary` with `pg_basebackup -R -X stream`
    /// (`application_name` = `name`), starts it on `ip` and waits until it is
    /// in recovery and the primary reports it as `streaming`.
    pub async fn start_standby(primary: &PgCluster, name: &str, ip: IpAddr, opts: &PgOptions) -> Result<PgCluster> {
        let started = Instant::now();
        let bin = primary.bin.clone();
        let dir = unique_temp_dir(&format!("pg-{name}"))?;
        let guard = DirGuard(Some(dir.clone()));
        let data_dir = dir.join("data");
        make_dir_for(run_as(), &data_dir)?;
        set_mode(&data_dir, 0o700)?;
        let conninfo = format!("host={} port={} user=postgres application_name={name}", primary.ip, primary.port);
        let args: Vec<String> =
            ["-d", &conninfo, "-D", &path_str(&data_dir)?, "-R", "-X", "stream", "-c", "fast", "--no-sync"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        run_command(
            &format!("pg_basebackup for standby {name}"),
            run_as(),
            Some(&dir),
            &bin.join("pg_basebackup"),
            &args,
        )
        .await?;
        // Settings the primary got via ALTER SYSTEM (postgresql.auto.conf) are
        // copied too; the standby's own options must win for these.
        strip_auto_conf(&data_dir, &["synchronous_standby_names"])?;
        let port = free_port(ip);
        let mut cluster = PgCluster { name: name.to_string(), ip, port, dir, data_dir, bin, sup: None };
        cluster.write_lab_conf(opts)?;
        guard.disarm();
        cluster.spawn_and_wait().await?;
        let ready = cluster
            .wait_streaming_from(primary)
            .await
            .with_context(|| format!("standby {name} did not start streaming"));
        if let Err(e) = ready {
            let log = tail_file(&cluster.log_file(), 20);
            cluster.stop().await.ok();
            return Err(e.context(format!("last log lines:\n{log}")));
        }
        tracing::info!(name, %ip, port, elapsed = ?started.elapsed(), "postgres standby streaming");
        Ok(cluster)
    }

    /// `postgres://postgres@IP:PORT/postgres`.
    pub fn dsn(&self) -> String {
        self.dsn_db("postgres")
    }

    /// DSN for database `db` on this server.
    pub fn dsn_db(&self, db: &str) -> String {
        self.dsn_as("postgres", db)
    }

    /// DSN for role `user` (an application role made with [`PgCluster::execute`]; `pg_hba.conf`
    /// trusts every role on loopback) and database `db`.
    pub fn dsn_as(&self, user: &str, db: &str) -> String {
        let host = match self.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("postgres://{user}@{host}:{}/{db}", self.port)
    }

    /// Name given at creation (also its `application_name` when a standby).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Listen address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log (stdout/stderr of postgres), next to the data dir.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Pid of the postmaster, if running.
    pub fn postmaster_pid(&self) -> Option<u32> {
        self.sup.as_ref().and_then(Supervised::server_pid)
    }

    /// True while the postmaster process is alive.
    pub fn is_running(&mut self) -> bool {
        self.sup.as_mut().is_some_and(Supervised::is_running)
    }

    /// Opens a new connection to the `postgres` database.
    pub async fn connect(&self) -> Result<PgConnection> {
        PgConnection::connect(&self.dsn())
            .await
            .with_context(|| format!("connecting to {} ({})", self.name, self.dsn()))
    }

    /// Runs `sql` (one or more statements, simple protocol, no parameters)
    /// on the `postgres` database; returns rows affected.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        let mut conn = self.connect().await?;
        let res = sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("executing on {}: {sql}", self.name))?;
        conn.close().await.ok();
        Ok(res.rows_affected())
    }

    /// `CREATE DATABASE "name"`.
    pub async fn create_database(&self, name: &str) -> Result<()> {
        self.execute(&format!("CREATE DATABASE {}", quote_ident(name))).await.map(|_| ())
    }

    /// Sets `synchronous_standby_names` with `ALTER SYSTEM` and reloads.
    /// Use `""` to make replication asynchronous again.
    pub async fn set_synchronous_standby_names(&self, names: &str) -> Result<()> {
        self.execute(&format!("ALTER SYSTEM SET synchronous_standby_names = {}", quote_literal(names))).await?;
        self.execute("SELECT pg_reload_conf()").await?;
        Ok(())
    }

    /// Kills the postmaster with `SIGKILL` (simulates a crash).  The data
    /// directory is kept for [`PgCluster::restart`].
    pub fn kill(&mut self) {
        if let Some(sup) = self.sup.as_mut() {
            tracing::info!(name = %self.name, "killing postgres (SIGKILL)");
            sup.kill_now();
        }
    }

    /// Starts the server again on the same port and data directory (after
    /// [`PgCluster::kill`], or stopping it first with a fast shutdown if it is
    /// running) and waits until it accepts queries.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(sup) = self.sup.take() {
            sup.stop_keep_dir().await.with_context(|| format!("stopping {} for restart", self.name))?;
        }
        self.spawn_and_wait().await
    }

    /// Fast shutdown; removes the directory.
    pub async fn stop(mut self) -> Result<()> {
        match self.sup.take() {
            Some(sup) => sup.stop().await.with_context(|| format!("stopping postgres {}", self.name)),
            None => fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display())),
        }
    }

    fn write_lab_conf(&self, opts: &PgOptions) -> Result<()> {
        let mut conf = String::new();
        let sock = path_str(&self.data_dir)?;
        let ssn = opts.synchronous_standby_names.as_deref().unwrap_or("");
        let lines = [
            format!("listen_addresses = {}", quote_literal(&self.ip.to_string())),
            format!("port = {}", self.port),
            format!("unix_socket_directories = {}", quote_literal(&sock)),
            format!("cluster_name = {}", quote_literal(&format!("lab-{}-{}", self.name, self.port))),
            "wal_level = replica".into(),
            "max_wal_senders = 10".into(),
            "max_replication_slots = 10".into(),
            "hot_standby = on".into(),
            "fsync = off".into(),
            format!("synchronous_commit = {}", quote_literal(&opts.synchronous_commit)),
            format!("synchronous_standby_names = {}", quote_literal(ssn)),
            "wal_keep_size = '128MB'".into(),
            "shared_buffers = '32MB'".into(),
            "max_connections = 50".into(),
            "logging_collector = off".into(),
            "log_line_prefix = '%m [%p] %a '".into(),
            "log_min_messages = warning".into(),
        ];
        for line in lines.iter().chain(opts.extra_conf.iter()) {
            let _ = writeln!(conf, "{line}");
        }
        let path = self.data_dir.join("lab.conf");
        fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))
    }

    /// Starts the postmaster and waits until `SELECT 1` works.  After a crash
    /// the old backends may still hold the shared memory for a moment, so a
    /// postmaster that exits early is retried until [`READY_TIMEOUT`].
    async fn spawn_and_wait(&mut self) -> Result<()> {
        let started = Instant::now();
        let deadline = started + READY_TIMEOUT;
        loop {
            let sup = Supervised::spawn(
                &format!("postgres-{}", self.name),
                &self.bin.join("postgres"),
                &["-D".to_string(), path_str(&self.data_dir)?],
                SpawnOpts {
                    run_as: run_as().map(str::to_string),
                    stop_signal: StopSignal::Int,
                    cleanup_dir: Some(self.dir.clone()),
                    log_file: Some(self.log_file()),
                    env: Vec::new(),
                    cwd: Some(self.dir.clone()),
                },
            )?;
            self.sup = Some(sup);
            match self.wait_ready(deadline).await {
                Ok(()) => {
                    tracing::debug!(name = %self.name, elapsed = ?started.elapsed(), "postgres accepts queries");
                    return Ok(());
                }
                Err(e) => {
                    let exited = !self.is_running();
                    if exited && Instant::now() < deadline {
                        tracing::debug!(name = %self.name, error = %e, "postmaster exited early; retrying");
                        if let Some(sup) = self.sup.take() {
                            sup.stop_keep_dir().await.ok();
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                    let log = tail_file(&self.log_file(), 20);
                    return Err(
                        e.context(format!("postgres {} did not become ready; last log lines:\n{log}", self.name))
                    );
                }
            }
        }
    }

    async fn wait_ready(&mut self, deadline: Instant) -> Result<()> {
        loop {
            let attempt = async {
                let mut conn = self.connect().await?;
                sqlx::query("SELECT 1").execute(&mut conn).await.context("SELECT 1")?;
                conn.close().await.ok();
                anyhow::Ok(())
            };
            let err = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => anyhow::anyhow!("connection attempt timed out"),
            };
            if !self.is_running() {
                return Err(err.context("postmaster exited"));
            }
            if Instant::now() >= deadline {
                return Err(err.context(format!("not ready after {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_streaming_from(&self, primary: &PgCluster) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let check = async {
                let mut conn = self.connect().await?;
                let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                    .fetch_one(&mut conn)
                    .await
                    .context("pg_is_in_recovery()")?;
                conn.close().await.ok();
                if !in_recovery {
                    bail!("{} is not in recovery", self.name);
                }
                let mut pconn = primary.connect().await?;
                let state: Option<String> =
                    sqlx::query_scalar("SELECT state FROM pg_stat_replication WHERE application_name = $1")
                        .bind(&self.name)
                        .fetch_optional(&mut pconn)
                        .await
                        .context("reading pg_stat_replication")?;
                pconn.close().await.ok();
                match state.as_deref() {
                    Some("streaming") => Ok(()),
                    other => bail!("replication state of {} is {other:?}", self.name),
                }
            };
            let err = match tokio::time::timeout(Duration::from_secs(5), check).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => anyhow::anyhow!("check timed out"),
            };
            if Instant::now() >= deadline {
                return Err(err.context(format!("not streaming after {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The OS user to run PostgreSQL binaries as (`postgres` when we are root).
fn run_as() -> Option<&'static str> {
    is_root().then_some(PG_OS_USER)
}

/// Removes a directory on drop unless disarmed (setup failures before the
/// server's wrapper owns the directory).
struct DirGuard(Option<PathBuf>);

impl DirGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str().map(str::to_string).with_context(|| format!("path is not UTF-8: {}", p.display()))
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {mode:o} {}", p.display()))
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f =
        fs::OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("appending to {}", path.display()))
}

fn strip_auto_conf(data_dir: &Path, keys: &[&str]) -> Result<()> {
    let path = data_dir.join("postgresql.auto.conf");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let kept: String = text
        .lines()
        .filter(|l| !keys.iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    // Rewriting keeps owner and mode of the existing file.
    fs::write(&path, kept).with_context(|| format!("writing {}", path.display()))
}

/// SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// SQL identifier.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
