//! Middleware-layer probe: connect to PostgreSQL, `SELECT 1` and `pg_is_in_recovery()`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{Probe, ProbeResult};
use crate::pg_error::describe;

/// Opens a fresh connection per probe (a pooled one could hide a dead server).
#[derive(Debug, Clone)]
pub struct PostgresProbe {
    dsn: SecretString,
    expect_recovery: Option<bool>,
    timeout: Duration,
}

impl PostgresProbe {
    /// A probe of the database at `dsn`.
    pub fn new(dsn: SecretString, expect_recovery: Option<bool>, timeout: Duration) -> Self {
        Self { dsn, expect_recovery, timeout }
    }
}

#[async_trait]
impl Probe for PostgresProbe {
    async fn probe(&self) -> ProbeResult {
        let opts = match PgConnectOptions::from_str(self.dsn.expose_secret()) {
            // Errors from the DSN parser may echo the DSN: never pass them on.
            Err(_) => return ProbeResult::failed("the PostgreSQL DSN is malformed"),
            Ok(o) => o.application_name("failover-orchestrator-probe").statement_cache_capacity(0),
        };
        let connect = tokio::time::timeout(self.timeout, PgConnection::connect_with(&opts)).await;
        let mut conn = match connect {
            Err(_) => return ProbeResult::failed("connect timed out"),
            Ok(Err(e)) => return ProbeResult::failed(format!("connect failed: {}", describe(&e))),
            Ok(Ok(c)) => c,
        };
        let row: Result<(i32, bool), _> = sqlx::query_as("SELECT 1, pg_is_in_recovery()").fetch_one(&mut conn).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), conn.close()).await;
        match row {
            Err(e) => ProbeResult::failed(format!("query failed: {}", describe(&e))),
            Ok((_, in_recovery)) => match self.expect_recovery {
                Some(expect) if expect != in_recovery => {
                    ProbeResult::failed(format!("pg_is_in_recovery() = {in_recovery}, expected {expect}"))
                }
                _ => ProbeResult::ok(Some(format!("in_recovery={in_recovery}"))),
            },
        }
    }
}
