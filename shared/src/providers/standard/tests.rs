use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};

use super::*;

const BODY: &[u8] =
    br#"{"type":"invoice.paid","timestamp":"2024-03-01T12:00:00Z","data":{"ref":"INV-77"}}"#;
const ID: &str = "msg_ph_0000000000000042";
const TS: i64 = 1_709_294_400;

fn key_bytes() -> Vec<u8> {
    (0x20u8..0x38).collect()
}

fn secret() -> Secret {
    Secret::new(format!("whsec_{}", STANDARD.encode(key_bytes())))
}

fn sign(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac::sign(&key, &content)))
}

fn headers(prefix: &str, id: &str, ts: &str, signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [("id", id), ("timestamp", ts), ("signature", signature)] {
        let name = http::HeaderName::from_bytes(format!("{prefix}-{name}").as_bytes()).unwrap();
        map.insert(name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

async fn check(
    verifier: &StandardWebhooksVerifier,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, Rejection> {
    verifier
        .verify(VerifyRequest {
            headers,
            body,
            now: at(now),
        })
        .await
}

fn verifier() -> StandardWebhooksVerifier {
    StandardWebhooksVerifier::new(vec![secret()], DEFAULT_TOLERANCE).unwrap()
}

#[tokio::test]
async fn official_vectors_verify() {
    let vectors = [
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ];
    for (secret, id, ts, body, signature) in vectors {
        let verifier =
            StandardWebhooksVerifier::new(vec![Secret::new(secret)], DEFAULT_TOLERANCE).unwrap();
        let map = headers("webhook", id, &ts.to_string(), signature);

        let verified = check(&verifier, &map, body.as_bytes(), ts).await;

        assert!(verified.is_ok(), "{id}: {verified:?}");
    }
}

#[tokio::test]
async fn official_vector_with_changed_char_rejected() {
    let verifier = StandardWebhooksVerifier::new(
        vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
        DEFAULT_TOLERANCE,
    )
    .unwrap();
    let map = headers(
        "webhook",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
    );

    let result = check(&verifier, &map, br#"{"test": 2432232314}"#, 1_614_265_330).await;

    assert_eq!(result, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn genuine_signature_accepted_with_key_id() {
    let signature = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let map = headers("webhook", ID, &TS.to_string(), &signature);

    let verified = check(&verifier(), &map, BODY, TS).await.unwrap();

    assert!(
        verified.key_id.starts_with("secret#0:"),
        "{}",
        verified.key_id
    );
    assert_eq!(verified.signature, signature);
    assert_eq!(verified.headers.len(), 3);
}

#[tokio::test]
async fn raw_string_key_rejected() {
    let whole_secret = secret().expose().as_bytes().to_vec();
    let signature = sign(&whole_secret, ID, &TS.to_string(), BODY);
    let map = headers("webhook", ID, &TS.to_string(), &signature);

    let result = check(&verifier(), &map, BODY, TS).await;

    assert_eq!(result, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn bogus_then_genuine_accepted() {
    let good = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let bogus = format!("v1,{}", STANDARD.encode([0u8; 32]));
    let list = format!("{bogus} v2,{} v1a,xyz {good}", STANDARD.encode([7u8; 32]));
    let map = headers("webhook", ID, &TS.to_string(), &list);

    let result = check(&verifier(), &map, BODY, TS).await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn only_bogus_signatures_rejected() {
    let bogus = format!("v1,{} v1, v1,AAAA", STANDARD.encode([0u8; 32]));
    let map = headers("webhook", ID, &TS.to_string(), &bogus);

    let result = check(&verifier(), &map, BODY, TS).await;

    assert_eq!(result, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn only_other_versions_rejected() {
    let good = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let other = good.replacen("v1,", "v2,", 1);
    let map = headers("webhook", ID, &TS.to_string(), &other);

    let result = check(&verifier(), &map, BODY, TS).await;

    assert_eq!(
        result,
        Err(Rejection::NoSupportedSignature("webhook-signature"))
    );
}

#[tokio::test]
async fn tampered_body_rejected() {
    let signature = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let map = headers("webhook", ID, &TS.to_string(), &signature);
    let mut body = BODY.to_vec();
    body[10] ^= 1;

    let result = check(&verifier(), &map, &body, TS).await;

    assert_eq!(result, Err(Rejection::SignatureMismatch));
}

#[tokio::test]
async fn stale_and_future_timestamps_rejected() {
    let signature = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let map = headers("webhook", ID, &TS.to_string(), &signature);

    let edge_old = check(&verifier(), &map, BODY, TS + 300).await;
    let too_old = check(&verifier(), &map, BODY, TS + 301).await;
    let edge_new = check(&verifier(), &map, BODY, TS - 300).await;
    let too_new = check(&verifier(), &map, BODY, TS - 301).await;

    assert!(edge_old.is_ok());
    assert!(matches!(too_old, Err(Rejection::TimestampTooOld { .. })));
    assert!(edge_new.is_ok());
    assert!(matches!(too_new, Err(Rejection::TimestampTooNew { .. })));
}

#[tokio::test]
async fn missing_headers_rejected() {
    let signature = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    for (missing, name) in [
        ("id", "webhook-id"),
        ("timestamp", "webhook-timestamp"),
        ("signature", "webhook-signature"),
    ] {
        let mut map = headers("webhook", ID, &TS.to_string(), &signature);
        map.remove(format!("webhook-{missing}"));
        if missing == "id" {
            // Without webhook-id the svix family is tried, which is absent as well.
            map.clear();
        }

        let result = check(&verifier(), &map, BODY, TS).await;

        assert_eq!(result, Err(Rejection::MissingHeader(name)), "{missing}");
    }
}

#[tokio::test]
async fn malformed_id_and_timestamp_rejected() {
    let dotted = sign(&key_bytes(), "msg.1", &TS.to_string(), BODY);
    let dotted_map = headers("webhook", "msg.1", &TS.to_string(), &dotted);
    let text_map = headers("webhook", ID, "hello", &dotted);

    let dotted_result = check(&verifier(), &dotted_map, BODY, TS).await;
    let text_result = check(&verifier(), &text_map, BODY, TS).await;

    assert!(matches!(
        dotted_result,
        Err(Rejection::MalformedHeader {
            header: "webhook-id",
            ..
        })
    ));
    assert!(matches!(
        text_result,
        Err(Rejection::MalformedHeader {
            header: "webhook-timestamp",
            ..
        })
    ));
}

#[tokio::test]
async fn svix_headers_accepted() {
    let signature = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let map = headers("svix", ID, &TS.to_string(), &signature);

    let verified = check(&verifier(), &map, BODY, TS).await.unwrap();
    let identity = verifier().identity(&map, BODY).unwrap();

    assert_eq!(verified.headers[0].0, "svix-id");
    assert_eq!(identity.event_id, ID);
}

#[tokio::test]
async fn rotated_secret_list_accepts_either() {
    let old_key = [9u8; 32];
    let old_secret = Secret::new(STANDARD.encode(old_key));
    let verifier =
        StandardWebhooksVerifier::new(vec![old_secret, secret()], DEFAULT_TOLERANCE).unwrap();
    let signature = sign(&key_bytes(), ID, &TS.to_string(), BODY);
    let map = headers("webhook", ID, &TS.to_string(), &signature);

    let verified = check(&verifier, &map, BODY, TS).await.unwrap();

    assert!(
        verified.key_id.starts_with("secret#1:"),
        "{}",
        verified.key_id
    );
}

#[test]
fn misconfigured_secrets_fail_construction() {
    for bad in [
        "",
        "whsec_",
        "whsec_not base64!",
        "v1,whsec_AAECAwQF",
        "whsec_====",
    ] {
        let result = StandardWebhooksVerifier::new(vec![Secret::new(bad)], DEFAULT_TOLERANCE);

        assert!(
            matches!(result, Err(ConfigError::InvalidSecret { index: 0, .. })),
            "{bad:?}"
        );
    }
    let none = StandardWebhooksVerifier::new(Vec::new(), DEFAULT_TOLERANCE);
    assert!(matches!(none, Err(ConfigError::NoSecrets)));
}

#[test]
fn secret_forms_decode_alike() {
    let padded = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let bare = decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let one_pad = decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS").unwrap();
    let two_pad = decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr").unwrap();

    assert_eq!(padded.len(), 24);
    assert_eq!(padded, bare);
    assert_eq!(one_pad.len(), 23);
    assert_eq!(one_pad[..22], padded[..22]);
    assert_eq!(two_pad.len(), 25);
    assert_eq!(two_pad[..24], padded[..]);
}

#[test]
fn identity_reads_header_and_type() {
    let map = headers("webhook", ID, &TS.to_string(), "v1,x");
    let alt_body = br#"{"eventType":"order.created"}"#;

    let identity = verifier().identity(&map, BODY).unwrap();
    let alt = verifier().identity(&map, alt_body).unwrap();

    assert_eq!(identity.event_id, ID);
    assert_eq!(identity.event_type, "invoice.paid");
    assert_eq!(identity.created_at, Some(at(TS)));
    assert_eq!(alt.event_type, "order.created");
    assert_eq!(alt.created_at, None);
}

#[test]
fn short_secret_is_rejected() {
    for secret in ["v1", "whsec_v1", "whsec_AAECAwQFBgcICQoLDA0O"] {
        let error = decode_secret(secret).unwrap_err();
        assert!(error.contains("at least 16"), "{secret}: {error}");
    }
    assert!(decode_secret("whsec_AAECAwQFBgcICQoLDA0ODw==").is_ok());
}
