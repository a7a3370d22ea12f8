//! The SQL of each [`Store`](crate::storage::Store) operation, run on one pooled client.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Client, GenericClient, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::error::SqlState;

use super::pg_error;
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

type Result<T> = std::result::Result<T, StoreError>;

pub async fn insert_event(client: &Client, event: &NewEvent) -> Result<InsertOutcome> {
    let now = rules::now();
    let source_ip = truncate_optional(event.source_ip.as_deref(), limits::SOURCE_IP);
    let user_agent = truncate_optional(event.user_agent.as_deref(), limits::USER_AGENT);
    let inserted = client
        .query_opt(
            &client.prepare_cached("INSERT INTO webhook_events (event_id, provider, event_type, status, raw_payload, \
             signature, headers, source_ip, user_agent, attempt_count, max_attempts, \
             created_at, updated_at, signature_verified, signature_key_id, provider_created_at, \
             published_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, 0, $9, $10, $10, $11, $12, $13, \
             CASE WHEN $14::boolean THEN $10::timestamptz END) \
             ON CONFLICT (provider, event_id) DO NOTHING RETURNING id").await.map_err(pg_error)?,
            &[
                &event.event_id,
                &event.provider,
                &event.event_type,
                &event.raw_payload,
                &event.signature,
                &event.headers,
                &source_ip,
                &user_agent,
                &event.max_attempts,
                &now,
                &event.signature_verified,
                &event.signature_key_id,
                &event.provider_created_at,
                &event.published,
            ],
        )
        .await
        .map_err(pg_error)?;
    if let Some(row) = inserted {
        return Ok(InsertOutcome::Inserted(row.get(0)));
    }
    // ON CONFLICT waited for the other insert to commit, so this new statement reads its row.
    let existing = client
        .query_one(
            &client
                .prepare_cached(
                    "SELECT id FROM webhook_events WHERE provider = $1 AND event_id = $2",
                )
                .await
                .map_err(pg_error)?,
            &[&event.provider, &event.event_id],
        )
        .await
        .map_err(pg_error)?;
    Ok(InsertOutcome::Duplicate(existing.get(0)))
}

/// Inserts events with distinct (provider, event id) pairs in one statement, which commits
/// them together, and returns one outcome per event in order. A pair already stored comes
/// back as `Duplicate` with the stored row's id.
pub async fn insert_events(client: &Client, events: &[NewEvent]) -> Result<Vec<InsertOutcome>> {
    let now = rules::now();
    let source_ips: Vec<Option<String>> = events
        .iter()
        .map(|event| truncate_optional(event.source_ip.as_deref(), limits::SOURCE_IP))
        .collect();
    let user_agents: Vec<Option<String>> = events
        .iter()
        .map(|event| truncate_optional(event.user_agent.as_deref(), limits::USER_AGENT))
        .collect();
    let event_ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let providers: Vec<&str> = events.iter().map(|e| e.provider.as_str()).collect();
    let event_types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.raw_payload.as_str()).collect();
    let signatures: Vec<Option<&str>> = events.iter().map(|e| e.signature.as_deref()).collect();
    let headers: Vec<&str> = events.iter().map(|e| e.headers.as_str()).collect();
    let max_attempts: Vec<i32> = events.iter().map(|e| e.max_attempts).collect();
    let verified: Vec<bool> = events.iter().map(|e| e.signature_verified).collect();
    let key_ids: Vec<Option<&str>> = events
        .iter()
        .map(|e| e.signature_key_id.as_deref())
        .collect();
    let provider_times: Vec<Option<DateTime<Utc>>> =
        events.iter().map(|e| e.provider_created_at).collect();
    let published: Vec<bool> = events.iter().map(|e| e.published).collect();

    let statement = client
        .prepare_cached(
            "INSERT INTO webhook_events (event_id, provider, event_type, status, raw_payload, \
             signature, headers, source_ip, user_agent, attempt_count, max_attempts, \
             created_at, updated_at, signature_verified, signature_key_id, provider_created_at, \
             published_at) \
             SELECT event_id, provider, event_type, 'pending', raw_payload, signature, \
                    headers, source_ip, user_agent, 0, max_attempts, $14, $14, \
                    signature_verified, signature_key_id, provider_created_at, \
                    CASE WHEN published THEN $14::timestamptz END \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::text[], $9::int4[], $10::bool[], \
                         $11::text[], $12::timestamptz[], $13::bool[]) \
                  AS batch(event_id, provider, event_type, raw_payload, signature, headers, \
                           source_ip, user_agent, max_attempts, signature_verified, \
                           signature_key_id, provider_created_at, published) \
             ON CONFLICT (provider, event_id) DO NOTHING RETURNING id, provider, event_id",
        )
        .await
        .map_err(pg_error)?;
    let inserted = client
        .query(
            &statement,
            &[
                &event_ids,
                &providers,
                &event_types,
                &payloads,
                &signatures,
                &headers,
                &source_ips,
                &user_agents,
                &max_attempts,
                &verified,
                &key_ids,
                &provider_times,
                &published,
                &now,
            ],
        )
        .await
        .map_err(pg_error)?;
    let mut new_ids: HashMap<(String, String), i64> = inserted
        .iter()
        .map(|row| ((row.get(1), row.get(2)), row.get(0)))
        .collect();
    let mut outcomes: Vec<Option<InsertOutcome>> = events
        .iter()
        .map(|e| {
            new_ids
                .remove(&(e.provider.clone(), e.event_id.clone()))
                .map(InsertOutcome::Inserted)
        })
        .collect();

    let missing: Vec<usize> = (0..events.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    if !missing.is_empty() {
        // ON CONFLICT waited for the conflicting inserts to commit, so this new statement
        // reads their rows.
        let missing_providers: Vec<&str> = missing.iter().map(|&i| providers[i]).collect();
        let missing_ids: Vec<&str> = missing.iter().map(|&i| event_ids[i]).collect();
        let statement = client
            .prepare_cached(
                "SELECT w.id, w.provider, w.event_id FROM webhook_events w \
                 JOIN unnest($1::text[], $2::text[]) AS wanted(provider, event_id) \
                   ON w.provider = wanted.provider AND w.event_id = wanted.event_id",
            )
            .await
            .map_err(pg_error)?;
        let existing = client
            .query(&statement, &[&missing_providers, &missing_ids])
            .await
            .map_err(pg_error)?;
        let existing: HashMap<(String, String), i64> = existing
            .iter()
            .map(|row| ((row.get(1), row.get(2)), row.get(0)))
            .collect();
        for i in missing {
            let key = (events[i].provider.clone(), events[i].event_id.clone());
            outcomes[i] = existing.get(&key).copied().map(InsertOutcome::Duplicate);
        }
    }
    outcomes
        .into_iter()
        .zip(events)
        .map(|(outcome, event)| {
            outcome.ok_or_else(|| {
                StoreError::Backend(format!(
                    "event {} of {} was neither inserted nor found",
                    event.event_id, event.provider
                ))
            })
        })
        .collect()
}

pub async fn mark_unpublished(client: &Client, id: i64) -> Result<()> {
    let changed = client
        .execute(
            &client
                .prepare_cached("UPDATE webhook_events SET published_at = NULL WHERE id = $1")
                .await
                .map_err(pg_error)?,
            &[&id],
        )
        .await
        .map_err(pg_error)?;
    if changed == 0 {
        return Err(StoreError::NotFound(id));
    }
    Ok(())
}

pub async fn claim_for_republish(
    client: &Client,
    unpublished_grace: std::time::Duration,
    stale_after: std::time::Duration,
    limit: i64,
) -> Result<Vec<RepublishCandidate>> {
    let now = rules::now();
    let grace_cutoff = rules::before(now, unpublished_grace)?;
    let stale_cutoff = rules::before(now, stale_after)?;
    let rows = client
        .query(
            "UPDATE webhook_events SET published_at = $1 \
             WHERE id IN (SELECT id FROM webhook_events \
                WHERE (status = 'pending' AND published_at IS NULL AND created_at < $2) \
                   OR (published_at IS NOT NULL AND published_at < $3 AND ( \
                          status = 'pending' \
                       OR (status = 'failed' AND next_retry_at < $3) \
                       OR (status = 'processing' AND locked_until < $1))) \
                ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, provider, event_type, attempt_count",
            &[&now, &grace_cutoff, &stale_cutoff, &limit.max(0)],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|row| RepublishCandidate {
            id: row.get(0),
            provider: row.get(1),
            event_type: row.get(2),
            attempt_count: row.get(3),
        })
        .collect())
}

pub async fn mark_published(client: &Client, id: i64) -> Result<()> {
    let changed = client
        .execute(
            "UPDATE webhook_events SET published_at = $1 WHERE id = $2",
            &[&rules::now(), &id],
        )
        .await
        .map_err(pg_error)?;
    if changed == 0 {
        return Err(StoreError::NotFound(id));
    }
    Ok(())
}

pub async fn unpublished(
    client: &Client,
    older_than: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    let rows = client
        .query(
            "SELECT id FROM webhook_events \
             WHERE status = 'pending' AND published_at IS NULL AND created_at < $1 \
             ORDER BY created_at, id LIMIT $2",
            &[&older_than, &limit.max(0)],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

pub async fn claim(
    client: &mut Client,
    id: i64,
    lease: Duration,
    respect_retry_time: bool,
) -> Result<ClaimOutcome> {
    let now = rules::now();
    let locked_until = rules::lease_end(now, lease)?;
    // The common case, a claimable row, takes one statement. Its condition is the one
    // `rules::claim_refusal` checks below; a row it skips gets the full path, which
    // reports why. Neither path waits for a row lock held elsewhere (a long transaction,
    // another consumer's commit): such a row is reported `Locked` and retried later, so a
    // claim never holds a delivery unacked behind a lock.
    let statement = client
        .prepare_cached(&format!(
            "UPDATE webhook_events SET status = 'processing', locked_until = $1, \
             attempt_count = attempt_count + 1, updated_at = $2 \
             WHERE id = (SELECT id FROM webhook_events WHERE id = $3 AND (status = 'pending' \
                OR (status = 'processing' AND (locked_until IS NULL OR locked_until <= $2)) \
                OR (status = 'failed' AND (NOT $4 OR next_retry_at IS NULL OR next_retry_at <= $2))) \
                FOR UPDATE SKIP LOCKED) \
             RETURNING {EVENT_COLUMNS}"
        ))
        .await
        .map_err(pg_error)?;
    let claimed = client
        .query_opt(&statement, &[&locked_until, &now, &id, &respect_retry_time])
        .await
        .map_err(pg_error)?;
    if let Some(row) = claimed {
        return Ok(ClaimOutcome::Claimed(rows::event_from_row(&row)?));
    }

    let tx = client.transaction().await.map_err(pg_error)?;
    let current = tx
        .query_opt(
            &tx.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = $1 FOR UPDATE NOWAIT"
            ))
            .await
            .map_err(pg_error)?,
            &[&id],
        )
        .await;
    let current = match current {
        Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            return Ok(ClaimOutcome::Locked);
        }
        other => other.map_err(pg_error)?,
    };
    let Some(current) = current else {
        return Ok(ClaimOutcome::NotFound);
    };
    let current = rows::event_from_row(&current)?;
    if let Some(refusal) = rules::claim_refusal(
        current.status,
        current.locked_until,
        current.next_retry_at,
        now,
        respect_retry_time,
    ) {
        return Ok(refusal);
    }
    let row = tx
        .query_one(
            &tx.prepare_cached(&format!(
                "UPDATE webhook_events SET status = 'processing', locked_until = $1, \
                 attempt_count = attempt_count + 1, updated_at = $2 WHERE id = $3 \
                 RETURNING {EVENT_COLUMNS}"
            ))
            .await
            .map_err(pg_error)?,
            &[&locked_until, &now, &id],
        )
        .await
        .map_err(pg_error)?;
    let claimed = rows::event_from_row(&row)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(ClaimOutcome::Claimed(claimed))
}

pub async fn claim_due(client: &Client, limit: i64, lease: Duration) -> Result<Vec<StoredEvent>> {
    let now = rules::now();
    let locked_until = rules::lease_end(now, lease)?;
    // SKIP LOCKED passes over rows that another caller is claiming. PostgreSQL re-checks
    // the WHERE clause on a locked row whose state changed after this statement began.
    let rows = client
        .query(
            &format!(
                "UPDATE webhook_events SET status = 'processing', locked_until = $1, \
                 attempt_count = attempt_count + 1, updated_at = $2 \
                 WHERE id IN (SELECT id FROM webhook_events \
                     WHERE status = 'pending' \
                        OR (status = 'failed' AND (next_retry_at IS NULL OR next_retry_at <= $2)) \
                        OR (status = 'processing' AND (locked_until IS NULL OR locked_until <= $2)) \
                     ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING {EVENT_COLUMNS}"
            ),
            &[&locked_until, &now, &limit.max(0)],
        )
        .await
        .map_err(pg_error)?;
    let mut claimed = rows
        .iter()
        .map(rows::event_from_row)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|event| (event.created_at, event.id));
    Ok(claimed)
}

/// Locks the row and returns its provider. Fails with `NotFound`, or with `Conflict` unless
/// the row is in the state `attempt` names.
///
/// The lock does not wait: a row locked by another transaction (a long transaction, a stuck
/// session) fails with `Locked` at once, so no worker waits behind it.
async fn lock_processing_row(tx: &Transaction<'_>, id: i64, attempt: Attempt) -> Result<String> {
    let statement = tx
        .prepare_cached(
            "SELECT status, provider, attempt_count FROM webhook_events WHERE id = $1 \
             FOR UPDATE NOWAIT",
        )
        .await
        .map_err(pg_error)?;
    let row = match tx.query_opt(&statement, &[&id]).await {
        Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            return Err(StoreError::Locked(id));
        }
        other => other.map_err(pg_error)?,
    }
    .ok_or(StoreError::NotFound(id))?;
    let status = rows::status_from(row.get(0))?;
    rules::check_attempt(id, status, row.get(2), attempt)?;
    Ok(row.get(1))
}

async fn insert_log(
    tx: &Transaction<'_>,
    id: i64,
    log: &NewProcessingLog,
    now: DateTime<Utc>,
) -> Result<()> {
    limits::check_log(log)?;
    let error_message = truncate_optional(log.error_message.as_deref(), limits::ERROR_MESSAGE);
    let additional_data =
        truncate_optional(log.additional_data.as_deref(), limits::ADDITIONAL_DATA);
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO webhook_processing_logs (webhook_event_id, processing_step, status, \
         duration_ms, error_message, additional_data, processed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await
        .map_err(pg_error)?,
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
    .await
    .map_err(pg_error)?;
    Ok(())
}

async fn insert_payment(
    tx: &Transaction<'_>,
    id: i64,
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
    tx
        .execute(
            &tx.prepare_cached("INSERT INTO payment_events (webhook_event_id, payment_id, provider, event_type, status, \
         amount, currency, customer_id, order_id, transaction_id, metadata, created_at, \
         updated_at, amount_minor, amount_exponent, status_raw, provider_created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16)").await.map_err(pg_error)?,
            &[
            &id,
            &payment.payment_id,
            &provider,
            &payment.event_type,
            &payment.status,
            &amount.map(|money| money.decimal()),
            &amount.map(|money| money.currency.as_str().to_string()),
            &payment.customer_id,
            &payment.order_id,
            &payment.transaction_id,
            &payment.metadata,
            &now,
            &amount.map(|money| money.minor),
            &exponent,
            &payment.status_raw,
            &payment.provider_created_at,
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

/// Loads the payment events already stored for a webhook event, for the replay rule in
/// [`rules::payments_to_insert`].
async fn stored_payments(tx: &Transaction<'_>, id: i64) -> Result<Vec<NewPaymentEvent>> {
    tx.query(
        &tx.prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment_events WHERE webhook_event_id = $1 ORDER BY id"
        ))
        .await
        .map_err(pg_error)?,
        &[&id],
    )
    .await
    .map_err(pg_error)?
    .iter()
    .map(|row| rows::payment_from_row(row).map(|stored| stored.payment))
    .collect()
}

pub async fn complete(client: &mut Client, id: i64, completion: &Completion) -> Result<()> {
    let now = rules::now();
    let tx = client.transaction().await.map_err(pg_error)?;
    let provider = lock_processing_row(&tx, id, completion.attempt).await?;
    // Each row is checked just before its insert; any error drops `tx`, which rolls back
    // the rows already written.
    for log in &completion.logs {
        insert_log(&tx, id, log, now).await?;
    }
    let stored = stored_payments(&tx, id).await?;
    for payment in rules::payments_to_insert(stored, &completion.payment_events) {
        insert_payment(&tx, id, &provider, payment, now).await?;
    }
    tx.execute(
        &tx.prepare_cached(
            "UPDATE webhook_events SET status = 'completed', processed_payload = $1, \
         processed_at = $2, updated_at = $2, locked_until = NULL, next_retry_at = NULL, \
         error_message = NULL, attempt_count = $4 WHERE id = $3",
        )
        .await
        .map_err(pg_error)?,
        &[
            &completion.processed_payload,
            &now,
            &id,
            &completion.attempt.number(),
        ],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}

pub async fn fail(client: &mut Client, id: i64, failure: &Failure) -> Result<()> {
    let now = rules::now();
    let tx = client.transaction().await.map_err(pg_error)?;
    lock_processing_row(&tx, id, failure.attempt).await?;
    for log in &failure.logs {
        insert_log(&tx, id, log, now).await?;
    }
    let status = match failure.next_retry_at {
        Some(_) => EventStatus::Failed,
        None => EventStatus::Dead,
    };
    let error_message = limits::truncate(&failure.error_message, limits::ERROR_MESSAGE);
    tx.execute(
        "UPDATE webhook_events SET status = $1, error_message = $2, next_retry_at = $3, \
         updated_at = $4, locked_until = NULL, attempt_count = $6 WHERE id = $5",
        &[
            &status.as_str(),
            &error_message,
            &failure.next_retry_at,
            &now,
            &id,
            &failure.attempt.number(),
        ],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}

/// Resets the rows to `pending` and logs `step` for each.
async fn reset_to_pending(tx: &Transaction<'_>, ids: &[i64], step: &str) -> Result<()> {
    let now = rules::now();
    tx.execute(
        "UPDATE webhook_events SET status = 'pending', attempt_count = 0, next_retry_at = NULL, \
         published_at = NULL, locked_until = NULL, processed_at = NULL, updated_at = $1 \
         WHERE id = ANY($2)",
        &[&now, &ids],
    )
    .await
    .map_err(pg_error)?;
    tx.execute(
        "INSERT INTO webhook_processing_logs (webhook_event_id, processing_step, status, \
         duration_ms, processed_at) \
         SELECT event_id, $2, 'success', 0, $3 FROM unnest($1::bigint[]) AS event_id",
        &[&ids, &step, &now],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

pub async fn requeue(client: &mut Client, filter: &EventFilter, limit: i64) -> Result<Vec<i64>> {
    let statuses = rules::requeue_statuses(&filter.statuses);
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    let filter = EventFilter {
        statuses,
        ..filter.clone()
    };
    let mut clause = rows::filter_clause(&filter, true);
    let limit_mark = clause.push(Box::new(limit.max(0)));
    let tx = client.transaction().await.map_err(pg_error)?;
    let rows = tx
        .query(
            &format!(
                "SELECT id FROM webhook_events WHERE {} ORDER BY created_at, id LIMIT {limit_mark} \
                 FOR UPDATE SKIP LOCKED",
                clause.sql
            ),
            &clause.refs(),
        )
        .await
        .map_err(pg_error)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
    if !ids.is_empty() {
        reset_to_pending(&tx, &ids, "requeue").await?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(ids)
}

pub async fn replay(client: &mut Client, id: i64) -> Result<()> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let row = tx
        .query_opt(
            "SELECT status FROM webhook_events WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(pg_error)?
        .ok_or(StoreError::NotFound(id))?;
    let status = rows::status_from(row.get(0))?;
    if status == EventStatus::Processing {
        return Err(StoreError::Conflict {
            id,
            status,
            expected: "not processing",
        });
    }
    reset_to_pending(&tx, &[id], "replay").await?;
    tx.commit().await.map_err(pg_error)
}

/// Starts a read-only transaction that reads one snapshot for all its statements.
async fn snapshot(client: &mut Client) -> Result<Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_error)
}

pub async fn event_detail(client: &mut Client, id: i64) -> Result<Option<EventDetail>> {
    let tx = snapshot(client).await?;
    let Some(row) = tx
        .query_opt(
            &format!("SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg_error)?
    else {
        return Ok(None);
    };
    let event = rows::event_from_row(&row)?;
    let logs = tx
        .query(
            &format!(
                "SELECT {LOG_COLUMNS} FROM webhook_processing_logs \
                 WHERE webhook_event_id = $1 ORDER BY id"
            ),
            &[&id],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(rows::log_from_row)
        .collect::<Result<Vec<_>>>()?;
    let payment_events = tx
        .query(
            &format!(
                "SELECT {PAYMENT_COLUMNS} FROM payment_events \
                 WHERE webhook_event_id = $1 ORDER BY id"
            ),
            &[&id],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(rows::payment_from_row)
        .collect::<Result<Vec<_>>>()?;
    tx.commit().await.map_err(pg_error)?;
    Ok(Some(EventDetail {
        event,
        logs,
        payment_events,
    }))
}

pub async fn list_events(
    client: &mut Client,
    filter: &EventFilter,
    offset: i64,
    page_size: i64,
) -> Result<EventPage> {
    let mut clause = rows::filter_clause(filter, true);
    let tx = snapshot(client).await?;
    let total_count: i64 = tx
        .query_one(
            &format!("SELECT COUNT(*) FROM webhook_events WHERE {}", clause.sql),
            &clause.refs(),
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let limit_mark = clause.push(Box::new(page_size));
    let offset_mark = clause.push(Box::new(offset));
    let events = tx
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE {} \
                 ORDER BY created_at DESC, id DESC LIMIT {limit_mark} OFFSET {offset_mark}",
                clause.sql
            ),
            &clause.refs(),
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(rows::event_from_row)
        .collect::<Result<Vec<_>>>()?;
    tx.commit().await.map_err(pg_error)?;
    Ok(EventPage {
        events,
        total_count,
    })
}

/// Counts rows grouped by one column, largest group first.
async fn count_by(
    tx: &Transaction<'_>,
    column: &str,
    clause: &rows::Clause,
) -> Result<Vec<(String, i64)>> {
    let rows = tx
        .query(
            &format!(
                "SELECT {column}, COUNT(*) FROM webhook_events WHERE {} \
                 GROUP BY {column} ORDER BY COUNT(*) DESC, {column}",
                clause.sql
            ),
            &clause.refs(),
        )
        .await
        .map_err(pg_error)?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

pub async fn statistics(client: &mut Client, filter: &EventFilter) -> Result<Statistics> {
    let clause = rows::filter_clause(filter, false);
    let tx = snapshot(client).await?;
    let mut statistics = Statistics::default();
    for (status, count) in count_by(&tx, "status", &clause).await? {
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
    statistics.by_provider = count_by(&tx, "provider", &clause).await?;
    statistics.by_type = count_by(&tx, "event_type", &clause).await?;
    // Same definitions as the SQLite backend: mean, and percentile_cont(0.95) interpolation.
    let row = tx
        .query_one(
            &format!(
                "SELECT AVG(ms)::float8, \
                 (PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY ms))::float8 \
                 FROM (SELECT (EXTRACT(EPOCH FROM processed_at - created_at) * 1000)::float8 AS ms \
                       FROM webhook_events WHERE {} AND status = 'completed' \
                       AND processed_at IS NOT NULL) AS durations",
                clause.sql
            ),
            &clause.refs(),
        )
        .await
        .map_err(pg_error)?;
    statistics.average_processing_ms = row.get(0);
    statistics.p95_processing_ms = row.get(1);
    tx.commit().await.map_err(pg_error)?;
    Ok(statistics)
}
