//! The signing-key trait that the card driver and the PKCS#11 signer implement.

use std::fmt;

use crate::scheme::SignatureScheme;

/// Why a key could not sign. Implementations return their own typed error boxed (for example
/// `tscns_pkcs11::Error`); callers may `downcast_ref` it to tell a wrong PIN from a removed card.
pub type SignError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A private RSA key that can authenticate a TLS client: a CNS card's authentication key, or a
/// PKCS#11 token's key.
///
/// Implementations must report in [`schemes`](Self::schemes) only what the key can really produce —
/// the TLS adapter chooses the protocol version from it (TLS 1.3 needs PSS). A key that does raw RSA
/// can produce every scheme whose block fits the modulus: build it with [`crate::padding`].
///
/// Signing is synchronous and may take hundreds of milliseconds on a card.
pub trait SigningKey: Send + Sync + fmt::Debug {
    /// The certificate chain, DER, end-entity certificate first.
    fn certificate_chain(&self) -> Vec<Vec<u8>>;

    /// Size of the RSA modulus in bits.
    fn key_bits(&self) -> usize;

    /// The schemes this key can really produce.
    fn schemes(&self) -> Vec<SignatureScheme>;

    /// Signs the **unhashed** `message` with `scheme` (one of [`schemes`](Self::schemes)); returns the
    /// signature, as long as the modulus.
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

impl<T: SigningKey + ?Sized> SigningKey for std::sync::Arc<T> {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        (**self).certificate_chain()
    }
    fn key_bits(&self) -> usize {
        (**self).key_bits()
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        (**self).schemes()
    }
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign(scheme, message)
    }
}

/// The schemes a key that does raw RSA (`x^d mod n`) can produce with host-built blocks: all of them
/// whose encoded message fits the modulus.
pub fn raw_rsa_schemes(key_bits: usize) -> Vec<SignatureScheme> {
    SignatureScheme::ALL
        .into_iter()
        .filter(|s| s.fits_key(key_bits))
        .collect()
}
