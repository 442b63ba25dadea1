//! Serde helpers for durations in JSON output: humane strings such as `"1m 30s"`.

/// `Duration` as a humantime string.
pub mod duration {
    use std::time::Duration;

    /// Serialises as e.g. `"1m 30s"`.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// `Option<Duration>` as a humantime string or null.
pub mod opt_duration {
    use std::time::Duration;

    /// Serialises as e.g. `"500ms"` or `null`.
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}
