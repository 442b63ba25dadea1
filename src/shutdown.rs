//! Signals → cancellation: SIGINT and SIGTERM both start a graceful shutdown;
//! a second signal exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Cancels `token` on the first SIGINT or SIGTERM; exits the process on the second.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn watch_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = int.recv() => info!("SIGINT: shutting down gracefully (send again to exit at once)"),
        _ = term.recv() => info!("SIGTERM: shutting down gracefully (send again to exit at once)"),
    }
    token.cancel();
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    warn!("second signal: exiting now");
    std::process::exit(130);
}
