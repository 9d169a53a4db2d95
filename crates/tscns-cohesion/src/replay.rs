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
    seen: Mutex<HashMap<String, OffsetDateTime>>,
}

/// Above this many live entries the store refuses new ones rather than grow without bound.
const MAX_ENTRIES: usize = 1_000_000;

impl ReplayStore for MemoryReplayStore {
    fn first_use(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= 1024 {
            seen.retain(|_, exp| *exp > now);
        }
        if seen.contains_key(id) || seen.len() >= MAX_ENTRIES {
            return false;
        }
        seen.insert(id.to_owned(), until);
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
}
