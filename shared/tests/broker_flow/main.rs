//! End-to-end tests of the RabbitMQ mode: ingest and consumers run in this process on their
//! library entry points, joined by a real RabbitMQ broker and a real PostgreSQL database.
//!
//! Set `PAYHOOK_TEST_AMQP_URL` (for example `amqp://guest:guest@127.0.0.1:5672/%2f`) and
//! `PAYHOOK_TEST_POSTGRES_URL` (for example `postgres://postgres@127.0.0.1:5432/postgres`).
//! Without both, every test prints one `broker_flow: skipped (...)` line and returns, and
//! fails instead when the `CI` variable is set. Each test uses its own random queue prefix
//! and its own database, and deletes both when it ends, even after a failed assertion.
//! The trace tests install this binary's global tracing subscriber.

mod fault;
mod flows;
mod harness;
mod recovery;
mod traces;
