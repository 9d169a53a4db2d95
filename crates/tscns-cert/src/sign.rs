//! The signing-key trait: what a card's authentication key, a PKCS#11 token's key or a
//! municipality's seal key offers to whoever needs an RSA signature (a TLS handshake, a PDF seal).
//!
//! Pure: no I/O, no TLS stack. `tscns-card` (feature `tls`) and `tscns-pkcs11` implement
//! [`SigningKey`]; `tscns-tls` adapts it to rustls client authentication and re-exports these
//! names, so `tscns_tls::SigningKey` and `tscns_cert::sign::SigningKey` are the same trait.
//!
//! ```
//! use tscns_cert::emsa::HashAlg;
//! use tscns_cert::sign::{raw_rsa_schemes, SignatureScheme};
//!
//! // A raw-RSA card with a 1024-bit key can hold every block but EMSA-PSS with SHA-512.
//! let schemes = raw_rsa_schemes(1024);
//! assert!(schemes.contains(&SignatureScheme::PssSha256));
//! assert!(!schemes.contains(&SignatureScheme::PssSha512));
//! assert_eq!(SignatureScheme::PssSha384.hash(), HashAlg::Sha384);
//! ```

use std::fmt;

use crate::emsa::HashAlg;

/// Why a key could not sign. Implementations return their own typed error boxed (for example
/// `tscns_pkcs11::Error`); callers may `downcast_ref` it to tell a wrong PIN from a removed card.
pub type SignError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A private RSA key that signs for the citizen or the municipality: a CNS card's authentication
/// key, a PKCS#11 token's key, a seal key.
///
/// Implementations must report in [`schemes`](Self::schemes) only what the key can really produce —
/// a TLS adapter chooses the protocol version from it (TLS 1.3 needs PSS). A key that does raw RSA
/// can produce every scheme whose block fits the modulus ([`raw_rsa_schemes`]): build the block
/// with [`crate::emsa`].
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

/// An RSA signature scheme (the TLS names of RFC 8446 §4.2.3, usable for TLS client authentication
/// and for any other RSA signature).
///
/// `Pkcs1*` is RSASSA-PKCS1-v1_5 (TLS 1.2 only); `Pss*` is RSASSA-PSS with MGF1 over the same hash
/// and a salt as long as the hash, as TLS 1.3 requires (the `rsa_pss_rsae_*` code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// `rsa_pkcs1_sha256` (0x0401).
    Pkcs1Sha256,
    /// `rsa_pkcs1_sha384` (0x0501).
    Pkcs1Sha384,
    /// `rsa_pkcs1_sha512` (0x0601).
    Pkcs1Sha512,
    /// `rsa_pss_rsae_sha256` (0x0804).
    PssSha256,
    /// `rsa_pss_rsae_sha384` (0x0805).
    PssSha384,
    /// `rsa_pss_rsae_sha512` (0x0806).
    PssSha512,
}

impl SignatureScheme {
    /// Every scheme, in the order this crate prefers them: PSS before PKCS#1 v1.5, shorter hashes first
    /// (the cheapest for a card, and the ones every server accepts).
    pub const ALL: [SignatureScheme; 6] = [
        Self::PssSha256,
        Self::Pkcs1Sha256,
        Self::PssSha384,
        Self::Pkcs1Sha384,
        Self::PssSha512,
        Self::Pkcs1Sha512,
    ];

    /// The hash this scheme signs.
    pub fn hash(self) -> HashAlg {
        match self {
            Self::Pkcs1Sha256 | Self::PssSha256 => HashAlg::Sha256,
            Self::Pkcs1Sha384 | Self::PssSha384 => HashAlg::Sha384,
            Self::Pkcs1Sha512 | Self::PssSha512 => HashAlg::Sha512,
        }
    }

    /// True for the RSASSA-PSS schemes (the only RSA schemes TLS 1.3 allows in CertificateVerify).
    pub fn is_pss(self) -> bool {
        matches!(self, Self::PssSha256 | Self::PssSha384 | Self::PssSha512)
    }

    /// The PSS scheme with the given hash (none with SHA-1).
    pub fn pss(hash: HashAlg) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.is_pss() && s.hash() == hash)
    }

    /// The PKCS#1 v1.5 scheme with the given hash (none with SHA-1).
    pub fn pkcs1(hash: HashAlg) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| !s.is_pss() && s.hash() == hash)
    }

    /// Whether a key with a modulus of `key_bits` bits can hold this scheme's encoded message.
    ///
    /// EMSA-PSS needs `emLen >= hLen + sLen + 2` (RFC 8017 §9.1.1 step 3) with `sLen = hLen`;
    /// EMSA-PKCS1-v1_5 needs `emLen >= tLen + 11` (RFC 8017 §9.2 step 3).
    pub fn fits_key(self, key_bits: usize) -> bool {
        let h = self.hash().output_len();
        if self.is_pss() {
            let em_len = (key_bits.saturating_sub(1)).div_ceil(8);
            em_len >= 2 * h + 2
        } else {
            let k = key_bits.div_ceil(8);
            k >= self.hash().digest_info_prefix().len() + h + 11
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pkcs1Sha256 => "rsa_pkcs1_sha256",
            Self::Pkcs1Sha384 => "rsa_pkcs1_sha384",
            Self::Pkcs1Sha512 => "rsa_pkcs1_sha512",
            Self::PssSha256 => "rsa_pss_rsae_sha256",
            Self::PssSha384 => "rsa_pss_rsae_sha384",
            Self::PssSha512 => "rsa_pss_rsae_sha512",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pss_sha512_does_not_fit_a_1024_bit_key() {
        assert!(!SignatureScheme::PssSha512.fits_key(1024));
        assert!(SignatureScheme::PssSha256.fits_key(1024));
        assert!(SignatureScheme::PssSha512.fits_key(2048));
        assert!(SignatureScheme::Pkcs1Sha512.fits_key(1024));
    }

    #[test]
    fn schemes_by_hash() {
        for s in SignatureScheme::ALL {
            let again = if s.is_pss() {
                SignatureScheme::pss(s.hash())
            } else {
                SignatureScheme::pkcs1(s.hash())
            };
            assert_eq!(again, Some(s));
        }
        assert_eq!(SignatureScheme::pss(HashAlg::Sha1), None);
        assert_eq!(SignatureScheme::pkcs1(HashAlg::Sha1), None);
    }
}
