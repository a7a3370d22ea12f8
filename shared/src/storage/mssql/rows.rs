//! Conversions between SQL Server rows and model types, and the shared filter clause.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tiberius::{Query, Row};

use super::errors::DbError;
use crate::model::{EventStatus, NewPaymentEvent, PaymentEvent, ProcessingLog, StoredEvent};
use crate::money::Money;
use crate::storage::{EventFilter, StoreError, rules};

type Result<T> = std::result::Result<T, DbError>;

/// Columns read by [`event_from_row`], in its order.
pub const EVENT_COLUMNS: &str = "Id, EventId, Provider, EventType, Status, RawPayload, \
    ProcessedPayload, Signature, Headers, SourceIp, UserAgent, ErrorMessage, AttemptCount, \
    MaxAttempts, NextRetryAt, CreatedAt, UpdatedAt, ProcessedAt, SignatureVerified, \
    SignatureKeyId, ProviderCreatedAt, PublishedAt, LockedUntil";

pub const LOG_COLUMNS: &str = "Id, WebhookEventId, ProcessingStep, Status, DurationMs, \
    ErrorMessage, AdditionalData, ProcessedAt";

pub const PAYMENT_COLUMNS: &str = "Id, WebhookEventId, Provider, PaymentId, EventType, \
    Status, StatusRaw, AmountMinor, Currency, AmountExponent, CustomerId, OrderId, \
    TransactionId, Metadata, ProviderCreatedAt, CreatedAt, UpdatedAt";

/// Returns `columns` with every name qualified by `prefix`, e.g. `inserted.`.
pub fn qualified(columns: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{prefix}{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts a row id to the `INT` the schema stores; `None` when no row can have it.
pub fn db_id(id: i64) -> Option<i32> {
    i32::try_from(id).ok()
}

fn missing(index: usize) -> DbError {
    DbError::Store(StoreError::Backend(format!(
        "column {index} is NULL but the schema does not allow it"
    )))
}

pub fn text(row: &Row, index: usize) -> Result<String> {
    opt_text(row, index)?.ok_or_else(|| missing(index))
}

pub fn opt_text(row: &Row, index: usize) -> Result<Option<String>> {
    Ok(row.try_get::<&str, _>(index)?.map(str::to_owned))
}

pub fn int(row: &Row, index: usize) -> Result<i32> {
    row.try_get::<i32, _>(index)?.ok_or_else(|| missing(index))
}

pub fn big(row: &Row, index: usize) -> Result<i64> {
    row.try_get::<i64, _>(index)?.ok_or_else(|| missing(index))
}

pub fn time(row: &Row, index: usize) -> Result<DateTime<Utc>> {
    opt_time(row, index)?.ok_or_else(|| missing(index))
}

pub fn opt_time(row: &Row, index: usize) -> Result<Option<DateTime<Utc>>> {
    Ok(row.try_get::<DateTime<Utc>, _>(index)?)
}

pub fn status_from(text: &str) -> Result<EventStatus> {
    EventStatus::parse(text).ok_or_else(|| {
        DbError::Store(StoreError::Backend(format!(
            "unknown event status {text:?}"
        )))
    })
}

pub fn event_from_row(row: &Row) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: i64::from(int(row, 0)?),
        event_id: text(row, 1)?,
        provider: text(row, 2)?,
        event_type: text(row, 3)?,
        status: status_from(&text(row, 4)?)?,
        raw_payload: text(row, 5)?,
        processed_payload: opt_text(row, 6)?,
        signature: opt_text(row, 7)?,
        headers: text(row, 8)?,
        source_ip: opt_text(row, 9)?,
        user_agent: opt_text(row, 10)?,
        error_message: opt_text(row, 11)?,
        attempt_count: int(row, 12)?,
        max_attempts: int(row, 13)?,
        next_retry_at: opt_time(row, 14)?,
        created_at: time(row, 15)?,
        updated_at: time(row, 16)?,
        processed_at: opt_time(row, 17)?,
        signature_verified: row.try_get::<bool, _>(18)?.ok_or_else(|| missing(18))?,
        signature_key_id: opt_text(row, 19)?,
        provider_created_at: opt_time(row, 20)?,
        published_at: opt_time(row, 21)?,
        locked_until: opt_time(row, 22)?,
    })
}

pub fn log_from_row(row: &Row) -> Result<ProcessingLog> {
    Ok(ProcessingLog {
        id: i64::from(int(row, 0)?),
        webhook_event_id: i64::from(int(row, 1)?),
        processing_step: text(row, 2)?,
        status: text(row, 3)?,
        duration_ms: big(row, 4)?,
        error_message: opt_text(row, 5)?,
        additional_data: opt_text(row, 6)?,
        processed_at: time(row, 7)?,
    })
}

pub fn payment_from_row(row: &Row) -> Result<PaymentEvent> {
    let minor = row.try_get::<i64, _>(7)?;
    let exponent = row.try_get::<i32, _>(9)?;
    // Rows written before payhook may carry a currency without the exact amount parts;
    // they are read without an amount rather than failing the whole detail.
    let currency = match (minor, exponent) {
        (None, None) => None,
        _ => opt_text(row, 8)?,
    };
    let amount = rules::money_from_parts(minor, currency, exponent.map(i64::from))
        .map_err(|message| DbError::Store(StoreError::Backend(message)))?;
    Ok(PaymentEvent {
        id: i64::from(int(row, 0)?),
        webhook_event_id: i64::from(int(row, 1)?),
        provider: text(row, 2)?,
        payment: NewPaymentEvent {
            payment_id: text(row, 3)?,
            event_type: text(row, 4)?,
            status: text(row, 5)?,
            status_raw: opt_text(row, 6)?,
            amount,
            customer_id: opt_text(row, 10)?,
            order_id: opt_text(row, 11)?,
            transaction_id: opt_text(row, 12)?,
            metadata: opt_text(row, 13)?,
            provider_created_at: opt_time(row, 14)?,
        },
        created_at: time(row, 15)?,
        updated_at: time(row, 16)?,
    })
}

/// Largest magnitude `DECIMAL(19,4)` holds: 15 integer digits.
const LEGACY_INTEGER_DIGITS: u32 = 15;
/// Decimal places of `DECIMAL(19,4)`.
const LEGACY_SCALE: u32 = 4;

/// Returns the value for the `Amount DECIMAL(19,4)` column kept for existing readers, or
/// `None` when the amount does not fit it exactly. The exact amount is always stored in
/// `AmountMinor` and `AmountExponent`, which are what payhook reads back.
pub fn legacy_amount(money: &Money) -> Option<Decimal> {
    if money.exponent > LEGACY_SCALE {
        return None;
    }
    let limit = 10u128.checked_pow(LEGACY_INTEGER_DIGITS + money.exponent)?;
    if u128::from(money.minor.unsigned_abs()) >= limit {
        return None;
    }
    Some(money.decimal())
}

/// One bound value of a dynamically built statement.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// A `WHERE` clause over `WebhookEvents` with its numbered parameters.
#[derive(Debug, Clone, Default)]
pub struct Clause {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Clause {
    /// Appends a parameter and returns its placeholder.
    pub fn push(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("@P{}", self.params.len())
    }

    /// Builds a query of `sql` with the clause's parameters bound in order.
    pub fn query(&self, sql: String) -> Query<'static> {
        let mut query = Query::new(sql);
        for param in &self.params {
            match param {
                Param::Text(value) => query.bind(value.clone()),
                Param::Time(value) => query.bind(*value),
                Param::Int(value) => query.bind(*value),
            }
        }
        query
    }
}

/// Builds the conditions of an [`EventFilter`]; statuses are left out when
/// `with_statuses` is false. Status names are the fixed `EventStatus` strings and are
/// written into the SQL; every other value is a parameter.
pub fn filter_clause(filter: &EventFilter, with_statuses: bool) -> Clause {
    let mut clause = Clause::default();
    let mut conditions = vec!["1 = 1".to_string()];
    if let Some(provider) = &filter.provider {
        let mark = clause.push(Param::Text(provider.clone()));
        conditions.push(format!("Provider = {mark}"));
    }
    if let Some(event_type) = &filter.event_type {
        let mark = clause.push(Param::Text(event_type.clone()));
        conditions.push(format!("EventType = {mark}"));
    }
    if with_statuses && !filter.statuses.is_empty() {
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| format!("N'{}'", status.as_str()))
            .collect();
        conditions.push(format!("Status IN ({})", statuses.join(", ")));
    }
    if let Some(from) = filter.from {
        let mark = clause.push(Param::Time(from));
        conditions.push(format!("CreatedAt >= {mark}"));
    }
    if let Some(to) = filter.to {
        let mark = clause.push(Param::Time(to));
        conditions.push(format!("CreatedAt < {mark}"));
    }
    clause.sql = conditions.join(" AND ");
    clause
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn money(minor: i64, exponent: u32) -> Money {
        Money {
            minor,
            currency: Currency::parse("KWD").expect("currency"),
            exponent,
        }
    }

    #[test]
    fn legacy_amount_only_when_exact() {
        assert_eq!(
            legacy_amount(&money(5120, 3)).map(|d| d.to_string()),
            Some("5.120".into())
        );
        let largest = money(999_999_999_999_999_999, 3);
        assert_eq!(
            legacy_amount(&largest).map(|d| d.to_string()),
            Some("999999999999999.999".into())
        );
        assert_eq!(legacy_amount(&money(1_000_000_000_000_000_000, 3)), None);
        assert_eq!(
            legacy_amount(&money(-2000, 2)).map(|d| d.to_string()),
            Some("-20.00".into())
        );
        assert_eq!(legacy_amount(&money(123_456, 5)), None);
        assert_eq!(legacy_amount(&money(i64::MIN, 0)), None);
    }

    #[test]
    fn filter_clause_numbers_parameters() {
        let filter = EventFilter {
            provider: Some("stripe".into()),
            event_type: None,
            statuses: vec![EventStatus::Failed, EventStatus::Dead],
            from: Some(Utc::now()),
            to: None,
        };
        let clause = filter_clause(&filter, true);
        assert_eq!(
            clause.sql,
            "1 = 1 AND Provider = @P1 AND Status IN (N'failed', N'dead') AND CreatedAt >= @P2"
        );
        assert_eq!(clause.params.len(), 2);
        let without = filter_clause(&filter, false);
        assert!(!without.sql.contains("Status"), "{}", without.sql);
    }

    #[test]
    fn qualified_prefixes_each_column() {
        assert_eq!(
            qualified("Id, Status", "inserted."),
            "inserted.Id, inserted.Status"
        );
    }
}
