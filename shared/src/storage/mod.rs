//! The `Store` trait and its backends. Storage handles rows, not HTTP or AMQP.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::model::{
    EventDetail, EventStatus, InsertOutcome, NewEvent, NewPaymentEvent, NewProcessingLog,
    StoredEvent,
};

pub mod encrypted;
pub(crate) mod group_commit;
pub(crate) mod limits;
pub mod mssql;
pub mod postgres;
pub(crate) mod rules;
pub mod sqlite;

/// Storage failures, split by what the caller should do about them.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or did not respond in time, so retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The row does not exist.
    #[error("webhook event {0} not found")]
    NotFound(i64),
    /// A state transition was rejected because the row is not in the expected state.
    #[error("webhook event {id} is {status}, expected {expected}")]
    Conflict {
        id: i64,
        status: EventStatus,
        expected: &'static str,
    },
    /// Another transaction holds a lock on the row, so the write did not wait for it; try
    /// again later.
    #[error("webhook event {0} is locked by another transaction")]
    Locked(i64),
    /// A value does not fit the schema (too long, out of range).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Backend(String),
}

/// Result of trying to claim one event for processing.
// One value is returned per claim and moved straight to the worker, so boxing the large
// variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// The row is now `processing` under this worker's lease; `attempt_count` was incremented.
    Claimed(StoredEvent),
    /// The row is already `completed`; nothing to do.
    AlreadyCompleted,
    /// The row is `dead`; it is only processed again after a replay.
    Dead,
    /// Another worker holds an unexpired lease on the row.
    Locked,
    /// The row is waiting for a retry time that has not come yet.
    NotDue(DateTime<Utc>),
    /// No row has this id.
    NotFound,
}

/// A row the sweeper should hand to the queue again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepublishCandidate {
    pub id: i64,
    pub provider: String,
    pub event_type: String,
    pub attempt_count: i32,
}

/// The row state a processing result may be written over. It fences the write: a worker
/// whose row changed since it read or claimed it gets `Conflict` instead of writing twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The row was claimed with this `attempt_count` and must still be `processing` with it.
    /// A worker whose lease expired and whose row was claimed again is rejected.
    Claimed(i32),
    /// The row was read without a claim while `pending` with this `attempt_count`, and must
    /// still be so. The write raises the count by one, as a claim would have.
    Unclaimed(i32),
}

impl Attempt {
    /// Returns the attempt number the result belongs to, which is the row's
    /// `attempt_count` after the write.
    pub fn number(self) -> i32 {
        match self {
            Attempt::Claimed(count) => count,
            Attempt::Unclaimed(count) => count.saturating_add(1),
        }
    }
}

/// Everything a successful processing run writes, in one transaction.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The row state this result is written over.
    pub attempt: Attempt,
    pub payment_events: Vec<NewPaymentEvent>,
    pub logs: Vec<NewProcessingLog>,
    /// Short summary stored in `ProcessedPayload`.
    pub processed_payload: Option<String>,
}

/// Everything a failed processing run writes, in one transaction.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The row state this result is written over, like [`Completion::attempt`].
    pub attempt: Attempt,
    pub error_message: String,
    pub logs: Vec<NewProcessingLog>,
    /// When to try again; `None` marks the row `dead`.
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// Filters shared by listing, statistics, retry and replay selection. Empty fields match all.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub provider: Option<String>,
    pub event_type: Option<String>,
    pub statuses: Vec<EventStatus>,
    /// Inclusive lower bound on `created_at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `created_at`.
    pub to: Option<DateTime<Utc>>,
}

/// A page of events, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub total_count: i64,
}

/// Aggregates over the events matching a filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub pending: i64,
    pub processing: i64,
    pub dead: i64,
    pub by_provider: Vec<(String, i64)>,
    pub by_type: Vec<(String, i64)>,
    /// Mean of `ProcessedAt - CreatedAt` over completed events, in milliseconds.
    pub average_processing_ms: Option<f64>,
    /// 95th percentile of the same duration, in milliseconds.
    pub p95_processing_ms: Option<f64>,
}

/// Durable storage of webhook events, processing logs and payment events.
///
/// Every backend passes the same contract tests. All times are UTC.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations; a no-op on an up-to-date database.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database responds.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a verified event as `pending`, or returns the existing row's id when the
    /// (provider, event id) pair is already stored. Concurrent inserts of one pair yield one
    /// `Inserted` and otherwise `Duplicate`, never an error.
    async fn insert_event(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError>;

    /// Records that the row's id was handed to the queue.
    async fn mark_published(&self, id: i64) -> Result<(), StoreError>;

    /// Clears the published stamp after a failed publish, so the sweeper picks the row up.
    async fn mark_unpublished(&self, id: i64) -> Result<(), StoreError>;

    /// Selects rows whose queue message is missing or presumed lost, stamps them published
    /// now, and returns them for publishing. Several sweepers never get the same row. Picks:
    /// `pending` rows not published for `unpublished_grace`; and, when their last publish
    /// is older than `stale_after`, `pending` rows still waiting, `failed` rows whose retry
    /// time passed `stale_after` ago, and `processing` rows whose lease has expired.
    async fn claim_for_republish(
        &self,
        unpublished_grace: std::time::Duration,
        stale_after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<RepublishCandidate>, StoreError>;

    /// Returns ids of `pending` rows never published and created before `older_than`.
    async fn unpublished(
        &self,
        older_than: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError>;

    /// Claims one row for processing: sets `processing`, a lease until `now + lease`, and
    /// increments `attempt_count`. Only `pending` and `failed` rows, and `processing` rows
    /// whose lease expired, can be claimed. When `respect_retry_time` is true a `failed` row
    /// is only claimed once its `next_retry_at` has passed.
    async fn claim(
        &self,
        id: i64,
        lease: std::time::Duration,
        respect_retry_time: bool,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Claims up to `limit` due rows (`pending`, `failed` past `next_retry_at`, or
    /// `processing` past its lease), oldest first, without two callers ever getting one row.
    async fn claim_due(
        &self,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Reads one row without changing it; `None` when no row has this id.
    async fn load(&self, id: i64) -> Result<Option<StoredEvent>, StoreError>;

    /// Writes payment events and logs and marks the row `completed`, in one transaction.
    /// Fails with `Conflict` unless the row is still in the state the completion's
    /// [`Attempt`] names.
    async fn complete(&self, id: i64, completion: &Completion) -> Result<(), StoreError>;

    /// Writes logs and the error and marks the row `failed` (or `dead` when
    /// `next_retry_at` is `None`), in one transaction. Fails with `Conflict` unless the row
    /// is still in the state the failure's [`Attempt`] names.
    async fn fail(&self, id: i64, failure: &Failure) -> Result<(), StoreError>;

    /// Resets `failed` and `dead` rows matching the filter to `pending` with attempt count 0
    /// and clears their published mark, logging a `requeue` row for each. Returns the ids.
    async fn requeue(&self, filter: &EventFilter, limit: i64) -> Result<Vec<i64>, StoreError>;

    /// Resets one row of any status except `processing` to `pending` with attempt count 0,
    /// logging a `replay` row. Fails with `Conflict` when the row is `processing`.
    async fn replay(&self, id: i64) -> Result<(), StoreError>;

    /// Loads one event with its logs and payment events.
    async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError>;

    /// Lists events matching the filter, newest first; `page` starts at 1.
    async fn list_events(
        &self,
        filter: &EventFilter,
        page: i64,
        page_size: i64,
    ) -> Result<EventPage, StoreError>;

    /// Aggregates over the events matching the filter (statuses in the filter are ignored).
    async fn statistics(&self, filter: &EventFilter) -> Result<Statistics, StoreError>;
}

/// Connection settings shared by the backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum number of pooled connections. SQLite in memory always uses one.
    pub pool_size: usize,
    /// How long to wait for a new connection or a free pooled one before reporting
    /// [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens the backend named by the URL's scheme. Migrations are not applied; call
/// [`Store::migrate`].
///
/// Accepted forms: `sqlite://relative/path.db`, `sqlite:///absolute/path.db`,
/// `sqlite::memory:`, `postgres://...`, `postgresql://...`, `mssql://...`, `sqlserver://...`
/// and ADO.NET strings such as `Server=tcp:host,1433;Database=db;User Id=...;Password=...`.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::open(url, options).await?;
        return Ok(Arc::new(store));
    }
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(url, options).await?;
        return Ok(Arc::new(store));
    }
    if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") || is_ado_net(&lower) {
        let store = mssql::MssqlStore::open(url, options).await?;
        return Ok(Arc::new(store));
    }
    Err(StoreError::Invalid(format!(
        "unsupported database URL {:?}: expected sqlite://PATH, sqlite:///ABSOLUTE/PATH, \
         sqlite::memory:, postgres://..., postgresql://..., mssql://..., sqlserver://... \
         or an ADO.NET string Server=...;Database=...;",
        redact_url(url)
    )))
}

/// Returns true for an ADO.NET connection string such as `Server=host;Database=db;...`.
fn is_ado_net(lower: &str) -> bool {
    lower.contains(';')
        && ["server=", "data source=", "initial catalog="]
            .iter()
            .any(|key| lower.contains(key))
}

/// Returns the URL's scheme only, so an error message never shows a password.
fn redact_url(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) => format!("{scheme}:..."),
        None => "...".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_scheme_names_accepted_forms() {
        let Err(StoreError::Invalid(message)) =
            connect("mysql://user:secret@host/db", &StoreOptions::default()).await
        else {
            panic!("mysql URL was accepted");
        };
        assert!(message.contains("sqlite://"), "{message}");
        assert!(message.contains("postgres://"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[tokio::test]
    async fn sql_server_forms_open_a_pool() {
        for url in [
            "mssql://sa@127.0.0.1/payhook",
            "Server=127.0.0.1,1433;Database=payhook;User Id=sa;Password=x;",
        ] {
            let result = connect(url, &StoreOptions::default()).await;
            assert!(result.is_ok(), "{url} was refused");
        }
    }
}
