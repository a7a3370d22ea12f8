//! Event identity of a Stripe delivery: `id`, `type` and `created` of the event object.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::providers::{EventIdentity, IdentityError};

/// Reads `id` and `type` (both non-empty strings) and `created` (Unix seconds, optional)
/// from an event body.
pub(crate) fn parse_identity(body: &[u8]) -> Result<EventIdentity, IdentityError> {
    let event: Value =
        serde_json::from_slice(body).map_err(|e| IdentityError::InvalidJson(e.to_string()))?;
    let text = |field: &'static str| {
        event
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .ok_or(IdentityError::MissingField(field))
    };
    Ok(EventIdentity {
        event_id: text("id")?,
        event_type: text("type")?,
        created_at: event.get("created").and_then(unix_seconds),
    })
}

/// Converts a JSON integer of Unix seconds to a UTC time; `None` for anything else.
pub(crate) fn unix_seconds(value: &Value) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(value.as_i64()?, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_reads_id_type_created() {
        let body = br#"{"id":"evt_own_0001","object":"event","type":"charge.succeeded","created":1767000000}"#;

        let identity = parse_identity(body).expect("valid event");

        assert_eq!(identity.event_id, "evt_own_0001");
        assert_eq!(identity.event_type, "charge.succeeded");
        assert_eq!(
            identity.created_at,
            Utc.timestamp_opt(1_767_000_000, 0).single()
        );
    }

    #[test]
    fn identity_without_created_has_none() {
        let body = br#"{"id":"evt_own_0002","type":"refund.created","created":"yesterday"}"#;

        let identity = parse_identity(body).expect("valid event");

        assert_eq!(identity.created_at, None);
    }

    #[test]
    fn identity_rejects_missing_fields() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"type":"charge.succeeded"}"#, "id"),
            (br#"{"id":"","type":"charge.succeeded"}"#, "id"),
            (br#"{"id":7,"type":"charge.succeeded"}"#, "id"),
            (br#"{"id":"evt_own_0003"}"#, "type"),
            (br#"{"id":"evt_own_0003","type":""}"#, "type"),
        ];
        for (body, field) in cases {
            assert_eq!(
                parse_identity(body),
                Err(IdentityError::MissingField(field)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn identity_rejects_invalid_json() {
        for body in [&b"this is not valid JSON"[..], b"", b"[1,2"] {
            assert!(
                matches!(parse_identity(body), Err(IdentityError::InvalidJson(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
