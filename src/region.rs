//! Names and roles: the small value types every other module speaks in.
//!
//! A [`RegionName`] and a [`CheckId`] are newtypes so a region can never be
//! passed where a check is expected. Nothing here does I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of a region as written in `regions.toml` (`primary`, `fra-1`, …).
///
/// Validated by the config stage: lowercase ASCII letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionName(String);

impl RegionName {
    /// Wraps a name; the caller (config validation) has checked its spelling.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` is a valid region name: 1–40 chars of `[a-z0-9-]`, starting with a letter.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 40
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which part a region plays in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes most of the traffic and holds the writable database.
    Primary,
    /// Same-city standby: near-synchronous replica, takes the rest of the traffic.
    Standby,
    /// Remote disaster-recovery region: asynchronous replica, little or no traffic.
    Dr,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Dr => "dr",
        })
    }
}

/// The layer a check looks at. Region health combines the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Host reachable: TCP connect.
    Infra,
    /// PostgreSQL reachable and in the expected recovery state.
    Middleware,
    /// The service itself: HTTP status, body and latency.
    App,
}

impl Layer {
    /// All layers, in the order the dashboard and status list them.
    pub const ALL: [Layer; 3] = [Layer::Infra, Layer::Middleware, Layer::App];
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Infra => "infra",
            Layer::Middleware => "middleware",
            Layer::App => "app",
        })
    }
}

/// Identifies one check: `region/check-name`. Unique across the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckId {
    /// The region the check probes.
    pub region: RegionName,
    /// The check's name, unique within its region.
    pub name: String,
}

impl CheckId {
    /// Builds an id from its two parts.
    pub fn new(region: RegionName, name: impl Into<String>) -> Self {
        Self { region, name: name.into() }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.name)
    }
}

/// Which orchestrator saw an observation: the name of the region it runs in.
pub type Vantage = RegionName;
