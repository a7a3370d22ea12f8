//! Idle tracking of one connection, so that a connection without a request in flight is
//! closed on time whatever the protocol does.
//!
//! hyper's own header read timeout covers HTTP/1 request heads, but not an HTTP/2 client
//! that trickles its preface or HEADERS frames, and hyper has no HTTP/1 idle timeout between
//! keep-alive requests. This watchdog closes a connection that has had no request in flight
//! for `first_request` since it opened (before its first request was dispatched) or for
//! `keep_alive` since its last response.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Requests in flight and the time the connection last became idle.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    served: AtomicBool,
    idle_since: Mutex<Instant>,
}

/// Marks one request as in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Activity {
    /// Creates the state of a connection that has just opened.
    pub fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
        }
    }

    /// Records the start of a request; the request ends when the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut idle_since = self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
        *idle_since = Instant::now();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Resolves once the connection has been idle for longer than allowed: `first_request`
    /// before any request was dispatched, `keep_alive` after one was.
    pub async fn idle_expired(&self, first_request: Duration, keep_alive: Duration) {
        loop {
            let limit = if self.served.load(Ordering::SeqCst) {
                keep_alive
            } else {
                first_request
            };
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                // The request timeout bounds a request, so checking again after one idle
                // period is soon enough.
                tokio::time::sleep(limit).await;
                continue;
            }
            let idle_since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
            let deadline = idle_since + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
            // The state is read again: a request may have started or ended while sleeping.
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                let idle_since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
                if Instant::now() >= idle_since + limit {
                    return;
                }
            }
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_millis(200);
    const KEEP_ALIVE: Duration = Duration::from_millis(500);

    #[tokio::test]
    async fn fresh_connection_expires_after_first_limit() {
        let activity = Activity::new();
        let started = Instant::now();

        activity.idle_expired(FIRST, KEEP_ALIVE).await;

        let elapsed = started.elapsed();
        assert!(elapsed >= FIRST, "{elapsed:?}");
        assert!(elapsed < KEEP_ALIVE, "{elapsed:?}");
    }

    #[tokio::test]
    async fn request_in_flight_keeps_connection() {
        let activity = Arc::new(Activity::new());
        let guard = activity.begin();
        let watcher = {
            let activity = activity.clone();
            tokio::spawn(async move {
                activity.idle_expired(FIRST, KEEP_ALIVE).await;
                Instant::now()
            })
        };
        tokio::time::sleep(KEEP_ALIVE * 2).await;
        assert!(!watcher.is_finished());
        let ended = Instant::now();

        drop(guard);
        let expired = watcher.await.unwrap();

        assert!(expired >= ended + KEEP_ALIVE, "{:?}", expired - ended);
        assert!(expired <= ended + KEEP_ALIVE * 3, "{:?}", expired - ended);
    }

    #[tokio::test]
    async fn keep_alive_limit_applies_after_request() {
        let activity = Arc::new(Activity::new());
        drop(activity.begin());
        let started = Instant::now();

        activity.idle_expired(FIRST, KEEP_ALIVE).await;

        assert!(started.elapsed() >= KEEP_ALIVE, "{:?}", started.elapsed());
    }
}
