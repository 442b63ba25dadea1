//! failover-orchestrator: keeps a multi-region, active-active service serving when a region fails.
//!
//! The data flow is one loop (see `DESIGN.md`); each module below is named after the concept it
//! holds, and the imports between them form no cycle (checked by `tests/it/architecture.rs`).
//!
//! **Vocabulary**: [`region`] (names, roles, layers), [`plan`] (weights, traffic plans, epochs)
//! and [`observation`] are the value types every module speaks in; [`serde_util`] writes
//! durations as humane strings in JSON; [`redact`] is the one way a DSN, URL, header or error
//! text that may carry a secret is printed.
//!
//! **Inputs**
//! - [`config`] reads and validates `regions.toml` into typed values (the model, a summary, one
//!   validator per section); nothing else parses it.
//! - [`probe`] runs one task per check (HTTP, TCP, PostgreSQL, metric scrape, PromQL query,
//!   HAProxy's view of the live traffic) and turns every result, failures included, into an
//!   [`observation::Observation`]; [`haproxy_runtime`] sends one command to HAProxy's runtime
//!   API for the passive check and the haproxy provider.
//! - [`replication`] samples the lag of every standby and promotes a standby when asked, after
//!   fencing the old primary (its application roles locked out) or finding it unreachable.
//!
//! **The judgement (pure: values in, values out, time as an argument)**
//! - [`health`] applies fall/rise hysteresis per check and combines layers into region health.
//! - [`signal`] parses metric scrapes, PromQL answers and HAProxy's `show stat`, and judges the
//!   one number a metric, PromQL or passive HAProxy check asks for against its limits.
//! - [`lag`] holds lag samples and the maths that turns primary and standby views into one.
//! - [`policy`] holds the thresholds and rules, each fact once, and the RPO gate.
//! - [`decide`] turns policy, region health, lag, quorum, the current plan and `now` into the
//!   weights wanted, the moves that produce them, every reason and the [`alarm`]s to raise.
//! - [`drill`] validates, plans and reports failover drills, reads their schedule, and steps a
//!   live drill through its phases ([`drill::phase`]).
//! - [`incidents`] turns what the engine sees into one timeline per traffic move, from the first
//!   failed probe to the verified flip, so the product measures its own detection-to-flip.
//! - [`auth`] holds the bearer tokens, roles and route policy.
//! - [`selfcheck`] judges the orchestrator's own liveness (`/healthz`) and readiness (`/readyz`).
//!
//! **The shell**
//! - [`engine`] is the actor around the pure modules: it owns the live state (split by concept:
//!   observations, apply reports, alarms, operator commands, drills, promotion, snapshot), records
//!   every transition, plan and [`operation`] in the [`store`], and hands plans to the applier.
//! - [`traffic`] holds the `TrafficProvider` trait and one file per provider (file, PowerDNS,
//!   HAProxy, RFC 2136, Route 53, webhook), the applier with its per-provider [`breaker`],
//!   drift detection and DNS propagation check.
//! - [`notify`] POSTs health transitions, plans, drills and alarms to webhooks, deduplicated,
//!   signed by [`signed_post`] like the webhook provider.
//! - [`traces`] sends each incident once as one OpenTelemetry trace over OTLP/HTTP (off without
//!   an endpoint); its span tree is built from the stored timeline by the pure [`traces::spans`].
//! - [`store`] is the only place with SQL: migrations, typed rows, buffered writes that survive a
//!   store outage; [`pg_error`] describes a PostgreSQL error without leaking a DSN.
//! - [`retry`] is the one backoff with jitter that the applier, store writer and notifier share.
//! - [`status`] is the read model the engine publishes; [`metrics`] the Prometheus registry.
//! - [`api`] serves REST, Server-Sent Events, Prometheus metrics and the dashboard (ES modules
//!   under `api/assets/`), over TLS when configured, behind security headers, rate limits per
//!   client IP and a bound on live streams (`api::guard`).
//! - [`cli`] is the operators' command-line client of the API (`status`, `drill`, `failover` …).
//! - [`app`] wires it all: the only place that spawns tasks and picks implementations
//!   ([`coord`] for leadership); [`supervise`] watches every task it spawns (restarts a panicked
//!   probe runner or provider worker, turns a critical task's end into the process's failure)
//!   and keeps the vital signs the self-checks read; [`shutdown`] turns signals into
//!   cancellation; [`logging`] installs the log subscriber for a binary's `main`.
//!
//! In tests only, `proptest_cases` sets how many cases every property test of the pure core runs
//! (at least 10 000).
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
pub mod haproxy_runtime;
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
#[cfg(test)]
mod proptest_cases;
pub mod redact;
pub mod region;
pub mod replication;
pub mod retry;
pub mod selfcheck;
pub mod serde_util;
pub mod shutdown;
pub mod signal;
pub mod signed_post;
pub mod status;
pub mod store;
pub mod supervise;
pub mod traces;
pub mod traffic;
