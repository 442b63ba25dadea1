//! Structured logs on stderr, as text or JSON lines, filtered by `RUST_LOG`.
//!
//! Called once by a binary's `main` (the orchestrator's and the lab's); the library itself only
//! emits `tracing` events and never installs a subscriber.

/// Installs the global subscriber: `RUST_LOG` when set, else info with sqlx quietened.
///
/// Panics if a global subscriber is already installed (a start-up invariant of `main`).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
