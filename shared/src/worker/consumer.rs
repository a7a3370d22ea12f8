//! The RabbitMQ worker: reads or claims the row a delivery names, processes it under a time
//! limit and settles the message according to the result.
//!
//! A first delivery of a first attempt (attempt 0, not redelivered by the broker) whose row
//! is `pending` is processed without a claim. The row is read and the handler runs. Then one
//! transaction writes the result and the attempt count, but only if the row is still
//! `pending` at the count that was read. That is one commit per event. Two workers racing on one
//! event both run the handler, and the second write is refused with `Conflict`. Every other
//! delivery claims the row first, so the attempt is counted before the handler runs: a
//! handler that brings the process down is counted from its first redelivery on, and a
//! poison event still reaches the dead-letter queue.
//!
//! The attempt count lives in the database row. A failed attempt n goes to delay tier n-1,
//! whose delay is also the row's `next_retry_at` (the processor's retry policy uses the same
//! tiers). The queue layer publishes a retry or dead letter, waits for its confirm, and only
//! then acks the delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::process::{ProcessOutcome, Processor};
use crate::model::EventStatus;
use crate::model::StoredEvent;
use crate::queue::Envelope;
use crate::queue::rabbitmq::{Delivery, Outcome, RabbitConsumer, with_attempt};
use crate::storage::{Attempt, ClaimOutcome, StoreError};
use crate::telemetry::log_limiter::LogLimiter;
use crate::telemetry::spans;

/// Index of the shortest delay tier, used when a delivery cannot be handled yet.
const FIRST_TIER: usize = 0;

/// Limits of one consumer process.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// How long a claim lasts before another consumer may take the row over.
    pub lease: Duration,
    /// Time one processing attempt may take, handler and database writes included.
    pub handler_timeout: Duration,
    /// Deliveries processed at the same time.
    pub concurrency: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            lease: Duration::from_secs(60),
            handler_timeout: Duration::from_secs(30),
            concurrency: 32,
        }
    }
}

/// Turns deliveries from the work queue into processing attempts.
pub struct EventConsumer {
    processor: Arc<Processor>,
    config: ConsumerConfig,
    permits: Arc<Semaphore>,
    /// Whether the last database call failed as unavailable, so an outage is logged once.
    store_down: AtomicBool,
    store_log: LogLimiter,
}

impl EventConsumer {
    /// Creates a consumer that runs at most `config.concurrency` attempts at once.
    pub fn new(processor: Arc<Processor>, config: ConsumerConfig) -> Self {
        if config.lease <= config.handler_timeout {
            tracing::warn!(
                lease = ?config.lease,
                handler_timeout = ?config.handler_timeout,
                "the lease is not longer than the handler timeout, so another consumer may take over an event that is still being processed"
            );
        }
        EventConsumer {
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            processor,
            config,
            store_down: AtomicBool::new(false),
            store_log: LogLimiter::new(Duration::from_secs(60)),
        }
    }

    /// Consumes the work queue until `shutdown` is cancelled, then lets running attempts
    /// finish and settle their messages.
    pub async fn run(self: Arc<Self>, consumer: &RabbitConsumer, shutdown: CancellationToken) {
        let handler = move |delivery: Delivery| {
            let this = Arc::clone(&self);
            async move { this.handle(delivery).await }
        };
        consumer.run(handler, shutdown).await;
    }

    /// Decides how to settle one delivery, processing its event when this consumer can claim
    /// it. The work runs in a `webhook.process` span that continues the trace of the ingest
    /// request named by the envelope's `traceparent`.
    pub async fn handle(&self, delivery: Delivery) -> Outcome {
        let span = spans::process_span(&delivery.envelope);
        self.handle_delivery(delivery).instrument(span).await
    }

    async fn handle_delivery(&self, delivery: Delivery) -> Outcome {
        // The semaphore is never closed, so acquiring only waits.
        let Ok(_permit) = self.permits.acquire().await else {
            spans::record_outcome("requeued");
            return Outcome::Requeue;
        };
        let envelope = delivery.envelope;
        let Envelope::V1 { id, attempt, .. } = &envelope;
        let id = *id;
        if *attempt == 0 && !delivery.redelivered {
            let read = self.processor.store.load(id);
            let loaded = match tokio::time::timeout(self.config.handler_timeout, read).await {
                Ok(loaded) => loaded,
                Err(_) => {
                    spans::record_outcome("read_timed_out");
                    tracing::warn!(
                        id,
                        timeout = ?self.config.handler_timeout,
                        "reading the event timed out; retrying after the first tier"
                    );
                    return self.retry(envelope, FIRST_TIER);
                }
            };
            // A `pending` row is processed without a claim, and a finished or missing row
            // settles the delivery as a claim of it would. Any other row is claimed below.
            let found = match loaded {
                Ok(None) => Some(Ok(ClaimOutcome::NotFound)),
                Ok(Some(event)) => match event.status {
                    EventStatus::Pending => Some(Ok(ClaimOutcome::Claimed(event))),
                    EventStatus::Completed => Some(Ok(ClaimOutcome::AlreadyCompleted)),
                    EventStatus::Dead => Some(Ok(ClaimOutcome::Dead)),
                    EventStatus::Processing | EventStatus::Failed => None,
                },
                Err(error) => Some(Err(error)),
            };
            if let Some(found) = found {
                return match self.event_to_process(id, found, &envelope) {
                    Ok(mut event) => {
                        let fence = Attempt::Unclaimed(event.attempt_count);
                        event.attempt_count = fence.number();
                        self.process(envelope, event, fence).await
                    }
                    Err(outcome) => outcome,
                };
            }
        }

        // The claim is time-boxed like the handler: a row lock held elsewhere (a long
        // transaction, a stuck session) must not keep the delivery unacked until the broker's
        // consumer timeout closes the channel. A claim that completes after the timeout only
        // leases the row, and the retried message takes it once the lease expires.
        let claim = self.processor.store.claim(id, self.config.lease, false);
        let claimed = match tokio::time::timeout(self.config.handler_timeout, claim).await {
            Ok(claimed) => claimed,
            Err(_) => {
                spans::record_outcome("claim_timed_out");
                tracing::warn!(
                    id,
                    timeout = ?self.config.handler_timeout,
                    "claiming the event timed out, probably behind a row lock; retrying after the first tier"
                );
                return self.retry(envelope, FIRST_TIER);
            }
        };
        match self.event_to_process(id, claimed, &envelope) {
            Ok(event) => {
                let attempt = Attempt::Claimed(event.attempt_count);
                self.process(envelope, event, attempt).await
            }
            Err(outcome) => outcome,
        }
    }

    /// Returns the event of a claim, or of a `pending` row read without a claim, to process.
    /// For every other outcome, returns how to settle the delivery instead.
    fn event_to_process(
        &self,
        id: i64,
        found: Result<ClaimOutcome, StoreError>,
        envelope: &Envelope,
    ) -> Result<StoredEvent, Outcome> {
        let outcome = match found {
            Ok(outcome) => outcome,
            Err(error) => {
                self.store_failed(id, &error);
                spans::record_outcome("store_unavailable");
                return Err(self.retry(envelope.clone(), FIRST_TIER));
            }
        };
        self.store_reachable();
        match outcome {
            ClaimOutcome::Claimed(event) => {
                tracing::Span::current().record("event_id", event.event_id.as_str());
                Ok(event)
            }
            ClaimOutcome::AlreadyCompleted => {
                spans::record_outcome("already_completed");
                tracing::debug!(id, "event already completed; acking the duplicate message");
                Err(Outcome::Ack)
            }
            ClaimOutcome::Dead => {
                spans::record_outcome("already_dead");
                tracing::debug!(id, "event is dead; acking the message without processing");
                Err(Outcome::Ack)
            }
            ClaimOutcome::Locked | ClaimOutcome::NotDue(_) => {
                spans::record_outcome("locked");
                tracing::debug!(
                    id,
                    "event is claimed by another consumer; retrying after the first tier"
                );
                Err(self.retry(envelope.clone(), FIRST_TIER))
            }
            ClaimOutcome::NotFound => {
                spans::record_outcome("not_found");
                tracing::warn!(id, "message names no stored event; dead-lettering it");
                Err(Outcome::Dead {
                    reason: format!("no row with id {id}"),
                })
            }
        }
    }

    /// Runs one attempt within the handler timeout and maps its result.
    async fn process(&self, envelope: Envelope, event: StoredEvent, attempt: Attempt) -> Outcome {
        let id = event.id;
        tracing::Span::current().record("attempt", event.attempt_count);
        let limit = self.config.handler_timeout;
        let processing = self.processor.process(&event, attempt);
        let result = match tokio::time::timeout(limit, processing).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(id, provider = %event.provider, event_id = %event.event_id, attempt = event.attempt_count, ?limit, "processing timed out; recording a failed attempt");
                self.record_timeout(&event, attempt).await
            }
        };
        match result {
            Ok(ProcessOutcome::Completed { .. } | ProcessOutcome::Ignored) => Outcome::Ack,
            Ok(ProcessOutcome::Retrying { attempt, .. }) => {
                let tier = self.processor.retry.tier_index(attempt).unwrap_or(0);
                self.retry(with_attempt(&envelope, attempt), tier)
            }
            Ok(ProcessOutcome::Dead { error, .. }) => Outcome::Dead { reason: error },
            Err(StoreError::Conflict { status, .. }) => {
                spans::record_outcome("superseded");
                // Another consumer claimed or processed the row since this attempt read or
                // claimed it, and that attempt's message settles the event.
                tracing::info!(id, %status, "a newer attempt owns the event; dropping this attempt's result");
                Outcome::Ack
            }
            Err(error) => {
                // A claimed row stays `processing` until the lease ends, then the retry
                // claims it; an unclaimed row is unchanged and the retry claims it.
                self.store_failed(id, &error);
                spans::record_outcome("store_unavailable");
                let tier = self
                    .processor
                    .retry
                    .tier_index(event.attempt_count)
                    .unwrap_or(0);
                self.retry(with_attempt(&envelope, event.attempt_count), tier)
            }
        }
    }

    /// Records a timed-out attempt as failed, itself bounded by the handler timeout.
    async fn record_timeout(
        &self,
        event: &StoredEvent,
        attempt: Attempt,
    ) -> Result<ProcessOutcome, StoreError> {
        let limit = self.config.handler_timeout;
        let recorded = self.processor.record_timeout(event, attempt, limit);
        match tokio::time::timeout(limit, recorded).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "recording the timed-out attempt took longer than {limit:?}"
            ))),
        }
    }

    fn retry(&self, envelope: Envelope, tier: usize) -> Outcome {
        let tier_label = tier.to_string();
        self.processor
            .metrics
            .retries
            .inc(&[("tier", tier_label.as_str())]);
        Outcome::Retry { envelope, tier }
    }

    fn store_reachable(&self) {
        if self.store_down.swap(false, Ordering::Relaxed) {
            tracing::info!("database reachable again; processing resumes");
        }
    }

    fn store_failed(&self, id: i64, error: &StoreError) {
        let unavailable = matches!(error, StoreError::Unavailable(_));
        let first = unavailable && !self.store_down.swap(true, Ordering::Relaxed);
        if first {
            tracing::error!(id, %error, "database unavailable; deliveries go to a delay tier until it is back");
        } else if let Some(suppressed) = self.store_log.check() {
            tracing::warn!(id, %error, suppressed, "database call failed; the delivery goes to a delay tier");
        }
    }
}
