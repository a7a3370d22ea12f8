//! Route names: validation, uniqueness and the collected providers.

use std::collections::HashMap;

use anyhow::bail;

use crate::http::webhook::provider_from_path;
use crate::providers::Provider;

/// Returns the route of a built-in provider endpoint: `kind` when `name` is unset or equals
/// `kind`, else `kind/name`.
pub fn endpoint_route(kind: &str, name: Option<&str>) -> String {
    match name {
        None => kind.to_string(),
        Some(name) if name == kind => kind.to_string(),
        Some(name) => format!("{kind}/{name}"),
    }
}

/// The routes built so far, each with the configuration source that defined it.
#[derive(Default)]
pub(super) struct Routes {
    providers: Vec<Provider>,
    sources: HashMap<String, String>,
}

impl Routes {
    /// Checks that `route` is a name the public listener can match and reserves it for
    /// `source`, the configuration section or variable that defines it.
    pub(super) fn claim(&mut self, route: &str, source: &str) -> anyhow::Result<()> {
        let matched = provider_from_path(&format!("/api/webhooks/{route}"));
        if matched.as_deref() != Some(route) {
            bail!(
                "{source}: route name {route:?} is invalid; use one or two segments separated \
                 by '/', each 1 to 50 lower-case letters, digits, '-' or '_'"
            );
        }
        if let Some(previous) = self.sources.get(route) {
            bail!(
                "{source}: route {route:?} is already defined by {previous}; give each \
                 provider a unique name"
            );
        }
        self.sources.insert(route.to_string(), source.to_string());
        Ok(())
    }

    /// Adds a provider whose route was claimed before.
    pub(super) fn add(&mut self, kind: &'static str, provider: Provider) {
        let source = self.sources.get(&provider.name).map(String::as_str);
        tracing::info!(
            route = %provider.name,
            kind,
            source = source.unwrap_or("unknown"),
            "provider route configured"
        );
        self.providers.push(provider);
    }

    pub(super) fn into_providers(self) -> Vec<Provider> {
        self.providers
    }
}
