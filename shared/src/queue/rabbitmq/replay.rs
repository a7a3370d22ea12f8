//! Moving messages from the dead-letter queue back to the work queue.
//!
//! A replay reads at most as many messages as the dead-letter queue held when it started,
//! with `basic.get`. Each matching message is republished to the work queue with its attempt
//! count reset to 0, and acked only after the broker confirmed the republish. Messages that
//! do not match, matches beyond the limit, and every message of a dry run stay unacked until
//! the scan ends, so `basic.get` never returns them twice. They are then requeued with one
//! `basic.nack(multiple, requeue)`.
//!
//! NOTE: only tested on RabbitMQ 3.10. Quorum queues of RabbitMQ 4.x have a default delivery
//! limit of 20, and depending on the version a requeue counts as a delivery, so many dry runs
//! over the same quorum dead-letter queue could make the broker drop its messages there.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tracing::info;

use super::connection::{RabbitError, amqp_error};
use super::message::{
    REASON_HEADER, decode_envelope, header_string, unix_seconds_now, with_attempt,
};
use super::publisher::RabbitPublisher;
use crate::queue::{Envelope, Publisher};

/// Filter selecting the dead letters to replay. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub provider: Option<String>,
    pub event_type: Option<String>,
    /// Only messages dead-lettered at least this long ago.
    pub older_than: Option<Duration>,
    /// Only messages dead-lettered at most this long ago.
    pub newer_than: Option<Duration>,
}

impl ReplayFilter {
    /// Returns whether a message matches. `timestamp` and `now` are Unix seconds. A message
    /// without a timestamp never matches an age filter.
    pub fn matches(&self, envelope: &Envelope, timestamp: Option<u64>, now: u64) -> bool {
        let Envelope::V1 {
            provider,
            event_type,
            ..
        } = envelope;
        if self
            .provider
            .as_ref()
            .is_some_and(|wanted| wanted != provider)
        {
            return false;
        }
        if self
            .event_type
            .as_ref()
            .is_some_and(|wanted| wanted != event_type)
        {
            return false;
        }
        if self.older_than.is_none() && self.newer_than.is_none() {
            return true;
        }
        let Some(timestamp) = timestamp else {
            return false;
        };
        let age = now.saturating_sub(timestamp);
        if self
            .older_than
            .is_some_and(|min_age| age < min_age.as_secs())
        {
            return false;
        }
        if self
            .newer_than
            .is_some_and(|max_age| age > max_age.as_secs())
        {
            return false;
        }
        true
    }
}

/// One dead letter that matched the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub envelope: Envelope,
    /// Value of the `x-payhook-reason` header.
    pub reason: Option<String>,
    /// Unix seconds when the message was dead-lettered.
    pub timestamp: Option<u64>,
}

/// Result of [`replay_dead_letters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub dry_run: bool,
    /// Messages read from the dead-letter queue.
    pub scanned: usize,
    /// Messages whose body is not a valid envelope. They never match and stay in the queue.
    pub undecodable: usize,
    /// Matching messages, at most `limit`.
    pub matched: Vec<DeadLetter>,
    /// Matching messages moved to the work queue: 0 on a dry run.
    pub replayed: usize,
}

/// Republishes up to `limit` dead letters that match `filter` to the work queue with their
/// attempt count reset to 0. With `dry_run`, lists the matches and moves nothing.
///
/// When a republish fails, the scan stops, the failed message stays in the dead-letter queue
/// and the error is returned. Messages replayed before the failure stay replayed.
pub async fn replay_dead_letters(
    publisher: &RabbitPublisher,
    filter: &ReplayFilter,
    limit: usize,
    dry_run: bool,
) -> Result<ReplayReport, RabbitError> {
    let config = publisher.config();
    let dead_queue = publisher.names().dead_queue.clone();
    let channel = publisher.open_channel().await?;
    let scan_limit = ready_messages(&channel, &dead_queue)
        .await
        .map_err(|source| amqp_error(config, source))?;

    let now = unix_seconds_now();
    let mut report = ReplayReport {
        dry_run,
        ..ReplayReport::default()
    };
    let mut last_kept_tag = None;
    let mut failure = None;

    while report.scanned < scan_limit && report.matched.len() < limit {
        let get_options = BasicGetOptions {
            // Keep the message until it is republished or requeued.
            no_ack: false,
        };
        let message = channel
            .basic_get(dead_queue.as_str().into(), get_options)
            .await
            .map_err(|source| amqp_error(config, source))?;
        let Some(message) = message else {
            break;
        };
        let delivery = message.delivery;
        report.scanned += 1;

        let Ok(envelope) = decode_envelope(&delivery.data) else {
            report.undecodable += 1;
            last_kept_tag = Some(delivery.delivery_tag);
            continue;
        };
        let timestamp = *delivery.properties.timestamp();
        if !filter.matches(&envelope, timestamp, now) {
            last_kept_tag = Some(delivery.delivery_tag);
            continue;
        }
        report.matched.push(DeadLetter {
            envelope: envelope.clone(),
            reason: header_string(&delivery.properties, REASON_HEADER),
            timestamp,
        });
        if dry_run {
            last_kept_tag = Some(delivery.delivery_tag);
            continue;
        }

        if let Err(error) = publisher.publish(&with_attempt(&envelope, 0)).await {
            last_kept_tag = Some(delivery.delivery_tag);
            failure = Some(error);
            break;
        }
        let ack_options = BasicAckOptions {
            // Only this message: the kept ones before it stay unacked.
            multiple: false,
        };
        delivery
            .acker
            .ack(ack_options)
            .await
            .map_err(|source| amqp_error(config, source))?;
        report.replayed += 1;
    }

    if let Some(tag) = last_kept_tag {
        let nack_options = BasicNackOptions {
            // Every kept message has a tag up to this one, and the replayed ones are acked.
            multiple: true,
            // Put them back into the dead-letter queue.
            requeue: true,
        };
        channel
            .basic_nack(tag, nack_options)
            .await
            .map_err(|source| amqp_error(config, source))?;
        // A quorum queue takes requeued messages back asynchronously. Waiting until they
        // are counted again means a replay started right after this one (a dry run followed
        // by the real replay) scans them.
        let requeued = report.scanned - report.replayed;
        wait_until_counted(&channel, &dead_queue, requeued).await;
    }
    let _ = channel.close(200, "replay finished".into()).await;

    info!(
        queue = %dead_queue,
        dry_run,
        scanned = report.scanned,
        matched = report.matched.len(),
        replayed = report.replayed,
        undecodable = report.undecodable,
        provider = ?filter.provider,
        event_type = ?filter.event_type,
        older_than = ?filter.older_than,
        newer_than = ?filter.newer_than,
        "dead-letter replay finished"
    );
    match failure {
        Some(error) => Err(RabbitError::Publish(error)),
        None => Ok(report),
    }
}

/// Maximum wait for requeued messages to be counted in the dead-letter queue again.
const REQUEUE_WAIT: Duration = Duration::from_secs(2);

/// Returns the number of ready messages in `queue`, by a passive declare.
async fn ready_messages(channel: &lapin::Channel, queue: &str) -> Result<usize, lapin::Error> {
    let options = QueueDeclareOptions {
        // Only read the message count; the queue must exist.
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await?;
    Ok(declared.message_count() as usize)
}

/// Waits, for at most [`REQUEUE_WAIT`], until `queue` counts at least `expected` ready
/// messages. A shortfall after the wait (another client took messages) is not an error.
async fn wait_until_counted(channel: &lapin::Channel, queue: &str, expected: usize) {
    let deadline = tokio::time::Instant::now() + REQUEUE_WAIT;
    loop {
        match ready_messages(channel, queue).await {
            Ok(count) if count >= expected => return,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(count) => {
                tracing::warn!(
                    queue,
                    count,
                    expected,
                    "requeued dead letters are not all counted yet"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(queue, %error, "counting the requeued dead letters failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(provider: &str, event_type: &str) -> Envelope {
        Envelope::V1 {
            id: 7,
            provider: provider.to_owned(),
            event_type: event_type.to_owned(),
            attempt: 5,
            traceparent: None,
        }
    }

    #[test]
    fn filter_checks_provider_type_and_age() {
        let now = 10_000;
        let filter = ReplayFilter {
            provider: Some("stripe".to_owned()),
            event_type: Some("charge.refunded".to_owned()),
            older_than: Some(Duration::from_secs(60)),
            newer_than: Some(Duration::from_secs(600)),
        };
        let matching = envelope("stripe", "charge.refunded");

        assert!(filter.matches(&matching, Some(now - 120), now));
        assert!(!filter.matches(&matching, Some(now - 30), now), "too new");
        assert!(!filter.matches(&matching, Some(now - 900), now), "too old");
        assert!(!filter.matches(&matching, None, now), "no timestamp");
        assert!(!filter.matches(&envelope("paypal", "charge.refunded"), Some(now - 120), now));
        assert!(!filter.matches(
            &envelope("stripe", "charge.succeeded"),
            Some(now - 120),
            now
        ));
    }

    #[test]
    fn empty_filter_matches_everything() {
        let filter = ReplayFilter::default();

        assert!(filter.matches(&envelope("adyen", "AUTHORISATION"), None, 0));
    }
}
