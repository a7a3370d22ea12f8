//! Standard Webhooks (and Svix): `webhook-signature` verification.
//!
//! The signed content is `<webhook-id>.<webhook-timestamp>.<raw body>`, signed with
//! HMAC-SHA256 under the base64-decoded secret (the part after `whsec_`). The signature
//! header is a space-separated list of `<version>,<base64>` entries, one per active secret.

use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use http::HeaderMap;
use ring::hmac;
use serde_json::Value;

use super::headers::{collect_headers, optional_header, required_header};
use super::signing::{check_window, decode_base64, key_id, parse_unix_seconds};
use super::{
    ConfigError, EventIdentity, IdentityError, Rejection, Verified, Verifier, VerifyRequest,
};
use crate::secret::Secret;

/// Replay window the Standard Webhooks libraries use, in both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const SECRET_PREFIX: &str = "whsec_";

/// Header names of one naming family: the standard `webhook-*` or Svix's `svix-*`.
struct HeaderNames {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const STANDARD_HEADERS: HeaderNames = HeaderNames {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};

const SVIX_HEADERS: HeaderNames = HeaderNames {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// Verifies Standard Webhooks signatures against one or more secrets.
pub struct StandardWebhooksVerifier {
    keys: Vec<(String, hmac::Key)>,
    tolerance_seconds: i64,
}

impl StandardWebhooksVerifier {
    /// Builds a verifier from `whsec_`-prefixed (or bare) base64 secrets.
    ///
    /// Fails when no secret is given or one is empty, not base64, or decodes to nothing.
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Result<Self, ConfigError> {
        if secrets.is_empty() {
            return Err(ConfigError::NoSecrets);
        }
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                let bytes = decode_secret(secret.expose())
                    .map_err(|reason| ConfigError::InvalidSecret { index, reason })?;
                Ok((
                    key_id(index, &bytes),
                    hmac::Key::new(hmac::HMAC_SHA256, &bytes),
                ))
            })
            .collect::<Result<_, ConfigError>>()?;
        let tolerance_seconds = i64::try_from(tolerance.as_secs())
            .map_err(|_| ConfigError::invalid("tolerance", "value is too large"))?;
        Ok(StandardWebhooksVerifier {
            keys,
            tolerance_seconds,
        })
    }
}

/// Decodes a configured secret into HMAC key bytes.
fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    if encoded.is_empty() {
        return Err("the secret is empty; expected whsec_ followed by base64".to_string());
    }
    let bytes = decode_base64(encoded).ok_or_else(|| {
        "the secret is not base64 after the optional whsec_ prefix (check for a stray \
         prefix such as v1, or surrounding whitespace)"
            .to_string()
    })?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret decodes to {} bytes; at least {MIN_SECRET_BYTES} are required (the \
             Standard Webhooks specification uses 24 to 64), so a stray item such as v1 in \
             a comma-separated list cannot become a guessable key",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Shortest accepted HMAC key. Standard Webhooks secrets are 24 to 64 random bytes; a short
/// key is a configuration mistake whose signatures an attacker could brute-force.
const MIN_SECRET_BYTES: usize = 16;

/// Picks the header family: `webhook-*` when `webhook-id` is present, else `svix-*`.
fn header_names(headers: &HeaderMap) -> &'static HeaderNames {
    if headers.contains_key(STANDARD_HEADERS.id) || !headers.contains_key(SVIX_HEADERS.id) {
        &STANDARD_HEADERS
    } else {
        &SVIX_HEADERS
    }
}

/// Returns the decoded `v1` signatures of the header; other versions are skipped.
fn v1_signatures(header: &str) -> Vec<Vec<u8>> {
    header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, signature)| decode_base64(signature))
        .collect()
}

fn reject_dot(header: &'static str, value: &str) -> Result<(), Rejection> {
    if value.contains('.') {
        return Err(Rejection::MalformedHeader {
            header,
            reason: "value must not contain '.'".to_string(),
        });
    }
    Ok(())
}

#[async_trait]
impl Verifier for StandardWebhooksVerifier {
    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verified, Rejection> {
        let names = header_names(request.headers);
        let id = required_header(request.headers, names.id)?;
        let timestamp = required_header(request.headers, names.timestamp)?;
        let signature = required_header(request.headers, names.signature)?;
        reject_dot(names.id, id)?;
        let seconds = parse_unix_seconds(timestamp).ok_or(Rejection::MalformedHeader {
            header: names.timestamp,
            reason: "expected Unix seconds".to_string(),
        })?;
        check_window(seconds, request.now, self.tolerance_seconds)?;

        if !signature.split(' ').any(|entry| entry.starts_with("v1,")) {
            return Err(Rejection::NoSupportedSignature(names.signature));
        }
        let signatures = v1_signatures(signature);
        let mut content = Vec::with_capacity(id.len() + timestamp.len() + request.body.len() + 2);
        content.extend_from_slice(id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(timestamp.as_bytes());
        content.push(b'.');
        content.extend_from_slice(request.body);

        for (key_id, key) in &self.keys {
            if signatures
                .iter()
                .any(|candidate| hmac::verify(key, &content, candidate).is_ok())
            {
                let headers = collect_headers(
                    request.headers,
                    &[names.id, names.timestamp, names.signature],
                );
                return Ok(Verified::new(
                    key_id.clone(),
                    signature.to_string(),
                    headers,
                ));
            }
        }
        Err(Rejection::SignatureMismatch)
    }

    fn identity(&self, headers: &HeaderMap, body: &[u8]) -> Result<EventIdentity, IdentityError> {
        let names = header_names(headers);
        let event_id = optional_header(headers, names.id)
            .ok()
            .flatten()
            .filter(|id| !id.is_empty())
            .ok_or(IdentityError::MissingField("webhook-id"))?
            .to_string();
        let json: Value =
            serde_json::from_slice(body).map_err(|e| IdentityError::InvalidJson(e.to_string()))?;
        let event_type = ["type", "event_type", "eventType"]
            .iter()
            .find_map(|field| json.get(*field)?.as_str())
            .ok_or(IdentityError::MissingField("type"))?
            .to_string();
        let created_at = json
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|time| time.to_utc());
        Ok(EventIdentity {
            event_id,
            event_type,
            created_at,
        })
    }
}

#[cfg(test)]
mod tests;
