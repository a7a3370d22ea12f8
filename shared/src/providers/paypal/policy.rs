//! Which certificate URLs a PayPal verifier may fetch, checked before any network request.
//!
//! PayPal sends the URL of its signing certificate in the `PAYPAL-CERT-URL` header, so the
//! sender of the request chooses it. Fetching it unchecked would let anyone make
//! payhook request arbitrary URLs (SSRF) and sign with a key of their own.

use serde::Deserialize;
use url::{Host, Url};

/// PayPal environment: which hosts and certificate names are genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayPalMode {
    Live,
    Sandbox,
}

impl PayPalMode {
    /// Returns the hosts that serve this environment's certificates.
    pub fn cert_hosts(self) -> &'static [&'static str] {
        match self {
            PayPalMode::Live => &["api.paypal.com", "api-m.paypal.com"],
            PayPalMode::Sandbox => &["api.sandbox.paypal.com", "api-m.sandbox.paypal.com"],
        }
    }

    /// Returns the DNS name PayPal's message-signing certificate is issued to.
    pub fn cert_subject(self) -> &'static str {
        match self {
            PayPalMode::Live => "messageverificationcerts.paypal.com",
            PayPalMode::Sandbox => "messageverificationcerts.sandbox.paypal.com",
        }
    }

    /// Returns the REST API base URL, used by the postback verifier.
    pub fn api_base(self) -> &'static str {
        match self {
            PayPalMode::Live => "https://api-m.paypal.com",
            PayPalMode::Sandbox => "https://api-m.sandbox.paypal.com",
        }
    }
}

/// The path every PayPal certificate URL starts with.
pub const CERT_PATH_PREFIX: &str = "/v1/notifications/certs/";

/// Maximum certificate URL length, the limit PayPal's API sets for `cert_url`.
const MAX_URL_LEN: usize = 500;

/// Allowed certificate URLs: `https://<allowed host>[:port]/v1/notifications/certs/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUrlPolicy {
    hosts: Vec<String>,
    port: u16,
}

impl CertUrlPolicy {
    /// Allows the given environment's hosts on port 443.
    pub fn for_mode(mode: PayPalMode) -> Self {
        let hosts = mode.cert_hosts().iter().map(|host| host.to_string());
        CertUrlPolicy::new(hosts.collect(), 443)
    }

    /// Allows exactly `hosts` (lower-case DNS names) on `port`.
    pub fn new(hosts: Vec<String>, port: u16) -> Self {
        let hosts = hosts
            .into_iter()
            .map(|host| host.to_ascii_lowercase())
            .collect();
        CertUrlPolicy { hosts, port }
    }

    /// Parses `raw` and returns it when every rule holds, else the rule it breaks.
    pub fn check(&self, raw: &str) -> Result<Url, String> {
        if raw.len() > MAX_URL_LEN {
            return Err(format!("URL is longer than {MAX_URL_LEN} characters"));
        }
        let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        if url.scheme() != "https" {
            return Err(format!("scheme {} is not https", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URL must not contain user information".to_string());
        }
        match url.host() {
            Some(Host::Domain(host)) if self.hosts.iter().any(|allowed| allowed == host) => {}
            Some(Host::Domain(host)) => return Err(format!("host {host} is not allowed")),
            Some(_) => return Err("IP address hosts are not allowed".to_string()),
            None => return Err("URL has no host".to_string()),
        }
        if url.port_or_known_default() != Some(self.port) {
            return Err(format!("port must be {}", self.port));
        }
        let name = url.path().strip_prefix(CERT_PATH_PREFIX).unwrap_or("");
        if name.is_empty() || name.contains('/') {
            return Err(format!("path must be {CERT_PATH_PREFIX}<certificate name>"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("URL must not have a query or fragment".to_string());
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genuine_urls_pass() {
        let live = CertUrlPolicy::for_mode(PayPalMode::Live);
        let sandbox = CertUrlPolicy::for_mode(PayPalMode::Sandbox);

        assert!(
            live.check("https://api.paypal.com/v1/notifications/certs/CERT-1")
                .is_ok()
        );
        assert!(
            live.check("https://API-M.PayPal.com:443/v1/notifications/certs/CERT-1")
                .is_ok()
        );
        assert!(
            sandbox
                .check("https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1")
                .is_ok()
        );
    }

    #[test]
    fn hostile_urls_fail() {
        let live = CertUrlPolicy::for_mode(PayPalMode::Live);
        let cases = [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.attacker.example/cert.pem",
            "https://api.paypal.com.attacker.example/v1/notifications/certs/CERT-1",
            "https://attacker.example/?x=api.paypal.com",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/v1/notifications/certs/CERT-1",
            "https://api.paypal.com@attacker.example/cert.pem",
            "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com./v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/notifications/certs/",
            "https://api.paypal.com/v1/notifications/certs/a/b",
            "https://api.paypal.com/v1/notifications/certs/../../x",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1#frag",
            "https://api.paypal.com\\@attacker.example/v1/notifications/certs/CERT-1",
            "file:///etc/passwd",
            "",
        ];
        for url in cases {
            assert!(live.check(url).is_err(), "{url}");
        }
    }
}
