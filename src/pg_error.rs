//! A secret-free description of a PostgreSQL (sqlx) error, the one wording the
//! probes, the lag sampler and the store all log and report.
//!
//! sqlx errors can carry a DSN, a server message quoting data, or TLS details;
//! none of that may reach a log line, a status page or a probe observation. The
//! description keeps what helps an operator (the SQLSTATE code, the I/O error
//! kind) and drops the rest. A leaf: it imports nothing of the crate.

/// A secret-free description of a sqlx error: the SQLSTATE of a server error,
/// the kind of an I/O error, or the error's category.
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => format!("server error {}", db.code().unwrap_or_default()),
        sqlx::Error::Io(io) => format!("i/o: {}", io.kind()),
        sqlx::Error::Tls(_) => "tls error".to_string(),
        sqlx::Error::Protocol(_) => "protocol error".to_string(),
        sqlx::Error::PoolTimedOut => "pool timed out".to_string(),
        sqlx::Error::PoolClosed => "pool closed".to_string(),
        sqlx::Error::Configuration(_) => "configuration error".to_string(),
        sqlx::Error::RowNotFound => "no row".to_string(),
        _ => "error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_never_echo_their_text() {
        let e = sqlx::Error::Configuration("postgres://fo:s3cret@db/fo is malformed".into());
        assert_eq!(describe(&e), "configuration error");
    }

    #[test]
    fn io_errors_name_only_their_kind() {
        let e = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "to 10.0.0.5:5432"));
        assert_eq!(describe(&e), "i/o: connection refused");
    }
}
