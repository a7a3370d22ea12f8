//! Workers: claim → handler → one transaction → acknowledge, with retries and dead events.

pub mod embedded;
pub mod process;
pub mod retry;
