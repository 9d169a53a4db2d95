//! A map kept in memory and shared between threads, of at most a given number of entries (it is
//! emptied when full): the store's known parts and kept records, the extended font subsets.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A bounded map behind a lock (a panic elsewhere while it was held leaves it usable).
pub(crate) struct Kept<K, V> {
    map: Mutex<HashMap<K, V>>,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    /// An empty map of at most `max` entries.
    pub(crate) fn new(max: usize) -> Self {
        Kept {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value kept for `key`.
    pub(crate) fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.map().get(key).cloned()
    }

    /// Whether a value is kept for `key`.
    pub(crate) fn contains<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map().contains_key(key)
    }

    /// Keeps `value` for `key` (emptying the map first when it is full).
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut map = self.map();
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(key, value);
    }
}

impl<K, V> std::fmt::Debug for Kept<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map_or(0, |m| m.len());
        f.debug_struct("Kept").field("entries", &n).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_is_emptied_before_the_next_entry() {
        let kept: Kept<String, u32> = Kept::new(2);
        kept.insert("a".into(), 1);
        kept.insert("b".into(), 2);
        assert_eq!((kept.get("a"), kept.contains("b")), (Some(1), true));
        kept.insert("c".into(), 3);
        assert_eq!(
            (kept.get("a"), kept.get("b"), kept.get("c")),
            (None, None, Some(3))
        );
    }
}
