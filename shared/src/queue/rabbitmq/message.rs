//! AMQP properties and headers of payhook messages, and envelope decoding.

use std::time::{SystemTime, UNIX_EPOCH};

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use thiserror::Error;

use crate::queue::Envelope;

/// Header with the envelope's attempt count, as a signed 32-bit integer.
pub const ATTEMPT_HEADER: &str = "x-payhook-attempt";
/// Header with the reason a message was dead-lettered.
pub const REASON_HEADER: &str = "x-payhook-reason";
/// Header with the W3C trace context of the ingest request.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// AMQP `delivery_mode` that makes the broker write the message to disk.
const PERSISTENT: u8 = 2;

/// A message body that is not a JSON [`Envelope`] of a known version.
#[derive(Debug, Error)]
#[error("message body is not a valid envelope: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Parses a message body into an [`Envelope`].
pub fn decode_envelope(body: &[u8]) -> Result<Envelope, DecodeError> {
    Ok(serde_json::from_slice(body)?)
}

pub(crate) fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    // Serializing an enum of integers and strings to a Vec cannot fail.
    serde_json::to_vec(envelope).unwrap_or_default()
}

/// Returns a copy of `envelope` with another attempt count.
pub fn with_attempt(envelope: &Envelope, attempt: i32) -> Envelope {
    let Envelope::V1 {
        id,
        provider,
        event_type,
        traceparent,
        ..
    } = envelope.clone();
    Envelope::V1 {
        id,
        provider,
        event_type,
        attempt,
        traceparent,
    }
}

/// Builds the properties of a publish: persistent, JSON, timestamped, with a message id
/// that the publisher uses to match returned messages to publishes.
pub(crate) fn publish_properties(
    envelope: Option<&Envelope>,
    message_id: &str,
    reason: Option<&str>,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(Envelope::V1 {
        attempt,
        traceparent,
        ..
    }) = envelope
    {
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongInt(*attempt));
        if let Some(traceparent) = traceparent {
            headers.insert(
                TRACEPARENT_HEADER.into(),
                AMQPValue::LongString(LongString::from(traceparent.as_str())),
            );
        }
    }
    if let Some(reason) = reason {
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
    }
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_timestamp(unix_seconds_now())
        .with_message_id(message_id.into())
        .with_headers(headers)
}

pub(crate) fn unix_seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Reads an integer header of any AMQP integer width that fits an `i32`.
pub(crate) fn header_i32(properties: &BasicProperties, name: &str) -> Option<i32> {
    let value = properties.headers().as_ref()?.inner().get(name)?;
    match value {
        AMQPValue::ShortShortInt(value) => Some(i32::from(*value)),
        AMQPValue::ShortShortUInt(value) => Some(i32::from(*value)),
        AMQPValue::ShortInt(value) => Some(i32::from(*value)),
        AMQPValue::ShortUInt(value) => Some(i32::from(*value)),
        AMQPValue::LongInt(value) => Some(*value),
        AMQPValue::LongUInt(value) => i32::try_from(*value).ok(),
        AMQPValue::LongLongInt(value) => i32::try_from(*value).ok(),
        _ => None,
    }
}

/// Reads a string header, lossily decoding invalid UTF-8.
pub(crate) fn header_string(properties: &BasicProperties, name: &str) -> Option<String> {
    let value = properties.headers().as_ref()?.inner().get(name)?;
    match value {
        AMQPValue::LongString(value) => Some(String::from_utf8_lossy(value.as_bytes()).into()),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_envelope() -> Envelope {
        Envelope::V1 {
            id: 42,
            provider: "stripe".to_owned(),
            event_type: "charge.refunded".to_owned(),
            attempt: 3,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
        }
    }

    #[test]
    fn properties_carry_attempt_and_reason() {
        let envelope = sample_envelope();

        let properties = publish_properties(Some(&envelope), "m-1", Some("bad amount"));

        assert_eq!(*properties.delivery_mode(), Some(PERSISTENT));
        assert_eq!(header_i32(&properties, ATTEMPT_HEADER), Some(3));
        assert_eq!(
            header_string(&properties, REASON_HEADER).as_deref(),
            Some("bad amount")
        );
        assert!(header_string(&properties, TRACEPARENT_HEADER).is_some());
        assert!(properties.timestamp().is_some());
    }

    #[test]
    fn decode_rejects_truncated_json() {
        let envelope = sample_envelope();
        let body = encode_envelope(&envelope);

        assert_eq!(decode_envelope(&body).unwrap(), envelope);
        assert!(decode_envelope(&body[..body.len() / 2]).is_err());
    }
}
