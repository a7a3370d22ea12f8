//! Retry and replay, end to end through the embedded workers.

use serde_json::{Value, json};

use crate::support::{HandlerMode, Options, payment_succeeded, spawn_app};

fn steps(detail: &Value) -> Vec<String> {
    detail["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|log| {
            log["processingStep"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

pub async fn dead_event_retried_completes(url: String) {
    let options = Options {
        max_attempts: 1,
        ..Options::default()
    };
    let app = spawn_app(&url, options).await;
    app.set_handler(HandlerMode::Fail);
    let id = app
        .post_event("stripe", &payment_succeeded("evt_adm_retry_1", 4200, "usd"))
        .await;
    let dead = app.wait_for_status(id, "dead").await;
    assert_eq!(
        dead["errorMessage"],
        "payload field data is invalid: test fault switched on"
    );
    assert_eq!(dead["paymentEvents"], json!([]));

    app.set_handler(HandlerMode::Normal);
    let response = app.admin("POST", "/api/webhooks/retry").await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["message"], "Retried 1 failed webhooks");
    assert_eq!(body["retryCount"], 1);
    assert_eq!(body["eventIds"], json!([id]));

    let completed = app.wait_for_status(id, "completed").await;
    assert_eq!(
        completed["attemptCount"], 1,
        "the retry resets the attempt count"
    );
    assert_eq!(completed["errorMessage"], Value::Null);
    let payments = completed["paymentEvents"].as_array().expect("payments");
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["amount"], "42.00");
    assert!(steps(&completed).contains(&"requeue".to_string()));

    let again = app.admin("POST", "/api/webhooks/retry").await.json();
    assert_eq!(again["retryCount"], 0, "a completed event is not retried");
    assert_eq!(again["message"], "Retried 0 failed webhooks");
    app.stop().await;
}

pub async fn retry_honours_limit_and_filters(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    app.set_handler(HandlerMode::Fail);
    let mut failed = Vec::new();
    for n in 1..=3 {
        let body = payment_succeeded(&format!("evt_adm_limit_{n}"), 100, "usd");
        let id = app.post_event("stripe", &body).await;
        app.wait_for_status(id, "failed").await;
        failed.push(id);
    }

    let other_provider = app
        .admin("POST", "/api/webhooks/retry?provider=paypal")
        .await
        .json();
    assert_eq!(other_provider["retryCount"], 0);
    let other_type = app
        .admin("POST", "/api/webhooks/retry?eventType=charge.refunded")
        .await
        .json();
    assert_eq!(other_type["retryCount"], 0);
    let none = app
        .admin("POST", "/api/webhooks/retry?maxRetries=0")
        .await
        .json();
    assert_eq!(none["retryCount"], 0);

    // The handler still fails, so requeued events fail again; the oldest goes first.
    let one = app
        .admin(
            "POST",
            "/api/webhooks/retry?maxRetries=1&provider=stripe&eventType=payment_intent.succeeded",
        )
        .await
        .json();
    assert_eq!(one["retryCount"], 1);
    assert_eq!(one["eventIds"], json!([failed[0]]));
    let retried = app
        .wait_for(failed[0], "a second failure", |detail| {
            detail["status"] == "failed" && steps(detail).contains(&"requeue".to_string())
        })
        .await;
    assert_eq!(retried["attemptCount"], 1);
    for id in &failed[1..] {
        let detail = app.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert!(!steps(&detail).contains(&"requeue".to_string()), "{detail}");
    }

    let capped = app
        .admin("POST", "/api/webhooks/retry?maxRetries=1000000")
        .await
        .json();
    assert_eq!(capped["retryCount"], 3);
    app.stop().await;
}

pub async fn replay_keeps_or_appends_payments(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let id = app
        .post_event(
            "stripe",
            &payment_succeeded("evt_adm_replay_1", 1999, "usd"),
        )
        .await;
    let first = app.wait_for_status(id, "completed").await;
    let first_payments = first["paymentEvents"].clone();
    assert_eq!(first_payments.as_array().map(Vec::len), Some(1));
    let first_processed = first["processedAt"].clone();

    let response = app
        .admin("POST", &format!("/api/webhooks/events/{id}/replay"))
        .await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response.json(),
        json!({"message": format!("Webhook event {id} queued for replay"), "id": id, "status": "pending"})
    );
    let replayed = app
        .wait_for(id, "completed after the replay", |detail| {
            detail["status"] == "completed" && detail["processedAt"] != first_processed
        })
        .await;
    assert!(steps(&replayed).contains(&"replay".to_string()));
    assert_eq!(
        replayed["paymentEvents"], first_payments,
        "unchanged output writes no rows"
    );

    app.set_handler(HandlerMode::Changed);
    let second_processed = replayed["processedAt"].clone();
    let response = app
        .admin("POST", &format!("/api/webhooks/events/{id}/replay"))
        .await;
    assert_eq!(response.status, 202, "{}", response.body);
    let changed = app
        .wait_for(id, "completed after the second replay", |detail| {
            detail["status"] == "completed" && detail["processedAt"] != second_processed
        })
        .await;
    let payments = changed["paymentEvents"].as_array().expect("payments");
    assert_eq!(payments.len(), 2, "{changed}");
    assert_eq!(payments[0], first_payments[0], "the old row is kept");
    assert_eq!(payments[1]["statusRaw"], "revised_by_handler_v2");
    assert_eq!(payments[1]["amount"], "19.99");
    app.stop().await;
}

pub async fn replay_rejects_missing_and_processing(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let missing = app
        .admin("POST", "/api/webhooks/events/424242/replay")
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "not_found");

    app.set_handler(HandlerMode::Fail);
    let id = app
        .post_event("stripe", &payment_succeeded("evt_adm_busy_1", 100, "usd"))
        .await;
    app.wait_for_status(id, "failed").await;
    app.hold_processing(id).await;
    let busy = app
        .admin("POST", &format!("/api/webhooks/events/{id}/replay"))
        .await;
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert_eq!(busy.json()["code"], "conflict");
    let detail = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    assert_eq!(detail["status"], "processing");
    app.stop().await;
}
