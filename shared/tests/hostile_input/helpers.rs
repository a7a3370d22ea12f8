//! A service built through the library API with a short-timeout configuration, plus a
//! test-only provider whose verifier panics, and the genuine-delivery checks every case uses.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::providers::stripe::sign_header;
use payhook::providers::{
    EventIdentity, ExtractError, Extraction, Handler, IdentityError, Provider, Rejection, Verified,
    Verifier, VerifyRequest,
};
use payhook::queue::Publisher;
use payhook::secret::Secret;
use payhook::storage::{EventFilter, Store};
use payhook::telemetry::metrics::Metrics;
use payhook::worker::embedded::EmbeddedQueue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Signing secret of the Stripe route.
pub const STRIPE_SECRET: &str = "whsec_payhook_hostile_input";

/// Maximum response time of a genuine webhook while the service is under abuse.
pub const GENUINE_LATENCY: Duration = Duration::from_secs(2);

/// Header read timeout of the test service, in seconds.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Request timeout of the test service, in seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Keep-alive timeout of the test service, in seconds.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Route of the provider whose verifier panics.
pub const PANIC_ROUTE: &str = "/api/webhooks/test-panic";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// A running public and admin listener on a temporary SQLite database.
pub struct Service {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub store: Arc<dyn Store>,
    genuine_ids: Mutex<BTreeSet<String>>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// A response read to the end.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// Returns the `code` field of a JSON error body.
    pub fn code(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body));
        json["code"].as_str().unwrap_or_default().to_string()
    }
}

struct PanickingVerifier;

#[async_trait]
impl Verifier for PanickingVerifier {
    async fn verify(&self, _request: VerifyRequest<'_>) -> Result<Verified, Rejection> {
        panic!("verifier failure injected by the hostile input suite");
    }

    fn identity(
        &self,
        _headers: &http::HeaderMap,
        _body: &[u8],
    ) -> Result<EventIdentity, IdentityError> {
        Err(IdentityError::MissingField("id"))
    }
}

struct NoPayments;

impl Handler for NoPayments {
    fn extract(&self, _event_type: &str, _payload: &str) -> Result<Extraction, ExtractError> {
        Ok(Extraction::Ignored("test provider".to_string()))
    }
}

/// Starts the service with short timeouts plus `extra_args`.
pub async fn spawn(extra_args: &[&str]) -> Service {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("payhook.db").display());
    let header_timeout = HEADER_TIMEOUT.as_secs().to_string();
    let request_timeout = REQUEST_TIMEOUT.as_secs().to_string();
    let keep_alive = KEEP_ALIVE_TIMEOUT.as_secs().to_string();
    let mut args = vec![
        "payhook",
        "--database-url",
        &database_url,
        "--stripe-secrets",
        STRIPE_SECRET,
        "--header-read-timeout-seconds",
        &header_timeout,
        "--request-timeout-seconds",
        &request_timeout,
        "--keep-alive-timeout-seconds",
        &keep_alive,
        "--log-format",
        "text",
    ];
    args.extend_from_slice(extra_args);
    let settings = Cli::try_parse_from(args)
        .expect("valid test settings")
        .settings;
    // `serve_listeners` returns a future that borrows the configuration for its lifetime.
    let config: &'static AppConfig =
        Box::leak(Box::new(AppConfig::load(settings).expect("configuration")));
    let store = app::open_store(&config.settings).await.expect("store");
    let mut providers = payhook::providers::build(config).expect("providers");
    providers.push(Provider {
        name: "test-panic".to_string(),
        verifier: Arc::new(PanickingVerifier),
        handler: Arc::new(NoPayments),
    });
    let publisher: Arc<dyn Publisher> = Arc::new(EmbeddedQueue::default());

    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_addr = public.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let listeners = app::serve_listeners(
        config,
        store.clone(),
        providers,
        publisher,
        Arc::new(Metrics::new()),
        public,
        admin,
        shutdown.clone(),
    )
    .expect("listeners");
    tokio::spawn(listeners);

    Service {
        public: public_addr,
        admin: admin_addr,
        store,
        genuine_ids: Mutex::new(BTreeSet::new()),
        shutdown,
        _dir: dir,
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Returns a `payment_intent.succeeded` event with the given id.
pub fn stripe_event(event_id: &str) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_764_000_000,
        "data": {"object": {
            "id": format!("pi_{event_id}"),
            "object": "payment_intent",
            "amount": 1500,
            "currency": "eur",
            "status": "succeeded"
        }}
    })
    .to_string()
}

/// Returns a valid `Stripe-Signature` header for `body` at the current time.
pub fn signature_for(body: &[u8]) -> String {
    sign_header(
        &Secret::new(STRIPE_SECRET),
        chrono::Utc::now().timestamp(),
        body,
    )
}

impl Service {
    /// Sends one request on a fresh connection.
    pub async fn send(
        &self,
        method: &str,
        address: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("http://{address}{path_and_query}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let response = client.request(request).await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Posts `body` to the public listener.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.send("POST", self.public, path, headers, body).await
    }

    /// Posts `body` to the Stripe route with a valid signature.
    pub async fn post_signed(&self, body: &[u8]) -> Answer {
        let signature = signature_for(body);
        self.post(
            "/api/webhooks/stripe",
            &[("stripe-signature", &signature)],
            body,
        )
        .await
    }

    /// Sends a genuine signed webhook, asserts a 200 and returns the time it took.
    pub async fn send_genuine(&self, event_id: &str) -> Duration {
        let body = stripe_event(event_id);
        let started = Instant::now();

        let answer = self.post_signed(body.as_bytes()).await;

        let elapsed = started.elapsed();
        assert_eq!(answer.status, 200, "genuine {event_id}: {}", answer.body);
        self.record_genuine(event_id);
        elapsed
    }

    /// Records an event id that a test delivered with a valid signature by other means.
    pub fn record_genuine(&self, event_id: &str) {
        self.genuine_ids
            .lock()
            .unwrap()
            .insert(event_id.to_string());
    }

    /// Sends a genuine signed webhook and asserts a 200 within [`GENUINE_LATENCY`].
    pub async fn assert_genuine_served(&self, event_id: &str) {
        let elapsed = tokio::time::timeout(GENUINE_LATENCY, self.send_genuine(event_id))
            .await
            .unwrap_or_else(|_| panic!("genuine {event_id} not answered within 2 s"));

        assert!(
            elapsed < GENUINE_LATENCY,
            "genuine {event_id} took {elapsed:?}"
        );
    }

    /// Asserts that the stored events are exactly the genuine ones sent so far.
    pub async fn assert_only_genuine_rows(&self) {
        let page = self
            .store
            .list_events(&EventFilter::default(), 1, 1000)
            .await
            .expect("list events");
        let stored: BTreeSet<String> = page.events.into_iter().map(|e| e.event_id).collect();
        let expected = self.genuine_ids.lock().unwrap().clone();
        assert_eq!(stored, expected);
    }
}
