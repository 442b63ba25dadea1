//! The `powerdns` provider: weighted DNS answers through the PowerDNS Authoritative HTTP API.
//!
//! A plan becomes one `LUA` rrset at the configured name whose record calls
//! `pickwrandom`: each query answers one region's address, chosen with the
//! plan's weights. Regions at weight 0 are left out, so they are never
//! answered. IPv4 and IPv6 regions get an `A` and an `AAAA` LUA record. The
//! rrset's comment carries the epoch and plan id: a plan from an older epoch
//! is refused (fencing), and read-back parses the live record back into weights.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::propagation::{Expect, Target};
use super::{LiveState, ProviderError, TrafficProvider, nonzero};
use crate::config::PowerDnsConfig;
use crate::plan::{Epoch, TrafficPlan, Weights};
use crate::region::RegionName;

/// Account name written on the rrset comment.
const ACCOUNT: &str = "failover-orchestrator";

/// Drives one weighted name on a PowerDNS server.
pub struct PowerDnsProvider {
    cfg: PowerDnsConfig,
    addresses: BTreeMap<RegionName, IpAddr>,
    http: reqwest::Client,
}

impl std::fmt::Debug for PowerDnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDnsProvider").field("name", &self.cfg.name).field("api_url", &self.cfg.api_url).finish()
    }
}

impl PowerDnsProvider {
    /// A provider for `cfg`, answering each region with its address.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(cfg: PowerDnsConfig, addresses: BTreeMap<RegionName, IpAddr>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(cfg.timeout).build()?;
        Ok(Self { cfg, addresses, http })
    }

    fn zone_url(&self) -> String {
        format!("{}/api/v1/servers/{}/zones/{}", self.cfg.api_url, self.cfg.server_id, self.cfg.zone)
    }

    fn unreachable(&self, e: &reqwest::Error) -> ProviderError {
        let detail = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        };
        ProviderError::Unreachable { provider: self.cfg.name.clone(), detail }
    }

    /// Sends an authenticated API request; a non-2xx answer is a [`ProviderError::Rejected`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
        let resp =
            req.header("X-API-Key", self.cfg.api_key.expose_secret()).send().await.map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16().to_string();
            let detail = resp.text().await.unwrap_or_default().chars().take(300).collect();
            return Err(ProviderError::Rejected { provider: self.cfg.name.clone(), status, detail });
        }
        Ok(resp)
    }

    /// The LUA record contents for `weights`: one per address family present.
    pub fn lua_contents(&self, weights: &Weights) -> Vec<String> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (region, w) in weights.iter().filter(|(_, w)| *w > 0) {
            if let Some(addr) = self.addresses.get(region) {
                let entry = format!("{{{w}, '{addr}'}}");
                if addr.is_ipv4() { v4.push(entry) } else { v6.push(entry) }
            }
        }
        let mut out = Vec::new();
        if !v4.is_empty() {
            out.push(format!("A \"pickwrandom({{{}}})\"", v4.join(", ")));
        }
        if !v6.is_empty() {
            out.push(format!("AAAA \"pickwrandom({{{}}})\"", v6.join(", ")));
        }
        out
    }

    /// Parses LUA contents written by [`Self::lua_contents`] back into weights.
    fn parse_contents(&self, contents: &[String]) -> Result<Weights, String> {
        let by_addr: BTreeMap<IpAddr, &RegionName> = self.addresses.iter().map(|(r, a)| (*a, r)).collect();
        let mut w = Weights::default();
        for c in contents {
            let Some(start) = c.find("pickwrandom(") else {
                return Err(format!("record `{c}` is not a pickwrandom LUA record"));
            };
            let body = &c[start + "pickwrandom(".len()..];
            // Entries look like {80, '192.0.2.1'}; split on '{' and read weight and address.
            for part in body.split('{').skip(1) {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                let Some((weight, rest)) = part.split_once(',') else { continue };
                let weight: u32 = weight.trim().parse().map_err(|_| format!("bad weight in `{c}`"))?;
                let addr = rest.split('\'').nth(1).ok_or_else(|| format!("no address in `{c}`"))?;
                let addr: IpAddr = addr.parse().map_err(|_| format!("bad address `{addr}`"))?;
                let region = by_addr.get(&addr).ok_or_else(|| format!("address {addr} belongs to no region"))?;
                w.set(region, w.get(region) + weight);
            }
        }
        Ok(w)
    }
}

#[async_trait]
impl TrafficProvider for PowerDnsProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        let live = self.read_back().await?;
        if let Some(epoch) = live.epoch
            && epoch > plan.epoch
        {
            return Err(ProviderError::StaleEpoch { provider: self.cfg.name.clone(), plan: plan.epoch, live: epoch });
        }
        if live.weights == nonzero(&plan.weights) && live.epoch == Some(plan.epoch) {
            return Ok(()); // idempotent: already served
        }
        let contents = self.lua_contents(&plan.weights);
        if contents.is_empty() {
            return Err(ProviderError::Rejected {
                provider: self.cfg.name.clone(),
                status: "plan".into(),
                detail: "no region with weight > 0 has an address".into(),
            });
        }
        let records: Vec<Value> = contents.iter().map(|c| json!({ "content": c, "disabled": false })).collect();
        let body = json!({
            "rrsets": [{
                "name": self.cfg.record,
                "type": "LUA",
                "ttl": self.cfg.ttl,
                "changetype": "REPLACE",
                "records": records,
                "comments": [{ "content": format!("epoch={} plan={}", plan.epoch, plan.id), "account": ACCOUNT }],
            }]
        });
        self.send(self.http.patch(self.zone_url()).json(&body)).await?;
        Ok(())
    }

    async fn read_back(&self) -> Result<LiveState, ProviderError> {
        let resp = self.send(self.http.get(self.zone_url())).await?;
        let zone: Value = resp
            .json()
            .await
            .map_err(|e| ProviderError::Malformed { provider: self.cfg.name.clone(), detail: e.to_string() })?;
        let rrsets = zone.get("rrsets").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(rrset) = rrsets.iter().find(|r| {
            r.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&self.cfg.record))
                && r.get("type").and_then(Value::as_str) == Some("LUA")
        }) else {
            return Ok(LiveState { weights: Weights::default(), epoch: None });
        };
        let contents: Vec<String> = rrset
            .get("records")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter(|r| !r.get("disabled").and_then(Value::as_bool).unwrap_or(false))
                    .filter_map(|r| r.get("content").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let weights = self
            .parse_contents(&contents)
            .map_err(|detail| ProviderError::Malformed { provider: self.cfg.name.clone(), detail })?;
        let epoch = rrset
            .get("comments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("content").and_then(Value::as_str))
            .find_map(|c| {
                c.split_whitespace().find_map(|kv| kv.strip_prefix("epoch=")).and_then(|e| e.parse::<i64>().ok())
            })
            .map(Epoch);
        Ok(LiveState { weights: nonzero(&weights), epoch })
    }

    /// Propagation: the DNS listener (`dns_addr`) must answer only regions with weight > 0
    /// (LUA `pickwrandom` answers one of them per query, so queries are sampled).
    fn propagation_target(&self, plan: &TrafficPlan) -> Option<Target> {
        let server = self.cfg.dns_addr?;
        let allowed =
            plan.weights.iter().filter(|(_, w)| *w > 0).filter_map(|(r, _)| self.addresses.get(r).copied()).collect();
        Some(Target { name: self.cfg.record.clone(), servers: vec![server], expect: Expect::Within(allowed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn provider() -> PowerDnsProvider {
        let cfg = PowerDnsConfig {
            name: "pdns".into(),
            api_url: "http://127.0.0.1:1".into(),
            api_key: "k".to_string().into(),
            server_id: "localhost".into(),
            zone: "example.test.".into(),
            record: "app.example.test.".into(),
            ttl: 5,
            timeout: Duration::from_secs(1),
            dns_addr: None,
        };
        let addrs = [
            (RegionName::new("primary"), "192.0.2.1".parse().unwrap()),
            (RegionName::new("standby"), "192.0.2.2".parse().unwrap()),
            (RegionName::new("dr"), "2001:db8::3".parse().unwrap()),
        ]
        .into_iter()
        .collect();
        PowerDnsProvider::new(cfg, addrs).unwrap()
    }

    #[test]
    fn lua_content_leaves_out_zero_weights_and_round_trips() {
        let p = provider();
        let w = Weights::from_pairs([
            (RegionName::new("primary"), 80),
            (RegionName::new("standby"), 20),
            (RegionName::new("dr"), 0),
        ]);
        let c = p.lua_contents(&w);
        assert_eq!(c, vec!["A \"pickwrandom({{80, '192.0.2.1'}, {20, '192.0.2.2'}})\"".to_string()]);
        assert_eq!(nonzero(&p.parse_contents(&c).unwrap()), nonzero(&w));
    }

    #[test]
    fn ipv6_regions_get_an_aaaa_record() {
        let p = provider();
        let w = Weights::from_pairs([(RegionName::new("primary"), 50), (RegionName::new("dr"), 50)]);
        let c = p.lua_contents(&w);
        assert_eq!(c.len(), 2);
        assert!(c[1].starts_with("AAAA"));
        assert_eq!(p.parse_contents(&c).unwrap(), w);
    }

    #[test]
    fn foreign_addresses_are_reported_not_guessed() {
        let p = provider();
        let err = p.parse_contents(&["A \"pickwrandom({{100, '198.51.100.7'}})\"".into()]).unwrap_err();
        assert!(err.contains("198.51.100.7"));
    }
}
