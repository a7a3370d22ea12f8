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
        match self.store.ping().await {
            Ok(()) => {
                self.metrics
                    .dependency_up
                    .set(&[("dependency", "database")], 1.0);
                json_response(
                    StatusCode::OK,
                    &serde_json::json!({"status": "ready", "database": "up"}),
                )
            }
            Err(error) => {
                self.metrics
                    .dependency_up
                    .set(&[("dependency", "database")], 0.0);
                tracing::warn!(%error, "readiness check: database unavailable");
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"status": "unavailable", "database": "down"}),
                )
            }
        }
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
