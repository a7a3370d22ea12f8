//! Group commit of concurrent `insert_event` calls.
//!
//! Callers queue their event. A caller that gets one of the `max_in_flight` batch permits
//! takes the queued events (up to `max_batch`) and has the backend insert them in one
//! transaction. Every caller waits for its own outcome, which it receives only after that
//! transaction committed. Under light load a batch holds one event and nothing waits for
//! a timer. Under heavy load the events that queued while the permits were taken share
//! one statement and one commit.
//!
//! When a batch fails with anything but [`StoreError::Unavailable`], each of its events is
//! inserted again on its own, so one invalid event cannot fail the others. Several events
//! with one (provider, event id) pair in a batch are inserted once: the first gets the
//! backend's outcome and the others `Duplicate` of the same row.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{Semaphore, oneshot};

use crate::model::{InsertOutcome, NewEvent};
use crate::storage::StoreError;

/// The two ways a backend inserts events.
#[async_trait]
pub(crate) trait BatchInsert: Send + Sync + 'static {
    /// Inserts events with distinct (provider, event id) pairs in one transaction and
    /// returns one outcome per event, in order.
    async fn insert_batch(&self, events: &[NewEvent]) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Inserts one event in its own transaction.
    async fn insert_one(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError>;
}

type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

struct Pending {
    event: NewEvent,
    reply: Reply,
}

/// Batches concurrent inserts in front of a [`BatchInsert`] backend.
pub(crate) struct GroupCommit {
    backend: Arc<dyn BatchInsert>,
    queue: Mutex<VecDeque<Pending>>,
    permits: Arc<Semaphore>,
    max_batch: usize,
}

impl GroupCommit {
    /// Runs at most `max_in_flight` batches of at most `max_batch` events at once.
    pub(crate) fn new(
        backend: Arc<dyn BatchInsert>,
        max_in_flight: usize,
        max_batch: usize,
    ) -> Self {
        GroupCommit {
            backend,
            queue: Mutex::new(VecDeque::new()),
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            max_batch: max_batch.max(1),
        }
    }

    /// Inserts `event` in the next batch and returns its outcome once the batch committed.
    ///
    /// NOTE: a caller cancelled while its event is queued leaves the event in the queue, and
    /// the next insert on this store inserts it. No 2xx was sent for it, so the provider's
    /// retry finds it stored and gets `duplicate`.
    pub(crate) async fn insert(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        let (reply, mut outcome) = oneshot::channel();
        self.lock_queue().push_back(Pending {
            event: event.clone(),
            reply,
        });
        loop {
            tokio::select! {
                biased;
                result = &mut outcome => return result.unwrap_or_else(|_| Err(abandoned())),
                permit = Arc::clone(&self.permits).acquire_owned() => {
                    let Ok(permit) = permit else {
                        return Err(abandoned());
                    };
                    let batch = self.take_batch();
                    if batch.is_empty() {
                        // Another caller's batch contains this event.
                        drop(permit);
                        return outcome.await.unwrap_or_else(|_| Err(abandoned()));
                    }
                    // The batch runs in its own task, so that callers whose events it contains
                    // get their outcomes even if this caller's request is cancelled.
                    let backend = Arc::clone(&self.backend);
                    tokio::spawn(async move {
                        run_batch(backend.as_ref(), batch).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    fn take_batch(&self) -> Vec<Pending> {
        let mut queue = self.lock_queue();
        let size = queue.len().min(self.max_batch);
        queue.drain(..size).collect()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn abandoned() -> StoreError {
    StoreError::Unavailable("the batched insert ended without an outcome".to_owned())
}

async fn run_batch(backend: &dyn BatchInsert, batch: Vec<Pending>) {
    // `unique` lists the batch index of the first event of each (provider, event id) pair.
    // For a repeated pair, `repeat_of[i]` is the position of its first event in `unique`.
    let mut positions: HashMap<(&str, &str), usize> = HashMap::new();
    let mut unique: Vec<usize> = Vec::with_capacity(batch.len());
    let mut repeat_of: Vec<Option<usize>> = Vec::with_capacity(batch.len());
    for (index, pending) in batch.iter().enumerate() {
        let key = (
            pending.event.provider.as_str(),
            pending.event.event_id.as_str(),
        );
        match positions.get(&key) {
            Some(&position) => repeat_of.push(Some(position)),
            None => {
                positions.insert(key, unique.len());
                repeat_of.push(None);
                unique.push(index);
            }
        }
    }
    drop(positions);

    let events: Vec<NewEvent> = unique.iter().map(|&i| batch[i].event.clone()).collect();
    let outcomes = insert_unique(backend, &events).await;

    let mut results: Vec<Option<Result<InsertOutcome, StoreError>>> =
        batch.iter().map(|_| None).collect();
    for (&index, outcome) in unique.iter().zip(outcomes) {
        results[index] = Some(outcome);
    }
    for (index, position) in repeat_of.iter().enumerate() {
        if let Some(position) = position {
            results[index] = Some(repeat_outcome(results[unique[*position]].as_ref()));
        }
    }
    for (pending, result) in batch.into_iter().zip(results) {
        // The caller may have gone away; its row is committed all the same.
        let _ = pending
            .reply
            .send(result.unwrap_or_else(|| Err(abandoned())));
    }
}

/// Inserts events with distinct pairs as one batch, or one by one when the batch fails
/// for a reason other than an unavailable database.
async fn insert_unique(
    backend: &dyn BatchInsert,
    events: &[NewEvent],
) -> Vec<Result<InsertOutcome, StoreError>> {
    if let [event] = events {
        return vec![backend.insert_one(event).await];
    }
    match backend.insert_batch(events).await {
        Ok(outcomes) if outcomes.len() == events.len() => outcomes.into_iter().map(Ok).collect(),
        Ok(outcomes) => {
            let detail = format!(
                "batch insert returned {} outcomes for {} events",
                outcomes.len(),
                events.len()
            );
            events
                .iter()
                .map(|_| Err(StoreError::Backend(detail.clone())))
                .collect()
        }
        Err(StoreError::Unavailable(detail)) => events
            .iter()
            .map(|_| Err(StoreError::Unavailable(detail.clone())))
            .collect(),
        Err(_) => {
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                outcomes.push(backend.insert_one(event).await);
            }
            outcomes
        }
    }
}

/// Returns the outcome of a repeat of an event in the same batch: the same row, as a
/// duplicate.
fn repeat_outcome(
    first: Option<&Result<InsertOutcome, StoreError>>,
) -> Result<InsertOutcome, StoreError> {
    match first {
        Some(Ok(outcome)) => Ok(InsertOutcome::Duplicate(outcome.id())),
        Some(Err(error)) => Err(copy_error(error)),
        None => Err(abandoned()),
    }
}

fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        StoreError::Invalid(detail) => StoreError::Invalid(detail.clone()),
        StoreError::NotFound(id) => StoreError::NotFound(*id),
        StoreError::Conflict {
            id,
            status,
            expected,
        } => StoreError::Conflict {
            id: *id,
            status: *status,
            expected,
        },
        StoreError::Backend(detail) => StoreError::Backend(detail.clone()),
    }
}
