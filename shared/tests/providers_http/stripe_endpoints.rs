//! A second Stripe account at `stripe/<name>` with its own rotating secrets.

use std::sync::Arc;

use payhook::providers::registry::BuildOptions;
use payhook::providers::stripe::sign_header;
use payhook::secret::Secret;

use crate::support::{TestApp, now_seconds, single_payment, spawn};

const ROUTE: &str = "stripe/eu";
const MAIN_SECRET: &str = "whsec_payhook_main_account";
const EU_OLD: &str = "whsec_payhook_eu_old";
const EU_NEW: &str = "whsec_payhook_eu_new";

async fn stripe_app(dir: &std::path::Path) -> TestApp {
    let toml_text = format!(
        r#"
[stripe]
secrets = ["{MAIN_SECRET}"]

[[stripe.endpoints]]
name = "eu"
secrets_env = "PAYHOOK_TEST_STRIPE_EU"
tolerance_seconds = 120
"#
    );
    let options = BuildOptions {
        env: Some(Arc::new(|name: &str| {
            (name == "PAYHOOK_TEST_STRIPE_EU").then(|| format!("{EU_OLD},{EU_NEW}"))
        })),
        ..BuildOptions::default()
    };
    spawn(dir, &toml_text, options).await
}

fn payment_intent(event_id: &str, amount: i64) -> String {
    serde_json::json!({
        "id": event_id,
        "object": "event",
        "created": 1_764_000_000,
        "type": "payment_intent.succeeded",
        "livemode": false,
        "data": {"object": {
            "id": format!("pi_{event_id}"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": "eur",
            "status": "succeeded"
        }}
    })
    .to_string()
}

fn header(secret: &str, timestamp: i64, body: &str) -> Vec<(&'static str, String)> {
    let value = sign_header(&Secret::new(secret), timestamp, body.as_bytes());
    vec![("stripe-signature", value)]
}

#[tokio::test]
async fn stripe_endpoint_accepts_rotated_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let app = stripe_app(dir.path()).await;
    let first = payment_intent("evt_eu_0001", 5700);
    let second = payment_intent("evt_eu_0002", 1);

    let old = app
        .post(ROUTE, &header(EU_OLD, now_seconds(), &first), &first)
        .await;
    let new = app
        .post(ROUTE, &header(EU_NEW, now_seconds(), &second), &second)
        .await;

    let old = app.wait_for_status(old.accepted_id(), "completed").await;
    let new = app.wait_for_status(new.accepted_id(), "completed").await;
    assert_eq!(old["provider"], ROUTE);
    assert_eq!(single_payment(&old)["amount"], "57.00");
    assert_eq!(single_payment(&old)["currency"], "EUR");
    assert_eq!(single_payment(&new)["amount"], "0.01");
    assert_ne!(old["signatureKeyId"], new["signatureKeyId"]);
    app.stop().await;
}

#[tokio::test]
async fn stripe_endpoint_forgeries_rejected_unstored() {
    let dir = tempfile::tempdir().unwrap();
    let app = stripe_app(dir.path()).await;
    let body = payment_intent("evt_eu_0003", 5700);
    let now = now_seconds();
    let tampered = body.replace("5700", "5701");

    let changed = app
        .post(ROUTE, &header(EU_NEW, now, &body), &tampered)
        .await;
    let stale = app
        .post(ROUTE, &header(EU_NEW, now - 200, &body), &body)
        .await;
    let other_account = app
        .post(ROUTE, &header(MAIN_SECRET, now, &body), &body)
        .await;
    let main_route = app
        .post("stripe", &header(MAIN_SECRET, now, &body), &body)
        .await;

    changed.assert_rejected("invalid_signature");
    stale.assert_rejected("timestamp_too_old");
    other_account.assert_rejected("invalid_signature");
    assert_eq!(app.stored_rows(ROUTE).await, 0);
    assert_eq!(main_route.status, 200, "{}", main_route.body);
    assert_eq!(app.stored_rows("stripe").await, 1);
    app.stop().await;
}
