//! Config-defined HMAC providers: the example configs in `docs/providers/` checked against
//! each provider's published or derived signature vectors.

mod errors;
mod mapping;
mod vectors;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use payhook::providers::hmac::{HmacProviderConfig, HmacVerifier};
use payhook::providers::{Rejection, Verified, Verifier, VerifyRequest};
use payhook::secret::Secret;

pub const SHOPIFY: &str = include_str!("../../../docs/providers/shopify.toml");
pub const PADDLE: &str = include_str!("../../../docs/providers/paddle.toml");
pub const RAZORPAY: &str = include_str!("../../../docs/providers/razorpay.toml");
pub const SQUARE: &str = include_str!("../../../docs/providers/square.toml");
pub const LEMONSQUEEZY: &str = include_str!("../../../docs/providers/lemonsqueezy.toml");
pub const GITHUB: &str = include_str!("../../../docs/providers/github.toml");

pub fn config(toml_text: &str) -> HmacProviderConfig {
    toml::from_str(toml_text).expect("example config parses")
}

pub fn verifier(toml_text: &str, secret: &str) -> HmacVerifier {
    HmacVerifier::new(config(toml_text).scheme, vec![Secret::new(secret)]).unwrap()
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

pub async fn verify(
    verifier: &HmacVerifier,
    headers: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Verified, Rejection> {
    verifier
        .verify(VerifyRequest {
            headers,
            body: body.as_bytes(),
            now,
        })
        .await
}

/// Returns the body with one byte changed.
pub fn tampered(body: &str) -> String {
    body.replacen('"', "'", 1)
}
