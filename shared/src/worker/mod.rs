//! Workers: claim → handler → one transaction → acknowledge, with retries and dead events.

pub mod consumer;
pub mod embedded;
pub mod operator;
pub mod process;
pub mod retry;
pub mod sweeper;
