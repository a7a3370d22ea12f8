//! `Stripe-Signature` verification: HMAC-SHA256 over `<t>.<raw body>`, keyed with the whole
//! endpoint secret (including `whsec_`) as UTF-8 bytes, sent as lower-case hex in `v1` items.

use std::time::Duration;

use async_trait::async_trait;
use ring::hmac;
use thiserror::Error;

use super::identity::parse_identity;
use crate::providers::{
    EventIdentity, IdentityError, Rejection, Verified, Verifier, VerifyRequest,
};
use crate::secret::Secret;

/// Name of the header Stripe signs deliveries with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Maximum age of a delivery, as in Stripe's own libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Length of a hex-encoded HMAC-SHA256 tag.
const HEX_TAG_LEN: usize = 64;

/// Reasons a [`StripeVerifier`] cannot be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StripeConfigError {
    #[error("no Stripe signing secret is configured; set at least one whsec_ secret")]
    NoSecrets,
    #[error("Stripe signing secret #{0} is empty")]
    EmptySecret(usize),
    #[error(
        "Stripe signing secret #{0} has leading or trailing whitespace; remove it (a trailing \
         newline from a secret file is a common cause)"
    )]
    SecretWhitespace(usize),
    #[error("the Stripe timestamp tolerance must be at least one second")]
    ZeroTolerance,
}

/// Verifies `Stripe-Signature` headers against one or more endpoint secrets.
///
/// Several secrets are accepted at once so an endpoint secret can be rolled: Stripe then signs
/// with the old and the new secret and sends one `v1` item for each.
pub struct StripeVerifier {
    keys: Vec<hmac::Key>,
    tolerance_seconds: i64,
}

impl std::fmt::Debug for StripeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeVerifier")
            .field("secrets", &self.keys.len())
            .field("tolerance_seconds", &self.tolerance_seconds)
            .finish()
    }
}

impl StripeVerifier {
    /// Builds a verifier. Secrets are numbered from 1 in errors and in [`Verified::key_id`]
    /// (`stripe#1` is the first secret of the list).
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> Result<Self, StripeConfigError> {
        if secrets.is_empty() {
            return Err(StripeConfigError::NoSecrets);
        }
        if tolerance.as_secs() == 0 {
            return Err(StripeConfigError::ZeroTolerance);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let value = secret.expose();
            if value.is_empty() {
                return Err(StripeConfigError::EmptySecret(index + 1));
            }
            if value.trim() != value {
                return Err(StripeConfigError::SecretWhitespace(index + 1));
            }
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, value.as_bytes()));
        }
        Ok(StripeVerifier {
            keys,
            tolerance_seconds: i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Checks a header value against the raw body and returns the 1-based position of the
    /// secret that matched.
    fn check(&self, header: &str, body: &[u8], now: i64) -> Result<usize, Rejection> {
        let parsed = parse_header(header)?;
        if parsed.v1.is_empty() {
            return Err(Rejection::NoSupportedSignature(SIGNATURE_HEADER));
        }
        let candidates: Vec<[u8; 32]> = parsed.v1.iter().filter_map(|v| decode_hex(v)).collect();

        // Every (secret, signature) pair is compared, so the time taken does not depend on
        // which secret or which item matched.
        let mut matched: Option<usize> = None;
        for (index, key) in self.keys.iter().enumerate() {
            let expected = compute_tag(key, parsed.timestamp_text, body);
            for candidate in &candidates {
                if fixed_time_eq(expected.as_ref(), candidate) && matched.is_none() {
                    matched = Some(index + 1);
                }
            }
        }
        let matched = matched.ok_or(Rejection::SignatureMismatch)?;

        // The age is checked only after the signature, so an unauthenticated request learns
        // nothing about the clock.
        let age = now.saturating_sub(parsed.timestamp);
        if age > self.tolerance_seconds {
            return Err(Rejection::TimestampTooOld {
                age_seconds: age,
                tolerance_seconds: self.tolerance_seconds,
            });
        }
        // Stripe's libraries accept any future timestamp. A genuine delivery is signed just
        // before it is sent, so a timestamp further ahead than the tolerance means a skewed
        // clock or a signature minted for later replay; the same window applies both ways.
        let ahead = parsed.timestamp.saturating_sub(now);
        if ahead > self.tolerance_seconds {
            return Err(Rejection::TimestampTooNew {
                ahead_seconds: ahead,
                tolerance_seconds: self.tolerance_seconds,
            });
        }
        Ok(matched)
    }
}

#[async_trait]
impl Verifier for StripeVerifier {
    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verified, Rejection> {
        let mut values = request.headers.get_all(SIGNATURE_HEADER).iter();
        let value = values
            .next()
            .ok_or(Rejection::MissingHeader(SIGNATURE_HEADER))?;
        if values.next().is_some() {
            return Err(malformed("the header is present more than once"));
        }
        let header = value
            .to_str()
            .map_err(|_| malformed("the value is not visible ASCII"))?;
        if header.is_empty() {
            return Err(Rejection::MissingHeader(SIGNATURE_HEADER));
        }

        let position = self.check(header, request.body, request.now.timestamp())?;
        Ok(Verified::new(
            format!("stripe#{position}"),
            header.to_string(),
            vec![(SIGNATURE_HEADER.to_string(), header.to_string())],
        ))
    }

    fn identity(
        &self,
        _headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<EventIdentity, IdentityError> {
        parse_identity(body)
    }
}

/// Returns a `Stripe-Signature` value, `t=<timestamp>,v1=<hex>`, for `body` signed at
/// `timestamp` with `secret`.
pub fn sign_header(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = compute_tag(&key, &timestamp.to_string(), body);
    let mut hex = String::with_capacity(HEX_TAG_LEN);
    for byte in tag.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("t={timestamp},v1={hex}")
}

/// The parts of a `Stripe-Signature` value that verification uses.
#[derive(Debug, PartialEq, Eq)]
struct ParsedHeader<'a> {
    timestamp: i64,
    /// The timestamp exactly as sent, because the signed payload uses these characters.
    timestamp_text: &'a str,
    /// Every `v1` value in header order; other schemes are dropped.
    v1: Vec<&'a str>,
}

/// Parses `t=<unix seconds>,v1=<hex>,...` without collapsing repeated keys into a map, so
/// every `v1` item survives.
fn parse_header(header: &str) -> Result<ParsedHeader<'_>, Rejection> {
    let mut timestamp: Option<(i64, &str)> = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| malformed("every item must have the form key=value"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(malformed("the t item is present more than once"));
                }
                timestamp = Some((parse_timestamp(value)?, value));
            }
            "v1" => v1.push(value),
            // v0 is Stripe's test-mode scheme and any other scheme is unknown; both are
            // ignored so a downgraded header cannot pass.
            _ => {}
        }
    }
    let (timestamp, timestamp_text) =
        timestamp.ok_or_else(|| malformed("the t item with the signing time is missing"))?;
    Ok(ParsedHeader {
        timestamp,
        timestamp_text,
        v1,
    })
}

fn parse_timestamp(value: &str) -> Result<i64, Rejection> {
    let digits_only = !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit());
    digits_only
        .then(|| value.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| malformed("t must be a Unix time in whole seconds"))
}

fn malformed(reason: &str) -> Rejection {
    Rejection::MalformedHeader {
        header: SIGNATURE_HEADER,
        reason: reason.to_string(),
    }
}

fn compute_tag(key: &hmac::Key, timestamp_text: &str, body: &[u8]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(timestamp_text.as_bytes());
    context.update(b".");
    context.update(body);
    context.sign()
}

/// Decodes a 64-character hex string (either case) into 32 bytes; anything else is `None`
/// and simply cannot match.
fn decode_hex(value: &str) -> Option<[u8; 32]> {
    let bytes = value.as_bytes();
    if bytes.len() != HEX_TAG_LEN {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// Compares two equal-length byte slices in time that depends only on their length.
fn fixed_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
