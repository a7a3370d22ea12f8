//! The PayPal transmission headers and the message PayPal signs.

use http::HeaderMap;

use crate::providers::Rejection;
use crate::providers::headers::required_header;

pub(crate) const TRANSMISSION_ID: &str = "paypal-transmission-id";
pub(crate) const TRANSMISSION_TIME: &str = "paypal-transmission-time";
pub(crate) const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
pub(crate) const CERT_URL: &str = "paypal-cert-url";
pub(crate) const AUTH_ALGO: &str = "paypal-auth-algo";

/// The only algorithm accepted; PayPal names it the Java way.
pub(crate) const SHA256_WITH_RSA: &str = "SHA256withRSA";

/// The five `PAYPAL-*` headers of one delivery, as received.
#[derive(Debug, Clone)]
pub(crate) struct Transmission<'a> {
    pub(crate) id: &'a str,
    pub(crate) time: &'a str,
    pub(crate) signature: &'a str,
    pub(crate) cert_url: &'a str,
    pub(crate) auth_algo: &'a str,
}

impl<'a> Transmission<'a> {
    /// Reads all five headers; each is required.
    pub(crate) fn read(headers: &'a HeaderMap) -> Result<Self, Rejection> {
        Ok(Transmission {
            id: required_header(headers, TRANSMISSION_ID)?,
            time: required_header(headers, TRANSMISSION_TIME)?,
            signature: required_header(headers, TRANSMISSION_SIG)?,
            cert_url: required_header(headers, CERT_URL)?,
            auth_algo: required_header(headers, AUTH_ALGO)?,
        })
    }

    /// Returns the headers as `(name, value)` pairs for re-verification.
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        [
            (TRANSMISSION_ID, self.id),
            (TRANSMISSION_TIME, self.time),
            (TRANSMISSION_SIG, self.signature),
            (CERT_URL, self.cert_url),
            (AUTH_ALGO, self.auth_algo),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }
}

/// Builds `<transmission id>|<transmission time>|<webhook id>|<crc32>`, where the time is the
/// header text verbatim and the CRC-32 (IEEE) of the raw body is an unsigned decimal.
pub fn signed_message(transmission_id: &str, time: &str, webhook_id: &str, body: &[u8]) -> String {
    let crc = crc32fast::hash(body);
    format!("{transmission_id}|{time}|{webhook_id}|{crc}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_unsigned_decimal() {
        // CRC-32 of "123456789" is the standard check value 0xCBF43926, above 2^31.
        let message = signed_message("t-1", "2024-05-20T10:00:00Z", "WH1", b"123456789");

        assert_eq!(message, "t-1|2024-05-20T10:00:00Z|WH1|3421780262");
    }
}
