//! The T-SQL of each [`Store`](crate::storage::Store) operation, run on one pooled
//! connection.
//!
//! Queue-like selections read with `UPDLOCK, READPAST, ROWLOCK`: the rows a statement picks
//! stay locked until it has updated them, and concurrent callers skip locked rows instead
//! of waiting for them, so two callers never get the same row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tiberius::{Row, ToSql};

use super::Client;
use super::errors::{DbError, ErrorClass};
use super::rows::{
    self, Clause, EVENT_COLUMNS, LOG_COLUMNS, PAYMENT_COLUMNS, Param, db_id, qualified,
};
use crate::model::{
    EventDetail, EventStatus, InsertOutcome, NewEvent, NewPaymentEvent, NewProcessingLog,
    StoredEvent,
};
use crate::storage::limits::{self, truncate_optional};
use crate::storage::rules;
use crate::storage::{
    Attempt, ClaimOutcome, Completion, EventFilter, EventPage, Failure, RepublishCandidate,
    Statistics, StoreError,
};

type Result<T> = std::result::Result<T, DbError>;

/// `WebhookEvents.Signature` is `NVARCHAR(1000)` in the existing schema. The value is
/// kept for display; the full header stays in `Headers` for verifying again.
const SIGNATURE: usize = 1000;

/// Runs a batch without parameters and reads its whole response.
async fn batch(client: &mut Client, sql: &str) -> Result<()> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

/// Runs a parameterized statement and returns the rows of its first result set.
async fn fetch(client: &mut Client, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>> {
    Ok(client.query(sql, params).await?.into_first_result().await?)
}

/// Runs a parameterized batch and returns every result set.
async fn fetch_all(client: &mut Client, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Row>>> {
    Ok(client.query(sql, params).await?.into_results().await?)
}

/// Runs a parameterized statement and returns the number of rows it changed.
async fn execute(client: &mut Client, sql: &str, params: &[&dyn ToSql]) -> Result<u64> {
    Ok(client.execute(sql, params).await?.total())
}

/// Starts a transaction on the connection.
async fn begin(client: &mut Client) -> Result<()> {
    batch(client, "BEGIN TRANSACTION").await
}

/// Commits when `result` is `Ok` and rolls back otherwise. The connection leaves with no
/// transaction open, unless it broke, in which case the pool's recycle check drops it.
async fn finish<T>(client: &mut Client, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => match batch(client, "COMMIT TRANSACTION").await {
            Ok(()) => Ok(value),
            Err(error) => {
                rollback(client).await;
                Err(error)
            }
        },
        Err(error) => {
            rollback(client).await;
            Err(error)
        }
    }
}

/// Rolls back whatever is open. With `XACT_ABORT ON` the server may already have done so.
async fn rollback(client: &mut Client) {
    if let Err(error) = batch(client, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION").await {
        tracing::warn!(error = ?error, "SQL Server rollback failed; the connection is dropped");
    }
}

pub async fn insert_event(client: &mut Client, event: &NewEvent) -> Result<InsertOutcome> {
    let now = rules::now();
    let signature = truncate_optional(event.signature.as_deref(), SIGNATURE);
    let source_ip = truncate_optional(event.source_ip.as_deref(), limits::SOURCE_IP);
    let user_agent = truncate_optional(event.user_agent.as_deref(), limits::USER_AGENT);
    let published_at = event.published.then_some(now);
    let sql = "DECLARE @existing INT = \
             (SELECT Id FROM WebhookEvents WHERE Provider = @P2 AND EventId = @P1); \
         IF @existing IS NOT NULL \
             SELECT @existing, CAST(0 AS BIT) \
         ELSE \
             INSERT INTO WebhookEvents (EventId, Provider, EventType, Status, RawPayload, \
                 Signature, Headers, SourceIp, UserAgent, AttemptCount, MaxAttempts, \
                 CreatedAt, UpdatedAt, SignatureVerified, SignatureKeyId, ProviderCreatedAt, \
                 PublishedAt) \
             OUTPUT inserted.Id, CAST(1 AS BIT) \
             VALUES (@P1, @P2, @P3, N'pending', @P4, @P5, @P6, @P7, @P8, 0, @P9, @P10, @P10, \
                 @P11, @P12, @P13, @P14);";
    // A concurrent insert of the same pair makes the unique index reject this one after
    // the other commits; the next round then finds the committed row.
    for _ in 0..3 {
        let result = fetch(
            client,
            sql,
            &[
                &event.event_id,
                &event.provider,
                &event.event_type,
                &event.raw_payload,
                &signature,
                &event.headers,
                &source_ip,
                &user_agent,
                &event.max_attempts,
                &now,
                &event.signature_verified,
                &event.signature_key_id,
                &event.provider_created_at,
                &published_at,
            ],
        )
        .await;
        match result {
            Ok(rows) => {
                let row = rows
                    .first()
                    .ok_or_else(|| StoreError::Backend("insert returned no row id".to_string()))?;
                let id = i64::from(rows::int(row, 0)?);
                let inserted = row.try_get::<bool, _>(1)?.unwrap_or(false);
                return Ok(if inserted {
                    InsertOutcome::Inserted(id)
                } else {
                    InsertOutcome::Duplicate(id)
                });
            }
            Err(error) if error.class() == ErrorClass::Duplicate => continue,
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Unavailable(
        "the (provider, event id) row was rejected as a duplicate but could not be read".into(),
    )
    .into())
}

pub async fn mark_published(client: &mut Client, id: i64) -> Result<()> {
    let db = db_id(id).ok_or(StoreError::NotFound(id))?;
    let changed = execute(
        client,
        "UPDATE WebhookEvents SET PublishedAt = @P1 WHERE Id = @P2",
        &[&rules::now(), &db],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound(id).into());
    }
    Ok(())
}

pub async fn mark_unpublished(client: &mut Client, id: i64) -> Result<()> {
    let db = db_id(id).ok_or(StoreError::NotFound(id))?;
    let changed = execute(
        client,
        "UPDATE WebhookEvents SET PublishedAt = NULL WHERE Id = @P1",
        &[&db],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound(id).into());
    }
    Ok(())
}

pub async fn claim_for_republish(
    client: &mut Client,
    unpublished_grace: Duration,
    stale_after: Duration,
    limit: i64,
) -> Result<Vec<RepublishCandidate>> {
    let now = rules::now();
    let grace_cutoff = rules::before(now, unpublished_grace)?;
    let stale_cutoff = rules::before(now, stale_after)?;
    let rows = fetch(
        client,
        "WITH picked AS ( \
             SELECT TOP (@P4) Id, PublishedAt FROM WebhookEvents WITH (UPDLOCK, READPAST, ROWLOCK) \
             WHERE (Status = N'pending' AND PublishedAt IS NULL AND CreatedAt < @P2) \
                OR (PublishedAt IS NOT NULL AND PublishedAt < @P3 AND ( \
                       Status = N'pending' \
                    OR (Status = N'failed' AND NextRetryAt < @P3) \
                    OR (Status = N'processing' AND LockedUntil < @P1))) \
             ORDER BY Id) \
         UPDATE picked SET PublishedAt = @P1 \
         OUTPUT inserted.Id, inserted.Provider, inserted.EventType, inserted.AttemptCount;",
        &[&now, &grace_cutoff, &stale_cutoff, &limit.max(0)],
    )
    .await?;
    let mut candidates = rows
        .iter()
        .map(|row| {
            Ok(RepublishCandidate {
                id: i64::from(rows::int(row, 0)?),
                provider: rows::text(row, 1)?,
                event_type: rows::text(row, 2)?,
                attempt_count: rows::int(row, 3)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    candidates.sort_by_key(|candidate| candidate.id);
    Ok(candidates)
}

pub async fn unpublished(
    client: &mut Client,
    older_than: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    let rows = fetch(
        client,
        "SELECT TOP (@P2) Id FROM WebhookEvents \
         WHERE Status = N'pending' AND PublishedAt IS NULL AND CreatedAt < @P1 \
         ORDER BY CreatedAt, Id",
        &[&older_than, &limit.max(0)],
    )
    .await?;
    rows.iter()
        .map(|row| Ok(i64::from(rows::int(row, 0)?)))
        .collect()
}

pub async fn claim(
    client: &mut Client,
    id: i64,
    lease: Duration,
    respect_retry_time: bool,
) -> Result<ClaimOutcome> {
    let now = rules::now();
    let locked_until = rules::lease_end(now, lease)?;
    let Some(db) = db_id(id) else {
        return Ok(ClaimOutcome::NotFound);
    };
    begin(client).await?;
    let result = claim_locked(client, db, now, locked_until, respect_retry_time).await;
    finish(client, result).await
}

async fn claim_locked(
    client: &mut Client,
    id: i32,
    now: DateTime<Utc>,
    locked_until: DateTime<Utc>,
    respect_retry_time: bool,
) -> Result<ClaimOutcome> {
    let current = fetch(
        client,
        "SELECT Status, LockedUntil, NextRetryAt FROM WebhookEvents WITH (UPDLOCK, ROWLOCK) \
         WHERE Id = @P1",
        &[&id],
    )
    .await?;
    let Some(current) = current.first() else {
        return Ok(ClaimOutcome::NotFound);
    };
    let status = rows::status_from(&rows::text(current, 0)?)?;
    if let Some(refusal) = rules::claim_refusal(
        status,
        rows::opt_time(current, 1)?,
        rows::opt_time(current, 2)?,
        now,
        respect_retry_time,
    ) {
        return Ok(refusal);
    }
    let sql = format!(
        "UPDATE WebhookEvents SET Status = N'processing', LockedUntil = @P1, \
         AttemptCount = AttemptCount + 1, UpdatedAt = @P2 \
         OUTPUT {} WHERE Id = @P3",
        qualified(EVENT_COLUMNS, "inserted.")
    );
    let updated = fetch(client, &sql, &[&locked_until, &now, &id]).await?;
    let row = updated
        .first()
        .ok_or_else(|| StoreError::Backend("claimed row vanished".to_string()))?;
    Ok(ClaimOutcome::Claimed(rows::event_from_row(row)?))
}

pub async fn claim_due(
    client: &mut Client,
    limit: i64,
    lease: Duration,
) -> Result<Vec<StoredEvent>> {
    let now = rules::now();
    let locked_until = rules::lease_end(now, lease)?;
    let sql = format!(
        "WITH due AS ( \
             SELECT TOP (@P3) * FROM WebhookEvents WITH (UPDLOCK, READPAST, ROWLOCK) \
             WHERE Status = N'pending' \
                OR (Status = N'failed' AND (NextRetryAt IS NULL OR NextRetryAt <= @P2)) \
                OR (Status = N'processing' AND (LockedUntil IS NULL OR LockedUntil <= @P2)) \
             ORDER BY CreatedAt, Id) \
         UPDATE due SET Status = N'processing', LockedUntil = @P1, \
             AttemptCount = AttemptCount + 1, UpdatedAt = @P2 \
         OUTPUT {};",
        qualified(EVENT_COLUMNS, "inserted.")
    );
    let rows = fetch(client, &sql, &[&locked_until, &now, &limit.max(0)]).await?;
    let mut claimed = rows
        .iter()
        .map(rows::event_from_row)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|event| (event.created_at, event.id));
    Ok(claimed)
}

/// Locks the row and returns its provider. Fails with `NotFound`, or with `Conflict` unless
/// the row is in the state `attempt` names.
async fn lock_processing_row(client: &mut Client, id: i64, attempt: Attempt) -> Result<String> {
    let db = db_id(id).ok_or(StoreError::NotFound(id))?;
    let rows = fetch(
        client,
        "SELECT Status, Provider, AttemptCount FROM WebhookEvents WITH (UPDLOCK, ROWLOCK) \
         WHERE Id = @P1",
        &[&db],
    )
    .await?;
    let row = rows.first().ok_or(StoreError::NotFound(id))?;
    let status = rows::status_from(&rows::text(row, 0)?)?;
    rules::check_attempt(id, status, rows::int(row, 2)?, attempt)?;
    rows::text(row, 1)
}

/// Reads one row.
pub async fn load(client: &mut Client, id: i64) -> Result<Option<StoredEvent>> {
    let Some(db) = db_id(id) else {
        return Ok(None);
    };
    let rows = fetch(
        client,
        &format!("SELECT {EVENT_COLUMNS} FROM WebhookEvents WHERE Id = @P1"),
        &[&db],
    )
    .await?;
    rows.first().map(rows::event_from_row).transpose()
}

async fn insert_log(
    client: &mut Client,
    id: i32,
    log: &NewProcessingLog,
    now: DateTime<Utc>,
) -> Result<()> {
    limits::check_log(log)?;
    let error_message = truncate_optional(log.error_message.as_deref(), limits::ERROR_MESSAGE);
    let additional_data =
        truncate_optional(log.additional_data.as_deref(), limits::ADDITIONAL_DATA);
    execute(
        client,
        "INSERT INTO WebhookProcessingLogs (WebhookEventId, ProcessingStep, Status, \
         DurationMs, ErrorMessage, AdditionalData, ProcessedAt) \
         VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7)",
        &[
            &id,
            &log.step,
            &log.status,
            &log.duration_ms,
            &error_message,
            &additional_data,
            &now,
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a payment event unless one identical in every field is already stored for the
/// same webhook event, so replaying a completed event does not duplicate payment rows.
/// Text is compared in a binary collation: the database's default one ignores case.
async fn insert_payment(
    client: &mut Client,
    id: i32,
    provider: &str,
    payment: &NewPaymentEvent,
    now: DateTime<Utc>,
) -> Result<()> {
    limits::check_payment(payment)?;
    let amount = payment.amount.as_ref();
    let exponent = amount
        .map(|money| i32::try_from(money.exponent))
        .transpose()
        .map_err(|_| StoreError::Invalid("amount exponent is out of range".into()))?;
    let legacy = amount.and_then(rows::legacy_amount);
    let currency = amount.map(|money| money.currency.as_str().to_string());
    let minor = amount.map(|money| money.minor);
    execute(
        client,
        "INSERT INTO PaymentEvents (WebhookEventId, PaymentId, Provider, EventType, Status, \
             Amount, Currency, CustomerId, OrderId, TransactionId, Metadata, CreatedAt, \
             UpdatedAt, AmountMinor, AmountExponent, StatusRaw, ProviderCreatedAt) \
         SELECT @P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12, @P12, @P13, \
             @P14, @P15, @P16 \
         WHERE NOT EXISTS (SELECT 1 FROM PaymentEvents WHERE WebhookEventId = @P1 \
             AND PaymentId = @P2 COLLATE Latin1_General_100_BIN2 \
             AND EventType = @P4 COLLATE Latin1_General_100_BIN2 \
             AND Status = @P5 COLLATE Latin1_General_100_BIN2 \
             AND (Currency = @P7 COLLATE Latin1_General_100_BIN2 \
                  OR (Currency IS NULL AND @P7 IS NULL)) \
             AND (CustomerId = @P8 COLLATE Latin1_General_100_BIN2 \
                  OR (CustomerId IS NULL AND @P8 IS NULL)) \
             AND (OrderId = @P9 COLLATE Latin1_General_100_BIN2 \
                  OR (OrderId IS NULL AND @P9 IS NULL)) \
             AND (TransactionId = @P10 COLLATE Latin1_General_100_BIN2 \
                  OR (TransactionId IS NULL AND @P10 IS NULL)) \
             AND (Metadata = @P11 COLLATE Latin1_General_100_BIN2 \
                  OR (Metadata IS NULL AND @P11 IS NULL)) \
             AND (AmountMinor = @P13 OR (AmountMinor IS NULL AND @P13 IS NULL)) \
             AND (AmountExponent = @P14 OR (AmountExponent IS NULL AND @P14 IS NULL)) \
             AND (StatusRaw = @P15 COLLATE Latin1_General_100_BIN2 \
                  OR (StatusRaw IS NULL AND @P15 IS NULL)) \
             AND (ProviderCreatedAt = @P16 \
                  OR (ProviderCreatedAt IS NULL AND @P16 IS NULL)))",
        &[
            &id,
            &payment.payment_id,
            &provider,
            &payment.event_type,
            &payment.status,
            &legacy,
            &currency,
            &payment.customer_id,
            &payment.order_id,
            &payment.transaction_id,
            &payment.metadata,
            &now,
            &minor,
            &exponent,
            &payment.status_raw,
            &payment.provider_created_at,
        ],
    )
    .await?;
    Ok(())
}

pub async fn complete(client: &mut Client, id: i64, completion: &Completion) -> Result<()> {
    let now = rules::now();
    begin(client).await?;
    let result = complete_locked(client, id, completion, now).await;
    finish(client, result).await
}

async fn complete_locked(
    client: &mut Client,
    id: i64,
    completion: &Completion,
    now: DateTime<Utc>,
) -> Result<()> {
    let provider = lock_processing_row(client, id, completion.attempt).await?;
    let db = db_id(id).ok_or(StoreError::NotFound(id))?;
    // Each row is checked just before its insert; an error rolls back the rows already
    // written.
    for log in &completion.logs {
        insert_log(client, db, log, now).await?;
    }
    for payment in &completion.payment_events {
        insert_payment(client, db, &provider, payment, now).await?;
    }
    execute(
        client,
        "UPDATE WebhookEvents SET Status = N'completed', ProcessedPayload = @P1, \
         ProcessedAt = @P2, UpdatedAt = @P2, LockedUntil = NULL, NextRetryAt = NULL, \
         ErrorMessage = NULL, AttemptCount = @P4 WHERE Id = @P3",
        &[
            &completion.processed_payload,
            &now,
            &db,
            &completion.attempt.number(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn fail(client: &mut Client, id: i64, failure: &Failure) -> Result<()> {
    limits::check_time("next_retry_at", failure.next_retry_at)?;
    let now = rules::now();
    begin(client).await?;
    let result = fail_locked(client, id, failure, now).await;
    finish(client, result).await
}

async fn fail_locked(
    client: &mut Client,
    id: i64,
    failure: &Failure,
    now: DateTime<Utc>,
) -> Result<()> {
    lock_processing_row(client, id, failure.attempt).await?;
    let db = db_id(id).ok_or(StoreError::NotFound(id))?;
    for log in &failure.logs {
        insert_log(client, db, log, now).await?;
    }
    let status = match failure.next_retry_at {
        Some(_) => EventStatus::Failed,
        None => EventStatus::Dead,
    };
    let error_message = limits::truncate(&failure.error_message, limits::ERROR_MESSAGE);
    execute(
        client,
        "UPDATE WebhookEvents SET Status = @P1, ErrorMessage = @P2, NextRetryAt = @P3, \
         UpdatedAt = @P4, LockedUntil = NULL, AttemptCount = @P6 WHERE Id = @P5",
        &[
            &status.as_str(),
            &error_message,
            &failure.next_retry_at,
            &now,
            &db,
            &failure.attempt.number(),
        ],
    )
    .await?;
    Ok(())
}

/// Columns a reset to `pending` clears, as a `SET` list; `@now` is the reset time.
const RESET_TO_PENDING: &str = "Status = N'pending', AttemptCount = 0, NextRetryAt = NULL, \
    PublishedAt = NULL, LockedUntil = NULL, ProcessedAt = NULL, UpdatedAt = @now";

pub async fn requeue(client: &mut Client, filter: &EventFilter, limit: i64) -> Result<Vec<i64>> {
    let statuses = rules::requeue_statuses(&filter.statuses);
    if statuses.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    let filter = EventFilter {
        statuses,
        ..filter.clone()
    };
    let mut clause = rows::filter_clause(&filter, true);
    let limit_mark = clause.push(Param::Int(limit));
    let now_mark = clause.push(Param::Time(rules::now()));
    let sql = requeue_sql(&clause, &limit_mark, &now_mark);
    begin(client).await?;
    let result = async {
        let rows = clause
            .query(sql)
            .query(client)
            .await?
            .into_first_result()
            .await?;
        rows.iter()
            .map(|row| Ok(i64::from(rows::int(row, 0)?)))
            .collect::<Result<Vec<_>>>()
    }
    .await;
    finish(client, result).await
}

/// Resets up to `limit_mark` matching rows, logs a `requeue` row for each and returns
/// their ids, oldest first, in one batch.
fn requeue_sql(clause: &Clause, limit_mark: &str, now_mark: &str) -> String {
    format!(
        "DECLARE @now DATETIME2 = {now_mark}; \
         DECLARE @ids TABLE (Id INT PRIMARY KEY); \
         WITH picked AS ( \
             SELECT TOP ({limit_mark}) * FROM WebhookEvents WITH (UPDLOCK, READPAST, ROWLOCK) \
             WHERE {} ORDER BY CreatedAt, Id) \
         UPDATE picked SET {RESET_TO_PENDING} OUTPUT inserted.Id INTO @ids; \
         INSERT INTO WebhookProcessingLogs (WebhookEventId, ProcessingStep, Status, \
             DurationMs, ProcessedAt) \
         SELECT Id, N'requeue', N'success', 0, @now FROM @ids; \
         SELECT e.Id FROM @ids AS i JOIN WebhookEvents AS e ON e.Id = i.Id \
         ORDER BY e.CreatedAt, e.Id;",
        clause.sql
    )
}

pub async fn replay(client: &mut Client, id: i64) -> Result<()> {
    let db = db_id(id).ok_or(StoreError::NotFound(id))?;
    begin(client).await?;
    let result = replay_locked(client, id, db).await;
    finish(client, result).await
}

async fn replay_locked(client: &mut Client, id: i64, db: i32) -> Result<()> {
    let rows = fetch(
        client,
        "SELECT Status FROM WebhookEvents WITH (UPDLOCK, ROWLOCK) WHERE Id = @P1",
        &[&db],
    )
    .await?;
    let row = rows.first().ok_or(StoreError::NotFound(id))?;
    let status = rows::status_from(&rows::text(row, 0)?)?;
    if status == EventStatus::Processing {
        return Err(StoreError::Conflict {
            id,
            status,
            expected: "not processing",
        }
        .into());
    }
    let sql = format!(
        "DECLARE @now DATETIME2 = @P1; \
         UPDATE WebhookEvents SET {RESET_TO_PENDING} WHERE Id = @P2; \
         INSERT INTO WebhookProcessingLogs (WebhookEventId, ProcessingStep, Status, \
             DurationMs, ProcessedAt) VALUES (@P2, N'replay', N'success', 0, @now);"
    );
    execute(client, &sql, &[&rules::now(), &db]).await?;
    Ok(())
}

pub async fn event_detail(client: &mut Client, id: i64) -> Result<Option<EventDetail>> {
    let Some(db) = db_id(id) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM WebhookEvents WHERE Id = @P1; \
         SELECT {LOG_COLUMNS} FROM WebhookProcessingLogs WHERE WebhookEventId = @P1 ORDER BY Id; \
         SELECT {PAYMENT_COLUMNS} FROM PaymentEvents WHERE WebhookEventId = @P1 ORDER BY Id;"
    );
    let results = fetch_all(client, &sql, &[&db]).await?;
    let set = |index: usize| results.get(index).map(Vec::as_slice).unwrap_or(&[]);
    let Some(row) = set(0).first() else {
        return Ok(None);
    };
    Ok(Some(EventDetail {
        event: rows::event_from_row(row)?,
        logs: set(1)
            .iter()
            .map(rows::log_from_row)
            .collect::<Result<Vec<_>>>()?,
        payment_events: set(2)
            .iter()
            .map(rows::payment_from_row)
            .collect::<Result<Vec<_>>>()?,
    }))
}

pub async fn list_events(
    client: &mut Client,
    filter: &EventFilter,
    offset: i64,
    page_size: i64,
) -> Result<EventPage> {
    let mut clause = rows::filter_clause(filter, true);
    let offset_mark = clause.push(Param::Int(offset));
    let size_mark = clause.push(Param::Int(page_size));
    let sql = format!(
        "SELECT COUNT_BIG(*) FROM WebhookEvents WHERE {where_}; \
         SELECT {EVENT_COLUMNS} FROM WebhookEvents WHERE {where_} \
         ORDER BY CreatedAt DESC, Id DESC \
         OFFSET {offset_mark} ROWS FETCH NEXT {size_mark} ROWS ONLY;",
        where_ = clause.sql
    );
    let results = clause
        .query(sql)
        .query(client)
        .await?
        .into_results()
        .await?;
    let total_count = match results.first().and_then(|set| set.first()) {
        Some(row) => rows::big(row, 0)?,
        None => 0,
    };
    let events = results
        .get(1)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(rows::event_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(EventPage {
        events,
        total_count,
    })
}

fn counts(rows: Option<&Vec<Row>>) -> Result<Vec<(String, i64)>> {
    rows.map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|row| Ok((rows::text(row, 0)?, rows::big(row, 1)?)))
        .collect()
}

pub async fn statistics(client: &mut Client, filter: &EventFilter) -> Result<Statistics> {
    let clause = rows::filter_clause(filter, false);
    let group = |column: &str| {
        format!(
            "SELECT {column}, COUNT_BIG(*) FROM WebhookEvents WHERE {} \
             GROUP BY {column} ORDER BY COUNT_BIG(*) DESC, {column};",
            clause.sql
        )
    };
    // Same definitions as the other backends: the mean, and percentile_cont(0.95).
    let sql = format!(
        "{} {} {} \
         SELECT TOP (1) AVG(ms) OVER (), \
             PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY ms) OVER () \
         FROM (SELECT CAST(DATEDIFF_BIG(MICROSECOND, CreatedAt, ProcessedAt) AS FLOAT) \
                   / 1000.0 AS ms \
               FROM WebhookEvents WHERE {} AND Status = N'completed' \
               AND ProcessedAt IS NOT NULL) AS durations;",
        group("Status"),
        group("Provider"),
        group("EventType"),
        clause.sql
    );
    let results = clause
        .query(sql)
        .query(client)
        .await?
        .into_results()
        .await?;
    let mut statistics = Statistics::default();
    for (status, count) in counts(results.first())? {
        statistics.total += count;
        match EventStatus::parse(&status) {
            Some(EventStatus::Pending) => statistics.pending = count,
            Some(EventStatus::Processing) => statistics.processing = count,
            Some(EventStatus::Completed) => statistics.completed = count,
            Some(EventStatus::Failed) => statistics.failed = count,
            Some(EventStatus::Dead) => statistics.dead = count,
            None => {}
        }
    }
    statistics.by_provider = counts(results.get(1))?;
    statistics.by_type = counts(results.get(2))?;
    if let Some(row) = results.get(3).and_then(|set| set.first()) {
        statistics.average_processing_ms = row.try_get::<f64, _>(0)?;
        statistics.p95_processing_ms = row.try_get::<f64, _>(1)?;
    }
    Ok(statistics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_batch_locks_skips_and_logs() {
        let filter = EventFilter {
            provider: Some("stripe".into()),
            statuses: vec![EventStatus::Failed],
            ..EventFilter::default()
        };
        let mut clause = rows::filter_clause(&filter, true);
        let limit = clause.push(Param::Int(5));
        let now = clause.push(Param::Time(rules::now()));
        let sql = requeue_sql(&clause, &limit, &now);
        assert!(sql.contains("TOP (@P2)"), "{sql}");
        assert!(sql.contains("DECLARE @now DATETIME2 = @P3"), "{sql}");
        assert!(sql.contains("WITH (UPDLOCK, READPAST, ROWLOCK)"), "{sql}");
        assert!(
            sql.contains("Provider = @P1 AND Status IN (N'failed')"),
            "{sql}"
        );
        assert!(sql.contains("N'requeue'"), "{sql}");
    }
}
