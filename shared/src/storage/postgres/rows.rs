//! Conversions between PostgreSQL rows and model types, and the shared filter clause.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::model::{EventStatus, NewPaymentEvent, PaymentEvent, ProcessingLog, StoredEvent};
use crate::storage::{EventFilter, StoreError, rules};

/// Columns read by [`event_from_row`], in its order.
pub const EVENT_COLUMNS: &str = "id, event_id, provider, event_type, status, raw_payload, \
    processed_payload, signature, headers, source_ip, user_agent, error_message, \
    attempt_count, max_attempts, next_retry_at, created_at, updated_at, processed_at, \
    signature_verified, signature_key_id, provider_created_at, published_at, locked_until";

pub fn status_from(text: &str) -> Result<EventStatus, StoreError> {
    EventStatus::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("unknown event status {text:?}")))
}

pub fn event_from_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let status: String = row.try_get(4).map_err(super::pg_error)?;
    Ok(StoredEvent {
        id: row.try_get(0).map_err(super::pg_error)?,
        event_id: row.try_get(1).map_err(super::pg_error)?,
        provider: row.try_get(2).map_err(super::pg_error)?,
        event_type: row.try_get(3).map_err(super::pg_error)?,
        status: status_from(&status)?,
        raw_payload: row.try_get(5).map_err(super::pg_error)?,
        processed_payload: row.try_get(6).map_err(super::pg_error)?,
        signature: row.try_get(7).map_err(super::pg_error)?,
        headers: row.try_get(8).map_err(super::pg_error)?,
        source_ip: row.try_get(9).map_err(super::pg_error)?,
        user_agent: row.try_get(10).map_err(super::pg_error)?,
        error_message: row.try_get(11).map_err(super::pg_error)?,
        attempt_count: row.try_get(12).map_err(super::pg_error)?,
        max_attempts: row.try_get(13).map_err(super::pg_error)?,
        next_retry_at: row.try_get(14).map_err(super::pg_error)?,
        created_at: row.try_get(15).map_err(super::pg_error)?,
        updated_at: row.try_get(16).map_err(super::pg_error)?,
        processed_at: row.try_get(17).map_err(super::pg_error)?,
        signature_verified: row.try_get(18).map_err(super::pg_error)?,
        signature_key_id: row.try_get(19).map_err(super::pg_error)?,
        provider_created_at: row.try_get(20).map_err(super::pg_error)?,
        published_at: row.try_get(21).map_err(super::pg_error)?,
        locked_until: row.try_get(22).map_err(super::pg_error)?,
    })
}

pub const LOG_COLUMNS: &str = "id, webhook_event_id, processing_step, status, duration_ms, \
    error_message, additional_data, processed_at";

pub fn log_from_row(row: &Row) -> Result<ProcessingLog, StoreError> {
    Ok(ProcessingLog {
        id: row.try_get(0).map_err(super::pg_error)?,
        webhook_event_id: row.try_get(1).map_err(super::pg_error)?,
        processing_step: row.try_get(2).map_err(super::pg_error)?,
        status: row.try_get(3).map_err(super::pg_error)?,
        duration_ms: row.try_get(4).map_err(super::pg_error)?,
        error_message: row.try_get(5).map_err(super::pg_error)?,
        additional_data: row.try_get(6).map_err(super::pg_error)?,
        processed_at: row.try_get(7).map_err(super::pg_error)?,
    })
}

pub const PAYMENT_COLUMNS: &str = "id, webhook_event_id, provider, payment_id, event_type, \
    status, status_raw, amount_minor, currency, amount_exponent, customer_id, order_id, \
    transaction_id, metadata, provider_created_at, created_at, updated_at";

pub fn payment_from_row(row: &Row) -> Result<PaymentEvent, StoreError> {
    let exponent: Option<i32> = row.try_get(9).map_err(super::pg_error)?;
    let amount = rules::money_from_parts(
        row.try_get(7).map_err(super::pg_error)?,
        row.try_get(8).map_err(super::pg_error)?,
        exponent.map(i64::from),
    )
    .map_err(StoreError::Backend)?;
    Ok(PaymentEvent {
        id: row.try_get(0).map_err(super::pg_error)?,
        webhook_event_id: row.try_get(1).map_err(super::pg_error)?,
        provider: row.try_get(2).map_err(super::pg_error)?,
        payment: NewPaymentEvent {
            payment_id: row.try_get(3).map_err(super::pg_error)?,
            event_type: row.try_get(4).map_err(super::pg_error)?,
            status: row.try_get(5).map_err(super::pg_error)?,
            status_raw: row.try_get(6).map_err(super::pg_error)?,
            amount,
            customer_id: row.try_get(10).map_err(super::pg_error)?,
            order_id: row.try_get(11).map_err(super::pg_error)?,
            transaction_id: row.try_get(12).map_err(super::pg_error)?,
            metadata: row.try_get(13).map_err(super::pg_error)?,
            provider_created_at: row.try_get(14).map_err(super::pg_error)?,
        },
        created_at: row.try_get(15).map_err(super::pg_error)?,
        updated_at: row.try_get(16).map_err(super::pg_error)?,
    })
}

pub type Param = Box<dyn ToSql + Sync + Send>;

/// A `WHERE` clause over `webhook_events` with its numbered parameters.
pub struct Clause {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Clause {
    /// Appends a parameter and returns its placeholder.
    pub fn push(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Builds the conditions of an [`EventFilter`]; statuses are left out when
/// `with_statuses` is false.
pub fn filter_clause(filter: &EventFilter, with_statuses: bool) -> Clause {
    let mut clause = Clause {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut conditions = vec!["TRUE".to_string()];
    if let Some(provider) = &filter.provider {
        let mark = clause.push(Box::new(provider.clone()));
        conditions.push(format!("provider = {mark}"));
    }
    if let Some(event_type) = &filter.event_type {
        let mark = clause.push(Box::new(event_type.clone()));
        conditions.push(format!("event_type = {mark}"));
    }
    if with_statuses && !filter.statuses.is_empty() {
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| status.as_str().to_string())
            .collect();
        let mark = clause.push(Box::new(statuses));
        conditions.push(format!("status = ANY({mark}::text[])"));
    }
    if let Some(from) = filter.from {
        let mark = clause.push(Box::new(from));
        conditions.push(format!("created_at >= {mark}"));
    }
    if let Some(to) = filter.to {
        let mark = clause.push(Box::new(to));
        conditions.push(format!("created_at < {mark}"));
    }
    clause.sql = conditions.join(" AND ");
    clause
}
