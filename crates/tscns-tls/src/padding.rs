//! Host-built RSA signature blocks for keys that only do raw RSA.
//!
//! The TS-CNS card (and PKCS#11 tokens that list only `CKM_RSA_X_509`) compute `block^d mod n` and
//! nothing else: the host builds the whole encoded message the size of the modulus. This module
//! builds EMSA-PKCS1-v1_5 (RFC 8017 §9.2) and EMSA-PSS (RFC 8017 §9.1.1, MGF1 with the same hash,
//! salt as long as the hash as TLS 1.3 requires) blocks. It is small on purpose so that the card
//! driver can reuse it.

use ring::rand::SecureRandom;

use crate::scheme::{HashAlgorithm, SignatureScheme};

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
        hash: HashAlgorithm,
        /// Its output length.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The system random generator failed (needed for the PSS salt).
    #[error("the system random number generator failed")]
    Random,
}

/// DER prefix of the DigestInfo for `hash`; append the digest to get the full DigestInfo.
///
/// Values from RFC 8017 §9.2, note 1.
pub fn digest_info_prefix(hash: HashAlgorithm) -> &'static [u8] {
    match hash {
        // RFC 8017 §9.2 note 1: SHA-256.
        HashAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        // RFC 8017 §9.2 note 1: SHA-384.
        HashAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        // RFC 8017 §9.2 note 1: SHA-512.
        HashAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// The DER DigestInfo (`AlgorithmIdentifier || digest`) that `CKM_RSA_PKCS` signs.
pub fn digest_info(hash: HashAlgorithm, digest: &[u8]) -> Result<Vec<u8>, PaddingError> {
    check_digest(hash, digest)?;
    let mut out = digest_info_prefix(hash).to_vec();
    out.extend_from_slice(digest);
    Ok(out)
}

fn check_digest(hash: HashAlgorithm, digest: &[u8]) -> Result<(), PaddingError> {
    if digest.len() != hash.output_len() {
        return Err(PaddingError::DigestLength {
            hash,
            expected: hash.output_len(),
            got: digest.len(),
        });
    }
    Ok(())
}

/// EMSA-PKCS1-v1_5 block `00 01 FF..FF 00 || DigestInfo` of the modulus length (RFC 8017 §9.2).
pub fn pkcs1_v15_block(
    hash: HashAlgorithm,
    digest: &[u8],
    key_bits: usize,
) -> Result<Vec<u8>, PaddingError> {
    let t = digest_info(hash, digest)?;
    let k = key_bits.div_ceil(8);
    if k < t.len() + 11 {
        return Err(PaddingError::KeyTooShort {
            key_bits,
            scheme: SignatureScheme::pkcs1(hash),
        });
    }
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(k - t.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&t);
    Ok(em)
}

/// EMSA-PSS block for raw RSA (RFC 8017 §9.1.1), left-padded to the modulus length, with a fresh
/// random salt as long as the hash.
pub fn pss_block(
    hash: HashAlgorithm,
    digest: &[u8],
    key_bits: usize,
) -> Result<Vec<u8>, PaddingError> {
    let mut salt = vec![0u8; hash.output_len()];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PaddingError::Random)?;
    pss_block_with_salt(hash, digest, key_bits, &salt)
}

/// EMSA-PSS with a given salt (deterministic; for tests and known-answer checks).
pub fn pss_block_with_salt(
    hash: HashAlgorithm,
    digest: &[u8],
    key_bits: usize,
    salt: &[u8],
) -> Result<Vec<u8>, PaddingError> {
    check_digest(hash, digest)?;
    let h_len = hash.output_len();
    let em_bits = key_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    // RFC 8017 §9.1.1 step 3.
    if em_len < h_len + salt.len() + 2 {
        return Err(PaddingError::KeyTooShort {
            key_bits,
            scheme: SignatureScheme::pss(hash),
        });
    }
    // Steps 5-6: M' = (0x)00 00 00 00 00 00 00 00 || mHash || salt; H = Hash(M').
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(digest);
    m_prime.extend_from_slice(salt);
    let h = hash.digest(&m_prime);
    // Steps 7-8: DB = PS || 0x01 || salt.
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len - salt.len() - 1];
    db.push(0x01);
    db.extend_from_slice(salt);
    // Steps 9-10: maskedDB = DB xor MGF1(H, emLen - hLen - 1).
    let mask = mgf1(hash, &h, db_len);
    for (b, m) in db.iter_mut().zip(mask) {
        *b ^= m;
    }
    // Step 11: clear the leftmost 8*emLen - emBits bits.
    let unused = 8 * em_len - em_bits;
    if let Some(first) = db.first_mut() {
        *first &= 0xffu8 >> unused;
    }
    // Step 12: EM = maskedDB || H || 0xbc; then left-pad to the modulus length for raw RSA.
    let k = key_bits.div_ceil(8);
    let mut block = vec![0u8; k - em_len];
    block.extend_from_slice(&db);
    block.extend_from_slice(&h);
    block.push(0xbc);
    Ok(block)
}

/// MGF1 (RFC 8017 appendix B.2.1).
fn mgf1(hash: HashAlgorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = seed.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&hash.digest(&input));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
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

    #[test]
    fn pkcs1_block_shape() {
        let d = HashAlgorithm::Sha256.digest(b"hello");
        let b = pkcs1_v15_block(HashAlgorithm::Sha256, &d, 2048).unwrap();
        assert_eq!(b.len(), 256);
        assert_eq!(&b[..2], &[0, 1]);
        assert_eq!(b[256 - 32 - 19 - 1], 0);
        assert!(b[2..256 - 32 - 19 - 1].iter().all(|&x| x == 0xff));
        assert_eq!(&b[256 - 32..], d.as_slice());
    }

    #[test]
    fn pss_block_shape() {
        let d = HashAlgorithm::Sha384.digest(b"hello");
        let b = pss_block(HashAlgorithm::Sha384, &d, 2048).unwrap();
        assert_eq!(b.len(), 256);
        assert_eq!(b[255], 0xbc);
        assert_eq!(b[0] & 0x80, 0);
    }

    /// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) for the tests, on the block as built for raw RSA.
    fn pss_verify(hash: HashAlgorithm, digest: &[u8], block: &[u8], key_bits: usize) -> bool {
        let h_len = hash.output_len();
        let em_bits = key_bits - 1;
        let em_len = em_bits.div_ceil(8);
        let em = &block[block.len() - em_len..];
        if em[em_len - 1] != 0xbc {
            return false;
        }
        let (masked_db, rest) = em.split_at(em_len - h_len - 1);
        let h = &rest[..h_len];
        let mut db: Vec<u8> = masked_db
            .iter()
            .zip(mgf1(hash, h, masked_db.len()))
            .map(|(a, b)| a ^ b)
            .collect();
        db[0] &= 0xffu8 >> (8 * em_len - em_bits);
        let Some(one) = db.iter().position(|&b| b != 0) else {
            return false;
        };
        if db[one] != 0x01 {
            return false;
        }
        let salt = &db[one + 1..];
        let mut m_prime = vec![0u8; 8];
        m_prime.extend_from_slice(digest);
        m_prime.extend_from_slice(salt);
        salt.len() == h_len && hash.digest(&m_prime) == h
    }

    proptest::proptest! {
        #[test]
        fn pss_blocks_verify(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                             salt in proptest::collection::vec(proptest::num::u8::ANY, 64),
                             bits in proptest::sample::select(vec![1024usize, 1025, 2047, 2048, 3072]),
                             h in proptest::sample::select(vec![HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512])) {
            let digest = h.digest(&msg);
            let salt = &salt[..h.output_len()];
            match pss_block_with_salt(h, &digest, bits, salt) {
                Ok(block) => {
                    proptest::prop_assert_eq!(block.len(), bits.div_ceil(8));
                    proptest::prop_assert!(pss_verify(h, &digest, &block, bits));
                    let mut other = digest.clone();
                    other[0] ^= 1;
                    proptest::prop_assert!(!pss_verify(h, &other, &block, bits));
                }
                Err(e) => proptest::prop_assert!(matches!(e, PaddingError::KeyTooShort { .. }), "{}", e),
            }
        }

        #[test]
        fn pkcs1_blocks_end_with_the_digest_info(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                                                 bits in proptest::sample::select(vec![512usize, 1024, 2048])) {
            for h in [HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512] {
                let d = h.digest(&msg);
                match pkcs1_v15_block(h, &d, bits) {
                    Ok(b) => {
                        let di = digest_info(h, &d).unwrap();
                        proptest::prop_assert_eq!(b.len(), bits / 8);
                        proptest::prop_assert!(b.ends_with(&di));
                        proptest::prop_assert_eq!(&b[..2], &[0u8, 1][..]);
                    }
                    Err(e) => proptest::prop_assert!(matches!(e, PaddingError::KeyTooShort { .. }), "{}", e),
                }
            }
        }
    }

    #[test]
    fn wrong_digest_length_is_an_error() {
        assert!(matches!(
            pss_block(HashAlgorithm::Sha256, &[0u8; 31], 2048),
            Err(PaddingError::DigestLength { .. })
        ));
        assert!(matches!(
            pss_block(HashAlgorithm::Sha512, &[0u8; 64], 1024),
            Err(PaddingError::KeyTooShort { .. })
        ));
    }
}
