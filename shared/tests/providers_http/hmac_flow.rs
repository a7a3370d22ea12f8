//! Config-defined HMAC routes: an inline scheme with a payment mapping and secrets from the
//! file and the environment, and the shipped GitHub example without a mapping.

use std::collections::HashMap;
use std::sync::Arc;

use payhook::providers::registry::BuildOptions;

use crate::signing::{hex, hmac_sha256};
use crate::support::{TestApp, assert_handler_logged, now_seconds, single_payment, spawn};

const ACME: &str = "acme/eu";
const ACME_OLD: &str = "acme_old_signing_secret";
const ACME_NEW: &str = "acme_new_signing_secret";

fn docs_file(name: &str) -> String {
    format!("{}/../docs/providers/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn hmac_app(dir: &std::path::Path) -> TestApp {
    let toml_text = format!(
        r#"
[[hmac]]
name = "{ACME}"
secrets = ["{ACME_OLD}"]
secrets_env = "ACME_SECRETS"

[hmac.scheme]
signature_header = "Acme-Signature"
algorithm = "hmac-sha256"
encoding = "hex"
message = "{{timestamp}}.{{body}}"
tolerance_seconds = 300
event_id = "/id"
event_type = "/type"

[hmac.scheme.signature_format]
kind = "kv_list"
item_separator = ","
signature_key = "v1"
timestamp_key = "t"

[hmac.payment]
payment_id = "/data/charge"
amount = "/data/total"
amount_format = "decimal"
currency = "/data/currency"
order_id = "/data/order"

[hmac.payment.event_statuses]
"charge.paid" = "succeeded"

[[hmac]]
name = "github"
config_file = "{github}"
secrets = ["github_webhook_secret"]
"#,
        github = docs_file("github.toml")
    );
    let env: HashMap<&str, &str> = HashMap::from([("ACME_SECRETS", ACME_NEW)]);
    let options = BuildOptions {
        env: Some(Arc::new(move |name: &str| {
            env.get(name).map(|v| v.to_string())
        })),
        ..BuildOptions::default()
    };
    spawn(dir, &toml_text, options).await
}

fn acme_body(event_id: &str, total: &str) -> String {
    serde_json::json!({
        "id": event_id,
        "type": "charge.paid",
        "data": {
            "charge": format!("ch_{event_id}"),
            "total": total,
            "currency": "GBP",
            "order": "ORD-ACME-1"
        }
    })
    .to_string()
}

fn acme_headers(secret: &str, timestamp: i64, body: &str) -> Vec<(&'static str, String)> {
    let message = format!("{timestamp}.{body}");
    let signature = hex(&hmac_sha256(secret.as_bytes(), message.as_bytes()));
    vec![("acme-signature", format!("t={timestamp},v1={signature}"))]
}

#[tokio::test]
async fn hmac_mapping_stores_exact_payment() {
    let dir = tempfile::tempdir().unwrap();
    let app = hmac_app(dir.path()).await;
    let body = acme_body("evt_acme_0001", "57.25");

    let response = app
        .post(ACME, &acme_headers(ACME_NEW, now_seconds(), &body), &body)
        .await;

    let detail = app
        .wait_for_status(response.accepted_id(), "completed")
        .await;
    assert_eq!(detail["provider"], ACME);
    assert_eq!(detail["eventId"], "evt_acme_0001");
    let payment = single_payment(&detail);
    assert_eq!(payment["paymentId"], "ch_evt_acme_0001");
    assert_eq!(payment["amount"], "57.25");
    assert_eq!(payment["amountMinor"], 5725);
    assert_eq!(payment["currency"], "GBP");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["orderId"], "ORD-ACME-1");
    app.stop().await;
}

#[tokio::test]
async fn hmac_rotation_accepts_file_and_env_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let app = hmac_app(dir.path()).await;
    let first = acme_body("evt_acme_0002", "0.10");
    let second = acme_body("evt_acme_0003", "1000.00");

    let old = app
        .post(ACME, &acme_headers(ACME_OLD, now_seconds(), &first), &first)
        .await;
    let new = app
        .post(
            ACME,
            &acme_headers(ACME_NEW, now_seconds(), &second),
            &second,
        )
        .await;

    let old = app.wait_for_status(old.accepted_id(), "completed").await;
    let new = app.wait_for_status(new.accepted_id(), "completed").await;
    assert_eq!(single_payment(&old)["amount"], "0.10");
    assert_eq!(single_payment(&new)["amount"], "1000.00");
    assert_ne!(old["signatureKeyId"], new["signatureKeyId"]);
    app.stop().await;
}

#[tokio::test]
async fn hmac_forgeries_rejected_unstored() {
    let dir = tempfile::tempdir().unwrap();
    let app = hmac_app(dir.path()).await;
    let body = acme_body("evt_acme_0004", "57.25");
    let now = now_seconds();
    let tampered = body.replace("57.25", "57.26");

    let changed = app
        .post(ACME, &acme_headers(ACME_NEW, now, &body), &tampered)
        .await;
    let stale = app
        .post(ACME, &acme_headers(ACME_NEW, now - 400, &body), &body)
        .await;
    let wrong = app
        .post(ACME, &acme_headers("someone_else", now, &body), &body)
        .await;

    changed.assert_rejected("invalid_signature");
    stale.assert_rejected("timestamp_too_old");
    wrong.assert_rejected("invalid_signature");
    assert_eq!(app.stored_rows(ACME).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn hmac_without_mapping_completes_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let app = hmac_app(dir.path()).await;
    let body = r#"{"ref":"refs/heads/main","after":"0f1e2d3c"}"#;
    let signature = hex(&hmac_sha256(b"github_webhook_secret", body.as_bytes()));
    let headers = vec![
        ("x-hub-signature-256", format!("sha256={signature}")),
        (
            "x-github-delivery",
            "5a1b2c3d-0000-4000-8000-00000000e001".to_string(),
        ),
        ("x-github-event", "push".to_string()),
    ];
    let forged = vec![
        ("x-hub-signature-256", format!("sha256={}", "0".repeat(64))),
        headers[1].clone(),
        headers[2].clone(),
    ];

    let response = app.post("github", &headers, body).await;
    let rejected = app.post("github", &forged, body).await;

    let detail = app
        .wait_for_status(response.accepted_id(), "completed")
        .await;
    assert_eq!(detail["eventId"], "5a1b2c3d-0000-4000-8000-00000000e001");
    assert_eq!(detail["eventType"], "push");
    assert_eq!(detail["paymentEvents"].as_array().unwrap().len(), 0);
    assert_handler_logged(&detail, "ignored");
    rejected.assert_rejected("invalid_signature");
    assert_eq!(app.stored_rows("github").await, 1);
    app.stop().await;
}
