//! Host-built RSA signature blocks: the card only does raw RSA, so the host encodes the digest.
//!
//! EMSA-PKCS1-v1_5 (RFC 8017 §9.2) and EMSA-PSS (RFC 8017 §9.1.1, MGF1 with the same hash, salt
//! length = hash length as TLS 1.3 requires). The encoding lives in [`tscns_cert::emsa`] (shared
//! with `tscns-tls`); this module keeps the card's names and returns this crate's [`Error`].

use crate::Error;

pub use tscns_cert::emsa::{modulus_len, HashAlg, UnknownHash};

/// This crate's error for an EMSA error of `tscns-cert` (same variants, same messages).
fn card_error(e: tscns_cert::Error) -> Error {
    match e {
        tscns_cert::Error::DigestLength { alg, expected, got } => {
            Error::DigestLength { alg, expected, got }
        }
        tscns_cert::Error::KeyTooSmall { bits, what } => Error::KeyTooSmall { bits, what },
        tscns_cert::Error::Random(msg) => Error::Random(msg),
        // tscns_cert::emsa returns no other variant.
        other => Error::Random(other.to_string()),
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2): `00 01 FF..FF 00 || DigestInfo || digest`, `k` bytes long.
pub fn pkcs1_v1_5_block(hash: HashAlg, digest: &[u8], k: usize) -> Result<Vec<u8>, Error> {
    tscns_cert::emsa::pkcs1_v1_5_block(hash, digest, k).map_err(card_error)
}

/// EMSA-PSS encoding (RFC 8017 §9.1.1) with the given salt, left-padded with zero bytes to the
/// modulus length `ceil(mod_bits / 8)` so the card can take it as a raw RSA input.
pub fn pss_block_with_salt(
    hash: HashAlg,
    digest: &[u8],
    mod_bits: usize,
    salt: &[u8],
) -> Result<Vec<u8>, Error> {
    tscns_cert::emsa::pss_block_with_salt(hash, digest, mod_bits, salt).map_err(card_error)
}

/// EMSA-PSS with a fresh random salt as long as the digest.
pub fn pss_block(hash: HashAlg, digest: &[u8], mod_bits: usize) -> Result<Vec<u8>, Error> {
    tscns_cert::emsa::pss_block(hash, digest, mod_bits).map_err(card_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The encodings themselves are tested in tscns_cert::emsa (rsa-crate cross-checks, proptests);
    // here: the card's errors come out with the card's variants.
    #[test]
    fn wrong_digest_length_is_an_error() {
        assert!(matches!(
            pkcs1_v1_5_block(HashAlg::Sha256, &[0; 20], 128),
            Err(Error::DigestLength { expected: 32, .. })
        ));
        assert!(matches!(
            pss_block(HashAlg::Sha1, &[0; 32], 1024),
            Err(Error::DigestLength { expected: 20, .. })
        ));
        assert!(matches!(
            pkcs1_v1_5_block(HashAlg::Sha512, &[0; 64], 64),
            Err(Error::KeyTooSmall { .. })
        ));
    }

    #[test]
    fn blocks_are_the_shared_encoding() {
        let digest = HashAlg::Sha256.digest(b"tscns");
        assert_eq!(
            pkcs1_v1_5_block(HashAlg::Sha256, &digest, 128).unwrap(),
            tscns_cert::emsa::pkcs1_v1_5_block(HashAlg::Sha256, &digest, 128).unwrap()
        );
        let salt = [9u8; 32];
        assert_eq!(
            pss_block_with_salt(HashAlg::Sha256, &digest, 1025, &salt).unwrap(),
            tscns_cert::emsa::pss_block_with_salt(HashAlg::Sha256, &digest, 1025, &salt).unwrap()
        );
    }
}
