//! A token bucket per source IP that limits how many signature failures one address may
//! cause. Only failures take tokens, so verified deliveries are never limited by it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Settings of [`FailureLimiter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureLimit {
    /// Failures allowed at once from a fresh address.
    pub burst: u32,
    /// Failures regained per minute; 0 disables the limiter.
    pub per_minute: u32,
    /// Addresses tracked at once; the least recently seen are evicted beyond this.
    pub max_addresses: usize,
}

impl Default for FailureLimit {
    fn default() -> Self {
        FailureLimit {
            burst: 20,
            per_minute: 60,
            max_addresses: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Per-address token buckets of signature failures, in a map of bounded size.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: FailureLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl FailureLimiter {
    /// Creates a limiter with empty history.
    pub fn new(limit: FailureLimit) -> Self {
        FailureLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Records one failure from `ip` at `now`. Returns `Err` with the time until the next
    /// failure would be allowed when the address has no tokens left.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.limit.per_minute == 0 || self.limit.max_addresses == 0 {
            return Ok(());
        }
        let key = bucket_key(ip);
        let burst = f64::from(self.limit.burst.max(1));
        let per_second = f64::from(self.limit.per_minute) / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.limit.max_addresses {
            self.evict(&mut buckets, now, burst, per_second);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / per_second;
        Err(Duration::from_secs_f64(wait))
    }

    /// Returns the number of tracked addresses.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Drops every bucket that has refilled completely, because such an address behaves
    /// like a new one. When none has, drops the least recently updated bucket.
    fn evict(
        &self,
        buckets: &mut HashMap<IpAddr, Bucket>,
        now: Instant,
        burst: f64,
        per_second: f64,
    ) {
        buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * per_second < burst
        });
        if buckets.len() < self.limit.max_addresses {
            return;
        }
        let oldest = buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.updated)
            .map(|(ip, _)| *ip);
        if let Some(ip) = oldest {
            buckets.remove(&ip);
        }
    }
}

/// Returns the bucket key of an address: IPv4 addresses as they are, IPv6 addresses by
/// their /64 network, because one client usually controls a whole /64.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & (u128::MAX << 64);
                IpAddr::V6(network.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, per_minute: u32, max_addresses: usize) -> FailureLimiter {
        FailureLimiter::new(FailureLimit {
            burst,
            per_minute,
            max_addresses,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn burst_then_limited_with_wait() {
        let limiter = limiter(3, 60, 100);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.record_failure(ip("192.0.2.1"), now), Ok(()));
        }

        let wait = limiter.record_failure(ip("192.0.2.1"), now).unwrap_err();

        assert!(wait > Duration::from_millis(900), "{wait:?}");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
    }

    #[test]
    fn tokens_refill_over_time() {
        let limiter = limiter(1, 60, 100);
        let start = Instant::now();
        assert!(limiter.record_failure(ip("192.0.2.1"), start).is_ok());
        assert!(limiter.record_failure(ip("192.0.2.1"), start).is_err());

        let later = start + Duration::from_millis(1100);

        assert!(limiter.record_failure(ip("192.0.2.1"), later).is_ok());
    }

    #[test]
    fn addresses_are_limited_separately() {
        let limiter = limiter(1, 60, 100);
        let now = Instant::now();
        assert!(limiter.record_failure(ip("192.0.2.1"), now).is_ok());
        assert!(limiter.record_failure(ip("192.0.2.1"), now).is_err());

        assert!(limiter.record_failure(ip("192.0.2.2"), now).is_ok());
    }

    #[test]
    fn ipv6_shares_bucket_per_64() {
        let limiter = limiter(1, 60, 100);
        let now = Instant::now();
        assert!(limiter.record_failure(ip("2001:db8:1:2::1"), now).is_ok());

        assert!(
            limiter
                .record_failure(ip("2001:db8:1:2::ffff"), now)
                .is_err()
        );
        assert!(limiter.record_failure(ip("2001:db8:1:3::1"), now).is_ok());
    }

    #[test]
    fn map_size_stays_bounded() {
        let limiter = limiter(2, 60, 50);
        let now = Instant::now();
        for n in 0..1000u32 {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            let _ = limiter.record_failure(address, now);
        }

        assert!(limiter.tracked() <= 50, "{}", limiter.tracked());
    }

    #[test]
    fn zero_rate_disables_limit() {
        let limiter = limiter(1, 0, 100);
        let now = Instant::now();
        for _ in 0..100 {
            assert!(limiter.record_failure(ip("192.0.2.1"), now).is_ok());
        }
    }
}
