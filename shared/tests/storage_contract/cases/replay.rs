//! Completing a replayed event writes only payment events that differ from stored ones.

use chrono::TimeZone;
use payhook::model::EventStatus;
use payhook::storage::Attempt;

use crate::support::{Context, claim, completion, insert, payment};

pub async fn replay_keeps_identical_payment_rows(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_replay_same_1").await;
    let mut dated = payment("pi_replay_same_1", 2000, "USD", 2);
    dated.provider_created_at = Some(
        chrono::Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 30, 5)
            .single()
            .expect("valid time"),
    );
    let output = vec![dated, payment("pi_replay_same_2", 5120, "KWD", 3)];
    claim(store, id).await;
    store
        .complete(id, &completion(output.clone()))
        .await
        .expect("first completion");
    let first = store.event_detail(id).await.expect("detail").expect("row");

    store.replay(id).await.expect("replay");
    let reclaimed = claim(store, id).await;
    let mut second_run = completion(output.clone());
    second_run.attempt = Attempt::Claimed(reclaimed.attempt_count);
    store
        .complete(id, &second_run)
        .await
        .expect("replayed completion");

    let after = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(after.event.status, EventStatus::Completed);
    assert_eq!(after.payment_events, first.payment_events);
    assert!(
        after.logs.len() > first.logs.len(),
        "the replayed run still writes its logs"
    );
}

pub async fn replay_appends_changed_payment_rows(context: Context) {
    let store = &context.store;
    let id = insert(store, "stripe", "evt_replay_changed_1").await;
    let original = payment("pi_replay_changed_1", 2000, "USD", 2);
    claim(store, id).await;
    store
        .complete(id, &completion(vec![original.clone()]))
        .await
        .expect("first completion");
    let first = store.event_detail(id).await.expect("detail").expect("row");

    // One field differs per row, so each must count as new output.
    let mut other_status = original.clone();
    other_status.status_raw = Some("requires_capture".to_string());
    let mut other_metadata = original.clone();
    other_metadata.metadata = Some(r#"{"fee":"0.31"}"#.to_string());
    let mut other_amount = original.clone();
    other_amount.amount = payment("pi_replay_changed_1", 2001, "USD", 2).amount;
    store.replay(id).await.expect("replay");
    let reclaimed = claim(store, id).await;
    let mut second_run = completion(vec![
        original.clone(),
        other_status.clone(),
        other_metadata.clone(),
        other_amount.clone(),
    ]);
    second_run.attempt = Attempt::Claimed(reclaimed.attempt_count);
    store
        .complete(id, &second_run)
        .await
        .expect("replayed completion");

    let after = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(after.payment_events.len(), 4, "{:?}", after.payment_events);
    assert_eq!(
        after.payment_events[0], first.payment_events[0],
        "the old row is kept unchanged"
    );
    let appended: Vec<_> = after.payment_events[1..]
        .iter()
        .map(|row| row.payment.clone())
        .collect();
    assert_eq!(appended, [other_status, other_metadata, other_amount]);
    assert!(
        after.payment_events[1..]
            .iter()
            .all(|row| row.id > first.payment_events[0].id)
    );
}
