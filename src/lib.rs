//! failover-orchestrator: keeps a multi-region, active-active service serving when a region fails.
//!
//! The data flow is one loop (see `DESIGN.md`):
//!
//! - [`config`] reads and validates `regions.toml` into typed values; nothing else parses it.
//! - [`probe`] runs one task per check (HTTP, TCP, PostgreSQL) and turns every result, failures
//!   included, into an [`observation::Observation`].
//! - [`health`] (pure) applies fall/rise hysteresis per check and combines layers into region health.
//! - [`decide`] (pure) turns policy, region health, lag, quorum, the current plan and `now` into the
//!   weights wanted, with every reason and alarm.
//! - [`incidents`] (pure) turns what the engine sees into one timeline per traffic move, from the
//!   first failed probe to the verified flip, so the product measures its own detection-to-flip.
//! - [`engine`] is the actor shell around the two pure modules: it owns the live state, records
//!   every transition and plan in the [`store`], and hands plans to the applier.
//! - [`traffic`] holds the `TrafficProvider` trait and one file per provider (file, PowerDNS,
//!   HAProxy, RFC 2136, Route 53, webhook), the applier with its per-provider circuit breaker,
//!   drift detection and DNS propagation check.
//! - [`notify`] POSTs health transitions, plans, drills and alarms to webhooks, deduplicated.
//! - [`store`] is the only place with SQL: migrations, buffered writes that survive a store outage.
//! - [`api`] serves REST, Server-Sent Events, Prometheus metrics and the dashboard; [`auth`] (pure)
//!   holds the bearer tokens, roles and route policy it enforces.
//! - [`drill`] (pure) validates, plans and reports failover drills and reads their schedule; the
//!   engine drives them, the store records them step by step.
//! - [`cli`] is the operators' command-line client of the API (`status`, `drill`, `failover` …).
//! - [`app`] wires it all: the only place that spawns tasks; [`shutdown`] turns signals into
//!   cancellation; [`logging`] installs the log subscriber for a binary's `main`.
//!
//! The local lab, the test harness and the benchmarks are separate crates of the workspace
//! (`lab/`, `bench/`): nothing of them is linked into the `failover-orchestrator` binary.

pub mod alarm;
pub mod api;
pub mod app;
pub mod auth;
pub mod breaker;
pub mod cli;
pub mod config;
pub mod coord;
pub mod decide;
pub mod drill;
pub mod engine;
pub mod health;
pub mod incidents;
pub mod lag;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod observation;
pub mod operation;
pub mod pg_error;
pub mod plan;
pub mod policy;
pub mod probe;
pub mod region;
pub mod replication;
pub mod retry;
pub mod serde_util;
pub mod shutdown;
pub mod signed_post;
pub mod status;
pub mod store;
pub mod traffic;
