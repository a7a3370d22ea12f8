//! Wrong routes, methods and sources, bad-signature floods, injection attempts and a
//! panicking verifier.

use crate::helpers::{PANIC_ROUTE, signature_for, spawn, stripe_event};

const INJECTIONS: [&str; 5] = [
    "'; DROP TABLE webhook_events; --",
    "1 OR 1=1",
    "1; DELETE FROM \"WebhookEvents\"",
    "\" OR \"\"=\"",
    "1' UNION SELECT * FROM sqlite_master --",
];

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let service = spawn(&[]).await;
    let paths = [
        "/api/webhooks/nosuch",
        "/api/webhooks/../admin",
        "/api/webhooks/..%2f..%2fetc%2fpasswd",
        "/api/webhooks/%2e%2e/%2e%2e/etc/passwd",
        "/api/webhooks/stripe/../../api/webhooks/events/1",
        "/api/webhooks/STRIPE",
        "/api/webhooks/stripe%00",
        "/api/webhooks/stripe/a/b",
        "/",
    ];

    for path in paths {
        let answer = service.post(path, &[], b"{}").await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let answer = service
            .send(method, service.public, "/api/webhooks/stripe", &[], b"")
            .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "POST", "{method}");
    }

    service.assert_genuine_served("evt_hi_routes").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn sql_metacharacters_are_inert() {
    let service = spawn(&[]).await;
    service.assert_genuine_served("evt_hi_sql_before").await;

    for injection in INJECTIONS {
        let encoded = percent_encode(injection);
        let detail = service
            .send(
                "GET",
                service.admin,
                &format!("/api/webhooks/events/{encoded}"),
                &[],
                b"",
            )
            .await;
        assert_eq!(detail.status, 400, "{injection}: {}", detail.body);
        // Text filters are bound as parameters, so they match nothing and list nothing.
        for path in [
            format!("/api/webhooks/events?provider={encoded}&eventType={encoded}"),
            format!("/api/webhooks/statistics?provider={encoded}"),
        ] {
            let listed = service.send("GET", service.admin, &path, &[], b"").await;
            assert_eq!(listed.status, 200, "{injection} {path}: {}", listed.body);
        }
        // Typed parameters reject the text with a 400 naming the parameter.
        for (path, parameter) in [
            (format!("/api/webhooks/events?status={encoded}"), "status"),
            (
                format!("/api/webhooks/events?fromDate={encoded}"),
                "fromDate",
            ),
            (format!("/api/webhooks/events?page={encoded}"), "page"),
            (
                format!("/api/webhooks/events/1?include={encoded}"),
                "include",
            ),
            (
                format!("/api/webhooks/retry?maxRetries={encoded}"),
                "maxRetries",
            ),
        ] {
            let method = if path.contains("/retry") {
                "POST"
            } else {
                "GET"
            };
            let rejected = service.send(method, service.admin, &path, &[], b"").await;
            assert_eq!(
                rejected.status, 400,
                "{injection} {path}: {}",
                rejected.body
            );
            assert!(
                rejected.body.contains(parameter),
                "{injection} {path}: {}",
                rejected.body
            );
        }
        let public = service
            .post(&format!("/api/webhooks/{encoded}"), &[], b"{}")
            .await;
        assert_eq!(public.status, 404, "{injection}");
        let body = serde_json::json!({"id": injection, "type": injection}).to_string();
        let signed = service.post_signed(body.as_bytes()).await;
        assert_eq!(signed.status, 200, "{injection}: {}", signed.body);
        service.record_genuine(injection);
    }

    service.assert_genuine_served("evt_hi_sql_after").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn bad_signature_flood_gets_429() {
    let service = spawn(&[
        "--signature-failure-burst",
        "5",
        "--signature-failures-per-minute",
        "6",
    ])
    .await;
    let body = stripe_event("evt_hi_forged");
    let forged = signature_for(b"a different body");
    let mut statuses = Vec::new();

    for _ in 0..12 {
        let answer = service
            .post(
                "/api/webhooks/stripe",
                &[("stripe-signature", &forged)],
                body.as_bytes(),
            )
            .await;
        if answer.status == 429 {
            let retry_after: u64 = answer.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=10).contains(&retry_after), "{retry_after}");
            assert_eq!(answer.code(), "too_many_failures");
        }
        statuses.push(answer.status);
    }

    assert_eq!(&statuses[..5], &[400; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Verified deliveries from the same address are never limited.
    for n in 0..3 {
        service
            .assert_genuine_served(&format!("evt_hi_flood_{n}"))
            .await;
    }
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn allowlist_rejects_other_sources() {
    let blocked = spawn(&["--ip-allowlist", "stripe=192.0.2.0/24;198.51.100.7"]).await;
    let body = stripe_event("evt_hi_blocked");

    let answer = blocked.post_signed(body.as_bytes()).await;

    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.code(), "ip_not_allowed");
    blocked.assert_only_genuine_rows().await;

    let allowed = spawn(&["--ip-allowlist", "stripe=127.0.0.0/8"]).await;
    allowed.assert_genuine_served("evt_hi_allowed").await;
    allowed.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn panicking_verifier_becomes_500() {
    let service = spawn(&[]).await;

    for _ in 0..3 {
        let answer = service.post(PANIC_ROUTE, &[], b"{}").await;
        assert_eq!(answer.status, 500, "{}", answer.body);
        assert_eq!(answer.code(), "internal_error");
        assert!(!answer.body.contains("injected"), "{}", answer.body);
    }

    service.assert_genuine_served("evt_hi_after_panic").await;
    service.assert_only_genuine_rows().await;
}
