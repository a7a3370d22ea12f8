//! JSON shapes of the admin API: camelCase names, money as a decimal string plus integer
//! minor units, and the names the predecessor service's clients already read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{EventDetail, PaymentEvent, ProcessingLog, StoredEvent};
use crate::storage::{EventPage, Statistics};

/// JSON shape of one event with its logs and payment events.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetailJson<'a> {
    #[serde(flatten)]
    pub event: &'a StoredEvent,
    pub logs: &'a [ProcessingLog],
    pub payment_events: Vec<PaymentEventJson<'a>>,
    /// The request body as received; only present when `include=payload` was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_payload: Option<&'a str>,
}

impl<'a> EventDetailJson<'a> {
    /// Builds the shape, with the raw payload only when `include_payload` is true.
    pub fn new(detail: &'a EventDetail, include_payload: bool) -> Self {
        EventDetailJson {
            event: &detail.event,
            logs: &detail.logs,
            payment_events: detail
                .payment_events
                .iter()
                .map(PaymentEventJson::from)
                .collect(),
            raw_payload: include_payload.then_some(detail.event.raw_payload.as_str()),
        }
    }
}

/// JSON shape of a payment event; money is a decimal string plus integer minor units.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentEventJson<'a> {
    pub id: i64,
    pub webhook_event_id: i64,
    pub payment_id: &'a str,
    pub provider: &'a str,
    pub event_type: &'a str,
    pub status: &'a str,
    pub status_raw: Option<&'a str>,
    pub amount: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub customer_id: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub transaction_id: Option<&'a str>,
    pub metadata: Option<serde_json::Value>,
    pub provider_created_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> From<&'a PaymentEvent> for PaymentEventJson<'a> {
    fn from(row: &'a PaymentEvent) -> Self {
        let payment = &row.payment;
        PaymentEventJson {
            id: row.id,
            webhook_event_id: row.webhook_event_id,
            payment_id: &payment.payment_id,
            provider: &row.provider,
            event_type: &payment.event_type,
            status: &payment.status,
            status_raw: payment.status_raw.as_deref(),
            amount: payment.amount.map(|m| m.to_decimal_string()),
            amount_minor: payment.amount.map(|m| m.minor),
            currency: payment.amount.map(|m| m.currency.to_string()),
            customer_id: payment.customer_id.as_deref(),
            order_id: payment.order_id.as_deref(),
            transaction_id: payment.transaction_id.as_deref(),
            metadata: payment
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            provider_created_at: payment.provider_created_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// JSON shape of a page of events.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPageJson<'a> {
    pub events: &'a [StoredEvent],
    pub total_count: i64,
    pub page: i64,
    pub page_size: i64,
    /// Pages needed for `total_count` events; 0 when there are none.
    pub total_pages: i64,
}

impl<'a> EventPageJson<'a> {
    /// Builds the shape for the page requested with `page` and `page_size`.
    pub fn new(result: &'a EventPage, page: i64, page_size: i64) -> Self {
        EventPageJson {
            events: &result.events,
            total_count: result.total_count,
            page,
            page_size,
            total_pages: total_pages(result.total_count, page_size),
        }
    }
}

/// Returns the number of pages of `page_size` needed for `total` items.
pub fn total_pages(total: i64, page_size: i64) -> i64 {
    if total <= 0 {
        return 0;
    }
    (total - 1) / page_size + 1
}

/// JSON shape of the statistics endpoint.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsJson {
    pub total_events: i64,
    /// Events in status `completed`.
    pub successful_events: i64,
    /// Events in status `failed`, which wait for another attempt; dead events are counted
    /// in `dead_events` only.
    pub failed_events: i64,
    pub pending_events: i64,
    pub processing_events: i64,
    pub dead_events: i64,
    pub events_by_provider: BTreeMap<String, i64>,
    pub events_by_type: BTreeMap<String, i64>,
    /// Mean time from storage to completion, rounded to 0.01 ms; `null` without completed
    /// events.
    pub average_processing_time_ms: Option<f64>,
    pub p95_processing_time_ms: Option<f64>,
    /// `successful_events` as a percentage of `total_events` with two decimals, rounded
    /// half up from integers; `null` without events.
    pub success_rate: Option<f64>,
}

impl From<&Statistics> for StatisticsJson {
    fn from(statistics: &Statistics) -> Self {
        StatisticsJson {
            total_events: statistics.total,
            successful_events: statistics.completed,
            failed_events: statistics.failed,
            pending_events: statistics.pending,
            processing_events: statistics.processing,
            dead_events: statistics.dead,
            events_by_provider: statistics.by_provider.iter().cloned().collect(),
            events_by_type: statistics.by_type.iter().cloned().collect(),
            average_processing_time_ms: statistics.average_processing_ms.map(round_hundredths),
            p95_processing_time_ms: statistics.p95_processing_ms.map(round_hundredths),
            success_rate: success_rate(statistics.completed, statistics.total),
        }
    }
}

/// Returns `part / total` as a percentage rounded half up to two decimals. The rounding
/// happens on integers, in hundredths of a percent. Only the final value is a float, and it
/// serializes to the shortest decimal that reads back as it, such as `96.67`.
pub fn success_rate(part: i64, total: i64) -> Option<f64> {
    if total <= 0 {
        return None;
    }
    let part = i128::from(part.max(0));
    let total = i128::from(total);
    let hundredths = (part * 20_000 + total) / (2 * total);
    Some(hundredths as f64 / 100.0)
}

fn round_hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_rounds_half_up() {
        assert_eq!(success_rate(145, 150), Some(96.67));
        assert_eq!(success_rate(1, 8), Some(12.5));
        assert_eq!(success_rate(1, 3), Some(33.33));
        assert_eq!(success_rate(2, 3), Some(66.67));
        assert_eq!(success_rate(1, 200_000), Some(0.0));
        assert_eq!(success_rate(1, 20_000), Some(0.01));
        assert_eq!(success_rate(5, 5), Some(100.0));
        assert_eq!(success_rate(0, 0), None);
    }

    #[test]
    fn success_rate_serializes_two_decimals() {
        let text = serde_json::to_string(&success_rate(145, 150)).unwrap();
        assert_eq!(text, "96.67");
    }

    #[test]
    fn total_pages_rounds_up() {
        assert_eq!(total_pages(0, 20), 0);
        assert_eq!(total_pages(1, 20), 1);
        assert_eq!(total_pages(20, 20), 1);
        assert_eq!(total_pages(21, 20), 2);
        assert_eq!(total_pages(150, 20), 8);
    }
}
