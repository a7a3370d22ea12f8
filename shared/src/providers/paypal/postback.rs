//! PayPal webhook verification through PayPal's API: `POST /v1/notifications/
//! verify-webhook-signature` with an OAuth2 client-credentials token.
//!
//! PayPal recomputes the CRC-32 from the `webhook_event` it receives, so the raw body is
//! spliced into the request JSON byte for byte. Re-serializing it (key order, `1.0` → `1`,
//! escapes) would make genuine events fail.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::client::HttpsClient;
use super::identity::paypal_identity;
use super::message::Transmission;
use super::signature::check_webhook_id;
use crate::providers::{
    ConfigError, EventIdentity, IdentityError, Rejection, Verified, Verifier, VerifyRequest,
};
use crate::secret::Secret;

/// Time before the token's stated expiry at which a new token is requested.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Settings of a [`PayPalPostbackVerifier`].
#[derive(Debug, Clone)]
pub struct PayPalPostbackSettings {
    /// REST API base, e.g. `https://api-m.paypal.com`.
    pub api_base: Url,
    pub client_id: String,
    pub client_secret: Secret,
    /// The webhook id PayPal assigned to this listener.
    pub webhook_id: String,
    pub client: HttpsClient,
}

/// Asks PayPal whether a delivery is genuine.
#[derive(Debug)]
pub struct PayPalPostbackVerifier {
    settings: PayPalPostbackSettings,
    token_url: Url,
    verify_url: Url,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct VerifyResponse {
    verification_status: String,
}

fn unavailable(reason: impl std::fmt::Display) -> Rejection {
    Rejection::VerifierUnavailable(format!("PayPal verification API: {reason}"))
}

impl PayPalPostbackVerifier {
    pub fn new(settings: PayPalPostbackSettings) -> Result<Self, ConfigError> {
        check_webhook_id(&settings.webhook_id)?;
        if settings.api_base.scheme() != "https" {
            return Err(ConfigError::invalid(
                "paypal.api_base",
                "must be an https URL",
            ));
        }
        if settings.client_id.is_empty() || settings.client_secret.is_empty() {
            return Err(ConfigError::invalid(
                "paypal.client_id",
                "client id and client secret are required for postback verification",
            ));
        }
        let base = settings.api_base.as_str().trim_end_matches('/').to_string();
        let join = |path: &str| {
            Url::parse(&format!("{base}{path}"))
                .map_err(|e| ConfigError::invalid("paypal.api_base", e.to_string()))
        };
        Ok(PayPalPostbackVerifier {
            token_url: join("/v1/oauth2/token")?,
            verify_url: join("/v1/notifications/verify-webhook-signature")?,
            settings,
            token: Mutex::new(None),
        })
    }

    /// Returns a cached access token, or requests a new one.
    async fn access_token(&self) -> Result<String, Rejection> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() < *expires
        {
            return Ok(token.clone());
        }
        let credentials = format!(
            "{}:{}",
            self.settings.client_id,
            self.settings.client_secret.expose()
        );
        let authorization = format!("Basic {}", STANDARD.encode(credentials));
        let headers = vec![
            (header::AUTHORIZATION, header_value(&authorization)?),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            ),
        ];
        let body = Bytes::from_static(b"grant_type=client_credentials");
        let response = self
            .settings
            .client
            .send(Method::POST, &self.token_url, headers, body)
            .await
            .map_err(unavailable)?;
        if response.status != StatusCode::OK {
            return Err(unavailable(format!(
                "token request returned HTTP {}",
                response.status
            )));
        }
        let token: TokenResponse = serde_json::from_slice(&response.body)
            .map_err(|e| unavailable(format!("token response is invalid: {e}")))?;
        let lifetime = Duration::from_secs(token.expires_in).saturating_sub(TOKEN_EXPIRY_MARGIN);
        *cached = Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }
}

fn header_value(text: &str) -> Result<HeaderValue, Rejection> {
    HeaderValue::from_str(text).map_err(|_| unavailable("credentials are not valid header text"))
}

/// Builds the request JSON with `body` inserted verbatim as `webhook_event`.
fn verification_request(
    transmission: &Transmission<'_>,
    webhook_id: &str,
    body: &[u8],
) -> Result<Vec<u8>, serde_json::Error> {
    let field = |value: &str| serde_json::to_string(value);
    let mut json = format!(
        "{{\"auth_algo\":{},\"cert_url\":{},\"transmission_id\":{},\"transmission_sig\":{},\
         \"transmission_time\":{},\"webhook_id\":{},\"webhook_event\":",
        field(transmission.auth_algo)?,
        field(transmission.cert_url)?,
        field(transmission.id)?,
        field(transmission.signature)?,
        field(transmission.time)?,
        field(webhook_id)?,
    )
    .into_bytes();
    json.extend_from_slice(body);
    json.push(b'}');
    Ok(json)
}

#[async_trait]
impl Verifier for PayPalPostbackVerifier {
    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verified, Rejection> {
        let transmission = Transmission::read(request.headers)?;
        // A body that is not a JSON value cannot be a PayPal event, and splicing it would
        // produce an invalid request.
        if serde_json::from_slice::<serde::de::IgnoredAny>(request.body).is_err() {
            return Err(Rejection::SignatureMismatch);
        }
        let body = verification_request(&transmission, &self.settings.webhook_id, request.body)
            .map_err(unavailable)?;
        let token = self.access_token().await?;
        let headers: Vec<(HeaderName, HeaderValue)> = vec![
            (
                header::AUTHORIZATION,
                header_value(&format!("Bearer {token}"))?,
            ),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ];
        let response = self
            .settings
            .client
            .send(Method::POST, &self.verify_url, headers, Bytes::from(body))
            .await
            .map_err(unavailable)?;
        if response.status == StatusCode::UNAUTHORIZED {
            self.forget_token().await;
        }
        if response.status != StatusCode::OK {
            return Err(unavailable(format!("returned HTTP {}", response.status)));
        }
        let outcome: VerifyResponse = serde_json::from_slice(&response.body)
            .map_err(|e| unavailable(format!("response is invalid: {e}")))?;
        match outcome.verification_status.as_str() {
            "SUCCESS" => Ok(Verified::new(
                "paypal-postback".to_string(),
                transmission.signature.to_string(),
                transmission.pairs(),
            )),
            "FAILURE" => Err(Rejection::SignatureMismatch),
            other => Err(unavailable(format!(
                "unknown verification_status {other:?}"
            ))),
        }
    }

    fn identity(&self, _headers: &HeaderMap, body: &[u8]) -> Result<EventIdentity, IdentityError> {
        paypal_identity(body)
    }
}
