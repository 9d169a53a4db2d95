//! # tscns-pkcs11-module: the TS-CNS card as a PKCS#11 token
//!
//! `libtscns_pkcs11_module.so` gives browsers (Firefox, Chromium through NSS), OpenSSL (engine or
//! provider), GnuTLS, `pkcs11-tool` and every other PKCS#11 program the Italian Tessera
//! Sanitaria – Carta Nazionale dei Servizi, through [`tscns_card`] over PC/SC: the "middleware"
//! a citizen installs. It speaks PKCS#11 2.40.
//!
//! - **Slots** are PC/SC readers; a **token** is a TS-CNS card in one: its label is the holder,
//!   its serial number the card id, its model the maker profile. Its flags follow the tries
//!   left the card reported (`CKF_USER_PIN_COUNT_LOW`, `_FINAL_TRY`, `_LOCKED`).
//! - **Objects**: the authentication certificate, its public key, and the private key (after
//!   login; sensitive, never extractable, `CKA_ALWAYS_AUTHENTICATE` false).
//! - **PIN**: `C_Login` sends the PIN to the card once, never again on the caller's behalf;
//!   `C_SetPIN` changes it; `CKU_SO` with the PUK then `C_InitPIN` unblocks it (as OpenSC maps
//!   it). After a login the card is reset when the program logs out, closes its last session
//!   or finalizes, so that it forgets the PIN.
//! - **Signing**: `CKM_RSA_PKCS`, `CKM_SHA{1,256,384,512}_RSA_PKCS`, `CKM_RSA_PKCS_PSS`,
//!   `CKM_SHA{256,384,512}_RSA_PKCS_PSS`, single- and multi-part. The host builds the
//!   EMSA-PKCS1-v1_5 or EMSA-PSS block; the card does the raw RSA, for 1024- and 2048-bit keys
//!   of every maker profile.
//! - **Protected authentication path** (`TSCNS_PKCS11_PINENTRY=PROGRAM` or `pinentry = ...` in
//!   `~/.config/tscns/pkcs11.toml`, see [`config`]): the module asks for the PIN itself through
//!   a pinentry program (Assuan), at `C_Login` with a NULL PIN or at the first signature.
//! - `TSCNS_PKCS11_LOG=FILE` traces every call and its return code, never a PIN or data.
//!
//! The C ABI lives in one module, the only one with `unsafe` code; it checks every pointer and
//! length, catches panics, and calls a safe core ([`module::Module`]) under one lock.
//!
//! ```no_run
//! # // Loading the module as a program does (the test suite does this for real, through pcscd).
//! let mut list = std::ptr::null_mut();
//! // SAFETY: a valid out-pointer.
//! let rv = unsafe { tscns_pkcs11_module::C_GetFunctionList(&mut list) };
//! assert_eq!(rv, cryptoki_sys::CKR_OK);
//! ```
//!
//! ```sh
//! pkcs11-tool --module target/release/libtscns_pkcs11_module.so -L
//! ```
//!
//! ## Features
#![doc = document_features::document_features!()]
#![deny(unsafe_code)]

pub mod config;
mod ffi;
pub mod log;
pub mod mechanism;
pub mod module;
pub mod objects;
pub mod pinentry;

pub use ffi::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
