//! Message counts of the topology's queues, for readiness checks and metrics.

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use super::connection::{RabbitError, amqp_error};
use super::publisher::RabbitPublisher;

/// Ready-message and consumer counts of one queue. Messages delivered but not yet acked are
/// not included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

impl RabbitPublisher {
    /// Returns the depth of the work queue, every retry queue and the dead-letter queue, in
    /// that order. Fails when the broker is unreachable or a queue does not exist.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, RabbitError> {
        // A passive declare of a missing queue closes the channel, so use a channel of its own.
        let channel = self.open_channel().await?;
        let mut depths = Vec::new();
        for queue in self.names().all_queues() {
            let options = QueueDeclareOptions {
                // Only read the counts, and fail instead of creating a missing queue.
                passive: true,
                // Ignored by a passive declare.
                durable: true,
                // Ignored by a passive declare.
                exclusive: false,
                // Ignored by a passive declare.
                auto_delete: false,
                // The reply carries the counts.
                nowait: false,
            };
            let declared = channel
                .queue_declare(queue.into(), options, FieldTable::default())
                .await
                .map_err(|source| amqp_error(self.config(), source))?;
            depths.push(QueueDepth {
                queue: queue.to_owned(),
                messages: declared.message_count(),
                consumers: declared.consumer_count(),
            });
        }
        let _ = channel.close(200, "queue depths read".into()).await;
        Ok(depths)
    }

    /// Deletes the queues and the exchange of this publisher's prefix, with their messages.
    /// Meant for tests, which must remove quorum queues themselves because those cannot be
    /// auto-deleted.
    pub async fn delete_topology(&self) -> Result<(), RabbitError> {
        let channel = self.open_channel().await?;
        super::topology::delete_topology(&channel, self.config())
            .await
            .map_err(|source| amqp_error(self.config(), source))?;
        let _ = channel.close(200, "topology deleted".into()).await;
        Ok(())
    }
}
