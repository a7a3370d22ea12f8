use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use payhook::providers::paypal::{PayPalMode, PayPalSettings, PayPalVerifier};
use payhook::providers::{Rejection, Verifier};

use crate::support::{Pki, StubServer, closed_address};
use crate::*;

fn valid_chain(pki: &Pki) -> String {
    pki.chain_pem(SANDBOX_NAME, (2024, 1), (2025, 1))
}

#[tokio::test]
async fn genuine_event_accepted() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

    let verified = verify_at(&verifier, &headers, BODY, now()).await.unwrap();
    let identity = verifier.identity(&headers, BODY.as_bytes()).unwrap();

    assert_eq!(verified.key_id, "paypal-cert:CERT-PH-0001");
    assert_eq!(verified.headers.len(), 5);
    assert_eq!(identity.event_id, "WH-PH00000000000001-0000000000000042");
    assert_eq!(identity.event_type, "PAYMENT.CAPTURE.COMPLETED");
    assert!(identity.created_at.is_some());
    let requests = server.recorded();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/notifications/certs/CERT-PH-0001");
}

#[tokio::test]
async fn certificate_fetched_once_then_cached() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

    let first = verify_at(&verifier, &headers, BODY, now()).await;
    let second = verify_at(&verifier, &headers, BODY, now()).await;

    assert!(first.is_ok(), "{first:?}");
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(server.recorded().len(), 1);
}

#[tokio::test]
async fn tampered_body_rejected() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
    let tampered = BODY.replace("42.10", "42.11");
    let reserialized = BODY.replace("1.0}", "1}");

    let changed = verify_at(&verifier, &headers, &tampered, now()).await;
    let renumbered = verify_at(&verifier, &headers, &reserialized, now()).await;

    assert_eq!(changed, Err(Rejection::SignatureMismatch));
    assert_eq!(renumbered, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn other_webhook_id_rejected() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, LIVE_WEBHOOK_ID);
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
    let simulator = signed_headers(&pki, "WEBHOOKSIMULATOR", BODY, SANDBOX_CERT_URL);

    let wrong_id = verify_at(&verifier, &headers, BODY, now()).await;
    let simulated = verify_at(&verifier, &simulator, BODY, now()).await;

    assert_eq!(wrong_id, Err(Rejection::SignatureMismatch));
    assert_eq!(simulated, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn live_mode_rejects_sandbox_certificate() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let live = PayPalVerifier::new(PayPalSettings::new(
        PayPalMode::Live,
        WEBHOOK_ID,
        pki.trust_store(),
        pki.client(server.address),
    ))
    .unwrap();
    let sandbox_url = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
    let live_url = signed_headers(
        &pki,
        WEBHOOK_ID,
        BODY,
        "https://api.paypal.com/v1/notifications/certs/CERT-PH-0001",
    );

    let by_url = verify_at(&live, &sandbox_url, BODY, now()).await;
    assert_cert_rejected(&by_url);
    assert_eq!(server.connections(), 0);

    let by_name = verify_at(&live, &live_url, BODY, now()).await;
    assert_cert_rejected(&by_name);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn bad_certificates_rejected() {
    let pki = Pki::new();
    let cases = [
        ("self-signed", pki.self_signed_pem(SANDBOX_NAME)),
        ("expired", pki.chain_pem(SANDBOX_NAME, (2023, 1), (2024, 1))),
        (
            "not yet valid",
            pki.chain_pem(SANDBOX_NAME, (2024, 6), (2025, 1)),
        ),
        (
            "wrong name",
            pki.chain_pem("www.sandbox.paypal.com", (2024, 1), (2025, 1)),
        ),
        ("missing intermediate", {
            let chain = valid_chain(&pki);
            let end = chain.find("-----END CERTIFICATE-----").unwrap();
            chain[..end + 26].to_string()
        }),
        ("not a certificate", "hello".to_string()),
    ];
    for (case, pem) in cases {
        let server = StubServer::serving(&pki, pem).await;
        let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
        let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

        let result = verify_at(&verifier, &headers, BODY, now()).await;

        assert!(
            matches!(
                result,
                Err(Rejection::MalformedHeader {
                    header: "paypal-cert-url",
                    ..
                })
            ),
            "{case}: {result:?}"
        );
    }
}

#[tokio::test]
async fn other_trust_store_rejects_chain() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let settings = PayPalSettings::new(
        PayPalMode::Sandbox,
        WEBHOOK_ID,
        stranger.trust_store(),
        pki.client(server.address),
    );
    let verifier = PayPalVerifier::new(settings).unwrap();
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert_cert_rejected(&result);
}

#[tokio::test]
async fn other_algorithms_rejected() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    for algorithm in ["SHA1withRSA", "sha256", "SHA256withECDSA", "none"] {
        let mut headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
        headers.insert("paypal-auth-algo", HeaderValue::from_static(algorithm));

        let result = verify_at(&verifier, &headers, BODY, now()).await;

        assert_eq!(
            result,
            Err(Rejection::NoSupportedSignature("paypal-auth-algo")),
            "{algorithm}"
        );
    }
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn transmission_time_window_enforced() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
    let minutes = |m: i64| chrono::Duration::minutes(m);

    let stale = verify_at(&verifier, &headers, BODY, now() + minutes(6)).await;
    let future = verify_at(&verifier, &headers, BODY, now() - minutes(6)).await;
    let inside = verify_at(&verifier, &headers, BODY, now() + minutes(4)).await;

    assert!(
        matches!(stale, Err(Rejection::TimestampTooOld { .. })),
        "{stale:?}"
    );
    assert!(
        matches!(future, Err(Rejection::TimestampTooNew { .. })),
        "{future:?}"
    );
    assert!(inside.is_ok(), "{inside:?}");
}

#[tokio::test]
async fn missing_headers_rejected() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, valid_chain(&pki)).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    for name in [
        "paypal-transmission-id",
        "paypal-transmission-time",
        "paypal-transmission-sig",
        "paypal-cert-url",
        "paypal-auth-algo",
    ] {
        let mut headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
        headers.remove(name);

        let result = verify_at(&verifier, &headers, BODY, now()).await;

        assert_eq!(result, Err(Rejection::MissingHeader(name)));
    }
}

fn assert_unavailable(result: &Result<payhook::providers::Verified, Rejection>) {
    assert!(
        matches!(result, Err(Rejection::VerifierUnavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn unreachable_certificate_host_is_retryable() {
    let pki = Pki::new();
    let address = closed_address().await;
    let settings = PayPalSettings::new(
        PayPalMode::Sandbox,
        WEBHOOK_ID,
        pki.trust_store(),
        pki.client(address),
    );
    let verifier = PayPalVerifier::new(settings).unwrap();
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert_unavailable(&result);
}

#[tokio::test]
async fn slow_certificate_host_times_out() {
    let pki = Pki::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts connections and never sends a byte.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let client = pki.client(address).with_timeout(Duration::from_millis(300));
    let settings = PayPalSettings::new(PayPalMode::Sandbox, WEBHOOK_ID, pki.trust_store(), client);
    let verifier = PayPalVerifier::new(settings).unwrap();
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);
    let started = std::time::Instant::now();

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert_unavailable(&result);
    assert!(started.elapsed() < Duration::from_secs(3));
    silent.abort();
}

#[tokio::test]
async fn server_errors_retryable_redirects_not_followed() {
    let pki = Pki::new();
    let failing = StubServer::start(
        &pki,
        Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, String::new())),
    )
    .await;
    let redirecting =
        StubServer::start(&pki, Arc::new(|_| (StatusCode::FOUND, String::new()))).await;
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

    let unavailable = verify_at(
        &sandbox_verifier(&pki, &failing, WEBHOOK_ID),
        &headers,
        BODY,
        now(),
    )
    .await;
    let redirected = verify_at(
        &sandbox_verifier(&pki, &redirecting, WEBHOOK_ID),
        &headers,
        BODY,
        now(),
    )
    .await;

    assert_unavailable(&unavailable);
    assert_cert_rejected(&redirected);
    assert_eq!(redirecting.recorded().len(), 1);
}

#[tokio::test]
async fn oversized_certificate_rejected() {
    let pki = Pki::new();
    let huge = format!("{}{}", valid_chain(&pki), "#".repeat(70 * 1024));
    let server = StubServer::serving(&pki, huge).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, SANDBOX_CERT_URL);

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert_cert_rejected(&result);
}
