//! The message envelope and the queues that carry event ids from ingest to workers.
//! Queues know row ids, never payload contents.

pub mod rabbitmq;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The message published for each stored event. Versioned so that old and new processes can
/// share a queue during a rolling upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum Envelope {
    #[serde(rename = "1")]
    V1 {
        /// `WebhookEvents.Id`.
        id: i64,
        provider: String,
        event_type: String,
        /// Number of processing attempts made before this message was published.
        attempt: i32,
        /// W3C `traceparent` of the ingest request, when tracing is on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
}

/// Reasons a publish did not reach a queue. The row stays unpublished and the sweeper
/// publishes it again later.
#[derive(Debug, Error)]
pub enum PublishError {
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    #[error("broker rejected the message (negative publisher confirm)")]
    Nacked,
    #[error("broker returned the message as unroutable: {0}")]
    Returned(String),
    #[error("publisher confirm timed out after {0:?}")]
    Timeout(Duration),
}

/// Hands stored event ids to workers. The embedded queue and RabbitMQ both implement it.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one envelope and returns once the queue has durably accepted it.
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError>;

    /// Wakes idle in-process workers so they look for due rows now, for example after an
    /// operator requeued events. The default does nothing: broker consumers only act on
    /// messages, and the sweeper publishes requeued rows.
    fn wake(&self) {}
}
