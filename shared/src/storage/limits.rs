//! Column size limits of the SQL Server schema, applied the same way by every backend.
//!
//! Sizes count UTF-16 code units because that is how `NVARCHAR(n)` counts, so a value
//! accepted here fits every backend. Identity fields that are too long are rejected;
//! diagnostic text is cut at a character boundary instead.

use chrono::{DateTime, Datelike, Utc};

use crate::model::{NewEvent, NewPaymentEvent, NewProcessingLog};
use crate::storage::StoreError;

pub const EVENT_ID: usize = 255;
pub const PROVIDER: usize = 50;
pub const EVENT_TYPE: usize = 100;
pub const SOURCE_IP: usize = 45;
pub const USER_AGENT: usize = 500;
pub const ERROR_MESSAGE: usize = 2000;
pub const SIGNATURE_KEY_ID: usize = 255;
pub const PROCESSING_STEP: usize = 100;
pub const STATUS: usize = 50;
pub const ADDITIONAL_DATA: usize = 4000;
pub const PAYMENT_ID: usize = 255;
pub const EXTERNAL_ID: usize = 255;
pub const METADATA: usize = 4000;
pub const STATUS_RAW: usize = 100;
/// Largest minor-unit exponent accepted; `rust_decimal` allows 28, currencies use at most 4.
pub const AMOUNT_EXPONENT: u32 = 18;

fn utf16_len(value: &str) -> usize {
    value.encode_utf16().count()
}

/// Rejects an empty or too long identity value.
pub fn require(column: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{column} must not be empty")));
    }
    check_len(column, value, max)
}

/// Rejects a value longer than `max` UTF-16 code units.
pub fn check_len(column: &str, value: &str, max: usize) -> Result<(), StoreError> {
    let len = utf16_len(value);
    if len > max {
        return Err(StoreError::Invalid(format!(
            "{column} is {len} characters long; the maximum is {max}"
        )));
    }
    Ok(())
}

fn check_optional(column: &str, value: Option<&str>, max: usize) -> Result<(), StoreError> {
    value.map_or(Ok(()), |value| check_len(column, value, max))
}

/// Cuts `value` to at most `max` UTF-16 code units without splitting a character.
pub fn truncate(value: &str, max: usize) -> String {
    let mut units = 0;
    for (index, ch) in value.char_indices() {
        units += ch.len_utf16();
        if units > max {
            return value[..index].to_string();
        }
    }
    value.to_string()
}

/// Cuts an optional diagnostic value.
pub fn truncate_optional(value: Option<&str>, max: usize) -> Option<String> {
    value.map(|value| truncate(value, max))
}

/// Rejects a time outside the years 1 to 9999, the range of SQL Server's `DATETIME2` and of
/// SQLite's fixed-width text times.
pub fn check_time(column: &str, value: Option<DateTime<Utc>>) -> Result<(), StoreError> {
    match value {
        Some(value) if !(1..=9999).contains(&value.year()) => Err(StoreError::Invalid(format!(
            "{column} {value} is outside the years 1 to 9999"
        ))),
        _ => Ok(()),
    }
}

/// Checks the identity fields of a new event; diagnostic fields are cut when stored.
pub fn check_event(event: &NewEvent) -> Result<(), StoreError> {
    require("provider", &event.provider, PROVIDER)?;
    require("event_id", &event.event_id, EVENT_ID)?;
    require("event_type", &event.event_type, EVENT_TYPE)?;
    check_optional(
        "signature_key_id",
        event.signature_key_id.as_deref(),
        SIGNATURE_KEY_ID,
    )?;
    check_time("provider_created_at", event.provider_created_at)?;
    if event.max_attempts < 1 {
        return Err(StoreError::Invalid(format!(
            "max_attempts is {}; it must be at least 1",
            event.max_attempts
        )));
    }
    Ok(())
}

/// Checks a processing log row; its error message and additional data are cut when stored.
pub fn check_log(log: &NewProcessingLog) -> Result<(), StoreError> {
    require("processing_step", &log.step, PROCESSING_STEP)?;
    require("log status", &log.status, STATUS)?;
    if log.duration_ms < 0 {
        return Err(StoreError::Invalid(format!(
            "duration_ms is {}; it must not be negative",
            log.duration_ms
        )));
    }
    Ok(())
}

/// Checks a payment event. Metadata is JSON, so it is rejected rather than cut.
pub fn check_payment(payment: &NewPaymentEvent) -> Result<(), StoreError> {
    require("payment_id", &payment.payment_id, PAYMENT_ID)?;
    require("payment event_type", &payment.event_type, EVENT_TYPE)?;
    require("payment status", &payment.status, STATUS)?;
    check_optional("status_raw", payment.status_raw.as_deref(), STATUS_RAW)?;
    check_optional("customer_id", payment.customer_id.as_deref(), EXTERNAL_ID)?;
    check_optional("order_id", payment.order_id.as_deref(), EXTERNAL_ID)?;
    check_optional(
        "transaction_id",
        payment.transaction_id.as_deref(),
        EXTERNAL_ID,
    )?;
    check_optional("metadata", payment.metadata.as_deref(), METADATA)?;
    check_time("payment provider_created_at", payment.provider_created_at)?;
    if let Some(amount) = &payment.amount
        && amount.exponent > AMOUNT_EXPONENT
    {
        return Err(StoreError::Invalid(format!(
            "amount exponent {} is above the maximum {AMOUNT_EXPONENT}",
            amount.exponent
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_whole_characters() {
        assert_eq!(truncate("añb", 2), "añ");
        assert_eq!(truncate("a😀b", 2), "a");
        assert_eq!(truncate("a😀b", 3), "a😀");
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn check_len_counts_utf16_units() {
        assert!(check_len("x", "😀😀", 4).is_ok());
        assert!(check_len("x", "😀😀", 3).is_err());
    }
}
