//! The `route53` provider: AWS Route 53 weighted records, one per region.
//!
//! Each region is one weighted record of the configured name (`SetIdentifier`
//! from `regions[].targets.<provider>.set_identifier`, default the region
//! name; optional `health_check_id`) whose `Weight` is the plan's weight
//! (Route 53 takes 0–255; plan weights 0–100 map directly). A region at 0 keeps
//! its record with weight 0, which Route 53 never answers while another record
//! has a weight. One `ChangeResourceRecordSets` batch UPSERTs every region and
//! a TXT record `_fo-epoch.<name>` carrying the plan's epoch (fencing: an older
//! plan is refused). Read-back lists the weighted records of the name.
//!
//! Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
//! `AWS_SESSION_TOKEN`) when set, otherwise the SDK's default chain (profile
//! files, web identity, instance roles). Region from configuration or
//! `AWS_REGION`. `endpoint_url` points the client at an emulator. TLS is rustls
//! with ring. The SDK's own retries are off: the applier retries with backoff.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::config::retry::RetryConfig;
use aws_sdk_route53::config::timeout::TimeoutConfig;
use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_route53::error::{DisplayErrorContext, SdkError};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use aws_smithy_http_client::tls;
use secrecy::ExposeSecret;

use super::{LiveState, ProviderError, TrafficProvider};
use crate::config::Route53Config;
use crate::plan::{Epoch, TrafficPlan, Weights};
use crate::region::RegionName;

/// Drives one weighted name in a Route 53 hosted zone.
pub struct Route53Provider {
    cfg: Route53Config,
    addresses: BTreeMap<RegionName, IpAddr>,
    client: Client,
}

impl std::fmt::Debug for Route53Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53Provider")
            .field("name", &self.cfg.name)
            .field("zone", &self.cfg.hosted_zone_id)
            .field("record", &self.cfg.record)
            .finish()
    }
}

/// The SDK's HTTP client on rustls with ring (no aws-lc build, no OpenSSL).
pub fn http_client() -> aws_sdk_route53::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

impl Route53Provider {
    /// A provider for `cfg`, publishing each region's address.
    pub async fn new(cfg: Route53Config, addresses: BTreeMap<RegionName, IpAddr>) -> Self {
        let http = http_client();
        let region = Region::new(cfg.region.clone());
        let credentials = match &cfg.credentials {
            Some(k) => SharedCredentialsProvider::new(Credentials::new(
                k.access_key_id.expose_secret(),
                k.secret_access_key.expose_secret(),
                k.session_token.as_ref().map(|t| t.expose_secret().to_string()),
                None,
                "failover-orchestrator-env",
            )),
            None => SharedCredentialsProvider::new(
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .region(region.clone())
                    .build()
                    .await,
            ),
        };
        let mut b = aws_sdk_route53::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(cfg.timeout).build());
        if let Some(url) = &cfg.endpoint_url {
            b = b.endpoint_url(url.clone());
        }
        let client = Client::from_conf(b.build());
        Self { cfg, addresses, client }
    }

    fn epoch_name(&self) -> String {
        format!("_fo-epoch.{}", self.cfg.record)
    }

    fn sdk_error<E: std::error::Error + 'static>(&self, e: SdkError<E, HttpResponse>) -> ProviderError {
        let detail: String = DisplayErrorContext(&e).to_string().chars().take(300).collect();
        match &e {
            SdkError::ServiceError(se) => ProviderError::Rejected {
                provider: self.cfg.name.clone(),
                status: se.raw().status().as_u16().to_string(),
                detail,
            },
            _ => ProviderError::Unreachable { provider: self.cfg.name.clone(), detail },
        }
    }

    fn record_set(&self, region: &RegionName, weight: u32) -> Result<Option<ResourceRecordSet>, ProviderError> {
        let (Some(target), Some(addr)) = (self.cfg.targets.get(region), self.addresses.get(region)) else {
            return Ok(None);
        };
        let mut b = ResourceRecordSet::builder()
            .name(&self.cfg.record)
            .r#type(if addr.is_ipv4() { RrType::A } else { RrType::Aaaa })
            .set_identifier(&target.set_identifier)
            .weight(i64::from(weight.min(255)))
            .ttl(i64::from(self.cfg.ttl))
            .resource_records(self.value(addr.to_string())?);
        if let Some(hc) = &target.health_check_id {
            b = b.health_check_id(hc);
        }
        b.build().map(Some).map_err(|e| self.malformed(e))
    }

    fn value(&self, v: String) -> Result<ResourceRecord, ProviderError> {
        ResourceRecord::builder().value(v).build().map_err(|e| self.malformed(e))
    }

    fn malformed(&self, e: impl std::fmt::Display) -> ProviderError {
        ProviderError::Malformed { provider: self.cfg.name.clone(), detail: e.to_string() }
    }

    /// Every record set of the zone at the record's name and the epoch name.
    async fn list(&self) -> Result<Vec<ResourceRecordSet>, ProviderError> {
        let mut out = Vec::new();
        let mut next: Option<(String, RrType, Option<String>)> = None;
        let wanted = [self.cfg.record.to_ascii_lowercase(), self.epoch_name().to_ascii_lowercase()];
        loop {
            let mut req = self.client.list_resource_record_sets().hosted_zone_id(&self.cfg.hosted_zone_id);
            if let Some((name, t, id)) = next.take() {
                req = req.start_record_name(name).start_record_type(t).set_start_record_identifier(id);
            }
            let resp = req.send().await.map_err(|e| self.sdk_error(e))?;
            out.extend(resp.resource_record_sets().iter().filter(|r| wanted.contains(&normalise(r.name()))).cloned());
            match (resp.is_truncated(), resp.next_record_name(), resp.next_record_type()) {
                (true, Some(n), Some(t)) => {
                    next = Some((n.to_string(), t.clone(), resp.next_record_identifier().map(str::to_string)))
                }
                _ => return Ok(out),
            }
        }
    }
}

/// Route 53 names come back with a trailing dot and may escape characters; compare lowercased with a dot.
fn normalise(name: &str) -> String {
    let n = name.replace("\\052", "*").to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

fn parse_epoch(value: &str) -> Option<Epoch> {
    value
        .trim_matches('"')
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("fo-epoch="))
        .and_then(|e| e.parse().ok())
        .map(Epoch)
}

#[async_trait]
impl TrafficProvider for Route53Provider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        let live = self.read_back().await?;
        if let Some(e) = live.epoch.filter(|e| *e > plan.epoch) {
            return Err(ProviderError::StaleEpoch { provider: self.cfg.name.clone(), plan: plan.epoch, live: e });
        }
        if live.weights == self.expressible(&plan.weights) && live.epoch == Some(plan.epoch) {
            return Ok(()); // idempotent: already served
        }
        let mut changes = Vec::new();
        for region in self.cfg.targets.keys() {
            if let Some(set) = self.record_set(region, plan.weights.get(region))? {
                changes.push(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .map_err(|e| self.malformed(e))?,
                );
            }
        }
        let txt = ResourceRecordSet::builder()
            .name(self.epoch_name())
            .r#type(RrType::Txt)
            .ttl(i64::from(self.cfg.ttl))
            .resource_records(self.value(format!("\"fo-epoch={} plan={}\"", plan.epoch, plan.id))?)
            .build()
            .map_err(|e| self.malformed(e))?;
        changes.push(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(txt)
                .build()
                .map_err(|e| self.malformed(e))?,
        );
        let batch = ChangeBatch::builder()
            .comment(format!("failover-orchestrator plan {} epoch {}", plan.id, plan.epoch))
            .set_changes(Some(changes))
            .build()
            .map_err(|e| self.malformed(e))?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(&self.cfg.hosted_zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| self.sdk_error(e))?;
        Ok(())
    }

    async fn read_back(&self) -> Result<LiveState, ProviderError> {
        let sets = self.list().await?;
        let by_id: BTreeMap<&str, &RegionName> =
            self.cfg.targets.iter().map(|(r, t)| (t.set_identifier.as_str(), r)).collect();
        let mut weights = Weights::default();
        let mut epoch = None;
        let epoch_name = self.epoch_name().to_ascii_lowercase();
        for s in &sets {
            if normalise(s.name()) == epoch_name {
                if *s.r#type() == RrType::Txt {
                    epoch = s.resource_records().iter().find_map(|r| parse_epoch(r.value()));
                }
                continue;
            }
            if !matches!(s.r#type(), RrType::A | RrType::Aaaa) {
                continue;
            }
            let Some(id) = s.set_identifier() else { continue };
            let Some(region) = by_id.get(id) else {
                return Err(self
                    .malformed(format!("record {} has set identifier `{id}`, which is no region's", self.cfg.record)));
            };
            let w = u32::try_from(s.weight().unwrap_or(0)).unwrap_or(0);
            if w > 0 {
                weights.set(region, weights.get(region) + w);
            }
        }
        Ok(LiveState { weights, epoch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_with_a_trailing_dot_and_in_lower_case() {
        assert_eq!(normalise("App.Example.test"), "app.example.test.");
        assert_eq!(normalise("app.example.test."), "app.example.test.");
    }

    #[test]
    fn epoch_is_read_from_the_quoted_txt_value() {
        assert_eq!(parse_epoch("\"fo-epoch=7 plan=x\""), Some(Epoch(7)));
        assert_eq!(parse_epoch("\"hello\""), None);
    }
}
