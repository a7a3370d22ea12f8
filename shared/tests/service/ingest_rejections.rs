//! Requests that must be rejected, with the right status and code, and stored nowhere.

use payhook::storage::EventFilter;

use crate::helpers::{STRIPE_SECRET, TestApp, payment_intent_succeeded, spawn_app, stripe_header};

async fn stored_rows(app: &TestApp) -> i64 {
    app.store
        .list_events(&EventFilter::default(), 1, 10)
        .await
        .unwrap()
        .total_count
}

#[tokio::test]
async fn signature_failures_get_400_and_store_nothing() {
    let app = spawn_app(&[]).await;
    let body = payment_intent_succeeded("evt_svc_reject_01", 2000, "usd");
    let now = chrono::Utc::now().timestamp();
    let valid = stripe_header(STRIPE_SECRET, now, body.as_bytes());
    let stale = stripe_header(STRIPE_SECRET, now - 301, body.as_bytes());
    let wrong_secret = stripe_header("whsec_someone_else", now, body.as_bytes());
    let v0_only = valid.replace("v1=", "v0=");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 6] = [
        ("missing header", vec![], "missing_signature_header"),
        (
            "malformed header",
            vec![("stripe-signature", "garbage")],
            "malformed_signature_header",
        ),
        (
            "wrong secret",
            vec![("stripe-signature", &wrong_secret)],
            "invalid_signature",
        ),
        (
            "stale timestamp",
            vec![("stripe-signature", &stale)],
            "timestamp_too_old",
        ),
        (
            "only v0",
            vec![("stripe-signature", &v0_only)],
            "no_supported_signature",
        ),
        (
            "tampered body",
            vec![("stripe-signature", &valid)],
            "invalid_signature",
        ),
    ];

    for (name, headers, code) in cases {
        let sent = if name == "tampered body" {
            body.replace("2000", "2001")
        } else {
            body.clone()
        };
        let response = app
            .post_public("/api/webhooks/stripe", &headers, sent.as_bytes())
            .await;
        assert_eq!(response.status, 400, "{name}: {}", response.body);
        assert_eq!(response.json()["code"], code, "{name}");
        assert!(response.json()["detail"].is_string(), "{name}");
    }

    assert_eq!(stored_rows(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_provider_and_wrong_method() {
    let app = spawn_app(&[]).await;

    let unknown = app.post_public("/api/webhooks/nosuch", &[], b"{}").await;
    let traversal = app
        .post_public("/api/webhooks/..%2fadmin", &[], b"{}")
        .await;
    let get = app
        .request("GET", app.public, "/api/webhooks/stripe", &[], b"")
        .await;

    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(traversal.status, 404, "{}", traversal.body);
    assert_eq!(get.status, 405, "{}", get.body);
    assert_eq!(get.headers.get("allow").unwrap(), "POST");
    app.stop().await;
}

#[tokio::test]
async fn non_event_body_gets_400() {
    let app = spawn_app(&[]).await;
    let now = chrono::Utc::now().timestamp();
    let cases: [(&str, &[u8]); 3] = [
        ("not json", b"this is not json"),
        ("no id", br#"{"type":"payment_intent.succeeded"}"#),
        ("invalid utf-8", b"{\"id\":\"evt_\xff\",\"type\":\"x\"}"),
    ];

    for (name, body) in cases {
        let header = stripe_header(STRIPE_SECRET, now, body);
        let response = app
            .post_public(
                "/api/webhooks/stripe",
                &[("stripe-signature", &header)],
                body,
            )
            .await;
        assert_eq!(response.status, 400, "{name}: {}", response.body);
    }

    assert_eq!(stored_rows(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let app = spawn_app(&["--max-body-bytes", "1024"]).await;
    let body = vec![b'x'; 4096];

    let response = app.post_public("/api/webhooks/stripe", &[], &body).await;

    assert_eq!(response.status, 413, "{}", response.body);
    assert_eq!(response.json()["code"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn database_failure_answers_503_without_a_row() {
    let app = spawn_app(&[]).await;
    let path = app.database_url.trim_start_matches("sqlite://").to_string();
    // Another connection renames the table away, so the service's insert fails.
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch("ALTER TABLE webhook_events RENAME TO webhook_events_away;")
        .unwrap();
    let body = payment_intent_succeeded("evt_svc_dbdown_01", 2000, "usd");

    let response = app.post_stripe(&body).await;

    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(response.json()["code"], "unavailable");
    assert!(response.headers.get("retry-after").is_some());
    connection
        .execute_batch("ALTER TABLE webhook_events_away RENAME TO webhook_events;")
        .unwrap();
    assert_eq!(stored_rows(&app).await, 0);
    let retried = app.post_stripe(&body).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    app.stop().await;
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app(&[]).await;

    let live = app.get_admin("/health/live").await;
    let ready = app.get_admin("/health/ready").await;
    let metrics = app.get_admin("/metrics").await;

    assert_eq!(live.status, 200);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("payhook_"), "{}", metrics.body);
    app.stop().await;
}

#[tokio::test]
async fn admin_token_is_enforced() {
    let app = spawn_app(&["--admin-token", "s3cret-token"]).await;

    let without = app.get_admin("/api/webhooks/events/1").await;
    let wrong = app
        .request(
            "GET",
            app.admin,
            "/api/webhooks/events/1",
            &[("authorization", "Bearer nope")],
            b"",
        )
        .await;
    let right = app
        .request(
            "GET",
            app.admin,
            "/api/webhooks/events/1",
            &[("authorization", "Bearer s3cret-token")],
            b"",
        )
        .await;

    assert_eq!(without.status, 401);
    assert_eq!(wrong.status, 401);
    assert_eq!(right.status, 404, "{}", right.body);
    app.stop().await;
}
