//! A running service on port 0 with a Stripe handler the test can switch, and typed HTTP
//! helpers for its listeners.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::model::StoredEvent;
use payhook::providers::stripe::sign_header;
use payhook::providers::{ExtractError, Extraction, Handler, Provider};
use payhook::secret::Secret;
use payhook::storage::{ClaimOutcome, Store};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const STRIPE_SECRET: &str = "whsec_payhook_admin_test";
pub const ADMIN_TOKEN: &str = "admin-token-5c1d9e";
/// Second route to the Stripe verifier and handler, so events have two provider names.
pub const SECOND_PROVIDER: &str = "stripe/eu";

const WAIT_TIMEOUT: Duration = Duration::from_secs(15);

/// What the switchable handler does with the next event it processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerMode {
    /// Runs the Stripe handler.
    Normal,
    /// Fails every event, like a handler bug or an outage of something it needs.
    Fail,
    /// Runs the Stripe handler, then changes `statusRaw` of every payment event, like a
    /// newer handler version would.
    Changed,
}

/// The Stripe handler behind a switch the test controls.
struct SwitchableHandler {
    inner: Arc<dyn Handler>,
    mode: Arc<Mutex<HandlerMode>>,
}

impl Handler for SwitchableHandler {
    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError> {
        let mode = *self.mode.lock().unwrap();
        match mode {
            HandlerMode::Normal => self.inner.extract(event_type, payload),
            HandlerMode::Fail => Err(ExtractError::InvalidField {
                field: "data".to_string(),
                reason: "test fault switched on".to_string(),
            }),
            HandlerMode::Changed => match self.inner.extract(event_type, payload)? {
                Extraction::Payments(mut payments) => {
                    for payment in &mut payments {
                        payment.status_raw = Some("revised_by_handler_v2".to_string());
                    }
                    Ok(Extraction::Payments(payments))
                }
                ignored => Ok(ignored),
            },
        }
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// Settings a case may change.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_attempts: i32,
    /// Delay before the first retry; long by default so a failed event stays `failed`.
    pub retry_base_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: 3,
            retry_base_ms: 3_600_000,
        }
    }
}

/// A running service.
pub struct TestApp {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub store: Arc<dyn Store>,
    mode: Arc<Mutex<HandlerMode>>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A response read to the end.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    /// Parses the body as JSON, failing the test with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

/// Starts the service on `database_url` with the admin token and the switchable handler.
pub async fn spawn_app(database_url: &str, options: Options) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = [
        "payhook",
        "--database-url",
        database_url,
        "--stripe-secrets",
        STRIPE_SECRET,
        "--admin-token",
        ADMIN_TOKEN,
        "--poll-interval-ms",
        "50",
        "--max-attempts",
        &options.max_attempts.to_string(),
        "--retry-base-ms",
        &options.retry_base_ms.to_string(),
        "--log-format",
        "text",
    ];
    let settings = Cli::try_parse_from(args)
        .expect("valid test settings")
        .settings;
    let config = AppConfig::load(settings).expect("configuration");

    let mode = Arc::new(Mutex::new(HandlerMode::Normal));
    let mut providers = payhook::providers::build(&config).expect("providers");
    let stripe = providers
        .iter_mut()
        .find(|provider| provider.name == "stripe")
        .expect("Stripe provider configured");
    stripe.handler = Arc::new(SwitchableHandler {
        inner: stripe.handler.clone(),
        mode: mode.clone(),
    });
    let second = Provider {
        name: SECOND_PROVIDER.to_string(),
        ..stripe.clone()
    };
    providers.push(second);

    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_addr = public.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let store = app::open_store(&config.settings).await.expect("store");
    let task = tokio::spawn(app::run_embedded_with_providers(
        config,
        providers,
        public,
        admin,
        shutdown.clone(),
    ));

    TestApp {
        public: public_addr,
        admin: admin_addr,
        store,
        mode,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        task: Some(task),
    }
}

impl TestApp {
    pub fn set_handler(&self, mode: HandlerMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Posts a Stripe event to `/api/webhooks/{provider}`, signed now, and returns the row
    /// id.
    pub async fn post_event(&self, provider: &str, body: &str) -> i64 {
        let header = sign_header(
            &Secret::new(STRIPE_SECRET),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let response = self
            .request_with_body(
                "POST",
                self.public,
                &format!("/api/webhooks/{provider}"),
                &[("stripe-signature", &header)],
                body.as_bytes(),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["id"].as_i64().expect("row id")
    }

    /// Sends a request with the admin token to the admin listener.
    pub async fn admin(&self, method: &str, path: &str) -> TestResponse {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        self.request(method, self.admin, path, &[("authorization", &bearer)])
            .await
    }

    /// Sends a GET with the admin token and expects 200 JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.admin("GET", path).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    /// Sends a request with an empty body.
    pub async fn request(
        &self,
        method: &str,
        address: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.request_with_body(method, address, path, headers, b"")
            .await
    }

    async fn request_with_body(
        &self,
        method: &str,
        address: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TestResponse {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("http://{address}{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let response = self.client.request(request).await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Polls the event detail until `check` accepts it, failing after a timeout.
    pub async fn wait_for(&self, id: i64, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
        loop {
            let detail = self
                .admin("GET", &format!("/api/webhooks/events/{id}"))
                .await;
            if detail.status == 200 && check(&detail.json()) {
                return detail.json();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event {id} did not reach {what}: {}",
                detail.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the event has `status`.
    pub async fn wait_for_status(&self, id: i64, status: &str) -> Value {
        self.wait_for(id, status, |detail| detail["status"] == status)
            .await
    }

    /// Takes a `failed` event away from the workers by claiming it directly (ignoring its
    /// retry time), leaving it `processing` under a one-hour lease.
    pub async fn hold_processing(&self, id: i64) -> StoredEvent {
        match self
            .store
            .claim(id, Duration::from_secs(3600), false)
            .await
            .expect("claim")
        {
            ClaimOutcome::Claimed(event) => event,
            other => panic!("event {id} could not be claimed: {other:?}"),
        }
    }

    /// Stops the service the way SIGTERM does and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("service task").expect("service result");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Returns a `payment_intent.succeeded` event with one payment.
pub fn payment_succeeded(event_id: &str, amount: i64, currency: &str) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": 1_764_000_000,
        "type": "payment_intent.succeeded",
        "livemode": false,
        "data": {
            "object": {
                "id": format!("pi_adm_{event_id}"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": currency,
                "customer": "cus_admTestBuyer",
                "latest_charge": format!("ch_adm_{event_id}"),
                "metadata": {"order_id": "ORD-ADM-7"},
                "status": "succeeded"
            }
        }
    })
    .to_string()
}

/// Returns a `customer.created` event, which carries no payment and completes as ignored.
pub fn customer_created(event_id: &str) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "created": 1_764_000_100,
        "type": "customer.created",
        "data": {"object": {"id": format!("cus_adm_{event_id}"), "object": "customer"}}
    })
    .to_string()
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
