//! Retry scheduling: exponential backoff with jitter, capped, or a fixed list of delay tiers.

use std::time::Duration;

/// When failed events are tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Fixed delays, shortest first. When set they replace the exponential backoff, so the
    /// stored retry time matches the RabbitMQ delay tier the message waits in.
    pub tiers: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            tiers: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// Returns the delay after failed attempt number `attempt` (1-based): `base × 2^(attempt-1)`
    /// capped at `max_delay`, then scaled by a random factor in [0.5, 1.0] so that events
    /// failing together do not retry together.
    /// With tiers, returns `tiers[min(attempt-1, len-1)]` without jitter.
    pub fn delay(&self, attempt: i32) -> Duration {
        if let Some(index) = self.tier_index(attempt) {
            return self.tiers[index];
        }
        let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
        let uncapped = self.base_delay.saturating_mul(1u32 << exponent);
        let capped = uncapped.min(self.max_delay);
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// Returns the index of the tier that follows failed attempt `attempt` (1-based), or
    /// `None` when no tiers are configured.
    pub fn tier_index(&self, attempt: i32) -> Option<usize> {
        let last = self.tiers.len().checked_sub(1)?;
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0);
        Some(index.min(last))
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
            tiers: Vec::new(),
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

    #[test]
    fn tiers_replace_backoff_exactly() {
        let policy = RetryPolicy {
            tiers: vec![
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_secs(60),
            ],
            ..RetryPolicy::default()
        };

        let expected = [(0, 1), (1, 1), (2, 3), (3, 60), (4, 60), (40, 60)];
        for (attempt, seconds) in expected {
            assert_eq!(
                policy.delay(attempt),
                Duration::from_secs(seconds),
                "attempt {attempt}"
            );
        }
        assert_eq!(policy.tier_index(1), Some(0));
        assert_eq!(policy.tier_index(9), Some(2));
        assert_eq!(RetryPolicy::default().tier_index(1), None);
    }
}
