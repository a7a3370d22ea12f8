//! Signatures computed the way each provider computes them, independent of payhook's
//! verifiers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// Returns HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message).as_ref().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Returns the `webhook-signature` entry for a Standard Webhooks delivery: HMAC-SHA256 of
/// `id.timestamp.body` keyed with the base64 part of a `whsec_` secret.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let message = format!("{id}.{timestamp}.{body}");
    format!("v1,{}", base64(&hmac_sha256(&key, message.as_bytes())))
}
