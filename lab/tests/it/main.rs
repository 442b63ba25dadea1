//! The lab's own tests: one binary, one module per part of the harness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod etcd;
mod postgres;
mod powerdns;
mod process;
