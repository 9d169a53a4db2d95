//! # tscns
//!
//! Use the Italian health-and-services smart card (Tessera Sanitaria – Carta Nazionale dei Servizi,
//! "TS-CNS") from Rust, the way a citizen uses it by hand: card transport, the CNS card application,
//! the CNS certificate model, signing (card or PKCS#11), TLS client authentication and the Cohesion
//! single sign-on.
//!
//! This facade re-exports the member crates so one dependency brings the whole stack:
//!
//! | module | crate | what it owns |
//! |---|---|---|
//! | [`apdu`] | `tscns-apdu` | ISO 7816-4 APDUs, status words, the `Transport` trait, the PC/SC backend |
//! | [`cert`] | `tscns-cert` | codice fiscale, card id, the CNS certificate profile and chain checks, the signing-key trait and EMSA encoder |
//! | [`generations`] | `tscns-generations` | every known card generation as data (ATR test, AID, file layout and select mode, PIN/PUK references, key reference, lengths, signing sequence), read by the driver and the simulator |
//! | [`card`] | `tscns-card` | the CNS card application: recognition, identity, PIN, on-card RSA signing |
//! | [`tls`] | `tscns-tls` | TLS client authentication with the card's key: rustls adapter, host allowlist, reqwest client (feature `client`) |
//! | [`pkcs11`] | `tscns-pkcs11` | signing through a PKCS#11 module (OpenSC, vendor modules, SoftHSM2) |
//! | [`cohesion`] | `tscns-cohesion` | Cohesion SSO: service provider, citizen smart-card login (feature `citizen`), emulator (feature `emulator`) |
//! | [`cityportal`] | `tscns-cityportal` | the municipal portal's library: ANPR codes and eligibility, the registry fixture, the store (SQLite or PostgreSQL), sealed PDF/A certificates |
//!
//! The simulated card (`tscns-sim`) is a test bed and is not re-exported: add it as a
//! dev-dependency.
//!
//! ```
//! // Talk ISO 7816-4 to a card; here a scripted one, in real life `apdu::pcsc::PcscTransport`.
//! use tscns::apdu::{Card, Command, ScriptedTransport};
//! let script = ScriptedTransport::new([0x3B, 0x00]).expect_hex("00 A4 00 00 02 3F00", "9000");
//! let mut card = Card::new(script);
//! let select_mf = Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]);
//! assert!(card.transmit(&select_mf)?.is_success());
//! # Ok::<(), tscns::apdu::Error>(())
//! ```
//!
//! ## Features
//!
//! Each forwards the member crate's feature of the same purpose.
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

pub use tscns_apdu as apdu;
pub use tscns_card as card;
pub use tscns_cert as cert;
/// The municipal portal's library: ANPR domain rules, registry, store, sealed certificates.
pub use tscns_cityportal as cityportal;
/// Cohesion SSO (Regione Marche): service provider, citizen login (feature `citizen`), emulator.
pub use tscns_cohesion as cohesion;
pub use tscns_generations as generations;
pub use tscns_pkcs11 as pkcs11;
pub use tscns_tls as tls;
