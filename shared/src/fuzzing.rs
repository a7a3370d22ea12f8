//! Entry points for the fuzz targets in `fuzz/`: narrow wrappers that reach parsers which
//! are private to the crate. Not a stable API.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use crate::providers::paypal::certs::{self, CertError, TrustStore};
use crate::providers::paypal::message::Transmission;
use crate::providers::paypal::signature::check_transmission;
use crate::providers::{Rejection, Verified, Verifier, VerifyRequest};

/// Runs `verifier.verify` once to completion when it does no I/O, as the Stripe, Standard
/// Webhooks and HMAC verifiers do. Returns `None` when the future would wait.
pub fn verify_now(
    verifier: &dyn Verifier,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<Result<Verified, Rejection>> {
    let future = verifier.verify(VerifyRequest { headers, body, now });
    poll_once(future)
}

fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Reads the five `PAYPAL-*` headers and checks algorithm and time, as the certificate
/// verifier does before fetching anything. Returns the headers kept for re-verification.
pub fn paypal_transmission(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<Vec<(String, String)>, Rejection> {
    let transmission = Transmission::read(headers)?;
    check_transmission(&transmission, now, tolerance_seconds)?;
    Ok(transmission.pairs())
}

/// Validates `pem` as a served PayPal certificate chain, trusting the certificates in
/// `trust_pem` (none when it holds no valid PEM block).
pub fn paypal_chain(pem: &[u8], trust_pem: &[u8], now: DateTime<Utc>) -> Result<(), CertError> {
    let trust = TrustStore::from_pem(trust_pem).unwrap_or_else(|_| TrustStore::empty());
    let names = vec!["messageverificationcerts.paypal.com".to_string()];
    certs::validate_chain(pem, &trust, &names, now).map(|_| ())
}

/// Wraps `der` in one PEM block and validates it like [`paypal_chain`], so arbitrary bytes
/// reach the DER parser.
pub fn paypal_der_chain(der: &[u8], now: DateTime<Utc>) -> Result<(), CertError> {
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(der)
    );
    paypal_chain(pem.as_bytes(), b"", now)
}
