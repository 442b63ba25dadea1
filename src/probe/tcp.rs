//! Infra-layer probe: a TCP connect; and the connect every plain probe makes.

use std::io;

use async_trait::async_trait;
use tokio::net::{TcpSocket, TcpStream, lookup_host};

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
        match connect(&self.target).await {
            Ok(_) => ProbeResult::ok(None),
            Err(e) => ProbeResult::failed(format!("connect {}: {e}", self.target)),
        }
    }
}

/// Opens a new connection to the first address of `target` that accepts one, set to close
/// with a reset (`SO_LINGER` 0), as HAProxy's health checks do.
///
/// Why the reset: a probe's connection is over once the probe has its answer, and a socket
/// closed the ordinary way by its opener waits in `TIME_WAIT` for a minute holding its ephemeral
/// port; the ~28 000 ports of the default range then run out at a few hundred probes per
/// second to one `host:port` (`Cannot assign requested address`). A reset leaves no
/// `TIME_WAIT` on either side and costs the target nothing. An IP literal is not resolved;
/// a name is resolved on every call (the system resolver, on tokio's blocking pool).
///
/// # Cancel safety
/// Cancel-safe: dropping the future closes whatever socket it opened.
pub(crate) async fn connect(target: impl tokio::net::ToSocketAddrs) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in lookup_host(target).await? {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_zero_linger()?;
        socket.set_nodelay(true)?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address")))
}
