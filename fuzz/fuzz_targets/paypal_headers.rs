#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use payhook::fuzzing::paypal_transmission;

fuzz_target!(|input: (String, String, String, String, String)| {
    let (id, time, signature, cert_url, algorithm) = input;
    let headers = common::headers(&[
        ("paypal-transmission-id", &id),
        ("paypal-transmission-time", &time),
        ("paypal-transmission-sig", &signature),
        ("paypal-cert-url", &cert_url),
        ("paypal-auth-algo", &algorithm),
    ]);
    if let Ok(pairs) = paypal_transmission(&headers, common::now(), 300) {
        assert_eq!(pairs.len(), 5);
    }
});
