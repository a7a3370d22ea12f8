//! payhook: receives payment-provider webhooks, verifies them on the raw bytes, stores every
//! one durably, and processes them into normalized payment events.
//!
//! Layout, from the edge inwards:
//! - [`providers`]: pure signature verification and payment extraction per provider.
//! - [`storage`]: the [`storage::Store`] trait and its SQLite, PostgreSQL and SQL Server
//!   backends.
//! - [`queue`]: the message envelope and the queues that carry event ids to workers.
//! - [`worker`]: claim → handler → one transaction, with retries and dead events.
//! - [`http`]: the public webhook listener and the admin listener.
//! - [`config`], [`telemetry`] and [`app`]: settings, logs and metrics, and the wiring of
//!   all of the above into a running service.
//! - [`model`] and [`money`]: rows and exact amounts shared by all of the above.

pub mod app;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod model;
pub mod money;
pub mod providers;
pub mod queue;
pub mod secret;
pub mod send;
pub mod storage;
pub mod telemetry;
pub mod worker;
