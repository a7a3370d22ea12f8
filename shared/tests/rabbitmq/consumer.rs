//! The consume loop: acks, retries, dead letters, redelivery and recovery.

use std::sync::Arc;

use payhook::queue::Publisher;
use payhook::queue::rabbitmq::{
    Delivery, Outcome, REASON_HEADER, RabbitConfig, RabbitConsumer, topology::WORK_ROUTING_KEY,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{
    DELIVERY_TIMEOUT, TestTopology, broker_url, close_connections_named, envelope, envelope_id,
    get_message, poll_until,
};

/// Starts a consumer whose handler forwards every delivery to the returned receiver and then
/// settles it with `decide`.
fn start_consumer<D>(
    topology: &TestTopology,
    config: RabbitConfig,
    decide: D,
) -> (
    Arc<RabbitConsumer>,
    mpsc::UnboundedReceiver<Delivery>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
)
where
    D: Fn(&Delivery) -> Outcome + Send + Sync + 'static,
{
    let consumer = Arc::new(RabbitConsumer::new(config, topology.publisher.clone()));
    let (sender, receiver) = mpsc::unbounded_channel();
    let decide = Arc::new(decide);
    let shutdown = CancellationToken::new();
    let handler = move |delivery: Delivery| {
        let sender = sender.clone();
        let decide = Arc::clone(&decide);
        async move {
            let outcome = decide(&delivery);
            let _ = sender.send(delivery);
            outcome
        }
    };
    let task = {
        let consumer = Arc::clone(&consumer);
        let shutdown = shutdown.clone();
        tokio::spawn(async move { consumer.run(handler, shutdown).await })
    };
    (consumer, receiver, shutdown, task)
}

async fn next_delivery(receiver: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(DELIVERY_TIMEOUT, receiver.recv())
        .await
        .expect("no delivery within the timeout")
        .expect("the consumer stopped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumed_messages_are_acked() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_consumer, mut receiver, shutdown, task) =
        start_consumer(&topology, topology.config.clone(), |_| Outcome::Ack);

    for id in 1..=3 {
        topology
            .publisher
            .publish(&envelope(id, "stripe", "charge.refunded"))
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let delivery = next_delivery(&mut receiver).await;
        assert!(!delivery.redelivered);
        assert_eq!(delivery.attempt_header, Some(0));
        assert!(delivery.timestamp.is_some());
        ids.push(envelope_id(&delivery.envelope));
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);

    shutdown.cancel();
    tokio::time::timeout(DELIVERY_TIMEOUT, task)
        .await
        .unwrap()
        .unwrap();
    // Unacked messages would be back in the queue once the consumer's channel closed.
    assert_eq!(topology.depth(&topology.names.work_queue).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_outcome_returns_after_delay() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_consumer, mut receiver, shutdown, task) =
        start_consumer(&topology, topology.config.clone(), |delivery| {
            let payhook::queue::Envelope::V1 { attempt, .. } = &delivery.envelope;
            if *attempt == 0 {
                Outcome::Retry {
                    envelope: payhook::queue::rabbitmq::with_attempt(&delivery.envelope, 1),
                    tier: 0,
                }
            } else {
                Outcome::Ack
            }
        });

    topology
        .publisher
        .publish(&envelope(61, "stripe", "charge.refunded"))
        .await
        .unwrap();

    let first = next_delivery(&mut receiver).await;
    assert_eq!(first.attempt_header, Some(0));
    let second = next_delivery(&mut receiver).await;
    assert_eq!(envelope_id(&second.envelope), 61);
    assert_eq!(second.attempt_header, Some(1));

    shutdown.cancel();
    tokio::time::timeout(DELIVERY_TIMEOUT, task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_message_goes_dead() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_consumer, mut receiver, shutdown, task) =
        start_consumer(&topology, topology.config.clone(), |_| Outcome::Ack);
    let garbage = b"{\"event_id\": \"evt_undecodable\"";

    topology.publish_raw(WORK_ROUTING_KEY, garbage).await;
    topology
        .publisher
        .publish(&envelope(71, "stripe", "charge.refunded"))
        .await
        .unwrap();

    let delivery = next_delivery(&mut receiver).await;
    assert_eq!(
        envelope_id(&delivery.envelope),
        71,
        "the handler saw an undecodable body"
    );
    let (_connection, channel) = topology.raw_channel().await;
    let dead = get_message(&channel, &topology.names.dead_queue, DELIVERY_TIMEOUT)
        .await
        .expect("the undecodable message did not reach the dead-letter queue");
    assert_eq!(dead.data, garbage);
    let reason = dead
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(REASON_HEADER).cloned());
    let reason = match reason {
        Some(lapin::types::AMQPValue::LongString(reason)) => reason.to_string(),
        other => panic!("reason header missing or not a string: {other:?}"),
    };
    assert!(
        reason.starts_with("undecodable message"),
        "reason: {reason}"
    );

    shutdown.cancel();
    tokio::time::timeout(DELIVERY_TIMEOUT, task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(topology.depth(&topology.names.work_queue).await, 0);
    assert!(
        receiver.try_recv().is_err(),
        "the handler ran more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handler_dead_letters_message() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let consumer = Arc::new(RabbitConsumer::new(
        topology.config.clone(),
        topology.publisher.clone(),
    ));
    let shutdown = CancellationToken::new();
    let task = {
        let consumer = Arc::clone(&consumer);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            consumer
                .run(
                    |delivery: Delivery| async move {
                        assert_ne!(envelope_id(&delivery.envelope), 81, "simulated handler bug");
                        Outcome::Ack
                    },
                    shutdown,
                )
                .await
        })
    };

    topology
        .publisher
        .publish(&envelope(81, "stripe", "charge.refunded"))
        .await
        .unwrap();

    let (_connection, channel) = topology.raw_channel().await;
    let dead = get_message(&channel, &topology.names.dead_queue, DELIVERY_TIMEOUT)
        .await
        .expect("the message of the panicking handler did not reach the dead-letter queue");
    let envelope = payhook::queue::rabbitmq::decode_envelope(&dead.data).unwrap();
    assert_eq!(envelope_id(&envelope), 81);
    assert!(
        !task.is_finished(),
        "the consumer stopped after a handler panic"
    );

    shutdown.cancel();
    tokio::time::timeout(DELIVERY_TIMEOUT, task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_message_redelivered_elsewhere() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let mut first_config = topology.config.clone();
    first_config.connection_name = format!("{}-first", topology.config.connection_name);
    let holding = CancellationToken::new();
    let first = {
        let consumer = RabbitConsumer::new(first_config, topology.publisher.clone());
        let (sender, mut received) = mpsc::unbounded_channel();
        let never = holding.clone();
        let task = tokio::spawn(async move {
            consumer
                .run(
                    move |delivery: Delivery| {
                        let sender = sender.clone();
                        let never = never.clone();
                        async move {
                            let _ = sender.send(delivery);
                            // Hold the delivery unacked until the consumer is dropped.
                            never.cancelled().await;
                            Outcome::Ack
                        }
                    },
                    CancellationToken::new(),
                )
                .await
        });
        topology
            .publisher
            .publish(&envelope(91, "stripe", "charge.refunded"))
            .await
            .unwrap();
        let delivery = tokio::time::timeout(DELIVERY_TIMEOUT, received.recv())
            .await
            .expect("the first consumer got nothing")
            .unwrap();
        assert!(!delivery.redelivered);
        task
    };

    // Dropping the run future drops the consumer's connection with the unacked delivery.
    first.abort();
    let _ = first.await;

    let (_consumer, mut receiver, shutdown, task) =
        start_consumer(&topology, topology.config.clone(), |_| Outcome::Ack);
    let delivery = next_delivery(&mut receiver).await;
    assert_eq!(envelope_id(&delivery.envelope), 91);
    assert!(delivery.redelivered, "the redelivered flag is not set");

    shutdown.cancel();
    tokio::time::timeout(DELIVERY_TIMEOUT, task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_recovers_after_connection_close() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (consumer, mut receiver, shutdown, task) =
        start_consumer(&topology, topology.config.clone(), |_| Outcome::Ack);
    let connection_name = format!("{}-consumer", topology.config.connection_name);

    topology
        .publisher
        .publish(&envelope(101, "stripe", "charge.refunded"))
        .await
        .unwrap();
    assert_eq!(
        envelope_id(&next_delivery(&mut receiver).await.envelope),
        101
    );

    let closed = close_connections_named(&connection_name);
    assert_eq!(
        closed, 1,
        "expected one consumer connection named {connection_name}"
    );
    let noticed = poll_until(DELIVERY_TIMEOUT, || async { !consumer.is_consuming() }).await;
    assert!(noticed, "the consumer did not notice the closed connection");

    topology
        .publisher
        .publish(&envelope(102, "stripe", "charge.refunded"))
        .await
        .unwrap();
    assert_eq!(
        envelope_id(&next_delivery(&mut receiver).await.envelope),
        102
    );
    assert!(consumer.is_consuming());

    shutdown.cancel();
    tokio::time::timeout(DELIVERY_TIMEOUT, task)
        .await
        .unwrap()
        .unwrap();
}
