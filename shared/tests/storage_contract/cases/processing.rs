use chrono::Utc;
use payhook::model::EventStatus;
use payhook::storage::{Attempt, EventFilter, Failure, StoreError};

use crate::support::{Context, claim, completion, insert, log, micros, payment};

pub async fn complete_writes_payments_and_logs(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_complete_1").await;
    let pending = store.complete(id, &completion(Vec::new())).await;
    assert!(
        matches!(
            pending,
            Err(StoreError::Conflict {
                status: EventStatus::Pending,
                ..
            })
        ),
        "{pending:?}"
    );
    claim(store, id).await;
    let payments = vec![
        payment("pi_complete_1", 2000, "USD", 2),
        payment("pi_complete_2", 5120, "KWD", 3),
    ];
    store
        .complete(id, &completion(payments.clone()))
        .await
        .expect("complete");

    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Completed);
    assert!(detail.event.processed_at.is_some());
    assert_eq!(detail.event.locked_until, None);
    assert_eq!(
        detail.event.processed_payload.as_deref(),
        Some(r#"{"payments":1}"#)
    );
    let steps: Vec<&str> = detail
        .logs
        .iter()
        .map(|log| log.processing_step.as_str())
        .collect();
    assert_eq!(steps, ["handler", "persist"]);
    assert!(detail.logs.iter().all(|log| log.webhook_event_id == id));
    assert_eq!(detail.payment_events.len(), 2);
    for (stored, expected) in detail.payment_events.iter().zip(&payments) {
        assert_eq!(&stored.payment, expected);
        assert_eq!(stored.provider, "stripe");
        assert_eq!(stored.webhook_event_id, id);
    }

    let again = store.complete(id, &completion(Vec::new())).await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict {
                status: EventStatus::Completed,
                ..
            })
        ),
        "{again:?}"
    );
    let missing = store.complete(id + 1000, &completion(Vec::new())).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn complete_failure_writes_nothing(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_atomic_1").await;
    claim(store, id).await;
    // The second payment's metadata is one character over the limit, so the store has
    // already written the logs and the first payment when it rejects the second.
    let mut oversized = payment("pi_atomic_2", 100, "EUR", 2);
    oversized.metadata = Some(format!(r#"{{"note":"{}"}}"#, "x".repeat(3990)));
    assert_eq!(oversized.metadata.as_ref().unwrap().len(), 4001);
    let bad = completion(vec![payment("pi_atomic_1", 100, "EUR", 2), oversized]);
    let result = store.complete(id, &bad).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");

    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Processing);
    assert!(
        detail.logs.is_empty(),
        "logs rolled back: {:?}",
        detail.logs
    );
    assert!(
        detail.payment_events.is_empty(),
        "payments rolled back: {:?}",
        detail.payment_events
    );
    assert_eq!(detail.event.processed_at, None);

    let failing_log = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "handler failed".into(),
        logs: vec![log("handler", "failed"), log("", "failed")],
        next_retry_at: None,
    };
    let result = store.fail(id, &failing_log).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Processing);
    assert!(detail.logs.is_empty(), "fail logs rolled back");

    let good = completion(vec![payment("pi_atomic_1", 100, "EUR", 2)]);
    store.complete(id, &good).await.expect("complete");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.payment_events.len(), 1);
    assert_eq!(detail.logs.len(), 2);
}

pub async fn fail_schedules_retry_then_dead(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_fail_1").await;
    let pending = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "x".into(),
        logs: Vec::new(),
        next_retry_at: None,
    };
    let result = store.fail(id, &pending).await;
    assert!(
        matches!(result, Err(StoreError::Conflict { .. })),
        "{result:?}"
    );

    claim(store, id).await;
    let retry_at = micros(Utc::now() + chrono::Duration::seconds(30));
    // 1999 ASCII characters and then a two-unit emoji cross the 2000 limit mid-character.
    let long_error = format!("{}😀{}", "e".repeat(1999), "ü".repeat(500));
    let mut failed_log = log("handler", "failed");
    failed_log.error_message = Some(long_error.clone());
    failed_log.additional_data = Some("ü".repeat(4100));
    let failure = Failure {
        attempt: Attempt::Claimed(1),
        error_message: long_error.clone(),
        logs: vec![failed_log],
        next_retry_at: Some(retry_at),
    };
    store.fail(id, &failure).await.expect("fail");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Failed);
    assert_eq!(detail.event.next_retry_at, Some(retry_at));
    assert_eq!(detail.event.locked_until, None);
    assert_eq!(detail.event.error_message, Some("e".repeat(1999)));
    assert_eq!(detail.logs.len(), 1);
    assert_eq!(detail.logs[0].status, "failed");
    assert_eq!(detail.logs[0].error_message, Some("e".repeat(1999)));
    assert_eq!(detail.logs[0].additional_data, Some("ü".repeat(4000)));

    let forced = store
        .claim(id, crate::support::LEASE, false)
        .await
        .expect("claim");
    assert!(matches!(forced, payhook::storage::ClaimOutcome::Claimed(_)));
    let dead = Failure {
        attempt: Attempt::Claimed(2),
        error_message: "gave up after 2 attempts".into(),
        logs: vec![log("handler", "failed")],
        next_retry_at: None,
    };
    store.fail(id, &dead).await.expect("fail");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Dead);
    assert_eq!(detail.event.next_retry_at, None);
    assert_eq!(
        detail.event.error_message.as_deref(),
        Some("gave up after 2 attempts")
    );
    assert_eq!(detail.event.attempt_count, 2);
    assert_eq!(detail.logs.len(), 2);
}

/// Claims and fails `id`, leaving it `failed` or, without a retry time, `dead`.
async fn make_failed(context: &Context, id: i64, retry: bool) {
    claim(&context.store, id).await;
    let failure = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "boom".into(),
        logs: Vec::new(),
        next_retry_at: retry.then(|| Utc::now() + chrono::Duration::minutes(5)),
    };
    context.store.fail(id, &failure).await.expect("fail");
}

pub async fn requeue_resets_failed_and_dead(context: Context) {
    let store = &context.store;
    let failed = insert(store, "stripe", "evt_requeue_failed").await;
    make_failed(&context, failed, true).await;
    let dead = insert(store, "stripe", "evt_requeue_dead").await;
    make_failed(&context, dead, false).await;
    let other_provider = insert(store, "paypal", "WH-REQUEUE-1").await;
    make_failed(&context, other_provider, false).await;
    let completed = insert(store, "stripe", "evt_requeue_done").await;
    claim(store, completed).await;
    store
        .complete(completed, &completion(Vec::new()))
        .await
        .expect("complete");
    let pending = insert(store, "stripe", "evt_requeue_pending").await;
    store.mark_published(failed).await.expect("mark published");

    let only_dead = EventFilter {
        provider: Some("stripe".into()),
        statuses: vec![EventStatus::Dead],
        ..EventFilter::default()
    };
    let ids = store.requeue(&only_dead, 10).await.expect("requeue");
    assert_eq!(ids, vec![dead]);

    let stripe = EventFilter {
        provider: Some("stripe".into()),
        ..EventFilter::default()
    };
    let ids = store.requeue(&stripe, 10).await.expect("requeue");
    assert_eq!(
        ids,
        vec![failed],
        "completed and pending rows are left alone"
    );

    for id in [failed, dead] {
        let detail = store.event_detail(id).await.expect("detail").expect("row");
        assert_eq!(detail.event.status, EventStatus::Pending);
        assert_eq!(detail.event.attempt_count, 0);
        assert_eq!(detail.event.next_retry_at, None);
        assert_eq!(detail.event.published_at, None);
        let last = detail.logs.last().expect("requeue log");
        assert_eq!(last.processing_step, "requeue");
        assert_eq!(last.status, "success");
        assert_eq!(last.duration_ms, 0);
    }
    let untouched = store
        .event_detail(other_provider)
        .await
        .expect("detail")
        .expect("row");
    assert_eq!(untouched.event.status, EventStatus::Dead);
    for id in [completed, pending] {
        let detail = store.event_detail(id).await.expect("detail").expect("row");
        assert!(
            detail
                .logs
                .iter()
                .all(|log| log.processing_step != "requeue")
        );
    }

    let ids = store
        .requeue(&EventFilter::default(), 0)
        .await
        .expect("requeue");
    assert!(ids.is_empty(), "limit 0 requeues nothing");
    let ids = store
        .requeue(&EventFilter::default(), 10)
        .await
        .expect("requeue");
    assert_eq!(ids, vec![other_provider]);
}

pub async fn replay_resets_one_event(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_replay_1").await;
    claim(store, id).await;
    let busy = store.replay(id).await;
    assert!(
        matches!(
            busy,
            Err(StoreError::Conflict {
                status: EventStatus::Processing,
                ..
            })
        ),
        "{busy:?}"
    );
    store
        .complete(id, &completion(vec![payment("pi_replay", 100, "USD", 2)]))
        .await
        .expect("complete");
    store.mark_published(id).await.expect("mark published");

    store.replay(id).await.expect("replay");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Pending);
    assert_eq!(detail.event.attempt_count, 0);
    assert_eq!(detail.event.published_at, None);
    let last = detail.logs.last().expect("replay log");
    assert_eq!(last.processing_step, "replay");
    assert_eq!(last.status, "success");
    assert_eq!(last.duration_ms, 0);
    assert_eq!(detail.payment_events.len(), 1, "history is kept");

    let again = claim(store, id).await;
    assert_eq!(again.attempt_count, 1);

    let missing = store.replay(id + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
