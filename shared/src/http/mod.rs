//! HTTP edge: the public webhook listener and the admin listener. Uses providers, storage
//! and the queue; never worker internals.

pub mod admin;
pub mod allowlist;
pub mod client_ip;
pub mod connection;
pub mod error;
pub mod health;
pub mod json_guard;
pub mod rate_limit;
pub mod server;
pub mod webhook;
