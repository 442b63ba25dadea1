//! The fence: before a standby is promoted, the old primary is made unable to take the
//! application's writes, and a fence that cannot be made holds the promotion back. The I/O runs
//! on one connection of its own; what an error means, and the SQL text, are pure functions
//! tested alone. This module never decides whether to promote: [`super::sampler`] does, from
//! the [`FenceError`] it gets.
//!
//! What the fence does, in order (the first two change nothing on the server):
//! 1. **connect**, within `replication.fence_timeout`. No connection in time, or a transport
//!    error (refused, reset, no route): the old primary is **unreachable**: nobody can write to
//!    it now, and the promotion may go on, its record saying plainly that it was not fenced.
//!    Any answer from the server (authentication refused, too many connections, starting up)
//!    means it is **reachable**: not fenced, it blocks the promotion.
//! 2. **preflight**: a server in recovery takes no writes and counts as fenced; otherwise every
//!    configured role must exist and the orchestrator's role must be allowed to `ALTER SYSTEM`
//!    `default_transaction_read_only`, reload the configuration and end other roles' sessions.
//!    A refusal here leaves the old primary as it was: still the writer, never a read-only
//!    primary with no promotion behind it.
//! 3. **lock**: `ALTER ROLE … NOLOGIN` for every application role, in one transaction (all or
//!    none). This is the part a client cannot undo: a `SET` in its session does not give a
//!    role back its LOGIN.
//! 4. **read-only**: `default_transaction_read_only = on` through `ALTER SYSTEM` and a reload:
//!    the second layer, for clients of roles not listed (any session can undo it with `SET`).
//! 5. **sessions**: every session of an application role is terminated whatever it calls
//!    itself, and every other client session except the orchestrator's own (and, when the
//!    orchestrator is no superuser, other superusers'); each termination is waited for.
//! 6. **verify**: no application role can log in, and none has a session left.
//!
//! Every statement runs under `statement_timeout = fence_timeout`, and under a client-side
//! bound just above it: a fence that stalls after connecting is refused, not unreachable.
//!
//! The lock is a catalog change, so it replicates: the standbys, the one being promoted
//! included, refuse new logins of those roles from the moment they replay it. The promotion
//! gives LOGIN back on the new primary right after `pg_promote` ([`restore_logins`]), and the
//! other standbys get that from the new primary once they follow it.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use crate::config::AppRole;
use crate::pg_error::describe;

/// `application_name` of the fence's own connection (spared by its session sweep, like every
/// `failover-orchestrator*` session of the orchestrator's role).
const FENCE_APPLICATION_NAME: &str = "failover-orchestrator-fence";

/// Slack on top of `statement_timeout` before the client gives up on an answer itself.
const CLIENT_SLACK: Duration = Duration::from_millis(500);

/// What a fence that held did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fenced {
    /// The old primary was in recovery (a standby already): it takes no writes, nothing was changed.
    pub in_recovery: bool,
    /// Application roles that could log in and no longer can.
    pub locked: Vec<AppRole>,
    /// Application roles that already could not log in.
    pub already_locked: Vec<AppRole>,
    /// Client sessions terminated.
    pub terminated: u64,
}

impl Fenced {
    /// The promotion record's text: what holds on the old primary now, and how to bring it back.
    pub fn describe(&self, roles: &[AppRole]) -> String {
        if self.in_recovery {
            return "in recovery (already a standby): it takes no writes; nothing changed".into();
        }
        let layers = if roles.is_empty() {
            "soft fence only (no replication.app_roles): default_transaction_read_only = on and client \
             sessions terminated; a client can undo read-only with SET"
                .to_string()
        } else {
            let mut s = format!("application roles {} locked (NOLOGIN)", join(roles));
            if !self.already_locked.is_empty() {
                s.push_str(&format!(", of which {} already were", join(&self.already_locked)));
            }
            s.push_str("; default_transaction_read_only = on");
            s
        };
        format!(
            "{layers}; {} client session(s) terminated. To bring it back, re-clone it as a standby of \
             the new primary (pg_basebackup, or pg_rewind + standby.signal): it then takes the new \
             primary's roles and settings. Only to make it the writer again: {}",
            self.terminated,
            undo_sql(roles)
        )
    }
}

/// The stage a fence stopped at (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceStage {
    /// Opening the fence's connection.
    Connect,
    /// Checking roles and privileges; nothing changed yet.
    Preflight,
    /// Taking LOGIN away from the application roles (all or none).
    Lock,
    /// `default_transaction_read_only = on` and a reload.
    ReadOnly,
    /// Terminating client sessions.
    Sessions,
    /// Checking that no application role can log in or still has a session.
    Verify,
}

impl FenceStage {
    /// The stage's name in step details.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceStage::Connect => "connect",
            FenceStage::Preflight => "preflight",
            FenceStage::Lock => "lock",
            FenceStage::ReadOnly => "read-only",
            FenceStage::Sessions => "sessions",
            FenceStage::Verify => "verify",
        }
    }

    /// What a fence stopped at this stage has already changed on the old primary.
    fn applied(self) -> &'static str {
        match self {
            FenceStage::Connect | FenceStage::Preflight | FenceStage::Lock => "",
            FenceStage::ReadOnly => {
                " The application roles are already locked on it (ALTER ROLE … LOGIN undoes that if it stays the writer)."
            }
            FenceStage::Sessions | FenceStage::Verify => {
                " The application roles are already locked and read-only is on (ALTER ROLE … LOGIN and \
                 ALTER SYSTEM RESET default_transaction_read_only undo that if it stays the writer)."
            }
        }
    }
}

impl std::fmt::Display for FenceStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an old primary is not fenced. Secret-free: server messages are never copied, only
/// SQLSTATE codes and the configured role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// Nothing answered within the timeout (or the transport failed): nobody can write to it now.
    #[error("unreachable ({why}): it could not be fenced")]
    Unreachable {
        /// What the connection attempt ran into.
        why: String,
    },
    /// It answered, but could not be fenced: a promotion must not go ahead.
    #[error("reachable but not fenced (stopped at {stage}): {why}.{} Fix: {fix}", .stage.applied())]
    Refused {
        /// Where the fence stopped.
        stage: FenceStage,
        /// What went wrong.
        why: String,
        /// What the operator can do about it.
        fix: String,
    },
    /// After a promotion, the application roles could not be given LOGIN back on the new primary.
    #[error("LOGIN not given back to the application roles on the new primary: {why}. Fix: {fix}")]
    NotRestored {
        /// What went wrong.
        why: String,
        /// What the operator can do about it, with the statements to run by hand.
        fix: String,
    },
}

impl FenceError {
    /// Whether the old primary was unreachable (the promotion may go on without the fence).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FenceError::Unreachable { .. })
    }
}

/// Fences the database behind `options` against the application `roles` (see the module
/// documentation for what that means), every step bounded by `timeout`.
///
/// # Errors
/// [`FenceError::Unreachable`] when no connection could be made within `timeout`;
/// [`FenceError::Refused`] when the server answered but any part of the fence failed.
///
/// # Cancel safety
/// Not cancel safe: dropped half-way, the fence may have locked the roles without ending
/// their sessions (the connection closes and an open transaction rolls back).
pub async fn fence(options: &PgConnectOptions, roles: &[AppRole], timeout: Duration) -> Result<Fenced, FenceError> {
    let options = options.clone().application_name(FENCE_APPLICATION_NAME).statement_cache_capacity(0);
    let mut conn = match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(connect_error(&e)),
        Err(_) => {
            return Err(FenceError::Unreachable {
                why: format!("no connection within {}", humantime::format_duration(timeout)),
            });
        }
    };
    let result = fence_on(&mut conn, roles, timeout).await;
    let _ = tokio::time::timeout(timeout, conn.close()).await;
    result
}

async fn fence_on(conn: &mut PgConnection, roles: &[AppRole], timeout: Duration) -> Result<Fenced, FenceError> {
    let names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    let bound = timeout + CLIENT_SLACK;
    let set_timeout = statement_timeout_sql(timeout);
    bounded(FenceStage::Preflight, timeout, bound, sqlx::query(&set_timeout).execute(&mut *conn)).await?;

    // 2. Preflight: nothing changes on the server until every check passes.
    let row =
        bounded(FenceStage::Preflight, timeout, bound, sqlx::query(PREFLIGHT_SQL).bind(&names).fetch_one(&mut *conn))
            .await?;
    let preflight = Preflight {
        in_recovery: row.get("in_recovery"),
        user: row.get("usr"),
        superuser: row.get("superuser"),
        alter_system: row.get("alter_system"),
        reload: row.get("reload"),
        signal: row.get("signal"),
        missing: row.get("missing"),
    };
    if preflight.in_recovery {
        return Ok(Fenced { in_recovery: true, locked: vec![], already_locked: vec![], terminated: 0 });
    }
    if let Some(e) = preflight.refusal() {
        return Err(e);
    }

    // 3. Lock: every role or none.
    let mut already_locked = Vec::new();
    let mut locked = Vec::new();
    if !roles.is_empty() {
        let lock = async {
            let mut tx = conn.begin_with("BEGIN READ WRITE").await?;
            // The lock must not wait for a synchronous standby that may be the one being lost.
            sqlx::query("SET LOCAL synchronous_commit = local").execute(&mut *tx).await?;
            let can_login: Vec<String> =
                sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) AND rolcanlogin")
                    .bind(&names)
                    .fetch_all(&mut *tx)
                    .await?;
            for role in roles {
                sqlx::query(&lock_sql(role)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(can_login)
        };
        let can_login = bounded(FenceStage::Lock, timeout, bound, lock).await?;
        for role in roles {
            if can_login.iter().any(|n| n == role.as_str()) {
                locked.push(role.clone());
            } else {
                already_locked.push(role.clone());
            }
        }
    }

    // 4. Read-only, the second layer (ALTER SYSTEM cannot run inside a transaction block).
    let read_only = async {
        sqlx::query("ALTER SYSTEM SET default_transaction_read_only = on").execute(&mut *conn).await?;
        sqlx::query("SELECT pg_reload_conf()").execute(&mut *conn).await?;
        Ok::<_, sqlx::Error>(())
    };
    bounded(FenceStage::ReadOnly, timeout, bound, read_only).await?;

    // 5. Sessions: each termination waited for, within a share of the bound.
    let wait_ms = i64::try_from((timeout / 4).as_millis()).unwrap_or(i64::MAX).max(1);
    let terminated: i64 = bounded(
        FenceStage::Sessions,
        timeout,
        bound,
        sqlx::query_scalar(TERMINATE_SQL).bind(&names).bind(wait_ms).fetch_one(&mut *conn),
    )
    .await?;

    // 6. Verify.
    let row =
        bounded(FenceStage::Verify, timeout, bound, sqlx::query(VERIFY_SQL).bind(&names).fetch_one(&mut *conn)).await?;
    let (can_login, sessions): (i64, i64) = (row.get("can_login"), row.get("sessions"));
    if can_login > 0 || sessions > 0 {
        return Err(FenceError::Refused {
            stage: FenceStage::Verify,
            why: format!(
                "after the fence {can_login} application role(s) can still log in and {sessions} of their \
                 session(s) are still alive"
            ),
            fix: "something gives LOGIN back or keeps sessions alive (another tool?): stop it, or stop the old \
                  primary (pg_ctl stop -m fast)"
                .into(),
        });
    }
    Ok(Fenced { in_recovery: false, locked, already_locked, terminated: terminated.max(0) as u64 })
}

/// Gives LOGIN back to the application `roles` on a newly promoted primary (the fence's lock
/// replicated to it before the promotion), in one transaction bounded by `timeout`.
///
/// # Errors
/// [`FenceError::NotRestored`], saying why and which statements the operator can run instead.
pub async fn restore_logins(pool: &sqlx::PgPool, roles: &[AppRole], timeout: Duration) -> Result<(), FenceError> {
    let work = async {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN READ WRITE").await?;
        sqlx::query(&statement_timeout_sql(timeout).replacen("SET", "SET LOCAL", 1)).execute(&mut *tx).await?;
        sqlx::query("SET LOCAL synchronous_commit = local").execute(&mut *tx).await?;
        for role in roles {
            sqlx::query(&unlock_sql(role)).execute(&mut *tx).await?;
        }
        tx.commit().await
    };
    let (why, fix) = match tokio::time::timeout(timeout + CLIENT_SLACK, work).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(sqlx::Error::Database(db))) if db.code().as_deref() == Some("57014") => stalled_meaning(timeout),
        Ok(Err(sqlx::Error::Database(db))) => server_meaning(db.code().as_deref()),
        Ok(Err(e)) => (format!("it did not answer ({})", describe(&e)), "check that the new primary is up"),
        Err(_) => stalled_meaning(timeout),
    };
    Err(not_restored(why, fix, roles))
}

/// The restore's failure, its fix ending with the statements to run by hand.
fn not_restored(why: String, fix: &str, roles: &[AppRole]) -> FenceError {
    FenceError::NotRestored { why, fix: format!("{fix}; then, on the new primary: {}", login_sql(roles)) }
}

/// Runs one stage's statement(s) under the client-side `bound`, mapping errors to the stage.
async fn bounded<T>(
    stage: FenceStage,
    timeout: Duration,
    bound: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, FenceError> {
    match tokio::time::timeout(bound, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(statement_error(stage, timeout, &e)),
        Err(_) => Err(stalled(stage, timeout)),
    }
}

/// Roles, privileges and recovery state, read before anything changes.
const PREFLIGHT_SQL: &str = "SELECT pg_is_in_recovery() AS in_recovery,
        current_user::text AS usr,
        r.rolsuper AS superuser,
        has_parameter_privilege('default_transaction_read_only', 'ALTER SYSTEM') AS alter_system,
        has_function_privilege('pg_reload_conf()', 'EXECUTE') AS reload,
        pg_has_role('pg_signal_backend', 'MEMBER') AS signal,
        ARRAY(SELECT n FROM unnest($1::text[]) n
               WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n)) AS missing
   FROM pg_roles r WHERE r.rolname = current_user";

/// Terminates the sessions the fence ends (see the module documentation) and counts them.
/// `$1`: the application roles; `$2`: how long to wait for each, in ms.
const TERMINATE_SQL: &str = "SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid, $2))
   FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
  WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
    AND (a.usename::text = ANY($1)
         OR (NOT (a.usename = current_user AND a.application_name LIKE 'failover-orchestrator%')
             AND (NOT coalesce(r.rolsuper, false)
                  OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))))";

/// Application roles that can still log in, and their sessions still alive.
const VERIFY_SQL: &str = "SELECT
        (SELECT count(*) FROM pg_roles WHERE rolname = ANY($1) AND rolcanlogin) AS can_login,
        (SELECT count(*) FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND usename::text = ANY($1)) AS sessions";

/// What the preflight read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Preflight {
    in_recovery: bool,
    user: String,
    superuser: bool,
    alter_system: bool,
    reload: bool,
    signal: bool,
    missing: Vec<String>,
}

impl Preflight {
    /// Why the fence cannot be made, before it changes anything; `None` when it can.
    fn refusal(&self) -> Option<FenceError> {
        if !self.missing.is_empty() {
            return Some(FenceError::Refused {
                stage: FenceStage::Preflight,
                why: format!("application role(s) {} do not exist on it", self.missing.join(", ")),
                fix: "create them, or remove them from replication.app_roles (it lists the roles the \
                      application logs in with)"
                    .into(),
            });
        }
        let mut lacking = Vec::new();
        if !self.alter_system {
            lacking.push("ALTER SYSTEM SET default_transaction_read_only");
        }
        if !self.reload {
            lacking.push("pg_reload_conf()");
        }
        if !self.signal && !self.superuser {
            lacking.push("ending other roles' sessions (pg_signal_backend)");
        }
        if lacking.is_empty() {
            return None;
        }
        let u = quote_ident(&self.user);
        Some(FenceError::Refused {
            stage: FenceStage::Preflight,
            why: format!("the orchestrator's role {} may not run: {}", self.user, lacking.join(", ")),
            fix: format!(
                "make {u} a superuser, or GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO {u}; \
                 GRANT EXECUTE ON FUNCTION pg_reload_conf() TO {u}; GRANT pg_signal_backend TO {u} \
                 (it also needs CREATEROLE to lock the application roles)"
            ),
        })
    }
}

/// A connection attempt that failed before the timeout: transport errors mean unreachable,
/// anything the server said means reachable.
fn connect_error(e: &sqlx::Error) -> FenceError {
    match e {
        sqlx::Error::Io(_) => FenceError::Unreachable { why: describe(e) },
        sqlx::Error::Database(db) => server_refusal(FenceStage::Connect, db.code().as_deref()),
        other => FenceError::Refused {
            stage: FenceStage::Connect,
            why: format!("it answered, but the connection failed ({})", describe(other)),
            fix: "check the region's postgres.dsn (FO_PG_DSN_<REGION>) and its TLS settings".into(),
        },
    }
}

/// A statement that failed after connecting: refused, whatever the cause.
fn statement_error(stage: FenceStage, timeout: Duration, e: &sqlx::Error) -> FenceError {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => stalled(stage, timeout),
        sqlx::Error::Database(db) => server_refusal(stage, db.code().as_deref()),
        other => FenceError::Refused {
            stage,
            why: format!("the connection broke after connecting ({})", describe(other)),
            fix: "the old primary is up but unstable: stop it (pg_ctl stop -m fast), or wait until it answers \
                  steadily"
                .into(),
        },
    }
}

/// A stage that ran past `timeout` after connecting.
fn stalled(stage: FenceStage, timeout: Duration) -> FenceError {
    let (why, fix) = stalled_meaning(timeout);
    FenceError::Refused { stage, why, fix: fix.into() }
}

/// Why and fix of a statement that ran past `timeout` after connecting.
fn stalled_meaning(timeout: Duration) -> (String, &'static str) {
    (
        format!(
            "a statement ran past replication.fence_timeout ({}) after connecting",
            humantime::format_duration(timeout)
        ),
        "look for what blocks it (pg_locks on pg_authid, pg_stat_activity), or raise replication.fence_timeout; \
         or stop the old primary",
    )
}

/// What a server error (SQLSTATE `code`) at `stage` means for the fence, and its fix.
fn server_refusal(stage: FenceStage, code: Option<&str>) -> FenceError {
    let (why, fix) = server_meaning(code);
    FenceError::Refused { stage, why, fix: fix.into() }
}

/// Why and fix of a server error with SQLSTATE `code`.
fn server_meaning(code: Option<&str>) -> (String, &'static str) {
    let code = code.unwrap_or("unknown");
    let (why, fix) = match code {
        "28P01" | "28000" => (
            "it refused the orchestrator's login",
            "check the orchestrator's user and password for this region (FO_PG_DSN_<REGION>) and its pg_hba.conf",
        ),
        "53300" => (
            "it has no connection slot left",
            "reserve connections for the orchestrator's role (reserved_connections) or raise max_connections",
        ),
        "57P03" => {
            ("it is starting up or shutting down", "wait until it answers, or stop it for good (pg_ctl stop -m fast)")
        }
        "3D000" => ("the database in the DSN does not exist", "fix the region's postgres.dsn (FO_PG_DSN_<REGION>)"),
        "42501" => (
            "the orchestrator's role lacks the privilege",
            "give it CREATEROLE (PostgreSQL 16+: with ADMIN OPTION on each application role) or make it a superuser",
        ),
        "42704" => ("an application role does not exist", "create it, or remove it from replication.app_roles"),
        "25006" => ("it refused to write (a read-only transaction)", "check that it is not in recovery; see its log"),
        _ => ("the server refused a statement", "see the server's log for this SQLSTATE"),
    };
    (format!("{why} (SQLSTATE {code})"), fix)
}

/// `"name"`: a PostgreSQL identifier, whatever it holds (inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `ALTER ROLE "role" NOLOGIN`.
pub fn lock_sql(role: &AppRole) -> String {
    format!("ALTER ROLE {} NOLOGIN", quote_ident(role.as_str()))
}

/// `ALTER ROLE "role" LOGIN`.
pub fn unlock_sql(role: &AppRole) -> String {
    format!("ALTER ROLE {} LOGIN", quote_ident(role.as_str()))
}

/// `SET statement_timeout = <ms>` (an integer, never spliced text).
fn statement_timeout_sql(timeout: Duration) -> String {
    format!("SET statement_timeout = {}", timeout.as_millis().max(1))
}

/// `ALTER ROLE "a" LOGIN; …` for every role.
fn login_sql(roles: &[AppRole]) -> String {
    roles.iter().map(unlock_sql).collect::<Vec<_>>().join("; ")
}

/// The statements that undo a fence on the old primary, for the record.
fn undo_sql(roles: &[AppRole]) -> String {
    let mut s = String::from("ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()");
    for r in roles {
        s.push_str("; ");
        s.push_str(&unlock_sql(r));
    }
    s
}

/// `a, b, c`.
fn join(roles: &[AppRole]) -> String {
    roles.iter().map(AppRole::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(n: &str) -> AppRole {
        AppRole::parse(n).unwrap()
    }

    fn preflight() -> Preflight {
        Preflight {
            in_recovery: false,
            user: "fo".into(),
            superuser: false,
            alter_system: true,
            reload: true,
            signal: true,
            missing: vec![],
        }
    }

    #[test]
    fn identifiers_are_quoted_whatever_they_hold() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("App Users"), "\"App Users\"");
        assert_eq!(quote_ident("x\"; DROP TABLE t; --"), "\"x\"\"; DROP TABLE t; --\"");
        assert_eq!(lock_sql(&role("we\"ird")), "ALTER ROLE \"we\"\"ird\" NOLOGIN");
        assert_eq!(unlock_sql(&role("app")), "ALTER ROLE \"app\" LOGIN");
    }

    #[test]
    fn the_statement_timeout_is_an_integer_of_milliseconds() {
        assert_eq!(statement_timeout_sql(Duration::from_secs(5)), "SET statement_timeout = 5000");
        assert_eq!(statement_timeout_sql(Duration::ZERO), "SET statement_timeout = 1");
    }

    #[test]
    fn transport_errors_mean_unreachable_and_anything_the_server_said_means_reachable() {
        let refused = sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "10.0.0.5:5432"));
        assert!(connect_error(&refused).is_unreachable());
        let reset = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(connect_error(&reset).is_unreachable());
        for answered in [sqlx::Error::Protocol("unexpected message".into()), sqlx::Error::Tls("handshake".into())] {
            let e = connect_error(&answered);
            assert!(matches!(e, FenceError::Refused { stage: FenceStage::Connect, .. }), "{e}");
        }
        for code in ["28P01", "53300", "57P03", "3D000", "XX000"] {
            let e = server_refusal(FenceStage::Connect, Some(code));
            assert!(!e.is_unreachable());
            assert!(e.to_string().contains(code), "{e}");
        }
    }

    #[test]
    fn errors_never_echo_server_text_or_the_dsn() {
        let e = connect_error(&sqlx::Error::Protocol("password=s3cret in postgres://fo:s3cret@h".into()));
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = statement_error(FenceStage::Lock, Duration::from_secs(1), &sqlx::Error::Tls("s3cret".into()));
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn a_statement_timeout_after_connecting_is_refused_and_says_so() {
        let e = stalled(FenceStage::Lock, Duration::from_secs(5));
        assert!(!e.is_unreachable());
        let text = e.to_string();
        assert!(text.contains("replication.fence_timeout (5s)") && text.contains("after connecting"), "{text}");
        assert!(text.contains("stopped at lock"), "{text}");
    }

    #[test]
    fn permission_denied_and_missing_roles_name_the_fix() {
        let e = server_refusal(FenceStage::Lock, Some("42501")).to_string();
        assert!(e.contains("CREATEROLE") && e.contains("42501"), "{e}");
        let e = server_refusal(FenceStage::Lock, Some("42704")).to_string();
        assert!(e.contains("replication.app_roles"), "{e}");
    }

    #[test]
    fn a_refusal_after_the_lock_says_what_is_already_applied() {
        let before = server_refusal(FenceStage::Preflight, Some("42501")).to_string();
        assert!(!before.contains("already locked"), "{before}");
        let after = server_refusal(FenceStage::ReadOnly, Some("42501")).to_string();
        assert!(after.contains("already locked") && after.contains("LOGIN"), "{after}");
        let later = stalled(FenceStage::Sessions, Duration::from_secs(1)).to_string();
        assert!(later.contains("read-only is on"), "{later}");
    }

    #[test]
    fn preflight_names_missing_roles_before_privileges() {
        let p = Preflight { missing: vec!["ghost".into(), "spook".into()], alter_system: false, ..preflight() };
        let e = p.refusal().unwrap().to_string();
        assert!(e.contains("ghost, spook do not exist"), "{e}");
        assert!(e.contains("stopped at preflight"), "{e}");
    }

    #[test]
    fn preflight_lists_every_missing_privilege_with_the_grants_that_fix_it() {
        assert_eq!(preflight().refusal(), None);
        let p = Preflight { alter_system: false, reload: false, signal: false, ..preflight() };
        let e = p.refusal().unwrap().to_string();
        for want in ["ALTER SYSTEM SET default_transaction_read_only", "pg_reload_conf()", "pg_signal_backend"] {
            assert!(e.contains(want), "{want} in {e}");
        }
        assert!(e.contains("GRANT pg_signal_backend TO \"fo\""), "{e}");
        // A superuser may end any session without pg_signal_backend.
        assert_eq!(Preflight { signal: false, superuser: true, ..preflight() }.refusal(), None);
    }

    #[test]
    fn the_record_says_what_holds_and_how_to_bring_the_old_primary_back() {
        let roles = [role("app"), role("reports")];
        let f = Fenced {
            in_recovery: false,
            locked: vec![role("app")],
            already_locked: vec![role("reports")],
            terminated: 3,
        };
        let text = f.describe(&roles);
        assert!(
            text.contains("application roles app, reports locked (NOLOGIN), of which reports already were"),
            "{text}"
        );
        assert!(text.contains("3 client session(s) terminated"), "{text}");
        assert!(text.contains("re-clone it as a standby"), "{text}");
        assert!(text.contains("ALTER ROLE \"app\" LOGIN; ALTER ROLE \"reports\" LOGIN"), "{text}");
        let soft = Fenced { in_recovery: false, locked: vec![], already_locked: vec![], terminated: 0 }.describe(&[]);
        assert!(soft.contains("soft fence only"), "{soft}");
    }

    #[test]
    fn restore_refusals_give_the_statements_to_run_by_hand() {
        let (why, fix) = server_meaning(Some("42501"));
        let e = not_restored(why, fix, &[role("app"), role("b")]).to_string();
        assert!(e.contains("CREATEROLE"), "{e}");
        assert!(e.contains("on the new primary: ALTER ROLE \"app\" LOGIN; ALTER ROLE \"b\" LOGIN"), "{e}");
    }
}
