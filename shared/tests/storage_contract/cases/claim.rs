use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use payhook::model::EventStatus;
use payhook::storage::{Attempt, ClaimOutcome, Failure};

use crate::support::{Context, LEASE, claim, completion, insert, log, micros};

pub async fn claim_outcomes_by_state(context: Context) {
    let store = &context.store;
    let before = micros(Utc::now());
    let id = insert(store, "stripe", "evt_claim_1").await;
    let claimed = claim(store, id).await;
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.status, EventStatus::Processing);
    assert_eq!(claimed.attempt_count, 1);
    let until = claimed.locked_until.expect("lease end");
    assert!(until >= before + chrono::Duration::seconds(59), "{until}");
    assert!(
        until <= Utc::now() + chrono::Duration::seconds(61),
        "{until}"
    );

    let locked = store.claim(id, LEASE, true).await.expect("claim");
    assert!(matches!(locked, ClaimOutcome::Locked), "{locked:?}");
    let locked = store.claim(id, LEASE, false).await.expect("claim");
    assert!(matches!(locked, ClaimOutcome::Locked), "{locked:?}");

    store
        .complete(id, &completion(Vec::new()))
        .await
        .expect("complete");
    let done = store.claim(id, LEASE, true).await.expect("claim");
    assert!(matches!(done, ClaimOutcome::AlreadyCompleted), "{done:?}");

    let dead_id = insert(store, "stripe", "evt_claim_dead").await;
    claim(store, dead_id).await;
    let dead = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "handler rejected the payload".into(),
        logs: vec![log("handler", "failed")],
        next_retry_at: None,
    };
    store.fail(dead_id, &dead).await.expect("fail");
    let outcome = store.claim(dead_id, LEASE, false).await.expect("claim");
    assert!(matches!(outcome, ClaimOutcome::Dead), "{outcome:?}");

    let later_id = insert(store, "stripe", "evt_claim_later").await;
    claim(store, later_id).await;
    let retry_at = micros(Utc::now() + chrono::Duration::minutes(10));
    let retry = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "timeout".into(),
        logs: Vec::new(),
        next_retry_at: Some(retry_at),
    };
    store.fail(later_id, &retry).await.expect("fail");
    let not_due = store.claim(later_id, LEASE, true).await.expect("claim");
    assert!(
        matches!(not_due, ClaimOutcome::NotDue(at) if at == retry_at),
        "{not_due:?}"
    );
    let forced = store.claim(later_id, LEASE, false).await.expect("claim");
    let ClaimOutcome::Claimed(forced) = forced else {
        panic!("claim ignoring the retry time returned {forced:?}");
    };
    assert_eq!(forced.attempt_count, 2);

    let missing = store.claim(id + 1000, LEASE, true).await.expect("claim");
    assert!(matches!(missing, ClaimOutcome::NotFound), "{missing:?}");
}

pub async fn expired_lease_is_reclaimed(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_lease_1").await;
    let short = store
        .claim(id, Duration::from_millis(100), true)
        .await
        .expect("claim");
    assert!(matches!(short, ClaimOutcome::Claimed(_)), "{short:?}");
    let held = store.claim(id, LEASE, true).await.expect("claim");
    assert!(matches!(held, ClaimOutcome::Locked), "{held:?}");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let reclaimed = claim(store, id).await;
    assert_eq!(reclaimed.attempt_count, 2);

    let other = insert(store, "stripe", "evt_lease_2").await;
    store
        .claim(other, Duration::from_millis(100), true)
        .await
        .expect("claim");
    assert!(store.claim_due(10, LEASE).await.expect("due").is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let due = store.claim_due(10, LEASE).await.expect("due");
    let ids: Vec<i64> = due.iter().map(|event| event.id).collect();
    assert_eq!(ids, vec![other], "only the expired lease is due");
    assert_eq!(due[0].attempt_count, 2);
}

pub async fn concurrent_claim_due_no_overlap(context: Context) {
    let mut expected = HashSet::new();
    for number in 0..50 {
        expected.insert(insert(&context.store, "stripe", &format!("evt_due_{number}")).await);
    }
    let mut workers = Vec::new();
    for _ in 0..8 {
        let store = context.store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due(3, LEASE).await.expect("claim_due");
                if batch.is_empty() {
                    return mine;
                }
                for event in batch {
                    assert_eq!(event.status, EventStatus::Processing);
                    assert_eq!(event.attempt_count, 1);
                    mine.push(event.id);
                }
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for worker in workers {
        for id in worker.await.expect("worker") {
            total += 1;
            assert!(seen.insert(id), "row {id} was claimed twice");
        }
    }
    assert_eq!(total, 50);
    assert_eq!(seen, expected);
}

pub async fn claim_due_skips_not_due_rows(context: Context) {
    let store = &context.store;
    let first = insert(store, "stripe", "evt_order_1").await;
    let waiting = insert(store, "stripe", "evt_order_2").await;
    let third = insert(store, "stripe", "evt_order_3").await;
    claim(store, waiting).await;
    let retry = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "later".into(),
        logs: Vec::new(),
        next_retry_at: Some(Utc::now() + chrono::Duration::minutes(5)),
    };
    store.fail(waiting, &retry).await.expect("fail");
    let due_soon = insert(store, "stripe", "evt_order_4").await;
    claim(store, due_soon).await;
    let past = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "retry now".into(),
        logs: Vec::new(),
        next_retry_at: Some(Utc::now() - chrono::Duration::seconds(1)),
    };
    store.fail(due_soon, &past).await.expect("fail");

    let claimed: Vec<i64> = store
        .claim_due(2, LEASE)
        .await
        .expect("due")
        .iter()
        .map(|event| event.id)
        .collect();
    assert_eq!(claimed, vec![first, third], "oldest due rows first");
    let rest: Vec<i64> = store
        .claim_due(10, LEASE)
        .await
        .expect("due")
        .iter()
        .map(|event| event.id)
        .collect();
    assert_eq!(rest, vec![due_soon]);
}
