use std::time::Duration;

use chrono::Utc;
use payhook::model::{EventStatus, StoredEvent};
use payhook::storage::{Attempt, EventFilter, Failure, StoreError};

use crate::support::{Context, claim, completion, insert, new_event};

async fn stored(context: &Context, id: i64) -> StoredEvent {
    context
        .store
        .event_detail(id)
        .await
        .expect("detail")
        .expect("row")
        .event
}

pub async fn list_filters_and_pages(context: Context) {
    let store = &context.store;
    let mut ids = Vec::new();
    for number in 0..5 {
        ids.push(insert(store, "stripe", &format!("evt_list_{number}")).await);
    }
    let mut paypal = new_event("paypal", "WH-LIST-1");
    paypal.event_type = "PAYMENT.CAPTURE.COMPLETED".into();
    let paypal_id = store.insert_event(&paypal).await.expect("insert").id();
    claim(store, ids[1]).await;

    let all = store
        .list_events(&EventFilter::default(), 1, 100)
        .await
        .expect("list");
    assert_eq!(all.total_count, 6);
    let listed: Vec<i64> = all.events.iter().map(|event| event.id).collect();
    let mut newest_first = all.events.clone();
    newest_first.sort_by_key(|event| std::cmp::Reverse((event.created_at, event.id)));
    let expected: Vec<i64> = newest_first.iter().map(|event| event.id).collect();
    assert_eq!(listed, expected, "newest first");
    assert_eq!(listed[0], paypal_id);

    let stripe = EventFilter {
        provider: Some("stripe".into()),
        ..EventFilter::default()
    };
    let page_two = store.list_events(&stripe, 2, 2).await.expect("list");
    assert_eq!(page_two.total_count, 5);
    let page_ids: Vec<i64> = page_two.events.iter().map(|event| event.id).collect();
    assert_eq!(page_ids, vec![ids[2], ids[1]]);
    let last_page = store.list_events(&stripe, 3, 2).await.expect("list");
    assert_eq!(last_page.events.len(), 1);
    let beyond = store.list_events(&stripe, 9, 2).await.expect("list");
    assert!(beyond.events.is_empty());
    assert_eq!(beyond.total_count, 5);

    let processing = EventFilter {
        statuses: vec![EventStatus::Processing],
        ..EventFilter::default()
    };
    let page = store.list_events(&processing, 1, 10).await.expect("list");
    assert_eq!(page.total_count, 1);
    assert_eq!(page.events[0].id, ids[1]);

    let by_type = EventFilter {
        event_type: Some("PAYMENT.CAPTURE.COMPLETED".into()),
        statuses: vec![EventStatus::Pending, EventStatus::Processing],
        ..EventFilter::default()
    };
    let page = store.list_events(&by_type, 1, 10).await.expect("list");
    assert_eq!(page.total_count, 1);
    assert_eq!(page.events[0].id, paypal_id);

    let from = stored(&context, ids[1]).await.created_at;
    let to = stored(&context, ids[3]).await.created_at;
    let window = EventFilter {
        from: Some(from),
        to: Some(to),
        ..EventFilter::default()
    };
    let page = store.list_events(&window, 1, 10).await.expect("list");
    let window_ids: Vec<i64> = page.events.iter().map(|event| event.id).collect();
    assert_eq!(
        window_ids,
        vec![ids[2], ids[1]],
        "from inclusive, to exclusive"
    );

    for (page, size) in [(0, 10), (1, 0), (1, 1001)] {
        let result = store.list_events(&EventFilter::default(), page, size).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{page}/{size}"
        );
    }
}

pub async fn statistics_count_and_durations(context: Context) {
    let store = &context.store;
    let mut completed = Vec::new();
    for number in 0..4 {
        let id = insert(store, "stripe", &format!("evt_stats_{number}")).await;
        tokio::time::sleep(Duration::from_millis(5 * (number + 1))).await;
        claim(store, id).await;
        store
            .complete(id, &completion(Vec::new()))
            .await
            .expect("complete");
        completed.push(id);
    }
    let failed = insert(store, "stripe", "evt_stats_failed").await;
    claim(store, failed).await;
    let retry = Failure {
        attempt: Attempt::Claimed(1),
        error_message: "later".into(),
        logs: Vec::new(),
        next_retry_at: Some(Utc::now() + chrono::Duration::minutes(1)),
    };
    store.fail(failed, &retry).await.expect("fail");
    let dead = insert(store, "paypal", "WH-STATS-DEAD").await;
    claim(store, dead).await;
    let give_up = Failure {
        next_retry_at: None,
        ..retry.clone()
    };
    store.fail(dead, &give_up).await.expect("fail");
    let processing = insert(store, "paypal", "WH-STATS-BUSY").await;
    claim(store, processing).await;
    let mut refund = new_event("paypal", "WH-STATS-REFUND");
    refund.event_type = "PAYMENT.CAPTURE.REFUNDED".into();
    store.insert_event(&refund).await.expect("insert");

    let statistics = store
        .statistics(&EventFilter {
            statuses: vec![EventStatus::Dead],
            ..EventFilter::default()
        })
        .await
        .expect("statistics");
    assert_eq!(statistics.total, 8, "statuses in the filter are ignored");
    assert_eq!(statistics.completed, 4);
    assert_eq!(statistics.failed, 1);
    assert_eq!(statistics.dead, 1);
    assert_eq!(statistics.processing, 1);
    assert_eq!(statistics.pending, 1);
    assert_eq!(
        statistics.by_provider,
        vec![("stripe".to_string(), 5), ("paypal".to_string(), 3)]
    );
    assert_eq!(
        statistics.by_type,
        vec![
            ("payment_intent.succeeded".to_string(), 7),
            ("PAYMENT.CAPTURE.REFUNDED".to_string(), 1),
        ]
    );

    let mut durations = Vec::new();
    for id in &completed {
        let event = stored(&context, *id).await;
        let elapsed = event.processed_at.expect("processed") - event.created_at;
        durations.push(elapsed.num_microseconds().expect("micros") as f64 / 1000.0);
    }
    durations.sort_by(f64::total_cmp);
    let mean = durations.iter().sum::<f64>() / durations.len() as f64;
    // percentile_cont(0.95) over 4 values: rank 2.85 between the 3rd and 4th value.
    let p95 = durations[2] + (durations[3] - durations[2]) * 0.85;
    let average = statistics.average_processing_ms.expect("average");
    let percentile = statistics.p95_processing_ms.expect("p95");
    assert!((average - mean).abs() < 1e-6, "{average} != {mean}");
    assert!((percentile - p95).abs() < 1e-6, "{percentile} != {p95}");
    assert!(
        durations[0] >= 5.0,
        "each run took at least 5 ms: {durations:?}"
    );

    let paypal = store
        .statistics(&EventFilter {
            provider: Some("paypal".into()),
            ..EventFilter::default()
        })
        .await
        .expect("statistics");
    assert_eq!(paypal.total, 3);
    assert_eq!(paypal.completed, 0);
    assert_eq!(paypal.average_processing_ms, None);
    assert_eq!(paypal.p95_processing_ms, None);

    let empty = store
        .statistics(&EventFilter {
            from: Some(Utc::now() + chrono::Duration::days(1)),
            ..EventFilter::default()
        })
        .await
        .expect("statistics");
    assert_eq!(empty, payhook::storage::Statistics::default());
}

pub async fn unpublished_until_marked(context: Context) {
    let store = &context.store;
    let before = Utc::now() - chrono::Duration::seconds(1);
    let first = insert(store, "stripe", "evt_pub_1").await;
    let second = insert(store, "stripe", "evt_pub_2").await;
    let third = insert(store, "stripe", "evt_pub_3").await;
    let claimed = insert(store, "stripe", "evt_pub_4").await;
    claim(store, claimed).await;
    let cutoff = Utc::now() + chrono::Duration::seconds(1);

    let ids = store.unpublished(cutoff, 10).await.expect("unpublished");
    assert_eq!(
        ids,
        vec![first, second, third],
        "only pending rows, oldest first"
    );
    assert!(
        store
            .unpublished(before, 10)
            .await
            .expect("unpublished")
            .is_empty()
    );
    let limited = store.unpublished(cutoff, 2).await.expect("unpublished");
    assert_eq!(limited, vec![first, second]);

    store.mark_published(second).await.expect("mark");
    let ids = store.unpublished(cutoff, 10).await.expect("unpublished");
    assert_eq!(ids, vec![first, third]);
    let published = stored(&context, second).await.published_at.expect("time");
    assert!(published >= before);

    let missing = store.mark_published(third + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
