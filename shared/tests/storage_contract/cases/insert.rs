use std::sync::Arc;

use payhook::model::{EventStatus, InsertOutcome};
use payhook::storage::{EventFilter, StoreError};

use crate::support::{Context, insert, new_event};

pub async fn migrate_twice_is_noop(context: Context) {
    let id = insert(&context.store, "stripe", "evt_migrate_1").await;
    context.store.migrate().await.expect("second migrate");
    context.store.ping().await.expect("ping");
    assert_eq!(context.migration_count().await, 1);
    let detail = context.store.event_detail(id).await.expect("detail");
    assert!(detail.is_some(), "rows survive a second migrate");
}

pub async fn insert_then_duplicate(context: Context) {
    let store = &context.store;
    let mut event = new_event("stripe", "evt_dedup_1");
    event.provider_created_at = None;
    let first = store.insert_event(&event).await.expect("first insert");
    let InsertOutcome::Inserted(id) = first else {
        panic!("first insert returned {first:?}");
    };
    let mut again = event.clone();
    again.raw_payload = r#"{"id":"evt_dedup_1","changed":true}"#.to_string();
    let second = store.insert_event(&again).await.expect("second insert");
    assert_eq!(second, InsertOutcome::Duplicate(id));

    let other_provider = store
        .insert_event(&new_event("paypal", "evt_dedup_1"))
        .await
        .expect("other provider");
    assert!(matches!(other_provider, InsertOutcome::Inserted(other) if other != id));

    let stored = store.event_detail(id).await.expect("detail").expect("row");
    let row = stored.event;
    assert_eq!(
        row.raw_payload, event.raw_payload,
        "duplicate must not overwrite"
    );
    assert_eq!(row.provider, "stripe");
    assert_eq!(row.event_id, "evt_dedup_1");
    assert_eq!(row.event_type, event.event_type);
    assert_eq!(row.status, EventStatus::Pending);
    assert_eq!(row.signature, event.signature);
    assert_eq!(row.headers, event.headers);
    assert_eq!(row.source_ip, event.source_ip);
    assert_eq!(row.user_agent, event.user_agent);
    assert!(row.signature_verified);
    assert_eq!(row.signature_key_id.as_deref(), Some("primary"));
    assert_eq!(row.attempt_count, 0);
    assert_eq!(row.max_attempts, 5);
    assert_eq!(row.published_at, None);
    assert_eq!(row.locked_until, None);
    assert_eq!(row.processed_at, None);
    assert!(stored.logs.is_empty());
    assert!(stored.payment_events.is_empty());
}

pub async fn concurrent_inserts_one_winner(context: Context) {
    let event = Arc::new(new_event("stripe", "evt_race_1"));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = context.store.clone();
        let event = event.clone();
        tasks.push(tokio::spawn(
            async move { store.insert_event(&event).await },
        ));
    }
    let mut inserted = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.expect("task").expect("insert must not fail") {
            InsertOutcome::Inserted(id) => inserted.push(id),
            InsertOutcome::Duplicate(id) => duplicates.push(id),
        }
    }
    assert_eq!(inserted.len(), 1, "exactly one insert wins");
    assert_eq!(duplicates.len(), 19);
    assert!(duplicates.iter().all(|id| *id == inserted[0]));
    let page = context
        .store
        .list_events(&EventFilter::default(), 1, 100)
        .await
        .expect("list");
    assert_eq!(page.total_count, 1);
}

pub async fn concurrent_distinct_inserts_keep_ids(context: Context) {
    // Ten events are stored first, so the concurrent batch mixes new and stored pairs.
    let mut stored = Vec::new();
    for n in 0..10 {
        stored.push(insert(&context.store, "stripe", &format!("evt_mix_{n}")).await);
    }

    let mut tasks = Vec::new();
    for n in 0..100_i64 {
        let store = context.store.clone();
        let mut event = new_event("stripe", &format!("evt_mix_{n}"));
        // Rows of one batch differ in their optional values.
        event.provider_created_at = (n % 2 == 0).then(|| created_at(n));
        event.published = n % 3 == 0;
        tasks.push(tokio::spawn(async move {
            let outcome = store.insert_event(&event).await;
            (n, outcome)
        }));
    }

    let mut new_ids = Vec::new();
    for task in tasks {
        let (n, outcome) = task.await.expect("task");
        let outcome = outcome.expect("insert must not fail");
        if n < 10 {
            assert_eq!(
                outcome,
                InsertOutcome::Duplicate(stored[n as usize]),
                "evt_mix_{n}"
            );
        } else {
            assert!(
                matches!(outcome, InsertOutcome::Inserted(_)),
                "evt_mix_{n}: {outcome:?}"
            );
            new_ids.push((n, outcome.id()));
        }
        let row = context
            .store
            .event_detail(outcome.id())
            .await
            .expect("detail")
            .expect("row");
        assert_eq!(
            row.event.event_id,
            format!("evt_mix_{n}"),
            "id of evt_mix_{n}"
        );
        if n >= 10 {
            let expected = (n % 2 == 0).then(|| created_at(n));
            assert_eq!(row.event.provider_created_at, expected, "evt_mix_{n}");
            assert_eq!(row.event.published_at.is_some(), n % 3 == 0, "evt_mix_{n}");
        }
    }

    new_ids.sort_unstable_by_key(|(_, id)| *id);
    new_ids.dedup_by_key(|(_, id)| *id);
    assert_eq!(new_ids.len(), 90, "every new event has its own row");
    let page = context
        .store
        .list_events(&EventFilter::default(), 1, 10)
        .await
        .expect("list");
    assert_eq!(page.total_count, 100);
}

fn created_at(n: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_733_300_000 + n, 0).expect("valid time")
}

pub async fn identity_fields_too_long_rejected(context: Context) {
    let store = &context.store;
    let long_id = "e".repeat(256);
    let result = store.insert_event(&new_event("stripe", &long_id)).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");

    let mut event = new_event("stripe", "evt_type_long");
    event.event_type = "t".repeat(101);
    let result = store.insert_event(&event).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");

    let result = store
        .insert_event(&new_event(&"p".repeat(51), "evt_p"))
        .await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");

    let exact = "e".repeat(255);
    let id = insert(store, "stripe", &exact).await;
    let row = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(row.event.event_id, exact);

    let page = store
        .list_events(&EventFilter::default(), 1, 10)
        .await
        .expect("list");
    assert_eq!(page.total_count, 1, "rejected events leave no rows");
}

pub async fn diagnostic_fields_truncated(context: Context) {
    let mut event = new_event("stripe", "evt_long_agent");
    // 499 ASCII characters and then a two-unit emoji would cross 500 in the middle.
    event.user_agent = Some(format!("{}😀tail", "a".repeat(499)));
    event.source_ip = Some("2001:0db8:0000:0000:0000:ff00:0042:8329%eth0-very-long".into());
    let id = context
        .store
        .insert_event(&event)
        .await
        .expect("insert")
        .id();
    let row = context
        .store
        .event_detail(id)
        .await
        .expect("detail")
        .expect("row")
        .event;
    assert_eq!(row.user_agent, Some("a".repeat(499)));
    let source_ip = row.source_ip.expect("source ip kept");
    assert_eq!(source_ip.chars().count(), 45);
    assert!(event.source_ip.unwrap().starts_with(&source_ip));
}
