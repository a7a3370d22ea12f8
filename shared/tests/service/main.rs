//! End-to-end tests of the service: the real listeners on port 0, a temporary SQLite
//! database, embedded workers, and HTTP requests signed like a provider would sign them.

mod helpers;
mod ingest_rejections;
mod stripe_flow;
