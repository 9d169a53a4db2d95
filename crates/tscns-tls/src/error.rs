//! The error type of tscns-tls.

use crate::key::SignError;

/// Everything that can go wrong authenticating a TLS connection with a card or token key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server asked for a client certificate, but with no signature scheme the key can produce.
    /// (rustls would otherwise silently send an empty certificate.)
    #[error(
        "the server {host} asked for a client certificate signed with {offered}, but this key can only \
         sign with {supported}{hint}"
    )]
    NoCommonScheme {
        /// The server's host.
        host: String,
        /// What the server offered (TLS names), comma separated.
        offered: String,
        /// What the key can produce, comma separated.
        supported: String,
        /// Extra advice, empty or starting with "; ".
        hint: String,
    },
    /// TLS 1.3 was required, but the key cannot produce RSA-PSS signatures.
    #[error(
        "TLS 1.3 needs RSA-PSS signatures, which this key cannot produce (it can sign with {supported}): \
         use TLS 1.2"
    )]
    Tls13NeedsPss {
        /// What the key can produce.
        supported: String,
    },
    /// TLS 1.3 was required ([`TlsVersions::Tls13`](crate::TlsVersions::Tls13)) and the server
    /// cannot speak it: the certificate was not sent (over TLS 1.2 it would travel in clear).
    #[error(
        "the server {host} does not speak TLS 1.3, which was required: the certificate was not sent \
         (over TLS 1.2 the citizen's name and codice fiscale would travel in clear) ({reason})"
    )]
    Tls13Required {
        /// The server's host.
        host: String,
        /// What rustls said.
        reason: String,
    },
    /// The key (card or token) failed to sign the handshake. `source` is the signer's own typed error
    /// (for example `tscns_pkcs11::Error` or the card driver's error): downcast it to act on it.
    #[error("the key could not sign the TLS handshake with {host}: {source}")]
    Signing {
        /// The server's host.
        host: String,
        /// The signer's error.
        #[source]
        source: SignError,
    },
    /// The server refused the handshake (for example it did not accept our certificate).
    #[error("the server {host} refused the TLS handshake: {reason}")]
    HandshakeRefused {
        /// The server's host.
        host: String,
        /// What the server or rustls said.
        reason: String,
    },
    /// The server's certificate is not trusted (trust the CA that issued it, or check the host name).
    #[error("the server {host} is not trusted: {reason} (trust the CA that issued its certificate, or check the host name)")]
    UntrustedServer {
        /// The server's host.
        host: String,
        /// Why rustls rejected it.
        reason: String,
    },
    /// An allowlist entry is not a plain host name or IP address, optionally with a port.
    #[error("{0:?} is not a host name or IP address (give it without scheme or path, e.g. `portale.comune.it` or `portale.comune.it:8443`)")]
    InvalidHost(String),
    /// A URL could not be parsed or has no host.
    #[error("{0:?} is not an https URL with a host")]
    InvalidUrl(String),
    /// The key has no certificate, or its certificate is not a usable RSA certificate.
    #[error("the key has no usable certificate: {0}")]
    BadCertificate(String),
    /// A CA file could not be read or holds no certificate.
    #[error("cannot use {path} as a CA file: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No trust anchors: the caller gave none and the system's certificate store is empty.
    #[error(
        "no trusted CA certificates: neither given nor found in the system's certificate store"
    )]
    NoTrustAnchors,
    /// The TLS configuration could not be built.
    #[error("TLS configuration error: {0}")]
    Config(String),
    /// More than the allowed number of redirects.
    #[error("too many redirects (more than {0}) starting from {1}")]
    TooManyRedirects(usize, String),
    /// Any other HTTP failure (connection refused, timeout, bad response).
    #[cfg(feature = "client")]
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
}
