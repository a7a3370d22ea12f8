//! Builds the configured provider routes from settings and the configuration file.
//!
//! Every route is checked before the service starts: a route name that
//! [`provider_from_path`](crate::http::webhook::provider_from_path) could not match, a name
//! used twice, or a verifier that cannot be built stops startup with an error naming the
//! configuration section.

mod builtin;
mod paypal;
mod routes;

use std::sync::Arc;

use super::Provider;
use super::paypal::{CertUrlPolicy, HttpsClient};
use crate::app::AppConfig;

pub use routes::endpoint_route;

/// Environment lookup used for `secrets_env` and `client_secret_env`.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Replacements for the network and environment access of the built providers. The
/// defaults are right for production; tests use them to keep PayPal traffic on 127.0.0.1.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// HTTPS client for PayPal certificate downloads and API calls. Default: the operating
    /// system's roots and resolver.
    pub paypal_client: Option<HttpsClient>,
    /// Certificate URLs PayPal routes may fetch. Default: the mode's PayPal hosts on 443.
    pub paypal_cert_url_policy: Option<CertUrlPolicy>,
    /// Environment variable lookup. Default: the process environment.
    pub env: Option<EnvLookup>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("paypal_client", &self.paypal_client)
            .field("paypal_cert_url_policy", &self.paypal_cert_url_policy)
            .field("env", &self.env.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl BuildOptions {
    fn lookup(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(lookup) => lookup(name),
            None => std::env::var(name).ok(),
        }
    }
}

/// Builds every configured provider. Fails on a misconfigured one so that it cannot silently
/// reject or accept events.
pub fn build(config: &AppConfig) -> anyhow::Result<Vec<Provider>> {
    build_with(config, &BuildOptions::default())
}

/// Builds every configured provider with replaced network or environment access.
pub fn build_with(config: &AppConfig, options: &BuildOptions) -> anyhow::Result<Vec<Provider>> {
    let lookup = |name: &str| options.lookup(name);
    let mut routes = routes::Routes::default();
    builtin::add_stripe(config, &lookup, &mut routes)?;
    paypal::add_paypal(config, options, &lookup, &mut routes)?;
    builtin::add_standard_webhooks(config, &lookup, &mut routes)?;
    builtin::add_hmac(config, &lookup, &mut routes)?;
    Ok(routes.into_providers())
}

#[cfg(test)]
mod tests;
