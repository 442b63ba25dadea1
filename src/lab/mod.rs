//! The local three-region lab: real PostgreSQL clusters with streaming
//! replication, one controllable app per region on its own 127.0.0.x address,
//! a real PowerDNS server, and the orchestrator, all on loopback. HAProxy, BIND
//! and the moto AWS emulator are started by the provider tests and bench.
//!
//! Used by the `lab` command and by the integration tests. Every server is a
//! supervised child process that dies with this process, even on SIGKILL.

pub mod app_stub;
pub mod bench;
pub mod bind;
pub mod cli;
pub mod compare;
pub mod faultproxy;
pub mod haproxy;
pub mod http_fault;
pub mod measure;
pub mod moto;
pub mod postgres;
pub mod powerdns;
pub mod process;
pub mod topology;
