//! The `haproxy` provider: server weights of one backend through HAProxy's runtime API.
//!
//! Each region is one server of the configured backend (its name from
//! `regions[].targets.<provider>`, default the region name). A plan sets every
//! server's weight to the plan's weight (HAProxy weights are 0–256, plan
//! weights 0–100 map directly) and its state to `ready`; a region at 0 gets
//! weight 0 and state `drain`, so it takes no new connections but finishes the
//! ones it has. Weights are raised before others are drained, so there is no
//! moment where every server is drained. Read-back parses `show servers state`:
//! a drained or maintenance server counts as 0.
//!
//! HAProxy has nowhere to keep the plan's epoch, so fencing is per process:
//! the provider refuses a plan older than the last one it applied, and the
//! read-back reports no epoch. Changes through the runtime API are not written
//! to haproxy.cfg: after an HAProxy reload the configured weights return until
//! the next drift check reconciles them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{LiveState, ProviderError, TrafficProvider};
use crate::config::HaproxyConfig;
use crate::plan::{Epoch, TrafficPlan, Weights};
use crate::region::RegionName;

/// Admin-state bits of `show servers state` meaning "takes no new traffic":
/// maintenance (forced, inherited, config, resolution, hostname) and drain (forced, inherited).
const ADMIN_NO_TRAFFIC: u32 = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40;

/// Drives one backend's server weights.
#[derive(Debug)]
pub struct HaproxyProvider {
    cfg: HaproxyConfig,
    /// Epoch of the last plan this process applied (HAProxy cannot keep it).
    last_epoch: Mutex<Option<Epoch>>,
}

/// One server as `show servers state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// Server name.
    pub name: String,
    /// Operational state (0 stopped, 1 starting, 2 running, 3 stopping).
    pub op_state: u32,
    /// Admin state bits.
    pub admin_state: u32,
    /// User-set weight.
    pub weight: u32,
}

impl ServerState {
    /// The weight it takes traffic with: 0 when drained or in maintenance.
    pub fn effective_weight(&self) -> u32 {
        if self.admin_state & ADMIN_NO_TRAFFIC != 0 { 0 } else { self.weight }
    }
}

/// Parses `show servers state <backend>` output (header line with `# be_id …`).
///
/// # Errors
/// A message when the header or a line cannot be read.
pub fn parse_servers_state(text: &str) -> Result<Vec<ServerState>, String> {
    let mut columns: Option<Vec<&str>> = None;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(h) = line.strip_prefix('#') {
            columns = Some(h.split_whitespace().collect());
            continue;
        }
        let Some(cols) = &columns else { continue }; // the leading version line
        let fields: Vec<&str> = line.split_whitespace().collect();
        let get = |name: &str| -> Result<&str, String> {
            let i = cols.iter().position(|c| *c == name).ok_or_else(|| format!("no `{name}` column"))?;
            fields.get(i).copied().ok_or_else(|| format!("short line `{line}`"))
        };
        let num = |name: &str| -> Result<u32, String> {
            get(name)?.parse().map_err(|_| format!("`{name}` is not a number in `{line}`"))
        };
        out.push(ServerState {
            name: get("srv_name")?.to_string(),
            op_state: num("srv_op_state")?,
            admin_state: num("srv_admin_state")?,
            weight: num("srv_uweight")?,
        });
    }
    if columns.is_none() {
        return Err(format!("unexpected answer: `{}`", text.chars().take(200).collect::<String>()));
    }
    Ok(out)
}

/// The runtime API commands that make the backend serve `weights`: raise first, then drain.
pub fn commands(backend: &str, servers: &BTreeMap<RegionName, String>, weights: &Weights) -> Vec<String> {
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (region, server) in servers {
        let w = weights.get(region).min(256);
        if w > 0 {
            up.push(format!("set weight {backend}/{server} {w}"));
            up.push(format!("set server {backend}/{server} state ready"));
        } else {
            down.push(format!("set server {backend}/{server} state drain"));
            down.push(format!("set weight {backend}/{server} 0"));
        }
    }
    up.extend(down);
    up
}

impl HaproxyProvider {
    /// A provider for `cfg`.
    pub fn new(cfg: HaproxyConfig) -> Self {
        Self { cfg, last_epoch: Mutex::new(None) }
    }

    fn unreachable(&self, detail: String) -> ProviderError {
        ProviderError::Unreachable { provider: self.cfg.name.clone(), detail }
    }

    /// Sends one command and returns the answer (the runtime API closes after each).
    async fn command(&self, cmd: &str) -> Result<String, ProviderError> {
        match tokio::time::timeout(self.cfg.timeout, crate::haproxy_runtime::command(&self.cfg.admin, cmd)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(self.unreachable(format!("runtime API: {e}"))),
            Err(_) => Err(self.unreachable(format!("runtime API timed out after {:?}", self.cfg.timeout))),
        }
    }

    /// Reads every server of the backend.
    pub async fn servers(&self) -> Result<Vec<ServerState>, ProviderError> {
        let answer = self.command(&format!("show servers state {}", self.cfg.backend)).await?;
        parse_servers_state(&answer)
            .map_err(|detail| ProviderError::Malformed { provider: self.cfg.name.clone(), detail })
    }

    fn check_epoch(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        let last = *self.last_epoch.lock().unwrap_or_else(|p| p.into_inner());
        match last {
            Some(live) if live > plan.epoch => {
                Err(ProviderError::StaleEpoch { provider: self.cfg.name.clone(), plan: plan.epoch, live })
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl TrafficProvider for HaproxyProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        self.check_epoch(plan)?;
        for cmd in commands(&self.cfg.backend, &self.cfg.servers, &plan.weights) {
            let answer = self.command(&cmd).await?;
            // `set weight` and `set server` answer nothing on success.
            let answer = answer.trim();
            if !answer.is_empty() {
                return Err(ProviderError::Rejected {
                    provider: self.cfg.name.clone(),
                    status: "runtime API".into(),
                    detail: format!("`{cmd}`: {}", answer.chars().take(300).collect::<String>()),
                });
            }
        }
        *self.last_epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some(plan.epoch);
        Ok(())
    }

    async fn read_back(&self) -> Result<LiveState, ProviderError> {
        let servers = self.servers().await?;
        let mut weights = Weights::default();
        for (region, server) in &self.cfg.servers {
            let Some(s) = servers.iter().find(|s| &s.name == server) else {
                return Err(ProviderError::Malformed {
                    provider: self.cfg.name.clone(),
                    detail: format!("backend {} has no server `{server}` (region {region})", self.cfg.backend),
                });
            };
            let w = s.effective_weight();
            if w > 0 {
                weights.set(region, w);
            }
        }
        let epoch = *self.last_epoch.lock().unwrap_or_else(|p| p.into_inner());
        Ok(LiveState { weights, epoch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change\n3 app 1 primary 127.0.0.1 2 0 80 100 5\n3 app 2 standby 127.0.0.1 2 8 0 100 5\n3 app 3 dr 127.0.0.1 2 1 30 100 5\n";

    #[test]
    fn servers_state_is_parsed_by_column_name() {
        let s = parse_servers_state(STATE).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], ServerState { name: "primary".into(), op_state: 2, admin_state: 0, weight: 80 });
        assert_eq!(s[0].effective_weight(), 80);
    }

    #[test]
    fn drained_and_maintenance_servers_take_no_traffic() {
        let s = parse_servers_state(STATE).unwrap();
        assert_eq!(s[1].effective_weight(), 0);
        assert_eq!(s[2].effective_weight(), 0, "maintenance with a weight still serves nothing");
    }

    #[test]
    fn an_error_answer_is_not_parsed_as_an_empty_backend() {
        assert!(parse_servers_state("Can't find backend.\n").is_err());
    }

    #[test]
    fn commands_raise_weights_before_draining() {
        let servers: BTreeMap<RegionName, String> =
            [(RegionName::new("primary"), "p".to_string()), (RegionName::new("standby"), "s".to_string())]
                .into_iter()
                .collect();
        let w = Weights::from_pairs([(RegionName::new("primary"), 0), (RegionName::new("standby"), 100)]);
        let c = commands("app", &servers, &w);
        assert_eq!(
            c,
            vec![
                "set weight app/s 100",
                "set server app/s state ready",
                "set server app/p state drain",
                "set weight app/p 0"
            ]
        );
    }
}
