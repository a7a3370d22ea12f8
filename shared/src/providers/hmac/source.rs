//! Sources of an event's id, type or time: a JSON pointer, a header, or a digest of the
//! body.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName};
use ring::digest;
use serde_json::Value;

use crate::providers::ConfigError;
use crate::providers::signing::encode_hex;

/// A configured value source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueSource {
    /// A JSON pointer into the body, e.g. `/data/id`.
    Pointer(String),
    /// A request header.
    Header(HeaderName),
    /// The hex SHA-256 of the raw body, for providers whose events carry no id. Retries of
    /// one event carry the same body, so they get the same id.
    BodySha256,
}

impl ValueSource {
    /// Parses `/pointer`, `header:NAME` or `body:sha256`.
    pub(crate) fn parse(field: &str, text: &str) -> Result<Self, ConfigError> {
        if text.starts_with('/') {
            return Ok(ValueSource::Pointer(text.to_string()));
        }
        if text == "body:sha256" {
            return Ok(ValueSource::BodySha256);
        }
        if let Some(name) = text.strip_prefix("header:") {
            return HeaderName::from_bytes(name.as_bytes())
                .map(ValueSource::Header)
                .map_err(|_| ConfigError::invalid(field, format!("invalid header name {name:?}")));
        }
        Err(ConfigError::invalid(
            field,
            format!("{text:?} is not a JSON pointer (/a/b), header:NAME or body:sha256"),
        ))
    }

    /// Reads the value as text; numbers are written in decimal. `None` when absent or empty.
    pub(crate) fn read(&self, headers: &HeaderMap, json: &Value, body: &[u8]) -> Option<String> {
        let text = match self {
            ValueSource::Pointer(pointer) => json_text(json.pointer(pointer)?)?,
            ValueSource::Header(name) => headers.get(name)?.to_str().ok()?.to_string(),
            ValueSource::BodySha256 => encode_hex(digest::digest(&digest::SHA256, body).as_ref()),
        };
        (!text.is_empty()).then_some(text)
    }
}

/// Returns a JSON string as is and an integer in decimal; other values are `None`.
pub(crate) fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

/// Parses an event time written as RFC 3339 text or as Unix seconds.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.to_utc());
    }
    let seconds = crate::providers::signing::parse_unix_seconds(text)?;
    DateTime::from_timestamp(seconds, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_read() {
        let json: Value = serde_json::json!({"data": {"id": 42, "name": "x"}});
        let mut headers = HeaderMap::new();
        headers.insert("x-topic", "orders/paid".parse().unwrap());

        let pointer = ValueSource::parse("event_id", "/data/id").unwrap();
        let header = ValueSource::parse("event_type", "header:X-Topic").unwrap();
        let digest = ValueSource::parse("event_id", "body:sha256").unwrap();

        assert_eq!(pointer.read(&headers, &json, b""), Some("42".to_string()));
        assert_eq!(
            header.read(&headers, &json, b""),
            Some("orders/paid".to_string())
        );
        assert_eq!(
            digest.read(&headers, &json, b"abc"),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string())
        );
        assert!(ValueSource::parse("event_id", "id").is_err());
    }

    #[test]
    fn times_parse_both_forms() {
        let expected = DateTime::from_timestamp(1_700_000_000, 0);

        assert_eq!(parse_time("2023-11-14T22:13:20Z"), expected);
        assert_eq!(parse_time("1700000000"), expected);
        assert_eq!(parse_time("yesterday"), None);
    }
}
