//! `[[notifications]]`: webhooks told about health changes, plans, drills and
//! alarms; each with a URL, an optional signing secret and a dedup window.

use std::time::Duration;

use super::providers::http_url;
use super::secret_from;
use crate::config::NotificationConfig;
use crate::config::error::Problems;
use crate::config::raw::RawNotification;

/// Validates every notification target; one with an unusable secret is left out.
pub(super) fn validate(
    raw: &[RawNotification],
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Vec<NotificationConfig> {
    let mut out = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        let key = format!("notifications[{i}]");
        let url = http_url(&format!("{key}.url"), n.url.as_ref(), p);
        // No secret configured: unsigned (Slack accepts that). A secret configured
        // but unusable leaves the target out rather than sending it unsigned.
        let secret = if n.secret_env.is_some() || n.secret_file.is_some() {
            let s = secret_from(&format!("{key}.secret"), n.secret_env.as_ref(), n.secret_file.as_ref(), env, p);
            if s.is_none() {
                continue;
            }
            s
        } else {
            None
        };
        let dedup_window = n.dedup_window.unwrap_or(Duration::from_secs(300));
        if let Some(url) = url {
            out.push(NotificationConfig {
                name: n.name.clone().unwrap_or_else(|| format!("notify-{i}")),
                url,
                secret,
                dedup_window,
                timeout: n.timeout.unwrap_or(Duration::from_secs(5)),
            });
        }
    }
    out
}
