//! Exchange, queue and binding names, and their idempotent declaration.
//!
//! Layout for prefix `p`:
//! - `p.events`: durable topic exchange that every publish goes to.
//! - `p.work` bound with `work`: the queue workers consume.
//! - `p.retry.<delay>` bound with `retry.<delay>`, one per delay tier, which no consumer reads.
//!   A queue-level `x-message-ttl` expires each message after the tier's delay, and the
//!   queue dead-letters it to `p.events` with routing key `work`. One TTL per queue keeps
//!   expiry in order, because RabbitMQ expires messages only at the head of a queue.
//! - `p.dead` bound with `dead`: the parking lot that operators replay.

use std::time::Duration;

use lapin::Channel;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::config::{QueueType, RabbitConfig, tier_label};

/// Routing key of the work queue binding.
pub const WORK_ROUTING_KEY: &str = "work";
/// Routing key of the dead-letter queue binding.
pub const DEAD_ROUTING_KEY: &str = "dead";

/// One delay tier: a queue whose messages return to the work queue after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryTier {
    pub delay: Duration,
    pub queue: String,
    pub routing_key: String,
}

/// Names of every exchange, queue and routing key derived from [`RabbitConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyNames {
    pub exchange: String,
    pub work_queue: String,
    pub dead_queue: String,
    /// Delay tiers in the order of [`RabbitConfig::delay_tiers`].
    pub retry_tiers: Vec<RetryTier>,
}

impl TopologyNames {
    /// Derives the names from the configured prefix and delay tiers.
    pub fn new(config: &RabbitConfig) -> Self {
        let prefix = &config.prefix;
        let retry_tiers = config
            .delay_tiers
            .iter()
            .map(|&delay| {
                let label = tier_label(delay);
                RetryTier {
                    delay,
                    queue: format!("{prefix}.retry.{label}"),
                    routing_key: format!("retry.{label}"),
                }
            })
            .collect();
        TopologyNames {
            exchange: format!("{prefix}.events"),
            work_queue: format!("{prefix}.work"),
            dead_queue: format!("{prefix}.dead"),
            retry_tiers,
        }
    }

    /// Returns every queue name: work, retry tiers, then dead.
    pub fn all_queues(&self) -> Vec<&str> {
        let mut queues = vec![self.work_queue.as_str()];
        queues.extend(self.retry_tiers.iter().map(|tier| tier.queue.as_str()));
        queues.push(self.dead_queue.as_str());
        queues
    }
}

/// Declares the exchange, the queues and their bindings. Declaring what already exists with
/// the same arguments changes nothing. A queue that exists with other arguments (another
/// TTL or queue type) makes the broker close the channel with `PRECONDITION_FAILED`, and the
/// error is returned.
pub async fn declare_topology(channel: &Channel, config: &RabbitConfig) -> lapin::Result<()> {
    let names = TopologyNames::new(config);

    let exchange_options = ExchangeDeclareOptions {
        // Create the exchange when missing, instead of only checking that it exists.
        passive: false,
        // Survive broker restarts, like the persistent messages routed through it.
        durable: true,
        // Keep the exchange while no queue is bound, for example during a binding change.
        auto_delete: false,
        // Publishers send to this exchange directly.
        internal: false,
        // Wait for declare-ok so that a conflict is reported here.
        nowait: false,
    };
    channel
        .exchange_declare(
            names.exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            exchange_options,
            FieldTable::default(),
        )
        .await?;

    let work_arguments = queue_arguments(config.queue_type);
    declare_queue(channel, &names.work_queue, work_arguments).await?;
    bind_queue(
        channel,
        &names.work_queue,
        &names.exchange,
        WORK_ROUTING_KEY,
    )
    .await?;

    for tier in &names.retry_tiers {
        let arguments = retry_queue_arguments(config.queue_type, tier.delay, &names.exchange);
        declare_queue(channel, &tier.queue, arguments).await?;
        bind_queue(channel, &tier.queue, &names.exchange, &tier.routing_key).await?;
    }

    declare_queue(
        channel,
        &names.dead_queue,
        queue_arguments(config.queue_type),
    )
    .await?;
    bind_queue(
        channel,
        &names.dead_queue,
        &names.exchange,
        DEAD_ROUTING_KEY,
    )
    .await?;
    Ok(())
}

/// Deletes every queue and the exchange, with the messages they contain. Meant for tests
/// and for tearing down a prefix on purpose.
pub async fn delete_topology(channel: &Channel, config: &RabbitConfig) -> lapin::Result<()> {
    let names = TopologyNames::new(config);
    for queue in names.all_queues() {
        let options = QueueDeleteOptions {
            // Delete even while a consumer is attached.
            if_unused: false,
            // Delete even when messages are left.
            if_empty: false,
            // Wait for delete-ok so that the caller knows the queue is gone.
            nowait: false,
        };
        channel.queue_delete(queue.into(), options).await?;
    }
    let options = ExchangeDeleteOptions {
        // The queues bound to it are already deleted.
        if_unused: false,
        // Wait for delete-ok so that the caller knows the exchange is gone.
        nowait: false,
    };
    channel
        .exchange_delete(names.exchange.as_str().into(), options)
        .await
}

async fn declare_queue(channel: &Channel, name: &str, arguments: FieldTable) -> lapin::Result<()> {
    let options = QueueDeclareOptions {
        // Create the queue when missing.
        passive: false,
        // Quorum queues must be durable, and messages must survive a broker restart.
        durable: true,
        // Several consumers on several connections share the queue.
        exclusive: false,
        // Keep messages while no consumer is attached (quorum queues reject auto-delete).
        auto_delete: false,
        // Wait for declare-ok so that an argument conflict is reported here.
        nowait: false,
    };
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(|_| ())
}

async fn bind_queue(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> lapin::Result<()> {
    let options = QueueBindOptions {
        // Wait for bind-ok so that a missing queue or exchange is reported here.
        nowait: false,
    };
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            options,
            FieldTable::default(),
        )
        .await
}

fn queue_arguments(queue_type: QueueType) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from(queue_type.as_str())),
    );
    arguments
}

fn retry_queue_arguments(queue_type: QueueType, delay: Duration, exchange: &str) -> FieldTable {
    let mut arguments = queue_arguments(queue_type);
    let ttl_millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_millis));
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from(exchange)),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from(WORK_ROUTING_KEY)),
    );
    if queue_type == QueueType::Quorum {
        // Quorum queues dead-letter at most once by default, so an expired message would be
        // lost if the work queue were unavailable at that moment. At-least-once dead
        // lettering (RabbitMQ 3.10 and later) requires the reject-publish overflow mode.
        arguments.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString(LongString::from("at-least-once")),
        );
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
    }
    arguments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn names_follow_prefix_and_tiers() {
        let mut config = RabbitConfig::new(Secret::new("amqp://127.0.0.1"));
        config.prefix = "acme".to_owned();
        config.delay_tiers = vec![Duration::from_secs(5), Duration::from_secs(3600)];

        let names = TopologyNames::new(&config);

        assert_eq!(names.exchange, "acme.events");
        assert_eq!(names.work_queue, "acme.work");
        assert_eq!(names.dead_queue, "acme.dead");
        assert_eq!(names.retry_tiers[0].queue, "acme.retry.5s");
        assert_eq!(names.retry_tiers[0].routing_key, "retry.5s");
        assert_eq!(names.retry_tiers[1].queue, "acme.retry.1h");
        assert_eq!(
            names.all_queues(),
            ["acme.work", "acme.retry.5s", "acme.retry.1h", "acme.dead"]
        );
    }
}
