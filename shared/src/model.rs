//! Rows and values shared by ingest, storage, queue and worker.
//!
//! Field names follow the `WebhookEvents`, `WebhookProcessingLogs` and `PaymentEvents` tables
//! that existing SQL Server deployments already have, plus the columns payhook adds.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::money::Money;

/// Lifecycle state of a stored webhook event (`WebhookEvents.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored and waiting for a worker, either for the first time or for a retry.
    Pending,
    /// Claimed by a worker whose lease has not expired.
    Processing,
    /// Processed; its payment events and logs are committed.
    Completed,
    /// The last attempt failed; another attempt is scheduled at `next_retry_at`.
    Failed,
    /// Every attempt failed; the event waits for an operator to replay it.
    Dead,
}

impl EventStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [EventStatus; 5] = [
        EventStatus::Pending,
        EventStatus::Processing,
        EventStatus::Completed,
        EventStatus::Failed,
        EventStatus::Dead,
    ];

    /// Returns the value stored in the `Status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Processing => "processing",
            EventStatus::Completed => "completed",
            EventStatus::Failed => "failed",
            EventStatus::Dead => "dead",
        }
    }

    /// Parses a `Status` column value; `None` for anything else.
    pub fn parse(value: &str) -> Option<EventStatus> {
        EventStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

impl std::fmt::Display for EventStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified webhook delivery, ready to be inserted.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Provider route name, e.g. `stripe` or `paypal`.
    pub provider: String,
    /// The provider's own event id; unique together with `provider`.
    pub event_id: String,
    pub event_type: String,
    /// The request body exactly as received. Bodies are checked to be UTF-8 before storage.
    pub raw_payload: String,
    /// The signature header value as received.
    pub signature: Option<String>,
    /// JSON object of the request headers needed to verify the signature again.
    pub headers: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub signature_verified: bool,
    /// Identifier of the configured secret or key that matched.
    pub signature_key_id: Option<String>,
    /// The provider's own event time, when the payload carries one.
    pub provider_created_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// Stamps `published_at` at insert, for ingest that publishes right after the commit.
    /// A failed publish clears the stamp again with `Store::mark_unpublished`, so a
    /// successful request costs one database write.
    pub published: bool,
}

/// Result of inserting a [`NewEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new row was committed with this id.
    Inserted(i64),
    /// A row with the same provider and event id already existed; this is its id.
    Duplicate(i64),
}

impl InsertOutcome {
    /// Returns the row id in both cases.
    pub fn id(self) -> i64 {
        match self {
            InsertOutcome::Inserted(id) | InsertOutcome::Duplicate(id) => id,
        }
    }
}

/// A row of `WebhookEvents`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub id: i64,
    pub event_id: String,
    pub provider: String,
    pub event_type: String,
    pub status: EventStatus,
    #[serde(skip)]
    pub raw_payload: String,
    #[serde(skip)]
    pub processed_payload: Option<String>,
    #[serde(skip)]
    pub signature: Option<String>,
    #[serde(skip)]
    pub headers: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_message: Option<String>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub signature_verified: bool,
    pub signature_key_id: Option<String>,
    pub provider_created_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    /// End of the current worker's lease while the row is `processing`.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A row of `WebhookProcessingLogs`, before insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProcessingLog {
    /// Step name, e.g. `claim`, `handler`, `persist`.
    pub step: String,
    /// `success`, `failed`, `warning` or `ignored`.
    pub status: String,
    pub duration_ms: i64,
    pub error_message: Option<String>,
    /// Extra context as text, at most 4000 characters.
    pub additional_data: Option<String>,
}

/// A stored row of `WebhookProcessingLogs`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingLog {
    pub id: i64,
    pub webhook_event_id: i64,
    pub processing_step: String,
    pub status: String,
    pub duration_ms: i64,
    pub error_message: Option<String>,
    pub additional_data: Option<String>,
    pub processed_at: DateTime<Utc>,
}

/// A payment fact extracted from one webhook, before insertion into `PaymentEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentEvent {
    /// Provider-side id of the payment (PaymentIntent, invoice, order, subscription).
    pub payment_id: String,
    pub event_type: String,
    /// Normalized status: succeeded, failed, canceled, refunded, reversed, disputed,
    /// approved, active, pending and so on.
    pub status: String,
    /// The provider's own status value, kept beside the normalized one.
    pub status_raw: Option<String>,
    pub amount: Option<Money>,
    pub customer_id: Option<String>,
    pub order_id: Option<String>,
    pub transaction_id: Option<String>,
    /// JSON object with extra facts (failure codes, fees, reasons), at most 4000 characters.
    pub metadata: Option<String>,
    pub provider_created_at: Option<DateTime<Utc>>,
}

/// A stored row of `PaymentEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    pub id: i64,
    pub webhook_event_id: i64,
    pub provider: String,
    pub payment: NewPaymentEvent,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A webhook event with everything processing wrote for it.
#[derive(Debug, Clone)]
pub struct EventDetail {
    pub event: StoredEvent,
    pub logs: Vec<ProcessingLog>,
    pub payment_events: Vec<PaymentEvent>,
}
