//! HAProxy's runtime API: one command over the admin socket (TCP or UNIX), one answer.
//!
//! HAProxy closes the connection after answering a command sent without `prompt`, so the
//! answer is everything read until then (at most [`MAX_RESPONSE`] bytes). Used by the
//! `haproxy` traffic provider (weights) and the passive `haproxy` check (`show stat`). The
//! caller bounds the call with its own timeout.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::HaproxyAdmin;

/// Largest answer read from one command.
pub const MAX_RESPONSE: u64 = 1 << 20;

/// Sends `cmd` and returns HAProxy's answer.
///
/// # Errors
/// When the socket cannot be reached, written or read.
///
/// # Cancel safety
/// Cancel-safe: dropping the future closes the connection.
pub async fn command(admin: &HaproxyAdmin, cmd: &str) -> io::Result<String> {
    match admin {
        HaproxyAdmin::Tcp(addr) => exchange(tokio::net::TcpStream::connect(addr).await?, cmd).await,
        HaproxyAdmin::Unix(path) => exchange(tokio::net::UnixStream::connect(path).await?, cmd).await,
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, cmd: &str) -> io::Result<String> {
    s.write_all(format!("{cmd}\n").as_bytes()).await?;
    s.flush().await?;
    let mut out = String::new();
    (&mut s).take(MAX_RESPONSE).read_to_string(&mut out).await?;
    Ok(out)
}
