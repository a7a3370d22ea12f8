use payhook::providers::Rejection;

use crate::*;

const NOW: &str = "2024-06-01T00:00:00Z";

const LOCAL_BODY: &str = r#"{"id":"evt_local_vector","amount":"12.34","currency":"EUR"}"#;

const RAZORPAY_BODY: &str = "{\n  \"event\": \"payment.authorized\",\n  \"entity\": \"event\",\n  \"contains\": [\n    \"payment\"\n  ],\n  \"payload\": {\n    \"payment\": {\n      \"entity\": {\n        \"id\": \"pay_6koWN7bvxujzxM\",\n        \"entity\": \"payment\",\n        \"amount\": 1000000,\n        \"currency\": \"INR\",\n        \"status\": \"captured\",\n        \"order_id\": \"order_100000000order\",\n        \"international\": false,\n        \"method\": \"card\",\n        \"amount_refunded\": 0,\n        \"refund_status\": null,\n        \"captured\": true,\n        \"description\": \"random description\",\n        \"card_id\": \"card_6koWNAT6LASUqy\",\n        \"bank\": null,\n        \"wallet\": null,\n        \"vpa\": null,\n        \"email\": \"a@b.com\",\n        \"contact\": \"+919999999999\",\n        \"notes\": {\n          \"merchant_order_id\": \"random order id\"\n        },\n        \"fee\": 23000,\n        \"service_tax\": 3000,\n        \"error_code\": null,\n        \"error_description\": null,\n        \"created_at\": 1479978483\n      }\n    }\n  },\n  \"created_at\": 1400826760\n}\n";

pub const SQUARE_URL: &str = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
pub const SQUARE_BODY: &str = r#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;

#[tokio::test]
async fn shopify_vector_verifies() {
    let verifier = verifier(SHOPIFY, "local_test_secret");
    let map = headers(&[(
        "X-Shopify-Hmac-Sha256",
        "7i7ph+PQoTfri8pqKzeWdvItO/bXc1NP4qU/acmNToA=",
    )]);

    let genuine = verify(&verifier, &map, LOCAL_BODY, at(NOW)).await;
    let forged = verify(&verifier, &map, &tampered(LOCAL_BODY), at(NOW)).await;

    assert!(genuine.is_ok(), "{genuine:?}");
    assert_eq!(forged, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn lemonsqueezy_vector_verifies() {
    let verifier = verifier(LEMONSQUEEZY, "local_test_secret");
    let map = headers(&[(
        "X-Signature",
        "ee2ee987e3d0a137eb8bca6a2b379676f22d3bf6d773534fe2a53f69c98d4e80",
    )]);

    let genuine = verify(&verifier, &map, LOCAL_BODY, at(NOW)).await;
    let forged = verify(&verifier, &map, &tampered(LOCAL_BODY), at(NOW)).await;

    assert!(genuine.is_ok(), "{genuine:?}");
    assert_eq!(forged, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn razorpay_vector_needs_trailing_newline() {
    let verifier = verifier(RAZORPAY, "key_secret");
    let map = headers(&[(
        "X-Razorpay-Signature",
        "d60e67fd884556c045e9be7dad57903e33efc7172c17c6e3ef77db42d2b366e9",
    )]);

    let genuine = verify(&verifier, &map, RAZORPAY_BODY, at(NOW)).await;
    let trimmed = verify(&verifier, &map, RAZORPAY_BODY.trim_end(), at(NOW)).await;
    let forged = verify(&verifier, &map, &tampered(RAZORPAY_BODY), at(NOW)).await;

    assert!(genuine.is_ok(), "{genuine:?}");
    assert_eq!(trimmed, Err(Rejection::SignatureMismatch));
    assert_eq!(forged, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn github_vectors_verify() {
    let vectors = [
        (
            "It's a Secret to Everybody",
            "Hello, World!",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
        (
            "mysecret",
            "{\n  \"foo\": \"bar\"\n}\n",
            "sha256=e3eccac34c43c7dc1cbb905488b1b81347fcc700a7b025697a9d07862256023f",
        ),
    ];
    for (secret, body, signature) in vectors {
        let verifier = verifier(GITHUB, secret);
        let map = headers(&[("X-Hub-Signature-256", signature)]);
        let unprefixed = headers(&[("X-Hub-Signature-256", &signature[7..])]);

        let genuine = verify(&verifier, &map, body, at(NOW)).await;
        let forged = verify(&verifier, &map, &format!("{body} "), at(NOW)).await;
        let no_prefix = verify(&verifier, &unprefixed, body, at(NOW)).await;

        assert!(genuine.is_ok(), "{secret}: {genuine:?}");
        assert_eq!(forged, Err(Rejection::SignatureMismatch));
        assert_eq!(
            no_prefix,
            Err(Rejection::NoSupportedSignature("x-hub-signature-256"))
        );
    }
}

fn square_verifier(key: &str, url: &str) -> payhook::providers::hmac::HmacVerifier {
    let mut scheme = config(SQUARE).scheme;
    scheme.url = Some(url.to_string());
    payhook::providers::hmac::HmacVerifier::new(scheme, vec![payhook::secret::Secret::new(key)])
        .unwrap()
}

#[tokio::test]
async fn square_vector_binds_url_and_key() {
    let signature = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=";
    let map = headers(&[("x-square-hmacsha256-signature", signature)]);
    let other_url = "https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9";

    let genuine = verify(
        &square_verifier("Ibxx_5AKakO-3qeNVR61Dw", SQUARE_URL),
        &map,
        SQUARE_BODY,
        at(NOW),
    )
    .await;
    let wrong_url = verify(
        &square_verifier("Ibxx_5AKakO-3qeNVR61Dw", other_url),
        &map,
        SQUARE_BODY,
        at(NOW),
    )
    .await;
    let wrong_key = verify(
        &square_verifier("MCmhFRxGX82xMwg5FsaoQA", SQUARE_URL),
        &map,
        SQUARE_BODY,
        at(NOW),
    )
    .await;
    let forged = verify(
        &square_verifier("Ibxx_5AKakO-3qeNVR61Dw", SQUARE_URL),
        &map,
        &tampered(SQUARE_BODY),
        at(NOW),
    )
    .await;

    assert!(genuine.is_ok(), "{genuine:?}");
    assert_eq!(wrong_url, Err(Rejection::SignatureMismatch));
    assert_eq!(wrong_key, Err(Rejection::SignatureMismatch));
    assert_eq!(forged, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn square_second_vector_verifies() {
    let map = headers(&[(
        "x-square-hmacsha256-signature",
        "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
    )]);
    let verifier = square_verifier("signature-key", "https://webhook.site/webhooks");

    let genuine = verify(
        &verifier,
        &map,
        r#"{"data":{"type":"webhooks","id":">id<"}}"#,
        at(NOW),
    )
    .await;

    assert!(genuine.is_ok(), "{genuine:?}");
}

const PADDLE_BODY: &str = r#"{"data": ["1", "2"]}"#;
const PADDLE_HEADER: &str =
    "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9";

#[tokio::test]
async fn paddle_vector_verifies_within_window() {
    let verifier = verifier(PADDLE, "VALID_SECRET");
    let map = headers(&[("Paddle-Signature", PADDLE_HEADER)]);

    let genuine = verify(&verifier, &map, PADDLE_BODY, at("2023-11-01T00:00:00Z")).await;
    let edge = verify(&verifier, &map, PADDLE_BODY, at("2023-11-01T00:00:05Z")).await;
    let stale = verify(&verifier, &map, PADDLE_BODY, at("2023-11-01T00:00:06Z")).await;
    let future = verify(&verifier, &map, PADDLE_BODY, at("2023-10-31T23:59:54Z")).await;

    assert!(genuine.is_ok(), "{genuine:?}");
    assert!(edge.is_ok(), "{edge:?}");
    assert!(matches!(
        stale,
        Err(Rejection::TimestampTooOld { age_seconds: 6, .. })
    ));
    assert!(matches!(
        future,
        Err(Rejection::TimestampTooNew {
            ahead_seconds: 6,
            ..
        })
    ));
}

#[tokio::test]
async fn paddle_rejects_forgeries() {
    let now = at("2023-11-01T00:00:00Z");
    let map = headers(&[("Paddle-Signature", PADDLE_HEADER)]);
    let moved_ts = headers(&[(
        "Paddle-Signature",
        "ts=1698796801;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9",
    )]);

    let wrong_secret = verify(
        &verifier(PADDLE, "INVALID_VALID_SECRET"),
        &map,
        PADDLE_BODY,
        now,
    )
    .await;
    let respaced = verify(
        &verifier(PADDLE, "VALID_SECRET"),
        &map,
        r#"{ "data": [ "1", "2" ]}"#,
        now,
    )
    .await;
    let resigned_time = verify(
        &verifier(PADDLE, "VALID_SECRET"),
        &moved_ts,
        PADDLE_BODY,
        now,
    )
    .await;

    assert_eq!(wrong_secret, Err(Rejection::SignatureMismatch));
    assert_eq!(respaced, Err(Rejection::SignatureMismatch));
    assert_eq!(resigned_time, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn paddle_repeated_and_unknown_items() {
    let map = headers(&[(
        "Paddle-Signature",
        "ts=1698796800;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261;h2=RANDOM_HASH",
    )]);

    let result = verify(
        &verifier(PADDLE, "VALID_SECRET"),
        &map,
        r#"{"data": "value"}"#,
        at("2023-11-01T00:00:00Z"),
    )
    .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn paddle_malformed_headers_rejected() {
    let verifier = verifier(PADDLE, "VALID_SECRET");
    let now = at("2023-11-01T00:00:00Z");

    let garbage = verify(
        &verifier,
        &headers(&[("Paddle-Signature", "invalid_header")]),
        PADDLE_BODY,
        now,
    )
    .await;
    let no_ts = verify(
        &verifier,
        &headers(&[("Paddle-Signature", "h1=invalid_header")]),
        PADDLE_BODY,
        now,
    )
    .await;
    let no_h1 = verify(
        &verifier,
        &headers(&[("Paddle-Signature", "ts=1698796800;h2=abc")]),
        PADDLE_BODY,
        now,
    )
    .await;
    let missing = verify(&verifier, &headers(&[]), PADDLE_BODY, now).await;

    assert!(
        matches!(garbage, Err(Rejection::MalformedHeader { .. })),
        "{garbage:?}"
    );
    assert!(
        matches!(no_ts, Err(Rejection::MalformedHeader { .. })),
        "{no_ts:?}"
    );
    assert_eq!(
        no_h1,
        Err(Rejection::NoSupportedSignature("paddle-signature"))
    );
    assert_eq!(missing, Err(Rejection::MissingHeader("paddle-signature")));
}

#[tokio::test]
async fn rotated_secrets_accept_either() {
    let scheme = config(SHOPIFY).scheme;
    let verifier = payhook::providers::hmac::HmacVerifier::new(
        scheme,
        vec![
            payhook::secret::Secret::new("retired_secret"),
            payhook::secret::Secret::new("local_test_secret"),
        ],
    )
    .unwrap();
    let map = headers(&[(
        "X-Shopify-Hmac-Sha256",
        "7i7ph+PQoTfri8pqKzeWdvItO/bXc1NP4qU/acmNToA=",
    )]);

    let verified = verify(&verifier, &map, LOCAL_BODY, at(NOW)).await.unwrap();

    assert!(
        verified.key_id.starts_with("secret#1:"),
        "{}",
        verified.key_id
    );
    assert_eq!(verified.headers[0].0, "x-shopify-hmac-sha256");
}
