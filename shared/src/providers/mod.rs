//! Provider protocols as pure functions: signature verification over raw bytes and payment
//! extraction from verified JSON. Nothing here does I/O.

pub mod hmac;
pub mod paypal;
pub mod registry;
pub mod standard;
pub mod stripe;

mod config_error;
pub(crate) mod headers;
mod metadata;
mod payload;
pub(crate) mod signing;

pub use config_error::ConfigError;
pub use registry::build;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::model::NewPaymentEvent;
use crate::money::MoneyError;

/// Everything a verifier may look at: the request exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    pub headers: &'a http::HeaderMap,
    /// The raw request body, byte for byte.
    pub body: &'a [u8],
    /// The current time, injected so tests can pin it.
    pub now: DateTime<Utc>,
}

/// Proof that a request's signature matched one of the configured secrets.
///
/// Only verifiers construct it, so storage and processing cannot receive an unverified event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Identifier of the secret that matched (e.g. `stripe#2` for the second configured
    /// secret), never secret material.
    pub key_id: String,
    /// The signature header value as received.
    pub signature: String,
    /// The signature-relevant headers as `(name, value)` pairs, for re-verification later.
    pub headers: Vec<(String, String)>,
}

impl Verified {
    pub(crate) fn new(key_id: String, signature: String, headers: Vec<(String, String)>) -> Self {
        Verified {
            key_id,
            signature,
            headers,
        }
    }
}

/// Reasons a request is rejected as unauthenticated. Each maps to a stable error code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {header} header: {reason}")]
    MalformedHeader {
        header: &'static str,
        reason: String,
    },
    #[error("no signature with a supported scheme in the {0} header")]
    NoSupportedSignature(&'static str),
    #[error("no signature matches any configured secret")]
    SignatureMismatch,
    #[error("timestamp is {age_seconds} s old; the tolerance is {tolerance_seconds} s")]
    TimestampTooOld {
        age_seconds: i64,
        tolerance_seconds: i64,
    },
    #[error("timestamp is {ahead_seconds} s in the future; the tolerance is {tolerance_seconds} s")]
    TimestampTooNew {
        ahead_seconds: i64,
        tolerance_seconds: i64,
    },
    #[error("no signing secret is configured for this provider")]
    NoSecretConfigured,
    /// Verification could not run (e.g. a certificate could not be fetched); the provider
    /// should retry, so this maps to 503 rather than 400.
    #[error("signature verification is temporarily unavailable: {0}")]
    VerifierUnavailable(String),
}

impl Rejection {
    /// Returns the stable machine-readable code used in error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_signature_header",
            Rejection::MalformedHeader { .. } => "malformed_signature_header",
            Rejection::NoSupportedSignature(_) => "no_supported_signature",
            Rejection::SignatureMismatch => "invalid_signature",
            Rejection::TimestampTooOld { .. } => "timestamp_too_old",
            Rejection::TimestampTooNew { .. } => "timestamp_too_new",
            Rejection::NoSecretConfigured => "provider_not_configured",
            Rejection::VerifierUnavailable(_) => "verifier_unavailable",
        }
    }
}

/// Identity of a verified event, read from its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIdentity {
    pub event_id: String,
    pub event_type: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// Reasons a verified body cannot be stored as an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body has no string field {0:?}")]
    MissingField(&'static str),
}

/// What a handler made of a verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extraction {
    /// The event carries payment facts; zero rows is possible (e.g. a $0 invoice).
    Payments(Vec<NewPaymentEvent>),
    /// The event type carries no payment facts payhook records; the reason is logged.
    Ignored(String),
}

/// Reasons a handler fails an event. The event is retried and finally dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExtractError {
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("payload field {field} is missing or has the wrong type")]
    MissingField { field: String },
    #[error("payload field {field}: {source}")]
    Money {
        field: String,
        #[source]
        source: MoneyError,
    },
    #[error("payload field {field} is invalid: {reason}")]
    InvalidField { field: String, reason: String },
}

/// Signature verification for one provider route.
#[async_trait]
pub trait Verifier: Send + Sync + 'static {
    /// Checks the request's signature against every configured secret or key.
    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verified, Rejection>;

    /// Reads the event id, type and provider time of a verified request. Called only after
    /// [`Verifier::verify`] succeeded.
    fn identity(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<EventIdentity, IdentityError>;
}

/// Payment extraction for one provider.
pub trait Handler: Send + Sync + 'static {
    /// Turns a stored, verified payload into payment events, or returns why it is ignored.
    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError>;

    /// Returns whether `extract` only computes, quickly and without blocking or I/O. A worker then
    /// calls it on its own task for payloads of up to
    /// [`INLINE_HANDLER_BYTES`](crate::worker::process::INLINE_HANDLER_BYTES), which spares
    /// two thread hand-offs per event. Any other handler runs on the blocking thread pool,
    /// where the handler timeout can still fire while it runs.
    fn computes_only(&self) -> bool {
        false
    }
}

/// A configured provider route: `POST /api/webhooks/{name}`.
#[derive(Clone)]
pub struct Provider {
    /// Route and storage name, e.g. `stripe` or `paypal/eu`.
    pub name: String,
    pub verifier: Arc<dyn Verifier>,
    pub handler: Arc<dyn Handler>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
