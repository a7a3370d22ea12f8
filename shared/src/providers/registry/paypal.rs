//! PayPal routes: `PAYHOOK_PAYPAL_WEBHOOK_ID` and every `[[paypal]]` section.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::BuildOptions;
use super::routes::{Routes, endpoint_route};
use crate::app::AppConfig;
use crate::config::file::{PayPalSection, PayPalVerification};
use crate::providers::paypal::extract::PayPalHandler;
use crate::providers::paypal::{
    HttpsClient, PayPalMode, PayPalPostbackSettings, PayPalPostbackVerifier, PayPalSettings,
    PayPalVerifier, TrustStore,
};
use crate::providers::{Provider, Verifier};

/// Adds the route of `PAYHOOK_PAYPAL_WEBHOOK_ID` and one route per `[[paypal]]` section.
pub(super) fn add_paypal(
    config: &AppConfig,
    options: &BuildOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
    routes: &mut Routes,
) -> anyhow::Result<()> {
    let settings = &config.settings;
    let from_env = settings
        .paypal_webhook_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    if let Some(webhook_id) = from_env {
        let mode = match settings.paypal_mode.as_str() {
            "sandbox" => PayPalMode::Sandbox,
            _ => PayPalMode::Live,
        };
        let section = PayPalSection {
            name: None,
            mode,
            webhook_id: webhook_id.to_string(),
            verification: PayPalVerification::Certificate,
            trust_store_file: None,
            tolerance_seconds: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            client_secret_env: None,
            api_base: None,
        };
        add_section(
            &section,
            "PAYHOOK_PAYPAL_WEBHOOK_ID",
            options,
            lookup,
            routes,
        )?;
    }
    for (index, section) in config.file.paypal.iter().enumerate() {
        let source = match &section.name {
            Some(name) => format!("[[paypal]] #{} (name {name:?})", index + 1),
            None => format!("[[paypal]] #{}", index + 1),
        };
        add_section(section, &source, options, lookup, routes)?;
    }
    Ok(())
}

fn add_section(
    section: &PayPalSection,
    source: &str,
    options: &BuildOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
    routes: &mut Routes,
) -> anyhow::Result<()> {
    let route = endpoint_route("paypal", section.name.as_deref());
    routes.claim(&route, source)?;
    let verifier = match section.verification {
        PayPalVerification::Certificate => certificate_verifier(section, options)
            .map(|verifier| Arc::new(verifier) as Arc<dyn Verifier>),
        PayPalVerification::Postback => postback_verifier(section, options, lookup)
            .map(|verifier| Arc::new(verifier) as Arc<dyn Verifier>),
    }
    .with_context(|| format!("{source}: invalid PayPal configuration"))?;
    routes.add(
        "paypal",
        Provider {
            name: route,
            verifier,
            handler: Arc::new(PayPalHandler),
        },
    );
    Ok(())
}

fn client(options: &BuildOptions) -> anyhow::Result<HttpsClient> {
    match &options.paypal_client {
        Some(client) => Ok(client.clone()),
        None => Ok(HttpsClient::with_native_roots()?),
    }
}

fn certificate_verifier(
    section: &PayPalSection,
    options: &BuildOptions,
) -> anyhow::Result<PayPalVerifier> {
    let postback_only = [
        ("client_id", section.client_id.is_some()),
        ("client_secret", section.client_secret.is_some()),
        ("client_secret_file", section.client_secret_file.is_some()),
        ("client_secret_env", section.client_secret_env.is_some()),
        ("api_base", section.api_base.is_some()),
    ];
    if let Some((key, _)) = postback_only.iter().find(|(_, set)| *set) {
        bail!("{key} is only used with verification = \"postback\"");
    }
    let trust_store = match &section.trust_store_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read trust_store_file {}", path.display()))?;
            TrustStore::from_pem(&pem)
                .with_context(|| format!("trust_store_file {} is invalid", path.display()))?
        }
        None => TrustStore::system()?,
    };
    let mut settings = PayPalSettings::new(
        section.mode,
        section.webhook_id.clone(),
        trust_store,
        client(options)?,
    );
    if let Some(seconds) = section.tolerance_seconds {
        settings.tolerance = Duration::from_secs(seconds);
    }
    if let Some(policy) = &options.paypal_cert_url_policy {
        settings.url_policy = policy.clone();
    }
    Ok(PayPalVerifier::new(settings)?)
}

fn postback_verifier(
    section: &PayPalSection,
    options: &BuildOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<PayPalPostbackVerifier> {
    let certificate_only = [
        ("trust_store_file", section.trust_store_file.is_some()),
        ("tolerance_seconds", section.tolerance_seconds.is_some()),
    ];
    if let Some((key, _)) = certificate_only.iter().find(|(_, set)| *set) {
        bail!("{key} is only used with verification = \"certificate\"");
    }
    let Some(client_id) = section.client_id.clone().filter(|id| !id.trim().is_empty()) else {
        bail!("client_id is required with verification = \"postback\"");
    };
    let mut secrets = section.client_secret_sources().collect(lookup)?;
    if secrets.len() != 1 {
        bail!(
            "expected exactly one client secret from client_secret, client_secret_file or \
             client_secret_env; found {}",
            secrets.len()
        );
    }
    let api_base = section
        .api_base
        .as_deref()
        .unwrap_or(section.mode.api_base());
    let api_base =
        url::Url::parse(api_base).with_context(|| format!("api_base {api_base:?} is not a URL"))?;
    let settings = PayPalPostbackSettings {
        api_base,
        client_id,
        client_secret: secrets.remove(0),
        webhook_id: section.webhook_id.clone(),
        client: client(options)?,
    };
    Ok(PayPalPostbackVerifier::new(settings)?)
}
