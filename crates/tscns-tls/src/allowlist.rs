//! The hosts that may see the citizen's certificate.
//!
//! A CNS authentication certificate carries the citizen's name and codice fiscale: presenting it to a
//! server tells that server who is connecting. It is offered only to hosts the caller allowed, by exact
//! name (no wildcards); every other host gets a TLS connection with no client certificate at all.
//!
//! An entry is a bare `host` (every port of that host) or `host:port` (that port only; IPv6 as
//! `[::1]:8443`). Allowing the host of a URL the user typed should pin that URL's port, so that
//! another service on the same machine does not learn who the citizen is.
//!
//! # Who else sees the certificate: TLS 1.2 sends it in clear
//!
//! The allowlist decides which *servers* receive the certificate. Whether anyone *on the path* also
//! reads it depends on the protocol version:
//! - In **TLS 1.2** the client's `Certificate` message travels unencrypted (RFC 5246 §7.4.6): the
//!   citizen's name and codice fiscale are visible to every network hop between the citizen and the
//!   server (Wi-Fi, the ISP, a proxy).
//! - In **TLS 1.3** it is encrypted under the handshake keys (RFC 8446 §4.4.2), so only the server
//!   reads it. TLS 1.3's downgrade protection (RFC 8446 §4.1.3) means that with
//!   [`TlsVersions::Auto`](crate::TlsVersions::Auto) an attacker cannot push a connection down to
//!   1.2: it falls back to 1.2 only with a server that really cannot speak 1.3.
//!
//! [`AuthClient::certificate_sent_over`](crate::AuthClient::certificate_sent_over) reports which
//! versions carried the certificate, so a program can warn the citizen, and
//! [`TlsVersions::Tls13`](crate::TlsVersions::Tls13) refuses to send it over anything older
//! ([`Error::Tls13Required`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::error::Error;

/// The ports of one allowed host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    /// Every port (a bare `host` entry).
    Any,
    /// Only these (`host:port` entries).
    Only(BTreeSet<u16>),
}

/// A set of host names and IP addresses, each at every port or at given ports, allowed to receive
/// the client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowlist {
    hosts: BTreeMap<String, Ports>,
}

impl HostAllowlist {
    /// An empty allowlist: the certificate is offered to nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `entry`: a DNS name or an IP address (every port), or `host:port` (that port only; an
    /// IPv6 address with a port in brackets, `[::1]:8443`). No scheme, path or wildcard.
    pub fn allow(&mut self, entry: &str) -> Result<(), Error> {
        let (host, port) = split_entry(entry)?;
        match port {
            None => {
                self.hosts.insert(host, Ports::Any);
            }
            Some(port) => match self
                .hosts
                .entry(host)
                .or_insert_with(|| Ports::Only(BTreeSet::new()))
            {
                Ports::Any => {}
                Ports::Only(ports) => {
                    ports.insert(port);
                }
            },
        }
        Ok(())
    }

    /// Whether `entry` may receive the certificate: `host:port` asks about that port, a bare `host`
    /// about every port of it (true only for a host allowed without a port).
    pub fn allows(&self, entry: &str) -> bool {
        match split_entry(entry) {
            Ok((host, Some(port))) => self.allows_at(&host, port),
            Ok((host, None)) => matches!(self.hosts.get(&host), Some(Ports::Any)),
            Err(_) => false,
        }
    }

    /// Whether `host` (a name or an IP address, without port) may receive the certificate when
    /// connected to at `port`.
    pub fn allows_at(&self, host: &str, port: u16) -> bool {
        let Ok(host) = normalize_host(host) else {
            return false;
        };
        match self.hosts.get(&host) {
            Some(Ports::Any) => true,
            Some(Ports::Only(ports)) => ports.contains(&port),
            None => false,
        }
    }

    /// The allowed hosts (at every port or at some), normalised (lower case, no trailing dot).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// True when no host is allowed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// Splits an allowlist entry into its normalised host and its port, if it names one.
fn split_entry(entry: &str) -> Result<(String, Option<u16>), Error> {
    let bad = || Error::InvalidHost(entry.to_string());
    let trimmed = entry.trim();
    let port = |p: &str| match p.parse::<u16>() {
        Ok(port) if port != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(bad()),
    };
    if let Some(rest) = trimmed.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (inside, after) = rest.split_once(']').ok_or_else(bad)?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        let host = normalize_host(inside)?;
        return match after {
            "" => Ok((host, None)),
            _ => Ok((host, Some(port(after.strip_prefix(':').ok_or_else(bad)?)?))),
        };
    }
    match trimmed.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((h, _)) if h.contains(':') => Ok((normalize_host(trimmed)?, None)),
        Some((h, p)) => Ok((normalize_host(h).map_err(|_| bad())?, Some(port(p)?))),
        None => Ok((normalize_host(trimmed)?, None)),
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
    fn a_bare_host_is_every_port_a_host_port_entry_only_that_port() {
        let mut a = HostAllowlist::new();
        a.allow("portale.comune.it").unwrap();
        a.allow("idp.example.it:8443").unwrap();
        a.allow("IDP.example.it.:9443").unwrap();
        a.allow("[::1]:4443").unwrap();
        a.allow("127.0.0.1:443").unwrap();
        assert!(a.allows_at("portale.comune.it", 443));
        assert!(a.allows_at("portale.comune.it", 8080));
        assert!(a.allows("portale.comune.it:8080"));
        assert!(a.allows_at("idp.example.it", 8443));
        assert!(a.allows_at("idp.example.it", 9443));
        assert!(a.allows("idp.example.it:9443"));
        assert!(!a.allows_at("idp.example.it", 443));
        assert!(!a.allows("idp.example.it"), "not every port of it");
        assert!(a.allows_at("::1", 4443));
        assert!(a.allows_at("[::1]", 4443));
        assert!(a.allows("[::1]:4443"));
        assert!(!a.allows_at("::1", 443));
        assert!(a.allows_at("127.0.0.1", 443));
        assert!(!a.allows_at("127.0.0.1", 8443));
        assert_eq!(
            a.hosts().collect::<Vec<_>>(),
            ["127.0.0.1", "::1", "idp.example.it", "portale.comune.it"]
        );
        // A bare entry widens a port entry to every port, and a later port entry keeps it wide.
        a.allow("idp.example.it").unwrap();
        a.allow("idp.example.it:1").unwrap();
        assert!(a.allows_at("idp.example.it", 443));
    }

    #[test]
    fn rejects_urls_bad_ports_wildcards() {
        for h in [
            "https://a.it",
            "a.it:0",
            "a.it:",
            "a.it:65536",
            "a.it:+443",
            "a.it:443:1",
            "[::1]443",
            "[a.it]:443",
            "[::1",
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

        #[test]
        fn a_port_entry_allows_that_port_only(port in 1u16.., other in 1u16..) {
            let mut a = HostAllowlist::new();
            a.allow(&format!("portale.comune.it:{port}")).unwrap();
            prop_assert!(a.allows_at("portale.comune.it", port));
            prop_assert_eq!(a.allows_at("portale.comune.it", other), other == port);
        }
    }
}
