use chrono::{DateTime, TimeZone, Utc};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

/// Stripe's published SDK test vector: secret, timestamp, payload and the resulting `v1`.
const SDK_SECRET: &str = "whsec_test_secret";
const SDK_ROLLED_SECRET: &str = "whsec_test_secret_rolled_key";
const SDK_TIMESTAMP: i64 = 1_700_000_000;
const SDK_PAYLOAD: &str = "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
const SDK_V1: &str = "4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150";
/// HMAC-SHA256 of the same payload and timestamp under `SDK_ROLLED_SECRET`.
const SDK_ROLLED_V1: &str = "dc80d0334b78e0dbbc3d5352c151a428b746163b94ad381096bb293b9e650f1e";

/// Secrets and a raw body of this project's own, with `v1` values computed independently
/// (Python `hmac`, timestamp `RAW_TIMESTAMP`).
const CURRENT_SECRET: &str = "whsec_payhook_current_0001";
const PREVIOUS_SECRET: &str = "whsec_payhook_previous_0001";
const OTHER_SECRET: &str = "whsec_payhook_unrelated_0001";
const RAW_TIMESTAMP: i64 = 1_767_225_600;
const RAW_BODY: &str = "{\n  \"id\": \"evt_payhook_raw_0001\",\n  \"object\": \"event\",\n  \"type\": \"charge.succeeded\",\n  \"data\": {\n    \"object\": {\n      \"description\": \"Crème brûlée – naïve café\"\n    }\n  }\n}";
const RAW_V1_CURRENT: &str = "aea2a8671f2fa88ec03948317c8237b05de514966e8fb3cc7da25f79a9897e38";
const RAW_V1_PREVIOUS: &str = "9404ac00e2a8f91b59d9c6855167560ce0f4677fa6b6a47ff18cc19e714081f9";

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().expect("valid time")
}

fn verifier(secrets: &[&str]) -> StripeVerifier {
    let secrets = secrets.iter().map(|s| Secret::new(*s)).collect();
    StripeVerifier::new(secrets, DEFAULT_TOLERANCE).expect("valid configuration")
}

fn headers_with(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("stripe-signature"),
        HeaderValue::from_str(value).expect("header value is ASCII"),
    );
    headers
}

fn run(
    verifier: &StripeVerifier,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, Rejection> {
    let request = VerifyRequest {
        headers,
        body,
        now: at(now),
    };
    verifier
        .verify(request)
        .now_or_never()
        .expect("Stripe verification never waits")
}

fn verify(secrets: &[&str], header: &str, body: &[u8], now: i64) -> Result<Verified, Rejection> {
    run(&verifier(secrets), &headers_with(header), body, now)
}

fn key_id(result: Result<Verified, Rejection>) -> Result<String, Rejection> {
    result.map(|verified| verified.key_id)
}

#[test]
fn sign_header_matches_sdk_vector() {
    let header = sign_header(
        &Secret::new(SDK_SECRET),
        SDK_TIMESTAMP,
        SDK_PAYLOAD.as_bytes(),
    );

    assert_eq!(header, format!("t={SDK_TIMESTAMP},v1={SDK_V1}"));
}

#[test]
fn sign_header_matches_own_vectors() {
    let current = sign_header(
        &Secret::new(CURRENT_SECRET),
        RAW_TIMESTAMP,
        RAW_BODY.as_bytes(),
    );
    let previous = sign_header(
        &Secret::new(PREVIOUS_SECRET),
        RAW_TIMESTAMP,
        RAW_BODY.as_bytes(),
    );

    assert_eq!(current, format!("t={RAW_TIMESTAMP},v1={RAW_V1_CURRENT}"));
    assert_eq!(previous, format!("t={RAW_TIMESTAMP},v1={RAW_V1_PREVIOUS}"));
}

/// Expected outcome of one vector: the matching key id or a rejection code.
enum Expect {
    Accept(&'static str),
    Reject(&'static str),
}

#[test]
fn stripe_sdk_vector_table() {
    let valid = format!("t={SDK_TIMESTAMP},v1={SDK_V1}");
    let rolled = format!("t={SDK_TIMESTAMP},v1={SDK_V1},v1={SDK_ROLLED_V1}");
    // (name, header, secret, now, payload, expected)
    let cases: Vec<(&str, String, &str, i64, &str, Expect)> = vec![
        (
            "valid single v1",
            valid.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Accept("stripe#1"),
        ),
        (
            "valid plus unreadable v1",
            format!("{valid},v1=bad_signature"),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Accept("stripe#1"),
        ),
        (
            "valid v1 plus test-mode v0",
            format!("{valid},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Accept("stripe#1"),
        ),
        (
            "only v0 even with a valid HMAC",
            format!("t={SDK_TIMESTAMP},v0={SDK_V1}"),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("no_supported_signature"),
        ),
        (
            "wrong signature",
            format!("t={SDK_TIMESTAMP},v1=bad_signature"),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("invalid_signature"),
        ),
        (
            "wrong secret",
            valid.clone(),
            "whsec_other_secret",
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("invalid_signature"),
        ),
        (
            "age equal to tolerance",
            valid.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP + 300,
            SDK_PAYLOAD,
            Expect::Accept("stripe#1"),
        ),
        (
            "age one second over tolerance",
            valid.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP + 301,
            SDK_PAYLOAD,
            Expect::Reject("timestamp_too_old"),
        ),
        (
            "very old timestamp",
            valid.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP + 1_000_000,
            SDK_PAYLOAD,
            Expect::Reject("timestamp_too_old"),
        ),
        (
            "timestamp an hour ahead",
            valid.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP - 3600,
            SDK_PAYLOAD,
            Expect::Reject("timestamp_too_new"),
        ),
        (
            "rotation header with old secret",
            rolled.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Accept("stripe#1"),
        ),
        (
            "rotation header with rolled secret",
            rolled.clone(),
            SDK_ROLLED_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Accept("stripe#1"),
        ),
        (
            "garbage header",
            "bad_header".to_string(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("malformed_signature_header"),
        ),
        (
            "empty header",
            String::new(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("missing_signature_header"),
        ),
        (
            "t without value",
            "t=".to_string(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("malformed_signature_header"),
        ),
        (
            "scheme without equals sign",
            "v1,t=1".to_string(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("malformed_signature_header"),
        ),
        (
            "space after comma",
            format!("t={SDK_TIMESTAMP}, v1={SDK_V1}"),
            SDK_SECRET,
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
            Expect::Reject("no_supported_signature"),
        ),
        (
            "re-serialized body",
            valid.clone(),
            SDK_SECRET,
            SDK_TIMESTAMP,
            "{\"id\":\"evt_test_webhook\",\"object\":\"event\"}",
            Expect::Reject("invalid_signature"),
        ),
    ];

    for (name, header, secret, now, payload, expected) in cases {
        let result = verify(&[secret], &header, payload.as_bytes(), now);

        match expected {
            Expect::Accept(expected_key) => {
                let verified = result.unwrap_or_else(|e| panic!("{name}: rejected with {e}"));
                assert_eq!(verified.key_id, expected_key, "{name}");
            }
            Expect::Reject(code) => {
                let rejection = result.expect_err(name);
                assert_eq!(rejection.code(), code, "{name}: {rejection}");
            }
        }
    }
}

#[test]
fn secret_with_trailing_newline_rejected() {
    let result = StripeVerifier::new(
        vec![Secret::new(format!("{SDK_SECRET}\n"))],
        DEFAULT_TOLERANCE,
    );

    assert_eq!(result.err(), Some(StripeConfigError::SecretWhitespace(1)));
}

#[test]
fn constructor_rejects_bad_configuration() {
    let good = || Secret::new(SDK_SECRET);

    assert_eq!(
        StripeVerifier::new(Vec::new(), DEFAULT_TOLERANCE).err(),
        Some(StripeConfigError::NoSecrets)
    );
    assert_eq!(
        StripeVerifier::new(vec![good(), Secret::new("")], DEFAULT_TOLERANCE).err(),
        Some(StripeConfigError::EmptySecret(2))
    );
    assert_eq!(
        StripeVerifier::new(vec![Secret::new(" whsec_x")], DEFAULT_TOLERANCE).err(),
        Some(StripeConfigError::SecretWhitespace(1))
    );
    // Stripe's libraries read a zero tolerance as "no age check"; payhook always checks.
    assert_eq!(
        StripeVerifier::new(vec![good()], Duration::ZERO).err(),
        Some(StripeConfigError::ZeroTolerance)
    );
}

#[test]
fn verified_carries_header_not_secret() {
    let header = format!("t={SDK_TIMESTAMP},v1={SDK_V1}");

    let verified = verify(
        &[OTHER_SECRET, SDK_SECRET],
        &header,
        SDK_PAYLOAD.as_bytes(),
        SDK_TIMESTAMP,
    )
    .expect("second secret matches");

    assert_eq!(verified.key_id, "stripe#2");
    assert_eq!(verified.signature, header);
    assert_eq!(
        verified.headers,
        vec![("Stripe-Signature".to_string(), header.clone())]
    );
    assert!(!format!("{verified:?}").contains(SDK_SECRET));
}

#[test]
fn verifier_debug_hides_secrets() {
    let debug = format!("{:?}", verifier(&[CURRENT_SECRET]));

    assert!(!debug.contains(CURRENT_SECRET), "{debug}");
    assert!(!debug.contains("payhook_current"), "{debug}");
}

#[test]
fn raw_body_verified_byte_for_byte() {
    let header = format!("t={RAW_TIMESTAMP},v1={RAW_V1_CURRENT}");
    let latin1: Vec<u8> = RAW_BODY
        .chars()
        .flat_map(|c| match u8::try_from(u32::from(c)) {
            Ok(byte) => vec![byte],
            Err(_) => c.to_string().into_bytes(),
        })
        .collect();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        (
            "re-serialized compact",
            serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(RAW_BODY).unwrap())
                .unwrap(),
        ),
        ("trailing newline", format!("{RAW_BODY}\n").into_bytes()),
        (
            "CRLF line ends",
            RAW_BODY.replace('\n', "\r\n").into_bytes(),
        ),
        (
            "unicode escaped",
            RAW_BODY
                .chars()
                .map(|c| {
                    if c.is_ascii() {
                        c.to_string()
                    } else {
                        format!("\\u{:04x}", u32::from(c))
                    }
                })
                .collect::<String>()
                .into_bytes(),
        ),
        ("latin1 re-encoded", latin1),
    ];

    let original = verify(
        &[CURRENT_SECRET],
        &header,
        RAW_BODY.as_bytes(),
        RAW_TIMESTAMP,
    );
    assert_eq!(key_id(original), Ok("stripe#1".to_string()));
    for (name, body) in &variants {
        assert_ne!(body.as_slice(), RAW_BODY.as_bytes(), "{name} must differ");
        let result = verify(&[CURRENT_SECRET], &header, body, RAW_TIMESTAMP);
        assert_eq!(key_id(result), Err(Rejection::SignatureMismatch), "{name}");
    }

    // Each variant verifies when it is signed itself, so nothing normalizes the bytes.
    for (name, body) in &variants {
        let own = sign_header(&Secret::new(CURRENT_SECRET), RAW_TIMESTAMP, body);
        let result = verify(&[CURRENT_SECRET], &own, body, RAW_TIMESTAMP);
        assert_eq!(key_id(result), Ok("stripe#1".to_string()), "{name}");
    }
}

#[test]
fn header_name_case_ignored() {
    let value = format!("t={RAW_TIMESTAMP},v1={RAW_V1_CURRENT}");
    for name in ["Stripe-Signature", "stripe-signature", "STRIPE-SIGNATURE"] {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );

        let result = run(
            &verifier(&[CURRENT_SECRET]),
            &headers,
            RAW_BODY.as_bytes(),
            RAW_TIMESTAMP,
        );

        assert_eq!(key_id(result), Ok("stripe#1".to_string()), "{name}");
    }
}

#[test]
fn any_v1_matches_during_rotation() {
    let junk_v0 = "0".repeat(64);
    let old_then_new =
        format!("t={RAW_TIMESTAMP},v1={RAW_V1_PREVIOUS},v1={RAW_V1_CURRENT},v0={junk_v0}");
    let new_then_old =
        format!("t={RAW_TIMESTAMP},v1={RAW_V1_CURRENT},v1={RAW_V1_PREVIOUS},v0={junk_v0}");
    // (configured secrets, expected key id or rejection)
    let cases: [(&[&str], Result<&str, Rejection>); 5] = [
        (&[CURRENT_SECRET], Ok("stripe#1")),
        (&[PREVIOUS_SECRET], Ok("stripe#1")),
        (&[PREVIOUS_SECRET, CURRENT_SECRET], Ok("stripe#1")),
        (&[OTHER_SECRET, CURRENT_SECRET], Ok("stripe#2")),
        (&[OTHER_SECRET], Err(Rejection::SignatureMismatch)),
    ];
    for header in [&old_then_new, &new_then_old] {
        for (secrets, expected) in &cases {
            let result = verify(secrets, header, RAW_BODY.as_bytes(), RAW_TIMESTAMP);

            let expected = expected.clone().map(str::to_string);
            assert_eq!(key_id(result), expected, "{secrets:?} with {header}");
        }
    }
}

#[test]
fn only_v0_rejected_even_if_valid() {
    let header = format!("t={RAW_TIMESTAMP},v0={RAW_V1_CURRENT}");

    let result = verify(
        &[CURRENT_SECRET],
        &header,
        RAW_BODY.as_bytes(),
        RAW_TIMESTAMP,
    );

    assert_eq!(
        key_id(result),
        Err(Rejection::NoSupportedSignature("Stripe-Signature"))
    );
}

#[test]
fn timestamp_window_applies_both_ways() {
    let secret = Secret::new(CURRENT_SECRET);
    let body = RAW_BODY.as_bytes();
    // (seconds the signature time lies before now, expected)
    let cases = [
        (0, Ok("stripe#1".to_string())),
        (299, Ok("stripe#1".to_string())),
        (300, Ok("stripe#1".to_string())),
        (
            301,
            Err(Rejection::TimestampTooOld {
                age_seconds: 301,
                tolerance_seconds: 300,
            }),
        ),
        (-299, Ok("stripe#1".to_string())),
        (-300, Ok("stripe#1".to_string())),
        (
            -301,
            Err(Rejection::TimestampTooNew {
                ahead_seconds: 301,
                tolerance_seconds: 300,
            }),
        ),
    ];
    for (age, expected) in cases {
        let header = sign_header(&secret, RAW_TIMESTAMP - age, body);

        let result = verify(&[CURRENT_SECRET], &header, body, RAW_TIMESTAMP);

        assert_eq!(key_id(result), expected, "age {age}");
    }
}

#[test]
fn custom_tolerance_is_used() {
    let verifier =
        StripeVerifier::new(vec![Secret::new(CURRENT_SECRET)], Duration::from_secs(10)).unwrap();
    let body = RAW_BODY.as_bytes();
    let header = sign_header(&Secret::new(CURRENT_SECRET), RAW_TIMESTAMP - 15, body);

    let result = run(&verifier, &headers_with(&header), body, RAW_TIMESTAMP);

    assert_eq!(
        key_id(result),
        Err(Rejection::TimestampTooOld {
            age_seconds: 15,
            tolerance_seconds: 10,
        })
    );
}

#[test]
fn signature_checked_before_age() {
    let stale = RAW_TIMESTAMP - 10_000;
    let header = format!("t={stale},v1={RAW_V1_CURRENT}");

    let result = verify(
        &[CURRENT_SECRET],
        &header,
        RAW_BODY.as_bytes(),
        RAW_TIMESTAMP,
    );

    assert_eq!(key_id(result), Err(Rejection::SignatureMismatch));
}

#[test]
fn signed_payload_uses_timestamp_text() {
    // "t=01767225600" is the same number, but the signed payload starts with its characters.
    let header = format!("t=0{RAW_TIMESTAMP},v1={RAW_V1_CURRENT}");

    let result = verify(
        &[CURRENT_SECRET],
        &header,
        RAW_BODY.as_bytes(),
        RAW_TIMESTAMP,
    );

    assert_eq!(key_id(result), Err(Rejection::SignatureMismatch));
}

#[test]
fn upper_case_hex_signature_accepted() {
    let header = format!("t={RAW_TIMESTAMP},v1={}", RAW_V1_CURRENT.to_uppercase());

    let result = verify(
        &[CURRENT_SECRET],
        &header,
        RAW_BODY.as_bytes(),
        RAW_TIMESTAMP,
    );

    assert_eq!(key_id(result), Ok("stripe#1".to_string()));
}

#[test]
fn malformed_headers_rejected() {
    let v1 = RAW_V1_CURRENT;
    let cases = [
        format!("v1={v1}"),
        format!("t=abc,v1={v1}"),
        format!("t=-5,v1={v1}"),
        format!("t=+{RAW_TIMESTAMP},v1={v1}"),
        format!("t=1.5,v1={v1}"),
        format!("t=99999999999999999999,v1={v1}"),
        format!("t={RAW_TIMESTAMP},t={RAW_TIMESTAMP},v1={v1}"),
        format!("t={RAW_TIMESTAMP},v1={v1},"),
        format!("t={RAW_TIMESTAMP};v1={v1}"),
    ];
    for header in cases {
        let result = verify(
            &[CURRENT_SECRET],
            &header,
            RAW_BODY.as_bytes(),
            RAW_TIMESTAMP,
        );

        let rejection = key_id(result).expect_err(&header);
        assert_eq!(rejection.code(), "malformed_signature_header", "{header}");
    }
}

#[test]
fn missing_or_repeated_header_rejected() {
    let verifier = verifier(&[CURRENT_SECRET]);
    let body = RAW_BODY.as_bytes();
    let value = HeaderValue::from_str(&format!("t={RAW_TIMESTAMP},v1={RAW_V1_CURRENT}")).unwrap();
    let mut repeated = HeaderMap::new();
    repeated.append("stripe-signature", value.clone());
    repeated.append("stripe-signature", value);
    let mut non_ascii = HeaderMap::new();
    non_ascii.insert(
        "stripe-signature",
        HeaderValue::from_bytes(b"t=1,v1=\xe9").unwrap(),
    );

    let missing = run(&verifier, &HeaderMap::new(), body, RAW_TIMESTAMP);
    let repeated = run(&verifier, &repeated, body, RAW_TIMESTAMP);
    let non_ascii = run(&verifier, &non_ascii, body, RAW_TIMESTAMP);

    assert_eq!(
        key_id(missing),
        Err(Rejection::MissingHeader("Stripe-Signature"))
    );
    assert_eq!(
        key_id(repeated).map_err(|e| e.code()),
        Err("malformed_signature_header")
    );
    assert_eq!(
        key_id(non_ascii).map_err(|e| e.code()),
        Err("malformed_signature_header")
    );
}

#[test]
fn parser_keeps_every_v1_item() {
    let header = "t=12,v0=aa,v1=first,v2=bb,v1=second,v1=third=x";

    let parsed = parse_header(header).expect("well-formed header");

    assert_eq!(parsed.timestamp, 12);
    assert_eq!(parsed.timestamp_text, "12");
    assert_eq!(parsed.v1, vec!["first", "second", "third=x"]);
}

#[test]
fn identity_available_through_verifier() {
    let identity = verifier(&[CURRENT_SECRET])
        .identity(&HeaderMap::new(), RAW_BODY.as_bytes())
        .expect("body has id and type");

    assert_eq!(identity.event_id, "evt_payhook_raw_0001");
    assert_eq!(identity.event_type, "charge.succeeded");
    assert_eq!(identity.created_at, None);
}
