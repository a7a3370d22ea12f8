//! Publishing envelopes to the work, retry and dead-letter queues, with reconnection.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lapin::Connection;
use tracing::{debug, info, warn};

use super::config::RabbitConfig;
use super::confirms::ConfirmChannel;
use super::connection::{Backoff, RabbitError, amqp_error, connect};
use super::message::{encode_envelope, publish_properties};
use super::topology::{DEAD_ROUTING_KEY, TopologyNames, WORK_ROUTING_KEY, declare_topology};
use crate::queue::{Envelope, PublishError, Publisher};

/// Maximum length of the dead-letter reason header, in bytes. Longer reasons are cut.
const MAX_REASON_BYTES: usize = 1024;

/// Publishes envelopes to RabbitMQ with publisher confirms and `mandatory` routing.
///
/// Cloning is cheap, and all clones share one connection and one channel, on which many
/// publishes can wait for their confirms at the same time. When the connection or channel
/// is closed, the next publish reconnects. While the broker stays unreachable, publishes fail
/// with [`PublishError::Unavailable`] right away until the backoff delay has passed. A caller
/// waits at most for one connection attempt in progress (`connect_timeout`), then for its
/// confirm (`confirm_timeout`) and the confirms of publishes sent before it.
#[derive(Clone)]
pub struct RabbitPublisher {
    inner: Arc<Inner>,
}

struct Inner {
    config: RabbitConfig,
    names: TopologyNames,
    link: tokio::sync::Mutex<Link>,
}

struct Link {
    connection: Option<Connection>,
    channel: Option<Arc<ConfirmChannel>>,
    backoff: Backoff,
    next_attempt: Option<Instant>,
    /// Whether a loss or a failed connection attempt was logged and no recovery since.
    down: bool,
}

impl RabbitPublisher {
    /// Creates a publisher without connecting. The first publish connects and declares the
    /// topology.
    pub fn new(config: RabbitConfig) -> Self {
        let names = TopologyNames::new(&config);
        let backoff = Backoff::new(config.reconnect_initial_delay, config.reconnect_max_delay);
        RabbitPublisher {
            inner: Arc::new(Inner {
                config,
                names,
                link: tokio::sync::Mutex::new(Link {
                    connection: None,
                    channel: None,
                    backoff,
                    next_attempt: None,
                    down: false,
                }),
            }),
        }
    }

    /// Creates a publisher, connects and declares the topology, and returns the error when
    /// the broker is unreachable.
    pub async fn connect(config: RabbitConfig) -> Result<Self, RabbitError> {
        let publisher = RabbitPublisher::new(config);
        publisher.confirm_channel().await?;
        Ok(publisher)
    }

    /// Returns the derived exchange and queue names.
    pub fn names(&self) -> &TopologyNames {
        &self.inner.names
    }

    /// Publishes `envelope` to delay tier `tier_index`, from where it returns to the work
    /// queue after the tier's delay. An index past the last tier uses the last tier. The
    /// caller sets the envelope's attempt count.
    pub async fn publish_retry(
        &self,
        envelope: &Envelope,
        tier_index: usize,
    ) -> Result<(), PublishError> {
        let tiers = &self.inner.names.retry_tiers;
        let Some(tier) = tiers.get(tier_index).or(tiers.last()) else {
            return Err(PublishError::Unavailable(
                "no delay tiers are configured".to_owned(),
            ));
        };
        let body = encode_envelope(envelope);
        self.publish_to(&tier.routing_key, &body, Some(envelope), None)
            .await
    }

    /// Publishes `envelope` to the dead-letter queue with `reason` in the
    /// `x-payhook-reason` header.
    pub async fn publish_dead(
        &self,
        envelope: &Envelope,
        reason: &str,
    ) -> Result<(), PublishError> {
        let body = encode_envelope(envelope);
        let reason = truncate_reason(reason);
        self.publish_to(DEAD_ROUTING_KEY, &body, Some(envelope), Some(reason))
            .await
    }

    /// Publishes a body that is not a valid envelope to the dead-letter queue unchanged,
    /// with `reason` in the `x-payhook-reason` header.
    pub async fn publish_dead_raw(&self, body: &[u8], reason: &str) -> Result<(), PublishError> {
        let reason = truncate_reason(reason);
        self.publish_to(DEAD_ROUTING_KEY, body, None, Some(reason))
            .await
    }

    /// Closes the channel and the connection. A later publish connects again.
    pub async fn close(&self) {
        let mut link = self.inner.link.lock().await;
        // Closing the connection under an open channel makes lapin log an error for the
        // channel, so the channel is closed first.
        if let Some(channel) = link.channel.take() {
            let _ = channel
                .channel()
                .close(200, "publisher closed".into())
                .await;
        }
        if let Some(connection) = link.connection.take() {
            let _ = connection.close(200, "publisher closed".into()).await;
        }
    }

    /// Opens an extra channel on the publisher's connection, reconnecting when needed.
    pub(crate) async fn open_channel(&self) -> Result<lapin::Channel, RabbitError> {
        self.confirm_channel().await?;
        let link = self.inner.link.lock().await;
        let connection = link.connection.as_ref().ok_or_else(|| {
            RabbitError::Publish(PublishError::Unavailable(
                "RabbitMQ publisher connection closed".to_owned(),
            ))
        })?;
        connection
            .create_channel()
            .await
            .map_err(|source| amqp_error(&self.inner.config, source))
    }

    pub(crate) fn config(&self) -> &RabbitConfig {
        &self.inner.config
    }

    pub(crate) async fn publish_to(
        &self,
        routing_key: &str,
        body: &[u8],
        envelope: Option<&Envelope>,
        reason: Option<&str>,
    ) -> Result<(), PublishError> {
        let channel = self.confirm_channel().await.map_err(|error| match error {
            RabbitError::Publish(error) => error,
            other => PublishError::Unavailable(other.to_string()),
        })?;
        let content_type = if envelope.is_some() {
            "application/json"
        } else {
            "application/octet-stream"
        };
        channel
            .publish(
                &self.inner.names.exchange,
                routing_key,
                body,
                |message_id| {
                    publish_properties(envelope, message_id, reason)
                        .with_content_type(content_type.into())
                },
            )
            .await
    }

    /// Returns the open confirm channel, reconnecting when it is closed and the backoff
    /// delay has passed.
    pub(crate) async fn confirm_channel(&self) -> Result<Arc<ConfirmChannel>, RabbitError> {
        let config = &self.inner.config;
        let mut link = self.inner.link.lock().await;
        if let Some(channel) = &link.channel {
            let connection_open = link
                .connection
                .as_ref()
                .is_some_and(|connection| connection.status().connected());
            if channel.is_open() && connection_open {
                return Ok(Arc::clone(channel));
            }
            warn!(host = %config.host(), "RabbitMQ publisher channel closed, reconnecting");
            link.channel = None;
            link.connection = None;
            link.down = true;
        }

        if let Some(next_attempt) = link.next_attempt {
            let now = Instant::now();
            if now < next_attempt {
                return Err(RabbitError::Publish(PublishError::Unavailable(format!(
                    "not connected to RabbitMQ at {}, next connection attempt in {:?}",
                    config.host(),
                    next_attempt - now
                ))));
            }
        }

        match self.open_link().await {
            Ok((connection, channel)) => {
                if link.down {
                    info!(host = %config.host(), "RabbitMQ publisher reconnected");
                } else {
                    debug!(host = %config.host(), "RabbitMQ publisher connected");
                }
                link.down = false;
                link.backoff.reset();
                link.next_attempt = None;
                link.connection = Some(connection);
                link.channel = Some(Arc::clone(&channel));
                Ok(channel)
            }
            Err(error) => {
                let delay = link.backoff.next_delay();
                link.next_attempt = Some(Instant::now() + delay);
                if link.down {
                    debug!(host = %config.host(), %error, ?delay, "RabbitMQ publisher still disconnected");
                } else {
                    warn!(host = %config.host(), %error, ?delay, "RabbitMQ publisher cannot connect, retrying with backoff");
                    link.down = true;
                }
                Err(error)
            }
        }
    }

    async fn open_link(&self) -> Result<(Connection, Arc<ConfirmChannel>), RabbitError> {
        let config = &self.inner.config;
        let connection = connect(config, "publisher").await?;
        let channel = ConfirmChannel::open(&connection, config.confirm_timeout)
            .await
            .map_err(|source| amqp_error(config, source))?;
        declare_topology(channel.channel(), config)
            .await
            .map_err(|source| amqp_error(config, source))?;
        Ok((connection, Arc::new(channel)))
    }
}

#[async_trait]
impl Publisher for RabbitPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let body = encode_envelope(envelope);
        self.publish_to(WORK_ROUTING_KEY, &body, Some(envelope), None)
            .await
    }
}

impl std::fmt::Debug for RabbitPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitPublisher")
            .field("host", &self.inner.config.host())
            .field("exchange", &self.inner.names.exchange)
            .finish_non_exhaustive()
    }
}

fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reason_is_cut_on_char_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);

        let cut = truncate_reason(&reason);

        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_reason("short"), "short");
    }
}
