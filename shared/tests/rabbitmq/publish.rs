//! Publisher confirms, concurrency and unroutable messages.

use futures_util::future::join_all;
use payhook::queue::rabbitmq::{ATTEMPT_HEADER, decode_envelope, topology::WORK_ROUTING_KEY};
use payhook::queue::{PublishError, Publisher};

use crate::support::{
    DELIVERY_TIMEOUT, TestTopology, broker_url, envelope, get_message, no_arguments,
};

const CONCURRENT_PUBLISHES: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_all_confirmed() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;

    let publishes = (0..CONCURRENT_PUBLISHES).map(|n| {
        let publisher = topology.publisher.clone();
        async move {
            let envelope = envelope(n as i64, "stripe", "payment_intent.succeeded");
            publisher.publish(&envelope).await
        }
    });
    let results = join_all(publishes).await;

    let failures: Vec<_> = results.iter().filter(|result| result.is_err()).collect();
    assert!(failures.is_empty(), "failed publishes: {failures:?}");
    topology
        .wait_for_depth(&topology.names.work_queue, CONCURRENT_PUBLISHES as u32)
        .await;
}

#[tokio::test]
async fn published_message_has_headers() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_connection, channel) = topology.raw_channel().await;
    let mut sent = envelope(11, "paypal", "PAYMENT.CAPTURE.COMPLETED");
    let payhook::queue::Envelope::V1 {
        attempt,
        traceparent,
        ..
    } = &mut sent;
    *attempt = 2;
    *traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());

    topology
        .publisher
        .publish(&sent)
        .await
        .expect("publish failed");

    let delivery = get_message(&channel, &topology.names.work_queue, DELIVERY_TIMEOUT)
        .await
        .expect("no message on the work queue");
    assert_eq!(decode_envelope(&delivery.data).unwrap(), sent);
    let properties = &delivery.properties;
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(
        properties
            .content_type()
            .as_ref()
            .map(|value| value.as_str()),
        Some("application/json")
    );
    assert!(properties.timestamp().is_some(), "timestamp missing");
    let headers = properties.headers().as_ref().expect("headers missing");
    assert_eq!(
        headers.inner().get(ATTEMPT_HEADER),
        Some(&lapin::types::AMQPValue::LongInt(2))
    );
    assert!(
        headers.inner().contains_key("traceparent"),
        "traceparent missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_routing_key_returns_message() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_connection, channel) = topology.raw_channel().await;
    channel
        .queue_unbind(
            topology.names.work_queue.as_str().into(),
            topology.names.exchange.as_str().into(),
            WORK_ROUTING_KEY.into(),
            no_arguments(),
        )
        .await
        .expect("unbinding the work queue failed");

    let single = topology
        .publisher
        .publish(&envelope(1, "stripe", "charge.refunded"))
        .await;
    assert!(
        matches!(single, Err(PublishError::Returned(_))),
        "expected Returned, got {single:?}"
    );

    // Unroutable and routable publishes in flight together: each must get its own outcome.
    let mixed = (0..40).map(|n| {
        let publisher = topology.publisher.clone();
        async move {
            let envelope = envelope(100 + n, "stripe", "charge.refunded");
            if n % 2 == 0 {
                (n, publisher.publish(&envelope).await)
            } else {
                (
                    n,
                    publisher.publish_dead(&envelope, "routable control").await,
                )
            }
        }
    });
    for (n, result) in join_all(mixed).await {
        if n % 2 == 0 {
            assert!(
                matches!(result, Err(PublishError::Returned(_))),
                "work publish {n}: expected Returned, got {result:?}"
            );
        } else {
            assert!(
                result.is_ok(),
                "dead publish {n}: expected Ok, got {result:?}"
            );
        }
    }

    channel
        .queue_bind(
            topology.names.work_queue.as_str().into(),
            topology.names.exchange.as_str().into(),
            WORK_ROUTING_KEY.into(),
            Default::default(),
            no_arguments(),
        )
        .await
        .expect("binding the work queue again failed");
    topology
        .publisher
        .publish(&envelope(2, "stripe", "charge.refunded"))
        .await
        .expect("publish after re-binding failed");
    topology.wait_for_depth(&topology.names.work_queue, 1).await;
    topology
        .wait_for_depth(&topology.names.dead_queue, 20)
        .await;
}

#[tokio::test]
async fn unreachable_broker_fails_fast() {
    let Some(_url) = broker_url() else { return };
    // Nothing listens on port 1 of the loopback address, so connecting is refused at once.
    let mut config = payhook::queue::rabbitmq::RabbitConfig::new(payhook::secret::Secret::new(
        "amqp://guest:guest@127.0.0.1:1/%2f",
    ));
    config.reconnect_initial_delay = std::time::Duration::from_secs(60);
    let publisher = payhook::queue::rabbitmq::RabbitPublisher::new(config);
    let sent = envelope(5, "stripe", "charge.refunded");

    let first = publisher.publish(&sent).await;
    let started = std::time::Instant::now();
    let second = publisher.publish(&sent).await;

    assert!(
        matches!(first, Err(PublishError::Unavailable(_))),
        "got {first:?}"
    );
    assert!(
        matches!(second, Err(PublishError::Unavailable(_))),
        "got {second:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "a publish during the backoff delay tried to connect again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_reconnects_after_connection_close() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let connection_name = format!("{}-publisher", topology.config.connection_name);
    topology
        .publisher
        .publish(&envelope(1, "stripe", "charge.refunded"))
        .await
        .expect("first publish failed");

    let closed = crate::support::close_connections_named(&connection_name);
    assert_eq!(
        closed, 1,
        "expected one publisher connection named {connection_name}"
    );

    // Publishes may fail until the client notices the close, but must succeed again soon.
    let probe = envelope(2, "stripe", "charge.refunded");
    let deadline = std::time::Instant::now() + DELIVERY_TIMEOUT;
    let mut last_error = None;
    let mut recovered = false;
    while std::time::Instant::now() < deadline {
        match topology.publisher.publish_dead(&probe, "probe").await {
            Ok(()) => {
                recovered = true;
                break;
            }
            Err(error) => last_error = Some(error.to_string()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(recovered, "publishing still fails: {last_error:?}");
    topology.wait_for_depth(&topology.names.dead_queue, 1).await;
}
