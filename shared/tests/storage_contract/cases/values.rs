use chrono::{DateTime, TimeZone, Utc};
use payhook::money::{Currency, Money};

use crate::support::{Context, claim, completion, micros, new_event, payment};

pub async fn large_unicode_body_round_trips(context: Context) {
    let chunk = "{\"name\":\"Zoë Ærøskøbing\",\"memo\":\"支払い 💳 ✓\",\"esc\":\"\\u00e9\\n\"},";
    let mut body = String::from("[");
    while body.len() < 300 * 1024 {
        body.push_str(chunk);
    }
    body.push_str("null]\r\n");
    let mut event = new_event("stripe", "evt_big_body");
    event.raw_payload = body.clone();
    let id = context
        .store
        .insert_event(&event)
        .await
        .expect("insert")
        .id();
    let stored = context
        .store
        .event_detail(id)
        .await
        .expect("detail")
        .expect("row")
        .event;
    assert_eq!(stored.raw_payload.len(), body.len());
    assert!(
        stored.raw_payload.as_bytes() == body.as_bytes(),
        "body changed"
    );
    let claimed = claim(&context.store, id).await;
    assert!(claimed.raw_payload == body, "claim returns the same body");
}

pub async fn amounts_stay_exact(context: Context) {
    let store = &context.store;
    let id = insert_claimed(&context, "evt_amounts").await;
    let mut no_amount = payment("pi_no_amount", 0, "USD", 2);
    no_amount.amount = None;
    let payments = vec![
        payment("pi_kwd", 5120, "KWD", 3),
        payment("pi_refund", -2000, "USD", 2),
        payment("pi_jpy", 500, "JPY", 0),
        payment("pi_large", 922_337_203_685_477_580, "BHD", 3),
        no_amount,
    ];
    store
        .complete(id, &completion(payments.clone()))
        .await
        .expect("complete");
    let detail = store.event_detail(id).await.expect("detail").expect("row");
    let amounts: Vec<Option<Money>> = detail
        .payment_events
        .iter()
        .map(|stored| stored.payment.amount)
        .collect();
    let expected: Vec<Option<Money>> = payments.iter().map(|payment| payment.amount).collect();
    assert_eq!(amounts, expected);
    let kwd = amounts[0].expect("KWD amount");
    assert_eq!(kwd.currency, Currency::parse("KWD").unwrap());
    assert_eq!(kwd.minor, 5120);
    assert_eq!(kwd.exponent, 3);

    let texts = context.stored_amounts(id).await;
    assert_eq!(
        texts,
        vec![
            Some("5.120".to_string()),
            Some("-20.00".to_string()),
            Some("500".to_string()),
            Some("922337203685477.580".to_string()),
            None,
        ]
    );

    let other = insert_claimed(&context, "evt_bad_exponent").await;
    let result = store
        .complete(other, &completion(vec![payment("pi_bad", 1, "USD", 29)]))
        .await;
    assert!(
        matches!(result, Err(payhook::storage::StoreError::Invalid(_))),
        "{result:?}"
    );
}

pub async fn timestamps_round_trip_microseconds(context: Context) {
    let store = &context.store;
    let provider_time: DateTime<Utc> = Utc
        .with_ymd_and_hms(2024, 2, 29, 23, 59, 58)
        .unwrap()
        .checked_add_signed(chrono::Duration::microseconds(123_456))
        .unwrap();
    let before = micros(Utc::now());
    let mut event = new_event("stripe", "evt_times");
    event.provider_created_at = Some(provider_time);
    let id = store.insert_event(&event).await.expect("insert").id();
    let after = Utc::now();
    claim(store, id).await;
    let mut with_time = payment("pi_times", 100, "USD", 2);
    with_time.provider_created_at = Some(provider_time);
    store
        .complete(id, &completion(vec![with_time]))
        .await
        .expect("complete");

    let detail = store.event_detail(id).await.expect("detail").expect("row");
    assert_eq!(detail.event.provider_created_at, Some(provider_time));
    assert_eq!(
        detail.payment_events[0].payment.provider_created_at,
        Some(provider_time)
    );
    let created = detail.event.created_at;
    assert!(
        created >= before && created <= after,
        "{created} outside {before}..{after}"
    );
    assert_eq!(created, micros(created), "stored to the microsecond");
    let processed = detail.event.processed_at.expect("processed");
    assert!(processed >= created);
    assert_eq!(detail.logs[0].processed_at, processed);

    let mut ancient = new_event("stripe", "evt_year_10000");
    ancient.provider_created_at = Some(Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap());
    let result = store.insert_event(&ancient).await;
    assert!(
        matches!(result, Err(payhook::storage::StoreError::Invalid(_))),
        "{result:?}"
    );
}

async fn insert_claimed(context: &Context, event_id: &str) -> i64 {
    let id = crate::support::insert(&context.store, "stripe", event_id).await;
    claim(&context.store, id).await;
    id
}
