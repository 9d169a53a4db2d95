//! # tscns
//!
//! Use the Italian health-and-services smart card (Tessera Sanitaria – Carta Nazionale dei Servizi,
//! "TS-CNS") from Rust, the way a citizen uses it by hand: card transport, the CNS certificate model,
//! signing, the Cohesion single sign-on and the municipal CityPortal services.
//!
//! This facade re-exports the member crates so one dependency brings the whole stack:
//!
//! | module | crate | what it owns |
//! |---|---|---|
//! | [`apdu`] | `tscns-apdu` | ISO 7816-4 APDUs, status words, the `Transport` trait, the PC/SC backend |
//! | [`cert`] | `tscns-cert` | codice fiscale, card id, the CNS certificate profile and chain checks |
//!
#![forbid(unsafe_code)]

pub use tscns_apdu as apdu;
pub use tscns_cert as cert;
