//! fo-lab: the local three-region lab and the test harness of failover-orchestrator.
//!
//! Everything here exists to exercise the product on one machine, on loopback: nothing of it
//! is linked into the `failover-orchestrator` binary. It starts real servers as supervised
//! child processes that die with this process, even on SIGKILL, and leave no directory behind.
//!
//! - [`lab`]: the three-region lab (store, primary → synchronous standby → asynchronous DR with
//!   real streaming replication, one app per region on 127.0.0.11/12/13, PowerDNS) and its
//!   generated configuration; [`cli`] is the `fo-lab` command around it (control endpoint,
//!   `--measure-flips`, `--measure-drills`); [`measure`] breaks things and times the orchestrator.
//! - [`topology`] renders a `regions.toml` for a set of regions and providers.
//! - [`process`] supervises child processes; [`postgres`], [`powerdns`], [`haproxy`], [`bind`]
//!   and [`moto`] start one real server each on free loopback ports, [`prometheus`] Debian's
//!   node_exporter and Prometheus; [`etcd`] starts an etcd
//!   cluster (one member per region).
//! - [`cluster`] is the three-orchestrator lab: the [`lab`] plus etcd, three orchestrator
//!   processes (one per region, each with its own store) and fault proxies on every probe path
//!   and every orchestrator → etcd link.
//! - [`app_stub`] is a controllable region app; [`faultproxy`] (TCP: latency, loss, blackhole,
//!   reset …) and [`http_fault`] (HTTP 500s) put faults between a prober and its target.
//!
//! Used by the `fo-lab` binary, the benchmarks (`fo-bench`) and the product's integration tests.

pub mod app_stub;
pub mod bind;
pub mod cli;
pub mod cluster;
pub mod etcd;
pub mod faultproxy;
pub mod haproxy;
pub mod http_fault;
pub mod lab;
pub mod measure;
pub mod moto;
pub mod postgres;
pub mod powerdns;
pub mod process;
pub mod prometheus;
pub mod topology;
