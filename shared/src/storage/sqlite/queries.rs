//! The SQL of each [`Store`](crate::storage::Store) operation, run on one connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

use super::SqlError;
use super::rows::{self, EVENT_COLUMNS, LOG_COLUMNS, PAYMENT_COLUMNS};
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

type Result<T> = std::result::Result<T, SqlError>;

pub fn insert_event(conn: &mut Connection, event: &NewEvent) -> Result<InsertOutcome> {
    insert_events(conn, std::slice::from_ref(event)).map(|mut outcomes| outcomes.remove(0))
}

/// Inserts events in one `BEGIN IMMEDIATE` transaction, so the whole batch costs one commit
/// and one fsync, and returns one outcome per event in order.
pub fn insert_events(conn: &mut Connection, events: &[NewEvent]) -> Result<Vec<InsertOutcome>> {
    let now = rows::time(rules::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO webhook_events (event_id, provider, event_type, status, raw_payload, \
             signature, headers, source_ip, user_agent, attempt_count, max_attempts, \
             created_at, updated_at, signature_verified, signature_key_id, provider_created_at, \
             published_at) \
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?10, ?11, ?12, ?13, \
             CASE WHEN ?14 THEN ?10 END) \
             ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
        )?;
        let mut existing = tx.prepare_cached(
            "SELECT id FROM webhook_events WHERE provider = ?1 AND event_id = ?2",
        )?;
        for event in events {
            let inserted: Option<i64> = insert
                .query_row(
                    params![
                        event.event_id,
                        event.provider,
                        event.event_type,
                        event.raw_payload,
                        event.signature,
                        event.headers,
                        truncate_optional(event.source_ip.as_deref(), limits::SOURCE_IP),
                        truncate_optional(event.user_agent.as_deref(), limits::USER_AGENT),
                        event.max_attempts,
                        now,
                        event.signature_verified,
                        event.signature_key_id,
                        event.provider_created_at.map(rows::time),
                        event.published,
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            outcomes.push(match inserted {
                Some(id) => InsertOutcome::Inserted(id),
                None => InsertOutcome::Duplicate(
                    existing
                        .query_row(params![event.provider, event.event_id], |row| row.get(0))?,
                ),
            });
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

pub fn mark_published(conn: &mut Connection, id: i64) -> Result<()> {
    let changed = conn.execute(
        "UPDATE webhook_events SET published_at = ?1 WHERE id = ?2",
        params![rows::time(rules::now()), id],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(id).into());
    }
    Ok(())
}

pub fn mark_unpublished(conn: &mut Connection, id: i64) -> Result<()> {
    let changed = conn.execute(
        "UPDATE webhook_events SET published_at = NULL WHERE id = ?1",
        params![id],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(id).into());
    }
    Ok(())
}

pub fn claim_for_republish(
    conn: &mut Connection,
    unpublished_grace: Duration,
    stale_after: Duration,
    limit: i64,
) -> Result<Vec<RepublishCandidate>> {
    let now = rules::now();
    let grace_cutoff = rows::time(rules::before(now, unpublished_grace)?);
    let stale_cutoff = rows::time(rules::before(now, stale_after)?);
    let now = rows::time(now);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let candidates = {
        let mut statement = tx.prepare(
            "UPDATE webhook_events SET published_at = ?1 \
             WHERE id IN (SELECT id FROM webhook_events \
                WHERE (status = 'pending' AND published_at IS NULL AND created_at < ?2) \
                   OR (published_at IS NOT NULL AND published_at < ?3 AND ( \
                          status = 'pending' \
                       OR (status = 'failed' AND next_retry_at < ?3) \
                       OR (status = 'processing' AND locked_until < ?1))) \
                ORDER BY id LIMIT ?4) \
             RETURNING id, provider, event_type, attempt_count",
        )?;
        statement
            .query_map(
                params![now, grace_cutoff, stale_cutoff, limit.max(0)],
                |row| {
                    Ok(RepublishCandidate {
                        id: row.get(0)?,
                        provider: row.get(1)?,
                        event_type: row.get(2)?,
                        attempt_count: row.get(3)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.commit()?;
    Ok(candidates)
}

pub fn unpublished(
    conn: &mut Connection,
    older_than: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    let mut statement = conn.prepare(
        "SELECT id FROM webhook_events \
         WHERE status = 'pending' AND published_at IS NULL AND created_at < ?1 \
         ORDER BY created_at, id LIMIT ?2",
    )?;
    let ids = statement
        .query_map(params![rows::time(older_than), limit.max(0)], |row| {
            row.get(0)
        })?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

pub fn claim(
    conn: &mut Connection,
    id: i64,
    lease: Duration,
    respect_retry_time: bool,
) -> Result<ClaimOutcome> {
    let now = rules::now();
    let locked_until = rules::lease_end(now, lease)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = tx
        .query_row(
            &format!("SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = ?1"),
            [id],
            rows::event_from_row,
        )
        .optional()?;
    let Some(current) = current else {
        return Ok(ClaimOutcome::NotFound);
    };
    if let Some(refusal) = rules::claim_refusal(
        current.status,
        current.locked_until,
        current.next_retry_at,
        now,
        respect_retry_time,
    ) {
        return Ok(refusal);
    }
    let claimed = tx.query_row(
        &format!(
            "UPDATE webhook_events SET status = 'processing', locked_until = ?1, \
             attempt_count = attempt_count + 1, updated_at = ?2 WHERE id = ?3 \
             RETURNING {EVENT_COLUMNS}"
        ),
        params![rows::time(locked_until), rows::time(now), id],
        rows::event_from_row,
    )?;
    tx.commit()?;
    Ok(ClaimOutcome::Claimed(claimed))
}

pub fn claim_due(conn: &mut Connection, limit: i64, lease: Duration) -> Result<Vec<StoredEvent>> {
    let now = rules::now();
    let locked_until = rules::lease_end(now, lease)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut claimed = {
        let mut statement = tx.prepare(&format!(
            "UPDATE webhook_events SET status = 'processing', locked_until = ?1, \
             attempt_count = attempt_count + 1, updated_at = ?2 \
             WHERE id IN (SELECT id FROM webhook_events \
                 WHERE status = 'pending' \
                    OR (status = 'failed' AND (next_retry_at IS NULL OR next_retry_at <= ?2)) \
                    OR (status = 'processing' AND (locked_until IS NULL OR locked_until <= ?2)) \
                 ORDER BY created_at, id LIMIT ?3) \
             RETURNING {EVENT_COLUMNS}"
        ))?;
        statement
            .query_map(
                params![rows::time(locked_until), rows::time(now), limit.max(0)],
                rows::event_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.commit()?;
    claimed.sort_by_key(|event| (event.created_at, event.id));
    Ok(claimed)
}

/// Returns the row's provider. Fails with `NotFound`, or with `Conflict` unless the row is
/// in the state `attempt` names.
fn processing_row(conn: &Connection, id: i64, attempt: Attempt) -> Result<String> {
    let row: Option<(String, String, i32)> = conn
        .query_row(
            "SELECT status, provider, attempt_count FROM webhook_events WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let (status, provider, attempt_count) = row.ok_or(StoreError::NotFound(id))?;
    let status = EventStatus::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("unknown event status {status:?}")))?;
    rules::check_attempt(id, status, attempt_count, attempt)?;
    Ok(provider)
}

/// Inserts one log row; the caller's transaction makes it all-or-nothing with its siblings.
fn insert_log(conn: &Connection, id: i64, log: &NewProcessingLog, now: &str) -> Result<()> {
    limits::check_log(log)?;
    conn.execute(
        "INSERT INTO webhook_processing_logs (webhook_event_id, processing_step, status, \
         duration_ms, error_message, additional_data, processed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            log.step,
            log.status,
            log.duration_ms,
            truncate_optional(log.error_message.as_deref(), limits::ERROR_MESSAGE),
            truncate_optional(log.additional_data.as_deref(), limits::ADDITIONAL_DATA),
            now,
        ],
    )?;
    Ok(())
}

fn insert_payment(
    conn: &Connection,
    id: i64,
    provider: &str,
    payment: &NewPaymentEvent,
    now: &str,
) -> Result<()> {
    limits::check_payment(payment)?;
    let amount = payment.amount.as_ref();
    conn.execute(
        "INSERT INTO payment_events (webhook_event_id, payment_id, provider, event_type, status, \
         amount, currency, customer_id, order_id, transaction_id, metadata, created_at, \
         updated_at, amount_minor, amount_exponent, status_raw, provider_created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16)",
        params![
            id,
            payment.payment_id,
            provider,
            payment.event_type,
            payment.status,
            amount.map(|money| money.to_decimal_string()),
            amount.map(|money| money.currency.as_str().to_string()),
            payment.customer_id,
            payment.order_id,
            payment.transaction_id,
            payment.metadata,
            now,
            amount.map(|money| money.minor),
            amount.map(|money| money.exponent),
            payment.status_raw,
            payment.provider_created_at.map(rows::time),
        ],
    )?;
    Ok(())
}

/// Loads the payment events already stored for a webhook event, for the replay rule in
/// [`rules::payments_to_insert`].
fn stored_payments(conn: &Connection, id: i64) -> Result<Vec<NewPaymentEvent>> {
    let payments = conn
        .prepare(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment_events WHERE webhook_event_id = ?1 ORDER BY id"
        ))?
        .query_map([id], rows::payment_from_row)?
        .map(|row| row.map(|stored| stored.payment))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(payments)
}

pub fn complete(conn: &mut Connection, id: i64, completion: &Completion) -> Result<()> {
    let now = rows::time(rules::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Any error drops `tx`, which rolls back the rows already written.
    complete_in(&tx, id, completion, &now)?;
    tx.commit()?;
    Ok(())
}

/// Completes several events in one transaction, and so with one fsync. Each event is
/// written under a savepoint of its own, so an event that fails leaves nothing behind and
/// does not fail the others. Returns one result per event; the outer error means that the
/// transaction itself could not be started or committed.
pub fn complete_many(
    conn: &mut Connection,
    items: &[(i64, Completion)],
) -> Result<Vec<std::result::Result<(), StoreError>>> {
    let now = rows::time(rules::now());
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(items.len());
    for (id, completion) in items {
        let savepoint = tx.savepoint()?;
        match complete_in(&savepoint, *id, completion, &now) {
            Ok(()) => {
                savepoint.commit()?;
                results.push(Ok(()));
            }
            // Dropping the savepoint rolls back what this event wrote.
            Err(error) => results.push(Err(StoreError::from(error))),
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Writes one completion inside the caller's transaction.
fn complete_in(conn: &Connection, id: i64, completion: &Completion, now: &str) -> Result<()> {
    let provider = processing_row(conn, id, completion.attempt)?;
    // Each row is checked just before its insert.
    for log in &completion.logs {
        insert_log(conn, id, log, now)?;
    }
    let stored = stored_payments(conn, id)?;
    for payment in rules::payments_to_insert(stored, &completion.payment_events) {
        insert_payment(conn, id, &provider, payment, now)?;
    }
    conn.execute(
        "UPDATE webhook_events SET status = 'completed', processed_payload = ?1, \
         processed_at = ?2, updated_at = ?2, locked_until = NULL, next_retry_at = NULL, \
         error_message = NULL, attempt_count = ?3 WHERE id = ?4",
        params![
            completion.processed_payload,
            now,
            completion.attempt.number(),
            id
        ],
    )?;
    Ok(())
}

/// Reads one row.
pub fn load(conn: &Connection, id: i64) -> Result<Option<StoredEvent>> {
    let event = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = ?1"
        ))?
        .query_row([id], rows::event_from_row)
        .optional()?;
    Ok(event)
}

pub fn fail(conn: &mut Connection, id: i64, failure: &Failure) -> Result<()> {
    let now = rows::time(rules::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    processing_row(&tx, id, failure.attempt)?;
    for log in &failure.logs {
        insert_log(&tx, id, log, &now)?;
    }
    let status = match failure.next_retry_at {
        Some(_) => EventStatus::Failed,
        None => EventStatus::Dead,
    };
    tx.execute(
        "UPDATE webhook_events SET status = ?1, error_message = ?2, next_retry_at = ?3, \
         updated_at = ?4, locked_until = NULL, attempt_count = ?5 WHERE id = ?6",
        params![
            status.as_str(),
            limits::truncate(&failure.error_message, limits::ERROR_MESSAGE),
            failure.next_retry_at.map(rows::time),
            now,
            failure.attempt.number(),
            id,
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Resets one row to `pending` and logs `step`.
fn reset_to_pending(conn: &Connection, id: i64, step: &str, now: &str) -> Result<()> {
    conn.execute(
        "UPDATE webhook_events SET status = 'pending', attempt_count = 0, next_retry_at = NULL, \
         published_at = NULL, locked_until = NULL, processed_at = NULL, updated_at = ?1 \
         WHERE id = ?2",
        params![now, id],
    )?;
    let log = NewProcessingLog {
        step: step.to_string(),
        status: "success".to_string(),
        duration_ms: 0,
        error_message: None,
        additional_data: None,
    };
    insert_log(conn, id, &log, now)
}

pub fn requeue(conn: &mut Connection, filter: &EventFilter, limit: i64) -> Result<Vec<i64>> {
    let statuses = rules::requeue_statuses(&filter.statuses);
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    let filter = EventFilter {
        statuses,
        ..filter.clone()
    };
    let clause = rows::filter_clause(&filter, true);
    let now = rows::time(rules::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids = {
        let mut params = clause.params;
        params.push(rusqlite::types::Value::Integer(limit.max(0)));
        let mut statement = tx.prepare(&format!(
            "SELECT id FROM webhook_events WHERE {} ORDER BY created_at, id LIMIT ?{}",
            clause.sql,
            params.len()
        ))?;
        statement
            .query_map(params_from_iter(params), |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?
    };
    for id in &ids {
        reset_to_pending(&tx, *id, "requeue", &now)?;
    }
    tx.commit()?;
    Ok(ids)
}

pub fn replay(conn: &mut Connection, id: i64) -> Result<()> {
    let now = rows::time(rules::now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let status: Option<String> = tx
        .query_row(
            "SELECT status FROM webhook_events WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    let status = status.ok_or(StoreError::NotFound(id))?;
    if status == EventStatus::Processing.as_str() {
        return Err(StoreError::Conflict {
            id,
            status: EventStatus::Processing,
            expected: "not processing",
        }
        .into());
    }
    reset_to_pending(&tx, id, "replay", &now)?;
    tx.commit()?;
    Ok(())
}

pub fn event_detail(conn: &mut Connection, id: i64) -> Result<Option<EventDetail>> {
    let tx = conn.transaction()?;
    let event = tx
        .query_row(
            &format!("SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = ?1"),
            [id],
            rows::event_from_row,
        )
        .optional()?;
    let Some(event) = event else {
        return Ok(None);
    };
    let logs = tx
        .prepare(&format!(
            "SELECT {LOG_COLUMNS} FROM webhook_processing_logs \
             WHERE webhook_event_id = ?1 ORDER BY id"
        ))?
        .query_map([id], rows::log_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let payment_events = tx
        .prepare(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment_events WHERE webhook_event_id = ?1 ORDER BY id"
        ))?
        .query_map([id], rows::payment_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.commit()?;
    Ok(Some(EventDetail {
        event,
        logs,
        payment_events,
    }))
}

pub fn list_events(
    conn: &mut Connection,
    filter: &EventFilter,
    offset: i64,
    page_size: i64,
) -> Result<EventPage> {
    let clause = rows::filter_clause(filter, true);
    let tx = conn.transaction()?;
    let total_count = tx.query_row(
        &format!("SELECT COUNT(*) FROM webhook_events WHERE {}", clause.sql),
        params_from_iter(clause.params.iter()),
        |row| row.get(0),
    )?;
    let mut params = clause.params;
    params.push(rusqlite::types::Value::Integer(page_size));
    params.push(rusqlite::types::Value::Integer(offset));
    let events = tx
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE {} \
             ORDER BY created_at DESC, id DESC LIMIT ?{} OFFSET ?{}",
            clause.sql,
            params.len() - 1,
            params.len()
        ))?
        .query_map(params_from_iter(params), rows::event_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.commit()?;
    Ok(EventPage {
        events,
        total_count,
    })
}

/// Counts rows grouped by one column, largest group first.
fn count_by(conn: &Connection, column: &str, clause: &rows::Clause) -> Result<Vec<(String, i64)>> {
    let counts = conn
        .prepare(&format!(
            "SELECT {column}, COUNT(*) FROM webhook_events WHERE {} \
             GROUP BY {column} ORDER BY COUNT(*) DESC, {column}",
            clause.sql
        ))?
        .query_map(params_from_iter(clause.params.iter()), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(counts)
}

pub fn statistics(conn: &mut Connection, filter: &EventFilter) -> Result<Statistics> {
    let clause = rows::filter_clause(filter, false);
    let tx = conn.transaction()?;
    let mut statistics = Statistics::default();
    for (status, count) in count_by(&tx, "status", &clause)? {
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
    statistics.by_provider = count_by(&tx, "provider", &clause)?;
    statistics.by_type = count_by(&tx, "event_type", &clause)?;
    let mut durations = tx
        .prepare(&format!(
            "SELECT created_at, processed_at FROM webhook_events \
             WHERE {} AND status = 'completed' AND processed_at IS NOT NULL",
            clause.sql
        ))?
        .query_map(params_from_iter(clause.params.iter()), |row| {
            let created = rows::get_time(row, 0)?;
            let processed = rows::get_time(row, 1)?;
            Ok(duration_ms(created, processed))
        })?
        .collect::<rusqlite::Result<Vec<f64>>>()?;
    tx.commit()?;
    durations.sort_by(f64::total_cmp);
    statistics.average_processing_ms = rules::mean(&durations);
    statistics.p95_processing_ms = rules::percentile(&durations, 0.95);
    Ok(statistics)
}

fn duration_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let micros = (to - from).num_microseconds().unwrap_or(i64::MAX);
    micros as f64 / 1000.0
}
