//! The integration test binary: one binary, one module per area, sharing the harness in `common`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod architecture;
mod chaos;
mod cli;
mod common;
mod coordination;
mod drills;
mod durability;
mod failover;
mod haproxy_provider;
mod lag;
mod observability;
mod old_primary_fence;
mod operator_api;
mod powerdns_provider;
mod replication;
mod rfc2136_provider;
mod route53_provider;
mod secrets;
mod security;
mod shutdown;
mod signals;
mod store;
mod supervision;
mod synthetic;
mod traces;
mod webhook_provider;
