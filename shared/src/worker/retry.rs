//! Retry scheduling: exponential backoff with jitter, capped.

use std::time::Duration;

/// When failed events are tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Returns the delay after failed attempt number `attempt` (1-based): `base × 2^(attempt-1)`
    /// capped at `max_delay`, then scaled by a random factor in [0.5, 1.0] so that events
    /// failing together do not retry together.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
        let uncapped = self.base_delay.saturating_mul(1u32 << exponent);
        let capped = uncapped.min(self.max_delay);
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RetryPolicy;

    #[test]
    fn delay_doubles_within_jitter_bounds() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(4),
            max_delay: Duration::from_secs(60),
        };

        for (attempt, full) in [(1, 4), (2, 8), (3, 16), (4, 32), (5, 60), (40, 60)] {
            let delay = policy.delay(attempt);
            let full = Duration::from_secs(full);
            assert!(delay <= full, "attempt {attempt}: {delay:?} > {full:?}");
            assert!(
                delay >= full / 2,
                "attempt {attempt}: {delay:?} < half of {full:?}"
            );
        }
    }
}
