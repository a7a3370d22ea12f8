//! Shared helpers: the broker URL check, per-test topology, direct queue access and waits.

use std::future::Future;
use std::io::Write;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use payhook::queue::Envelope;
use payhook::queue::rabbitmq::{QueueDepth, RabbitConfig, RabbitPublisher, TopologyNames};
use payhook::secret::Secret;

/// Maximum wait for a message to arrive or a queue to reach an expected depth.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Interval between two checks of a polled condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

static SKIP_NOTICE: Once = Once::new();

/// Returns the broker URL, or `None` after printing the skip notice. Panics when `CI` is set
/// and the URL is missing.
pub fn broker_url() -> Option<String> {
    match std::env::var("PAYHOOK_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PAYHOOK_TEST_AMQP_URL must be set when CI is set"
            );
            // Written to stdout directly, because the test harness captures `println!`.
            SKIP_NOTICE.call_once(|| {
                let mut stdout = std::io::stdout();
                let _ = writeln!(stdout, "rabbitmq: skipped (PAYHOOK_TEST_AMQP_URL not set)");
            });
            None
        }
    }
}

/// A topology with a random prefix, short delay tiers (1 s and 3 s) and a publisher. Its
/// queues and exchange are deleted when it is dropped.
pub struct TestTopology {
    pub config: RabbitConfig,
    pub names: TopologyNames,
    pub publisher: RabbitPublisher,
}

impl TestTopology {
    pub async fn new(url: String) -> Self {
        let suffix = format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
        let mut config = RabbitConfig::new(Secret::new(url));
        config.prefix = format!("payhook-test-{suffix}");
        config.connection_name = format!("payhook-test-{suffix}");
        config.delay_tiers = vec![Duration::from_secs(1), Duration::from_secs(3)];
        config.reconnect_initial_delay = Duration::from_millis(100);
        config.reconnect_max_delay = Duration::from_secs(2);
        let publisher = RabbitPublisher::connect(config.clone())
            .await
            .expect("connecting the test publisher failed");
        TestTopology {
            names: TopologyNames::new(&config),
            config,
            publisher,
        }
    }

    /// Opens a plain channel of the test's own for direct queue access.
    pub async fn raw_channel(&self) -> (Connection, Channel) {
        let connection = Connection::connect(
            self.config.url.expose(),
            ConnectionProperties::default().with_connection_name("payhook-test-raw".into()),
        )
        .await
        .expect("connecting the raw test channel failed");
        let channel = connection
            .create_channel()
            .await
            .expect("opening a channel failed");
        (connection, channel)
    }

    pub async fn depth(&self, queue: &str) -> u32 {
        let depths = self
            .publisher
            .queue_depths()
            .await
            .expect("reading queue depths failed");
        depths
            .into_iter()
            .find(|depth: &QueueDepth| depth.queue == queue)
            .unwrap_or_else(|| panic!("queue {queue} missing from queue_depths"))
            .messages
    }

    /// Waits until `queue` contains exactly `expected` ready messages.
    pub async fn wait_for_depth(&self, queue: &str, expected: u32) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let depth = self.depth(queue).await;
            if depth == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue {queue} has {depth} messages after {DELIVERY_TIMEOUT:?}, expected {expected}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Publishes raw bytes to the topology's exchange, bypassing the envelope encoding.
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        let (_connection, channel) = self.raw_channel().await;
        channel
            .confirm_select(Default::default())
            .await
            .expect("confirm.select failed");
        let confirmation = channel
            .basic_publish(
                self.names.exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("raw publish failed")
            .await
            .expect("raw publish confirm failed");
        assert!(confirmation.is_ack(), "raw publish was not acked");
    }
}

impl Drop for TestTopology {
    fn drop(&mut self) {
        // Deletion needs a runtime, and the test's runtime may be shutting down or panicking.
        let config = self.config.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building the cleanup runtime failed");
            runtime.block_on(async move {
                let publisher = RabbitPublisher::new(config);
                let result = publisher.delete_topology().await;
                publisher.close().await;
                result
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("deleting the test topology failed: {error}"),
            Err(_) => eprintln!("deleting the test topology panicked"),
        }
    }
}

/// Checks `condition` every [`POLL_INTERVAL`] until it returns true or `timeout`
/// passes, and returns whether it did.
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

/// Takes one message from `queue` with `basic.get` and acks it, waiting up to `timeout`.
pub async fn get_message(
    channel: &Channel,
    queue: &str,
    timeout: Duration,
) -> Option<lapin::message::Delivery> {
    let deadline = Instant::now() + timeout;
    loop {
        let message = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get failed");
        if let Some(message) = message {
            return Some(message.delivery);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

pub fn envelope(id: i64, provider: &str, event_type: &str) -> Envelope {
    Envelope::V1 {
        id,
        provider: provider.to_owned(),
        event_type: event_type.to_owned(),
        attempt: 0,
        traceparent: None,
    }
}

pub fn envelope_id(envelope: &Envelope) -> i64 {
    let Envelope::V1 { id, .. } = envelope;
    *id
}

/// Closes every broker connection whose client-provided name is `connection_name`, with
/// `rabbitmqctl` on the local node, and returns how many it closed.
pub fn close_connections_named(connection_name: &str) -> usize {
    let listed = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("running rabbitmqctl list_connections failed");
    assert!(
        listed.status.success(),
        "rabbitmqctl list_connections failed"
    );
    let needle = format!("\"{connection_name}\"");
    let pids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    for pid in &pids {
        let closed = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by the recovery test"])
            .output()
            .expect("running rabbitmqctl close_connection failed");
        assert!(
            closed.status.success(),
            "rabbitmqctl close_connection {pid} failed"
        );
    }
    pids.len()
}

/// Returns an empty argument table, for lapin calls that take one.
pub fn no_arguments() -> FieldTable {
    FieldTable::default()
}
