//! `/metrics`: the registry's text plus the backlog gauges, refreshed from the database at
//! scrape time at most once per cache period.

use std::time::{Duration, Instant};

use http::{Response, header};

use super::{AdminApi, static_header};
use crate::http::error::Body;
use crate::model::EventStatus;
use crate::storage::EventFilter;

/// When the backlog gauges were last read from the database.
pub struct BacklogCache {
    ttl: Duration,
    refreshed_at: tokio::sync::Mutex<Option<Instant>>,
}

impl BacklogCache {
    pub fn new(ttl: Duration) -> Self {
        BacklogCache {
            ttl,
            refreshed_at: tokio::sync::Mutex::new(None),
        }
    }
}

impl AdminApi {
    pub(super) async fn metrics_text(&self) -> Response<Body> {
        self.refresh_backlog().await;
        let mut response = Response::new(Body::from(self.metrics.render()));
        static_header(
            &mut response,
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        );
        response
    }

    /// Sets `payhook_backlog_events` per status and `payhook_dependency_up{database}` from
    /// one statistics query, unless the last query is younger than the cache period.
    /// Concurrent scrapes wait for one query instead of each running their own.
    async fn refresh_backlog(&self) {
        let mut refreshed_at = self.backlog.refreshed_at.lock().await;
        if refreshed_at.is_some_and(|at| at.elapsed() < self.backlog.ttl) {
            return;
        }
        // NOTE: statistics also computes processing-time percentiles over every completed
        // row, so on a large table this query is not cheap. The cache bounds how often it
        // runs, whatever the scrape interval.
        match self.store.statistics(&EventFilter::default()).await {
            Ok(statistics) => {
                for status in EventStatus::ALL {
                    let count = match status {
                        EventStatus::Pending => statistics.pending,
                        EventStatus::Processing => statistics.processing,
                        EventStatus::Completed => statistics.completed,
                        EventStatus::Failed => statistics.failed,
                        EventStatus::Dead => statistics.dead,
                    };
                    self.metrics
                        .backlog
                        .set(&[("status", status.as_str())], count as f64);
                }
                self.metrics
                    .dependency_up
                    .set(&[("dependency", "database")], 1.0);
            }
            Err(error) => {
                tracing::warn!(%error, "metrics scrape: reading the backlog failed");
                self.metrics
                    .dependency_up
                    .set(&[("dependency", "database")], 0.0);
            }
        }
        *refreshed_at = Some(Instant::now());
    }
}
