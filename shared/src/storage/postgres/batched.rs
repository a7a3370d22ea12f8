//! Claims and completions of many events in one statement or transaction, for the
//! [`GroupCommit`](crate::storage::group_commit::GroupCommit) queues of a consumer.
//!
//! A consumer runs many attempts at once, and each attempt claims its row and later
//! completes it. Run one by one, every claim and every completion is a commit of its own.
//! Here the claims that queued together take one `UPDATE`, and the completions that queued
//! together take one transaction of a few statements, whatever their number. The per-event
//! rules stay those of [`queries::claim`] and [`queries::complete`]: anything the batch
//! cannot decide goes through them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Client, Pool};
use rust_decimal::Decimal;

use super::rows::{self, EVENT_COLUMNS, PAYMENT_COLUMNS};
use super::{pg_error, pool_error, queries};
use crate::model::{NewPaymentEvent, StoredEvent};
use crate::storage::group_commit::{Batch, copy_error};
use crate::storage::limits::{self, truncate_optional};
use crate::storage::{ClaimOutcome, Completion, StoreError, rules};

type Result<T> = std::result::Result<T, StoreError>;

/// Reads of rows by id, batched into one statement.
pub(super) struct LoadBatch {
    pub pool: Pool,
}

#[async_trait]
impl Batch for LoadBatch {
    type Item = i64;
    type Output = Option<StoredEvent>;

    async fn run(&self, ids: Vec<i64>) -> Vec<Result<Option<StoredEvent>>> {
        let loaded = match self.pool.get().await.map_err(pool_error) {
            Ok(client) => load_many(&client, &ids).await,
            Err(error) => Err(error),
        };
        match loaded {
            // A row goes to the last request for its id and copies to the others, so a
            // large payload is not copied for nothing.
            Ok(mut rows) => {
                let mut results: Vec<Result<Option<StoredEvent>>> = Vec::with_capacity(ids.len());
                for (index, id) in ids.iter().enumerate() {
                    let repeated_later = ids[index + 1..].contains(id);
                    let row = if repeated_later {
                        rows.get(id).cloned()
                    } else {
                        rows.remove(id)
                    };
                    results.push(Ok(row));
                }
                results
            }
            Err(error) => ids.iter().map(|_| Err(copy_error(&error))).collect(),
        }
    }
}

async fn load_many(client: &Client, ids: &[i64]) -> Result<HashMap<i64, StoredEvent>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = ANY($1)"
        ))
        .await
        .map_err(pg_error)?;
    let rows = client.query(&statement, &[&ids]).await.map_err(pg_error)?;
    rows.iter()
        .map(|row| rows::event_from_row(row).map(|event| (event.id, event)))
        .collect()
}

/// One call of [`Store::claim`](crate::storage::Store::claim).
pub(super) struct ClaimRequest {
    pub id: i64,
    pub lease: Duration,
    pub respect_retry_time: bool,
}

/// Claims of rows by id, batched.
pub(super) struct ClaimBatch {
    pub pool: Pool,
}

#[async_trait]
impl Batch for ClaimBatch {
    type Item = ClaimRequest;
    type Output = ClaimOutcome;

    async fn run(&self, requests: Vec<ClaimRequest>) -> Vec<Result<ClaimOutcome>> {
        let mut client = match self.pool.get().await.map_err(pool_error) {
            Ok(client) => client,
            Err(error) => return requests.iter().map(|_| Err(copy_error(&error))).collect(),
        };
        if let [request] = requests.as_slice() {
            let outcome = queries::claim(
                &mut client,
                request.id,
                request.lease,
                request.respect_retry_time,
            )
            .await;
            return vec![outcome];
        }
        let mut claimed = match claim_claimable(&client, &requests).await {
            Ok(claimed) => claimed,
            Err(error) => return requests.iter().map(|_| Err(copy_error(&error))).collect(),
        };
        // A request the statement did not claim (a row in another state, locked, missing,
        // or a second request for one id) takes the full path, which reports why.
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in &requests {
            match claimed.remove(&request.id) {
                Some(event) => outcomes.push(Ok(ClaimOutcome::Claimed(event))),
                None => outcomes.push(
                    queries::claim(
                        &mut client,
                        request.id,
                        request.lease,
                        request.respect_retry_time,
                    )
                    .await,
                ),
            }
        }
        outcomes
    }
}

/// Claims every requested row that is claimable and not locked, in one statement, and
/// returns the claimed rows by id. The condition is that of the one-row claim.
async fn claim_claimable(
    client: &Client,
    requests: &[ClaimRequest],
) -> Result<HashMap<i64, StoredEvent>> {
    let now = rules::now();
    let mut seen = HashSet::with_capacity(requests.len());
    let mut ids = Vec::with_capacity(requests.len());
    let mut lease_ends = Vec::with_capacity(requests.len());
    let mut respect = Vec::with_capacity(requests.len());
    for request in requests {
        if seen.insert(request.id) {
            ids.push(request.id);
            lease_ends.push(rules::lease_end(now, request.lease)?);
            respect.push(request.respect_retry_time);
        }
    }
    let statement = client
        .prepare_cached(&format!(
            "UPDATE webhook_events SET status = 'processing', locked_until = claim.claim_until, \
             attempt_count = attempt_count + 1, updated_at = $1 \
             FROM (SELECT e.id AS claim_id, requested.claim_until FROM webhook_events e \
                   JOIN unnest($2::bigint[], $3::timestamptz[], $4::bool[]) \
                        AS requested(requested_id, claim_until, respect) \
                        ON e.id = requested.requested_id \
                   WHERE e.status = 'pending' \
                      OR (e.status = 'processing' AND (e.locked_until IS NULL OR e.locked_until <= $1)) \
                      OR (e.status = 'failed' AND (NOT requested.respect OR e.next_retry_at IS NULL \
                          OR e.next_retry_at <= $1)) \
                   FOR UPDATE OF e SKIP LOCKED) AS claim \
             WHERE id = claim.claim_id \
             RETURNING {EVENT_COLUMNS}"
        ))
        .await
        .map_err(pg_error)?;
    let rows = client
        .query(&statement, &[&now, &ids, &lease_ends, &respect])
        .await
        .map_err(pg_error)?;
    rows.iter()
        .map(|row| rows::event_from_row(row).map(|event| (event.id, event)))
        .collect()
}

/// Completions of rows read or claimed for processing, batched.
pub(super) struct CompletionBatch {
    pub pool: Pool,
}

#[async_trait]
impl Batch for CompletionBatch {
    type Item = (i64, Completion);
    type Output = ();

    async fn run(&self, items: Vec<(i64, Completion)>) -> Vec<Result<()>> {
        let mut client = match self.pool.get().await.map_err(pool_error) {
            Ok(client) => client,
            Err(error) => return items.iter().map(|_| Err(copy_error(&error))).collect(),
        };
        // An item whose values break a limit, or whose id repeats, goes through the
        // one-event path, which reports it exactly as an unbatched call would.
        let mut seen = HashSet::with_capacity(items.len());
        let batchable: Vec<bool> = items
            .iter()
            .map(|(id, completion)| seen.insert(*id) && within_limits(completion))
            .collect();
        let together: Vec<&(i64, Completion)> = items
            .iter()
            .zip(&batchable)
            .filter_map(|(item, &ok)| ok.then_some(item))
            .collect();
        let mut batch_results = if together.len() > 1 {
            match complete_together(&mut client, &together).await {
                Ok(results) => Some(results.into_iter()),
                Err(StoreError::Unavailable(detail)) => {
                    let error = StoreError::Unavailable(detail);
                    return items.iter().map(|_| Err(copy_error(&error))).collect();
                }
                // Any other failure rolled the whole batch back; each event is tried alone.
                Err(_) => None,
            }
        } else {
            None
        };
        let mut results = Vec::with_capacity(items.len());
        for ((id, completion), ok) in items.iter().zip(&batchable) {
            let from_batch = match (&mut batch_results, ok) {
                (Some(batch), true) => batch.next(),
                _ => None,
            };
            match from_batch {
                Some(result) => results.push(result),
                None => results.push(queries::complete(&mut client, *id, completion).await),
            }
        }
        results
    }
}

/// Checks that every log and payment of a completion fits the schema's limits.
fn within_limits(completion: &Completion) -> bool {
    completion
        .logs
        .iter()
        .all(|log| limits::check_log(log).is_ok())
        && completion.payment_events.iter().all(|payment| {
            limits::check_payment(payment).is_ok()
                && payment
                    .amount
                    .as_ref()
                    .is_none_or(|money| i32::try_from(money.exponent).is_ok())
        })
}

/// Completes events with distinct ids in one transaction. Returns one result per item: `Ok`
/// for a row that was in the state the item's attempt names and is now `completed`, and
/// `NotFound`, `Locked` or `Conflict` for the others, which are left untouched.
async fn complete_together(
    client: &mut Client,
    items: &[&(i64, Completion)],
) -> Result<Vec<Result<()>>> {
    let now = rules::now();
    let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
    let tx = client.transaction().await.map_err(pg_error)?;
    // Rows locked by another transaction are skipped instead of waited for, so one locked
    // row cannot hold up the batch, nor the batches queued behind it.
    let locked = tx
        .query(
            &tx.prepare_cached(
                "SELECT id, status, provider, attempt_count FROM webhook_events \
                 WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED",
            )
            .await
            .map_err(pg_error)?,
            &[&ids],
        )
        .await
        .map_err(pg_error)?;
    let mut current: HashMap<i64, (String, String, i32)> = locked
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
        .collect();
    let skipped: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !current.contains_key(id))
        .collect();
    let existing: HashSet<i64> = if skipped.is_empty() {
        HashSet::new()
    } else {
        tx.query(
            &tx.prepare_cached("SELECT id FROM webhook_events WHERE id = ANY($1)")
                .await
                .map_err(pg_error)?,
            &[&skipped],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|row| row.get(0))
        .collect()
    };

    let mut results = Vec::with_capacity(items.len());
    let mut accepted: Vec<(i64, String, &Completion)> = Vec::with_capacity(items.len());
    for (id, completion) in items.iter().map(|item| (item.0, &item.1)) {
        let Some((status, provider, attempt)) = current.remove(&id) else {
            results.push(Err(if existing.contains(&id) {
                StoreError::Locked(id)
            } else {
                StoreError::NotFound(id)
            }));
            continue;
        };
        let status = rows::status_from(&status)?;
        match rules::check_attempt(id, status, attempt, completion.attempt) {
            Ok(()) => {
                results.push(Ok(()));
                accepted.push((id, provider, completion));
            }
            Err(conflict) => results.push(Err(conflict)),
        }
    }
    if accepted.is_empty() {
        tx.commit().await.map_err(pg_error)?;
        return Ok(results);
    }

    let accepted_ids: Vec<i64> = accepted.iter().map(|(id, _, _)| *id).collect();
    let stored = stored_payments(&tx, &accepted_ids).await?;
    insert_logs(&tx, &accepted, now).await?;
    insert_payments(&tx, &accepted, stored, now).await?;
    let payloads: Vec<Option<&str>> = accepted
        .iter()
        .map(|(_, _, completion)| completion.processed_payload.as_deref())
        .collect();
    let attempts: Vec<i32> = accepted
        .iter()
        .map(|(_, _, completion)| completion.attempt.number())
        .collect();
    tx.execute(
        &tx.prepare_cached(
            "UPDATE webhook_events SET status = 'completed', processed_payload = done.payload, \
             processed_at = $1, updated_at = $1, locked_until = NULL, next_retry_at = NULL, \
             error_message = NULL, attempt_count = done.attempt \
             FROM unnest($2::bigint[], $3::text[], $4::int4[]) AS done(done_id, payload, attempt) \
             WHERE id = done.done_id",
        )
        .await
        .map_err(pg_error)?,
        &[&now, &accepted_ids, &payloads, &attempts],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(results)
}

/// Loads the payment events already stored for the given webhook events, by event.
async fn stored_payments(
    tx: &deadpool_postgres::Transaction<'_>,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<NewPaymentEvent>>> {
    let rows = tx
        .query(
            &tx.prepare_cached(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payment_events WHERE webhook_event_id = ANY($1) \
                 ORDER BY id"
            ))
            .await
            .map_err(pg_error)?,
            &[&ids],
        )
        .await
        .map_err(pg_error)?;
    let mut stored: HashMap<i64, Vec<NewPaymentEvent>> = HashMap::new();
    for row in &rows {
        let payment = rows::payment_from_row(row)?;
        stored
            .entry(payment.webhook_event_id)
            .or_default()
            .push(payment.payment);
    }
    Ok(stored)
}

async fn insert_logs(
    tx: &deadpool_postgres::Transaction<'_>,
    accepted: &[(i64, String, &Completion)],
    now: DateTime<Utc>,
) -> Result<()> {
    let logs: Vec<(i64, &crate::model::NewProcessingLog)> = accepted
        .iter()
        .flat_map(|(id, _, completion)| completion.logs.iter().map(move |log| (*id, log)))
        .collect();
    if logs.is_empty() {
        return Ok(());
    }

    let event_ids: Vec<i64> = logs.iter().map(|(id, _)| *id).collect();
    let steps: Vec<&str> = logs.iter().map(|(_, log)| log.step.as_str()).collect();
    let statuses: Vec<&str> = logs.iter().map(|(_, log)| log.status.as_str()).collect();
    let durations: Vec<i64> = logs.iter().map(|(_, log)| log.duration_ms).collect();
    let errors: Vec<Option<String>> = logs
        .iter()
        .map(|(_, log)| truncate_optional(log.error_message.as_deref(), limits::ERROR_MESSAGE))
        .collect();
    let data: Vec<Option<String>> = logs
        .iter()
        .map(|(_, log)| truncate_optional(log.additional_data.as_deref(), limits::ADDITIONAL_DATA))
        .collect();

    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO webhook_processing_logs (webhook_event_id, processing_step, status, \
             duration_ms, error_message, additional_data, processed_at) \
             SELECT event_id, step, status, duration_ms, error_message, additional_data, $7 \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
                         $6::text[]) WITH ORDINALITY \
                  AS log(event_id, step, status, duration_ms, error_message, additional_data, \
                         position) \
             ORDER BY position",
        )
        .await
        .map_err(pg_error)?,
        &[
            &event_ids, &steps, &statuses, &durations, &errors, &data, &now,
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

/// Inserts the payment events that the replay rule keeps, for every accepted completion.
async fn insert_payments(
    tx: &deadpool_postgres::Transaction<'_>,
    accepted: &[(i64, String, &Completion)],
    mut stored: HashMap<i64, Vec<NewPaymentEvent>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut payments: Vec<(i64, &str, &NewPaymentEvent)> = Vec::new();
    for (id, provider, completion) in accepted {
        let already = stored.remove(id).unwrap_or_default();
        for payment in rules::payments_to_insert(already, &completion.payment_events) {
            payments.push((*id, provider.as_str(), payment));
        }
    }
    if payments.is_empty() {
        return Ok(());
    }

    let column = |f: fn(&NewPaymentEvent) -> Option<&str>| -> Vec<Option<&str>> {
        payments.iter().map(|(_, _, payment)| f(payment)).collect()
    };
    let event_ids: Vec<i64> = payments.iter().map(|(id, _, _)| *id).collect();
    let providers: Vec<&str> = payments.iter().map(|(_, provider, _)| *provider).collect();
    let payment_ids = column(|p| Some(p.payment_id.as_str()));
    let event_types = column(|p| Some(p.event_type.as_str()));
    let statuses = column(|p| Some(p.status.as_str()));
    let customers = column(|p| p.customer_id.as_deref());
    let orders = column(|p| p.order_id.as_deref());
    let transactions = column(|p| p.transaction_id.as_deref());
    let metadata = column(|p| p.metadata.as_deref());
    let raw_statuses = column(|p| p.status_raw.as_deref());
    let amounts: Vec<Option<Decimal>> = payments
        .iter()
        .map(|(_, _, p)| p.amount.as_ref().map(|money| money.decimal()))
        .collect();
    let currencies: Vec<Option<&str>> = payments
        .iter()
        .map(|(_, _, p)| p.amount.as_ref().map(|money| money.currency.as_str()))
        .collect();
    let minors: Vec<Option<i64>> = payments
        .iter()
        .map(|(_, _, p)| p.amount.as_ref().map(|money| money.minor))
        .collect();
    // The exponents were checked to fit by `within_limits`.
    let exponents: Vec<Option<i32>> = payments
        .iter()
        .map(|(_, _, p)| {
            p.amount
                .as_ref()
                .and_then(|money| i32::try_from(money.exponent).ok())
        })
        .collect();
    let provider_times: Vec<Option<DateTime<Utc>>> = payments
        .iter()
        .map(|(_, _, p)| p.provider_created_at)
        .collect();

    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO payment_events (webhook_event_id, payment_id, provider, event_type, \
             status, amount, currency, customer_id, order_id, transaction_id, metadata, \
             created_at, updated_at, amount_minor, amount_exponent, status_raw, \
             provider_created_at) \
             SELECT event_id, payment_id, provider, event_type, status, amount, currency, \
                    customer_id, order_id, transaction_id, metadata, $16, $16, amount_minor, \
                    amount_exponent, status_raw, provider_created_at \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::numeric[], $7::text[], $8::text[], $9::text[], $10::text[], \
                         $11::text[], $12::int8[], $13::int4[], $14::text[], \
                         $15::timestamptz[]) WITH ORDINALITY \
                  AS payment(event_id, payment_id, provider, event_type, status, amount, \
                             currency, customer_id, order_id, transaction_id, metadata, \
                             amount_minor, amount_exponent, status_raw, provider_created_at, \
                             position) \
             ORDER BY position",
        )
        .await
        .map_err(pg_error)?,
        &[
            &event_ids,
            &payment_ids,
            &providers,
            &event_types,
            &statuses,
            &amounts,
            &currencies,
            &customers,
            &orders,
            &transactions,
            &metadata,
            &minors,
            &exponents,
            &raw_statuses,
            &provider_times,
            &now,
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}
