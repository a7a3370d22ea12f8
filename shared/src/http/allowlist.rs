//! Optional per-provider source IP allowlists.
//!
//! Format of each entry: `provider=CIDR;CIDR;...`, e.g. `stripe=3.18.12.63/32;54.187.0.0/16`.
//! Entries are separated by commas in `PAYHOOK_IP_ALLOWLIST`, so the whole setting reads
//! `stripe=3.18.12.63/32;54.187.0.0/16,paypal=173.0.80.0/20`. A provider without an entry
//! accepts every address. The name must match the route name exactly (`paypal/eu`).

use std::collections::HashMap;
use std::net::IpAddr;

use thiserror::Error;

use super::client_ip::IpNetwork;

/// An allowlist entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid IP allowlist entry {entry:?}: {reason}")]
pub struct InvalidAllowlist {
    pub entry: String,
    pub reason: String,
}

/// Allowed source networks per provider name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist {
    rules: HashMap<String, Vec<IpNetwork>>,
}

impl IpAllowlist {
    /// Parses entries of the form `provider=CIDR;CIDR`. Repeated providers add networks.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidAllowlist> {
        let mut rules: HashMap<String, Vec<IpNetwork>> = HashMap::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let invalid = |reason: String| InvalidAllowlist {
                entry: entry.to_string(),
                reason,
            };
            let (provider, networks) = entry.split_once('=').ok_or_else(|| {
                invalid("expected provider=CIDR;CIDR, e.g. stripe=3.18.12.63/32".to_string())
            })?;
            let provider = provider.trim();
            if provider.is_empty() {
                return Err(invalid("the provider name is empty".to_string()));
            }
            let mut parsed: Vec<IpNetwork> = Vec::new();
            for network in networks.split(';').filter(|n| !n.trim().is_empty()) {
                parsed.push(network.parse().map_err(|e| invalid(format!("{e}")))?);
            }
            if parsed.is_empty() {
                return Err(invalid("no networks are listed".to_string()));
            }
            rules
                .entry(provider.to_string())
                .or_default()
                .extend(parsed);
        }
        Ok(IpAllowlist { rules })
    }

    /// Returns whether `ip` may deliver webhooks for `provider`.
    pub fn allows(&self, provider: &str, ip: IpAddr) -> bool {
        match self.rules.get(provider) {
            Some(networks) => networks.iter().any(|network| network.contains(ip)),
            None => true,
        }
    }

    /// Returns the provider names that have a rule.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// Returns whether no provider has a rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn listed_provider_allows_only_its_networks() {
        let list = IpAllowlist::parse(&["stripe=3.18.12.63/32;54.187.0.0/16", "paypal=10.0.0.0/8"])
            .unwrap();

        assert!(list.allows("stripe", ip("3.18.12.63")));
        assert!(list.allows("stripe", ip("54.187.174.169")));
        assert!(!list.allows("stripe", ip("3.18.12.64")));
        assert!(!list.allows("stripe", ip("10.1.1.1")));
        assert!(list.allows("paypal", ip("10.1.1.1")));
    }

    #[test]
    fn unlisted_provider_allows_everyone() {
        let list = IpAllowlist::parse(&["stripe=127.0.0.1"]).unwrap();

        assert!(list.allows("paypal", ip("203.0.113.5")));
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_ipv4_rule() {
        let list = IpAllowlist::parse(&["stripe=127.0.0.0/8"]).unwrap();

        assert!(list.allows("stripe", ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for entry in [
            "stripe",
            "=1.2.3.4",
            "stripe=",
            "stripe=1.2.3.4/40",
            "stripe=x",
        ] {
            let error = IpAllowlist::parse(&[entry]).unwrap_err();
            assert_eq!(error.entry, entry);
        }
    }
}
