//! Broker settings shared by the publisher, the consumer and the replay command.

use std::time::Duration;

use crate::secret::Secret;

/// Kind of queue declared for the work, delay-tier and dead-letter queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// Replicated Raft queue. Must be durable, and cannot be exclusive or auto-deleted.
    #[default]
    Quorum,
    /// Classic durable queue, for single-node development brokers.
    Classic,
}

impl QueueType {
    /// Returns the `x-queue-type` argument value RabbitMQ expects.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// Settings for one RabbitMQ topology and the clients that use it.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// AMQP URI, for example `amqp://user:password@host:5672/%2f`. It may contain a password,
    /// so logs show only [`RabbitConfig::host`].
    pub url: Secret,
    /// Prefix of the exchange and queue names.
    pub prefix: String,
    /// Delays of the retry tiers, shortest first. Each tier gets its own queue.
    pub delay_tiers: Vec<Duration>,
    /// Maximum number of unacknowledged deliveries per consumer (`basic.qos`). Must not be 0,
    /// because 0 means unlimited.
    pub prefetch: u16,
    /// How long a publish waits for the broker's publisher confirm.
    pub confirm_timeout: Duration,
    /// How long opening a connection may take before it counts as failed.
    pub connect_timeout: Duration,
    /// First delay between reconnection attempts. The delay doubles after each failure.
    pub reconnect_initial_delay: Duration,
    /// Upper bound of the delay between reconnection attempts.
    pub reconnect_max_delay: Duration,
    /// Queue type of every queue in the topology.
    pub queue_type: QueueType,
    /// Client-provided connection name, shown in the management UI and `rabbitmqctl`.
    pub connection_name: String,
}

impl RabbitConfig {
    /// Builds a configuration with the defaults: prefix `payhook`, tiers 5 s, 30 s, 2 min,
    /// 10 min and 1 h, prefetch 64, confirm timeout 5 s and quorum queues.
    pub fn new(url: Secret) -> Self {
        RabbitConfig {
            url,
            prefix: "payhook".to_owned(),
            delay_tiers: vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
                Duration::from_secs(3600),
            ],
            prefetch: 64,
            confirm_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            reconnect_initial_delay: Duration::from_millis(250),
            reconnect_max_delay: Duration::from_secs(30),
            queue_type: QueueType::Quorum,
            connection_name: "payhook".to_owned(),
        }
    }

    /// Returns `host:port` of the broker URL, without user, password or virtual host, for logs.
    pub fn host(&self) -> String {
        match url::Url::parse(self.url.expose()) {
            Ok(parsed) => {
                let host = parsed.host_str().unwrap_or("<no host>");
                match parsed.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                }
            }
            Err(_) => "<invalid AMQP URL>".to_owned(),
        }
    }
}

/// Formats a tier delay for queue names and routing keys: `500ms`, `5s`, `2m`, `1h`.
pub(crate) fn tier_label(delay: Duration) -> String {
    let millis = delay.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let seconds = delay.as_secs();
    if seconds != 0 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds != 0 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_labels_use_largest_unit() {
        let cases = [
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(600), "10m"),
            (Duration::from_secs(3600), "1h"),
        ];
        for (delay, expected) in cases {
            assert_eq!(tier_label(delay), expected, "label of {delay:?}");
        }
    }

    #[test]
    fn host_omits_credentials() {
        let config = RabbitConfig::new(Secret::new("amqp://guest:hunter2@127.0.0.1:5672/%2f"));

        let host = config.host();

        assert_eq!(host, "127.0.0.1:5672");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
