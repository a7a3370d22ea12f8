#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use payhook::fuzzing::verify_now;
use payhook::providers::stripe::StripeVerifier;
use payhook::secret::Secret;

fuzz_target!(|input: (String, Vec<u8>)| {
    let (header, body) = input;
    let verifier = StripeVerifier::new(
        vec![Secret::new("whsec_fuzz_one"), Secret::new("whsec_fuzz_two")],
        Duration::from_secs(300),
    )
    .expect("valid secrets");
    let headers = common::headers(&[("stripe-signature", &header)]);
    let result = verify_now(&verifier, &headers, &body, common::now());
    assert!(result.is_some(), "Stripe verification waited on I/O");
});
