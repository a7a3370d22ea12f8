//! Every shipped example in `docs/providers/` loaded through `config_file`, built by the
//! registry, and given a delivery signed the way that provider signs.

use std::collections::BTreeSet;

use payhook::providers::registry::BuildOptions;
use serde_json::json;

use crate::signing::{base64, hex, hmac_sha256};
use crate::support::{TestApp, assert_handler_logged, now_seconds, single_payment, spawn};

/// The example files and the secret configured for each; the route is the file stem.
const EXAMPLES: &[(&str, &str)] = &[
    ("github", "example_github_secret"),
    ("lemonsqueezy", "example_lemonsqueezy_secret"),
    ("paddle", "pdl_ntfset_example_secret"),
    ("razorpay", "example_razorpay_secret"),
    ("shopify", "example_shopify_secret"),
    ("square", "example_square_signature_key"),
];

/// The notification URL in `square.toml`, which Square signs in front of the body.
const SQUARE_URL: &str = "https://payhook.example.com/api/webhooks/square";

fn docs_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/providers")
}

fn secret(route: &str) -> &'static str {
    EXAMPLES.iter().find(|(name, _)| *name == route).unwrap().1
}

async fn examples_app(dir: &std::path::Path) -> TestApp {
    let mut toml_text = String::new();
    for (name, secret) in EXAMPLES {
        let path = docs_dir().join(format!("{name}.toml"));
        toml_text.push_str(&format!(
            "[[hmac]]\nname = \"{name}\"\nconfig_file = {:?}\nsecrets = [\"{secret}\"]\n\n",
            path.display().to_string()
        ));
    }
    spawn(dir, &toml_text, BuildOptions::default()).await
}

fn sign(route: &str, message: &str) -> Vec<u8> {
    hmac_sha256(secret(route).as_bytes(), message.as_bytes())
}

/// Posts a genuine delivery and returns the completed event detail.
async fn deliver(
    app: &TestApp,
    route: &str,
    headers: Vec<(&'static str, String)>,
    body: &str,
) -> serde_json::Value {
    let response = app.post(route, &headers, body).await;
    let detail = app
        .wait_for_status(response.accepted_id(), "completed")
        .await;
    assert_eq!(detail["provider"], route);
    detail
}

#[test]
fn every_shipped_example_is_covered() {
    let shipped: BTreeSet<String> = std::fs::read_dir(docs_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();

    let covered: BTreeSet<String> = EXAMPLES.iter().map(|(name, _)| name.to_string()).collect();

    assert_eq!(shipped, covered);
}

#[tokio::test]
async fn shipped_examples_accept_signed_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let app = examples_app(dir.path()).await;

    let body = json!({
        "id": 820982911946154508_u64, "name": "#9001", "total_price": "199.95",
        "currency": "CAD", "financial_status": "paid", "customer": {"id": 7001},
        "updated_at": "2025-01-02T03:04:05-05:00"
    })
    .to_string();
    let headers = vec![
        ("x-shopify-hmac-sha256", base64(&sign("shopify", &body))),
        (
            "x-shopify-webhook-id",
            "b54557e4-0000-4000-8000-00000000a001".to_string(),
        ),
        ("x-shopify-topic", "orders/paid".to_string()),
    ];
    let shopify = deliver(&app, "shopify", headers, &body).await;
    let payment = single_payment(&shopify);
    assert_eq!(payment["paymentId"], "820982911946154508");
    assert_eq!(payment["amount"], "199.95");
    assert_eq!(payment["currency"], "CAD");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["orderId"], "#9001");

    let body = json!({
        "event_id": "evt_01phtest0001", "event_type": "transaction.completed",
        "occurred_at": "2025-01-02T03:04:05Z",
        "data": {"id": "txn_01phtest0001", "currency_code": "USD", "status": "completed",
                 "customer_id": "ctm_01phtest", "invoice_number": "INV-PH-1",
                 "details": {"totals": {"grand_total": "6543"}}}
    })
    .to_string();
    let ts = now_seconds();
    let signature = hex(&sign("paddle", &format!("{ts}:{body}")));
    let headers = vec![("paddle-signature", format!("ts={ts};h1={signature}"))];
    let paddle = deliver(&app, "paddle", headers, &body).await;
    let payment = single_payment(&paddle);
    assert_eq!(payment["amount"], "65.43");
    assert_eq!(payment["currency"], "USD");
    assert_eq!(payment["status"], "succeeded");

    let body = json!({
        "event": "payment.captured", "created_at": 1735700000,
        "payload": {"payment": {"entity": {"id": "pay_PHtest0001", "amount": 250000,
            "currency": "INR", "status": "captured", "order_id": "order_PHtest01"}}}
    })
    .to_string();
    let headers = vec![
        ("x-razorpay-signature", hex(&sign("razorpay", &body))),
        ("x-razorpay-event-id", "evt_PHrazorpay0001".to_string()),
    ];
    let razorpay = deliver(&app, "razorpay", headers, &body).await;
    assert_eq!(single_payment(&razorpay)["amount"], "2500.00");
    assert_eq!(single_payment(&razorpay)["currency"], "INR");

    let body = json!({
        "merchant_id": "MPHTEST01", "type": "payment.updated", "event_id": "sq-evt-ph-0001",
        "created_at": "2025-01-02T03:04:05Z",
        "data": {"type": "payment", "id": "sqpay_ph_0001", "object": {"payment": {
            "id": "sqpay_ph_0001", "amount_money": {"amount": 1050, "currency": "USD"},
            "status": "COMPLETED", "order_id": "sqord_ph_1"}}}
    })
    .to_string();
    let signature = base64(&sign("square", &format!("{SQUARE_URL}{body}")));
    let headers = vec![("x-square-hmacsha256-signature", signature)];
    let square = deliver(&app, "square", headers, &body).await;
    assert_eq!(single_payment(&square)["amount"], "10.50");
    assert_eq!(single_payment(&square)["status"], "succeeded");

    let body = json!({
        "meta": {"event_name": "order_created"},
        "data": {"id": "ls-ph-0001", "attributes": {"total": 1999, "currency": "USD",
            "status": "paid", "customer_id": 7002, "identifier": "ls-ord-ph-1",
            "updated_at": "2025-01-02T03:04:05Z"}}
    })
    .to_string();
    let headers = vec![("x-signature", hex(&sign("lemonsqueezy", &body)))];
    let lemonsqueezy = deliver(&app, "lemonsqueezy", headers, &body).await;
    assert_eq!(single_payment(&lemonsqueezy)["amount"], "19.99");

    let body = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let headers = vec![
        (
            "x-hub-signature-256",
            format!("sha256={}", hex(&sign("github", body))),
        ),
        (
            "x-github-delivery",
            "5a1b2c3d-0000-4000-8000-00000000e002".to_string(),
        ),
        ("x-github-event", "ping".to_string()),
    ];
    let github = deliver(&app, "github", headers, body).await;
    assert_handler_logged(&github, "ignored");
    app.stop().await;
}

#[tokio::test]
async fn shipped_examples_reject_wrong_secret() {
    let dir = tempfile::tempdir().unwrap();
    let app = examples_app(dir.path()).await;
    let body = r#"{"id":1,"total_price":"1.00","currency":"USD"}"#;
    let wrong = base64(&hmac_sha256(b"not_the_shop_secret", body.as_bytes()));
    let headers = vec![
        ("x-shopify-hmac-sha256", wrong),
        (
            "x-shopify-webhook-id",
            "b54557e4-0000-4000-8000-00000000a002".to_string(),
        ),
        ("x-shopify-topic", "orders/paid".to_string()),
    ];

    let response = app.post("shopify", &headers, body).await;

    response.assert_rejected("invalid_signature");
    assert_eq!(app.stored_rows("shopify").await, 0);
    app.stop().await;
}
