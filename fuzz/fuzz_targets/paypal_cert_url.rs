#![no_main]

use libfuzzer_sys::fuzz_target;
use payhook::providers::paypal::{CertUrlPolicy, PayPalMode};

fuzz_target!(|url: &str| {
    for mode in [PayPalMode::Live, PayPalMode::Sandbox] {
        let policy = CertUrlPolicy::for_mode(mode);
        if let Ok(accepted) = policy.check(url) {
            assert_eq!(accepted.scheme(), "https", "{url:?} accepted as {accepted}");
            let host = accepted.host_str().unwrap_or_default();
            assert!(
                mode.cert_hosts().contains(&host),
                "{url:?} accepted with host {host:?}"
            );
        }
    }
});
