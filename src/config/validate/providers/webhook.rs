//! `type = "webhook"`: every plan POSTed, signed, to an http(s) URL.

use std::time::Duration;

use super::super::secret_from;
use super::http_url;
use crate::config::WebhookConfig;
use crate::config::error::Problems;
use crate::config::raw::RawWebhookProvider;

/// Validates a webhook provider table: a URL and a signing secret.
pub(super) fn validate(
    key: &str,
    d: &RawWebhookProvider,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<WebhookConfig> {
    let url = http_url(&format!("{key}.url"), d.url.as_ref(), p);
    let secret = secret_from(&format!("{key}.secret"), d.secret_env.as_ref(), d.secret_file.as_ref(), env, p);
    Some(WebhookConfig {
        name: d.name.clone().unwrap_or_else(|| "webhook".into()),
        url: url?,
        secret: secret?,
        timeout: d.timeout.unwrap_or(Duration::from_secs(5)),
    })
}
