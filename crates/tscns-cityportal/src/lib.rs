//! The municipal registry services of the TS-CNS seed ("CityPortal"): **Certificazione**,
//! **Autocertificazione** and **Interrogazione Anagrafe**, modelled on ANPR's tables.
//!
//! - [`domain`]: ANPR codes and the one rule of who may get which certificate online, with which
//!   stamp duty ([`domain::eligibility`]); no I/O.
//! - [`registry`]: the registry fixture format (one JSON file per municipality, a contract with
//!   a JSON Schema, `registry.schema.json`); [`SAN_BENEDETTO_FIXTURE`] is the shipped one.
//! - [`store`]: the registry, issued certificates and self-declarations, used marche da bollo,
//!   sessions and the append-only audit log, on SQLite (`sqlite://PATH`, embedded, WAL) or
//!   PostgreSQL (`postgres://...`, several portal instances), one code path, migrations run at
//!   open.
//! - [`documents`]: certificate PDFs (PDF/A-2b, A4, Italian, embedded DejaVu Sans, QR code of
//!   `<portal>/verifica/<id>?codice=<code>`), the municipality's PAdES-B-B seal (the `cms` crate;
//!   the key is a [`tscns_cert::sign::SigningKey`]: a PKCS#8 file through [`documents::Pkcs8Key`] or an
//!   HSM through `tscns_pkcs11::Pkcs11Key`), [`documents::verify`], and self-declarations
//!   (DPR 445/2000 art. 46, no stamp, no seal).
//! - `client` (feature `client`): the citizen's program — the Cohesion smart-card login, then
//!   record, family, certificate options, sealed certificates (their seal checked against the
//!   seal CA the caller gives), self-declarations, verification, logout.
//! - [`issue`]: one certificate end to end — records, eligibility, PDF, seal, one store
//!   transaction.
//!
//! Who may get what (the rule the portal server and the citizen's client both call):
//!
//! ```
//! use tscns_cityportal::domain::{eligibility, CertificateKind, Purpose, StampDuty};
//! use tscns_cityportal::registry::Registry;
//! use tscns_cert::CodiceFiscale;
//!
//! let registry = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes())?;
//! let mario = registry.record(&CodiceFiscale::parse("RSSMRA80A01H501U")?).unwrap();
//! let today = time::macros::date!(2026 - 03 - 01);
//! let ok = eligibility(Some(&mario), &mario, CertificateKind::Residenza, &Purpose::ordinary(), today)?;
//! assert_eq!(ok.stamp_duty, StampDuty::Required { amount_cents: 1600 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Issuing, with a store and a seal key (`no_run`: it needs a key file):
//!
//! ```no_run
//! use tscns_cityportal::documents::Pkcs8Key;
//! use tscns_cityportal::domain::{CertificateKind, MarcaId, Purpose, Stamp};
//! use tscns_cityportal::issue::{issue_certificate, IssueRequest};
//! use tscns_cityportal::{registry::Registry, store::Store};
//! use tscns_cert::CodiceFiscale;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite://portal.db").await?;
//! store.import(&Registry::from_json(&std::fs::read("registry.json")?)?).await?;
//! let key = Pkcs8Key::from_files("seal.p8".as_ref(), "seal-chain.pem".as_ref())?;
//! let mario = CodiceFiscale::parse("RSSMRA80A01H501U")?;
//! let marca = Stamp::Marca(MarcaId::parse("01234567890123")?);
//! let certificate = issue_certificate(&store, &key, &IssueRequest {
//!     municipality: "H769",
//!     requester: &mario,
//!     auth_level: 4,
//!     remote_addr: "127.0.0.1",
//!     subject: &mario,
//!     kind: CertificateKind::Residenza,
//!     purpose: &Purpose::ordinary(),
//!     stamp: Some(&marca),
//!     portal_base_url: "https://portale.example",
//!     now: time::OffsetDateTime::now_utc(),
//! }).await?;
//! std::fs::write(format!("{}.pdf", certificate.id), &certificate.pdf)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
pub mod documents;
pub mod domain;
pub mod issue;
mod kept;
pub mod registry;
#[cfg(feature = "server")]
pub mod server;
pub mod store;

/// The shipped fixture: the registry of San Benedetto del Tronto (H769).
pub const SAN_BENEDETTO_FIXTURE: &str = include_str!("../fixtures/san-benedetto.json");
