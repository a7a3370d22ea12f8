//! Structural checks on a webhook's JSON body that run before any handler parses it: a byte
//! scan for nesting depth and a full parse that rejects repeated object keys.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use thiserror::Error;

/// Reasons a body fails the structural checks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonGuardError {
    #[error("JSON nesting exceeds the maximum depth of {max}")]
    TooDeep { max: usize },
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    DuplicateKey(String),
}

impl JsonGuardError {
    /// Returns the stable error code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            JsonGuardError::TooDeep { .. } => "payload_too_deep",
            JsonGuardError::InvalidJson(_) => "invalid_json",
            JsonGuardError::DuplicateKey(_) => "duplicate_key",
        }
    }
}

/// Returns the deepest nesting of `[` and `{` outside strings, stopping early once `max` is
/// exceeded. It does not validate JSON: unbalanced brackets only count towards the depth.
pub fn json_depth(body: &[u8], max: usize) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > max {
                        return deepest;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Rejects a body nested deeper than `max` levels.
pub fn check_depth(body: &[u8], max: usize) -> Result<(), JsonGuardError> {
    if json_depth(body, max) > max {
        return Err(JsonGuardError::TooDeep { max });
    }
    Ok(())
}

/// Parses `body` as one JSON value and rejects any object that repeats a key.
///
/// serde_json keeps the last of repeated keys while other parsers keep the first, so a
/// repeated `id` or `type` could make two verifiers see two different events in one signed
/// body. Keys are compared after unescaping, so `"id"` and `"\u0069d"` are the same key.
pub fn check_unique_keys(body: &[u8]) -> Result<(), JsonGuardError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let result = UniqueKeys
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    match result {
        Ok(()) => Ok(()),
        // Only `UniqueKeys` raises data errors: every JSON value type is accepted.
        Err(error) if error.is_data() => Err(JsonGuardError::DuplicateKey(error.to_string())),
        Err(error) => Err(JsonGuardError::InvalidJson(error.to_string())),
    }
}

/// A visitor that accepts any JSON value and fails on the first repeated object key.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(UniqueKeys)?;
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!("duplicate JSON key {key:?}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nested_containers() {
        assert_eq!(json_depth(b"{}", 64), 1);
        assert_eq!(json_depth(br#"{"a":[{"b":1}]}"#, 64), 3);
        assert_eq!(json_depth(b"17", 64), 0);
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        let body = br#"{"a":"[[[[{{{{\"[[["}"#;

        assert_eq!(json_depth(body, 64), 1);
    }

    #[test]
    fn depth_stops_past_maximum() {
        let body = "[".repeat(10_000);

        assert_eq!(json_depth(body.as_bytes(), 64), 65);
        assert!(check_depth(body.as_bytes(), 64).is_err());
        assert!(check_depth("[".repeat(64).as_bytes(), 64).is_ok());
    }

    #[test]
    fn repeated_identity_key_is_rejected() {
        let body = br#"{"id":"evt_a","type":"x","id":"evt_b"}"#;

        let error = check_unique_keys(body).unwrap_err();

        assert_eq!(error.code(), "duplicate_key");
        assert!(error.to_string().contains("\"id\""), "{error}");
    }

    #[test]
    fn escaped_repeat_is_still_a_duplicate() {
        let body = br#"{"id":"evt_a","\u0069d":"evt_b"}"#;

        assert_eq!(check_unique_keys(body).unwrap_err().code(), "duplicate_key");
    }

    #[test]
    fn nested_repeat_is_rejected() {
        let body = br#"{"id":"e","data":{"object":{"amount":1,"amount":2}}}"#;

        assert_eq!(check_unique_keys(body).unwrap_err().code(), "duplicate_key");
    }

    #[test]
    fn same_key_in_sibling_objects_is_fine() {
        let body = br#"{"a":{"id":1},"b":{"id":2},"c":[{"id":3},{"id":4}]}"#;

        assert_eq!(check_unique_keys(body), Ok(()));
    }

    #[test]
    fn malformed_json_is_invalid_not_duplicate() {
        for body in [&b"{\"id\":"[..], b"{} trailing", b"\xff", b""] {
            let error = check_unique_keys(body).unwrap_err();
            assert_eq!(error.code(), "invalid_json", "{body:?}");
        }
    }
}
