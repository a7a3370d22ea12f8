//! The admin listener: health probes, metrics and the monitoring API. Payment data is only
//! served here, never on the public listener.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;

use super::error::{ApiError, Body, json_response};
use super::health::{HealthCheck, run_check};
use crate::model::{EventDetail, PaymentEvent, ProcessingLog, StoredEvent};
use crate::secret::Secret;
use crate::storage::Store;
use crate::telemetry::metrics::Metrics;

/// State of the admin listener.
pub struct AdminApi {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// Bearer token required on `/api/` routes; `None` leaves them open (loopback only).
    pub token: Option<Secret>,
    /// Dependencies besides the database that readiness reports, such as the broker.
    pub checks: Vec<Arc<dyn HealthCheck>>,
}

impl AdminApi {
    /// Handles one request of the admin listener.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Response<Body> {
        match self.route(&request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }

    async fn route(&self, request: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = request.uri().path();
        let method = request.method();
        match (method, path) {
            (&Method::GET, "/health/live") => Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({"status": "live"}),
            )),
            (&Method::GET, "/health/ready") => Ok(self.ready().await),
            (&Method::GET, "/metrics") => Ok(self.metrics_text()),
            (_, path) if path.starts_with("/api/") => {
                self.authorize(request)?;
                self.api(method, path).await
            }
            _ => Err(ApiError::not_found("no such route")),
        }
    }

    fn authorize(&self, request: &Request<Incoming>) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(presented.as_bytes(), token.expose().as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid bearer token",
            ))
        }
    }

    async fn api(&self, method: &Method, path: &str) -> Result<Response<Body>, ApiError> {
        if let Some(id) = path.strip_prefix("/api/webhooks/events/") {
            if method != Method::GET {
                return Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{method} is not allowed on this route"),
                ));
            }
            let id: i64 = id.parse().map_err(|_| {
                ApiError::bad_request("invalid_parameter", format!("invalid event id {id:?}"))
            })?;
            return self.event_detail(id).await;
        }
        Err(ApiError::not_found("no such route"))
    }

    async fn event_detail(&self, id: i64) -> Result<Response<Body>, ApiError> {
        let detail = self.store.event_detail(id).await.map_err(|error| {
            tracing::error!(id, %error, "failed to load event detail");
            ApiError::from(&error)
        })?;
        match detail {
            Some(detail) => Ok(json_response(
                StatusCode::OK,
                &EventDetailJson::from(&detail),
            )),
            None => Err(ApiError::not_found(format!("webhook event {id} not found"))),
        }
    }

    async fn ready(&self) -> Response<Body> {
        let mut body = serde_json::Map::new();
        let mut ready = true;
        let database = self.store.ping().await.map_err(|error| error.to_string());
        ready &= self.record_dependency("database", database, &mut body);
        for check in &self.checks {
            let result = run_check(check.as_ref()).await;
            ready &= self.record_dependency(check.name(), result, &mut body);
        }
        let (status, label) = if ready {
            (StatusCode::OK, "ready")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        };
        body.insert("status".into(), label.into());
        json_response(status, &serde_json::Value::Object(body))
    }

    /// Sets the dependency's gauge and response field; returns whether it is up.
    fn record_dependency(
        &self,
        name: &'static str,
        result: Result<(), String>,
        body: &mut serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        let up = result.is_ok();
        self.metrics
            .dependency_up
            .set(&[("dependency", name)], if up { 1.0 } else { 0.0 });
        if let Err(error) = result {
            tracing::warn!(dependency = name, %error, "readiness check: dependency unavailable");
        }
        body.insert(name.into(), if up { "up" } else { "down" }.into());
        up
    }

    fn metrics_text(&self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.metrics.render()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// JSON shape of one event with its logs and payment events.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetailJson<'a> {
    #[serde(flatten)]
    pub event: &'a StoredEvent,
    pub logs: &'a [ProcessingLog],
    pub payment_events: Vec<PaymentEventJson<'a>>,
}

impl<'a> From<&'a EventDetail> for EventDetailJson<'a> {
    fn from(detail: &'a EventDetail) -> Self {
        EventDetailJson {
            event: &detail.event,
            logs: &detail.logs,
            payment_events: detail
                .payment_events
                .iter()
                .map(PaymentEventJson::from)
                .collect(),
        }
    }
}

/// JSON shape of a payment event; money is a decimal string plus integer minor units.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentEventJson<'a> {
    pub id: i64,
    pub webhook_event_id: i64,
    pub payment_id: &'a str,
    pub provider: &'a str,
    pub event_type: &'a str,
    pub status: &'a str,
    pub status_raw: Option<&'a str>,
    pub amount: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub customer_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub transaction_id: Option<&'a str>,
    pub metadata: Option<serde_json::Value>,
    pub provider_created_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> From<&'a PaymentEvent> for PaymentEventJson<'a> {
    fn from(row: &'a PaymentEvent) -> Self {
        let payment = &row.payment;
        PaymentEventJson {
            id: row.id,
            webhook_event_id: row.webhook_event_id,
            payment_id: &payment.payment_id,
            provider: &row.provider,
            event_type: &payment.event_type,
            status: &payment.status,
            status_raw: payment.status_raw.as_deref(),
            amount: payment.amount.map(|m| m.to_decimal_string()),
            amount_minor: payment.amount.map(|m| m.minor),
            currency: payment.amount.map(|m| m.currency.to_string()),
            customer_id: payment.customer_id.as_deref(),
            order_id: payment.order_id.as_deref(),
            transaction_id: payment.transaction_id.as_deref(),
            metadata: payment
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            provider_created_at: payment.provider_created_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}
