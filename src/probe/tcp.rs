//! Infra-layer probe: a TCP connect.

use async_trait::async_trait;
use tokio::net::TcpStream;

use super::{Probe, ProbeResult};

/// Connects to `host:port`; success is an accepted connection.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    target: String,
}

impl TcpProbe {
    /// A probe of `target` (`host:port`).
    pub fn new(target: String) -> Self {
        Self { target }
    }
}

#[async_trait]
impl Probe for TcpProbe {
    async fn probe(&self) -> ProbeResult {
        match TcpStream::connect(&self.target).await {
            Ok(_) => ProbeResult::ok(None),
            Err(e) => ProbeResult::failed(format!("connect {}: {e}", self.target)),
        }
    }
}
