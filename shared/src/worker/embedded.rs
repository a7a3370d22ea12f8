//! The embedded queue: workers in the ingest process that claim due rows straight from the
//! database. Publishing only wakes a worker, so the database is the queue and nothing is lost
//! when the process stops.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::process::Processor;
use crate::queue::{Envelope, PublishError, Publisher};
use crate::storage::Attempt;
use crate::telemetry::spans;

/// Wakes embedded workers when a new event is stored.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedQueue {
    wake: Arc<Notify>,
}

#[async_trait]
impl Publisher for EmbeddedQueue {
    async fn publish(&self, _envelope: &Envelope) -> Result<(), PublishError> {
        self.wake.notify_one();
        Ok(())
    }

    fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Settings of the embedded workers.
#[derive(Debug, Clone)]
pub struct EmbeddedWorkerConfig {
    pub workers: usize,
    /// Rows claimed per database round trip.
    pub batch_size: i64,
    /// How often idle workers look for due retries and expired leases.
    pub poll_interval: Duration,
    /// How long a claim stays valid before another worker may take the row over.
    pub lease: Duration,
}

impl Default for EmbeddedWorkerConfig {
    fn default() -> Self {
        EmbeddedWorkerConfig {
            workers: 2,
            batch_size: 32,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(60),
        }
    }
}

impl EmbeddedQueue {
    /// Runs the workers until `shutdown` is cancelled; each finishes the event in hand first.
    pub async fn run_workers(
        &self,
        processor: Arc<Processor>,
        config: EmbeddedWorkerConfig,
        shutdown: CancellationToken,
    ) {
        let mut tasks = Vec::with_capacity(config.workers);
        for worker in 0..config.workers.max(1) {
            let queue = self.clone();
            let processor = processor.clone();
            let config = config.clone();
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                queue.worker_loop(worker, processor, config, shutdown).await;
            }));
        }
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "embedded worker task ended abnormally");
            }
        }
    }

    async fn worker_loop(
        &self,
        worker: usize,
        processor: Arc<Processor>,
        config: EmbeddedWorkerConfig,
        shutdown: CancellationToken,
    ) {
        tracing::debug!(worker, "embedded worker started");
        while !shutdown.is_cancelled() {
            let claimed = match processor
                .store
                .claim_due(config.batch_size, config.lease)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(worker, %error, "claiming due events failed; retrying");
                    self.idle(&config, &shutdown).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                self.idle(&config, &shutdown).await;
                continue;
            }
            if claimed.len() as i64 == config.batch_size {
                // More work is probably waiting: let another worker start on it.
                self.wake.notify_one();
            }
            // The claimed events are processed together, so that their results are written
            // in shared transactions (see the store's group commit) instead of one commit each.
            let attempts = claimed.iter().map(|event| {
                let span = spans::claimed_process_span(event);
                let processor = &processor;
                async move {
                    let attempt = Attempt::Claimed(event.attempt_count);
                    if let Err(error) = processor.process(event, attempt).instrument(span).await {
                        tracing::error!(worker, id = event.id, provider = %event.provider, event_id = %event.event_id, %error, "recording the processing result failed; the lease will expire and the event will be retried");
                    }
                }
            });
            futures_util::future::join_all(attempts).await;
        }
        tracing::debug!(worker, "embedded worker stopped");
    }

    async fn idle(&self, config: &EmbeddedWorkerConfig, shutdown: &CancellationToken) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
