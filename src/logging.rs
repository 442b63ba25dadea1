//! Structured logs on stderr, as text or JSON lines, filtered by `RUST_LOG`.
//!
//! Every line passes through [`crate::redact::text`] on its way out, so a DSN,
//! URL or `password=` that reached a log field from an error message is
//! masked even where the caller forgot.
//!
//! Called once by a binary's `main` (the orchestrator's and the lab's); the library itself only
//! emits `tracing` events and never installs a subscriber.

/// Installs the global subscriber: `RUST_LOG` when set, else info with sqlx quietened.
///
/// Panics if a global subscriber is already installed (a start-up invariant of `main`).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(RedactedStderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Makes one [`RedactedLine`] per log event.
struct RedactedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::with_capacity(256))
    }
}

/// One formatted event, written to stderr redacted when dropped.
struct RedactedLine(Vec<u8>);

impl std::io::Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl RedactedLine {
    /// What was written so far, redacted; empties the buffer.
    fn take_redacted(&mut self) -> String {
        crate::redact::text(&String::from_utf8_lossy(&std::mem::take(&mut self.0)))
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        use std::io::Write as _;
        let line = self.take_redacted();
        // A log line that cannot be written is dropped: there is nowhere to report it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    #[test]
    fn a_log_line_written_in_pieces_is_redacted_as_a_whole() {
        let mut line = super::RedactedLine(Vec::new());
        // The formatter writes a field in pieces; a secret split across them is still found.
        line.write_all(b"connect failed dsn=postgres://fo:Zq12").unwrap();
        line.write_all(b"34secret@db/x password=Zq99\n").unwrap();
        assert_eq!(line.take_redacted(), "connect failed dsn=postgres://fo:***@db/x password=***\n");
    }
}
