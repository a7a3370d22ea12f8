#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use payhook::fuzzing::{paypal_chain, paypal_der_chain};

fuzz_target!(|input: (Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (pem, trust_pem, der) = input;
    // No certificate here is signed by a trusted anchor, so nothing may validate.
    assert!(paypal_chain(&pem, &trust_pem, common::now()).is_err() || !trust_pem.is_empty());
    assert!(paypal_der_chain(&der, common::now()).is_err());
});
