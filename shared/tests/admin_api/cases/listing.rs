//! The event list: paging, filters, date bounds, and the event detail.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::{
    HandlerMode, Options, SECOND_PROVIDER, customer_created, encode, payment_succeeded, spawn_app,
};

fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|event| event["id"].as_i64().expect("id"))
        .collect()
}

pub async fn paging_math_and_size_cap(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let mut posted = Vec::new();
    for n in 0..5 {
        let id = app
            .post_event("stripe", &customer_created(&format!("evt_adm_page_{n}")))
            .await;
        posted.push(id);
    }
    for id in &posted {
        app.wait_for_status(*id, "completed").await;
    }

    let mut seen = Vec::new();
    for page in 1..=3 {
        let body = app
            .get_json(&format!("/api/webhooks/events?page={page}&pageSize=2"))
            .await;
        assert_eq!(body["totalCount"], 5);
        assert_eq!(body["totalPages"], 3);
        assert_eq!(body["page"], page);
        assert_eq!(body["pageSize"], 2);
        let expected_len = if page == 3 { 1 } else { 2 };
        assert_eq!(ids(&body).len(), expected_len, "page {page}: {body}");
        seen.extend(ids(&body));
    }
    let mut newest_first = posted.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "pages are newest first without overlap");

    let beyond = app.get_json("/api/webhooks/events?page=4&pageSize=2").await;
    assert!(ids(&beyond).is_empty());
    assert_eq!(beyond["totalCount"], 5);
    assert_eq!(beyond["totalPages"], 3);

    let default = app.get_json("/api/webhooks/events").await;
    assert_eq!(default["page"], 1);
    assert_eq!(default["pageSize"], 20);
    assert_eq!(default["totalPages"], 1);
    let capped = app.get_json("/api/webhooks/events?pageSize=5000").await;
    assert_eq!(capped["pageSize"], 200);
    assert_eq!(ids(&capped).len(), 5);
    let empty = app.get_json("/api/webhooks/events?provider=nobody").await;
    assert_eq!(empty["totalCount"], 0);
    assert_eq!(empty["totalPages"], 0);

    let item = &default["events"][0];
    for field in [
        "id",
        "eventId",
        "provider",
        "eventType",
        "status",
        "createdAt",
        "processedAt",
    ] {
        assert!(item.get(field).is_some(), "list item lacks {field}: {item}");
    }
    assert!(item.get("rawPayload").is_none(), "{item}");
    app.stop().await;
}

pub async fn date_bounds_are_inclusive(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let id = app
        .post_event("stripe", &customer_created("evt_adm_dates_1"))
        .await;
    let detail = app.wait_for_status(id, "completed").await;
    let created_text = detail["createdAt"].as_str().expect("createdAt").to_string();
    let created: chrono::DateTime<chrono::Utc> = created_text.parse().expect("RFC 3339");
    let micro = chrono::Duration::microseconds(1);
    let rfc = |time: chrono::DateTime<chrono::Utc>| {
        encode(&time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    let today = created.date_naive();
    let yesterday = today.pred_opt().unwrap();
    let tomorrow = today.succ_opt().unwrap();

    let cases = [
        (format!("fromDate={}", encode(&created_text)), 1),
        (format!("toDate={}", encode(&created_text)), 1),
        (format!("fromDate={}", rfc(created + micro)), 0),
        (format!("toDate={}", rfc(created - micro)), 0),
        (format!("fromDate={today}&toDate={today}"), 1),
        (format!("toDate={yesterday}"), 0),
        (format!("fromDate={tomorrow}"), 0),
        (format!("fromDate={yesterday}&toDate={tomorrow}"), 1),
    ];
    for (query, expected) in cases {
        let body = app.get_json(&format!("/api/webhooks/events?{query}")).await;
        assert_eq!(body["totalCount"], expected, "{query}");
        let statistics = app
            .get_json(&format!("/api/webhooks/statistics?{query}"))
            .await;
        assert_eq!(statistics["totalEvents"], expected, "statistics {query}");
    }
    app.stop().await;
}

pub async fn filters_select_matching_events(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let paid = app
        .post_event("stripe", &payment_succeeded("evt_adm_filter_1", 700, "eur"))
        .await;
    let customer = app
        .post_event("stripe", &customer_created("evt_adm_filter_2"))
        .await;
    let second = app
        .post_event(SECOND_PROVIDER, &customer_created("evt_adm_filter_3"))
        .await;
    for id in [paid, customer, second] {
        app.wait_for_status(id, "completed").await;
    }
    app.set_handler(HandlerMode::Fail);
    let failed = app
        .post_event("stripe", &payment_succeeded("evt_adm_filter_4", 900, "eur"))
        .await;
    app.wait_for_status(failed, "failed").await;

    let cases: [(&str, Vec<i64>); 7] = [
        ("provider=stripe", vec![failed, customer, paid]),
        (
            &format!("provider={}", encode(SECOND_PROVIDER)),
            vec![second],
        ),
        ("eventType=customer.created", vec![second, customer]),
        ("status=failed", vec![failed]),
        ("status=completed", vec![second, customer, paid]),
        ("status=failed,dead,pending", vec![failed]),
        (
            "provider=stripe&status=completed&eventType=payment_intent.succeeded",
            vec![paid],
        ),
    ];
    for (query, expected) in cases {
        let body = app.get_json(&format!("/api/webhooks/events?{query}")).await;
        assert_eq!(ids(&body), expected, "{query}");
        assert_eq!(body["totalCount"], expected.len(), "{query}");
    }
    let all: HashSet<i64> = ids(&app.get_json("/api/webhooks/events").await)
        .into_iter()
        .collect();
    assert_eq!(all, HashSet::from([paid, customer, second, failed]));
    app.stop().await;
}

pub async fn payload_only_on_request(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let body = payment_succeeded("evt_adm_payload_1", 5120, "kwd");
    let id = app.post_event("stripe", &body).await;
    app.wait_for_status(id, "completed").await;

    let plain = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    assert!(plain.get("rawPayload").is_none(), "{plain}");
    let payments = plain["paymentEvents"].as_array().expect("payment events");
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["amount"], "5.120");
    assert_eq!(payments[0]["amountMinor"], 5120);
    assert_eq!(payments[0]["currency"], "KWD");
    assert!(
        plain["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .any(|log| log["processingStep"] == "handler")
    );

    let with_payload = app
        .get_json(&format!("/api/webhooks/events/{id}?include=payload"))
        .await;
    assert_eq!(with_payload["rawPayload"], body.as_str());
    assert_eq!(with_payload["id"], id);
    let missing = app.admin("GET", "/api/webhooks/events/999999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "not_found");
    app.stop().await;
}
