//! Events through ingest, RabbitMQ and consumers: completion, retries, dead letters and load.

use std::time::Duration;

use futures_util::StreamExt;
use payhook::app;
use payhook::model::EventStatus;
use payhook::worker::operator::OperatorFilter;

use crate::fault::{ALWAYS, faulty_handlers};
use crate::harness::{PROCESSING_TIMEOUT, TestEnv, payment_succeeded, poll_until};

/// Margin for the broker's TTL timer and for clock steps between log rows.
const TIER_TOLERANCE: Duration = Duration::from_millis(300);
/// Maximum wait for 1,000 events to be ingested and processed.
const BULK_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn signed_stripe_event_completes() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(None, &[]).await;
    let (event_id, body) = payment_succeeded(4_250);

    let id = ingest.accept(&body).await;
    let detail = env.wait_for_status(id, EventStatus::Completed).await;

    assert_eq!(detail.event.event_id, event_id);
    assert_eq!(detail.event.attempt_count, 1);
    assert!(
        detail.event.published_at.is_some(),
        "row never stamped published"
    );
    assert_eq!(
        detail.payment_events.len(),
        1,
        "{:?}",
        detail.payment_events
    );
    let payment = &detail.payment_events[0].payment;
    assert_eq!(payment.payment_id, format!("pi_{event_id}"));
    assert_eq!(payment.status, "succeeded");
    let amount = payment.amount.expect("payment without amount");
    assert_eq!(amount.minor, 4_250);
    assert_eq!(amount.to_decimal_string(), "42.50");
    assert_eq!(amount.currency.to_string(), "USD");
    assert_eq!(payment.customer_id.as_deref(), Some("cus_flowBuyer"));
    let (status, ready) = ingest.get_admin("/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["broker"], "up", "{ready}");
    assert_eq!(env.depth(&env.names.work_queue).await, 0);
    let consumer_admin = consumer.admin.expect("consumer admin listener");
    let (status, ready) = get_json(&format!("http://{consumer_admin}/health/ready")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["consumer"], "up", "{ready}");
    assert_eq!(ready["broker"], "up", "{ready}");

    consumer.stop().await;
    ingest.stop().await;
}

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let response = client
        .get(url.parse().unwrap())
        .await
        .expect("request failed");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[tokio::test]
async fn handler_failing_twice_then_succeeds() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (handlers, plan) = faulty_handlers();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(Some(handlers), &[]).await;
    let (event_id, body) = payment_succeeded(1_000);
    plan.fail(&event_id, 2);

    let id = ingest.accept(&body).await;
    let detail = env.wait_for_status(id, EventStatus::Completed).await;

    assert_eq!(detail.event.attempt_count, 3);
    assert_eq!(plan.calls_for(&event_id), 3);
    assert_eq!(detail.payment_events.len(), 1);
    let handler_logs: Vec<_> = detail
        .logs
        .iter()
        .filter(|log| log.processing_step == "handler")
        .collect();
    let statuses: Vec<&str> = handler_logs.iter().map(|log| log.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "failed", "success"]);
    // Attempt 1 waits in the 1 s tier and attempt 2 in the 3 s tier.
    let first_gap = (handler_logs[1].processed_at - handler_logs[0].processed_at)
        .to_std()
        .unwrap();
    let second_gap = (handler_logs[2].processed_at - handler_logs[1].processed_at)
        .to_std()
        .unwrap();
    assert!(
        first_gap + TIER_TOLERANCE >= Duration::from_secs(1),
        "second attempt came {first_gap:?} after the first"
    );
    assert!(
        first_gap < Duration::from_millis(2_500),
        "second attempt came {first_gap:?} after the first, later than the 1 s tier"
    );
    assert!(
        second_gap + TIER_TOLERANCE >= Duration::from_secs(3),
        "third attempt came {second_gap:?} after the second"
    );

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn retry_time_matches_delay_tier() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (handlers, plan) = faulty_handlers();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(Some(handlers), &[]).await;
    let (event_id, body) = payment_succeeded(700);
    plan.fail(&event_id, 1);

    let id = ingest.accept(&body).await;
    let failed = env.wait_for_status(id, EventStatus::Failed).await;

    let retry_at = failed
        .event
        .next_retry_at
        .expect("failed row without retry time");
    let delay = (retry_at - failed.event.updated_at).to_std().unwrap();
    assert!(
        delay.abs_diff(Duration::from_secs(1)) <= TIER_TOLERANCE,
        "retry scheduled {delay:?} after the failure, expected the 1 s tier"
    );
    env.wait_for_status(id, EventStatus::Completed).await;

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn exhausted_event_is_dead_lettered_then_replayed() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (handlers, plan) = faulty_handlers();
    let ingest = env.spawn_ingest(&["--max-attempts", "3"]).await;
    let consumer = env.spawn_consumer(Some(handlers), &[]).await;
    let (event_id, body) = payment_succeeded(990);
    plan.fail(&event_id, ALWAYS);

    let id = ingest.accept(&body).await;
    let dead = env.wait_for_status(id, EventStatus::Dead).await;
    let dead_lettered = poll_until(PROCESSING_TIMEOUT, || async {
        env.depth(&env.names.dead_queue).await == 1
    })
    .await;

    assert!(dead_lettered, "the dead-letter queue never held the event");
    assert_eq!(dead.event.attempt_count, 3);
    assert_eq!(plan.calls_for(&event_id), 3, "one delivery per attempt");
    assert!(dead.payment_events.is_empty());

    let config = env.config(&[]);
    let filter = OperatorFilter {
        provider: Some("stripe".to_owned()),
        ..OperatorFilter::default()
    };
    let preview = app::replay_dead_letter_events(&config, &filter, 10, true)
        .await
        .expect("dry run failed");
    assert_eq!(preview.ids, [id]);
    assert_eq!(env.depth(&env.names.dead_queue).await, 1, "a dry run moved");
    assert_eq!(env.detail(id).await.event.status, EventStatus::Dead);

    plan.fail(&event_id, 0);
    let other_provider = OperatorFilter {
        provider: Some("paypal".to_owned()),
        ..OperatorFilter::default()
    };
    let unmatched = app::replay_dead_letter_events(&config, &other_provider, 10, false)
        .await
        .expect("replay of another provider failed");
    assert!(unmatched.ids.is_empty(), "{unmatched:?}");
    let report = app::replay_dead_letter_events(&config, &filter, 10, false)
        .await
        .expect("replay failed");
    assert_eq!(report.ids, [id]);
    assert_eq!(report.lines.len(), 1, "{report:?}");
    let completed = env.wait_for_status(id, EventStatus::Completed).await;

    assert_eq!(
        completed.event.attempt_count, 1,
        "the attempt count starts over"
    );
    // The replay resets the row before it moves the message, so the sweeper may publish the
    // row once more in between. A second first delivery runs the handler again, and its
    // write is refused because the first one completed the row.
    let calls = plan.calls_for(&event_id);
    assert!((4..=5).contains(&calls), "{calls} handler calls");
    let successes = completed
        .logs
        .iter()
        .filter(|log| log.processing_step == "handler" && log.status == "success")
        .count();
    assert_eq!(successes, 1, "{:?}", completed.logs);
    assert_eq!(completed.payment_events.len(), 1);
    assert!(
        completed
            .logs
            .iter()
            .any(|log| log.processing_step == "replay"),
        "no replay log: {:?}",
        completed.logs
    );
    assert_eq!(env.depth(&env.names.dead_queue).await, 0);

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn retry_failed_requeues_dead_rows() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (handlers, plan) = faulty_handlers();
    let ingest = env.spawn_ingest(&["--max-attempts", "1"]).await;
    let consumer = env.spawn_consumer(Some(handlers), &[]).await;
    let (event_id, body) = payment_succeeded(310);
    plan.fail(&event_id, ALWAYS);
    let id = ingest.accept(&body).await;
    env.wait_for_status(id, EventStatus::Dead).await;
    let config = env.config(&[]);
    let filter = OperatorFilter::default();

    let preview = app::retry_failed_events(&config, &filter, 10, true)
        .await
        .expect("dry run failed");
    assert_eq!(preview.ids, [id]);
    assert_eq!(env.detail(id).await.event.status, EventStatus::Dead);
    plan.fail(&event_id, 0);
    let report = app::retry_failed_events(&config, &filter, 10, false)
        .await
        .expect("retry-failed failed");
    let completed = env.wait_for_status(id, EventStatus::Completed).await;

    assert_eq!(report.ids, [id]);
    assert!(
        report.lines[0].contains("was dead after"),
        "{:?}",
        report.lines
    );
    assert_eq!(completed.event.attempt_count, 1);
    assert_eq!(completed.payment_events.len(), 1);
    assert!(
        completed
            .logs
            .iter()
            .any(|log| log.processing_step == "requeue"),
        "no requeue log: {:?}",
        completed.logs
    );

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn slow_handler_times_out_then_retries() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (handlers, plan) = faulty_handlers();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env
        .spawn_consumer(Some(handlers), &["--handler-timeout-seconds", "1"])
        .await;
    let (event_id, body) = payment_succeeded(640);
    plan.stall(&event_id, Duration::from_secs(4), 1);

    let id = ingest.accept(&body).await;
    let detail = env.wait_for_status(id, EventStatus::Completed).await;

    assert_eq!(detail.event.attempt_count, 2);
    assert_eq!(detail.payment_events.len(), 1);
    let handler_logs: Vec<_> = detail
        .logs
        .iter()
        .filter(|log| log.processing_step == "handler")
        .collect();
    assert_eq!(handler_logs.len(), 2, "{handler_logs:?}");
    assert_eq!(handler_logs[0].status, "failed");
    let error = handler_logs[0].error_message.as_deref().unwrap_or("");
    assert!(error.contains("timed out after 1s"), "{error}");
    assert_eq!(handler_logs[1].status, "success");

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn short_tier_overtakes_long_tier() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (handlers, plan) = faulty_handlers();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(Some(handlers), &[]).await;
    let (slow_id, slow_body) = payment_succeeded(111);
    let (fast_id, fast_body) = payment_succeeded(222);
    plan.fail(&slow_id, 2);
    plan.fail(&fast_id, 1);

    let slow = ingest.accept(&slow_body).await;
    let in_long_tier = poll_until(PROCESSING_TIMEOUT, || async {
        plan.calls_for(&slow_id) == 2
    })
    .await;
    assert!(in_long_tier, "the slow event never failed twice");
    let fast = ingest.accept(&fast_body).await;
    env.wait_for_status(fast, EventStatus::Completed).await;
    env.wait_for_status(slow, EventStatus::Completed).await;

    let order = plan.call_order();
    let expected = [&slow_id, &slow_id, &fast_id, &fast_id, &slow_id];
    assert_eq!(
        order.iter().collect::<Vec<_>>(),
        expected,
        "the 1 s retry must run before the 3 s retry published earlier"
    );

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn thousand_events_through_two_consumers() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    const EVENTS: i64 = 1_000;
    let ingest = env.spawn_ingest(&[]).await;
    let first = env.spawn_consumer(None, &["--consumers", "8"]).await;
    let second = env.spawn_consumer(None, &["--consumers", "8"]).await;

    let bodies: Vec<String> = (0..EVENTS).map(|n| payment_succeeded(100 + n).1).collect();
    let statuses: Vec<u16> = futures_util::stream::iter(bodies.iter())
        .map(|body| async { ingest.post_stripe(body).await.0 })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 200));
    let done = poll_until(BULK_TIMEOUT, || async {
        env.count("SELECT COUNT(*) FROM webhook_events WHERE status = 'completed'")
            .await
            == EVENTS
    })
    .await;

    assert!(done, "not every event completed within {BULK_TIMEOUT:?}");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM payment_events").await,
        EVENTS
    );
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT webhook_event_id) FROM payment_events")
            .await,
        EVENTS
    );
    assert_eq!(
        env.count("SELECT COUNT(DISTINCT payment_id) FROM payment_events")
            .await,
        EVENTS
    );
    first.stop().await;
    second.stop().await;
    assert_eq!(env.depth(&env.names.work_queue).await, 0);
    ingest.stop().await;
}
