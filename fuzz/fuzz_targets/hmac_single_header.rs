#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use payhook::fuzzing::verify_now;
use payhook::providers::Verifier;
use payhook::providers::hmac::{HmacSchemeConfig, HmacVerifier};
use payhook::secret::Secret;

const SCHEME: &str = r#"
signature_header = "X-Shop-Hmac-Sha256"
prefix = "sha256="
algorithm = "hmac-sha256"
encoding = "base64"
message = "{body}"
event_id = "header:X-Shop-Webhook-Id"
event_type = "header:X-Shop-Topic"
"#;

static VERIFIER: LazyLock<HmacVerifier> = LazyLock::new(|| {
    let config: HmacSchemeConfig = toml::from_str(SCHEME).expect("valid scheme");
    HmacVerifier::new(config, vec![Secret::new("fuzz-hmac-secret")]).expect("valid verifier")
});

fuzz_target!(|input: (String, String, String, Vec<u8>)| {
    let (signature, event_id, topic, body) = input;
    let verifier = &*VERIFIER;
    let headers = common::headers(&[
        ("x-shop-hmac-sha256", &signature),
        ("x-shop-webhook-id", &event_id),
        ("x-shop-topic", &topic),
    ]);
    let result = verify_now(verifier, &headers, &body, common::now());
    assert!(result.is_some(), "HMAC verification waited on I/O");
    let _ = verifier.identity(&headers, &body);
});
