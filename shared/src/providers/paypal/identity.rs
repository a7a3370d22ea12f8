//! Identity of a PayPal webhook event, read from its body.

use chrono::DateTime;
use serde_json::Value;

use crate::providers::{EventIdentity, IdentityError};

/// Reads `id` (e.g. `WH-…`), `event_type` and `create_time` from a PayPal event.
pub(crate) fn paypal_identity(body: &[u8]) -> Result<EventIdentity, IdentityError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| IdentityError::InvalidJson(e.to_string()))?;
    let text = |field: &'static str| {
        json.get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .ok_or(IdentityError::MissingField(field))
    };
    let created_at = json
        .get("create_time")
        .and_then(Value::as_str)
        .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
        .map(|time| time.to_utc());
    Ok(EventIdentity {
        event_id: text("id")?.to_string(),
        event_type: text("event_type")?.to_string(),
        created_at,
    })
}
