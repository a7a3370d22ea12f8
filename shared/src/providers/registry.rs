//! Builds the configured provider routes from settings and the configuration file.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::Provider;
use super::stripe::{StripeHandler, StripeVerifier};
use crate::app::AppConfig;
use crate::config::read_secret_lines;

/// Builds every configured provider. Fails on a misconfigured one so that it cannot silently
/// reject or accept events.
pub fn build(config: &AppConfig) -> anyhow::Result<Vec<Provider>> {
    let settings = &config.settings;
    let mut providers = Vec::new();

    let mut stripe_secrets = settings.stripe_secrets()?;
    let mut tolerance = settings.stripe_tolerance_seconds;
    if let Some(section) = &config.file.stripe {
        stripe_secrets.extend(
            section
                .secrets
                .iter()
                .map(|s| crate::secret::Secret::new(s.trim())),
        );
        if let Some(path) = &section.secrets_file {
            stripe_secrets.extend(read_secret_lines(path)?);
        }
        if let Some(seconds) = section.tolerance_seconds {
            tolerance = seconds;
        }
    }
    if stripe_secrets.is_empty() {
        tracing::warn!("no Stripe signing secret configured; /api/webhooks/stripe answers 404");
    } else {
        let verifier = StripeVerifier::new(stripe_secrets, Duration::from_secs(tolerance))
            .context("invalid Stripe configuration")?;
        providers.push(Provider {
            name: "stripe".to_string(),
            verifier: Arc::new(verifier),
            handler: Arc::new(StripeHandler),
        });
    }
    Ok(providers)
}
