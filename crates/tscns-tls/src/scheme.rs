//! The RSA signature schemes a TLS client key may be asked for, and the hashes they use: defined in
//! [`tscns_cert::sign`] and [`tscns_cert::emsa`], re-exported here under their historical paths.

pub use tscns_cert::emsa::HashAlg;
pub use tscns_cert::sign::SignatureScheme;

/// The hash of a [`SignatureScheme`]: the one hash enum of the workspace, [`HashAlg`] (which also
/// knows SHA-1, and is `#[non_exhaustive]`).
#[deprecated(note = "use tscns_cert::emsa::HashAlg (also re-exported as tscns_tls::HashAlg)")]
pub type HashAlgorithm = HashAlg;
