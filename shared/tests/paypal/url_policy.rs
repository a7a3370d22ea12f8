use payhook::providers::paypal::{PayPalMode, PayPalSettings, PayPalVerifier};

use crate::support::{Pki, StubServer};
use crate::*;

/// Certificate URLs that must be rejected before any request, per mode.
const HOSTILE: &[(PayPalMode, &str)] = &[
    (
        PayPalMode::Live,
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-PH-0001",
    ),
    (
        PayPalMode::Sandbox,
        "https://api.paypal.com/v1/notifications/certs/CERT-PH-0001",
    ),
    (
        PayPalMode::Live,
        "http://api.paypal.com/v1/notifications/certs/CERT-PH-0001",
    ),
    (
        PayPalMode::Live,
        "https://api.paypal.com.attacker.example/cert.pem",
    ),
    (
        PayPalMode::Live,
        "https://api.paypal.com.attacker.example/v1/notifications/certs/CERT-1",
    ),
    (
        PayPalMode::Live,
        "https://attacker.example/?x=api.paypal.com",
    ),
    (
        PayPalMode::Live,
        "https://169.254.169.254/latest/meta-data/",
    ),
    (
        PayPalMode::Live,
        "https://127.0.0.1/v1/notifications/certs/CERT-PH-0001",
    ),
    (
        PayPalMode::Live,
        "https://api.paypal.com@attacker.example/cert.pem",
    ),
    (
        PayPalMode::Live,
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-PH-0001",
    ),
    (
        PayPalMode::Live,
        "https://api.paypal.com/v1/notifications/certs/CERT-1?next=x",
    ),
    (
        PayPalMode::Live,
        "https://api.paypal.com/v1/notifications/certs/CERT-1#x",
    ),
    (PayPalMode::Live, "https://api.paypal.com/v2/other"),
];

#[tokio::test]
async fn hostile_cert_urls_never_fetched() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, pki.chain_pem(SANDBOX_NAME, (2024, 1), (2025, 1))).await;
    for (mode, url) in HOSTILE {
        let settings = PayPalSettings::new(
            *mode,
            WEBHOOK_ID,
            pki.trust_store(),
            pki.client(server.address),
        );
        let verifier = PayPalVerifier::new(settings).unwrap();
        let headers = signed_headers(&pki, WEBHOOK_ID, BODY, url);

        let result = verify_at(&verifier, &headers, BODY, now()).await;

        assert_cert_rejected(&result);
        assert_eq!(server.connections(), 0, "{url} was fetched");
    }
}

#[tokio::test]
async fn allowed_host_reaches_server() {
    let pki = Pki::new();
    let server = StubServer::serving(&pki, pki.chain_pem(SANDBOX_NAME, (2024, 1), (2025, 1))).await;
    let verifier = sandbox_verifier(&pki, &server, WEBHOOK_ID);
    let url = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-PH-0002";
    let headers = signed_headers(&pki, WEBHOOK_ID, BODY, url);

    let result = verify_at(&verifier, &headers, BODY, now()).await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(server.connections(), 1);
}
