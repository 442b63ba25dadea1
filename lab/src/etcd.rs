//! A real etcd 3.4 cluster on loopback for the tests and the three-orchestrator lab: one
//! member per region, each a supervised `etcd` process with its own free client and peer ports.
//!
//! Every member runs `/usr/bin/etcd` (Debian's `etcd-server`) under
//! [`crate::process::Supervised`] in its own temporary directory (data directory plus
//! `etcd.log`), which the wrapper removes when the member's handle is stopped or dropped, or
//! when this process dies in any way. [`EtcdCluster::kill`] and [`EtcdCluster::stop_member`]
//! keep that directory, so [`EtcdCluster::restart`] brings the same member back and it rejoins
//! the cluster from its own data. Timings are short (heartbeat 100 ms, election 1 s), so a lost
//! leader is replaced within about a second and a lost majority shows within a few.
//!
//! Health is etcd's own `GET /health` (`{"health":"true"}` only while the member sees a leader
//! and can serve a read through it): this module never interprets the raft state itself.
//!
//! This module must not: use the system's etcd service or configuration, listen on anything
//! but loopback, or leave processes or directories behind.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::process::{
    SpawnOpts, StopSignal, Supervised, free_port, send_signal, tail_file, unique_temp_dir, wait_for_tcp,
};

/// The server binary (Debian's `etcd-server`).
pub const ETCD: &str = "/usr/bin/etcd";

/// How long [`EtcdCluster::start`] waits for every member to report healthy.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound on one `GET /health`: etcd itself gives up on its internal read after one second.
const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Pause between polls.
const POLL: Duration = Duration::from_millis(100);

/// One member to start: its name (the lab uses the region's) and the loopback address it
/// listens on.
#[derive(Debug, Clone)]
pub struct EtcdMemberSpec {
    /// Member name, unique in the cluster.
    pub name: String,
    /// Address of its client and peer listeners.
    pub ip: IpAddr,
}

impl EtcdMemberSpec {
    /// A member called `name` on `ip`.
    pub fn new(name: &str, ip: IpAddr) -> Self {
        Self { name: name.to_string(), ip }
    }
}

/// One member of an [`EtcdCluster`].
#[derive(Debug)]
pub struct EtcdMember {
    name: String,
    ip: IpAddr,
    client_port: u16,
    peer_port: u16,
    /// The member's own directory: `data/` and `etcd.log`.
    dir: PathBuf,
    /// `None` after [`EtcdCluster::stop_member`].
    sup: Option<Supervised>,
    /// Set between [`EtcdCluster::pause`] and [`EtcdCluster::resume`].
    paused: bool,
}

impl EtcdMember {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where clients connect.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.client_port)
    }

    /// `http://IP:PORT` of the client listener.
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client_addr())
    }

    /// `http://IP:PORT` of the peer listener.
    pub fn peer_url(&self) -> String {
        format!("http://{}", SocketAddr::new(self.ip, self.peer_port))
    }

    /// The member's log (kept until the cluster stops; quoted in error messages).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// Pid of the `etcd` process, while one runs.
    pub fn pid(&self) -> Option<u32> {
        self.sup.as_ref().and_then(Supervised::server_pid)
    }

    /// True while the member's process is alive (a paused one counts as alive).
    pub fn is_running(&mut self) -> bool {
        self.sup.as_mut().is_some_and(Supervised::is_running)
    }
}

/// A running etcd cluster; dropping it stops every member and removes their directories.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<EtcdMember>,
    /// `name=peer_url,…` of every member, as given to each at its first start.
    initial_cluster: String,
    /// Distinguishes this cluster from any other on the machine.
    token: String,
    http: reqwest::Client,
}

impl EtcdCluster {
    /// Starts one member per spec, all in one new cluster, and waits until each reports healthy.
    ///
    /// # Errors
    /// When `/usr/bin/etcd` is missing (run `scripts/install-deps.sh`), names repeat, or a member
    /// does not become healthy within [`READY_TIMEOUT`] (the error quotes its log).
    pub async fn start(specs: &[EtcdMemberSpec]) -> Result<EtcdCluster> {
        let started = Instant::now();
        if !Path::new(ETCD).is_file() {
            bail!("{ETCD} not found: install etcd-server (scripts/install-deps.sh)");
        }
        if specs.is_empty() {
            bail!("an etcd cluster needs at least one member");
        }
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.name == s.name) {
                bail!("etcd member name `{}` given twice", s.name);
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(HEALTH_REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client for etcd health checks")?;
        let mut members: Vec<EtcdMember> = Vec::new();
        for s in specs {
            let dir = match unique_temp_dir(&format!("etcd-{}", s.name)) {
                Ok(dir) => dir,
                Err(e) => {
                    for m in &members {
                        let _ = std::fs::remove_dir_all(&m.dir);
                    }
                    return Err(e);
                }
            };
            members.push(EtcdMember {
                name: s.name.clone(),
                ip: s.ip,
                client_port: free_port(s.ip),
                peer_port: free_port(s.ip),
                dir,
                sup: None,
                paused: false,
            });
        }
        let initial_cluster =
            members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect::<Vec<_>>().join(",");
        let token = format!("fo-lab-{}-{:08x}", std::process::id(), rand::random::<u32>());
        // From here on, dropping `cluster` on an error stops whatever was started and removes
        // every member's directory (the wrappers own them once spawned; the rest go here).
        let mut cluster = EtcdCluster { members, initial_cluster, token, http };
        for i in 0..cluster.members.len() {
            if let Err(e) = cluster.spawn(i) {
                cluster.stop().await;
                return Err(e);
            }
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..cluster.members.len() {
            let name = cluster.members[i].name.clone();
            if let Err(e) = cluster.wait_healthy_until(&name, deadline).await {
                cluster.stop().await;
                return Err(e.context("starting the etcd cluster"));
            }
        }
        tracing::info!(members = specs.len(), elapsed = ?started.elapsed(), "etcd cluster healthy");
        Ok(cluster)
    }

    /// The members, in the order given to [`EtcdCluster::start`].
    pub fn members(&self) -> &[EtcdMember] {
        &self.members
    }

    /// The member called `name`.
    ///
    /// # Errors
    /// When there is none.
    pub fn member(&self, name: &str) -> Result<&EtcdMember> {
        self.members.iter().find(|m| m.name == name).with_context(|| format!("no etcd member named `{name}`"))
    }

    /// `http://IP:PORT` of member `name`'s client listener.
    ///
    /// # Errors
    /// When there is no such member.
    pub fn client_url(&self, name: &str) -> Result<String> {
        Ok(self.member(name)?.client_url())
    }

    /// Every member's client URL, comma-separated (`etcdctl --endpoints` form).
    pub fn endpoints(&self) -> String {
        self.members.iter().map(EtcdMember::client_url).collect::<Vec<_>>().join(",")
    }

    /// Kills member `name` with `SIGKILL` (a crash). Its data directory is kept for
    /// [`EtcdCluster::restart`].
    ///
    /// # Errors
    /// When there is no such member.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        let m = self.member_mut(name)?;
        tracing::info!(member = %m.name, "killing etcd member (SIGKILL)");
        if let Some(sup) = m.sup.as_mut() {
            sup.kill_now();
        }
        m.paused = false;
        Ok(())
    }

    /// Stops member `name` gracefully (`SIGTERM`), keeping its data directory.
    ///
    /// # Errors
    /// When there is no such member or its supervisor cannot stop it.
    pub async fn stop_member(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        self.resume_index(i)?;
        if let Some(sup) = self.members[i].sup.take() {
            sup.stop_keep_dir().await.with_context(|| format!("stopping etcd member {name}"))?;
        }
        Ok(())
    }

    /// Starts member `name` again on its ports and data directory (stopping it first when it
    /// still runs) and waits until it accepts client connections. It is not necessarily healthy
    /// yet: alone it has no majority; see [`EtcdCluster::wait_healthy`].
    ///
    /// # Errors
    /// When there is no such member, or it does not listen within [`READY_TIMEOUT`].
    pub async fn restart(&mut self, name: &str) -> Result<()> {
        self.stop_member(name).await?;
        let i = self.index(name)?;
        self.spawn(i)?;
        let addr = self.members[i].client_addr();
        if let Err(e) = wait_for_tcp(addr, READY_TIMEOUT).await {
            return Err(e.context(format!(
                "etcd member {name} did not listen again; last log lines:\n{}",
                tail_file(&self.members[i].log_file(), 20)
            )));
        }
        Ok(())
    }

    /// Freezes member `name` (`SIGSTOP`): its sockets stay open but nothing answers, like a
    /// hung host. Undone by [`EtcdCluster::resume`] (and before any stop).
    ///
    /// # Errors
    /// When there is no such member, it is not running, or `kill` fails.
    pub fn pause(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        let pid = self.members[i].pid().with_context(|| format!("etcd member {name} is not running"))?;
        send_signal("STOP", pid)?;
        self.members[i].paused = true;
        Ok(())
    }

    /// Lets a member frozen by [`EtcdCluster::pause`] run again (`SIGCONT`).
    ///
    /// # Errors
    /// When there is no such member or `kill` fails.
    pub fn resume(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        self.resume_index(i)
    }

    /// Asks member `name` once whether it is healthy (`GET /health` answers `"health":"true"`).
    /// A refused, timed-out or unhealthy answer is `false`, not an error.
    ///
    /// # Errors
    /// When there is no such member.
    pub async fn is_healthy(&self, name: &str) -> Result<bool> {
        let url = format!("{}/health", self.member(name)?.client_url());
        let answer = async { self.http.get(&url).send().await?.json::<Value>().await };
        Ok(match answer.await {
            Ok(body) => body.get("health").and_then(Value::as_str) == Some("true"),
            Err(e) => {
                tracing::debug!(member = name, error = %e, "etcd health check failed");
                false
            }
        })
    }

    /// Waits until member `name` reports healthy.
    ///
    /// # Errors
    /// When there is no such member, or after `timeout` (quoting its log).
    pub async fn wait_healthy(&self, name: &str, timeout: Duration) -> Result<()> {
        self.wait_healthy_until(name, Instant::now() + timeout).await
    }

    /// Stops every member and removes their directories.
    pub async fn stop(mut self) {
        for i in 0..self.members.len() {
            let _ = self.resume_index(i);
            if let Some(sup) = self.members[i].sup.take()
                && let Err(e) = sup.stop().await
            {
                tracing::warn!(member = %self.members[i].name, error = %e, "stopping etcd member");
            }
            let _ = std::fs::remove_dir_all(&self.members[i].dir);
        }
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.members.iter().position(|m| m.name == name).with_context(|| format!("no etcd member named `{name}`"))
    }

    fn member_mut(&mut self, name: &str) -> Result<&mut EtcdMember> {
        let i = self.index(name)?;
        Ok(&mut self.members[i])
    }

    fn resume_index(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        if m.paused {
            if let Some(pid) = m.pid() {
                send_signal("CONT", pid)?;
            }
            m.paused = false;
        }
        Ok(())
    }

    /// Spawns member `i`'s process. On its first start it creates its data directory as part of
    /// the new cluster; later the flags `--initial-*` are ignored by etcd and it rejoins from its
    /// data.
    fn spawn(&mut self, i: usize) -> Result<()> {
        let m = &self.members[i];
        let data = m.dir.join("data");
        let client = m.client_url();
        let peer = m.peer_url();
        let args: Vec<String> = [
            "--name",
            &m.name,
            "--data-dir",
            &data.to_string_lossy(),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &self.initial_cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            &self.token,
            "--heartbeat-interval",
            "100",
            "--election-timeout",
            "1000",
            // A member coming back after a pause or partition does not disrupt the leader.
            "--pre-vote=true",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
            "--log-level",
            "warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let sup = Supervised::spawn(
            &format!("etcd-{}", m.name),
            Path::new(ETCD),
            &args,
            SpawnOpts { stop_signal: StopSignal::Term, ..SpawnOpts::in_dir(&m.dir, &m.log_file()) },
        )
        .with_context(|| format!("starting etcd member {}", m.name))?;
        self.members[i].sup = Some(sup);
        Ok(())
    }

    async fn wait_healthy_until(&self, name: &str, deadline: Instant) -> Result<()> {
        loop {
            if self.is_healthy(name).await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "etcd member {name} not healthy in time; last log lines:\n{}",
                    tail_file(&self.member(name)?.log_file(), 20)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
