//! PayPal verification against stand-in HTTPS servers on 127.0.0.1.

mod certificate;
mod message;
mod postback;
mod support;
mod url_policy;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use payhook::providers::paypal::{PayPalMode, PayPalSettings, PayPalVerifier};
use payhook::providers::{Rejection, Verified, Verifier, VerifyRequest};

use support::Pki;

pub const WEBHOOK_ID: &str = "7PH00000SANDBOX01";
pub const LIVE_WEBHOOK_ID: &str = "7PH00000LIVE00001";
pub const TRANSMISSION_ID: &str = "5d2c9a40-1e61-11ef-8c1b-00000000ab01";
pub const TRANSMISSION_TIME: &str = "2024-05-28T08:30:00Z";
pub const SANDBOX_CERT_URL: &str =
    "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-PH-0001";
pub const SANDBOX_NAME: &str = "messageverificationcerts.sandbox.paypal.com";

/// A capture event of our own; `1.0` must survive byte for byte.
pub const BODY: &str = r#"{"id":"WH-PH00000000000001-0000000000000042","event_version":"1.0","create_time":"2024-05-28T08:29:58.000Z","resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"CAP-PH0000000042","status":"COMPLETED","amount":{"currency_code":"EUR","value":"42.10"},"custom_id":"cust-PH-7","quantity_hint":1.0}}"#;

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(TRANSMISSION_TIME)
        .unwrap()
        .to_utc()
}

/// Builds the five PayPal headers with a signature over `body` for `webhook_id`.
pub fn signed_headers(pki: &Pki, webhook_id: &str, body: &str, cert_url: &str) -> HeaderMap {
    let message = payhook::providers::paypal::signed_message(
        TRANSMISSION_ID,
        TRANSMISSION_TIME,
        webhook_id,
        body.as_bytes(),
    );
    let mut headers = HeaderMap::new();
    let pairs = [
        ("PAYPAL-TRANSMISSION-ID", TRANSMISSION_ID.to_string()),
        ("PAYPAL-TRANSMISSION-TIME", TRANSMISSION_TIME.to_string()),
        ("PAYPAL-TRANSMISSION-SIG", pki.sign(&message)),
        ("PAYPAL-CERT-URL", cert_url.to_string()),
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA".to_string()),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    headers
}

/// Returns a sandbox verifier whose client reaches `server` for every PayPal host.
pub fn sandbox_verifier(
    pki: &Pki,
    server: &support::StubServer,
    webhook_id: &str,
) -> PayPalVerifier {
    let settings = PayPalSettings::new(
        PayPalMode::Sandbox,
        webhook_id,
        pki.trust_store(),
        pki.client(server.address),
    );
    PayPalVerifier::new(settings).unwrap()
}

pub async fn verify_at(
    verifier: &dyn Verifier,
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

/// Asserts a rejection for a bad certificate or certificate URL (a 400-type rejection).
pub fn assert_cert_rejected(result: &Result<Verified, Rejection>) {
    assert!(
        matches!(
            result,
            Err(Rejection::MalformedHeader {
                header: "paypal-cert-url",
                ..
            })
        ),
        "{result:?}"
    );
}
