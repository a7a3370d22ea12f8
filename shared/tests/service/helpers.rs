//! `spawn_app()` and the typed helpers the service tests share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::providers::stripe::sign_header;
use payhook::secret::Secret;
use payhook::storage::{self, Store, StoreOptions};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Signing secret configured in every test service.
pub const STRIPE_SECRET: &str = "whsec_payhook_service_test";

/// Maximum time a test waits for asynchronous processing.
pub const PROCESSING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// A running service with its own database file.
pub struct TestApp {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub database_url: String,
    pub store: Arc<dyn Store>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
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
}

/// Starts the service with the default test settings plus `extra_args`.
pub async fn spawn_app(extra_args: &[&str]) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("payhook.db").display());
    let mut args = vec![
        "payhook".to_string(),
        "--database-url".to_string(),
        database_url.clone(),
        "--stripe-secrets".to_string(),
        STRIPE_SECRET.to_string(),
        "--poll-interval-ms".to_string(),
        "50".to_string(),
        "--log-format".to_string(),
        "text".to_string(),
    ];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    let settings = Cli::try_parse_from(args)
        .expect("valid test settings")
        .settings;
    let config = AppConfig::load(settings).expect("configuration");

    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_addr = public.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let store = app::open_store(&config.settings).await.expect("store");
    let task = tokio::spawn(app::run_embedded(config, public, admin, shutdown.clone()));

    TestApp {
        public: public_addr,
        admin: admin_addr,
        database_url,
        store,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        task: Some(task),
        _dir: dir,
    }
}

/// Opens a second connection to a test database.
#[allow(dead_code)]
pub async fn open_store(url: &str) -> Arc<dyn Store> {
    storage::connect(url, &StoreOptions::default())
        .await
        .unwrap()
}

impl TestApp {
    /// Sends a request to the public listener.
    pub async fn post_public(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TestResponse {
        self.request("POST", self.public, path, headers, body).await
    }

    /// Posts `body` to the Stripe route signed with the test secret at the current time.
    pub async fn post_stripe(&self, body: &str) -> TestResponse {
        let header = stripe_header(
            STRIPE_SECRET,
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        self.post_public(
            "/api/webhooks/stripe",
            &[("stripe-signature", &header)],
            body.as_bytes(),
        )
        .await
    }

    /// Sends a GET to the admin listener.
    pub async fn get_admin(&self, path: &str) -> TestResponse {
        self.request("GET", self.admin, path, &[], b"").await
    }

    /// Sends any request.
    pub async fn request(
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

    /// Polls the admin API until the event has `status`, failing after
    /// [`PROCESSING_TIMEOUT`]. Returns the event detail JSON.
    pub async fn wait_for_status(&self, id: i64, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PROCESSING_TIMEOUT;
        loop {
            let detail = self.get_admin(&format!("/api/webhooks/events/{id}")).await;
            if detail.status == 200 && detail.json()["status"] == status {
                return detail.json();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event {id} did not reach {status}: {}",
                detail.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
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

/// Builds a `Stripe-Signature` header for `body`.
pub fn stripe_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    sign_header(&Secret::new(secret), timestamp, body)
}

/// Builds a `payment_intent.succeeded` event in the current API shape.
pub fn payment_intent_succeeded(event_id: &str, amount: i64, currency: &str) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": 1_764_000_000,
        "type": "payment_intent.succeeded",
        "livemode": false,
        "data": {
            "object": {
                "id": format!("pi_svc_{event_id}"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": currency,
                "customer": "cus_svcTestBuyer",
                "latest_charge": format!("ch_svc_{event_id}"),
                "metadata": {"order_id": "ORD-SVC-1"},
                "status": "succeeded"
            }
        }
    })
    .to_string()
}
