//! Operator commands that send failed and dead events through processing again, keeping the
//! database rows and the RabbitMQ queues in step.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use thiserror::Error;

use crate::model::{EventStatus, StoredEvent};
use crate::queue::rabbitmq::{RabbitError, RabbitPublisher, ReplayFilter, replay_dead_letters};
use crate::queue::{Envelope, PublishError, Publisher};
use crate::storage::{EventFilter, Store, StoreError};

/// Largest page the store lists at once.
const PAGE_SIZE: i64 = 1000;
/// Maximum length of the error text on one event line.
const MAX_ERROR_CHARS: usize = 120;

/// Selection shared by both commands. Ages are measured from now: dead letters by the time
/// they were dead-lettered, failed rows by the time they were stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorFilter {
    pub provider: Option<String>,
    pub event_type: Option<String>,
    pub older_than: Option<Duration>,
    pub newer_than: Option<Duration>,
}

/// What a command did: one line per event, then a summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorReport {
    /// Ids of the events moved back to processing, or that would be on a dry run.
    pub ids: Vec<i64>,
    pub lines: Vec<String>,
    pub summary: String,
}

/// Failures of an operator command. Events handled before the failure stay handled, and
/// the report lists them.
#[derive(Debug, Error)]
pub enum OperatorError {
    #[error("{0}")]
    Config(String),
    #[error("database error: {0}")]
    Store(#[from] StoreError),
    #[error("RabbitMQ error: {0}")]
    Broker(#[from] RabbitError),
    #[error(
        "publishing event {id} failed: {source}; {remaining} requeued event(s) stay unpublished and the sweeper publishes them"
    )]
    Publish {
        id: i64,
        remaining: usize,
        #[source]
        source: PublishError,
        /// The events requeued and published before the failure.
        report: Box<OperatorReport>,
    },
}

/// Moves up to `limit` matching messages from the dead-letter queue back to the work queue,
/// and resets each one's `dead` row to `pending` with attempt count 0 (the store logs a
/// `replay` step). With `dry_run`, only lists the matches.
///
/// Rows are reset before their messages move, so a consumer never meets a replayed message
/// whose row is still `dead` and drops it. A row that is not `dead` (already requeued and
/// completed, for example) is left as it is, and its message is moved so that a consumer
/// acks it without side effects.
pub async fn replay_dead(
    store: &Arc<dyn Store>,
    publisher: &RabbitPublisher,
    filter: &OperatorFilter,
    limit: usize,
    dry_run: bool,
) -> Result<OperatorReport, OperatorError> {
    let replay_filter = ReplayFilter {
        provider: filter.provider.clone(),
        event_type: filter.event_type.clone(),
        older_than: filter.older_than,
        newer_than: filter.newer_than,
    };
    let preview = replay_dead_letters(publisher, &replay_filter, limit, true).await?;
    let mut report = OperatorReport::default();
    if dry_run {
        for letter in &preview.matched {
            let Envelope::V1 { id, .. } = &letter.envelope;
            report.ids.push(*id);
            report.lines.push(format!(
                "would replay {} (reason: {})",
                describe(&letter.envelope),
                shorten(letter.reason.as_deref().unwrap_or("none"))
            ));
        }
        report.summary = format!(
            "dry run: {} of {} scanned dead letters match; nothing was moved",
            preview.matched.len(),
            preview.scanned
        );
        return Ok(report);
    }

    let mut reset_ids = Vec::new();
    for letter in &preview.matched {
        let Envelope::V1 { id, .. } = &letter.envelope;
        if reset_dead_row(store, *id, &mut report).await? {
            reset_ids.push(*id);
        }
    }
    let replayed = replay_dead_letters(publisher, &replay_filter, limit, false).await?;
    for letter in &replayed.matched {
        let Envelope::V1 { id, .. } = &letter.envelope;
        // A letter that arrived between the preview and the move: reset it now. The reset
        // clears the published stamp, so the sweeper publishes it again if a consumer
        // already dropped the message.
        if !reset_ids.contains(id) && reset_dead_row(store, *id, &mut report).await? {
            reset_ids.push(*id);
        }
        report.ids.push(*id);
        report.lines.push(format!(
            "replayed {} (reason: {})",
            describe(&letter.envelope),
            shorten(letter.reason.as_deref().unwrap_or("none"))
        ));
    }
    for id in &reset_ids {
        if report.ids.contains(id) {
            // The message is in the work queue again, so the sweeper need not publish it.
            if let Err(error) = store.mark_published(*id).await {
                tracing::warn!(id, %error, "stamping a replayed event as published failed; the sweeper may publish it once more");
            }
        }
    }
    report.summary = format!(
        "replayed {} dead letter(s) of {} scanned; reset {} dead row(s) to pending",
        replayed.replayed,
        replayed.scanned,
        reset_ids.len()
    );
    Ok(report)
}

/// Resets the row to `pending` when it is `dead`; returns whether it did.
async fn reset_dead_row(
    store: &Arc<dyn Store>,
    id: i64,
    report: &mut OperatorReport,
) -> Result<bool, OperatorError> {
    let Some(detail) = store.event_detail(id).await? else {
        report.lines.push(format!(
            "event {id} has no row; its message is moved and the consumer dead-letters it again"
        ));
        return Ok(false);
    };
    let status = detail.event.status;
    if status != EventStatus::Dead {
        report.lines.push(format!(
            "event {id} is {status}, not dead; its row is left unchanged"
        ));
        return Ok(false);
    }
    store.replay(id).await?;
    Ok(true)
}

/// Resets up to `limit` `failed` and `dead` rows matching the filter (oldest first) to
/// `pending` with attempt count 0, then publishes each one. The store logs a `requeue` step
/// per row. With `dry_run`, only lists them.
pub async fn retry_failed(
    store: &Arc<dyn Store>,
    publisher: &dyn Publisher,
    filter: &OperatorFilter,
    limit: usize,
    dry_run: bool,
) -> Result<OperatorReport, OperatorError> {
    let now = Utc::now();
    let to_chrono = |age: Duration| chrono::Duration::from_std(age).ok().map(|age| now - age);
    let event_filter = EventFilter {
        provider: filter.provider.clone(),
        event_type: filter.event_type.clone(),
        statuses: vec![EventStatus::Failed, EventStatus::Dead],
        from: filter.newer_than.and_then(to_chrono),
        to: filter.older_than.and_then(to_chrono),
    };
    let mut report = OperatorReport::default();
    if dry_run {
        let events = oldest_matching(store, &event_filter, limit).await?;
        for event in &events {
            report.ids.push(event.id);
            report
                .lines
                .push(format!("would requeue {}", describe_row(event)));
        }
        report.summary = format!(
            "dry run: {} failed or dead event(s) match; nothing was changed",
            events.len()
        );
        return Ok(report);
    }

    // The rows as they were, so each report line names the state the event was requeued from.
    let before: std::collections::HashMap<i64, StoredEvent> =
        oldest_matching(store, &event_filter, limit)
            .await?
            .into_iter()
            .map(|event| (event.id, event))
            .collect();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ids = store.requeue(&event_filter, limit).await?;
    for (index, id) in ids.iter().enumerate() {
        let Some(detail) = store.event_detail(*id).await? else {
            continue;
        };
        let event = &detail.event;
        let envelope = Envelope::V1 {
            id: event.id,
            provider: event.provider.clone(),
            event_type: event.event_type.clone(),
            attempt: 0,
            traceparent: None,
        };
        if let Err(source) = publisher.publish(&envelope).await {
            report.summary = format!(
                "requeued {} event(s); published {}",
                ids.len(),
                report.ids.len()
            );
            return Err(OperatorError::Publish {
                id: *id,
                remaining: ids.len() - index,
                source,
                report: Box::new(report),
            });
        }
        if let Err(error) = store.mark_published(*id).await {
            tracing::warn!(id, %error, "stamping a requeued event as published failed; the sweeper may publish it once more");
        }
        report.ids.push(*id);
        let previous = before.get(id).unwrap_or(event);
        report
            .lines
            .push(format!("requeued {}", describe_row(previous)));
    }
    report.summary = format!(
        "requeued and published {} failed or dead event(s)",
        report.ids.len()
    );
    Ok(report)
}

/// Lists up to `limit` matching rows, oldest first, as `requeue` would pick them.
async fn oldest_matching(
    store: &Arc<dyn Store>,
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    let mut page = 1;
    loop {
        let listed = store.list_events(filter, page, PAGE_SIZE).await?;
        let count = listed.events.len();
        events.extend(listed.events);
        if count < PAGE_SIZE as usize || events.len() as i64 >= listed.total_count {
            break;
        }
        page += 1;
    }
    // The store lists newest first.
    events.reverse();
    events.truncate(limit);
    Ok(events)
}

fn describe(envelope: &Envelope) -> String {
    let Envelope::V1 {
        id,
        provider,
        event_type,
        ..
    } = envelope;
    format!("event {id} ({provider} {event_type})")
}

fn describe_row(event: &StoredEvent) -> String {
    format!(
        "event {} ({} {}, was {} after {} attempt(s): {})",
        event.id,
        event.provider,
        event.event_type,
        event.status,
        event.attempt_count,
        shorten(
            event
                .error_message
                .as_deref()
                .unwrap_or("no error recorded")
        )
    )
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_ERROR_CHARS).collect();
    format!("{cut}…")
}
