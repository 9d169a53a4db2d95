//! Per-client token buckets for callbacks Cohesion has not confirmed.
//!
//! One global bucket let one attacker starve every citizen: about `per_second` forged POSTs a
//! second from a single address kept it empty, and every real login was then refused as
//! rate-limited. Each client (an IPv4 address, an IPv6 /64, which is what one subscriber usually
//! holds) now has its own bucket, so a flood from one client costs only that client. The map of
//! buckets is bounded: when it is full, buckets that have refilled completely are dropped first
//! (forgetting them changes nothing), then the least recently used ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::error::{Error, Result};

/// The client a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(u32),
    /// The /64 prefix of an IPv6 address.
    V6(u64),
    /// Callers that could not say who the client is share one bucket.
    Unknown,
}

impl ClientKey {
    pub(crate) fn of(addr: Option<IpAddr>) -> Self {
        match addr {
            None => ClientKey::Unknown,
            Some(IpAddr::V4(a)) => ClientKey::V4(u32::from(a)),
            Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(u32::from(v4)),
                None => ClientKey::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// How a client address is counted by rate limits: an IPv4 address (an IPv4-mapped IPv6 one
/// included) as itself, an IPv6 address by its /64 (`2001:db8:1:2::/64`: what one subscriber
/// usually holds, so rotating addresses inside it gains nothing). The same key as the buckets of
/// [`ServiceProvider::redeem_from`](crate::ServiceProvider::redeem_from), as text, for limits an
/// application keeps elsewhere (a portal's store).
pub fn client_prefix(addr: IpAddr) -> String {
    match ClientKey::of(Some(addr)) {
        ClientKey::V4(a) => std::net::Ipv4Addr::from(a).to_string(),
        ClientKey::V6(p) => format!("{}/64", std::net::Ipv6Addr::from(u128::from(p) << 64)),
        ClientKey::Unknown => addr.to_string(),
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// Last refill (never goes back).
    at: OffsetDateTime,
    /// Last use, for the least-recently-used eviction.
    used: OffsetDateTime,
}

/// Token buckets per client, bounded in number.
pub(crate) struct RateLimiter {
    burst: f64,
    per_second: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(burst: u32, per_second: u32, max_clients: usize) -> Self {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second),
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, b: &mut Bucket, now: OffsetDateTime) {
        let elapsed = (now - b.at).as_seconds_f64().max(0.0);
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        if now > b.at {
            b.at = now;
        }
    }

    /// Makes room for one more client: drops full buckets, then the least recently used quarter.
    fn evict(&self, map: &mut HashMap<ClientKey, Bucket>, now: OffsetDateTime) {
        map.retain(|_, b| {
            self.refill(b, now);
            b.tokens < self.burst
        });
        if map.len() < self.max_clients {
            return;
        }
        let mut used: Vec<OffsetDateTime> = map.values().map(|b| b.used).collect();
        let cut = (used.len() / 4).max(1).min(used.len() - 1);
        let (_, &mut cutoff, _) = used.select_nth_unstable(cut);
        map.retain(|_, b| b.used > cutoff);
        // Many buckets with the same last use: drop arbitrary ones until there is room.
        while map.len() >= self.max_clients {
            let Some(k) = map.keys().next().copied() else {
                break;
            };
            map.remove(&k);
        }
    }

    /// Takes a token of `client`'s bucket, or [`Error::RateLimited`].
    pub(crate) fn take(&self, client: ClientKey, now: OffsetDateTime) -> Result<()> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&client) && map.len() >= self.max_clients {
            self.evict(&mut map, now);
        }
        let b = map.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            used: now,
        });
        self.refill(b, now);
        if now > b.used {
            b.used = now;
        }
        if b.tokens < 1.0 {
            return Err(Error::RateLimited);
        }
        b.tokens -= 1.0;
        Ok(())
    }

    /// Gives the token back to `client` (its callback was confirmed by Cohesion).
    pub(crate) fn give_back(&self, client: ClientKey) {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = map.get_mut(&client) {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }

    #[cfg(test)]
    fn clients(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8) -> ClientKey {
        ClientKey::of(Some(IpAddr::V4(Ipv4Addr::new(10, 0, a, b))))
    }

    #[test]
    fn refills_and_gives_back() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let l = RateLimiter::new(2, 1, 16);
        let c = ClientKey::Unknown;
        l.take(c, t0).unwrap();
        l.take(c, t0).unwrap();
        assert!(matches!(l.take(c, t0), Err(Error::RateLimited)));
        l.give_back(c);
        l.take(c, t0).unwrap();
        assert!(matches!(l.take(c, t0), Err(Error::RateLimited)));
        l.take(c, t0 + time::Duration::seconds(1)).unwrap();
        // A clock going back refills nothing and does not panic.
        assert!(matches!(l.take(c, t0), Err(Error::RateLimited)));
        // Refill is capped at the burst.
        let later = t0 + time::Duration::hours(1);
        l.take(c, later).unwrap();
        l.take(c, later).unwrap();
        assert!(matches!(l.take(c, later), Err(Error::RateLimited)));
    }

    #[test]
    fn one_client_flooding_leaves_the_others_their_tokens() {
        // Before the fix the bucket was global: the flood emptied it for everybody.
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let l = RateLimiter::new(4, 1, 16);
        let attacker = v4(0, 1);
        let refused = (0..100).filter(|_| l.take(attacker, t0).is_err()).count();
        assert_eq!(refused, 96);
        for _ in 0..4 {
            l.take(v4(0, 2), t0).unwrap();
        }
        assert!(matches!(l.take(v4(0, 2), t0), Err(Error::RateLimited)));
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_ipv4_is_ipv4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(
            ClientKey::of(Some(IpAddr::V6(a))),
            ClientKey::of(Some(IpAddr::V6(b)))
        );
        assert_ne!(
            ClientKey::of(Some(IpAddr::V6(a))),
            ClientKey::of(Some(IpAddr::V6(c)))
        );
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(IpAddr::V6(mapped))), v4(0, 1));
        assert_ne!(ClientKey::of(None), v4(0, 1));
    }

    #[test]
    fn the_map_of_clients_is_bounded_and_evicts_full_then_least_recent() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let l = RateLimiter::new(2, 1, 8);
        // Eight clients spend a token each at successive seconds... the map is full.
        for i in 0..8u8 {
            l.take(
                v4(1, i),
                t0 + time::Duration::milliseconds(i64::from(i) * 10),
            )
            .unwrap();
        }
        assert_eq!(l.clients(), 8);
        // ... a flood from thousands of addresses never grows it past the bound.
        for i in 0..5000u32 {
            let k = ClientKey::V4(0x0b00_0000 + i);
            let _ = l.take(k, t0 + time::Duration::milliseconds(100));
            assert!(l.clients() <= 8);
        }
        // A client whose bucket was forgotten starts with a full one (never worse off).
        l.take(v4(1, 0), t0 + time::Duration::milliseconds(200))
            .unwrap();
        // Buckets that refilled completely are dropped before any in use.
        let l = RateLimiter::new(2, 1, 2);
        l.take(v4(2, 1), t0).unwrap();
        l.take(v4(2, 1), t0).unwrap(); // empty: in use
        l.take(v4(2, 2), t0).unwrap();
        let later = t0 + time::Duration::seconds(1);
        // v4(2,2) is full again at `later`, v4(2,1) is not: the newcomer evicts v4(2,2).
        l.take(v4(2, 3), later).unwrap();
        assert_eq!(l.clients(), 2);
        l.take(v4(2, 1), later).unwrap();
        assert!(matches!(l.take(v4(2, 1), later), Err(Error::RateLimited)));
    }
}
