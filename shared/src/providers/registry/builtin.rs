//! Stripe, Standard Webhooks and config-defined HMAC routes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::routes::{Routes, endpoint_route};
use crate::app::AppConfig;
use crate::config::file::HmacSection;
use crate::providers::Provider;
use crate::providers::hmac::{ConfigHandler, HmacProviderConfig, HmacVerifier};
use crate::providers::standard::{self, StandardWebhooksVerifier};
use crate::providers::stripe::{StripeHandler, StripeVerifier};

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Adds the `stripe` route (flags, environment and `[stripe]`) and every
/// `[[stripe.endpoints]]` route.
pub(super) fn add_stripe(
    config: &AppConfig,
    lookup: Lookup<'_>,
    routes: &mut Routes,
) -> anyhow::Result<()> {
    let settings = &config.settings;
    let section = config.file.stripe.as_ref();
    let source = "Stripe settings (PAYHOOK_STRIPE_SECRETS, [stripe])";
    let mut secrets = settings.stripe_secrets().context(source)?;
    if let Some(section) = section {
        secrets.extend(section.secret_sources().collect(lookup).context(source)?);
    }
    let tolerance = section
        .and_then(|section| section.tolerance_seconds)
        .unwrap_or(settings.stripe_tolerance_seconds);
    let endpoints = section.map(|section| section.endpoints.as_slice());
    let endpoints = endpoints.unwrap_or_default();

    if !secrets.is_empty() {
        routes.claim("stripe", source)?;
        let verifier = StripeVerifier::new(secrets, Duration::from_secs(tolerance))
            .with_context(|| format!("{source}: invalid Stripe configuration"))?;
        routes.add("stripe", stripe_provider("stripe".to_string(), verifier));
    }

    for (index, endpoint) in endpoints.iter().enumerate() {
        let source = format!(
            "[[stripe.endpoints]] #{} (name {:?})",
            index + 1,
            endpoint.name
        );
        let route = endpoint_route("stripe", Some(&endpoint.name));
        routes.claim(&route, &source)?;
        let secrets = endpoint
            .secret_sources()
            .collect(lookup)
            .with_context(|| source.clone())?;
        let tolerance = endpoint.tolerance_seconds.unwrap_or(tolerance);
        let verifier = StripeVerifier::new(secrets, Duration::from_secs(tolerance))
            .with_context(|| format!("{source}: invalid Stripe configuration"))?;
        routes.add("stripe", stripe_provider(route, verifier));
    }
    Ok(())
}

fn stripe_provider(name: String, verifier: StripeVerifier) -> Provider {
    Provider {
        name,
        verifier: Arc::new(verifier),
        handler: Arc::new(StripeHandler),
    }
}

/// Adds the `standard` route of `PAYHOOK_STANDARD_WEBHOOKS_SECRETS` and every
/// `[[standard_webhooks]]` route.
pub(super) fn add_standard_webhooks(
    config: &AppConfig,
    lookup: Lookup<'_>,
    routes: &mut Routes,
) -> anyhow::Result<()> {
    let from_env = &config.settings.standard_webhooks_secrets;
    if !from_env.is_empty() {
        let source = "PAYHOOK_STANDARD_WEBHOOKS_SECRETS";
        routes.claim("standard", source)?;
        let verifier = StandardWebhooksVerifier::new(from_env.clone(), standard::DEFAULT_TOLERANCE)
            .with_context(|| format!("{source}: invalid Standard Webhooks configuration"))?;
        let handler = ConfigHandler::new("standard", None)?;
        routes.add(
            "standard_webhooks",
            config_provider("standard", verifier, handler),
        );
    }

    for (index, section) in config.file.standard_webhooks.iter().enumerate() {
        let source = format!(
            "[[standard_webhooks]] #{} (name {:?})",
            index + 1,
            section.name
        );
        routes.claim(&section.name, &source)?;
        let secrets = section
            .secret_sources()
            .collect(lookup)
            .with_context(|| source.clone())?;
        let tolerance = section
            .tolerance_seconds
            .map(Duration::from_secs)
            .unwrap_or(standard::DEFAULT_TOLERANCE);
        let verifier = StandardWebhooksVerifier::new(secrets, tolerance)
            .with_context(|| format!("{source}: invalid Standard Webhooks configuration"))?;
        let handler = ConfigHandler::new(&section.name, section.payment.clone())
            .with_context(|| format!("{source}: invalid payment mapping"))?;
        routes.add(
            "standard_webhooks",
            config_provider(&section.name, verifier, handler),
        );
    }
    Ok(())
}

/// Adds every `[[hmac]]` route.
pub(super) fn add_hmac(
    config: &AppConfig,
    lookup: Lookup<'_>,
    routes: &mut Routes,
) -> anyhow::Result<()> {
    for (index, section) in config.file.hmac.iter().enumerate() {
        let source = format!("[[hmac]] #{} (name {:?})", index + 1, section.name);
        routes.claim(&section.name, &source)?;
        let provider_config = hmac_config(section).with_context(|| source.clone())?;
        let secrets = section
            .secret_sources()
            .collect(lookup)
            .with_context(|| source.clone())?;
        let verifier = HmacVerifier::new(provider_config.scheme, secrets)
            .with_context(|| format!("{source}: invalid HMAC scheme or secret"))?;
        let handler = ConfigHandler::new(&section.name, provider_config.payment)
            .with_context(|| format!("{source}: invalid payment mapping"))?;
        routes.add("hmac", config_provider(&section.name, verifier, handler));
    }
    Ok(())
}

/// Returns the inline scheme and mapping, or those of `config_file`.
fn hmac_config(section: &HmacSection) -> anyhow::Result<HmacProviderConfig> {
    match (&section.config_file, &section.scheme) {
        (Some(path), None) => {
            if section.payment.is_some() {
                bail!(
                    "set the payment mapping in {} or inline, not both",
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config_file {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("config_file {} is invalid", path.display()))
        }
        (None, Some(scheme)) => Ok(HmacProviderConfig {
            scheme: scheme.clone(),
            payment: section.payment.clone(),
        }),
        (Some(_), Some(_)) => bail!("set either config_file or [hmac.scheme], not both"),
        (None, None) => bail!("missing [hmac.scheme] (or a config_file that contains it)"),
    }
}

fn config_provider(
    name: &str,
    verifier: impl crate::providers::Verifier,
    handler: ConfigHandler,
) -> Provider {
    Provider {
        name: name.to_string(),
        verifier: Arc::new(verifier),
        handler: Arc::new(handler),
    }
}
