//! The Italian CNS certificate model: the codice fiscale, the card id, the CNS authentication
//! certificate with its profile checks, and chain verification against caller-given anchors.
//!
//! A TS-CNS card (Tessera Sanitaria – Carta Nazionale dei Servizi) holds an X.509 authentication
//! certificate whose subject CN is `<codice fiscale>/<card id>.<hash>`. This crate reads such a
//! certificate ([`CnsCertificate`]), says how it departs from the CNS authentication profile
//! ([`CnsCertificate::conformance`]) and verifies its chain for TLS client authentication
//! ([`CnsCertificate::verify_chain`]). It does no I/O: bytes in, values out.
//!
//! ```
//! use tscns_cert::{CardId, CodiceFiscale, Sex};
//!
//! let cf: CodiceFiscale = "RSSMRA85T10A562S".parse()?;
//! assert_eq!(cf.sex(), Sex::Male);
//! assert!(!cf.is_omocodic());
//! // An omocodic variant (last digit 2 -> N) has the same canonical form.
//! let omo = CodiceFiscale::parse("RSSMRA85T10A56NH")?;
//! assert_eq!(omo.canonical(), cf);
//!
//! let id = CardId::parse("8038000000000009")?;
//! assert_eq!(id.card_type(), 8);
//! # Ok::<(), tscns_cert::Error>(())
//! ```
//!
//! Reading a card's authentication certificate, checking it against the profile and verifying its
//! chain against the CAs a deployment trusts (here the test CA committed with this crate):
//!
//! ```
//! use tscns_cert::{parse_certificates, CnsCertificate, Severity};
//! use tscns_cert::time::macros::datetime;
//!
//! let cert = CnsCertificate::from_bytes(include_bytes!("../tests/examples/cns-valid.der"))?;
//! let identity = cert.identity()?;
//! assert_eq!(identity.codice_fiscale.as_str(), "RSSMRA85T10A562S");
//! assert_eq!(identity.card_id.as_str(), "8038000000000009");
//!
//! let at = datetime!(2026-06-01 0:00 UTC);
//! assert!(cert.conformance(at).iter().all(|f| f.severity != Severity::Error));
//!
//! let anchors = parse_certificates(include_bytes!("../tests/examples/ca.pem"))?;
//! cert.verify_chain(&anchors, &[] as &[&[u8]], at)?;
//! # Ok::<(), tscns_cert::Error>(())
//! ```
//!
//! Finding codes are listed in [`codes`]; they are stable, messages may improve.
//!
//! The light signing core lives here too, so that whatever signs (the card, a PKCS#11 token, a seal
//! key) or needs a signature (TLS client authentication, a PDF seal) shares it without a TLS or HTTP
//! stack: [`sign::SigningKey`] with its [`sign::SignatureScheme`]s, and the one EMSA encoder
//! ([`emsa`]) with the one hash enum ([`emsa::HashAlg`]).
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

mod card_id;
mod certificate;
mod chain;
mod codice_fiscale;
mod conformance;
pub mod emsa;
mod error;
mod report;
pub mod sign;

pub use card_id::CardId;
pub use certificate::{
    oid, parse_certificates, CnParts, CnsCertificate, CnsIdentity, KeyInfo, CNS_POLICIES,
};
pub use codice_fiscale::{CodiceFiscale, Sex};
pub use conformance::{codes, Finding, Severity};
pub use error::Error;
pub use report::{CertificateReport, ChainReport, FindingReport, KeyReport};

/// Re-exported so callers can name dates without depending on `time` themselves.
pub use time;
