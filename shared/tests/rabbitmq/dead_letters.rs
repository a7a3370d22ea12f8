//! Dead letters with reasons, and replay with filters, limit and dry run.

use std::time::Duration;

use payhook::queue::Envelope;
use payhook::queue::rabbitmq::{
    ATTEMPT_HEADER, ReplayFilter, decode_envelope, replay_dead_letters,
};

use crate::support::{
    DELIVERY_TIMEOUT, TestTopology, broker_url, envelope, envelope_id, get_message,
};

fn with_attempt(mut envelope: Envelope, value: i32) -> Envelope {
    let Envelope::V1 { attempt, .. } = &mut envelope;
    *attempt = value;
    envelope
}

#[tokio::test]
async fn replay_moves_matching_dead_letters() {
    let Some(url) = broker_url() else { return };
    let topology = TestTopology::new(url).await;
    let (_connection, channel) = topology.raw_channel().await;
    let publisher = &topology.publisher;
    let dead = &topology.names.dead_queue;
    let work = &topology.names.work_queue;

    let stripe_refund = with_attempt(envelope(51, "stripe", "charge.refunded"), 5);
    let stripe_success = with_attempt(envelope(52, "stripe", "payment_intent.succeeded"), 5);
    let paypal = with_attempt(envelope(53, "paypal", "PAYMENT.CAPTURE.DENIED"), 5);
    publisher
        .publish_dead(&stripe_refund, "amount is not a number")
        .await
        .unwrap();
    publisher
        .publish_dead(&stripe_success, "max attempts reached")
        .await
        .unwrap();
    publisher
        .publish_dead(&paypal, "max attempts reached")
        .await
        .unwrap();
    publisher
        .publish_dead_raw(b"{\"id\": 54, tru", "undecodable message")
        .await
        .unwrap();
    topology.wait_for_depth(dead, 4).await;

    let stripe_only = ReplayFilter {
        provider: Some("stripe".to_owned()),
        ..ReplayFilter::default()
    };
    let dry = replay_dead_letters(publisher, &stripe_only, 10, true)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.scanned, 4);
    assert_eq!(dry.undecodable, 1);
    assert_eq!(dry.replayed, 0);
    let mut listed: Vec<i64> = dry
        .matched
        .iter()
        .map(|letter| envelope_id(&letter.envelope))
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, [51, 52]);
    let refund = dry
        .matched
        .iter()
        .find(|letter| envelope_id(&letter.envelope) == 51)
        .unwrap();
    assert_eq!(refund.reason.as_deref(), Some("amount is not a number"));
    assert!(refund.timestamp.is_some(), "dead letter without timestamp");
    topology.wait_for_depth(dead, 4).await;
    assert_eq!(topology.depth(work).await, 0, "a dry run moved messages");

    let too_old = ReplayFilter {
        older_than: Some(Duration::from_secs(3600)),
        ..ReplayFilter::default()
    };
    let none = replay_dead_letters(publisher, &too_old, 10, false)
        .await
        .unwrap();
    assert!(
        none.matched.is_empty(),
        "age filter matched {:?}",
        none.matched
    );
    assert_eq!(none.replayed, 0);
    topology.wait_for_depth(dead, 4).await;

    let refunds = ReplayFilter {
        provider: Some("stripe".to_owned()),
        event_type: Some("charge.refunded".to_owned()),
        newer_than: Some(Duration::from_secs(3600)),
        ..ReplayFilter::default()
    };
    let moved = replay_dead_letters(publisher, &refunds, 10, false)
        .await
        .unwrap();
    assert_eq!(moved.replayed, 1);
    topology.wait_for_depth(dead, 3).await;
    let replayed = get_message(&channel, work, DELIVERY_TIMEOUT)
        .await
        .expect("replayed message missing from the work queue");
    let replayed_envelope = decode_envelope(&replayed.data).unwrap();
    assert_eq!(replayed_envelope, with_attempt(stripe_refund, 0));
    let attempt = replayed
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(ATTEMPT_HEADER).cloned());
    assert_eq!(attempt, Some(lapin::types::AMQPValue::LongInt(0)));

    let limited = replay_dead_letters(publisher, &ReplayFilter::default(), 1, false)
        .await
        .unwrap();
    assert_eq!(limited.replayed, 1, "limit 1 must move exactly one message");
    topology.wait_for_depth(dead, 2).await;
    topology.wait_for_depth(work, 1).await;
}
