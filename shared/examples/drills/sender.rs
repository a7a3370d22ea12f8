//! Drill traffic: distinct signed events, sent at a steady rate with bounded concurrency, and
//! a record of which ones were answered with a 2xx status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use payhook::providers::stripe::sign_header;
use payhook::secret::Secret;
use ring::hmac;
use tokio::sync::Semaphore;

use crate::env::{DRILLPAY_SECRET, STRIPE_SECRET};

/// Time a request may take before the sender counts it as hung.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How an event is signed, which also selects its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// `Stripe-Signature` on the `stripe` route.
    Stripe,
    /// Hex HMAC-SHA256 of the body in `X-Drill-Signature`, on the `drillpay` route.
    Drillpay,
}

/// One webhook event the drill sends, with its exact body.
#[derive(Debug, Clone)]
pub struct Event {
    pub signing: Signing,
    pub event_id: String,
    pub body: String,
}

impl Event {
    /// Returns the provider route, which is also the stored `provider` value.
    pub fn route(&self) -> &'static str {
        match self.signing {
            Signing::Stripe => "stripe",
            Signing::Drillpay => "drillpay",
        }
    }
}

/// Builds `count` Stripe `payment_intent.succeeded` events with ids unique to this run.
pub fn stripe_events(drill: &str, count: usize) -> Vec<Event> {
    let run = fastrand::u32(..);
    (0..count)
        .map(|n| {
            stripe_event(
                &format!("evt_{}_{run:08x}_{n:05}", drill.replace('-', "_")),
                n,
            )
        })
        .collect()
}

/// Builds one Stripe `payment_intent.succeeded` event; its amount depends on `n`.
pub fn stripe_event(event_id: &str, n: usize) -> Event {
    let amount = 100 + n as i64;
    let body = serde_json::json!({
        "id": event_id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": chrono::Utc::now().timestamp(),
        "type": "payment_intent.succeeded",
        "livemode": false,
        "data": {
            "object": {
                "id": format!("pi_{event_id}"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": "usd",
                "customer": "cus_drillBuyer",
                "metadata": {"order_id": format!("ORD-{n}")},
                "status": "succeeded"
            }
        }
    })
    .to_string();
    Event {
        signing: Signing::Stripe,
        event_id: event_id.to_owned(),
        body,
    }
}

/// Builds `count` `payment.succeeded` events for the config-defined `drillpay` route.
pub fn drillpay_events(drill: &str, count: usize) -> Vec<Event> {
    let run = fastrand::u32(..);
    (0..count)
        .map(|n| {
            let event_id = format!("dp_{}_{run:08x}_{n:05}", drill.replace('-', "_"));
            let body = serde_json::json!({
                "id": event_id,
                "type": "payment.succeeded",
                "data": {
                    "payment": format!("pay_{event_id}"),
                    "amount_minor": 2_500 + n as i64,
                    "currency": "EUR",
                    "region": "EU-WEST"
                }
            })
            .to_string();
            Event {
                signing: Signing::Drillpay,
                event_id,
                body,
            }
        })
        .collect()
}

/// The result of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A response with this status arrived.
    Status(u16),
    /// The connection failed or closed without a response.
    Dropped,
    /// No response within [`REQUEST_TIMEOUT`].
    TimedOut,
}

/// One delivery: which event, when it was sent (from the start of the stream), how it was
/// answered and how long that took.
#[derive(Debug, Clone)]
pub struct Record {
    pub event: usize,
    pub sent_at: Duration,
    pub answer: Answer,
    pub latency: Duration,
}

impl Record {
    /// Returns whether the delivery was answered with a 2xx status.
    pub fn acknowledged(&self) -> bool {
        matches!(self.answer, Answer::Status(200..=299))
    }
}

/// Posts events to one ingest and signs each delivery at send time.
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    base_url: String,
}

impl Sender {
    /// Creates a sender for the ingest whose webhook URLs start with `base_url`
    /// (`http://127.0.0.1:PORT/api/webhooks`).
    pub fn new(base_url: String) -> Sender {
        Sender {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base_url,
        }
    }

    /// Delivers `event` once and returns how it was answered.
    pub async fn deliver(&self, event: &Event) -> (Answer, Duration) {
        let started = Instant::now();
        let request = self.request(event);
        let exchange = async {
            let response = self.client.request(request).await.ok()?;
            let status = response.status().as_u16();
            // The answer counts only once its body has arrived whole.
            response.into_body().collect().await.ok()?;
            Some(status)
        };
        let answer = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Some(status)) => Answer::Status(status),
            Ok(None) => Answer::Dropped,
            Err(_) => Answer::TimedOut,
        };
        (answer, started.elapsed())
    }

    fn request(&self, event: &Event) -> http::Request<Full<Bytes>> {
        let url = format!("{}/{}", self.base_url, event.route());
        let builder = http::Request::post(url).header("content-type", "application/json");
        let builder = match event.signing {
            Signing::Stripe => {
                let secret = Secret::new(STRIPE_SECRET);
                let now = chrono::Utc::now().timestamp();
                builder.header(
                    "stripe-signature",
                    sign_header(&secret, now, event.body.as_bytes()),
                )
            }
            Signing::Drillpay => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, DRILLPAY_SECRET.as_bytes());
                let tag = hmac::sign(&key, event.body.as_bytes());
                let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                builder.header("x-drill-signature", hex)
            }
        };
        builder
            .body(Full::new(Bytes::from(event.body.clone())))
            .expect("valid request")
    }
}

/// Sends `order` (indexes into `events`, repeats allowed) one every `interval`, at most
/// `concurrency` in flight, and returns one record per delivery.
pub async fn send_steady(
    sender: &Sender,
    events: &Arc<Vec<Event>>,
    order: &[usize],
    interval: Duration,
    concurrency: usize,
) -> Vec<Record> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = Vec::with_capacity(order.len());
    for &index in order {
        ticker.tick().await;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let sender = sender.clone();
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            let sent_at = started.elapsed();
            let (answer, latency) = sender.deliver(&events[index]).await;
            drop(permit);
            Record {
                event: index,
                sent_at,
                answer,
                latency,
            }
        }));
    }
    let mut records = Vec::with_capacity(tasks.len());
    for task in tasks {
        records.push(task.await.expect("delivery task panicked"));
    }
    records
}

/// Delivers every event not yet acknowledged again, as a provider retries, until all are
/// acknowledged or `rounds` rounds have passed. Returns the records of these deliveries.
pub async fn redeliver_unacknowledged(
    sender: &Sender,
    events: &Arc<Vec<Event>>,
    acknowledged: &mut HashSet<usize>,
    rounds: usize,
) -> Vec<Record> {
    let mut records = Vec::new();
    for _ in 0..rounds {
        let missing: Vec<usize> = (0..events.len())
            .filter(|index| !acknowledged.contains(index))
            .collect();
        if missing.is_empty() {
            break;
        }
        let round = send_steady(sender, events, &missing, Duration::from_millis(5), 8).await;
        acknowledged.extend(round.iter().filter(|r| r.acknowledged()).map(|r| r.event));
        records.extend(round);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    records
}

/// Returns the indexes of the events acknowledged at least once.
pub fn acknowledged(records: &[Record]) -> HashSet<usize> {
    records
        .iter()
        .filter(|record| record.acknowledged())
        .map(|record| record.event)
        .collect()
}

/// Counts of the answers in `records`, for drill reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct AnswerCounts {
    pub acknowledged: usize,
    pub unavailable: usize,
    pub other_status: usize,
    pub no_answer: usize,
    pub timed_out: usize,
    pub max_latency: Duration,
}

/// Summarizes `records`.
pub fn count_answers(records: &[Record]) -> AnswerCounts {
    let mut counts = AnswerCounts::default();
    for record in records {
        match record.answer {
            Answer::Status(200..=299) => counts.acknowledged += 1,
            Answer::Status(503) => counts.unavailable += 1,
            Answer::Status(_) => counts.other_status += 1,
            Answer::Dropped => counts.no_answer += 1,
            Answer::TimedOut => counts.timed_out += 1,
        }
        counts.max_latency = counts.max_latency.max(record.latency);
    }
    counts
}
