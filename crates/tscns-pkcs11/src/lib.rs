//! # tscns-pkcs11
//!
//! Sign with the Italian TS-CNS card — or any RSA key on a token — through a PKCS#11 module
//! (OpenSC's `opensc-pkcs11.so`, a region's vendor module, SoftHSM2), over the `cryptoki` crate.
//!
//! - [`Module`]: open a module by path, or [`Module::discover`] one (`TSCNS_PKCS11_MODULE`, then the
//!   usual OpenSC and vendor install paths on Linux, macOS and Windows); list tokens and certificates.
//! - [`Pkcs11Key`]: the key behind the certificate chosen by codice fiscale, by label, or the first
//!   that passes the CNS profile ([`KeySelector`]); [`Pkcs11Key::login`] with a zeroizing [`Pin`]
//!   (errors in the same words as the card driver: "wrong PIN: 1 try left", "the PIN is blocked ...");
//!   one session behind a mutex; a removed token reported as [`Error::TokenRemoved`].
//! - Feature `tls` (default): sign by TLS scheme with the best mechanism the token really lists —
//!   `CKM_RSA_PKCS_PSS`, `CKM_RSA_PKCS` with a host-built DigestInfo, the hashing variants, or raw
//!   `CKM_RSA_X_509` with a host-built block — and `tscns_tls::SigningKey` for TLS client
//!   authentication.
//!
//! ```no_run
//! use tscns_pkcs11::{KeySelector, Module, Pin, Pkcs11Key};
//!
//! let module = Module::discover()?;
//! for token in module.tokens()? {
//!     println!("{} ({})", token.label, token.manufacturer);
//! }
//! let key = Pkcs11Key::open(&module, &KeySelector::CodiceFiscale("RSSMRA80A01H501U".into()))?;
//! key.login(&Pin::new("12345678")?)?;
//! # #[cfg(feature = "tls")]
//! let signature = key.sign_scheme(tscns_tls::SignatureScheme::Pkcs1Sha256, b"hello")?;
//! # Ok::<(), tscns_pkcs11::Error>(())
//! ```
//!
//! Runnable without a token: where the discovery looks.
//!
//! ```
//! for path in tscns_pkcs11::candidate_paths() {
//!     assert!(path.is_absolute());
//! }
//! assert_eq!(tscns_pkcs11::MODULE_ENV, "TSCNS_PKCS11_MODULE");
//! ```
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

mod error;
mod key;
mod module;
#[cfg(feature = "tls")]
mod tls;

pub use error::Error;
pub use key::{Pin, Pkcs11Key};
pub use module::{
    candidate_paths, CertificateEntry, KeySelector, Module, TokenSummary, MODULE_ENV,
};
#[cfg(feature = "tls")]
pub use tls::Route;

/// Re-export of the cryptoki version this crate uses.
pub use cryptoki;
