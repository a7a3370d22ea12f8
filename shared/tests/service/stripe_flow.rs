//! A signed Stripe event travels from the public listener to completed payment rows.

use std::collections::HashSet;

use crate::helpers::{payment_intent_succeeded, spawn_app};

#[tokio::test]
async fn signed_event_completes_with_exact_payment_row() {
    let app = spawn_app(&[]).await;
    let body = payment_intent_succeeded("evt_svc_flow_0001", 2000, "usd");

    let response = app.post_stripe(&body).await;

    assert_eq!(response.status, 200, "{}", response.body);
    let json = response.json();
    assert_eq!(json["status"], "accepted");
    let id = json["id"].as_i64().expect("row id");
    let detail = app.wait_for_status(id, "completed").await;
    assert_eq!(detail["eventId"], "evt_svc_flow_0001");
    assert_eq!(detail["provider"], "stripe");
    assert_eq!(detail["eventType"], "payment_intent.succeeded");
    assert_eq!(detail["attemptCount"], 1);
    assert!(detail["processedAt"].is_string(), "{detail}");
    let payments = detail["paymentEvents"].as_array().expect("payment events");
    assert_eq!(payments.len(), 1, "{detail}");
    assert_eq!(payments[0]["amount"], "20.00");
    assert_eq!(payments[0]["amountMinor"], 2000);
    assert_eq!(payments[0]["currency"], "USD");
    assert_eq!(payments[0]["paymentId"], "pi_svc_evt_svc_flow_0001");
    assert_eq!(payments[0]["transactionId"], "ch_svc_evt_svc_flow_0001");
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(payments[0]["orderId"], "ORD-SVC-1");
    let logs = detail["logs"].as_array().expect("logs");
    assert!(
        logs.iter()
            .any(|log| log["processingStep"] == "handler" && log["status"] == "success"),
        "{detail}"
    );
    app.stop().await;
}

#[tokio::test]
async fn three_decimal_and_zero_decimal_amounts_are_exact() {
    let app = spawn_app(&[]).await;

    let kwd = app
        .post_stripe(&payment_intent_succeeded("evt_svc_kwd_0001", 5120, "kwd"))
        .await
        .json();
    let jpy = app
        .post_stripe(&payment_intent_succeeded("evt_svc_jpy_0001", 1500, "jpy"))
        .await
        .json();

    let kwd = app
        .wait_for_status(kwd["id"].as_i64().unwrap(), "completed")
        .await;
    let jpy = app
        .wait_for_status(jpy["id"].as_i64().unwrap(), "completed")
        .await;
    assert_eq!(kwd["paymentEvents"][0]["amount"], "5.120");
    assert_eq!(kwd["paymentEvents"][0]["amountMinor"], 5120);
    assert_eq!(kwd["paymentEvents"][0]["currency"], "KWD");
    assert_eq!(jpy["paymentEvents"][0]["amount"], "1500");
    assert_eq!(jpy["paymentEvents"][0]["amountMinor"], 1500);
    app.stop().await;
}

#[tokio::test]
async fn raw_body_is_stored_byte_for_byte() {
    let app = spawn_app(&[]).await;
    // Pretty-printed, non-ASCII, CRLF and a trailing newline: all must survive unchanged.
    let body = "{\r\n  \"id\": \"evt_svc_bytes_0001\",\r\n  \"type\": \"customer.created\",\r\n  \"created\": 1764000000,\r\n  \"data\": {\"object\": {\"name\": \"Zoë Ångström – 東京\"}}\r\n}\n";

    let response = app.post_stripe(body).await;

    assert_eq!(response.status, 200, "{}", response.body);
    let id = response.json()["id"].as_i64().unwrap();
    let detail = app
        .store
        .event_detail(id)
        .await
        .unwrap()
        .expect("stored row");
    assert_eq!(detail.event.raw_payload.as_bytes(), body.as_bytes());
    app.stop().await;
}

#[tokio::test]
async fn unknown_event_type_completes_as_ignored() {
    let app = spawn_app(&[]).await;
    let body = r#"{"id":"evt_svc_ignored_01","type":"customer.created","created":1764000000,"data":{"object":{"id":"cus_x"}}}"#;

    let id = app.post_stripe(body).await.json()["id"].as_i64().unwrap();

    let detail = app.wait_for_status(id, "completed").await;
    assert_eq!(detail["paymentEvents"].as_array().unwrap().len(), 0);
    let logs = detail["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|log| log["status"] == "ignored"),
        "{detail}"
    );
    app.stop().await;
}

#[tokio::test]
async fn duplicate_delivery_is_not_processed_twice() {
    let app = spawn_app(&[]).await;
    let body = payment_intent_succeeded("evt_svc_dup_0001", 990, "eur");

    let first = app.post_stripe(&body).await.json();
    let id = first["id"].as_i64().unwrap();
    app.wait_for_status(id, "completed").await;
    let second = app.post_stripe(&body).await;

    assert_eq!(first["status"], "accepted");
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["status"], "duplicate");
    assert_eq!(second.json()["id"], id);
    let detail = app.wait_for_status(id, "completed").await;
    assert_eq!(detail["paymentEvents"].as_array().unwrap().len(), 1);
    assert_eq!(detail["attemptCount"], 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_store_one_row() {
    let app = std::sync::Arc::new(spawn_app(&[]).await);
    let body = payment_intent_succeeded("evt_svc_race_0001", 1234, "usd");

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move { app.post_stripe(&body).await }));
    }
    let mut statuses = Vec::new();
    let mut ids = HashSet::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        let json = response.json();
        statuses.push(json["status"].as_str().unwrap().to_string());
        ids.insert(json["id"].as_i64().unwrap());
    }

    assert_eq!(
        statuses.iter().filter(|s| *s == "accepted").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "duplicate").count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(ids.len(), 1);
    let id = *ids.iter().next().unwrap();
    let detail = app.wait_for_status(id, "completed").await;
    assert_eq!(detail["paymentEvents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn failing_handler_retries_then_dies() {
    let app = spawn_app(&["--max-attempts", "2", "--retry-base-ms", "50"]).await;
    // An unknown currency fails extraction on every attempt.
    let body = payment_intent_succeeded("evt_svc_dead_0001", 100, "zzq");

    let id = app.post_stripe(&body).await.json()["id"].as_i64().unwrap();

    let detail = app.wait_for_status(id, "dead").await;
    assert_eq!(detail["attemptCount"], 2);
    assert!(
        detail["errorMessage"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("currency"),
        "{detail}"
    );
    let failed_logs = detail["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|log| log["status"] == "failed")
        .count();
    assert_eq!(failed_logs, 2, "{detail}");
    assert_eq!(detail["paymentEvents"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn rotated_secrets_are_all_accepted() {
    let app = spawn_app(&[
        "--stripe-secrets",
        "whsec_payhook_service_test,whsec_rotated_new",
    ])
    .await;
    let body = payment_intent_succeeded("evt_svc_rotate_01", 500, "gbp");
    let header = crate::helpers::stripe_header(
        "whsec_rotated_new",
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );

    let response = app
        .post_public(
            "/api/webhooks/stripe",
            &[("Stripe-Signature", &header)],
            body.as_bytes(),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.body);
    app.stop().await;
}
