#![allow(dead_code)]

//! Helpers shared by the fuzz targets.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};

/// A fixed clock, so a crash reproduces from its input alone.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("valid time")
}

/// Builds a header map from `(name, value)` pairs, skipping values HTTP cannot carry.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_str(value) {
            map.append(name, value);
        }
    }
    map
}
