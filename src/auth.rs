//! Authentication and roles: bearer tokens, stored as SHA-256 hashes, compared in constant time. PURE.
//!
//! Tokens come from `[auth] tokens_file` or `tokens_env` as lines of
//! `name role sha256-hex-of-token` (`#` starts a comment). The token itself is
//! never stored, logged or returned: only its hash is kept, and a presented
//! token is hashed and compared against *every* entry without an early exit.
//!
//! [`access`] is the route policy: which role a method and path need. With no
//! `[auth]` section, reads are open and every mutation is refused (403) with a
//! message saying how to configure tokens — a safe default for a service that
//! moves production traffic.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a caller may do. Ordered: a higher role includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads status, events, drills.
    Viewer,
    /// Also runs drills, failover, switchover, failback, maintenance; reads the audit log.
    Operator,
    /// Also forces a failover onto a target over its lag limit.
    Admin,
}

impl Role {
    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The token's name (who, for the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// One configured token: a name, a role and the SHA-256 of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// Who holds it.
    pub name: String,
    /// Its role.
    pub role: Role,
    hash: [u8; 32],
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Every configured token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSet(Vec<TokenEntry>);

/// A line of a tokens file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (never the line's content: it may hold a pasted secret).
    pub message: String,
}

impl TokenSet {
    /// Parses `name role sha256-hex` lines; `;` also separates entries (for environment variables).
    ///
    /// # Errors
    /// Every bad line, numbered, without echoing its content.
    pub fn parse(text: &str) -> Result<TokenSet, Vec<TokenLineError>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in text.split(['\n', ';']).enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: &str| TokenLineError { line: i + 1, message: message.to_string() };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hash] = parts.as_slice() else {
                errors.push(err("expected three fields: name role sha256-hex-of-token"));
                continue;
            };
            let Some(role) = Role::parse(role) else {
                errors.push(err("role must be viewer, operator or admin"));
                continue;
            };
            let mut bytes = [0u8; 32];
            if hex::decode_to_slice(hash, &mut bytes).is_err() {
                errors.push(err("the third field must be 64 hex digits: the SHA-256 of the token, not the token"));
                continue;
            }
            if out.iter().any(|e: &TokenEntry| e.name == *name) {
                errors.push(err("this name is used twice"));
                continue;
            }
            out.push(TokenEntry { name: (*name).to_string(), role, hash: bytes });
        }
        if errors.is_empty() { Ok(TokenSet(out)) } else { Err(errors) }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The principal a presented token belongs to. Compares against every entry in constant time.
    pub fn authenticate(&self, presented: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for e in &self.0 {
            if bool::from(e.hash.ct_eq(&digest)) && found.is_none() {
                found = Some(Principal { name: e.name.clone(), role: e.role });
            }
        }
        found
    }
}

/// The SHA-256 of a token as 64 hex digits: what a tokens file holds.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing.
    Public,
    /// At least this role.
    Needs(Role),
}

/// The route policy. `path` is the matched route (`/api/v1/drills/{id}`).
///
/// `/healthz` and `/readyz` (probes of orchestrators and load balancers) are public when
/// `healthz_public`, `/metrics` when `metrics_public`; the dashboard shell,
/// its assets and the OpenAPI document hold no data and are public; reads need
/// `viewer` (or nothing with `public_reads`), the audit log `operator`, a stream ticket
/// (`POST /api/v1/stream/tickets`, which changes nothing) `viewer` whatever `public_reads`
/// says, every other mutation `operator` (forcing over a lag limit needs `admin`, checked by
/// the handler).
pub fn access(method: &str, path: &str, healthz_public: bool, metrics_public: bool, public_reads: bool) -> Access {
    let read = matches!(method, "GET" | "HEAD");
    match path {
        "/healthz" | "/readyz" if healthz_public => Access::Public,
        "/metrics" if metrics_public => Access::Public,
        "/" | "/assets/{file}" | "/api/v1/openapi.json" if read => Access::Public,
        "/api/v1/audit" => Access::Needs(Role::Operator),
        "/api/v1/stream/tickets" if method == "POST" => Access::Needs(Role::Viewer),
        _ if read && public_reads => Access::Public,
        _ if read => Access::Needs(Role::Viewer),
        _ => Access::Needs(Role::Operator),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> TokenSet {
        TokenSet::parse(&format!(
            "# who role hash\nalice operator {}\nbob viewer {} # comment\n\ncarol admin {}",
            hash_token("a-secret"),
            hash_token("b-secret"),
            hash_token("c-secret")
        ))
        .unwrap()
    }

    #[test]
    fn a_known_token_authenticates_as_its_name_and_role() {
        let s = set();
        assert_eq!(s.len(), 3);
        assert_eq!(s.authenticate("a-secret"), Some(Principal { name: "alice".into(), role: Role::Operator }));
        assert_eq!(s.authenticate("b-secret").map(|p| p.role), Some(Role::Viewer));
        assert_eq!(s.authenticate("c-secret").map(|p| p.role), Some(Role::Admin));
    }

    #[test]
    fn an_unknown_or_empty_token_does_not_authenticate() {
        let s = set();
        assert_eq!(s.authenticate("nope"), None);
        assert_eq!(s.authenticate(""), None);
        // The hash itself is not a token.
        assert_eq!(s.authenticate(&hash_token("a-secret")), None);
    }

    #[test]
    fn bad_lines_are_numbered_and_never_echoed() {
        let errs = TokenSet::parse("alice operator\nbob root 00\ncarol viewer my-plain-token").unwrap_err();
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(errs.iter().all(|e| !e.message.contains("my-plain-token")));
        assert!(errs[2].message.contains("SHA-256"));
    }

    #[test]
    fn semicolons_separate_entries_from_an_environment_variable() {
        let s = TokenSet::parse(&format!("a viewer {};b admin {}", hash_token("x"), hash_token("y"))).unwrap();
        assert_eq!(s.authenticate("y").map(|p| p.name), Some("b".into()));
    }

    #[test]
    fn roles_include_the_lower_ones() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
    }

    #[test]
    fn route_policy_table() {
        use Access::*;
        let cases = [
            ("GET", "/healthz", true, true, false, Public),
            ("GET", "/healthz", false, true, false, Needs(Role::Viewer)),
            ("GET", "/readyz", true, false, false, Public),
            ("GET", "/readyz", false, true, false, Needs(Role::Viewer)),
            ("GET", "/readyz", false, true, true, Public),
            ("GET", "/metrics", true, false, false, Needs(Role::Viewer)),
            ("GET", "/", true, true, false, Public),
            ("GET", "/assets/{file}", false, false, false, Public),
            ("GET", "/api/v1/openapi.json", true, true, false, Public),
            ("GET", "/api/v1/status", true, true, false, Needs(Role::Viewer)),
            ("GET", "/api/v1/status", true, true, true, Public),
            ("GET", "/api/v1/audit", true, true, true, Needs(Role::Operator)),
            ("POST", "/api/v1/drills", true, true, true, Needs(Role::Operator)),
            ("POST", "/api/v1/regions/{name}/maintenance", true, true, false, Needs(Role::Operator)),
            ("POST", "/api/v1/stream/tickets", true, true, false, Needs(Role::Viewer)),
            ("POST", "/api/v1/stream/tickets", true, true, true, Needs(Role::Viewer)),
            ("GET", "/api/v1/whoami", true, true, false, Needs(Role::Viewer)),
            ("GET", "/api/v1/whoami", true, true, true, Public),
        ];
        for (m, p, h, me, pr, want) in cases {
            assert_eq!(access(m, p, h, me, pr), want, "{m} {p}");
        }
    }
}
