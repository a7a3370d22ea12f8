//! RabbitMQ transport: topology, publisher with confirms, consumer and dead-letter replay.
//!
//! This layer moves [`Envelope`](crate::queue::Envelope)s (row ids and routing data) and
//! never reads payloads or the database. See [`topology`] for the exchange and queue layout.

mod config;
mod confirms;
mod connection;
mod consumer;
mod depths;
mod message;
mod publisher;
mod replay;
pub mod topology;

pub use config::{QueueType, RabbitConfig};
pub use connection::RabbitError;
pub use consumer::{Delivery, Outcome, RabbitConsumer};
pub use depths::QueueDepth;
pub use message::{
    ATTEMPT_HEADER, DecodeError, REASON_HEADER, TRACEPARENT_HEADER, decode_envelope, with_attempt,
};
pub use publisher::RabbitPublisher;
pub use replay::{DeadLetter, ReplayFilter, ReplayReport, replay_dead_letters};
pub use topology::{TopologyNames, declare_topology, delete_topology};
