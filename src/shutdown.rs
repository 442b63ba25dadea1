//! Signals → cancellation: SIGINT and SIGTERM both start a graceful shutdown;
//! a second signal exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Installs the SIGINT and SIGTERM handlers now, and returns a future that
/// cancels `token` on the first signal and exits the process on the second.
///
/// The handlers are installed before this returns (not when the future is
/// first polled), so a signal that arrives right after start-up is never
/// handled by the default action. Regression: the lab printed its banner
/// before a spawned watcher had installed them, and a SIGINT sent on seeing
/// the banner killed it outright under load.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn watch_signals(token: CancellationToken) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
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
    })
}
