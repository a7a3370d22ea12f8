//! Hostile input against the running service over real sockets: slow and idle clients,
//! oversized and malformed requests, floods of bad signatures, and injection attempts.
//! Every case also sends a genuine signed webhook, which must be answered 200 within
//! [`helpers::GENUINE_LATENCY`], and ends by checking that exactly the genuine events were
//! stored.

mod bodies;
mod helpers;
mod raw;
mod routing;
mod slow_clients;
