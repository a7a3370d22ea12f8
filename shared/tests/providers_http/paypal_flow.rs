//! PayPal routes by certificate and by postback, against a stand-in for PayPal's
//! certificate host and API on 127.0.0.1.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use payhook::providers::paypal::signed_message;
use payhook::providers::registry::BuildOptions;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::pki::{Pki, Recorded, Route, StubServer};
use crate::support::{TestApp, single_payment, spawn};

const CERT_ROUTE: &str = "paypal/eu";
const CERT_WEBHOOK_ID: &str = "WH7PHEU0001";
const POSTBACK_ROUTE: &str = "paypal/postback";
const POSTBACK_WEBHOOK_ID: &str = "WH7PHPB0001";
const CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-PH-A";
const ROTATED_CERT_URL: &str = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-PH-B";
const TOKEN: &str = "A21AA-payhook-test-token";

struct PayPalTest {
    app: TestApp,
    pki: Arc<Pki>,
    stub: StubServer,
    _dir: tempfile::TempDir,
}

async fn paypal_app() -> PayPalTest {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let pki = Arc::new(Pki::new());
    let stub = StubServer::start(&pki, paypal_route(&pki)).await;
    std::fs::write(dir.path().join("paypal-root.pem"), &pki.root_pem).unwrap();
    std::fs::write(
        dir.path().join("paypal-client-secret"),
        "payhook-client-secret\n",
    )
    .unwrap();
    let toml_text = format!(
        r#"
[[paypal]]
name = "eu"
mode = "sandbox"
webhook_id = "{CERT_WEBHOOK_ID}"
trust_store_file = "paypal-root.pem"
tolerance_seconds = 300

[[paypal]]
name = "postback"
mode = "sandbox"
webhook_id = "{POSTBACK_WEBHOOK_ID}"
verification = "postback"
client_id = "payhook-client-id"
client_secret_file = "paypal-client-secret"
"#
    );
    let options = BuildOptions {
        paypal_client: Some(pki.client(stub.address)),
        ..BuildOptions::default()
    };
    let app = spawn(dir.path(), &toml_text, options).await;
    PayPalTest {
        app,
        pki,
        stub,
        _dir: dir,
    }
}

/// Serves the signing certificate, OAuth tokens and a verification API that checks the
/// signature the way PayPal does, over the `webhook_event` bytes it receives.
fn paypal_route(pki: &Pki) -> Route {
    let chain = pki.signing_cert_pem();
    let public_key = pki.public_key();
    Arc::new(move |request: &Recorded| match request.path.as_str() {
        "/v1/oauth2/token" => {
            let token = format!(r#"{{"access_token":"{TOKEN}","expires_in":32400}}"#);
            (StatusCode::OK, token)
        }
        "/v1/notifications/verify-webhook-signature" => {
            (StatusCode::OK, verify_postback(&public_key, request))
        }
        path if path.starts_with("/v1/notifications/certs/") => (StatusCode::OK, chain.clone()),
        _ => (StatusCode::NOT_FOUND, String::new()),
    })
}

#[derive(Deserialize)]
struct Postback<'a> {
    transmission_id: String,
    transmission_time: String,
    transmission_sig: String,
    webhook_id: String,
    #[serde(borrow)]
    webhook_event: &'a RawValue,
}

fn verify_postback(public_key: &[u8], request: &Recorded) -> String {
    let authorized = request.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
    let postback: Postback = serde_json::from_slice(&request.body).unwrap();
    let message = signed_message(
        &postback.transmission_id,
        &postback.transmission_time,
        &postback.webhook_id,
        postback.webhook_event.get().as_bytes(),
    );
    let signature = STANDARD.decode(&postback.transmission_sig).unwrap();
    let genuine = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(message.as_bytes(), &signature)
        .is_ok();
    let status = if authorized && genuine {
        "SUCCESS"
    } else {
        "FAILURE"
    };
    format!(r#"{{"verification_status":"{status}"}}"#)
}

fn transmission_time(offset_seconds: i64) -> String {
    let time = chrono::Utc::now() + chrono::Duration::seconds(offset_seconds);
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn capture_body(event_id: &str, value: &str) -> String {
    format!(
        r#"{{"id":"{event_id}","event_version":"1.0","create_time":"2025-02-03T04:05:06.000Z","resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED","summary":"Payment completed","resource":{{"id":"CAP-{event_id}","status":"COMPLETED","amount":{{"currency_code":"USD","value":"{value}"}},"final_capture":true,"custom_id":"cust-ph-0042","supplementary_data":{{"related_ids":{{"order_id":"ORDER-{event_id}"}}}}}}}}"#
    )
}

fn signed_headers(
    pki: &Pki,
    webhook_id: &str,
    time: &str,
    cert_url: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let transmission_id = format!("tx-{}", fastrand::u64(..));
    let message = signed_message(&transmission_id, time, webhook_id, body.as_bytes());
    vec![
        ("paypal-transmission-id", transmission_id),
        ("paypal-transmission-time", time.to_string()),
        ("paypal-transmission-sig", pki.sign(&message)),
        ("paypal-cert-url", cert_url.to_string()),
        ("paypal-auth-algo", "SHA256withRSA".to_string()),
    ]
}

#[tokio::test]
async fn paypal_capture_stores_exact_payment() {
    let test = paypal_app().await;
    let body = capture_body("WH-PHT-0001", "57.00");
    let headers = signed_headers(
        &test.pki,
        CERT_WEBHOOK_ID,
        &transmission_time(0),
        CERT_URL,
        &body,
    );

    let response = test.app.post(CERT_ROUTE, &headers, &body).await;

    let detail = test
        .app
        .wait_for_status(response.accepted_id(), "completed")
        .await;
    assert_eq!(detail["provider"], CERT_ROUTE);
    assert_eq!(detail["eventId"], "WH-PHT-0001");
    assert_eq!(detail["eventType"], "PAYMENT.CAPTURE.COMPLETED");
    assert_eq!(detail["signatureKeyId"], "paypal-cert:CERT-PH-A");
    let payment = single_payment(&detail);
    assert_eq!(payment["paymentId"], "ORDER-WH-PHT-0001");
    assert_eq!(payment["transactionId"], "CAP-WH-PHT-0001");
    assert_eq!(payment["amount"], "57.00");
    assert_eq!(payment["amountMinor"], 5700);
    assert_eq!(payment["currency"], "USD");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["statusRaw"], "COMPLETED");
    assert_eq!(payment["orderId"], "cust-ph-0042");
    assert_eq!(test.stub.paths(), ["/v1/notifications/certs/CERT-PH-A"]);
    test.app.stop().await;
}

#[tokio::test]
async fn paypal_rotated_certificate_accepted() {
    let test = paypal_app().await;
    let first = capture_body("WH-PHT-0002", "0.01");
    let second = capture_body("WH-PHT-0003", "1234.50");
    let time = transmission_time(0);
    let old = signed_headers(&test.pki, CERT_WEBHOOK_ID, &time, CERT_URL, &first);
    let new = signed_headers(&test.pki, CERT_WEBHOOK_ID, &time, ROTATED_CERT_URL, &second);

    let old = test.app.post(CERT_ROUTE, &old, &first).await;
    let new = test.app.post(CERT_ROUTE, &new, &second).await;

    let old = test
        .app
        .wait_for_status(old.accepted_id(), "completed")
        .await;
    let new = test
        .app
        .wait_for_status(new.accepted_id(), "completed")
        .await;
    assert_eq!(single_payment(&old)["amount"], "0.01");
    assert_eq!(single_payment(&new)["amount"], "1234.50");
    assert_eq!(new["signatureKeyId"], "paypal-cert:CERT-PH-B");
    assert_eq!(
        test.stub.paths(),
        [
            "/v1/notifications/certs/CERT-PH-A",
            "/v1/notifications/certs/CERT-PH-B"
        ]
    );
    test.app.stop().await;
}

#[tokio::test]
async fn paypal_cert_url_outside_allowlist_never_fetched() {
    let test = paypal_app().await;
    let body = capture_body("WH-PHT-0004", "57.00");
    let time = transmission_time(0);
    let hostile_urls = [
        "https://attacker.example/v1/notifications/certs/CERT-PH-A",
        "https://api.paypal.com/v1/notifications/certs/CERT-PH-A",
        "https://api.sandbox.paypal.com:8443/v1/notifications/certs/CERT-PH-A",
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-PH-A",
    ];

    for url in hostile_urls {
        let headers = signed_headers(&test.pki, CERT_WEBHOOK_ID, &time, url, &body);

        let response = test.app.post(CERT_ROUTE, &headers, &body).await;

        response.assert_rejected("malformed_signature_header");
    }
    assert_eq!(test.stub.connections(), 0);
    assert_eq!(test.app.stored_rows(CERT_ROUTE).await, 0);
    test.app.stop().await;
}

#[tokio::test]
async fn paypal_forgeries_rejected_unstored() {
    let test = paypal_app().await;
    let body = capture_body("WH-PHT-0005", "57.00");
    let now = transmission_time(0);
    let stale = transmission_time(-600);
    let pki = &test.pki;
    let genuine = signed_headers(pki, CERT_WEBHOOK_ID, &now, CERT_URL, &body);
    let old = signed_headers(pki, CERT_WEBHOOK_ID, &stale, CERT_URL, &body);
    let other_webhook = signed_headers(pki, POSTBACK_WEBHOOK_ID, &now, CERT_URL, &body);
    let tampered = body.replace("57.00", "58.00");

    let changed = test.app.post(CERT_ROUTE, &genuine, &tampered).await;
    let late = test.app.post(CERT_ROUTE, &old, &body).await;
    let foreign = test.app.post(CERT_ROUTE, &other_webhook, &body).await;

    changed.assert_rejected("invalid_signature");
    late.assert_rejected("timestamp_too_old");
    foreign.assert_rejected("invalid_signature");
    assert_eq!(test.app.stored_rows(CERT_ROUTE).await, 0);
    test.app.stop().await;
}

#[tokio::test]
async fn paypal_postback_route_asks_api() {
    let test = paypal_app().await;
    let body = capture_body("WH-PHT-0006", "57.00");
    let time = transmission_time(0);
    let headers = signed_headers(&test.pki, POSTBACK_WEBHOOK_ID, &time, CERT_URL, &body);
    let tampered = body.replace("57.00", "5.70");

    let genuine = test.app.post(POSTBACK_ROUTE, &headers, &body).await;
    let forged = test.app.post(POSTBACK_ROUTE, &headers, &tampered).await;

    let detail = test
        .app
        .wait_for_status(genuine.accepted_id(), "completed")
        .await;
    assert_eq!(detail["provider"], POSTBACK_ROUTE);
    assert_eq!(detail["signatureKeyId"], "paypal-postback");
    assert_eq!(single_payment(&detail)["amount"], "57.00");
    forged.assert_rejected("invalid_signature");
    assert_eq!(test.app.stored_rows(POSTBACK_ROUTE).await, 1);
    assert_eq!(
        test.stub.paths(),
        [
            "/v1/oauth2/token",
            "/v1/notifications/verify-webhook-signature",
            "/v1/notifications/verify-webhook-signature"
        ]
    );
    test.app.stop().await;
}
