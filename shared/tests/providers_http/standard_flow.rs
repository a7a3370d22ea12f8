//! A Standard Webhooks route with a payment mapping and two secrets, one inline and one
//! from a secrets file.

use payhook::providers::registry::BuildOptions;

use crate::signing::{base64, standard_signature};
use crate::support::{TestApp, now_seconds, single_payment, spawn};

const ROUTE: &str = "resend";

struct Secrets {
    old: String,
    new: String,
}

fn secrets() -> Secrets {
    Secrets {
        old: format!("whsec_{}", base64(b"payhook standard old key 01")),
        new: format!("whsec_{}", base64(b"payhook standard new key 02")),
    }
}

async fn standard_app(dir: &std::path::Path) -> TestApp {
    let secrets = secrets();
    std::fs::write(dir.join("standard-secrets"), format!("{}\n", secrets.new)).unwrap();
    let toml_text = format!(
        r#"
[[standard_webhooks]]
name = "{ROUTE}"
secrets = ["{old}"]
secrets_file = "standard-secrets"
tolerance_seconds = 300

[standard_webhooks.payment]
payment_id = "/data/payment_id"
amount = "/data/amount"
currency = "/data/currency"
status = "/data/status"
customer_id = "/data/customer"

[standard_webhooks.payment.event_statuses]
"payment.succeeded" = "succeeded"
"#,
        old = secrets.old
    );
    spawn(dir, &toml_text, BuildOptions::default()).await
}

fn body(payment_id: &str, amount: i64) -> String {
    serde_json::json!({
        "type": "payment.succeeded",
        "timestamp": "2025-03-04T05:06:07Z",
        "data": {
            "payment_id": payment_id,
            "amount": amount,
            "currency": "EUR",
            "status": "paid",
            "customer": "cus_std_0007"
        }
    })
    .to_string()
}

fn headers(id: &str, timestamp: i64, signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

#[tokio::test]
async fn standard_delivery_stores_exact_payment() {
    let dir = tempfile::tempdir().unwrap();
    let app = standard_app(dir.path()).await;
    let body = body("pay_std_0001", 4599);
    let now = now_seconds();
    let signature = standard_signature(&secrets().new, "msg_std_0001", now, &body);

    let response = app
        .post(ROUTE, &headers("msg_std_0001", now, signature), &body)
        .await;

    let detail = app
        .wait_for_status(response.accepted_id(), "completed")
        .await;
    assert_eq!(detail["provider"], ROUTE);
    assert_eq!(detail["eventId"], "msg_std_0001");
    assert_eq!(detail["eventType"], "payment.succeeded");
    let payment = single_payment(&detail);
    assert_eq!(payment["paymentId"], "pay_std_0001");
    assert_eq!(payment["amount"], "45.99");
    assert_eq!(payment["amountMinor"], 4599);
    assert_eq!(payment["currency"], "EUR");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["statusRaw"], "paid");
    assert_eq!(payment["customerId"], "cus_std_0007");
    app.stop().await;
}

#[tokio::test]
async fn standard_rotation_accepts_both_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let app = standard_app(dir.path()).await;
    let secrets = secrets();
    let now = now_seconds();
    let first = body("pay_std_0002", 100);
    let second = body("pay_std_0003", 250);
    let old_signature = standard_signature(&secrets.old, "msg_std_0002", now, &first);
    // During rotation the sender signs with every active secret, space-separated.
    let both = format!(
        "{} {}",
        standard_signature("whsec_c29tZW9uZSBlbHNl", "msg_std_0003", now, &second),
        standard_signature(&secrets.new, "msg_std_0003", now, &second)
    );

    let old = app
        .post(ROUTE, &headers("msg_std_0002", now, old_signature), &first)
        .await;
    let new = app
        .post(ROUTE, &headers("msg_std_0003", now, both), &second)
        .await;

    let old = app.wait_for_status(old.accepted_id(), "completed").await;
    let new = app.wait_for_status(new.accepted_id(), "completed").await;
    assert_eq!(single_payment(&old)["amount"], "1.00");
    assert_eq!(single_payment(&new)["amount"], "2.50");
    assert!(old["signatureKeyId"].is_string(), "{old}");
    assert_ne!(old["signatureKeyId"], new["signatureKeyId"]);
    app.stop().await;
}

#[tokio::test]
async fn standard_forgeries_rejected_unstored() {
    let dir = tempfile::tempdir().unwrap();
    let app = standard_app(dir.path()).await;
    let secrets = secrets();
    let body = body("pay_std_0004", 4599);
    let now = now_seconds();
    let genuine = standard_signature(&secrets.new, "msg_std_0004", now, &body);
    let stale_time = now - 400;
    let stale = standard_signature(&secrets.new, "msg_std_0004", stale_time, &body);
    let wrong = standard_signature("whsec_c29tZW9uZSBlbHNl", "msg_std_0004", now, &body);
    let tampered = body.replace("4599", "4598");

    let changed = app
        .post(ROUTE, &headers("msg_std_0004", now, genuine), &tampered)
        .await;
    let old = app
        .post(ROUTE, &headers("msg_std_0004", stale_time, stale), &body)
        .await;
    let foreign = app
        .post(ROUTE, &headers("msg_std_0004", now, wrong), &body)
        .await;

    changed.assert_rejected("invalid_signature");
    old.assert_rejected("timestamp_too_old");
    foreign.assert_rejected("invalid_signature");
    assert_eq!(app.stored_rows(ROUTE).await, 0);
    app.stop().await;
}
