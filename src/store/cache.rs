//! Small in-process caches for what busy endpoints read on every request and what rarely
//! changes: an API token's principal, a channel row, which conversation an integrator's
//! customer writes to (issue #4).
//!
//! An entry is used only while two things hold:
//!
//! - the store's *generation* ([`super::Store::generation`]) is still the one read *before* the
//!   entry was loaded. The store bumps it after every committed change to agents, API tokens,
//!   channel access or channels on this node (`Store::changed`), and the hub bumps it when
//!   another node announces an access change on the bus. A change made through this node is
//!   therefore seen by the very next request; and because the generation is read before the
//!   database, a load racing with a change is never kept past it.
//! - it is younger than the cache's time-to-live, which bounds how long a change made on
//!   another node can go unseen when the bus drops its announcement.
//!
//! Caches are bounded: when full they are emptied (they refill at the cost of one read each).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many entries a cache holds before it is emptied.
const MAX_ENTRIES: usize = 50_000;

struct Entry<V> {
    value: V,
    generation: u64,
    loaded: Instant,
}

/// A map whose entries expire with the store's generation and after a time-to-live.
pub struct Cache<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        // A panic while holding the lock cannot leave a half-written entry: use the map as it is.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for `key`, if it was loaded at `generation` and has not expired.
    pub fn get(&self, key: &K, generation: u64) -> Option<V> {
        let mut map = self.lock();
        match map.get(key) {
            Some(e) if e.generation == generation && e.loaded.elapsed() < self.ttl => Some(e.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keep `value`, loaded after the store's generation was read as `generation`.
    pub fn put(&self, key: K, value: V, generation: u64) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, Entry { value, generation, loaded: Instant::now() });
    }

    /// Change a cached value in place (its generation and age stay).
    pub fn update(&self, key: &K, f: impl FnOnce(&mut V)) {
        if let Some(e) = self.lock().get_mut(key) {
            f(&mut e.value);
        }
    }

    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Drop every entry for which `f` is true.
    pub fn remove_where(&self, f: impl Fn(&K, &V) -> bool) {
        self.lock().retain(|k, e| !f(k, &e.value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_its_generation_only() {
        let c: Cache<i64, &str> = Cache::new(Duration::from_secs(60));
        c.put(1, "one", 7);
        assert_eq!(c.get(&1, 7), Some("one"));
        assert_eq!(c.get(&1, 8), None, "a newer generation invalidates");
        assert_eq!(c.get(&1, 7), None, "and the entry is gone");
    }

    #[test]
    fn an_entry_expires_after_its_ttl() {
        let c: Cache<i64, &str> = Cache::new(Duration::ZERO);
        c.put(1, "one", 0);
        assert_eq!(c.get(&1, 0), None);
    }

    #[test]
    fn update_and_remove_where() {
        let c: Cache<i64, i64> = Cache::new(Duration::from_secs(60));
        c.put(1, 10, 0);
        c.put(2, 20, 0);
        c.update(&1, |v| *v += 1);
        assert_eq!(c.get(&1, 0), Some(11));
        c.remove_where(|_, v| *v == 20);
        assert_eq!(c.get(&2, 0), None);
        c.remove(&1);
        assert_eq!(c.get(&1, 0), None);
    }
}
