#![no_main]

use libfuzzer_sys::fuzz_target;
use payhook::providers::Handler;
use payhook::providers::stripe::StripeHandler;

fuzz_target!(|input: (&str, &str)| {
    let (event_type, payload) = input;
    let _ = StripeHandler.extract(event_type, payload);
});
