//! The public listener: `POST /api/webhooks/{provider}[/{endpoint}]`.
//!
//! Order of work per request: route → method → source IP allowlist → size limit → raw body
//! → JSON depth scan → signature check on the exact bytes (failures count towards the source
//! IP's rate limit) → UTF-8 → JSON with unique keys → identity → one durable insert →
//! publish → answer. No 2xx is sent before the row is committed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use tracing::Instrument;

use super::allowlist::IpAllowlist;
use super::client_ip::{IpNetwork, client_ip};
use super::error::{ApiError, Body, json_response};
use super::json_guard::{self, JsonGuardError};
use super::rate_limit::{FailureLimit, FailureLimiter};
use crate::config::{ConfigError, Settings};
use crate::model::{InsertOutcome, NewEvent};
use crate::providers::{IdentityError, Provider, Rejection, VerifyRequest};
use crate::queue::{Envelope, Publisher};
use crate::storage::{Store, StoreError};
use crate::telemetry::log_limiter::LogLimiter;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{spans, trace_context};

/// Limits applied to each webhook request.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Maximum body size in bytes; larger bodies get 413 before being read past the limit.
    pub max_body_bytes: usize,
    /// Time allowed for reading the body and answering, from the end of the headers.
    pub request_timeout: Duration,
    /// Maximum nesting depth of the JSON body.
    pub max_json_depth: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(15),
            max_json_depth: 64,
        }
    }
}

/// A clock returning the current UTC time; injectable for tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// State of the public webhook listener.
pub struct WebhookIngest {
    pub store: Arc<dyn Store>,
    pub providers: HashMap<String, Provider>,
    pub publisher: Arc<dyn Publisher>,
    pub metrics: Arc<Metrics>,
    pub limits: RequestLimits,
    /// Attempts a stored event gets before it becomes `dead`.
    pub max_attempts: i32,
    pub trusted_proxies: Vec<IpNetwork>,
    /// Whether the publisher is a broker whose messages the sweeper must be able to repair;
    /// the embedded queue reads rows straight from the database instead.
    pub publishes_to_broker: bool,
    pub clock: Clock,
    /// Source networks allowed per provider; providers without a rule accept any address.
    pub allowlist: IpAllowlist,
    /// Limits signature failures per source IP.
    pub failure_limiter: FailureLimiter,
    rejection_log: LogLimiter,
    failure_log: LogLimiter,
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    id: i64,
}

impl WebhookIngest {
    /// Creates the listener state.
    pub fn new(
        store: Arc<dyn Store>,
        providers: Vec<Provider>,
        publisher: Arc<dyn Publisher>,
        metrics: Arc<Metrics>,
    ) -> Self {
        WebhookIngest {
            store,
            providers: providers.into_iter().map(|p| (p.name.clone(), p)).collect(),
            publisher,
            metrics,
            limits: RequestLimits::default(),
            max_attempts: 10,
            trusted_proxies: Vec::new(),
            publishes_to_broker: false,
            clock: Arc::new(Utc::now),
            allowlist: IpAllowlist::default(),
            failure_limiter: FailureLimiter::new(FailureLimit::default()),
            rejection_log: LogLimiter::new(Duration::from_secs(1)),
            failure_log: LogLimiter::new(Duration::from_secs(1)),
        }
    }

    /// Applies the request limits, allowlists, rate limit, attempts and trusted proxies from
    /// the settings. Fails on an invalid value or an allowlist naming an unknown provider.
    pub fn apply_settings(&mut self, settings: &Settings) -> Result<(), ConfigError> {
        self.limits = RequestLimits {
            max_body_bytes: settings.max_body_bytes,
            request_timeout: Duration::from_secs(settings.request_timeout_seconds.max(1)),
            max_json_depth: settings.max_json_depth,
        };
        self.max_attempts = settings.max_attempts()?;
        self.trusted_proxies = settings.trusted_proxies()?;
        self.failure_limiter = FailureLimiter::new(FailureLimit {
            burst: settings.signature_failure_burst,
            per_minute: settings.signature_failures_per_minute,
            max_addresses: settings.rate_limit_max_ips,
        });
        let allowlist =
            IpAllowlist::parse(&settings.ip_allowlist).map_err(|e| ConfigError::Invalid {
                name: "PAYHOOK_IP_ALLOWLIST",
                reason: e.to_string(),
            })?;
        if let Some(unknown) = allowlist
            .providers()
            .find(|name| !self.providers.contains_key(*name))
        {
            return Err(ConfigError::Invalid {
                name: "PAYHOOK_IP_ALLOWLIST",
                reason: format!("{unknown:?} is not a configured provider"),
            });
        }
        self.allowlist = allowlist;
        Ok(())
    }

    /// Handles one request of the public listener.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let timeout = self.limits.request_timeout;
        let span = spans::receive_span();
        let routed = self.route(request, peer).instrument(span.clone());
        let (provider_label, result) = match tokio::time::timeout(timeout, routed).await {
            Ok(outcome) => outcome,
            Err(_) => (
                "unknown".to_string(),
                Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!("request not completed within {} s", timeout.as_secs()),
                )),
            ),
        };
        self.metrics.ingest_seconds.observe(
            &[("provider", &provider_label)],
            started.elapsed().as_secs_f64(),
        );
        match result {
            Ok(response) => response,
            Err(error) => {
                let outcome = if error.status == StatusCode::SERVICE_UNAVAILABLE {
                    "unavailable".to_string()
                } else {
                    format!("rejected_{}", error.code)
                };
                span.record("outcome", outcome.as_str());
                self.metrics
                    .webhook_requests
                    .inc(&[("provider", &provider_label), ("outcome", &outcome)]);
                let mut response = error.into_response();
                if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                }
                if response.status() == StatusCode::TOO_MANY_REQUESTS {
                    // Closing makes a flooding client pay for a new connection per attempt
                    // and frees its connection slot for other senders.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        }
    }

    async fn route(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> (String, Result<Response<Body>, ApiError>) {
        let Some(name) = provider_from_path(request.uri().path()) else {
            return ("unknown".into(), Err(ApiError::not_found("no such route")));
        };
        let Some(provider) = self.providers.get(&name) else {
            let detail = format!("unknown provider {name:?}");
            return ("unknown".into(), Err(ApiError::not_found(detail)));
        };
        let label = provider.name.clone();
        let span = tracing::Span::current();
        span.record("provider", label.as_str());
        span.record("http.route", spans::route_template(&name));
        if request.method() != Method::POST {
            let error = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed; webhooks are sent with POST",
                    request.method()
                ),
            );
            return (label, Err(error));
        }
        let result = self.receive(provider, request, peer).await;
        (label, result)
    }

    async fn receive(
        &self,
        provider: &Provider,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ApiError> {
        let (parts, body) = request.into_parts();
        let source_ip = client_ip(peer, &parts.headers, &self.trusted_proxies);
        if !self.allowlist.allows(&provider.name, source_ip) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                format!(
                    "source address {source_ip} is not allowed for provider {:?}",
                    provider.name
                ),
            ));
        }
        let body = self.read_body(&parts.headers, body).await?;
        json_guard::check_depth(&body, self.limits.max_json_depth).map_err(guard_error)?;

        let verify_started = Instant::now();
        let verified = provider
            .verifier
            .verify(VerifyRequest {
                headers: &parts.headers,
                body: &body,
                now: (self.clock)(),
            })
            .await;
        self.metrics.verification_seconds.observe(
            &[("provider", &provider.name)],
            verify_started.elapsed().as_secs_f64(),
        );
        let verified = match verified {
            Ok(verified) => verified,
            Err(rejection) => {
                if let Some(suppressed) = self.rejection_log.check() {
                    tracing::warn!(
                        provider = %provider.name,
                        source_ip = %source_ip,
                        reason = rejection.code(),
                        detail = %rejection,
                        suppressed,
                        "rejected unauthenticated webhook"
                    );
                }
                if matches!(rejection, Rejection::VerifierUnavailable(_)) {
                    return Err(rejection.into());
                }
                if let Err(wait) = self
                    .failure_limiter
                    .record_failure(source_ip, Instant::now())
                {
                    return Err(too_many_failures(wait));
                }
                return Err(rejection.into());
            }
        };

        let payload = std::str::from_utf8(&body).map_err(|error| {
            ApiError::bad_request(
                "invalid_encoding",
                format!(
                    "body is not valid UTF-8 (invalid byte at offset {})",
                    error.valid_up_to()
                ),
            )
        })?;
        json_guard::check_unique_keys(&body).map_err(guard_error)?;
        let identity = provider
            .verifier
            .identity(&parts.headers, &body)
            .map_err(|error| {
                let code = match error {
                    IdentityError::InvalidJson(_) => "invalid_json",
                    IdentityError::MissingField(_) => "missing_field",
                };
                ApiError::bad_request(code, error.to_string())
            })?;
        tracing::Span::current().record("event_id", identity.event_id.as_str());

        let headers_json: serde_json::Map<String, serde_json::Value> = verified
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        let event = NewEvent {
            provider: provider.name.clone(),
            event_id: identity.event_id.clone(),
            event_type: identity.event_type.clone(),
            raw_payload: payload.to_string(),
            signature: Some(verified.signature.clone()),
            headers: serde_json::Value::Object(headers_json).to_string(),
            source_ip: Some(source_ip.to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            signature_verified: true,
            signature_key_id: Some(verified.key_id.clone()),
            provider_created_at: identity.created_at,
            max_attempts: self.max_attempts,
            published: self.publishes_to_broker,
        };
        self.store_and_publish(&event).await
    }

    async fn read_body(
        &self,
        headers: &http::HeaderMap,
        body: Incoming,
    ) -> Result<Bytes, ApiError> {
        let limit = self.limits.max_body_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body exceeds the limit of {limit} bytes"),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(error) => Err(ApiError::bad_request(
                "invalid_body",
                format!("request body could not be read: {error}"),
            )),
        }
    }

    async fn store_and_publish(&self, event: &NewEvent) -> Result<Response<Body>, ApiError> {
        let insert = self.store.insert_event(event);
        let store_span = spans::store_span(&event.provider, &event.event_id);
        let outcome = match insert.instrument(store_span).await {
            Ok(outcome) => outcome,
            Err(error) => {
                if let Some(suppressed) = self.failure_log.check() {
                    tracing::error!(
                        provider = %event.provider,
                        event_id = %event.event_id,
                        %error,
                        suppressed,
                        "failed to store webhook event"
                    );
                }
                // Any failure to store durably tells the provider to retry later, except a
                // value the schema cannot hold, which a retry would not fix.
                return Err(match error {
                    StoreError::Invalid(detail) => ApiError::bad_request("invalid_value", detail),
                    _ => ApiError::unavailable(),
                });
            }
        };
        let (status, id) = match outcome {
            InsertOutcome::Inserted(id) => {
                self.publish(event, id).await;
                ("accepted", id)
            }
            InsertOutcome::Duplicate(id) => {
                tracing::debug!(id, provider = %event.provider, event_id = %event.event_id, "duplicate delivery");
                // An ingest killed between its commit and its publish leaves a row stamped
                // published with no message. The provider retries such a request, so the
                // retry publishes again; a message for a finished row is acked unprocessed.
                if self.publishes_to_broker {
                    self.publish(event, id).await;
                }
                ("duplicate", id)
            }
        };
        let span = tracing::Span::current();
        span.record("id", id);
        span.record("outcome", status);
        self.metrics
            .webhook_requests
            .inc(&[("provider", &event.provider), ("outcome", status)]);
        Ok(json_response(StatusCode::OK, &Accepted { status, id }))
    }

    async fn publish(&self, event: &NewEvent, id: i64) {
        let span = spans::publish_span(id, &event.provider, &event.event_id);
        let envelope = Envelope::V1 {
            id,
            provider: event.provider.clone(),
            event_type: event.event_type.clone(),
            attempt: 0,
            traceparent: trace_context::traceparent_of(&span),
        };
        let published = self.publisher.publish(&envelope).instrument(span).await;
        if let Err(error) = published {
            self.metrics
                .publish_failures
                .inc(&[("provider", &event.provider)]);
            tracing::warn!(
                id,
                provider = %event.provider,
                event_id = %event.event_id,
                %error,
                "publish failed; the row is stored and the sweeper will publish it"
            );
            if let Err(error) = self.store.mark_unpublished(id).await {
                tracing::error!(id, %error, "failed to clear the published mark after a failed publish");
            }
        }
    }
}

fn guard_error(error: JsonGuardError) -> ApiError {
    ApiError::bad_request(error.code(), error.to_string())
}

fn too_many_failures(wait: Duration) -> ApiError {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u32;
    ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many failed signature checks from this address; retry in {seconds} s"),
        )
    }
}

/// Extracts `provider` or `provider/endpoint` from `/api/webhooks/...`. Segments are limited
/// to lower-case letters, digits, `-` and `_`, so traversal and encoding tricks cannot name a
/// provider.
pub fn provider_from_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/webhooks/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.is_empty() || segments.len() > 2 {
        return None;
    }
    let valid = |s: &&str| {
        !s.is_empty()
            && s.len() <= 50
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if !segments.iter().all(valid) {
        return None;
    }
    Some(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::provider_from_path;

    #[test]
    fn provider_path_accepts_endpoint_segment() {
        assert_eq!(
            provider_from_path("/api/webhooks/stripe").as_deref(),
            Some("stripe")
        );
        assert_eq!(
            provider_from_path("/api/webhooks/paypal/eu").as_deref(),
            Some("paypal/eu")
        );
        assert_eq!(
            provider_from_path("/api/webhooks/stripe/").as_deref(),
            Some("stripe")
        );
    }

    #[test]
    fn provider_path_rejects_traversal() {
        for path in [
            "/api/webhooks/../admin",
            "/api/webhooks/%2e%2e",
            "/api/webhooks/",
            "/api/webhooks/a/b/c",
            "/api/webhooks/Stripe",
            "/api/other/stripe",
        ] {
            assert_eq!(provider_from_path(path), None, "{path}");
        }
    }
}
