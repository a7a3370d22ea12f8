//! PayPal webhook verification with PayPal's certificate: RSA PKCS#1 v1.5 SHA-256 over
//! `<transmission id>|<transmission time>|<webhook id>|<crc32 of body>`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::cache::{CertCache, DEFAULT_CACHE_CAPACITY};
use super::certs::{LeafKey, TrustStore, validate_chain};
use super::client::{FetchError, HttpsClient};
use super::identity::paypal_identity;
use super::message::{
    AUTH_ALGO, CERT_URL, SHA256_WITH_RSA, TRANSMISSION_SIG, TRANSMISSION_TIME, Transmission,
    signed_message,
};
use super::policy::{CertUrlPolicy, PayPalMode};
use crate::providers::signing::check_window;
use crate::providers::{
    ConfigError, EventIdentity, IdentityError, Rejection, Verified, Verifier, VerifyRequest,
};

/// Default distance allowed between `PAYPAL-TRANSMISSION-TIME` and now, both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Settings of a [`PayPalVerifier`]. [`PayPalSettings::new`] fills in the defaults of a
/// mode; tests replace the policy, names, client and trust store.
#[derive(Debug, Clone)]
pub struct PayPalSettings {
    pub mode: PayPalMode,
    /// The webhook id PayPal assigned to this listener (not an event id).
    pub webhook_id: String,
    pub tolerance: Duration,
    pub trust_store: TrustStore,
    /// DNS names the signing certificate must be issued to.
    pub cert_names: Vec<String>,
    pub url_policy: CertUrlPolicy,
    pub client: HttpsClient,
    pub cache_capacity: usize,
}

impl PayPalSettings {
    /// Returns settings with the hosts, certificate name and tolerance of `mode`.
    pub fn new(
        mode: PayPalMode,
        webhook_id: impl Into<String>,
        trust_store: TrustStore,
        client: HttpsClient,
    ) -> Self {
        PayPalSettings {
            mode,
            webhook_id: webhook_id.into(),
            tolerance: DEFAULT_TOLERANCE,
            trust_store,
            cert_names: vec![mode.cert_subject().to_string()],
            url_policy: CertUrlPolicy::for_mode(mode),
            client,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// Verifies PayPal webhooks locally with the certificate named in `PAYPAL-CERT-URL`.
#[derive(Debug)]
pub struct PayPalVerifier {
    settings: PayPalSettings,
    tolerance_seconds: i64,
    cache: CertCache,
}

/// Checks a PayPal webhook id: PayPal's API allows 1 to 50 ASCII letters and digits.
pub(crate) fn check_webhook_id(webhook_id: &str) -> Result<(), ConfigError> {
    let valid = !webhook_id.is_empty()
        && webhook_id.len() <= 50
        && webhook_id.bytes().all(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "paypal.webhook_id",
            "expected the 1 to 50 letters and digits PayPal shows for the webhook",
        ))
    }
}

impl PayPalVerifier {
    pub fn new(settings: PayPalSettings) -> Result<Self, ConfigError> {
        check_webhook_id(&settings.webhook_id)?;
        if settings.cert_names.is_empty() {
            return Err(ConfigError::invalid("paypal.cert_names", "list is empty"));
        }
        let tolerance_seconds = i64::try_from(settings.tolerance.as_secs())
            .map_err(|_| ConfigError::invalid("paypal.tolerance", "value is too large"))?;
        let cache = CertCache::new(settings.cache_capacity);
        Ok(PayPalVerifier {
            settings,
            tolerance_seconds,
            cache,
        })
    }

    /// Returns the validated key of the certificate at `url`, from the cache or fetched.
    async fn leaf_key(&self, url: &url::Url, now: DateTime<Utc>) -> Result<LeafKey, Rejection> {
        if let Some(key) = self.cache.get(url.as_str(), now) {
            return Ok(key);
        }
        let response = self
            .settings
            .client
            .send(Method::GET, url, Vec::new(), bytes::Bytes::new())
            .await
            .map_err(fetch_rejection)?;
        if response.status.is_server_error() {
            return Err(Rejection::VerifierUnavailable(format!(
                "certificate host returned HTTP {}",
                response.status
            )));
        }
        if response.status != http::StatusCode::OK {
            return Err(bad_cert(format!(
                "certificate URL returned HTTP {}",
                response.status
            )));
        }
        let key = validate_chain(
            &response.body,
            &self.settings.trust_store,
            &self.settings.cert_names,
            now,
        )
        .map_err(|e| bad_cert(e.to_string()))?;
        self.cache.insert(url.as_str(), key.clone(), now);
        Ok(key)
    }
}

fn bad_cert(reason: String) -> Rejection {
    Rejection::MalformedHeader {
        header: CERT_URL,
        reason,
    }
}

/// Maps a failed certificate download: an oversized response is a bad certificate, while
/// connection failures and timeouts are temporary, so PayPal should retry.
fn fetch_rejection(error: FetchError) -> Rejection {
    match error {
        FetchError::TooLarge(_) | FetchError::InvalidUrl(_) => bad_cert(error.to_string()),
        _ => Rejection::VerifierUnavailable(format!("certificate download failed: {error}")),
    }
}

/// Checks the algorithm header and the transmission time against the window.
pub(crate) fn check_transmission(
    transmission: &Transmission<'_>,
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), Rejection> {
    if transmission.auth_algo != SHA256_WITH_RSA {
        return Err(Rejection::NoSupportedSignature(AUTH_ALGO));
    }
    let sent = DateTime::parse_from_rfc3339(transmission.time).map_err(|e| {
        Rejection::MalformedHeader {
            header: TRANSMISSION_TIME,
            reason: format!("expected an RFC 3339 time: {e}"),
        }
    })?;
    check_window(sent.timestamp(), now, tolerance_seconds)
}

#[async_trait]
impl Verifier for PayPalVerifier {
    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verified, Rejection> {
        let transmission = Transmission::read(request.headers)?;
        check_transmission(&transmission, request.now, self.tolerance_seconds)?;
        let url = self
            .settings
            .url_policy
            .check(transmission.cert_url)
            .map_err(|reason| bad_cert(format!("certificate URL rejected: {reason}")))?;
        let signature =
            STANDARD
                .decode(transmission.signature)
                .map_err(|_| Rejection::MalformedHeader {
                    header: TRANSMISSION_SIG,
                    reason: "value is not base64".to_string(),
                })?;

        let key = self.leaf_key(&url, request.now).await?;
        let message = signed_message(
            transmission.id,
            transmission.time,
            &self.settings.webhook_id,
            request.body,
        );
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public_key)
            .verify(message.as_bytes(), &signature)
            .map_err(|_| Rejection::SignatureMismatch)?;
        let key_id = format!(
            "paypal-cert:{}",
            url.path_segments()
                .and_then(|mut segments| segments.next_back())
                .unwrap_or_default()
        );
        Ok(Verified::new(
            key_id,
            transmission.signature.to_string(),
            transmission.pairs(),
        ))
    }

    fn identity(&self, _headers: &HeaderMap, body: &[u8]) -> Result<EventIdentity, IdentityError> {
        paypal_identity(body)
    }
}
