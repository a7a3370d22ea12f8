//! Rate limiting for repeated log lines, so a flood of bad requests cannot flood the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows one log line per interval and counts the lines it suppressed in between.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    /// Creates a limiter that allows one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Returns `Some(suppressed)` when a line may be logged now, with the number of lines
    /// suppressed since the last one; `None` when this line should be dropped.
    pub fn check(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = state
            .0
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if due {
            let suppressed = state.1;
            *state = (Some(now), 0);
            Some(suppressed)
        } else {
            state.1 += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::LogLimiter;

    #[test]
    fn limiter_counts_suppressed_lines() {
        let limiter = LogLimiter::new(Duration::from_secs(3600));

        assert_eq!(limiter.check(), Some(0));
        assert_eq!(limiter.check(), None);
        assert_eq!(limiter.check(), None);
    }
}
