#![no_main]

use libfuzzer_sys::fuzz_target;
use payhook::http::json_guard::{check_unique_keys, json_depth};
use serde_json::Value;

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|body: &[u8]| {
    let scanned = json_depth(body, usize::MAX);
    let _ = check_unique_keys(body);
    // On valid JSON the byte scan and a real parser agree on the depth.
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        assert_eq!(scanned, depth(&value));
    }
    let capped = json_depth(body, 8);
    assert!(capped <= scanned && (capped > 8 || capped == scanned));
});
