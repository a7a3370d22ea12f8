use std::time::Duration;

use payhook::storage::{Attempt, ClaimOutcome, Failure, StoreError};

use crate::support::{Context, claim, completion, insert, log, new_event};

/// Shortest lease a store accepts in practice; expires before the next statement.
const EXPIRED: Duration = Duration::from_millis(1);

pub async fn stale_claim_cannot_complete(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_fence_1").await;
    let first = match store.claim(id, EXPIRED, false).await.expect("claim") {
        ClaimOutcome::Claimed(event) => event,
        other => panic!("expected a claim, got {other:?}"),
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = claim(store, id).await;
    assert_eq!(second.attempt_count, first.attempt_count + 1);

    let mut stale = completion(Vec::new());
    stale.attempt = Attempt::Claimed(first.attempt_count);
    let outcome = store.complete(id, &stale).await;
    assert!(
        matches!(outcome, Err(StoreError::Conflict { .. })),
        "{outcome:?}"
    );
    let stale_failure = Failure {
        attempt: Attempt::Claimed(first.attempt_count),
        error_message: "late".into(),
        logs: vec![log("handler", "failed")],
        next_retry_at: None,
    };
    let outcome = store.fail(id, &stale_failure).await;
    assert!(
        matches!(outcome, Err(StoreError::Conflict { .. })),
        "{outcome:?}"
    );

    let mut current = completion(Vec::new());
    current.attempt = Attempt::Claimed(second.attempt_count);
    store
        .complete(id, &current)
        .await
        .expect("current claim completes");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(
        detail.logs.len(),
        2,
        "only the current claim's logs are written"
    );
}

pub async fn republish_picks_unpublished_and_stale(context: Context) {
    let store = &context.store;
    let mut published = new_event("stripe", "evt_rep_published");
    published.published = true;
    let published = store.insert_event(&published).await.expect("insert").id();
    let unpublished = insert(store, "stripe", "evt_rep_unpublished").await;
    let mut failed_publish = new_event("stripe", "evt_rep_failed_publish");
    failed_publish.published = true;
    let failed_publish = store
        .insert_event(&failed_publish)
        .await
        .expect("insert")
        .id();
    store
        .mark_unpublished(failed_publish)
        .await
        .expect("mark unpublished");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let long = Duration::from_secs(3600);
    let picked = store
        .claim_for_republish(Duration::from_millis(1), long, 10)
        .await
        .expect("republish");
    let ids: Vec<i64> = picked.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![unpublished, failed_publish]);
    assert_eq!(picked[0].provider, "stripe");
    assert_eq!(picked[0].attempt_count, 0);

    let again = store
        .claim_for_republish(Duration::from_millis(1), long, 10)
        .await
        .expect("republish");
    assert!(
        again.is_empty(),
        "stamped rows are not picked twice: {again:?}"
    );

    tokio::time::sleep(Duration::from_millis(20)).await;
    let stale = store
        .claim_for_republish(Duration::from_millis(1), Duration::from_millis(5), 10)
        .await
        .expect("republish");
    let stale_ids: Vec<i64> = stale.iter().map(|c| c.id).collect();
    assert_eq!(stale_ids, vec![published, unpublished, failed_publish]);

    let missing = store.mark_unpublished(failed_publish + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub async fn republish_skips_leased_and_future_retries(context: Context) {
    let store = &context.store;
    let mut leased = new_event("stripe", "evt_rep_leased");
    leased.published = true;
    let leased = store.insert_event(&leased).await.expect("insert").id();
    claim(store, leased).await;
    let mut waiting = new_event("stripe", "evt_rep_waiting");
    waiting.published = true;
    let waiting = store.insert_event(&waiting).await.expect("insert").id();
    claim(store, waiting).await;
    let failure = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "retry later".into(),
        logs: Vec::new(),
        next_retry_at: Some(chrono::Utc::now() + chrono::Duration::minutes(30)),
    };
    store.fail(waiting, &failure).await.expect("fail");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let picked = store
        .claim_for_republish(Duration::from_millis(1), Duration::from_millis(5), 10)
        .await
        .expect("republish");

    assert!(picked.is_empty(), "{picked:?}");
}
