//! `TestEnv` (a database and a queue prefix of the test's own), `spawn_ingest()`,
//! `spawn_consumer()` and bounded waits.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::model::{EventDetail, EventStatus};
use payhook::providers::Handler;
use payhook::providers::stripe::sign_header;
use payhook::queue::rabbitmq::{RabbitConfig, RabbitPublisher, TopologyNames};
use payhook::secret::Secret;
use payhook::storage::{Store, StoreOptions};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Signing secret of every test ingest.
pub const STRIPE_SECRET: &str = "whsec_payhook_broker_flow";
/// Delay tiers of every test topology: short, so retries finish within a test.
pub const DELAY_TIERS: &str = "1s,3s";
/// Maximum wait for an event to reach a state through the broker, retries included.
pub const PROCESSING_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between two checks of a polled condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

static SKIP_NOTICE: Once = Once::new();

/// Later flags override earlier ones, so a test can replace a default test setting.
#[derive(Parser)]
#[command(args_override_self = true)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// A PostgreSQL database and a RabbitMQ prefix used by one test only. Both are deleted when
/// the value is dropped.
pub struct TestEnv {
    pub amqp_url: String,
    pub database_url: String,
    pub prefix: String,
    pub store: Arc<dyn Store>,
    pub names: TopologyNames,
    admin_url: String,
    database_name: String,
}

impl TestEnv {
    /// Creates the database, or returns `None` after printing the skip notice when a URL is
    /// missing. Panics when `CI` is set and a URL is missing.
    pub async fn new() -> Option<TestEnv> {
        let amqp_url = configured("PAYHOOK_TEST_AMQP_URL");
        let admin_url = configured("PAYHOOK_TEST_POSTGRES_URL");
        let (Some(amqp_url), Some(admin_url)) = (amqp_url, admin_url) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PAYHOOK_TEST_AMQP_URL and PAYHOOK_TEST_POSTGRES_URL must be set when CI is set"
            );
            // Written to stdout directly, because the test harness captures `println!`.
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stdout(),
                    "broker_flow: skipped (PAYHOOK_TEST_AMQP_URL or PAYHOOK_TEST_POSTGRES_URL not set)"
                );
            });
            return None;
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let suffix = format!("{:016x}", fastrand::u64(..));
        let database_name = format!("payhook_flow_{suffix}");
        let admin = postgres_client(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {database_name}"))
            .await
            .expect("creating the test database failed");
        let mut url = url::Url::parse(&admin_url).expect("invalid PAYHOOK_TEST_POSTGRES_URL");
        url.set_path(&format!("/{database_name}"));
        let database_url = url.to_string();
        let store = payhook::storage::connect(&database_url, &StoreOptions::default())
            .await
            .expect("connecting to the test database failed");
        store
            .migrate()
            .await
            .expect("migrating the test database failed");
        let prefix = format!("payhook-flow-{suffix}");
        let names = TopologyNames::new(&rabbit_config(&amqp_url, &prefix));
        Some(TestEnv {
            amqp_url,
            database_url,
            prefix,
            store,
            names,
            admin_url,
            database_name,
        })
    }

    /// Returns the settings of a test process, with `extra` flags last so they win.
    pub fn config(&self, extra: &[&str]) -> AppConfig {
        let mut args: Vec<String> = [
            "payhook",
            "--database-url",
            &self.database_url,
            "--amqp-url",
            &self.amqp_url,
            "--amqp-prefix",
            &self.prefix,
            "--amqp-delay-tiers",
            DELAY_TIERS,
            "--stripe-secrets",
            STRIPE_SECRET,
            "--sweep-interval-seconds",
            "1",
            "--unpublished-grace-seconds",
            "1",
            "--max-attempts",
            "5",
            "--log-format",
            "text",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let settings = Cli::try_parse_from(args)
            .expect("invalid test settings")
            .settings;
        AppConfig::load(settings).expect("test configuration")
    }

    /// Starts ingest in RabbitMQ mode on port 0.
    pub async fn spawn_ingest(&self, extra: &[&str]) -> TestIngest {
        let config = self.config(extra);
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public_address = public.local_addr().unwrap();
        let admin_address = admin.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app::run_ingest_with_broker(
            config,
            public,
            admin,
            shutdown.clone(),
        ));
        TestIngest {
            public: public_address,
            admin: admin_address,
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown,
            task: Some(task),
        }
    }

    /// Starts a consumer with the configured providers' handlers, or with `handlers`.
    pub async fn spawn_consumer(
        &self,
        handlers: Option<HashMap<String, Arc<dyn Handler>>>,
        extra: &[&str],
    ) -> TestConsumer {
        let config = self.config(extra);
        let shutdown = CancellationToken::new();
        let (task, admin) = match handlers {
            None => {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let admin = listener.local_addr().unwrap();
                let task = tokio::spawn(app::run_consumer(config, listener, shutdown.clone()));
                (task, Some(admin))
            }
            Some(handlers) => {
                let task = tokio::spawn(app::run_consumer_with_handlers(
                    config,
                    handlers,
                    shutdown.clone(),
                ));
                (task, None)
            }
        };
        TestConsumer {
            admin,
            shutdown,
            task: Some(task),
        }
    }

    /// Returns a publisher on the test prefix, for queue depths and raw channels.
    pub fn publisher(&self) -> RabbitPublisher {
        RabbitPublisher::new(rabbit_config(&self.amqp_url, &self.prefix))
    }

    /// Returns the ready messages in `queue`.
    pub async fn depth(&self, queue: &str) -> u32 {
        let publisher = self.publisher();
        let depths = publisher
            .queue_depths()
            .await
            .expect("reading queue depths failed");
        publisher.close().await;
        depths
            .into_iter()
            .find(|depth| depth.queue == queue)
            .unwrap_or_else(|| panic!("queue {queue} missing"))
            .messages
    }

    /// Runs a query returning one integer on the test database.
    pub async fn count(&self, sql: &str) -> i64 {
        let client = postgres_client(&self.database_url).await;
        client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|error| panic!("{sql} failed: {error}"))
            .get(0)
    }

    /// Loads an event with its logs and payment rows.
    pub async fn detail(&self, id: i64) -> EventDetail {
        self.store
            .event_detail(id)
            .await
            .expect("loading the event failed")
            .unwrap_or_else(|| panic!("event {id} not found"))
    }

    /// Waits until event `id` has `status`, failing after [`PROCESSING_TIMEOUT`].
    pub async fn wait_for_status(&self, id: i64, status: EventStatus) -> EventDetail {
        let reached = poll_until(PROCESSING_TIMEOUT, || async {
            self.detail(id).await.event.status == status
        })
        .await;
        let detail = self.detail(id).await;
        assert!(
            reached,
            "event {id} is {} after {PROCESSING_TIMEOUT:?}, expected {status}",
            detail.event.status
        );
        detail
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Cleanup needs a runtime, and the test's runtime may be shutting down or panicking.
        let rabbit = rabbit_config(&self.amqp_url, &self.prefix);
        let admin_url = self.admin_url.clone();
        let database_name = self.database_name.clone();
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building the cleanup runtime failed");
            runtime.block_on(async move {
                let publisher = RabbitPublisher::new(rabbit);
                if let Err(error) = publisher.delete_topology().await {
                    eprintln!("deleting the test topology failed: {error}");
                }
                publisher.close().await;
                let admin = postgres_client(&admin_url).await;
                // FORCE ends connections of pools that are still open.
                let drop = format!("DROP DATABASE IF EXISTS {database_name} WITH (FORCE)");
                if let Err(error) = admin.batch_execute(&drop).await {
                    eprintln!("dropping {database_name} failed: {error}");
                }
            })
        })
        .join();
        if cleaned.is_err() {
            eprintln!("cleaning up the test environment panicked");
        }
    }
}

/// Ingest running on its library entry point.
pub struct TestIngest {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestIngest {
    /// Posts `body` to the Stripe route, signed now, and returns the status and JSON body.
    pub async fn post_stripe(&self, body: &str) -> (u16, Value) {
        let header = sign_header(
            &Secret::new(STRIPE_SECRET),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/api/webhooks/stripe", self.public))
            .header("stripe-signature", header)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        self.send(request).await
    }

    /// Posts a signed event and returns its row id, failing unless ingest accepted it.
    pub async fn accept(&self, body: &str) -> i64 {
        let (status, json) = self.post_stripe(body).await;
        assert_eq!(status, 200, "ingest answered {status}: {json}");
        assert_eq!(json["status"], "accepted", "{json}");
        json["id"].as_i64().expect("response without id")
    }

    /// Sends a GET to the admin listener.
    pub async fn get_admin(&self, path: &str) -> (u16, Value) {
        let request = http::Request::builder()
            .uri(format!("http://{}{path}", self.admin))
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(request).await
    }

    /// Returns the Prometheus text of the admin listener.
    pub async fn get_metrics(&self) -> String {
        let request = http::Request::builder()
            .uri(format!("http://{}/metrics", self.admin))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (_, body) = self.send_raw(request).await;
        String::from_utf8_lossy(&body).into_owned()
    }

    async fn send_raw(&self, request: http::Request<Full<Bytes>>) -> (u16, Bytes) {
        let response = self.client.request(request).await.expect("request failed");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> (u16, Value) {
        let (status, body) = self.send_raw(request).await;
        let json = serde_json::from_slice(&body).unwrap_or_else(|error| {
            panic!(
                "response is not JSON ({error}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, json)
    }

    /// Stops ingest the way SIGTERM does and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("ingest task").expect("ingest result");
        }
    }
}

impl Drop for TestIngest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A consumer running on its library entry point.
pub struct TestConsumer {
    /// Admin listener of a consumer started with the configured providers.
    pub admin: Option<SocketAddr>,
    pub shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestConsumer {
    /// Stops the consumer the way SIGTERM does and waits for it to finish its deliveries.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("consumer task").expect("consumer result");
        }
    }
}

impl Drop for TestConsumer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Checks `condition` every [`POLL_INTERVAL`] until it returns true or `timeout` passes,
/// and returns whether it did.
pub async fn poll_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Builds a `payment_intent.succeeded` event with a random id and `amount` minor units of USD.
pub fn payment_succeeded(amount: i64) -> (String, String) {
    let event_id = format!("evt_flow_{:016x}", fastrand::u64(..));
    let body = serde_json::json!({
        "id": event_id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": 1_764_100_000,
        "type": "payment_intent.succeeded",
        "livemode": false,
        "data": {
            "object": {
                "id": format!("pi_{event_id}"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": "usd",
                "customer": "cus_flowBuyer",
                "latest_charge": format!("ch_{event_id}"),
                "metadata": {"order_id": "ORD-FLOW-7"},
                "status": "succeeded"
            }
        }
    })
    .to_string();
    (event_id, body)
}

fn configured(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn rabbit_config(url: &str, prefix: &str) -> RabbitConfig {
    let mut config = RabbitConfig::new(Secret::new(url));
    config.prefix = prefix.to_owned();
    config.connection_name = format!("{prefix}-test");
    config.delay_tiers = DELAY_TIERS
        .parse::<payhook::config::durations::DelayTiers>()
        .expect("test tiers")
        .delays()
        .to_vec();
    config
}

pub async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("connecting to PostgreSQL failed: {error}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
