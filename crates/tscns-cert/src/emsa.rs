//! Host-built RSA signature blocks for keys that only do raw RSA.
//!
//! The TS-CNS card (and PKCS#11 tokens that list only `CKM_RSA_X_509`) compute `block^d mod n` and
//! nothing else: the host builds the whole encoded message the size of the modulus. This module
//! builds EMSA-PKCS1-v1_5 (RFC 8017 §9.2) and EMSA-PSS (RFC 8017 §9.1.1, MGF1 with the same hash,
//! salt length = hash length as TLS 1.3 requires) blocks. It is pure (no I/O besides the system
//! random generator for the PSS salt) so that both `tscns-card` and `tscns-tls` use it.
//!
//! ```
//! use tscns_cert::emsa::{pkcs1_v1_5_block, pss_block_with_salt, HashAlg};
//!
//! let digest = HashAlg::Sha256.digest(b"handshake");
//! let block = pkcs1_v1_5_block(HashAlg::Sha256, &digest, 256)?;
//! assert_eq!(&block[..2], &[0x00, 0x01]);
//! let pss = pss_block_with_salt(HashAlg::Sha256, &digest, 2048, &[7; 32])?;
//! assert_eq!((pss.len(), pss[255]), (256, 0xbc));
//! # Ok::<(), tscns_cert::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::Error;

/// A hash algorithm for signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-1 (legacy; still accepted by some CNS services).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// All algorithms, weakest first.
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Lower-case name: `sha1`, `sha256`, `sha384`, `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// DER of the DigestInfo up to the digest (RFC 8017 §9.2, note 1).
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            // RFC 8017 §9.2 note 1, SHA-1: SEQUENCE { SEQUENCE { OID 1.3.14.3.2.26, NULL },
            // OCTET STRING (20) }
            HashAlg::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            // RFC 8017 §9.2 note 1, SHA-256: OID 2.16.840.1.101.3.4.2.1
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            // RFC 8017 §9.2 note 1, SHA-384: OID 2.16.840.1.101.3.4.2.2
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            // RFC 8017 §9.2 note 1, SHA-512: OID 2.16.840.1.101.3.4.2.3
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => Sha1::digest(data).to_vec(),
            HashAlg::Sha256 => Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn check(self, digest: &[u8]) -> Result<(), Error> {
        if digest.len() != self.output_len() {
            return Err(Error::DigestLength {
                alg: self.name(),
                expected: self.output_len(),
                got: digest.len(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of [`HashAlg::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownHash(pub String);

impl fmt::Display for UnknownHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown hash {:?}: use sha1, sha256, sha384 or sha512",
            self.0
        )
    }
}

impl std::error::Error for UnknownHash {}

impl FromStr for HashAlg {
    type Err = UnknownHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Ok(HashAlg::Sha1),
            "sha256" => Ok(HashAlg::Sha256),
            "sha384" => Ok(HashAlg::Sha384),
            "sha512" => Ok(HashAlg::Sha512),
            _ => Err(UnknownHash(s.to_owned())),
        }
    }
}

/// Bytes of a modulus of `bits` bits.
pub fn modulus_len(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2): `00 01 FF..FF 00 || DigestInfo || digest`, `k` bytes long.
pub fn pkcs1_v1_5_block(hash: HashAlg, digest: &[u8], k: usize) -> Result<Vec<u8>, Error> {
    let t = digest_info(hash, digest)?;
    // At least 8 bytes of FF padding (RFC 8017 §9.2 step 3).
    if k < t.len() + 11 {
        return Err(Error::KeyTooSmall {
            bits: k * 8,
            what: "PKCS#1 v1.5 with this hash",
        });
    }
    let mut block = Vec::with_capacity(k);
    block.extend_from_slice(&[0x00, 0x01]);
    block.resize(k - t.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&t);
    Ok(block)
}

/// The DER DigestInfo (`AlgorithmIdentifier || digest`, RFC 8017 §9.2 step 2) that `CKM_RSA_PKCS`
/// signs.
pub fn digest_info(hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>, Error> {
    hash.check(digest)?;
    let mut t = hash.digest_info_prefix().to_vec();
    t.extend_from_slice(digest);
    Ok(t)
}

fn mgf1_xor(hash: HashAlg, seed: &[u8], out: &mut [u8]) {
    let h_len = hash.output_len();
    for (counter, chunk) in out.chunks_mut(h_len).enumerate() {
        let mut input = seed.to_vec();
        // The counter is a 4-byte big-endian integer (RFC 8017 §B.2.1); chunks stay far below 2^32.
        input.extend_from_slice(&(counter as u32).to_be_bytes());
        let mask = hash.digest(&input);
        for (b, m) in chunk.iter_mut().zip(mask) {
            *b ^= m;
        }
    }
}

/// EMSA-PSS encoding (RFC 8017 §9.1.1) with the given salt, left-padded with zero bytes to the
/// modulus length `ceil(mod_bits / 8)` so the card can take it as a raw RSA input.
pub fn pss_block_with_salt(
    hash: HashAlg,
    digest: &[u8],
    mod_bits: usize,
    salt: &[u8],
) -> Result<Vec<u8>, Error> {
    hash.check(digest)?;
    let h_len = hash.output_len();
    if mod_bits < 2 {
        return Err(Error::KeyTooSmall {
            bits: mod_bits,
            what: "PSS",
        });
    }
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    // Step 3: emLen >= hLen + sLen + 2.
    if em_len < h_len + salt.len() + 2 {
        return Err(Error::KeyTooSmall {
            bits: mod_bits,
            what: "PSS with this hash and salt",
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
    mgf1_xor(hash, &h, &mut db);
    // Step 11: clear the leftmost 8*emLen - emBits bits.
    let clear = 8 * em_len - em_bits;
    db[0] &= 0xFFu8 >> clear;
    // Step 12: EM = maskedDB || H || 0xbc.
    let k = modulus_len(mod_bits);
    let mut block = vec![0u8; k - em_len];
    block.extend_from_slice(&db);
    block.extend_from_slice(&h);
    block.push(0xBC);
    Ok(block)
}

/// EMSA-PSS with a fresh random salt as long as the digest.
pub fn pss_block(hash: HashAlg, digest: &[u8], mod_bits: usize) -> Result<Vec<u8>, Error> {
    let mut salt = vec![0u8; hash.output_len()];
    getrandom::getrandom(&mut salt).map_err(|e| Error::Random(e.to_string()))?;
    pss_block_with_salt(hash, digest, mod_bits, &salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::PublicKeyParts;
    use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};

    fn key(bits: usize) -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap()
    }

    /// Raw RSA with the private key: what the card does with the block.
    fn raw_sign(key: &RsaPrivateKey, block: &[u8]) -> Vec<u8> {
        let m = BigUint::from_bytes_be(block);
        let s = rsa::hazmat::rsa_decrypt_and_check(key, None::<&mut rsa::rand_core::OsRng>, &m)
            .unwrap();
        let mut out = s.to_bytes_be();
        let k = key.size();
        while out.len() < k {
            out.insert(0, 0);
        }
        out
    }

    fn verify_pkcs1(key: &RsaPrivateKey, hash: HashAlg, digest: &[u8], sig: &[u8]) {
        let scheme = match hash {
            HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        };
        key.to_public_key().verify(scheme, digest, sig).unwrap();
    }

    fn verify_pss(key: &RsaPrivateKey, hash: HashAlg, digest: &[u8], sig: &[u8]) {
        let n = hash.output_len();
        let scheme = match hash {
            HashAlg::Sha1 => Pss::new_with_salt::<Sha1>(n),
            HashAlg::Sha256 => Pss::new_with_salt::<Sha256>(n),
            HashAlg::Sha384 => Pss::new_with_salt::<Sha384>(n),
            HashAlg::Sha512 => Pss::new_with_salt::<Sha512>(n),
        };
        key.to_public_key().verify(scheme, digest, sig).unwrap();
    }

    #[test]
    fn pkcs1_blocks_verify_with_rsa_crate() {
        let key = key(1024);
        for hash in HashAlg::ALL {
            let digest = hash.digest(b"tscns");
            let block = pkcs1_v1_5_block(hash, &digest, key.size()).unwrap();
            assert_eq!(block.len(), 128);
            assert_eq!(&block[..2], &[0, 1]);
            let sig = raw_sign(&key, &block);
            verify_pkcs1(&key, hash, &digest, &sig);
            // The rsa crate's own signature is the same (PKCS#1 v1.5 is deterministic).
            let theirs = key
                .sign(
                    match hash {
                        HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
                        HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
                        HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
                        HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
                    },
                    &digest,
                )
                .unwrap();
            assert_eq!(theirs, sig);
        }
    }

    #[test]
    fn pss_blocks_verify_with_rsa_crate() {
        // 1025 bits exercises emLen < k (a leading zero byte).
        for bits in [1024usize, 1025, 2048] {
            let key = key(bits);
            let modbits = key.n().bits();
            for hash in HashAlg::ALL {
                let digest = hash.digest(b"tscns pss");
                match pss_block(hash, &digest, modbits) {
                    Ok(block) => {
                        assert_eq!(block.len(), key.size());
                        let sig = raw_sign(&key, &block);
                        verify_pss(&key, hash, &digest, &sig);
                    }
                    Err(Error::KeyTooSmall { .. }) => {
                        // SHA-512 with a 64-byte salt needs emLen >= 130: too big for 1024 bits.
                        assert!(bits < 1040 && hash == HashAlg::Sha512, "{bits} {hash}");
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }

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
        assert!(matches!(
            pss_block(HashAlg::Sha512, &[0u8; 64], 1024),
            Err(Error::KeyTooSmall { .. })
        ));
    }

    #[test]
    fn names_parse() {
        for h in HashAlg::ALL {
            assert_eq!(h.name().parse::<HashAlg>().unwrap(), h);
        }
        assert_eq!("SHA-256".parse::<HashAlg>().unwrap(), HashAlg::Sha256);
        assert!("md5".parse::<HashAlg>().is_err());
    }

    #[test]
    fn pkcs1_block_shape() {
        let d = HashAlg::Sha256.digest(b"hello");
        let b = pkcs1_v1_5_block(HashAlg::Sha256, &d, 256).unwrap();
        assert_eq!(b.len(), 256);
        assert_eq!(&b[..2], &[0, 1]);
        assert_eq!(b[256 - 32 - 19 - 1], 0);
        assert!(b[2..256 - 32 - 19 - 1].iter().all(|&x| x == 0xff));
        assert_eq!(&b[256 - 32..], d.as_slice());
    }

    #[test]
    fn pss_block_shape() {
        let d = HashAlg::Sha384.digest(b"hello");
        let b = pss_block(HashAlg::Sha384, &d, 2048).unwrap();
        assert_eq!(b.len(), 256);
        assert_eq!(b[255], 0xbc);
        assert_eq!(b[0] & 0x80, 0);
    }

    /// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) for the tests, on the block as built for raw RSA.
    fn pss_verify(hash: HashAlg, digest: &[u8], block: &[u8], key_bits: usize) -> bool {
        let h_len = hash.output_len();
        let em_bits = key_bits - 1;
        let em_len = em_bits.div_ceil(8);
        let em = &block[block.len() - em_len..];
        if em[em_len - 1] != 0xbc {
            return false;
        }
        let (masked_db, rest) = em.split_at(em_len - h_len - 1);
        let h = &rest[..h_len];
        let mut db = masked_db.to_vec();
        mgf1_xor(hash, h, &mut db);
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
                             h in proptest::sample::select(HashAlg::ALL.to_vec())) {
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
                Err(e) => proptest::prop_assert!(matches!(e, Error::KeyTooSmall { .. }), "{}", e),
            }
        }

        #[test]
        fn pkcs1_blocks_end_with_the_digest_info(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                                                 bits in proptest::sample::select(vec![512usize, 1024, 2048])) {
            for h in HashAlg::ALL {
                let d = h.digest(&msg);
                match pkcs1_v1_5_block(h, &d, modulus_len(bits)) {
                    Ok(b) => {
                        let di = digest_info(h, &d).unwrap();
                        proptest::prop_assert_eq!(b.len(), bits / 8);
                        proptest::prop_assert!(b.ends_with(&di));
                        proptest::prop_assert_eq!(&b[..2], &[0u8, 1][..]);
                    }
                    Err(e) => proptest::prop_assert!(matches!(e, Error::KeyTooSmall { .. }), "{}", e),
                }
            }
        }
    }
}
