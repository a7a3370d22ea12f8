#![no_main]

use libfuzzer_sys::fuzz_target;
use payhook::http::webhook::provider_from_path;

fuzz_target!(|path: &str| {
    if let Some(name) = provider_from_path(path) {
        assert!(!name.is_empty());
        assert!(name.split('/').count() <= 2, "{path:?} gave {name:?}");
        assert!(!name.contains(".."), "{path:?} gave {name:?}");
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'-' | b'_' | b'/')),
            "{path:?} gave {name:?}"
        );
    }
});
