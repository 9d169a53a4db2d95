//! The hosts that may see the citizen's certificate.
//!
//! A CNS authentication certificate carries the citizen's name and codice fiscale: presenting it to a
//! server tells that server who is connecting. It is offered only to hosts the caller allowed, by exact
//! name (no wildcards); every other host gets a TLS connection with no client certificate at all.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::error::Error;

/// A set of host names and IP addresses allowed to receive the client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowlist {
    hosts: BTreeSet<String>,
}

impl HostAllowlist {
    /// An empty allowlist: the certificate is offered to nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `host` (a DNS name or an IP address, without scheme, port or path).
    pub fn allow(&mut self, host: &str) -> Result<(), Error> {
        let h = normalize_host(host)?;
        self.hosts.insert(h);
        Ok(())
    }

    /// Whether `host` may receive the certificate.
    pub fn allows(&self, host: &str) -> bool {
        normalize_host(host)
            .map(|h| self.hosts.contains(&h))
            .unwrap_or(false)
    }

    /// The allowed hosts, normalised (lower case, no trailing dot).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(String::as_str)
    }

    /// True when no host is allowed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// Normalises a host: lower case, no trailing dot, IPv6 without brackets, IP addresses canonical.
pub fn normalize_host(host: &str) -> Result<String, Error> {
    let bad = || Error::InvalidHost(host.to_string());
    let trimmed = host.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let h = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.is_empty() || h.len() > 253 || !h.split('.').all(valid_label) {
        return Err(bad());
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_names_only() {
        let mut a = HostAllowlist::new();
        a.allow("Portale.Comune.IT.").unwrap();
        a.allow("127.0.0.1").unwrap();
        a.allow("[::1]").unwrap();
        assert!(a.allows("portale.comune.it"));
        assert!(a.allows("PORTALE.comune.it."));
        assert!(a.allows("::1"));
        assert!(!a.allows("evil.portale.comune.it"));
        assert!(!a.allows("comune.it"));
        assert!(!a.allows("127.0.0.2"));
    }

    #[test]
    fn rejects_urls_ports_wildcards() {
        for h in [
            "https://a.it",
            "a.it:443",
            "*.a.it",
            "",
            "a..it",
            "a.it/x",
            "-a.it",
        ] {
            assert!(HostAllowlist::new().allow(h).is_err(), "{h}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_allows_what_it_accepted(s in "\\PC{0,40}") {
            let mut a = HostAllowlist::new();
            if a.allow(&s).is_ok() {
                prop_assert!(a.allows(&s));
            } else {
                prop_assert!(!a.allows(&s));
            }
        }
    }
}
