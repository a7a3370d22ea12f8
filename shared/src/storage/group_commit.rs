//! Group commit of concurrent store calls.
//!
//! Callers queue their item. A caller that gets one of the `max_in_flight` batch permits
//! takes the queued items (up to `max_batch`) and has the backend run them together, in one
//! transaction where the backend can. Every caller waits for its own outcome, which it
//! receives only after that transaction committed. Under light load a batch contains one item
//! and nothing waits for a timer. Under heavy load the items that queued while the permits
//! were taken share one round trip and one commit.
//!
//! The same queue serves inserts of webhook events ([`InsertBatch`]), and claims and
//! completions where a backend batches them.
//!
//! For inserts: when a batch fails with anything but [`StoreError::Unavailable`], each of
//! its events is inserted again on its own, so one invalid event cannot fail the others.
//! Several events with one (provider, event id) pair in a batch are inserted once: the
//! first gets the backend's outcome and the others `Duplicate` of the same row.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{Semaphore, oneshot};

use crate::model::{InsertOutcome, NewEvent};
use crate::storage::StoreError;

/// Work that a backend runs several items of at once.
#[async_trait]
pub(crate) trait Batch: Send + Sync + 'static {
    type Item: Send + 'static;
    type Output: Send + 'static;

    /// Runs `items` and returns one result per item, in order. A result must not be
    /// returned before the work it reports is committed.
    async fn run(&self, items: Vec<Self::Item>) -> Vec<Result<Self::Output, StoreError>>;
}

/// The two ways a backend inserts events.
#[async_trait]
pub(crate) trait BatchInsert: Send + Sync + 'static {
    /// Inserts events with distinct (provider, event id) pairs in one transaction and
    /// returns one outcome per event, in order.
    async fn insert_batch(&self, events: &[NewEvent]) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Inserts one event in its own transaction.
    async fn insert_one(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError>;
}

/// Inserts of webhook events in batches, with repeats and failures handled as the module
/// documentation describes.
pub(crate) struct InsertBatch<I>(pub(crate) I);

#[async_trait]
impl<I: BatchInsert> Batch for InsertBatch<I> {
    type Item = NewEvent;
    type Output = InsertOutcome;

    async fn run(&self, events: Vec<NewEvent>) -> Vec<Result<InsertOutcome, StoreError>> {
        insert_deduplicated(&self.0, events).await
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

struct Pending<B: Batch> {
    item: B::Item,
    reply: Reply<B::Output>,
}

/// Batches concurrent calls in front of a [`Batch`] backend.
pub(crate) struct GroupCommit<B: Batch> {
    backend: Arc<B>,
    queue: Mutex<VecDeque<Pending<B>>>,
    permits: Arc<Semaphore>,
    max_batch: usize,
}

impl<B: Batch> GroupCommit<B> {
    /// Runs at most `max_in_flight` batches of at most `max_batch` items at once.
    pub(crate) fn new(backend: B, max_in_flight: usize, max_batch: usize) -> Self {
        GroupCommit {
            backend: Arc::new(backend),
            queue: Mutex::new(VecDeque::new()),
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            max_batch: max_batch.max(1),
        }
    }

    /// Runs `item` in the next batch and returns its outcome once the batch committed.
    ///
    /// NOTE: a caller cancelled while its item is queued leaves the item in the queue, and
    /// the next call on this queue runs it. For an insert, no 2xx was sent for it, so the
    /// provider's retry finds it stored and gets `duplicate`. For a claim or completion, the
    /// row's lease and attempt fence make a late write harmless.
    pub(crate) async fn submit(&self, item: B::Item) -> Result<B::Output, StoreError> {
        let (reply, mut outcome) = oneshot::channel();
        self.lock_queue().push_back(Pending { item, reply });
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
                        // Another caller's batch contains this item.
                        drop(permit);
                        return outcome.await.unwrap_or_else(|_| Err(abandoned()));
                    }
                    // The batch runs in its own task, so that callers whose items it contains
                    // get their outcomes even if this caller is cancelled.
                    let backend = Arc::clone(&self.backend);
                    tokio::spawn(async move {
                        run_batch(backend.as_ref(), batch).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    fn take_batch(&self) -> Vec<Pending<B>> {
        let mut queue = self.lock_queue();
        let size = queue.len().min(self.max_batch);
        queue.drain(..size).collect()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending<B>>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn run_batch<B: Batch>(backend: &B, batch: Vec<Pending<B>>) {
    let (items, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|pending| (pending.item, pending.reply))
        .unzip();
    let count = items.len();
    let mut results = backend.run(items).await.into_iter();
    if results.len() != count {
        let detail = format!("a batch of {count} returned {} outcomes", results.len());
        for reply in replies {
            let _ = reply.send(Err(StoreError::Backend(detail.clone())));
        }
        return;
    }
    for reply in replies {
        // The caller may have gone away; its work is committed all the same.
        let result = results.next().unwrap_or_else(|| Err(abandoned()));
        let _ = reply.send(result);
    }
}

fn abandoned() -> StoreError {
    StoreError::Unavailable("the batched insert ended without an outcome".to_owned())
}

/// Inserts `events`, each (provider, event id) pair once, and gives every repeat of a pair
/// the first one's row as `Duplicate`.
async fn insert_deduplicated<I: BatchInsert>(
    backend: &I,
    batch: Vec<NewEvent>,
) -> Vec<Result<InsertOutcome, StoreError>> {
    // `unique` lists the batch index of the first event of each (provider, event id) pair.
    // For a repeated pair, `repeat_of[i]` is the position of its first event in `unique`.
    let mut positions: HashMap<(&str, &str), usize> = HashMap::new();
    let mut unique: Vec<usize> = Vec::with_capacity(batch.len());
    let mut repeat_of: Vec<Option<usize>> = Vec::with_capacity(batch.len());
    for (index, event) in batch.iter().enumerate() {
        let key = (event.provider.as_str(), event.event_id.as_str());
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

    let events: Vec<NewEvent> = unique.iter().map(|&i| batch[i].clone()).collect();
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
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(abandoned())))
        .collect()
}

/// Inserts events with distinct pairs as one batch, or one by one when the batch fails
/// for a reason other than an unavailable database.
async fn insert_unique<I: BatchInsert>(
    backend: &I,
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

pub(crate) fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(detail) => StoreError::Unavailable(detail.clone()),
        StoreError::Invalid(detail) => StoreError::Invalid(detail.clone()),
        StoreError::NotFound(id) => StoreError::NotFound(*id),
        StoreError::Locked(id) => StoreError::Locked(*id),
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
