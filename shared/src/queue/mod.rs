//! The message envelope and the queues that carry event ids from ingest to workers.
//! Queues know row ids, never payload contents.

use serde::{Deserialize, Serialize};

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
    },
}
