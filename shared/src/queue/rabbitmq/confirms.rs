//! A channel in publisher-confirm mode that keeps many publishes in flight and reports each
//! one's outcome, including messages the broker returned as unroutable.
//!
//! lapin 4.12 hands a returned message (`basic.return`) to whichever confirm it resolves next,
//! and resolves a `multiple` ack in hash-map order. With several publishes in flight, the
//! returned message can therefore arrive on another publish's `Confirmation::Ack(Some(_))`.
//! Every publish gets a unique `message_id`, and every returned message is filed under its
//! id in a [`ConfirmBook`]. A publish reads its own entry only after every earlier publish
//! on the channel has filed its outcome. RabbitMQ sends `basic.return` before the ack of the
//! same message, so the return goes to a confirm resolved no later than the message's own.
//!
//! NOTE: a `multiple` ack that also covers later tags could hand the return to a later
//! publish, which this ordering does not catch. The tests never saw it on RabbitMQ 3.10.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Notify;

use crate::queue::PublishError;

/// Outcomes of the publishes on one channel that have not all been read yet.
#[derive(Default)]
struct ConfirmBook {
    state: Mutex<BookState>,
    filed: Notify,
}

#[derive(Default)]
struct BookState {
    /// Sequence numbers of publishes whose confirm has not been filed yet.
    unfiled: BTreeSet<u64>,
    /// Publishes that have not finished reading their outcome.
    active: usize,
    /// Reply text of returned messages, by `message_id`.
    returned: HashMap<String, String>,
}

impl ConfirmBook {
    fn lock(&self) -> MutexGuard<'_, BookState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(&self, sequence: u64) {
        let mut state = self.lock();
        state.unfiled.insert(sequence);
        state.active += 1;
    }

    fn file(&self, sequence: u64, returned: Option<(String, String)>) {
        {
            let mut state = self.lock();
            state.unfiled.remove(&sequence);
            if let Some((message_id, reply)) = returned {
                state.returned.insert(message_id, reply);
            }
        }
        self.filed.notify_waiters();
    }

    /// Waits until every publish sent before `sequence` has filed its confirm.
    async fn wait_for_earlier(&self, sequence: u64) {
        loop {
            let notified = self.filed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let earliest = self.lock().unfiled.first().copied();
            if earliest.is_none_or(|earliest| earliest > sequence) {
                return;
            }
            notified.await;
        }
    }

    fn take_returned(&self, message_id: &str) -> Option<String> {
        self.lock().returned.remove(message_id)
    }

    fn finish(&self) {
        let mut state = self.lock();
        state.active -= 1;
        if state.active == 0 {
            // Entries left over belong to publishes that timed out or were cancelled.
            state.returned.clear();
        }
    }
}

/// Files an empty outcome and finishes the publish when its future is dropped early, so
/// that later publishes never wait for it.
struct InFlight<'a> {
    book: &'a ConfirmBook,
    sequence: u64,
    filed: bool,
}

impl InFlight<'_> {
    fn file(&mut self, returned: Option<(String, String)>) {
        self.book.file(self.sequence, returned);
        self.filed = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.filed {
            self.book.file(self.sequence, None);
        }
        self.book.finish();
    }
}

/// A channel with publisher confirms on.
pub(crate) struct ConfirmChannel {
    channel: Channel,
    /// Next sequence number. Held while `basic_publish` runs, because lapin assigns the
    /// delivery tag and queues the frames in two steps, and concurrent calls could otherwise
    /// send frames in another order than their tags.
    next_sequence: tokio::sync::Mutex<u64>,
    book: ConfirmBook,
    /// Random per-channel part of each `message_id`.
    nonce: u64,
    confirm_timeout: Duration,
}

impl ConfirmChannel {
    pub(crate) async fn open(
        connection: &Connection,
        confirm_timeout: Duration,
    ) -> lapin::Result<Self> {
        let channel = connection.create_channel().await?;
        let options = ConfirmSelectOptions {
            // Wait for select-ok so that no publish goes out before confirms are on.
            nowait: false,
        };
        channel.confirm_select(options).await?;
        Ok(ConfirmChannel {
            channel,
            next_sequence: tokio::sync::Mutex::new(1),
            book: ConfirmBook::default(),
            nonce: fastrand::u64(..),
            confirm_timeout,
        })
    }

    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    pub(crate) fn is_open(&self) -> bool {
        self.channel.status().connected()
    }

    /// Publishes with `mandatory` set and waits for this message's confirm, while other
    /// publishes on the channel stay in flight. `properties` receives the `message_id`.
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: impl FnOnce(&str) -> BasicProperties,
    ) -> Result<(), PublishError> {
        let (mut in_flight, message_id, confirm) = {
            let mut next_sequence = self.next_sequence.lock().await;
            let sequence = *next_sequence;
            *next_sequence += 1;
            let message_id = format!("{:016x}-{sequence}", self.nonce);
            self.book.register(sequence);
            let in_flight = InFlight {
                book: &self.book,
                sequence,
                filed: false,
            };
            let options = BasicPublishOptions {
                // Have the broker return the message when no queue is bound for the key.
                mandatory: true,
                // RabbitMQ does not support `immediate` and closes the connection on it.
                immediate: false,
            };
            let sent = self
                .channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    options,
                    body,
                    properties(&message_id),
                )
                .await;
            match sent {
                Ok(confirm) => (in_flight, message_id, confirm),
                Err(error) => return Err(PublishError::Unavailable(error.to_string())),
            }
        };

        let (result, returned) = match tokio::time::timeout(self.confirm_timeout, confirm).await {
            Err(_) => (Err(PublishError::Timeout(self.confirm_timeout)), None),
            Ok(Err(error)) => (Err(PublishError::Unavailable(error.to_string())), None),
            Ok(Ok(Confirmation::Ack(returned))) => (Ok(()), returned),
            Ok(Ok(Confirmation::Nack(returned))) => (Err(PublishError::Nacked), returned),
            Ok(Ok(Confirmation::NotRequested)) => (
                Err(PublishError::Unavailable(
                    "publisher confirms are not enabled on the channel".to_owned(),
                )),
                None,
            ),
        };
        let returned = returned.and_then(|message| {
            let owner = message.delivery.properties.message_id().clone()?;
            let reply = format!(
                "{} {} (exchange {:?}, routing key {:?})",
                message.reply_code,
                message.reply_text,
                message.delivery.exchange.as_str(),
                message.delivery.routing_key.as_str()
            );
            Some((owner.to_string(), reply))
        });
        in_flight.file(returned);

        self.book.wait_for_earlier(in_flight.sequence).await;
        if let Some(reply) = self.book.take_returned(&message_id) {
            return Err(PublishError::Returned(reply));
        }
        result
    }
}

impl std::fmt::Debug for ConfirmChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmChannel")
            .field("channel_id", &self.channel.id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn returned_message_reaches_its_owner() {
        let book = Arc::new(ConfirmBook::default());
        book.register(1);
        book.register(2);

        // Publish 1 receives the return of publish 2, as lapin may hand it out.
        book.file(1, Some(("m-2".to_owned(), "312 NO_ROUTE".to_owned())));
        let owner = {
            let book = Arc::clone(&book);
            tokio::spawn(async move {
                book.wait_for_earlier(2).await;
                book.take_returned("m-2")
            })
        };
        book.file(2, None);

        assert_eq!(owner.await.unwrap().as_deref(), Some("312 NO_ROUTE"));
        assert_eq!(book.take_returned("m-1"), None);
    }

    #[tokio::test]
    async fn later_publish_waits_for_earlier() {
        let book = Arc::new(ConfirmBook::default());
        book.register(1);
        book.register(2);
        book.file(2, None);

        let early = tokio::time::timeout(Duration::from_millis(50), book.wait_for_earlier(2)).await;
        assert!(
            early.is_err(),
            "publish 2 must wait while publish 1 is unfiled"
        );

        book.file(1, None);
        tokio::time::timeout(Duration::from_secs(5), book.wait_for_earlier(2))
            .await
            .expect("publish 2 still waiting after publish 1 was filed");
    }
}
