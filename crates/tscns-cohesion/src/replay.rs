//! Remembering which callback session ids were already redeemed.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

/// Where redeemed session ids are remembered. A multi-process site implements this over its shared
/// store (database, Redis); the default keeps them in this process's memory.
pub trait ReplayStore: Send + Sync {
    /// Records `id` as used until `until`. Returns `false` if it was already recorded (a replay).
    fn first_use(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> bool;
}

/// In-memory store, pruned of expired entries; bounded.
#[derive(Debug, Default)]
pub struct MemoryReplayStore {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashMap<String, OffsetDateTime>,
    /// Prune expired entries when the map reaches this size (amortised O(1) per insert).
    prune_at: usize,
}

/// Above this many live entries the store refuses new ones rather than grow without bound.
const MAX_ENTRIES: usize = 1_000_000;

impl ReplayStore for MemoryReplayStore {
    fn first_use(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.ids.len() >= seen.prune_at.max(1024) {
            seen.ids.retain(|_, exp| *exp > now);
            seen.prune_at = seen.ids.len() * 2;
        }
        if seen.ids.contains_key(id) || seen.ids.len() >= MAX_ENTRIES {
            return false;
        }
        seen.ids.insert(id.to_owned(), until);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_refused() {
        let s = MemoryReplayStore::default();
        let now = OffsetDateTime::UNIX_EPOCH;
        let until = now + time::Duration::hours(1);
        assert!(s.first_use("a", now, until));
        assert!(!s.first_use("a", now, until));
        assert!(s.first_use("b", now, until));
    }

    #[test]
    fn expired_entries_are_pruned() {
        let s = MemoryReplayStore::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for i in 0..2000 {
            assert!(s.first_use(&i.to_string(), t0, t0 + time::Duration::minutes(1)));
        }
        let later = t0 + time::Duration::hours(1);
        for i in 2000..4000 {
            assert!(s.first_use(&i.to_string(), later, later + time::Duration::minutes(1)));
        }
        assert!(s.seen.lock().unwrap().ids.len() < 4000);
        // Pruned ids are expired anyway; live ones are still refused.
        assert!(!s.first_use("3999", later, later));
    }
}
