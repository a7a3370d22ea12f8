#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use payhook::fuzzing::verify_now;
use payhook::providers::standard::StandardWebhooksVerifier;
use payhook::secret::Secret;

fuzz_target!(|input: (String, String, String, Vec<u8>)| {
    let (id, timestamp, signature, body) = input;
    let verifier = StandardWebhooksVerifier::new(
        vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
        Duration::from_secs(300),
    )
    .expect("valid secret");
    let headers = common::headers(&[
        ("webhook-id", &id),
        ("webhook-timestamp", &timestamp),
        ("webhook-signature", &signature),
    ]);
    let result = verify_now(&verifier, &headers, &body, common::now());
    assert!(
        result.is_some(),
        "Standard Webhooks verification waited on I/O"
    );
});
