//! The admin listener: health probes, metrics, the monitoring API, its OpenAPI description
//! and the dashboard. Payment data is only served here, never on the public listener.

mod assets;
mod events;
pub mod json;
pub mod params;
pub mod routes;
mod scrape;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::error::{ApiError, Body, json_response};
use super::health::{HealthCheck, run_check};
use crate::queue::Publisher;
use crate::secret::Secret;
use crate::storage::Store;
use crate::telemetry::metrics::Metrics;
use routes::{Access, Endpoint, RouteMatch};
use scrape::BacklogCache;

pub use assets::OPENAPI_JSON;

/// How long `/metrics` reuses the backlog counts it last read from the database.
pub const BACKLOG_CACHE_TTL: Duration = Duration::from_secs(10);

/// State of the admin listener.
pub struct AdminApi {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// Bearer token required on `/api/` routes; `None` leaves them open (loopback only).
    pub token: Option<Secret>,
    /// Queue whose idle workers are woken after a retry or replay, so requeued events do
    /// not wait for the next poll.
    pub queue: Option<Arc<dyn Publisher>>,
    /// Dependencies besides the database that readiness reports, such as the broker.
    pub checks: Vec<Arc<dyn HealthCheck>>,
    backlog: BacklogCache,
}

impl AdminApi {
    /// Creates the listener state; set [`AdminApi::queue`] to wake workers after requeues.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, token: Option<Secret>) -> Self {
        AdminApi {
            store,
            metrics,
            token,
            queue: None,
            checks: Vec::new(),
            backlog: BacklogCache::new(BACKLOG_CACHE_TTL),
        }
    }

    /// Handles one request of the admin listener.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Response<Body> {
        match self.route(&request).await {
            Ok(response) => response,
            Err(error) => {
                let status = error.status;
                let mut response = error.into_response();
                if status == StatusCode::UNAUTHORIZED {
                    static_header(&mut response, header::WWW_AUTHENTICATE, "Bearer");
                }
                if status == StatusCode::METHOD_NOT_ALLOWED
                    && let RouteMatch::MethodNotAllowed { allow } =
                        routes::find(request.method().as_str(), request.uri().path())
                    && let Ok(value) = HeaderValue::from_str(&allow)
                {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                response
            }
        }
    }

    async fn route(&self, request: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = request.uri().path();
        // Check the token before routing, so a client without it cannot probe which API
        // paths exist.
        if path.starts_with("/api/") {
            self.authorize(request)?;
        }
        let (endpoint, access, id) = match routes::find(request.method().as_str(), path) {
            RouteMatch::Found {
                endpoint,
                access,
                id,
            } => (endpoint, access, id),
            RouteMatch::MethodNotAllowed { allow } => return Err(method_not_allowed(allow)),
            RouteMatch::NotFound => return Err(ApiError::not_found("no such route")),
        };
        if access == Access::Token {
            self.authorize(request)?;
        }
        let query = request.uri().query();
        let id = id.as_deref().unwrap_or("");
        match endpoint {
            Endpoint::HealthLive => Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({"status": "live"}),
            )),
            Endpoint::HealthReady => Ok(self.ready().await),
            Endpoint::Metrics => Ok(self.metrics_text().await),
            Endpoint::OpenApi => Ok(assets::openapi()),
            Endpoint::Dashboard => Ok(assets::dashboard_page()),
            Endpoint::DashboardScript => Ok(assets::dashboard_script()),
            Endpoint::DashboardStyle => Ok(assets::dashboard_style()),
            Endpoint::Statistics => self.statistics(query).await,
            Endpoint::ListEvents => self.list_events(query).await,
            Endpoint::EventDetail => self.event_detail(id, query).await,
            Endpoint::ReplayEvent => self.replay(id, query).await,
            Endpoint::RetryFailed => self.retry(query).await,
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
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
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
}

/// Builds the 405 error; [`AdminApi::handle`] adds the `Allow` header.
fn method_not_allowed(allow: String) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route accepts {allow}"),
    )
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sets a header value that is known to be valid ASCII.
fn static_header(response: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}
