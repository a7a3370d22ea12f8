//! A [`Store`] decorator that encrypts `raw_payload` at rest with AES-256-GCM.
//!
//! The sealed value (`enc:v1:<key id>:<base64>`) goes into the same text column, so the
//! schema does not change and each row names the key that sealed it. Reads decrypt with any
//! configured key; rows written before encryption was enabled are returned as they are.

mod keys;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use keys::{KEY_LEN, PayloadKeyError, PayloadKeys, SEALED_PREFIX};

use super::{
    ClaimOutcome, Completion, EventFilter, EventPage, Failure, RepublishCandidate, Statistics,
    Store, StoreError,
};
use crate::model::{EventDetail, InsertOutcome, NewEvent, StoredEvent};

/// Encrypts raw payloads on insert and decrypts them on every read that returns them.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    keys: PayloadKeys,
}

impl EncryptedStore {
    /// Wraps `inner`; new payloads are sealed with the first key of `keys`.
    pub fn new(inner: Arc<dyn Store>, keys: PayloadKeys) -> Self {
        EncryptedStore { inner, keys }
    }

    fn open(&self, mut event: StoredEvent) -> Result<StoredEvent, StoreError> {
        let context = payload_context(&event.provider, &event.event_id);
        event.raw_payload = self
            .keys
            .open(&event.raw_payload, &context)
            .map_err(|error| {
                // NOTE: a row that cannot be opened fails the whole read, including a
                // `claim_due` batch, until its key is configured again.
                StoreError::Backend(format!("webhook event {}: {error}", event.id))
            })?;
        Ok(event)
    }
}

fn payload_context(provider: &str, event_id: &str) -> String {
    format!("{provider}\n{event_id}")
}

#[async_trait]
impl Store for EncryptedStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn insert_event(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        let context = payload_context(&event.provider, &event.event_id);
        let sealed = self
            .keys
            .seal(&event.raw_payload, &context)
            .map_err(|error| StoreError::Backend(error.to_string()))?;
        let sealed_event = NewEvent {
            raw_payload: sealed,
            ..event.clone()
        };
        self.inner.insert_event(&sealed_event).await
    }

    async fn mark_published(&self, id: i64) -> Result<(), StoreError> {
        self.inner.mark_published(id).await
    }

    async fn mark_unpublished(&self, id: i64) -> Result<(), StoreError> {
        self.inner.mark_unpublished(id).await
    }

    async fn claim_for_republish(
        &self,
        unpublished_grace: Duration,
        stale_after: Duration,
        limit: i64,
    ) -> Result<Vec<RepublishCandidate>, StoreError> {
        self.inner
            .claim_for_republish(unpublished_grace, stale_after, limit)
            .await
    }

    async fn unpublished(
        &self,
        older_than: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.inner.unpublished(older_than, limit).await
    }

    async fn claim(
        &self,
        id: i64,
        lease: Duration,
        respect_retry_time: bool,
    ) -> Result<ClaimOutcome, StoreError> {
        match self.inner.claim(id, lease, respect_retry_time).await? {
            ClaimOutcome::Claimed(event) => Ok(ClaimOutcome::Claimed(self.open(event)?)),
            other => Ok(other),
        }
    }

    async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.inner.claim_due(limit, lease).await?;
        events.into_iter().map(|event| self.open(event)).collect()
    }

    async fn load(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.inner
            .load(id)
            .await?
            .map(|event| self.open(event))
            .transpose()
    }

    async fn complete(&self, id: i64, completion: &Completion) -> Result<(), StoreError> {
        self.inner.complete(id, completion).await
    }

    async fn fail(&self, id: i64, failure: &Failure) -> Result<(), StoreError> {
        self.inner.fail(id, failure).await
    }

    async fn requeue(&self, filter: &EventFilter, limit: i64) -> Result<Vec<i64>, StoreError> {
        self.inner.requeue(filter, limit).await
    }

    async fn replay(&self, id: i64) -> Result<(), StoreError> {
        self.inner.replay(id).await
    }

    async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        let Some(mut detail) = self.inner.event_detail(id).await? else {
            return Ok(None);
        };
        detail.event = self.open(detail.event)?;
        Ok(Some(detail))
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        page: i64,
        page_size: i64,
    ) -> Result<EventPage, StoreError> {
        let mut result = self.inner.list_events(filter, page, page_size).await?;
        result.events = result
            .events
            .into_iter()
            .map(|event| self.open(event))
            .collect::<Result<_, _>>()?;
        Ok(result)
    }

    async fn statistics(&self, filter: &EventFilter) -> Result<Statistics, StoreError> {
        self.inner.statistics(filter).await
    }
}
