//! Host-built RSA signature blocks for keys that only do raw RSA.
//!
//! The TS-CNS card (and PKCS#11 tokens that list only `CKM_RSA_X_509`) compute `block^d mod n` and
//! nothing else: the host builds the whole encoded message the size of the modulus. This module
//! builds EMSA-PKCS1-v1_5 (RFC 8017 §9.2) and EMSA-PSS (RFC 8017 §9.1.1, MGF1 with the same hash,
//! salt as long as the hash as TLS 1.3 requires) blocks. The encoding itself is
//! [`tscns_cert::emsa`], shared with the card driver; this module speaks in key sizes in bits,
//! [`SignatureScheme`]s and [`PaddingError`]s.

use tscns_cert::emsa::{self, HashAlg};

use crate::scheme::SignatureScheme;

/// Errors building a signature block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaddingError {
    /// The key is too short for this hash and padding.
    #[error("a {key_bits}-bit RSA key is too short for {scheme}")]
    KeyTooShort {
        /// Modulus size in bits.
        key_bits: usize,
        /// The scheme asked for.
        scheme: SignatureScheme,
    },
    /// The digest passed in does not have the hash's length.
    #[error("a {hash} digest is {expected} bytes, got {got}")]
    DigestLength {
        /// The hash.
        hash: HashAlg,
        /// Its output length.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The system random generator failed (needed for the PSS salt).
    #[error("the system random number generator failed")]
    Random,
    /// No TLS signature scheme uses this hash (SHA-1).
    #[error("no TLS signature scheme signs with {hash}")]
    UnsupportedHash {
        /// The hash asked for.
        hash: HashAlg,
    },
}

/// DER prefix of the DigestInfo for `hash`; append the digest to get the full DigestInfo.
///
/// Values from RFC 8017 §9.2, note 1 (kept, with their citations, in
/// [`tscns_cert::emsa::HashAlg::digest_info_prefix`]).
pub fn digest_info_prefix(hash: HashAlg) -> &'static [u8] {
    hash.digest_info_prefix()
}

/// The PKCS#1 v1.5 scheme of `hash`, or the error for a hash no TLS scheme uses.
fn pkcs1(hash: HashAlg) -> Result<SignatureScheme, PaddingError> {
    SignatureScheme::pkcs1(hash).ok_or(PaddingError::UnsupportedHash { hash })
}

/// The PSS scheme of `hash`, or the error for a hash no TLS scheme uses.
fn pss(hash: HashAlg) -> Result<SignatureScheme, PaddingError> {
    SignatureScheme::pss(hash).ok_or(PaddingError::UnsupportedHash { hash })
}

/// This crate's error for an EMSA error of `tscns-cert`; `scheme` is the scheme asked for and
/// `key_bits` the modulus size the caller gave.
fn padding_error(e: tscns_cert::Error, scheme: SignatureScheme, key_bits: usize) -> PaddingError {
    match e {
        tscns_cert::Error::DigestLength { expected, got, .. } => PaddingError::DigestLength {
            hash: scheme.hash(),
            expected,
            got,
        },
        tscns_cert::Error::KeyTooSmall { .. } => PaddingError::KeyTooShort { key_bits, scheme },
        // Random, and nothing else: tscns_cert::emsa returns no other variant.
        _ => PaddingError::Random,
    }
}

/// The DER DigestInfo (`AlgorithmIdentifier || digest`) that `CKM_RSA_PKCS` signs.
pub fn digest_info(hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>, PaddingError> {
    let scheme = pkcs1(hash)?;
    emsa::digest_info(hash, digest).map_err(|e| padding_error(e, scheme, 0))
}

/// EMSA-PKCS1-v1_5 block `00 01 FF..FF 00 || DigestInfo` of the modulus length (RFC 8017 §9.2).
pub fn pkcs1_v15_block(
    hash: HashAlg,
    digest: &[u8],
    key_bits: usize,
) -> Result<Vec<u8>, PaddingError> {
    let scheme = pkcs1(hash)?;
    emsa::pkcs1_v1_5_block(hash, digest, key_bits.div_ceil(8))
        .map_err(|e| padding_error(e, scheme, key_bits))
}

/// EMSA-PSS block for raw RSA (RFC 8017 §9.1.1), left-padded to the modulus length, with a fresh
/// random salt as long as the hash.
pub fn pss_block(hash: HashAlg, digest: &[u8], key_bits: usize) -> Result<Vec<u8>, PaddingError> {
    let scheme = pss(hash)?;
    emsa::pss_block(hash, digest, key_bits).map_err(|e| padding_error(e, scheme, key_bits))
}

/// EMSA-PSS with a given salt (deterministic; for tests and known-answer checks).
pub fn pss_block_with_salt(
    hash: HashAlg,
    digest: &[u8],
    key_bits: usize,
    salt: &[u8],
) -> Result<Vec<u8>, PaddingError> {
    let scheme = pss(hash)?;
    emsa::pss_block_with_salt(hash, digest, key_bits, salt)
        .map_err(|e| padding_error(e, scheme, key_bits))
}

/// Builds the raw-RSA block for `scheme` over the unhashed `message`.
pub fn block_for_message(
    scheme: SignatureScheme,
    message: &[u8],
    key_bits: usize,
) -> Result<Vec<u8>, PaddingError> {
    let digest = scheme.hash().digest(message);
    if scheme.is_pss() {
        pss_block(scheme.hash(), &digest, key_bits)
    } else {
        pkcs1_v15_block(scheme.hash(), &digest, key_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The encodings are tested in tscns_cert::emsa (rsa-crate cross-checks, a PSS verifier
    // proptest); here: this crate's names, key sizes in bits and errors.
    #[test]
    fn pss_blocks_are_the_shared_encoding() {
        for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let d = h.digest(b"hello");
            let salt = vec![5u8; h.output_len()];
            assert_eq!(
                pss_block_with_salt(h, &d, 2047, &salt).unwrap(),
                emsa::pss_block_with_salt(h, &d, 2047, &salt).unwrap()
            );
        }
    }

    proptest::proptest! {
        /// The key size in bits becomes the shared encoder's modulus length in bytes, and its
        /// "too small" error this crate's `KeyTooShort` naming the scheme.
        #[test]
        fn pkcs1_blocks_are_the_shared_encoding(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                                                bits in proptest::sample::select(vec![512usize, 1023, 1024, 2048])) {
            for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                let d = h.digest(&msg);
                match (pkcs1_v15_block(h, &d, bits), emsa::pkcs1_v1_5_block(h, &d, bits.div_ceil(8))) {
                    (Ok(ours), Ok(shared_block)) => {
                        proptest::prop_assert_eq!(&ours, &shared_block);
                        proptest::prop_assert!(ours.ends_with(&digest_info(h, &d).unwrap()));
                    }
                    (Err(e), Err(_)) => proptest::prop_assert_eq!(
                        e,
                        PaddingError::KeyTooShort { key_bits: bits, scheme: SignatureScheme::pkcs1(h).unwrap() }
                    ),
                    (ours, theirs) => proptest::prop_assert!(false, "{:?} vs {:?}", ours, theirs),
                }
            }
        }
    }

    #[test]
    fn wrong_digest_length_is_an_error() {
        assert!(matches!(
            pss_block(HashAlg::Sha256, &[0u8; 31], 2048),
            Err(PaddingError::DigestLength { .. })
        ));
        assert!(matches!(
            pss_block(HashAlg::Sha512, &[0u8; 64], 1024),
            Err(PaddingError::KeyTooShort { .. })
        ));
        assert_eq!(
            pkcs1_v15_block(HashAlg::Sha1, &[0u8; 20], 2048),
            Err(PaddingError::UnsupportedHash {
                hash: HashAlg::Sha1
            })
        );
    }
}
