//! HTTP edge: the public webhook listener and the admin listener. Uses providers, storage
//! and the queue; never worker internals.

pub mod admin;
pub mod client_ip;
pub mod error;
pub mod health;
pub mod server;
pub mod webhook;
