//! `[auth]`: where the API tokens come from (a file or an environment
//! variable, never both), whether reads and `/healthz` need one, and how long
//! the audit log is kept.

use std::time::Duration;

use crate::auth::TokenSet;
use crate::config::error::Problems;
use crate::config::raw::RawAuth;
use crate::config::{AuthConfig, DEFAULT_AUDIT_RETENTION};

/// Validates `[auth]`: reads the token lines and parses them.
pub(super) fn validate(raw: &RawAuth, env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) -> Option<AuthConfig> {
    let audit_retention = audit_retention(raw, p);
    let (key, text) = token_source(raw, env, p)?;
    match TokenSet::parse(&text) {
        // An empty token set would silently refuse every mutation: say so now.
        Ok(tokens) if tokens.is_empty() => {
            p.push(key, "holds no token", "add a line: name role sha256-hex-of-token (role: viewer, operator, admin)");
            None
        }
        Ok(tokens) => Some(AuthConfig {
            tokens,
            public_reads: raw.public_reads.unwrap_or(false),
            healthz_public: raw.healthz_public.unwrap_or(true),
            audit_retention: audit_retention?,
        }),
        Err(errors) => {
            for e in errors {
                p.push(
                    format!("{key} line {}", e.line),
                    e.message,
                    "write `name role hash`, hash = `printf %s TOKEN | sha256sum`",
                );
            }
            None
        }
    }
}

/// Audit entries younger than a minute are still being read by whoever caused them.
const MIN_AUDIT_RETENTION: Duration = Duration::from_secs(1);

/// `auth.audit_retention`: at least a second (default 90 days).
fn audit_retention(raw: &RawAuth, p: &mut Problems) -> Option<Duration> {
    match raw.audit_retention {
        None => Some(DEFAULT_AUDIT_RETENTION),
        Some(d) if d >= MIN_AUDIT_RETENTION => Some(d),
        Some(d) => {
            p.push(
                "auth.audit_retention",
                format!("{} keeps nothing", humantime::format_duration(d)),
                "give how long audit entries are kept, e.g. \"90d\" (the default) or \"400d\"",
            );
            None
        }
    }
}

/// The key the tokens came from (for problems about their lines) and their text.
fn token_source(
    raw: &RawAuth,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<(&'static str, String)> {
    match (&raw.tokens_file, &raw.tokens_env) {
        // Two sources could disagree about who may act; refuse rather than merge.
        (Some(_), Some(_)) => {
            p.push("auth", "both tokens_file and tokens_env are set", "keep one of them");
            None
        }
        (Some(path), None) => match std::fs::read_to_string(path) {
            Ok(t) => Some(("auth.tokens_file", t)),
            Err(e) => {
                p.push("auth.tokens_file", format!("cannot read {path}: {e}"), "point it at a readable tokens file");
                None
            }
        },
        (None, Some(var)) => match env(var) {
            Some(t) => Some(("auth.tokens_env", t)),
            None => {
                p.push("auth.tokens_env", format!("environment variable {var} is not set"), format!("export {var}=…"));
                None
            }
        },
        (None, None) => {
            p.push(
                "auth",
                "no token source",
                "set tokens_file = \"/etc/failover-orchestrator/tokens\" (lines: name role sha256-hex) or tokens_env",
            );
            None
        }
    }
}
