//! `[orchestrator]`: the region this orchestrator runs in, the API address,
//! the store's DSN (`FO_STORE_DSN` overrides the file), the spill directory and the API's
//! TLS files.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

use super::list;
use crate::config::dsn::{ENV_STORE_DSN, looks_like_dsn};
use crate::config::error::Problems;
use crate::config::raw::RawOrchestrator;
use crate::config::{OrchestratorConfig, TlsFiles};
use crate::region::RegionName;

/// Validates `[orchestrator]` against the region names.
pub(super) fn validate(
    raw: &RawOrchestrator,
    regions: &[RegionName],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<OrchestratorConfig> {
    let vantage = vantage(raw, regions, p);
    let listen = listen(raw, p);
    let store_dsn = store_dsn(raw, env, p);
    let spill_dir = spill_dir(raw, p);
    let tls = tls(raw, p);
    Some(OrchestratorConfig {
        vantage: vantage?,
        listen: listen?,
        store_dsn: store_dsn?,
        shutdown_timeout: raw.shutdown_timeout.unwrap_or(Duration::from_secs(10)),
        metrics_public: raw.metrics_public.unwrap_or(true),
        spill_dir,
        tls: tls?,
    })
}

/// `orchestrator.tls_cert` / `tls_key`: both or neither, each a readable PEM file holding a
/// certificate (chain) and a private key. `Some(None)` is plain http; `None` a problem.
fn tls(raw: &RawOrchestrator, p: &mut Problems) -> Option<Option<TlsFiles>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => return Some(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) | (None, Some(_)) => {
            let missing = if raw.tls_cert.is_none() { "tls_cert" } else { "tls_key" };
            p.push(
                format!("orchestrator.{missing}"),
                "missing: tls_cert and tls_key go together",
                "set both (PEM files of the certificate chain and its private key) or neither for plain http",
            );
            return None;
        }
    };
    let read = |key_name: &str, path: &std::path::Path, p: &mut Problems| match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            p.push(
                format!("orchestrator.{key_name}"),
                format!("cannot read {}: {e}", path.display()),
                "point it at a PEM file readable by the orchestrator's user",
            );
            None
        }
    };
    let cert_ok = read("tls_cert", cert, p).is_some_and(|pem| {
        // Never echo the file's content: a key pasted into the wrong file is a secret.
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
        let ok = certs.is_ok_and(|c| !c.is_empty());
        if !ok {
            p.push(
                "orchestrator.tls_cert",
                format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", cert.display()),
                "give the certificate chain in PEM, leaf first (see README, Security: TLS)",
            );
        }
        ok
    });
    let key_ok = read("tls_key", key, p).is_some_and(|pem| {
        let ok = PrivateKeyDer::from_pem_slice(&pem).is_ok();
        if !ok {
            p.push(
                "orchestrator.tls_key",
                format!("{} holds no PEM private key", key.display()),
                "give the certificate's private key in PEM (PKCS#8 `BEGIN PRIVATE KEY`, PKCS#1 or SEC1), unencrypted",
            );
        }
        ok
    });
    (cert_ok && key_ok).then(|| Some(TlsFiles { cert: cert.clone(), key: key.clone() }))
}

/// `orchestrator.spill_dir`: a directory path (created at start when missing).
fn spill_dir(raw: &RawOrchestrator, p: &mut Problems) -> Option<std::path::PathBuf> {
    let dir = raw.spill_dir.clone()?;
    let text = dir.as_os_str().to_string_lossy();
    if text.trim().is_empty() {
        p.push(
            "orchestrator.spill_dir",
            "is empty",
            "give a directory of this orchestrator's own, e.g. \"/var/lib/failover-orchestrator/spill\", or remove the key",
        );
        return None;
    }
    if text.chars().any(char::is_control) {
        p.push("orchestrator.spill_dir", "holds a control character", "write the directory path without them");
        return None;
    }
    Some(dir)
}

/// `orchestrator.vantage`: one of the regions.
fn vantage(raw: &RawOrchestrator, regions: &[RegionName], p: &mut Problems) -> Option<RegionName> {
    match &raw.vantage {
        Some(v) if regions.iter().any(|r| r.as_str() == v) => Some(RegionName::new(v.clone())),
        Some(v) => {
            p.push(
                "orchestrator.vantage",
                format!("`{v}` is not one of the regions"),
                format!("set it to the region this orchestrator runs in: one of {}", list(regions)),
            );
            None
        }
        None => {
            p.push(
                "orchestrator.vantage",
                "missing",
                "name the region this orchestrator runs in, e.g. vantage = \"primary\"",
            );
            None
        }
    }
}

/// `orchestrator.listen`: ip:port (default `127.0.0.1:8080`).
fn listen(raw: &RawOrchestrator, p: &mut Problems) -> Option<SocketAddr> {
    let listen_text = raw.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".to_string());
    match listen_text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(
                "orchestrator.listen",
                format!("`{listen_text}` is not an address with a port"),
                "write ip:port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
            );
            None
        }
    }
}

/// `orchestrator.store_dsn`, overridden by `FO_STORE_DSN`.
fn store_dsn(raw: &RawOrchestrator, env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) -> Option<SecretString> {
    // The environment wins over the file (the file then needs no password).
    match env(ENV_STORE_DSN).or_else(|| raw.store_dsn.clone()) {
        Some(d) if looks_like_dsn(&d) => Some(SecretString::from(d)),
        Some(_) => {
            p.push(
                "orchestrator.store_dsn",
                "is not a PostgreSQL DSN",
                format!("use postgres://user@host:port/db, or set {ENV_STORE_DSN}"),
            );
            None
        }
        None => {
            p.push(
                "orchestrator.store_dsn",
                "missing",
                format!("set store_dsn = \"postgres://…\" or the environment variable {ENV_STORE_DSN}"),
            );
            None
        }
    }
}
