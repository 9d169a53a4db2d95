//! # tscns-tls
//!
//! TLS client authentication with a key that lives on the Italian TS-CNS card or in any PKCS#11
//! token: the citizen logs in to a portal through mutual TLS.
//!
//! - [`SigningKey`] (defined in [`tscns_cert::sign`], which needs no TLS stack): the trait both signers implement (the card driver `tscns-card` and the PKCS#11
//!   signer `tscns-pkcs11`, each behind its feature `tls`): certificate chain, key size, the schemes it
//!   can **really** produce, and `sign`.
//! - The rustls adapter (all in one module, [`rustls_glue`]): TLS 1.3 with RSA-PSS when the key can
//!   produce PSS (a raw-RSA card with a host-built PSS block counts, see [`padding`]), TLS 1.2 with
//!   PKCS#1 v1.5 otherwise — and a typed [`Error::NoCommonScheme`] instead of rustls's silently empty
//!   client certificate.
//! - The [`HostAllowlist`]: the certificate (which carries the codice fiscale) is presented only to
//!   hosts the caller allowed, by exact name, at every port or at the ports given (`host:port`).
//!   Over TLS 1.2 the certificate crosses the network **in clear**;
//!   [`AuthClient::certificate_sent_over`] says whether that happened, and [`TlsVersions::Tls13`]
//!   refuses it (see the [allowlist's documentation](HostAllowlist) for the details).
//! - [`AuthClient`] (feature `client`, on by default): a ready reqwest client (cookies on, timeouts set) that resumes TLS sessions, so
//!   repeated requests to a host cost the card one signature, not one per request.
//! - Feature `server`: a small HTTPS server requiring client certificates, for tests and examples.
//!
//! ```
//! use tscns_tls::{padding, HashAlg, HostAllowlist, SignatureScheme};
//!
//! // Only these hosts ever see the certificate.
//! let mut allow = HostAllowlist::new();
//! allow.allow("servizi.comune.example.it")?;
//! assert!(allow.allows("SERVIZI.comune.example.it."));
//! assert!(!allow.allows("tracker.example.com"));
//!
//! // A raw-RSA card signs a host-built EMSA-PSS block: that is what makes TLS 1.3 possible.
//! let block = padding::block_for_message(SignatureScheme::PssSha256, b"handshake", 2048)?;
//! assert_eq!(block.len(), 256);
//! assert_eq!(SignatureScheme::PssSha256.hash(), HashAlg::Sha256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a key (`Arc<dyn SigningKey>`), an HTTPS GET authenticated with the card:
//!
//! ```no_run
//! # async fn f(key: std::sync::Arc<dyn tscns_tls::SigningKey>) -> Result<(), tscns_tls::Error> {
//! let client = tscns_tls::AuthClientBuilder::new(key)
//!     .allow_host("servizi.comune.example.it")?
//!     .build()?;
//! let page = client.get("https://servizi.comune.example.it/area-riservata").await?;
//! println!("{} after {} card signature(s)", page.status(), client.signatures());
//! # Ok(()) }
//! ```
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

mod allowlist;
#[cfg(feature = "client")]
mod client;
mod error;
mod key;
pub mod padding;
pub mod rustls_glue;
mod scheme;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "test-pki")]
pub mod test_pki;

pub use allowlist::{normalize_host, HostAllowlist};
#[cfg(feature = "client")]
pub use client::{AuthClient, AuthClientBuilder, MAX_REDIRECTS};
pub use error::Error;
pub use key::{raw_rsa_schemes, SignError, SigningKey};
pub use rustls_glue::{ClientAuthFailure, ClientIdentity, TlsVersion, TlsVersions};
#[allow(deprecated)]
pub use scheme::HashAlgorithm;
pub use scheme::{HashAlg, SignatureScheme};

/// Re-export of the reqwest version this crate is built against (feature `client`).
#[cfg(feature = "client")]
pub use reqwest;
/// Re-export of the rustls version this crate is built against (reqwest must link the same one).
pub use rustls;
