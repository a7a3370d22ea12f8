//! Integration tests of the RabbitMQ layer against a real broker.
//!
//! Set `PAYHOOK_TEST_AMQP_URL`, for example `amqp://guest:guest@127.0.0.1:5672/%2f`. Without
//! it every test prints `rabbitmq: skipped (PAYHOOK_TEST_AMQP_URL not set)` and returns, and
//! fails instead when the `CI` variable is set, so that a CI run never counts a skip as a
//! pass. Each test declares its own random prefix and deletes its queues and exchange when it
//! ends, even after a failed assertion. The connection recovery test runs `rabbitmqctl`
//! against the local node to close one of its own connections.

mod consumer;
mod dead_letters;
mod publish;
mod support;
mod tiers;
