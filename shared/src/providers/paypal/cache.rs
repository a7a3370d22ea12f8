//! Validated certificate keys, cached by URL until the certificate expires.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::certs::LeafKey;

/// Default number of certificate URLs kept; PayPal rotates its certificate rarely.
pub const DEFAULT_CACHE_CAPACITY: usize = 32;

/// A bounded map from certificate URL to its validated leaf key.
#[derive(Debug)]
pub(crate) struct CertCache {
    entries: Mutex<HashMap<String, LeafKey>>,
    capacity: usize,
}

impl CertCache {
    pub(crate) fn new(capacity: usize) -> Self {
        CertCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Returns the cached key for `url` if its certificate is valid at `now`.
    pub(crate) fn get(&self, url: &str, now: DateTime<Utc>) -> Option<LeafKey> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        entries
            .get(url)
            .filter(|key| key.not_before <= now && now <= key.not_after)
            .cloned()
    }

    /// Stores a key, first dropping expired entries and then, when full, the entry that
    /// expires soonest.
    pub(crate) fn insert(&self, url: &str, key: LeafKey, now: DateTime<Utc>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        entries.retain(|_, cached| cached.not_after >= now);
        if entries.len() >= self.capacity && !entries.contains_key(url) {
            let soonest = entries
                .iter()
                .min_by_key(|(_, cached)| cached.not_after)
                .map(|(url, _)| url.clone());
            if let Some(soonest) = soonest {
                entries.remove(&soonest);
            }
        }
        entries.insert(url.to_string(), key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(not_after: i64) -> LeafKey {
        LeafKey {
            public_key: vec![1, 2, 3],
            not_before: DateTime::from_timestamp(0, 0).unwrap(),
            not_after: DateTime::from_timestamp(not_after, 0).unwrap(),
        }
    }

    #[test]
    fn cache_respects_expiry_and_capacity() {
        let cache = CertCache::new(2);
        let now = DateTime::from_timestamp(100, 0).unwrap();
        let later = DateTime::from_timestamp(250, 0).unwrap();

        cache.insert("a", key(200), now);
        cache.insert("b", key(300), now);
        cache.insert("c", key(400), now);

        assert!(cache.get("a", now).is_none(), "soonest expiry is evicted");
        assert!(cache.get("b", now).is_some());
        assert!(cache.get("c", now).is_some());
        assert!(
            cache
                .get("b", DateTime::from_timestamp(301, 0).unwrap())
                .is_none()
        );
        assert!(cache.get("c", later).is_some());
    }
}
