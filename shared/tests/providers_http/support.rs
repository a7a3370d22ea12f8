//! The service under test, started from a TOML text, and the HTTP helpers the tests share.

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
use payhook::providers::registry::{self, BuildOptions};
use payhook::storage::{EventFilter, Store};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Maximum time a test waits for asynchronous processing.
const PROCESSING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// A running service. Its database and config file live in a directory the caller owns.
pub struct TestApp {
    public: SocketAddr,
    admin: SocketAddr,
    pub store: Arc<dyn Store>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A response read to the end.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub body: String,
}

impl TestResponse {
    /// Parses the body as JSON, failing the test with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }

    /// Asserts a 400 with the given error code.
    pub fn assert_rejected(&self, code: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert_eq!(self.json()["code"], code, "{}", self.body);
    }

    /// Asserts a 200 `accepted` and returns the stored row id.
    pub fn accepted_id(&self) -> i64 {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.json()["status"], "accepted", "{}", self.body);
        self.json()["id"].as_i64().expect("row id")
    }
}

/// Returns the command-line settings of a test service plus `extra_args`.
pub fn settings(dir: &std::path::Path, config: &std::path::Path, extra_args: &[&str]) -> Settings {
    let database_url = format!("sqlite://{}", dir.join("payhook.db").display());
    let mut args = vec![
        "payhook".to_string(),
        "--database-url".to_string(),
        database_url,
        "--config".to_string(),
        config.display().to_string(),
        "--poll-interval-ms".to_string(),
        "50".to_string(),
        "--log-format".to_string(),
        "text".to_string(),
    ];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    Cli::try_parse_from(args)
        .expect("valid test settings")
        .settings
}

/// Writes `toml_text` to `dir/payhook.toml` and returns its path.
pub fn write_config(dir: &std::path::Path, toml_text: &str) -> std::path::PathBuf {
    let path = dir.join("payhook.toml");
    std::fs::write(&path, toml_text).unwrap();
    path
}

/// Starts the service in `dir` with the config `toml_text`, its providers built with
/// `options`.
pub async fn spawn(dir: &std::path::Path, toml_text: &str, options: BuildOptions) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config_path = write_config(dir, toml_text);
    let config = AppConfig::load(settings(dir, &config_path, &[])).expect("configuration");
    let providers = registry::build_with(&config, &options).expect("providers");

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
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        task: Some(task),
    }
}

impl TestApp {
    /// Posts `body` to `/api/webhooks/{route}` with `headers`.
    pub async fn post(&self, route: &str, headers: &[(&str, String)], body: &str) -> TestResponse {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/api/webhooks/{route}", self.public));
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        self.send(request).await
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> TestResponse {
        let response = self.client.request(request).await.expect("request sent");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        TestResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Polls the admin API until the event has `status`; returns the event detail JSON.
    pub async fn wait_for_status(&self, id: i64, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PROCESSING_TIMEOUT;
        loop {
            let request =
                http::Request::get(format!("http://{}/api/webhooks/events/{id}", self.admin))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            let detail = self.send(request).await;
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

    /// Returns the number of stored events of `provider`.
    pub async fn stored_rows(&self, provider: &str) -> i64 {
        let filter = EventFilter {
            provider: Some(provider.to_string()),
            ..EventFilter::default()
        };
        self.store
            .list_events(&filter, 1, 10)
            .await
            .unwrap()
            .total_count
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

/// Returns the only payment row of an event detail.
pub fn single_payment(detail: &Value) -> &Value {
    let payments = detail["paymentEvents"].as_array().expect("payment events");
    assert_eq!(payments.len(), 1, "{detail}");
    &payments[0]
}

/// Asserts that the handler step logged `status` for the event.
pub fn assert_handler_logged(detail: &Value, status: &str) {
    let logs = detail["logs"].as_array().expect("logs");
    assert!(
        logs.iter().any(|log| log["status"] == status),
        "no {status} log: {detail}"
    );
}

/// Returns the current Unix time in seconds.
pub fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}
