//! Processing of one claimed event: run the provider's handler, then commit the payment
//! events, the processing logs and the new status in one transaction.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::Instrument;

use super::retry::RetryPolicy;
use crate::model::{NewProcessingLog, StoredEvent};
use crate::providers::{Extraction, Handler};
use crate::storage::{Attempt, Completion, Failure, Store, StoreError};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::spans;

#[cfg(test)]
mod tests;

/// Largest payload, in bytes, whose handler runs on the calling task instead of the
/// blocking thread pool.
pub const INLINE_HANDLER_BYTES: usize = 64 * 1024;

/// What processing did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    /// Payment events (possibly none) were written and the row is `completed`.
    Completed { payment_events: usize },
    /// The event type carries no payment data; the row is `completed` with an `ignored` log.
    Ignored,
    /// The attempt failed and another is scheduled.
    Retrying { attempt: i32, error: String },
    /// The attempt failed and no attempts are left; the row is `dead`.
    Dead { attempt: i32, error: String },
}

/// Runs provider handlers for claimed events and records the results.
pub struct Processor {
    pub store: Arc<dyn Store>,
    pub handlers: HashMap<String, Arc<dyn Handler>>,
    pub retry: RetryPolicy,
    pub metrics: Arc<Metrics>,
}

impl Processor {
    /// Processes one attempt of an event. `event` is the row as read or claimed, with
    /// `attempt_count` set to the attempt's number, `attempt.number()`. The store writes the
    /// result only if the row is still in the state `attempt` names, and returns `Conflict`
    /// without writing anything otherwise.
    pub async fn process(
        &self,
        event: &StoredEvent,
        attempt: Attempt,
    ) -> Result<ProcessOutcome, StoreError> {
        debug_assert_eq!(event.attempt_count, attempt.number());
        let started = Instant::now();
        if event.attempt_count > event.max_attempts {
            // Claims count attempts before the handler runs. Attempts that ended without a
            // recorded result (the process was killed, or crashed on this event) therefore
            // still count, and an event that keeps crashing its consumer becomes dead here.
            let error = format!(
                "no attempts left: attempts up to {} of {} ended without a recorded result, \
                 for example because the consumer stopped or crashed while processing",
                event.attempt_count - 1,
                event.max_attempts
            );
            let outcome = self.record_failure(event, attempt, error, 0).await?;
            self.observe(event, &outcome, started);
            return Ok(outcome);
        }
        let result = self
            .run_handler(event)
            .instrument(spans::handler_span(event))
            .await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let outcome = match result {
            Ok(Extraction::Payments(payment_events)) => {
                let count = payment_events.len();
                let log = NewProcessingLog {
                    step: "handler".into(),
                    status: "success".into(),
                    duration_ms,
                    error_message: None,
                    additional_data: Some(format!(
                        "{count} payment event(s) extracted; {}",
                        attempt_note(attempt, event.max_attempts)
                    )),
                };
                let summary = serde_json::json!({"paymentEvents": count}).to_string();
                let completion = Completion {
                    attempt,
                    payment_events,
                    logs: vec![log],
                    processed_payload: Some(summary),
                };
                match self.store.complete(event.id, &completion).await {
                    Ok(()) => ProcessOutcome::Completed {
                        payment_events: count,
                    },
                    // The extracted values do not fit the schema, and a retry of the same
                    // payload would extract them again. The attempt fails with the reason,
                    // so the event reaches `dead` after its attempts instead of looping.
                    Err(StoreError::Invalid(detail)) => {
                        let error =
                            format!("the extracted payment events cannot be stored: {detail}");
                        self.record_failure(event, attempt, error, duration_ms)
                            .await?
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(Extraction::Ignored(reason)) => {
                tracing::info!(
                    id = event.id,
                    provider = %event.provider,
                    event_id = %event.event_id,
                    event_type = %event.event_type,
                    %reason,
                    "event type ignored"
                );
                let log = NewProcessingLog {
                    step: "handler".into(),
                    status: "ignored".into(),
                    duration_ms,
                    error_message: None,
                    additional_data: Some(reason),
                };
                let completion = Completion {
                    attempt,
                    payment_events: Vec::new(),
                    logs: vec![log],
                    processed_payload: Some(r#"{"ignored":true}"#.to_string()),
                };
                self.store.complete(event.id, &completion).await?;
                ProcessOutcome::Ignored
            }
            Err(error) => {
                self.record_failure(event, attempt, error, duration_ms)
                    .await?
            }
        };
        self.observe(event, &outcome, started);
        Ok(outcome)
    }

    /// Records a failed attempt whose processing did not finish within `limit`, as
    /// [`Processor::process`] records a handler error. The store rejects the write with
    /// `Conflict` when another worker has claimed the row since.
    pub async fn record_timeout(
        &self,
        event: &StoredEvent,
        attempt: Attempt,
        limit: std::time::Duration,
    ) -> Result<ProcessOutcome, StoreError> {
        let started = Instant::now();
        let error = format!("processing timed out after {limit:?}");
        let duration_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        let outcome = self
            .record_failure(event, attempt, error, duration_ms)
            .await?;
        self.observe(event, &outcome, started);
        Ok(outcome)
    }

    /// Runs the provider's handler. A handler that only computes handles a payload of up to
    /// [`INLINE_HANDLER_BYTES`] on the calling task: extraction takes microseconds, less than
    /// handing the payload to another thread and back. Any other call goes to the blocking
    /// thread pool, so a slow handler never stalls the async runtime and a caller's timeout
    /// can still fire.
    async fn run_handler(&self, event: &StoredEvent) -> Result<Extraction, String> {
        let handler = self
            .handlers
            .get(&event.provider)
            .cloned()
            .or_else(|| builtin_handler(&event.provider));
        let Some(handler) = handler else {
            return Err(format!(
                "no handler is configured for provider {:?}",
                event.provider
            ));
        };
        let result = if handler.computes_only() && event.raw_payload.len() <= INLINE_HANDLER_BYTES {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                handler.extract(&event.event_type, &event.raw_payload)
            }))
        } else {
            let event_type = event.event_type.clone();
            let payload = event.raw_payload.clone();
            let task = tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(AssertUnwindSafe(|| {
                    handler.extract(&event_type, &payload)
                }))
            });
            match task.await {
                Ok(result) => result,
                Err(error) => return Err(format!("handler task did not finish: {error}")),
            }
        };
        match result {
            Ok(Ok(extraction)) => Ok(extraction),
            Ok(Err(error)) => Err(error.to_string()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".to_string());
                tracing::error!(id = event.id, provider = %event.provider, panic = %message, "handler panicked");
                Err(format!("handler panicked: {message}"))
            }
        }
    }

    async fn record_failure(
        &self,
        event: &StoredEvent,
        fence: Attempt,
        error: String,
        duration_ms: i64,
    ) -> Result<ProcessOutcome, StoreError> {
        let attempt = event.attempt_count;
        let exhausted = attempt >= event.max_attempts;
        let next_retry_at = if exhausted {
            None
        } else {
            let delay = chrono::Duration::from_std(self.retry.delay(attempt))
                .unwrap_or(chrono::Duration::hours(1));
            Some(Utc::now() + delay)
        };
        let log = NewProcessingLog {
            step: "handler".into(),
            status: "failed".into(),
            duration_ms,
            error_message: Some(error.clone()),
            additional_data: Some(attempt_note(fence, event.max_attempts)),
        };
        let failure = Failure {
            attempt: fence,
            error_message: error.clone(),
            logs: vec![log],
            next_retry_at,
        };
        self.store.fail(event.id, &failure).await?;
        if exhausted {
            tracing::warn!(id = event.id, provider = %event.provider, event_id = %event.event_id, attempt, %error, "event is dead after its last attempt");
            Ok(ProcessOutcome::Dead { attempt, error })
        } else {
            tracing::warn!(id = event.id, provider = %event.provider, event_id = %event.event_id, attempt, %error, retry_at = %next_retry_at.map(|at| at.to_rfc3339()).unwrap_or_default(), "event processing failed; retry scheduled");
            Ok(ProcessOutcome::Retrying { attempt, error })
        }
    }

    fn observe(&self, event: &StoredEvent, outcome: &ProcessOutcome, started: Instant) {
        let result = match outcome {
            ProcessOutcome::Completed { .. } => "completed",
            ProcessOutcome::Ignored => "ignored",
            ProcessOutcome::Retrying { .. } => "failed",
            ProcessOutcome::Dead { .. } => "dead",
        };
        spans::record_outcome(result);
        let provider = event.provider.as_str();
        self.metrics
            .processed
            .inc(&[("provider", provider), ("result", result)]);
        self.metrics.processing_seconds.observe(
            &[("provider", provider), ("event_type", &event.event_type)],
            started.elapsed().as_secs_f64(),
        );
        match outcome {
            ProcessOutcome::Retrying { .. } => self.metrics.retries.inc(&[("provider", provider)]),
            ProcessOutcome::Dead { .. } => {
                self.metrics.dead_lettered.inc(&[("provider", provider)])
            }
            ProcessOutcome::Completed { .. } | ProcessOutcome::Ignored => {}
        }
    }
}

/// Describes an attempt for its processing log: its number and whether the row was claimed
/// before the handler ran, e.g. `attempt 1 of 6, read without a claim`.
fn attempt_note(attempt: Attempt, max_attempts: i32) -> String {
    let claim = match attempt {
        Attempt::Claimed(_) => "claimed",
        Attempt::Unclaimed(_) => "read without a claim",
    };
    format!("attempt {} of {max_attempts}, {claim}", attempt.number())
}

/// Returns the handler of a built-in provider by its route (`stripe`, `stripe/eu`,
/// `paypal/eu`), so a consumer processes those events without the signing secrets that only
/// ingest needs. Config-defined providers need their configuration file.
fn builtin_handler(route: &str) -> Option<Arc<dyn Handler>> {
    let kind = route.split('/').next().unwrap_or(route);
    match kind {
        "stripe" => Some(Arc::new(crate::providers::stripe::StripeHandler)),
        "paypal" => Some(Arc::new(crate::providers::paypal::extract::PayPalHandler)),
        _ => None,
    }
}
