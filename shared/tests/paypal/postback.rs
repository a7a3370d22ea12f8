use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use payhook::providers::Rejection;
use payhook::providers::paypal::{PayPalPostbackSettings, PayPalPostbackVerifier};
use payhook::secret::Secret;
use url::Url;

use crate::support::{Pki, Recorded, StubServer, closed_address};
use crate::*;

const CLIENT_ID: &str = "ph-client-id";
const CLIENT_SECRET: &str = "ph-client-secret";
const TOKEN: &str = "A21AA-ph-test-token";

/// Stands in for PayPal's API: issues a token for the right credentials and returns
/// SUCCESS only when the bearer token is right and the request carries the raw event.
fn paypal_api(request: &Recorded) -> (StatusCode, String) {
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    match request.path.as_str() {
        "/v1/oauth2/token" if request.authorization.as_deref() == Some(basic.as_str()) => (
            StatusCode::OK,
            format!(r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":32400}}"#),
        ),
        "/v1/notifications/verify-webhook-signature"
            if request.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")) =>
        {
            let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let spliced = contains(
                &request.body,
                format!("\"webhook_event\":{BODY}}}").as_bytes(),
            );
            let status = if spliced && json["transmission_sig"] == "good-signature" {
                "SUCCESS"
            } else {
                "FAILURE"
            };
            (
                StatusCode::OK,
                format!(r#"{{"verification_status":"{status}"}}"#),
            )
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_client"}"#.to_string(),
        ),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn postback_verifier(pki: &Pki, address: std::net::SocketAddr) -> PayPalPostbackVerifier {
    PayPalPostbackVerifier::new(PayPalPostbackSettings {
        api_base: Url::parse("https://api-m.sandbox.paypal.com").unwrap(),
        client_id: CLIENT_ID.to_string(),
        client_secret: Secret::new(CLIENT_SECRET),
        webhook_id: WEBHOOK_ID.to_string(),
        client: pki.client(address),
    })
    .unwrap()
}

fn headers_with_signature(pki: &Pki, signature: &str) -> http::HeaderMap {
    let mut headers = signed_headers(pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
    headers.insert("paypal-transmission-sig", signature.parse().unwrap());
    headers
}

#[tokio::test]
async fn postback_success_sends_raw_event() {
    let pki = Pki::new();
    let server = StubServer::start(&pki, Arc::new(paypal_api)).await;
    let verifier = postback_verifier(&pki, server.address);
    let headers = headers_with_signature(&pki, "good-signature");

    let verified = verify_at(&verifier, &headers, BODY, now()).await;

    assert!(verified.is_ok(), "{verified:?}");
    let requests = server.recorded();
    let check = requests.last().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&check.body).unwrap();
    assert_eq!(json["webhook_id"], WEBHOOK_ID);
    assert_eq!(json["transmission_id"], TRANSMISSION_ID);
    assert_eq!(json["transmission_time"], TRANSMISSION_TIME);
    assert_eq!(json["cert_url"], SANDBOX_CERT_URL);
    assert_eq!(json["auth_algo"], "SHA256withRSA");
    assert!(contains(&check.body, b"\"quantity_hint\":1.0}"));
}

#[tokio::test]
async fn postback_failure_rejected() {
    let pki = Pki::new();
    let server = StubServer::start(&pki, Arc::new(paypal_api)).await;
    let verifier = postback_verifier(&pki, server.address);
    let headers = headers_with_signature(&pki, "forged-signature");

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert_eq!(result, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn postback_token_reused() {
    let pki = Pki::new();
    let server = StubServer::start(&pki, Arc::new(paypal_api)).await;
    let verifier = postback_verifier(&pki, server.address);
    let headers = headers_with_signature(&pki, "good-signature");

    let first = verify_at(&verifier, &headers, BODY, now()).await;
    let second = verify_at(&verifier, &headers, BODY, now()).await;

    assert!(first.is_ok(), "{first:?}");
    assert!(second.is_ok(), "{second:?}");
    let token_requests = server
        .recorded()
        .iter()
        .filter(|request| request.path == "/v1/oauth2/token")
        .count();
    assert_eq!(token_requests, 1);
}

#[tokio::test]
async fn postback_errors_are_retryable() {
    let pki = Pki::new();
    let broken = StubServer::start(
        &pki,
        Arc::new(|_| (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_string())),
    )
    .await;
    let closed = closed_address().await;
    let headers = headers_with_signature(&pki, "good-signature");

    let server_error = verify_at(
        &postback_verifier(&pki, broken.address),
        &headers,
        BODY,
        now(),
    )
    .await;
    let refused = verify_at(&postback_verifier(&pki, closed), &headers, BODY, now()).await;

    assert!(
        matches!(server_error, Err(Rejection::VerifierUnavailable(_))),
        "{server_error:?}"
    );
    assert!(
        matches!(refused, Err(Rejection::VerifierUnavailable(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn postback_wrong_credentials_unavailable() {
    let pki = Pki::new();
    let server = StubServer::start(&pki, Arc::new(paypal_api)).await;
    let verifier = PayPalPostbackVerifier::new(PayPalPostbackSettings {
        api_base: Url::parse("https://api-m.sandbox.paypal.com").unwrap(),
        client_id: CLIENT_ID.to_string(),
        client_secret: Secret::new("wrong"),
        webhook_id: WEBHOOK_ID.to_string(),
        client: pki.client(server.address),
    })
    .unwrap();
    let headers = headers_with_signature(&pki, "good-signature");

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert!(
        matches!(result, Err(Rejection::VerifierUnavailable(_))),
        "{result:?}"
    );
    assert_eq!(server.recorded().len(), 1);
}
