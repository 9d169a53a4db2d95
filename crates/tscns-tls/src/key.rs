//! The signing-key trait that the card driver and the PKCS#11 signer implement: defined in
//! [`tscns_cert::sign`] (no TLS or HTTP stack), re-exported here under its historical path.

pub use tscns_cert::sign::{raw_rsa_schemes, SignError, SigningKey};
