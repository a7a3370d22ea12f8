//! The consume loop: manual acks, bounded prefetch, and a new consumer after every loss.
//!
//! The handler is an async callback that receives one decoded [`Delivery`] and returns an
//! [`Outcome`]. The consumer settles the message according to the outcome, so handlers never
//! touch AMQP acks. Bodies that are not valid envelopes never reach the handler: they are
//! published unchanged to the dead-letter queue with the decode error as reason, and then
//! acked. A plain `basic.reject` without requeue would drop them instead, because the work
//! queue has no dead-letter exchange, and it would lose the reason.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::config::RabbitConfig;
use super::connection::{Backoff, RabbitError, amqp_error, connect, open_consumer_channel};
use super::message::{ATTEMPT_HEADER, decode_envelope, header_i32};
use super::publisher::RabbitPublisher;
use super::topology::{TopologyNames, declare_topology};
use crate::queue::Envelope;

/// Delay before a message is requeued after its retry or dead-letter publish failed, so that
/// a broker that rejects publishes does not cause a redelivery loop.
const REQUEUE_AFTER_PUBLISH_FAILURE: Duration = Duration::from_secs(1);

/// One message from the work queue, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub envelope: Envelope,
    /// Value of the `x-payhook-attempt` header, when present and an integer.
    pub attempt_header: Option<i32>,
    /// Whether the broker delivered this message before, for example to a consumer whose
    /// channel closed before it acked.
    pub redelivered: bool,
    /// AMQP timestamp property of the publish, in seconds since the Unix epoch.
    pub timestamp: Option<u64>,
}

/// Settlement of a delivery, returned by the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processing is finished (or the event was a duplicate): ack.
    Ack,
    /// Publish `envelope` to delay tier `tier` (see [`RabbitPublisher::publish_retry`]), then
    /// ack. The handler sets the envelope's new attempt count.
    Retry { envelope: Envelope, tier: usize },
    /// Publish the envelope to the dead-letter queue with `reason`, then ack.
    Dead { reason: String },
    /// Return the message to the work queue at once with `basic.reject(requeue=true)`. Meant
    /// for handing work to another consumer, never for failures, because a failing message
    /// would be redelivered in a tight loop.
    Requeue,
}

/// Consumes the work queue until shutdown, re-creating the connection, channel and consumer
/// with capped backoff whenever the broker closes them.
pub struct RabbitConsumer {
    config: RabbitConfig,
    names: TopologyNames,
    publisher: RabbitPublisher,
    consuming: Arc<AtomicBool>,
}

/// An open connection with a consumer on the work queue.
struct Session {
    connection: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
}

enum SessionEnd {
    Shutdown,
    Lost(String),
}

impl RabbitConsumer {
    /// Creates a consumer. `publisher` sends retries and dead letters, and must use the same
    /// prefix.
    pub fn new(config: RabbitConfig, publisher: RabbitPublisher) -> Self {
        let names = TopologyNames::new(&config);
        RabbitConsumer {
            config,
            names,
            publisher,
            consuming: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Returns whether a consumer is currently registered on the work queue, for liveness.
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }

    /// Returns a shared flag that is true while a consumer is attached to the work queue,
    /// for health checks that outlive a borrow of the consumer.
    pub fn consuming_flag(&self) -> Arc<AtomicBool> {
        self.consuming.clone()
    }

    /// Runs `handler` for every delivery until `shutdown` is cancelled. Up to `prefetch`
    /// handlers run at once, each in its own task, so a panic fails only its message, which
    /// goes to the dead-letter queue.
    ///
    /// NOTE: handlers are not time-boxed here. A handler that runs longer than the broker's
    /// `consumer_timeout` (30 min by default) makes the broker close the channel. The
    /// consumer then starts again and the message is redelivered. On shutdown the consumer is cancelled, running handlers
    /// finish and settle their messages, and the connection is closed.
    pub async fn run<H, F>(&self, handler: H, shutdown: CancellationToken)
    where
        H: Fn(Delivery) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let host = self.config.host();
        let mut tasks = JoinSet::new();
        let mut backoff = Backoff::new(
            self.config.reconnect_initial_delay,
            self.config.reconnect_max_delay,
        );
        let mut down = false;

        while !shutdown.is_cancelled() {
            let session = match self.open_session().await {
                Ok(session) => session,
                Err(error) => {
                    let delay = backoff.next_delay();
                    if down {
                        debug!(%host, %error, ?delay, "RabbitMQ consumer still disconnected");
                    } else {
                        warn!(%host, %error, ?delay, "RabbitMQ consumer cannot connect, retrying with backoff");
                        down = true;
                    }
                    sleep_unless_cancelled(delay, &shutdown).await;
                    continue;
                }
            };
            if down {
                info!(%host, queue = %self.names.work_queue, "RabbitMQ consumer recovered");
            } else {
                info!(%host, queue = %self.names.work_queue, "RabbitMQ consumer started");
            }
            down = false;
            backoff.reset();
            self.consuming.store(true, Ordering::Relaxed);

            let Session {
                connection,
                channel,
                mut consumer,
            } = session;
            let end = self
                .consume(&mut consumer, &handler, &mut tasks, &shutdown)
                .await;
            self.consuming.store(false, Ordering::Relaxed);

            match end {
                SessionEnd::Shutdown => {
                    let options = BasicCancelOptions {
                        // Wait for cancel-ok so that no delivery arrives after it.
                        nowait: false,
                    };
                    if let Err(error) = channel.basic_cancel(consumer.tag(), options).await {
                        debug!(%host, %error, "cancelling the RabbitMQ consumer failed");
                    }
                    while tasks.join_next().await.is_some() {}
                    let _ = channel.close(200, "consumer shut down".into()).await;
                    let _ = connection.close(200, "consumer shut down".into()).await;
                    info!(%host, "RabbitMQ consumer stopped");
                }
                SessionEnd::Lost(reason) => {
                    warn!(%host, %reason, "RabbitMQ consumer lost its channel, re-creating it");
                    down = true;
                    let _ = connection.close(200, "consumer channel lost".into()).await;
                    sleep_unless_cancelled(backoff.next_delay(), &shutdown).await;
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn open_session(&self) -> Result<Session, RabbitError> {
        let config = &self.config;
        let connection = connect(config, "consumer").await?;
        let channel = open_consumer_channel(&connection, config).await?;
        declare_topology(&channel, config)
            .await
            .map_err(|source| amqp_error(config, source))?;
        let options = BasicConsumeOptions {
            // RabbitMQ ignores no-local for queues.
            no_local: false,
            // Manual acks, so that a crash before the ack redelivers the message.
            no_ack: false,
            // Several workers share the work queue.
            exclusive: false,
            // Wait for consume-ok so that a missing queue is reported here.
            nowait: false,
        };
        let tag = format!("{}-{:08x}", config.connection_name, fastrand::u32(..));
        let consumer = channel
            .basic_consume(
                self.names.work_queue.as_str().into(),
                tag.into(),
                options,
                FieldTable::default(),
            )
            .await
            .map_err(|source| amqp_error(config, source))?;
        Ok(Session {
            connection,
            channel,
            consumer,
        })
    }

    async fn consume<H, F>(
        &self,
        consumer: &mut lapin::Consumer,
        handler: &Arc<H>,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> SessionEnd
    where
        H: Fn(Delivery) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return SessionEnd::Shutdown,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let handler = Arc::clone(handler);
                        let publisher = self.publisher.clone();
                        tasks.spawn(settle_delivery(delivery, handler, publisher));
                    }
                    Some(Err(error)) => return SessionEnd::Lost(error.to_string()),
                    None => return SessionEnd::Lost("the broker cancelled the consumer".to_owned()),
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
}

/// Decodes one delivery, runs the handler in its own task and settles the message.
async fn settle_delivery<H, F>(
    delivery: lapin::message::Delivery,
    handler: Arc<H>,
    publisher: RabbitPublisher,
) where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    let acker = delivery.acker.clone();
    let delivery_tag = delivery.delivery_tag;

    let envelope = match decode_envelope(&delivery.data) {
        Ok(envelope) => envelope,
        Err(decode_error) => {
            warn!(delivery_tag, error = %decode_error, "undecodable message, moving it to the dead-letter queue");
            let reason = format!("undecodable message: {decode_error}");
            let published = publisher.publish_dead_raw(&delivery.data, &reason).await;
            finish(&acker, delivery_tag, published).await;
            return;
        }
    };
    let Envelope::V1 { id, .. } = &envelope;
    let id = *id;

    let decoded = Delivery {
        envelope: envelope.clone(),
        attempt_header: header_i32(&delivery.properties, ATTEMPT_HEADER),
        redelivered: delivery.redelivered,
        timestamp: *delivery.properties.timestamp(),
    };
    let outcome = match tokio::spawn(handler(decoded)).await {
        Ok(outcome) => outcome,
        Err(join_error) if join_error.is_panic() => {
            error!(
                event_id = id,
                "message handler panicked, moving the message to the dead-letter queue"
            );
            Outcome::Dead {
                reason: "message handler panicked".to_owned(),
            }
        }
        Err(_) => Outcome::Requeue,
    };

    match outcome {
        Outcome::Ack => ack(&acker, delivery_tag).await,
        Outcome::Retry {
            envelope: retry,
            tier,
        } => {
            let published = publisher.publish_retry(&retry, tier).await;
            finish(&acker, delivery_tag, published).await;
        }
        Outcome::Dead { reason } => {
            let published = publisher.publish_dead(&envelope, &reason).await;
            finish(&acker, delivery_tag, published).await;
        }
        Outcome::Requeue => reject(&acker, delivery_tag, true).await,
    }
}

/// Acks after a successful republish, or requeues after a delay when it failed.
async fn finish(
    acker: &lapin::Acker,
    delivery_tag: u64,
    published: Result<(), crate::queue::PublishError>,
) {
    match published {
        Ok(()) => ack(acker, delivery_tag).await,
        Err(error) => {
            error!(delivery_tag, %error, "republishing a message failed, requeueing it");
            tokio::time::sleep(REQUEUE_AFTER_PUBLISH_FAILURE).await;
            reject(acker, delivery_tag, true).await;
        }
    }
}

async fn ack(acker: &lapin::Acker, delivery_tag: u64) {
    let options = BasicAckOptions {
        // Settle only this delivery, because others on the channel may still be running.
        multiple: false,
    };
    if let Err(error) = acker.ack(options).await {
        // The channel is gone, and the broker redelivers the message to another consumer.
        debug!(delivery_tag, %error, "ack failed");
    }
}

async fn reject(acker: &lapin::Acker, delivery_tag: u64, requeue: bool) {
    let options = BasicRejectOptions { requeue };
    if let Err(error) = acker.reject(options).await {
        debug!(delivery_tag, %error, "reject failed");
    }
}

async fn sleep_unless_cancelled(delay: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(delay) => {}
    }
}
