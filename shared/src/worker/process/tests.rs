use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::model::{EventStatus, NewEvent, NewPaymentEvent};
use crate::providers::{ExtractError, Extraction, Handler};
use crate::storage::{ClaimOutcome, StoreOptions, connect};
use crate::worker::retry::RetryPolicy;

/// Returns one payment event with the given id and counts its calls.
struct CountingHandler {
    payment_id: String,
    calls: AtomicUsize,
}

impl Handler for CountingHandler {
    fn extract(&self, _event_type: &str, _payload: &str) -> Result<Extraction, ExtractError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Extraction::Payments(vec![NewPaymentEvent {
            payment_id: self.payment_id.clone(),
            event_type: "payment_intent.succeeded".into(),
            status: "succeeded".into(),
            status_raw: None,
            amount: None,
            customer_id: None,
            order_id: None,
            transaction_id: None,
            metadata: None,
            provider_created_at: None,
        }]))
    }
}

async fn processor(payment_id: &str) -> (Processor, Arc<CountingHandler>) {
    let store = connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate");
    let handler = Arc::new(CountingHandler {
        payment_id: payment_id.to_owned(),
        calls: AtomicUsize::new(0),
    });
    let mut handlers: HashMap<String, Arc<dyn Handler>> = HashMap::new();
    handlers.insert("testpay".into(), handler.clone());
    let processor = Processor {
        store,
        handlers,
        retry: RetryPolicy::default(),
        metrics: Arc::new(Metrics::default()),
    };
    (processor, handler)
}

async fn insert(processor: &Processor, event_id: &str, max_attempts: i32) -> i64 {
    let event = NewEvent {
        provider: "testpay".into(),
        event_id: event_id.into(),
        event_type: "payment_intent.succeeded".into(),
        raw_payload: format!(r#"{{"id":"{event_id}"}}"#),
        signature: None,
        headers: "{}".into(),
        source_ip: None,
        user_agent: None,
        signature_verified: true,
        signature_key_id: None,
        provider_created_at: None,
        max_attempts,
        published: false,
    };
    processor
        .store
        .insert_event(&event)
        .await
        .expect("insert")
        .id()
}

async fn claim(processor: &Processor, id: i64) -> StoredEvent {
    // A zero lease ends at once, as the lease of a consumer that was killed does later.
    match processor
        .store
        .claim(id, Duration::ZERO, false)
        .await
        .expect("claim")
    {
        ClaimOutcome::Claimed(event) => event,
        other => panic!("claim of {id} returned {other:?}"),
    }
}

#[tokio::test]
async fn attempt_past_limit_is_dead_unrun() {
    let (processor, handler) = processor("pi_crash_loop").await;
    let id = insert(&processor, "evt_crash_loop", 2).await;
    // Two claimed attempts ended without a result, as when the consumer crashed each time.
    claim(&processor, id).await;
    claim(&processor, id).await;
    let third = claim(&processor, id).await;
    assert_eq!(third.attempt_count, 3);

    let outcome = processor
        .process(&third, Attempt::Claimed(third.attempt_count))
        .await
        .expect("process");

    let ProcessOutcome::Dead { attempt, error } = outcome else {
        panic!("expected a dead event, got {outcome:?}");
    };
    assert_eq!(attempt, 3);
    assert!(error.contains("no attempts left"), "{error}");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0, "the handler ran");
    let detail = processor.store.event_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.event.status, EventStatus::Dead);
    assert!(detail.payment_events.is_empty());
    let reason = detail.event.error_message.unwrap_or_default();
    assert!(reason.contains("no attempts left"), "{reason}");
}

#[tokio::test]
async fn last_allowed_attempt_still_runs() {
    let (processor, handler) = processor("pi_last_attempt").await;
    let id = insert(&processor, "evt_last_attempt", 2).await;
    claim(&processor, id).await;
    let second = claim(&processor, id).await;

    let outcome = processor
        .process(&second, Attempt::Claimed(second.attempt_count))
        .await
        .expect("process");

    assert_eq!(outcome, ProcessOutcome::Completed { payment_events: 1 });
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unstorable_result_is_failed_attempt() {
    let (processor, handler) = processor(&"p".repeat(300)).await;
    let id = insert(&processor, "evt_unstorable", 2).await;
    let read = processor.store.load(id).await.unwrap().unwrap();
    let fence = Attempt::Unclaimed(read.attempt_count);
    let event = StoredEvent {
        attempt_count: fence.number(),
        ..read
    };

    let outcome = processor.process(&event, fence).await.expect("process");

    let ProcessOutcome::Retrying { attempt, error } = outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert_eq!(attempt, 1);
    assert!(error.contains("cannot be stored"), "{error}");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    let detail = processor.store.event_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.event.status, EventStatus::Failed);
    assert_eq!(detail.event.attempt_count, 1);
    assert!(detail.payment_events.is_empty());
    let logged = detail.logs.iter().any(|log| {
        log.status == "failed"
            && log
                .error_message
                .as_deref()
                .is_some_and(|message| message.contains("payment_id"))
    });
    assert!(logged, "{:?}", detail.logs);
}
