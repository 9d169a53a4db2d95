//! Remembering which callbacks were already redeemed.
//!
//! A callback is claimed only **after** Cohesion confirmed it (GetCredential answered with a valid,
//! checked profile), so forged callbacks never reach the store; the claim is keyed on both session
//! ids (`id_sessione_sso` and `id_sessione_aspnet_sso`, which GetCredential takes together); and a
//! store that is full answers [`Claim::StoreFull`], never "replay".

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

/// What a [`ReplayStore`] answers to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// First use: recorded.
    Fresh,
    /// Already recorded and not yet expired: a replay.
    Replayed,
    /// The store cannot record one more entry (even after dropping the expired ones). Not a replay:
    /// the login is refused with [`Error::ReplayStoreFull`](crate::Error::ReplayStoreFull).
    StoreFull,
}

/// Where redeemed callbacks are remembered. A multi-process site implements this over its shared
/// store (database, Redis); the default keeps them in this process's memory.
///
/// The `id` the service provider passes is a fixed-length digest of both session ids (64 hex
/// characters), so an implementation may store it as is.
pub trait ReplayStore: Send + Sync {
    /// Records `id` as used until `until`. Returns `false` if it was already recorded (a replay).
    fn first_use(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> bool;

    /// Like [`first_use`](Self::first_use), with a third answer for a full store. The default
    /// forwards to `first_use` (a store that cannot be full); bounded stores override it.
    fn claim(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> Claim {
        if self.first_use(id, now, until) {
            Claim::Fresh
        } else {
            Claim::Replayed
        }
    }
}

/// In-memory store, bounded; expired entries are dropped as it grows and whenever it is full.
#[derive(Debug)]
pub struct MemoryReplayStore {
    seen: Mutex<Seen>,
    capacity: usize,
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashMap<String, OffsetDateTime>,
    /// Prune expired entries when the map reaches this size (amortised O(1) per insert).
    prune_at: usize,
}

/// Default bound on live entries: one per verified login within the token lifetime.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

impl MemoryReplayStore {
    /// A store holding at most `capacity` live (unexpired) entries (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryReplayStore {
            seen: Mutex::new(Seen::default()),
            capacity: capacity.max(1),
        }
    }

    /// Live entries now held (expired ones may be counted until the next prune).
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    fn first_use(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> bool {
        self.claim(id, now, until) == Claim::Fresh
    }

    fn claim(&self, id: &str, now: OffsetDateTime, until: OffsetDateTime) -> Claim {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let prune = |seen: &mut Seen| {
            seen.ids.retain(|_, exp| *exp > now);
            seen.prune_at = (seen.ids.len() * 2).max(1024);
        };
        if seen.ids.len() >= seen.prune_at.max(1024) {
            prune(&mut seen);
        }
        if let Some(exp) = seen.ids.get(id) {
            if *exp > now {
                return Claim::Replayed;
            }
        }
        if seen.ids.len() >= self.capacity {
            prune(&mut seen);
            if seen.ids.len() >= self.capacity {
                return Claim::StoreFull;
            }
        }
        seen.ids.insert(id.to_owned(), until);
        Claim::Fresh
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
        assert!(s.len() < 4000);
        // Pruned ids are expired anyway; live ones are still refused.
        assert!(!s.first_use("3999", later, later));
    }

    #[test]
    fn a_full_store_says_full_not_replay_and_recovers_once_entries_expire() {
        let s = MemoryReplayStore::with_capacity(3);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let until = t0 + time::Duration::minutes(5);
        for id in ["a", "b", "c"] {
            assert_eq!(s.claim(id, t0, until), Claim::Fresh);
        }
        assert_eq!(s.claim("d", t0, until), Claim::StoreFull);
        assert_eq!(s.claim("a", t0, until), Claim::Replayed);
        // Once the entries expire, the full store evicts them instead of refusing forever.
        let later = until + time::Duration::seconds(1);
        assert_eq!(
            s.claim("d", later, later + time::Duration::minutes(5)),
            Claim::Fresh
        );
        assert_eq!(s.len(), 1);
        // An expired id may be used again (Cohesion's token is dead by then anyway).
        assert_eq!(
            s.claim("a", later, later + time::Duration::minutes(5)),
            Claim::Fresh
        );
    }
}
