//! Passive HAProxy check: reads `show stat` from HAProxy's runtime API and judges the region's
//! server as HAProxy sees it ([`crate::signal::haproxy`]): marked down, its checks failing, its
//! sessions failing, its queue.
//!
//! Passive means it can only make a region worse: the engine ignores its up (the config's
//! [`CheckKind::is_passive`](crate::config::CheckKind::is_passive)). So a runtime API that does
//! not answer, or a server HAProxy does not list, is not a failure of the region: the probe
//! passes with "no signal" in its detail and a warning in the log, and the region is judged by
//! its active checks alone.

use std::sync::Mutex;

use async_trait::async_trait;
use tracing::warn;

use super::{Probe, ProbeResult};
use crate::config::HaproxyAdmin;
use crate::signal::haproxy::{PassiveLimits, ServerStat, judge, server_stat};

/// HAProxy's view of one server.
#[derive(Debug)]
pub struct HaproxyProbe {
    admin: HaproxyAdmin,
    backend: String,
    server: String,
    limits: PassiveLimits,
    /// The last reading, for the error ratio since then.
    previous: Mutex<Option<ServerStat>>,
}

impl HaproxyProbe {
    /// A probe of `backend/server` through the runtime API at `admin`.
    pub fn new(admin: HaproxyAdmin, backend: String, server: String, limits: PassiveLimits) -> Self {
        Self { admin, backend, server, limits, previous: Mutex::new(None) }
    }

    fn no_signal(&self, why: String) -> ProbeResult {
        warn!(admin = %self.admin, backend = %self.backend, server = %self.server, reason = %why, "passive HAProxy check: no signal");
        ProbeResult::ok(Some(format!("no signal: {why}")))
    }
}

#[async_trait]
impl Probe for HaproxyProbe {
    async fn probe(&self) -> ProbeResult {
        // `show stat <backend> 4 -1`: the servers (type 4) of that backend only.
        let cmd = format!("show stat {} 4 -1", self.backend);
        let answer = match crate::haproxy_runtime::command(&self.admin, &cmd).await {
            Ok(a) => a,
            Err(e) => return self.no_signal(format!("runtime API {}: {e}", self.admin)),
        };
        let now = match server_stat(&answer, &self.backend, &self.server) {
            Ok(s) => s,
            Err(e) => return self.no_signal(e),
        };
        let previous = self.previous.lock().unwrap_or_else(|p| p.into_inner()).replace(now.clone());
        ProbeResult::of_reading(judge(&self.server, previous.as_ref(), &now, &self.limits))
    }
}
