//! Delay tiers return messages to the work queue after their own delay.

use std::time::{Duration, Instant};

use payhook::queue::rabbitmq::{ATTEMPT_HEADER, decode_envelope};

use crate::support::{
    DELIVERY_TIMEOUT, TestTopology, broker_url, envelope, envelope_id, get_message,
};

/// Margin for the broker's TTL timer and the polling interval.
const TTL_TOLERANCE: Duration = Duration::from_millis(200);

#[tokio::test]
async fn short_tier_overtakes_long_tier() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_connection, channel) = topology.raw_channel().await;
    let mut slow = envelope(31, "stripe", "charge.refunded");
    let mut fast = envelope(32, "stripe", "charge.refunded");
    for (envelope, attempt) in [(&mut slow, 2), (&mut fast, 1)] {
        let payhook::queue::Envelope::V1 { attempt: field, .. } = envelope;
        *field = attempt;
    }

    let start = Instant::now();
    topology
        .publisher
        .publish_retry(&slow, 1)
        .await
        .expect("publish to the 3 s tier failed");
    topology
        .publisher
        .publish_retry(&fast, 0)
        .await
        .expect("publish to the 1 s tier failed");

    let first = get_message(&channel, &topology.names.work_queue, DELIVERY_TIMEOUT)
        .await
        .expect("nothing arrived from the 1 s tier");
    let first_elapsed = start.elapsed();
    let second = get_message(&channel, &topology.names.work_queue, DELIVERY_TIMEOUT)
        .await
        .expect("nothing arrived from the 3 s tier");
    let second_elapsed = start.elapsed();

    let first_envelope = decode_envelope(&first.data).unwrap();
    let second_envelope = decode_envelope(&second.data).unwrap();
    assert_eq!(
        envelope_id(&first_envelope),
        32,
        "the 1 s tier message must arrive first"
    );
    assert_eq!(envelope_id(&second_envelope), 31);
    assert!(
        first_elapsed + TTL_TOLERANCE >= Duration::from_secs(1),
        "1 s tier message arrived after {first_elapsed:?}"
    );
    assert!(
        second_elapsed + TTL_TOLERANCE >= Duration::from_secs(3),
        "3 s tier message arrived after {second_elapsed:?}"
    );
    let attempt = first
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(ATTEMPT_HEADER).cloned());
    assert_eq!(attempt, Some(lapin::types::AMQPValue::LongInt(1)));
}

#[tokio::test]
async fn tier_index_past_end_uses_last() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;

    topology
        .publisher
        .publish_retry(&envelope(41, "adyen", "AUTHORISATION"), 99)
        .await
        .expect("publish to an out-of-range tier failed");

    let last_tier = &topology.names.retry_tiers[1].queue;
    topology.wait_for_depth(last_tier, 1).await;
}
