//! The sweeper: publishes again the events whose queue message is missing or presumed lost,
//! such as rows stored while the broker was down. Several sweepers may run at once, in
//! ingest and consumer processes, because the store hands each row to one of them only.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::queue::{Envelope, Publisher};
use crate::storage::{RepublishCandidate, Store, StoreError};
use crate::telemetry::log_limiter::LogLimiter;
use crate::telemetry::metrics::Metrics;

/// Timing and batch size of the sweeper.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// Pause between two rounds.
    pub interval: Duration,
    /// Age at which a `pending` row whose publish failed is published again.
    pub unpublished_grace: Duration,
    /// Age of the last publish (or of the passed retry time) at which an unfinished row is
    /// presumed to have lost its message.
    pub stale_after: Duration,
    /// Rows claimed per round.
    pub batch_size: i64,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        SweeperConfig {
            interval: Duration::from_secs(10),
            unpublished_grace: Duration::from_secs(15),
            stale_after: Duration::from_secs(900),
            batch_size: 100,
        }
    }
}

/// Counts of one sweeper round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Rows the store handed to this sweeper.
    pub claimed: usize,
    /// Rows published.
    pub republished: usize,
    /// Whether a publish failed, which ended the round early.
    pub publish_failed: bool,
}

/// Republishes lost or unpublished rows on a timer.
pub struct Sweeper {
    pub store: Arc<dyn Store>,
    pub publisher: Arc<dyn Publisher>,
    pub metrics: Arc<Metrics>,
    pub config: SweeperConfig,
}

impl Sweeper {
    /// Runs rounds until `shutdown` is cancelled. A round that fills its batch is followed
    /// by another one at once, so a backlog drains without waiting for the interval.
    pub async fn run(&self, shutdown: CancellationToken) {
        let store_log = LogLimiter::new(Duration::from_secs(60));
        tracing::info!(
            interval = ?self.config.interval,
            unpublished_grace = ?self.config.unpublished_grace,
            stale_after = ?self.config.stale_after,
            "sweeper started"
        );
        while !shutdown.is_cancelled() {
            let full_batch = match self.sweep_once().await {
                Ok(report) => {
                    !report.publish_failed && report.claimed as i64 >= self.config.batch_size
                }
                Err(error) => {
                    if let Some(suppressed) = store_log.check() {
                        tracing::warn!(%error, suppressed, "sweeper failed to read the database; trying again next round");
                    }
                    false
                }
            };
            if full_batch {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(self.config.interval) => {}
            }
        }
        tracing::info!("sweeper stopped");
    }

    /// Claims one batch and publishes it. The first failed publish ends the round.
    pub async fn sweep_once(&self) -> Result<SweepReport, StoreError> {
        let candidates = self
            .store
            .claim_for_republish(
                self.config.unpublished_grace,
                self.config.stale_after,
                self.config.batch_size,
            )
            .await?;
        let mut report = SweepReport {
            claimed: candidates.len(),
            ..SweepReport::default()
        };
        for (index, candidate) in candidates.iter().enumerate() {
            match self.publisher.publish(&envelope(candidate)).await {
                Ok(()) => {
                    report.republished += 1;
                    self.metrics
                        .sweeper_republished
                        .inc(&[("provider", &candidate.provider)]);
                }
                Err(error) => {
                    tracing::warn!(
                        id = candidate.id,
                        provider = %candidate.provider,
                        %error,
                        "sweeper publish failed; ending this round"
                    );
                    report.publish_failed = true;
                    self.release(&candidates[index..]).await;
                    break;
                }
            }
        }
        if report.claimed > 0 {
            tracing::info!(
                claimed = report.claimed,
                republished = report.republished,
                publish_failed = report.publish_failed,
                "sweeper round finished"
            );
        }
        Ok(report)
    }

    /// Clears the published stamp of claimed rows that were not published, so the next
    /// rounds pick them up again.
    ///
    /// NOTE: the store only re-selects rows without a stamp when they are `pending`. A
    /// `failed` or `processing` row (attempt count above 0) keeps the stamp of this round
    /// instead, so it is picked up again once `stale_after` has passed.
    async fn release(&self, unpublished: &[RepublishCandidate]) {
        for candidate in unpublished
            .iter()
            .filter(|candidate| candidate.attempt_count == 0)
        {
            if let Err(error) = self.store.mark_unpublished(candidate.id).await {
                tracing::warn!(id = candidate.id, %error, "clearing the published stamp failed; the row is swept again after stale_after");
            }
        }
    }
}

fn envelope(candidate: &RepublishCandidate) -> Envelope {
    Envelope::V1 {
        id: candidate.id,
        provider: candidate.provider.clone(),
        event_type: candidate.event_type.clone(),
        attempt: candidate.attempt_count,
        traceparent: None,
    }
}
