//! The optional TOML configuration file (`PAYHOOK_CONFIG`). Unknown keys are rejected so
//! that a typo fails at start-up instead of silently disabling a provider.
//!
//! Relative paths in the file (`*_file` keys) are read relative to the file's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::ConfigError;
use crate::providers::hmac::{HmacPaymentMapping, HmacSchemeConfig};
use crate::providers::paypal::PayPalMode;
use crate::secret::Secret;

/// Contents of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub stripe: Option<StripeSection>,
    /// `[[paypal]]`: one entry per PayPal webhook (account or environment).
    #[serde(default)]
    pub paypal: Vec<PayPalSection>,
    /// `[[standard_webhooks]]`: one entry per Standard Webhooks sender.
    #[serde(default)]
    pub standard_webhooks: Vec<StandardWebhooksSection>,
    /// `[[hmac]]`: one entry per config-defined HMAC provider.
    #[serde(default)]
    pub hmac: Vec<HmacSection>,
}

/// `[stripe]`: secrets of the `stripe` route in addition to `PAYHOOK_STRIPE_SECRETS`, and
/// further Stripe accounts as `[[stripe.endpoints]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSection {
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub secrets_env: Option<String>,
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
    #[serde(default)]
    pub endpoints: Vec<StripeEndpoint>,
}

/// `[[stripe.endpoints]]`: another Stripe account or endpoint, served at `stripe/<name>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeEndpoint {
    pub name: String,
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub secrets_env: Option<String>,
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
}

/// Signature verification method of a PayPal route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayPalVerification {
    /// Locally, with the signing certificate named in `PAYPAL-CERT-URL`.
    #[default]
    Certificate,
    /// By asking PayPal's `verify-webhook-signature` API, with OAuth client credentials.
    Postback,
}

/// `[[paypal]]`: one PayPal webhook, served at `paypal` (no `name`, or `name = "paypal"`)
/// or at `paypal/<name>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayPalSection {
    #[serde(default)]
    pub name: Option<String>,
    pub mode: PayPalMode,
    /// The webhook id PayPal shows for this listener (not an event id).
    pub webhook_id: String,
    #[serde(default)]
    pub verification: PayPalVerification,
    /// PEM file of the CAs the signing certificate must chain to (certificate
    /// verification); the operating system's roots when unset.
    #[serde(default)]
    pub trust_store_file: Option<PathBuf>,
    /// Maximum age and future skew of `PAYPAL-TRANSMISSION-TIME`, in seconds (certificate
    /// verification; PayPal's API applies its own window to postbacks).
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
    /// REST app client id (postback verification).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default, deserialize_with = "optional_secret")]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// REST API base URL (postback verification); the mode's API host when unset.
    #[serde(default)]
    pub api_base: Option<String>,
}

/// `[[standard_webhooks]]`: a Standard Webhooks (or Svix) sender, served at `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardWebhooksSection {
    pub name: String,
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub secrets_env: Option<String>,
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
    #[serde(default)]
    pub payment: Option<HmacPaymentMapping>,
}

/// `[[hmac]]`: a config-defined HMAC provider, served at `name`. The scheme and payment
/// mapping are given inline (`[hmac.scheme]`, `[hmac.payment]`) or read from
/// `config_file`, a file with top-level `[scheme]` and `[payment]` tables such as those in
/// `docs/providers/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSection {
    pub name: String,
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    #[serde(default)]
    pub scheme: Option<HmacSchemeConfig>,
    #[serde(default)]
    pub payment: Option<HmacPaymentMapping>,
    #[serde(default, deserialize_with = "secret_list")]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub secrets_env: Option<String>,
}

/// The three places a route's signing secrets can come from; all of them are combined.
#[derive(Debug, Clone, Copy)]
pub struct SecretSources<'a> {
    pub inline: &'a [Secret],
    /// A file with one secret per line, e.g. a Kubernetes secret mount.
    pub file: Option<&'a Path>,
    /// An environment variable holding comma-separated secrets.
    pub env: Option<&'a str>,
}

impl SecretSources<'_> {
    /// Collects the secrets in order: inline, file, environment. Empty entries are skipped;
    /// a named environment variable that is unset or empty is an error.
    pub fn collect(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Secret>, ConfigError> {
        let mut secrets: Vec<Secret> = self
            .inline
            .iter()
            .map(|secret| secret.expose().trim())
            .filter(|secret| !secret.is_empty())
            .map(Secret::new)
            .collect();
        if let Some(path) = self.file {
            secrets.extend(super::read_secret_lines(path)?);
        }
        if let Some(name) = self.env {
            let value = lookup(name).unwrap_or_default();
            let before = secrets.len();
            secrets.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|secret| !secret.is_empty())
                    .map(Secret::new),
            );
            if secrets.len() == before {
                return Err(ConfigError::EmptyEnv {
                    name: name.to_string(),
                });
            }
        }
        Ok(secrets)
    }
}

macro_rules! secret_sources {
    ($type:ty, $inline:ident, $file:ident, $env:ident) => {
        impl $type {
            /// Returns where this section's secrets come from.
            pub fn secret_sources(&self) -> SecretSources<'_> {
                SecretSources {
                    inline: &self.$inline,
                    file: self.$file.as_deref(),
                    env: self.$env.as_deref(),
                }
            }
        }
    };
}

secret_sources!(StripeSection, secrets, secrets_file, secrets_env);
secret_sources!(StripeEndpoint, secrets, secrets_file, secrets_env);
secret_sources!(StandardWebhooksSection, secrets, secrets_file, secrets_env);
secret_sources!(HmacSection, secrets, secrets_file, secrets_env);

impl PayPalSection {
    /// Returns where the postback client secret comes from.
    pub fn client_secret_sources(&self) -> SecretSources<'_> {
        SecretSources {
            inline: self.client_secret.as_slice(),
            file: self.client_secret_file.as_deref(),
            env: self.client_secret_env.as_deref(),
        }
    }
}

impl FileConfig {
    /// Reads and parses the file, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut config = FileConfig::parse(&text).map_err(|reason| ConfigError::File {
            path: path.to_path_buf(),
            reason,
        })?;
        if let Some(base) = path.parent() {
            config.resolve_paths(base);
        }
        Ok(config)
    }

    /// Parses TOML text. Relative paths stay relative to the working directory.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Makes every relative `*_file` path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut Option<PathBuf>| {
            if let Some(relative) = path.as_mut().filter(|p| p.is_relative()) {
                *relative = base.join(&*relative);
            }
        };
        if let Some(stripe) = &mut self.stripe {
            resolve(&mut stripe.secrets_file);
            for endpoint in &mut stripe.endpoints {
                resolve(&mut endpoint.secrets_file);
            }
        }
        for paypal in &mut self.paypal {
            resolve(&mut paypal.trust_store_file);
            resolve(&mut paypal.client_secret_file);
        }
        for standard in &mut self.standard_webhooks {
            resolve(&mut standard.secrets_file);
        }
        for hmac in &mut self.hmac {
            resolve(&mut hmac.config_file);
            resolve(&mut hmac.secrets_file);
        }
    }
}

fn secret_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Secret>, D::Error> {
    let values = Vec::<String>::deserialize(deserializer)?;
    Ok(values.into_iter().map(Secret::new).collect())
}

fn optional_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(Secret::new))
}

#[cfg(test)]
mod tests;
