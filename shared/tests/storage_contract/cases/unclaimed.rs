//! Results written over a row read without a claim, and many completions at once.

use chrono::Utc;
use payhook::model::EventStatus;
use payhook::storage::{Attempt, ClaimOutcome, Completion, Failure, StoreError};

use crate::support::{Context, LEASE, claim, completion, insert, payment};

fn unclaimed(count: i32, payment_id: &str) -> Completion {
    Completion {
        attempt: Attempt::Unclaimed(count),
        ..completion(vec![payment(payment_id, 1500, "EUR", 2)])
    }
}

pub async fn load_reads_without_changing(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_load_1").await;
    let loaded = store.load(id).await.expect("load").expect("row");
    assert_eq!(loaded.id, id);
    assert_eq!(loaded.event_id, "evt_load_1");
    assert_eq!(loaded.status, EventStatus::Pending);
    assert_eq!(loaded.attempt_count, 0);
    assert!(!loaded.raw_payload.is_empty());
    let again = store.load(id).await.expect("load").expect("row");
    assert_eq!(again.updated_at, loaded.updated_at);
    assert_eq!(again.attempt_count, 0);
    assert!(store.load(id + 1000).await.expect("load").is_none());

    // Reads issued together, with one id repeated and one missing, each get their own row.
    let other = insert(store, "stripe", "evt_load_2").await;
    let requested = [id, other, id, id + 1000, id];
    let reads = requested.iter().map(|&requested_id| {
        let store = store.clone();
        async move { store.load(requested_id).await.expect("load") }
    });
    let rows = futures_util::future::join_all(reads).await;
    for (requested_id, row) in requested.iter().zip(&rows) {
        if *requested_id == id + 1000 {
            assert!(row.is_none(), "row for a missing id");
        } else {
            let row = row.as_ref().expect("row");
            let event_id = if *requested_id == id {
                "evt_load_1"
            } else {
                "evt_load_2"
            };
            assert_eq!(row.id, *requested_id);
            assert_eq!(row.event_id, event_id);
            assert!(row.raw_payload.contains(event_id), "{}", row.raw_payload);
        }
    }
}

pub async fn unclaimed_completion_writes_once(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_unclaimed_1").await;
    store
        .complete(id, &unclaimed(0, "pi_unclaimed_1"))
        .await
        .expect("complete a pending row read at attempt 0");

    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Completed);
    assert_eq!(
        detail.event.attempt_count, 1,
        "the write counts the attempt"
    );
    assert_eq!(detail.payment_events.len(), 1);
    assert_eq!(detail.logs.len(), 2);

    let second = store.complete(id, &unclaimed(0, "pi_unclaimed_1")).await;
    assert!(
        matches!(
            second,
            Err(StoreError::Conflict {
                status: EventStatus::Completed,
                ..
            })
        ),
        "{second:?}"
    );
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(
        detail.payment_events.len(),
        1,
        "the refused write added rows"
    );
    assert!(matches!(
        store.claim(id, LEASE, false).await.expect("claim"),
        ClaimOutcome::AlreadyCompleted
    ));
}

pub async fn unclaimed_write_rejected_after_claim(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_unclaimed_2").await;
    let read = store.load(id).await.expect("load").expect("row");
    let claimed = claim(store, id).await;
    assert_eq!(claimed.attempt_count, 1);

    let late = store
        .complete(id, &unclaimed(read.attempt_count, "pi_unclaimed_2"))
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::Conflict {
                status: EventStatus::Processing,
                ..
            })
        ),
        "{late:?}"
    );
    let failure = Failure {
        attempt: Attempt::Unclaimed(read.attempt_count),
        error_message: "late failure".into(),
        logs: Vec::new(),
        next_retry_at: Some(Utc::now()),
    };
    assert!(matches!(
        store.fail(id, &failure).await,
        Err(StoreError::Conflict { .. })
    ));

    store
        .complete(
            id,
            &completion(vec![payment("pi_unclaimed_2", 900, "USD", 2)]),
        )
        .await
        .expect("the claim's own completion");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.status, EventStatus::Completed);
    assert_eq!(detail.event.attempt_count, 1);
    assert_eq!(detail.payment_events.len(), 1);
    assert_eq!(
        detail.payment_events[0].payment.payment_id,
        "pi_unclaimed_2"
    );
}

pub async fn unclaimed_failure_counts_the_attempt(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_unclaimed_3").await;
    let retry_at = crate::support::micros(Utc::now() + chrono::Duration::seconds(30));
    let failure = Failure {
        attempt: Attempt::Unclaimed(0),
        error_message: "unknown currency XYZ".into(),
        logs: Vec::new(),
        next_retry_at: Some(retry_at),
    };
    store.fail(id, &failure).await.expect("fail a pending row");
    let row = store.load(id).await.expect("load").expect("row");
    assert_eq!(row.status, EventStatus::Failed);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.next_retry_at, Some(retry_at));
    assert_eq!(row.error_message.as_deref(), Some("unknown currency XYZ"));
}

/// Completions issued together are committed together where a backend batches them. Each
/// still gets its own outcome, so a stale or invalid one leaves the others written.
pub async fn concurrent_completions_keep_their_own_outcomes(context: Context) {
    let store = &context.store;
    let mut ids = Vec::new();
    for n in 0..24 {
        let id = insert(store, "stripe", &format!("evt_together_{n}")).await;
        if n % 3 != 2 {
            claim(store, id).await;
        }
        ids.push(id);
    }
    // Rows 0 and 1 of every three are claimed at attempt 1; row 2 stays pending.
    let stale = ids[4];
    let invalid = ids[7];
    let calls = ids.iter().enumerate().map(|(n, &id)| {
        let store = store.clone();
        let mut result = if n % 3 == 2 {
            unclaimed(0, &format!("pi_together_{n}"))
        } else {
            completion(vec![payment(
                &format!("pi_together_{n}"),
                100 + n as i64,
                "USD",
                2,
            )])
        };
        if id == stale {
            result.attempt = Attempt::Claimed(7);
        }
        if id == invalid {
            result.payment_events[0].payment_id = "p".repeat(300);
        }
        async move { (id, store.complete(id, &result).await) }
    });
    let outcomes = futures_util::future::join_all(calls).await;

    for (id, outcome) in outcomes {
        let detail = store.event_detail(id).await.expect("detail").expect("row");
        if id == stale {
            assert!(
                matches!(outcome, Err(StoreError::Conflict { .. })),
                "stale attempt: {outcome:?}"
            );
            assert_eq!(detail.event.status, EventStatus::Processing);
            assert!(detail.payment_events.is_empty());
            assert!(detail.logs.is_empty());
        } else if id == invalid {
            assert!(
                matches!(outcome, Err(StoreError::Invalid(_))),
                "invalid payment id: {outcome:?}"
            );
            assert_eq!(detail.event.status, EventStatus::Processing);
            assert!(detail.payment_events.is_empty());
            assert!(detail.logs.is_empty());
        } else {
            outcome.unwrap_or_else(|error| panic!("completion of {id}: {error}"));
            assert_eq!(detail.event.status, EventStatus::Completed);
            assert_eq!(detail.event.attempt_count, 1);
            assert_eq!(detail.payment_events.len(), 1, "payments of {id}");
            assert_eq!(detail.payment_events[0].webhook_event_id, id);
            let steps: Vec<&str> = detail
                .logs
                .iter()
                .map(|log| log.processing_step.as_str())
                .collect();
            assert_eq!(steps, ["handler", "persist"], "logs of {id}");
        }
    }
}
