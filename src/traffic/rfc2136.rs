//! The `rfc2136` provider: a name's A/AAAA record set through RFC 2136 dynamic
//! updates signed with TSIG (BIND 9, Knot, PowerDNS with `dnsupdate`, …).
//!
//! **DNS has no weights.** The mapping is: every region with a weight above 0
//! is served (its address is in the record set, so resolvers spread clients
//! over the served regions about equally); a region at 0 is removed. Read-back
//! maps the answers back the same way: each served region reads as weight 1,
//! and [`TrafficProvider::expressible`] turns a plan into that same form, so
//! `80/20/0` and `50/50/0` both read back as "primary and standby served".
//! A plan that only changes the ratio between served regions changes nothing
//! on the server.
//!
//! One update message replaces the set atomically: delete the A, AAAA and TXT
//! rrsets of the name, add one A/AAAA per served region, add a TXT
//! `"fo-epoch=<n> plan=<id>"` that carries the fencing epoch. A plan older than
//! the epoch in the TXT is refused. Updates and queries go over TCP, signed by
//! hickory's [`TSigner`]; the secret is never logged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use futures::StreamExt;
use hickory_net::DnsMultiplexer;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_net::proto::rr::rdata::tsig::TsigAlgorithm as HickoryTsig;
use hickory_net::proto::rr::rdata::{A, AAAA, TXT};
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::DnsHandle;

use super::propagation::{Expect, Target};
use super::{LiveState, ProviderError, TrafficProvider};
use crate::config::{Rfc2136Config, TsigAlgorithm};
use crate::plan::{Epoch, TrafficPlan, Weights};
use crate::region::RegionName;

/// TSIG time fudge, seconds.
const FUDGE: u16 = 300;

/// Every region with a weight above 0, as weight 1: what DNS without weights can express.
pub fn served(weights: &Weights) -> Weights {
    Weights::from_pairs(weights.iter().filter(|(_, w)| *w > 0).map(|(r, _)| (r.clone(), 1)))
}

/// Drives one name on a DNS server through signed dynamic updates.
pub struct Rfc2136Provider {
    cfg: Rfc2136Config,
    addresses: BTreeMap<RegionName, IpAddr>,
    signer: TSigner,
    zone: Name,
    record: Name,
}

impl std::fmt::Debug for Rfc2136Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136Provider")
            .field("name", &self.cfg.name)
            .field("server", &self.cfg.server)
            .field("record", &self.cfg.record)
            .finish()
    }
}

impl Rfc2136Provider {
    /// A provider for `cfg`, publishing each region's address.
    ///
    /// # Errors
    /// When the names or the TSIG key are invalid (checked by `check-config` already).
    pub fn new(cfg: Rfc2136Config, addresses: BTreeMap<RegionName, IpAddr>) -> anyhow::Result<Self> {
        let key = cfg.tsig_key().ok_or_else(|| anyhow::anyhow!("{}: the TSIG secret is not base64", cfg.name))?;
        let algorithm = match cfg.tsig_algorithm {
            TsigAlgorithm::HmacSha256 => HickoryTsig::HmacSha256,
            TsigAlgorithm::HmacSha384 => HickoryTsig::HmacSha384,
            TsigAlgorithm::HmacSha512 => HickoryTsig::HmacSha512,
        };
        let key_name = Name::from_ascii(&cfg.tsig_key_name)?;
        let signer = TSigner::new(key, algorithm, key_name, FUDGE)
            .map_err(|e| anyhow::anyhow!("{}: TSIG key rejected: {e}", cfg.name))?;
        let zone = Name::from_ascii(&cfg.zone)?;
        let record = Name::from_ascii(&cfg.record)?;
        Ok(Self { cfg, addresses, signer, zone, record })
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> ProviderError {
        ProviderError::Unreachable { provider: self.cfg.name.clone(), detail: format!("{}: {detail}", self.cfg.server) }
    }

    /// Runs `work` with a TSIG-signing TCP client to the server, under the timeout.
    async fn with_client<T, F, Fut>(&self, work: F) -> Result<T, ProviderError>
    where
        F: FnOnce(Client<TokioRuntimeProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        let run = async {
            let (connect, handle) =
                TcpClientStream::new(self.cfg.server, None, Some(self.cfg.timeout), TokioRuntimeProvider::new());
            let stream = connect.await.map_err(|e| self.unreachable(e))?;
            let signing =
                DnsMultiplexer::new(stream, handle).with_timeout(self.cfg.timeout).with_signer(self.signer.clone());
            let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(signing);
            // The exchange's background future runs beside the work, not as a spawned task.
            tokio::select! {
                r = work(client) => r,
                () = bg => Err(self.unreachable("connection closed")),
            }
        };
        tokio::time::timeout(self.cfg.timeout * 2, run).await.map_err(|_| self.unreachable("timed out"))?
    }

    /// The update message that makes the name serve `plan`.
    fn update_message(&self, plan: &TrafficPlan) -> Message {
        let mut zone = Query::new();
        zone.set_name(self.zone.clone()).set_query_class(DNSClass::IN).set_query_type(RecordType::SOA);
        let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Update);
        msg.metadata.recursion_desired = false;
        msg.add_zone(zone);
        for t in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            let mut delete = Record::from_rdata(self.record.clone(), 0, RData::Update0(t));
            delete.dns_class = DNSClass::ANY;
            msg.add_update(delete);
        }
        for (region, _) in plan.weights.iter().filter(|(_, w)| *w > 0) {
            let rdata = match self.addresses.get(region) {
                Some(IpAddr::V4(a)) => RData::A(A(*a)),
                Some(IpAddr::V6(a)) => RData::AAAA(AAAA(*a)),
                None => continue,
            };
            msg.add_update(Record::from_rdata(self.record.clone(), self.cfg.ttl, rdata));
        }
        let txt = TXT::new(vec![format!("fo-epoch={} plan={}", plan.epoch, plan.id)]);
        msg.add_update(Record::from_rdata(self.record.clone(), self.cfg.ttl, RData::TXT(txt)));
        msg
    }

    /// The addresses and epoch TXT the server answers for the name.
    async fn query(&self) -> Result<(BTreeSet<IpAddr>, Option<Epoch>), ProviderError> {
        let record = self.record.clone();
        self.with_client(|mut client| async move {
            let mut addrs = BTreeSet::new();
            let mut epoch = None;
            for t in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
                let resp = client.query(record.clone(), DNSClass::IN, t).await.map_err(|e| self.unreachable(e))?;
                if !matches!(resp.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain) {
                    return Err(self.rejected(resp.metadata.response_code));
                }
                for r in &resp.answers {
                    match &r.data {
                        RData::A(a) => {
                            addrs.insert(IpAddr::V4(a.0));
                        }
                        RData::AAAA(a) => {
                            addrs.insert(IpAddr::V6(a.0));
                        }
                        RData::TXT(txt) => {
                            let text: String = txt
                                .txt_data
                                .iter()
                                .map(|d| String::from_utf8_lossy(d).into_owned())
                                .collect::<Vec<_>>()
                                .join("");
                            if let Some(e) = parse_epoch(&text) {
                                epoch = Some(e);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ok((addrs, epoch))
        })
        .await
    }

    fn rejected(&self, code: ResponseCode) -> ProviderError {
        let hint = match code {
            ResponseCode::Refused | ResponseCode::NotAuth => {
                " (is the TSIG key right and allowed to update this zone?)"
            }
            ResponseCode::NotZone => " (is the record inside the zone?)",
            _ => "",
        };
        ProviderError::Rejected {
            provider: self.cfg.name.clone(),
            status: code.to_string(),
            detail: format!("{} answered {code}{hint}", self.cfg.server),
        }
    }
}

/// Reads `fo-epoch=<n>` out of the TXT text.
fn parse_epoch(text: &str) -> Option<Epoch> {
    text.split_whitespace().find_map(|kv| kv.strip_prefix("fo-epoch=")).and_then(|e| e.parse().ok()).map(Epoch)
}

#[async_trait]
impl TrafficProvider for Rfc2136Provider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        let (addrs, epoch) = self.query().await?;
        if let Some(live) = epoch.filter(|e| *e > plan.epoch) {
            return Err(ProviderError::StaleEpoch { provider: self.cfg.name.clone(), plan: plan.epoch, live });
        }
        let want: BTreeSet<IpAddr> =
            plan.weights.iter().filter(|(_, w)| *w > 0).filter_map(|(r, _)| self.addresses.get(r).copied()).collect();
        if want.is_empty() {
            return Err(ProviderError::Rejected {
                provider: self.cfg.name.clone(),
                status: "plan".into(),
                detail: "no region with weight > 0 has an address".into(),
            });
        }
        if addrs == want && epoch == Some(plan.epoch) {
            return Ok(()); // idempotent: already served
        }
        let msg = self.update_message(plan);
        self.with_client(|client| async move {
            let mut responses = client.send(msg.into());
            match responses.next().await {
                Some(Ok(resp)) if resp.metadata.response_code == ResponseCode::NoError => Ok(()),
                Some(Ok(resp)) => Err(self.rejected(resp.metadata.response_code)),
                Some(Err(e)) => Err(self.unreachable(e)),
                None => Err(self.unreachable("no answer to the update")),
            }
        })
        .await
    }

    async fn read_back(&self) -> Result<LiveState, ProviderError> {
        let (addrs, epoch) = self.query().await?;
        let by_addr: BTreeMap<IpAddr, &RegionName> = self.addresses.iter().map(|(r, a)| (*a, r)).collect();
        let mut weights = Weights::default();
        for a in addrs {
            let region = by_addr.get(&a).ok_or_else(|| ProviderError::Malformed {
                provider: self.cfg.name.clone(),
                detail: format!("{} serves {a}, which belongs to no region", self.cfg.record),
            })?;
            weights.set(region, 1);
        }
        Ok(LiveState { weights, epoch })
    }

    fn expressible(&self, weights: &Weights) -> Weights {
        served(weights)
    }

    fn propagation_target(&self, plan: &TrafficPlan) -> Option<Target> {
        let want =
            plan.weights.iter().filter(|(_, w)| *w > 0).filter_map(|(r, _)| self.addresses.get(r).copied()).collect();
        Some(Target {
            name: self.cfg.record.clone(),
            servers: std::iter::once(self.cfg.server)
                .chain(self.cfg.secondaries.iter().copied())
                .collect::<Vec<SocketAddr>>(),
            expect: Expect::Exactly(want),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_with_weight_is_served_equally() {
        let w = Weights::from_pairs([
            (RegionName::new("primary"), 80),
            (RegionName::new("standby"), 20),
            (RegionName::new("dr"), 0),
        ]);
        let s = served(&w);
        assert_eq!(s, Weights::from_pairs([(RegionName::new("primary"), 1), (RegionName::new("standby"), 1)]));
        let w2 = Weights::from_pairs([(RegionName::new("primary"), 50), (RegionName::new("standby"), 50)]);
        assert_eq!(served(&w2), s, "DNS cannot tell 80/20 from 50/50");
    }

    #[test]
    fn epoch_is_read_from_the_txt_record() {
        assert_eq!(parse_epoch("fo-epoch=12 plan=abc"), Some(Epoch(12)));
        assert_eq!(parse_epoch("something else"), None);
    }
}
