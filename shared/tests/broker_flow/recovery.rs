//! Recovery: a consumer lost with unacked deliveries, and publishes the broker did not take.

use std::process::Command;

use lapin::options::QueueBindOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use payhook::model::{EventStatus, NewEvent};

use crate::fault::faulty_handlers;
use crate::harness::{PROCESSING_TIMEOUT, TestEnv, payment_succeeded, poll_until, postgres_client};

#[tokio::test]
async fn lost_consumer_deliveries_processed_once() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    const EVENTS: usize = 5;
    let (handlers, plan) = faulty_handlers();
    plan.close_gate();
    let ingest = env.spawn_ingest(&[]).await;
    let lost = env
        .spawn_consumer(
            Some(handlers),
            &[
                "--consumers",
                "5",
                "--amqp-prefetch",
                "5",
                "--handler-timeout-seconds",
                "120",
                "--lease-seconds",
                "3",
            ],
        )
        .await;
    let mut ids = Vec::new();
    for amount in 0..EVENTS {
        ids.push(
            ingest
                .accept(&payment_succeeded(500 + amount as i64).1)
                .await,
        );
    }
    let all_held = poll_until(PROCESSING_TIMEOUT, || async { plan.held() == EVENTS }).await;
    assert!(all_held, "only {} handler calls are in flight", plan.held());
    // A first delivery is processed without a claim: the rows are untouched while the
    // handlers run.
    for id in &ids {
        let row = env.detail(*id).await.event;
        assert_eq!(row.status, EventStatus::Pending, "event {id}");
        assert_eq!(row.attempt_count, 0, "event {id}");
    }

    // Stop consuming without settling, then cut the connection: the broker requeues the
    // unacked deliveries, as after a crash.
    lost.shutdown.cancel();
    let closed = close_connections_named(&format!("{}-consumer-consumer", env.prefix));
    assert_eq!(closed, 1, "the lost consumer's connection was not found");
    let (handlers, replacement_plan) = faulty_handlers();
    replacement_plan.close_gate();
    let replacement = env
        .spawn_consumer(Some(handlers), &["--lease-seconds", "3"])
        .await;
    let all_held = poll_until(PROCESSING_TIMEOUT, || async {
        replacement_plan.held() == EVENTS
    })
    .await;
    assert!(
        all_held,
        "only {} redelivered handler calls are in flight",
        replacement_plan.held()
    );
    // A redelivery claims the row before its handler runs, so an event that takes its
    // consumer down is counted from then on.
    for id in &ids {
        let row = env.detail(*id).await.event;
        assert_eq!(row.status, EventStatus::Processing, "event {id}");
        assert_eq!(row.attempt_count, 1, "event {id}");
    }
    replacement_plan.open_gate();
    for id in &ids {
        env.wait_for_status(*id, EventStatus::Completed).await;
    }
    // The lost consumer's handlers finish now; their writes are refused.
    plan.open_gate();
    lost.stop().await;

    for id in &ids {
        let detail = env.detail(*id).await;
        assert_eq!(detail.event.status, EventStatus::Completed);
        assert_eq!(detail.event.attempt_count, 1, "event {id}");
        assert_eq!(detail.payment_events.len(), 1, "event {id}");
        let successes = detail
            .logs
            .iter()
            .filter(|log| log.processing_step == "handler" && log.status == "success")
            .count();
        assert_eq!(successes, 1, "event {id}: {:?}", detail.logs);
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM payment_events").await,
        EVENTS as i64
    );

    replacement.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn unroutable_publish_is_swept_later() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let ingest = env.spawn_ingest(&[]).await;
    let ready = poll_until(PROCESSING_TIMEOUT, || async {
        ingest.get_admin("/health/ready").await.0 == 200
    })
    .await;
    assert!(ready, "ingest never became ready");
    let connection = Connection::connect(&env.amqp_url, ConnectionProperties::default())
        .await
        .expect("connecting the test channel failed");
    let channel = connection.create_channel().await.unwrap();
    let names = &env.names;
    channel
        .queue_unbind(
            names.work_queue.as_str().into(),
            names.exchange.as_str().into(),
            "work".into(),
            FieldTable::default(),
        )
        .await
        .expect("unbinding the work queue failed");

    let (_, body) = payment_succeeded(1_234);
    let id = ingest.accept(&body).await;

    let stored = env.detail(id).await;
    assert_eq!(stored.event.status, EventStatus::Pending);
    assert!(
        stored.event.published_at.is_none(),
        "a returned message left the row stamped published"
    );
    let metrics = ingest.get_metrics().await;
    assert!(
        metrics.contains("payhook_publish_failures_total{provider=\"stripe\"}"),
        "{metrics}"
    );

    channel
        .queue_bind(
            names.work_queue.as_str().into(),
            names.exchange.as_str().into(),
            "work".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("binding the work queue again failed");
    let swept = poll_until(PROCESSING_TIMEOUT, || async {
        env.depth(&names.work_queue).await == 1
    })
    .await;
    assert!(
        swept,
        "the sweeper did not publish the row after the binding returned"
    );
    let consumer = env.spawn_consumer(None, &[]).await;
    let completed = env.wait_for_status(id, EventStatus::Completed).await;

    assert_eq!(completed.payment_events.len(), 1);
    assert_eq!(completed.event.attempt_count, 1);
    assert!(completed.event.published_at.is_some());

    let _ = connection.close(200, "test finished".into()).await;
    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn unreachable_broker_still_accepts() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed_url = format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f");
    let ingest = env.spawn_ingest(&["--amqp-url", &closed_url]).await;

    let (_, body) = payment_succeeded(2_500);
    let id = ingest.accept(&body).await;
    let (status, ready) = ingest.get_admin("/health/ready").await;

    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["broker"], "down", "{ready}");
    assert_eq!(ready["database"], "up", "{ready}");
    let stored = env.detail(id).await;
    assert!(stored.event.published_at.is_none());
    assert_eq!(stored.event.status, EventStatus::Pending);

    // The consumer reaches the broker, and its sweeper publishes the row.
    let consumer = env.spawn_consumer(None, &[]).await;
    let completed = env.wait_for_status(id, EventStatus::Completed).await;
    assert_eq!(completed.payment_events.len(), 1);
    assert_eq!(completed.event.attempt_count, 1);

    consumer.stop().await;
    ingest.stop().await;
}

/// Closes every broker connection whose client-provided name is `connection_name`, with
/// `rabbitmqctl` on the local node, and returns how many it closed.
fn close_connections_named(connection_name: &str) -> usize {
    let listed = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("running rabbitmqctl list_connections failed");
    assert!(
        listed.status.success(),
        "rabbitmqctl list_connections failed"
    );
    let needle = format!("\"{connection_name}\"");
    let pids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    for pid in &pids {
        let closed = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by the lost consumer test"])
            .output()
            .expect("running rabbitmqctl close_connection failed");
        assert!(closed.status.success(), "closing connection {pid} failed");
    }
    pids.len()
}

#[tokio::test]
async fn duplicate_delivery_republishes_lost_message() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (event_id, body) = payment_succeeded(1_500);
    // An ingest killed between its commit and its publish leaves this row: stamped
    // published, with no message in any queue.
    let orphan = NewEvent {
        provider: "stripe".into(),
        event_id: event_id.clone(),
        event_type: "payment_intent.succeeded".into(),
        raw_payload: body.clone(),
        signature: None,
        headers: "{}".into(),
        source_ip: None,
        user_agent: None,
        signature_verified: true,
        signature_key_id: Some("stripe#1".into()),
        provider_created_at: None,
        max_attempts: 3,
        published: true,
    };
    let id = env.store.insert_event(&orphan).await.expect("insert").id();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(None, &[]).await;

    let (status, json) = ingest.post_stripe(&body).await;

    assert_eq!(status, 200, "{json}");
    assert_eq!(json["status"], "duplicate", "{json}");
    assert_eq!(json["id"], id, "{json}");
    let detail = env.wait_for_status(id, EventStatus::Completed).await;
    assert_eq!(
        detail.payment_events.len(),
        1,
        "{:?}",
        detail.payment_events
    );

    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn claim_behind_row_lock_is_time_boxed() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let ingest = env.spawn_ingest(&[]).await;
    let (_, body) = payment_succeeded(700);
    let id = ingest.accept(&body).await;
    let locker = lock_row(&env, id).await;
    let consumer = env
        .spawn_consumer(None, &["--handler-timeout-seconds", "1"])
        .await;

    let first_tier = env.names.retry_tiers[0].queue.clone();
    let parked = poll_until(PROCESSING_TIMEOUT, || async {
        env.depth(&first_tier).await == 1
    })
    .await;

    assert!(parked, "the delivery stayed unacked behind the row lock");
    locker.batch_execute("COMMIT").await.expect("commit");
    let detail = env.wait_for_status(id, EventStatus::Completed).await;
    assert_eq!(
        detail.payment_events.len(),
        1,
        "{:?}",
        detail.payment_events
    );
    consumer.stop().await;
    ingest.stop().await;
}

#[tokio::test]
async fn locked_row_holds_up_no_other_completion() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let ingest = env.spawn_ingest(&[]).await;
    let (_, locked_body) = payment_succeeded(710);
    let locked_id = ingest.accept(&locked_body).await;
    let locker = lock_row(&env, locked_id).await;
    let consumer = env.spawn_consumer(None, &[]).await;

    // The completion of the locked row fails at once and its delivery waits in the first
    // tier, instead of holding the consumer's completions behind the lock.
    let first_tier = env.names.retry_tiers[0].queue.clone();
    let parked = poll_until(PROCESSING_TIMEOUT, || async {
        env.depth(&first_tier).await == 1
    })
    .await;
    assert!(parked, "the completion of the locked row never gave up");
    let (_, free_body) = payment_succeeded(720);
    let free_id = ingest.accept(&free_body).await;
    let free = env.wait_for_status(free_id, EventStatus::Completed).await;
    assert_eq!(free.payment_events.len(), 1);
    let waiting = env.detail(locked_id).await;
    assert_eq!(waiting.event.status, EventStatus::Pending);
    assert!(waiting.payment_events.is_empty());

    locker.batch_execute("COMMIT").await.expect("commit");
    let detail = env.wait_for_status(locked_id, EventStatus::Completed).await;
    assert_eq!(
        detail.payment_events.len(),
        1,
        "{:?}",
        detail.payment_events
    );
    consumer.stop().await;
    ingest.stop().await;
}

/// Opens a session that locks the row in an open transaction, as a long transaction or a
/// stuck session would; `COMMIT` on the returned client releases it.
async fn lock_row(env: &TestEnv, id: i64) -> tokio_postgres::Client {
    let locker = postgres_client(&env.database_url).await;
    locker.batch_execute("BEGIN").await.expect("begin");
    locker
        .execute(
            "SELECT id FROM webhook_events WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .expect("lock the row");
    locker
}
