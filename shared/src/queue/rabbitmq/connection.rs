//! Opening connections and channels, and the capped exponential backoff between attempts.

use std::time::Duration;

use lapin::options::BasicQosOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use thiserror::Error;

use super::config::RabbitConfig;

/// Failures of broker operations other than publishing.
#[derive(Debug, Error)]
pub enum RabbitError {
    #[error("connecting to RabbitMQ at {host} timed out after {timeout:?}")]
    ConnectTimeout { host: String, timeout: Duration },
    #[error("RabbitMQ operation failed on {host}: {source}")]
    Amqp {
        host: String,
        #[source]
        source: lapin::Error,
    },
    #[error("invalid RabbitMQ configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Publish(#[from] crate::queue::PublishError),
}

/// Opens a connection named `<connection_name>-<role>` with lapin's own recovery left off,
/// because the publisher and consumer rebuild connections themselves.
pub(crate) async fn connect(config: &RabbitConfig, role: &str) -> Result<Connection, RabbitError> {
    let host = config.host();
    let name = format!("{}-{role}", config.connection_name);
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let attempt = Connection::connect(config.url.expose(), properties);
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(source)) => Err(RabbitError::Amqp { host, source }),
        Err(_) => Err(RabbitError::ConnectTimeout {
            host,
            timeout: config.connect_timeout,
        }),
    }
}

/// Opens a channel and applies the configured prefetch to each consumer on it.
pub(crate) async fn open_consumer_channel(
    connection: &Connection,
    config: &RabbitConfig,
) -> Result<Channel, RabbitError> {
    if config.prefetch == 0 {
        return Err(RabbitError::Config(
            "prefetch must be at least 1, because 0 means unlimited".to_owned(),
        ));
    }
    let channel = connection
        .create_channel()
        .await
        .map_err(|source| amqp_error(config, source))?;
    let options = BasicQosOptions {
        // Per consumer, not shared by all consumers on the channel.
        global: false,
    };
    channel
        .basic_qos(config.prefetch, options)
        .await
        .map_err(|source| amqp_error(config, source))?;
    Ok(channel)
}

pub(crate) fn amqp_error(config: &RabbitConfig, source: lapin::Error) -> RabbitError {
    RabbitError::Amqp {
        host: config.host(),
        source,
    }
}

/// Capped exponential backoff with up to 20 % random jitter, so that many clients do not
/// reconnect in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// Returns the delay before the next attempt and doubles the following one, up to `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = delay.mul_f64(fastrand::f64() * 0.2);
        (delay + jitter).min(self.max)
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));

        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();

        assert!(delays[0] >= Duration::from_millis(100), "{delays:?}");
        assert!(delays[0] <= Duration::from_millis(120), "{delays:?}");
        assert!(delays[1] >= Duration::from_millis(200), "{delays:?}");
        assert!(delays[1] <= Duration::from_millis(240), "{delays:?}");
        assert!(delays[2] >= Duration::from_millis(400), "{delays:?}");
        assert!(delays[2] <= Duration::from_millis(480), "{delays:?}");
        assert_eq!(delays[3], Duration::from_millis(500));
        assert_eq!(delays[4], Duration::from_millis(500));

        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(120));
    }
}
