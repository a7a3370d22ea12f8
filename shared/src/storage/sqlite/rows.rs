//! Conversions between SQLite rows and model types, and the shared filter clause.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use rusqlite::Row;
use rusqlite::types::{Type, Value};

use crate::model::{EventStatus, PaymentEvent, ProcessingLog, StoredEvent};
use crate::storage::EventFilter;

/// Fixed-width UTC time format; string order equals time order for years 1 to 9999.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats a time for storage, clamping it into years 1 to 9999 so the width stays fixed.
/// Times stored as data are checked to lie in that range before they get here.
pub fn time(value: DateTime<Utc>) -> String {
    match value.year() {
        year if year < 1 => "0001-01-01T00:00:00.000000Z".to_string(),
        year if year > 9999 => "9999-12-31T23:59:59.999999Z".to_string(),
        _ => value.format(TIME_FORMAT).to_string(),
    }
}

fn parse_time(index: usize, text: &str) -> rusqlite::Result<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, TIME_FORMAT)
        .map(|naive| naive.and_utc())
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.into()))
}

pub fn get_time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    parse_time(index, &row.get::<_, String>(index)?)
}

pub fn get_optional_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<String>>(index)?
        .map(|text| parse_time(index, &text))
        .transpose()
}

fn get_status(row: &Row<'_>, index: usize) -> rusqlite::Result<EventStatus> {
    let text: String = row.get(index)?;
    EventStatus::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("unknown event status {text:?}").into(),
        )
    })
}

/// Columns read by [`event_from_row`], in its order.
pub const EVENT_COLUMNS: &str = "id, event_id, provider, event_type, status, raw_payload, \
    processed_payload, signature, headers, source_ip, user_agent, error_message, \
    attempt_count, max_attempts, next_retry_at, created_at, updated_at, processed_at, \
    signature_verified, signature_key_id, provider_created_at, published_at, locked_until";

pub fn event_from_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.get(0)?,
        event_id: row.get(1)?,
        provider: row.get(2)?,
        event_type: row.get(3)?,
        status: get_status(row, 4)?,
        raw_payload: row.get(5)?,
        processed_payload: row.get(6)?,
        signature: row.get(7)?,
        headers: row.get(8)?,
        source_ip: row.get(9)?,
        user_agent: row.get(10)?,
        error_message: row.get(11)?,
        attempt_count: row.get(12)?,
        max_attempts: row.get(13)?,
        next_retry_at: get_optional_time(row, 14)?,
        created_at: get_time(row, 15)?,
        updated_at: get_time(row, 16)?,
        processed_at: get_optional_time(row, 17)?,
        signature_verified: row.get(18)?,
        signature_key_id: row.get(19)?,
        provider_created_at: get_optional_time(row, 20)?,
        published_at: get_optional_time(row, 21)?,
        locked_until: get_optional_time(row, 22)?,
    })
}

pub const LOG_COLUMNS: &str = "id, webhook_event_id, processing_step, status, duration_ms, \
    error_message, additional_data, processed_at";

pub fn log_from_row(row: &Row<'_>) -> rusqlite::Result<ProcessingLog> {
    Ok(ProcessingLog {
        id: row.get(0)?,
        webhook_event_id: row.get(1)?,
        processing_step: row.get(2)?,
        status: row.get(3)?,
        duration_ms: row.get(4)?,
        error_message: row.get(5)?,
        additional_data: row.get(6)?,
        processed_at: get_time(row, 7)?,
    })
}

pub const PAYMENT_COLUMNS: &str = "id, webhook_event_id, provider, payment_id, event_type, \
    status, status_raw, amount_minor, currency, amount_exponent, customer_id, order_id, \
    transaction_id, metadata, provider_created_at, created_at, updated_at";

pub fn payment_from_row(row: &Row<'_>) -> rusqlite::Result<PaymentEvent> {
    let amount = crate::storage::rules::money_from_parts(
        row.get::<_, Option<i64>>(7)?,
        row.get::<_, Option<String>>(8)?,
        row.get::<_, Option<i64>>(9)?,
    )
    .map_err(|error| rusqlite::Error::FromSqlConversionFailure(7, Type::Integer, error.into()))?;
    Ok(PaymentEvent {
        id: row.get(0)?,
        webhook_event_id: row.get(1)?,
        provider: row.get(2)?,
        payment: crate::model::NewPaymentEvent {
            payment_id: row.get(3)?,
            event_type: row.get(4)?,
            status: row.get(5)?,
            status_raw: row.get(6)?,
            amount,
            customer_id: row.get(10)?,
            order_id: row.get(11)?,
            transaction_id: row.get(12)?,
            metadata: row.get(13)?,
            provider_created_at: get_optional_time(row, 14)?,
        },
        created_at: get_time(row, 15)?,
        updated_at: get_time(row, 16)?,
    })
}

/// A `WHERE` clause over `webhook_events` with its positional parameters.
pub struct Clause {
    pub sql: String,
    pub params: Vec<Value>,
}

/// Builds the conditions of an [`EventFilter`]; statuses are left out when
/// `with_statuses` is false.
pub fn filter_clause(filter: &EventFilter, with_statuses: bool) -> Clause {
    let mut conditions = vec!["1 = 1".to_string()];
    let mut params = Vec::new();
    if let Some(provider) = &filter.provider {
        params.push(Value::Text(provider.clone()));
        conditions.push(format!("provider = ?{}", params.len()));
    }
    if let Some(event_type) = &filter.event_type {
        params.push(Value::Text(event_type.clone()));
        conditions.push(format!("event_type = ?{}", params.len()));
    }
    if with_statuses && !filter.statuses.is_empty() {
        let mut marks = Vec::new();
        for status in &filter.statuses {
            params.push(Value::Text(status.as_str().to_string()));
            marks.push(format!("?{}", params.len()));
        }
        conditions.push(format!("status IN ({})", marks.join(", ")));
    }
    if let Some(from) = filter.from {
        params.push(Value::Text(time(from)));
        conditions.push(format!("created_at >= ?{}", params.len()));
    }
    if let Some(to) = filter.to {
        params.push(Value::Text(time(to)));
        conditions.push(format!("created_at < ?{}", params.len()));
    }
    Clause {
        sql: conditions.join(" AND "),
        params,
    }
}
