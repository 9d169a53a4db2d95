//! Signature mechanisms: what the caller asked for, turned into the block the card's raw RSA
//! signs. The host builds every block (tscns-cert's EMSA encoders); the card never pads.
#![forbid(unsafe_code)]

use cryptoki_sys::*;
use sha2::Digest;
use tscns_card::HashAlg;
use zeroize::Zeroizing;

/// The mechanisms the token offers, in the order `C_GetMechanismList` lists them.
pub const MECHANISMS: [CK_MECHANISM_TYPE; 9] = [
    CKM_RSA_PKCS,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];

/// `CK_RSA_PKCS_PSS_PARAMS` as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PssParams {
    /// `hashAlg`: the hash mechanism (CKM_SHA256, ...).
    pub hash_alg: CK_MECHANISM_TYPE,
    /// `mgf`: the mask generation function (CKG_MGF1_SHA256, ...).
    pub mgf: CK_RSA_PKCS_MGF_TYPE,
    /// `sLen`: the salt length in bytes.
    pub salt_len: CK_ULONG,
}

/// A mechanism as the C caller gave it, its parameter already read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mechanism {
    /// The mechanism type.
    pub kind: CK_MECHANISM_TYPE,
    /// The PSS parameter, when one of the right size was given.
    pub pss: Option<PssParams>,
    /// Length of the parameter given (0 for none).
    pub param_len: usize,
}

/// What a signing operation does with its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// CKM_RSA_PKCS: the caller gives DigestInfo (or any data up to k - 11 bytes).
    RawPkcs1,
    /// CKM_SHAx_RSA_PKCS: hash, DigestInfo, EMSA-PKCS1-v1_5.
    Pkcs1(HashAlg),
    /// CKM_RSA_PKCS_PSS: the caller gives the hash.
    RawPss { hash: HashAlg, salt_len: usize },
    /// CKM_SHAx_RSA_PKCS_PSS: hash then EMSA-PSS.
    Pss { hash: HashAlg, salt_len: usize },
}

/// A running hash of a multi-part signature.
enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(h: HashAlg) -> Self {
        match h {
            HashAlg::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlg::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            _ => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// One signing operation, from `C_SignInit` to the signature.
pub struct SignOp {
    scheme: Scheme,
    hasher: Option<Hasher>,
    /// Input of the raw mechanisms (at most the modulus length).
    raw: Zeroizing<Vec<u8>>,
    bits: usize,
    /// C_SignUpdate was called: C_Sign is no longer allowed.
    pub multipart: bool,
}

impl std::fmt::Debug for SignOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the data to be signed.
        f.debug_struct("SignOp")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

fn hash_of_mechanism(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match m {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        _ => return None,
    })
}

fn mgf_of(h: HashAlg) -> CK_RSA_PKCS_MGF_TYPE {
    match h {
        HashAlg::Sha1 => CKG_MGF1_SHA1,
        HashAlg::Sha384 => CKG_MGF1_SHA384,
        HashAlg::Sha512 => CKG_MGF1_SHA512,
        _ => CKG_MGF1_SHA256,
    }
}

impl SignOp {
    /// Checks the mechanism and its parameter against a key of `bits` bits (the errors of
    /// `C_SignInit`: `CKR_MECHANISM_INVALID`, `CKR_MECHANISM_PARAM_INVALID`).
    pub fn new(m: &Mechanism, bits: usize) -> Result<SignOp, CK_RV> {
        let no_param = || {
            if m.param_len == 0 {
                Ok(())
            } else {
                Err(CKR_MECHANISM_PARAM_INVALID)
            }
        };
        let pss = |fixed: Option<HashAlg>| -> Result<(HashAlg, usize), CK_RV> {
            let p = m.pss.ok_or(CKR_MECHANISM_PARAM_INVALID)?;
            let hash = hash_of_mechanism(p.hash_alg).ok_or(CKR_MECHANISM_PARAM_INVALID)?;
            if fixed.is_some_and(|f| f != hash) || p.mgf != mgf_of(hash) {
                // tscns-cert's EMSA-PSS uses MGF1 with the message hash.
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            let salt_len = usize::try_from(p.salt_len).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
            // RFC 8017 §9.1.1 step 3: emLen >= hLen + sLen + 2.
            let em_len = (bits - 1).div_ceil(8);
            if salt_len > em_len.saturating_sub(hash.output_len() + 2) {
                return Err(CKR_MECHANISM_PARAM_INVALID);
            }
            Ok((hash, salt_len))
        };
        let scheme = match m.kind {
            CKM_RSA_PKCS => {
                no_param()?;
                Scheme::RawPkcs1
            }
            CKM_SHA1_RSA_PKCS => {
                no_param()?;
                Scheme::Pkcs1(HashAlg::Sha1)
            }
            CKM_SHA256_RSA_PKCS => {
                no_param()?;
                Scheme::Pkcs1(HashAlg::Sha256)
            }
            CKM_SHA384_RSA_PKCS => {
                no_param()?;
                Scheme::Pkcs1(HashAlg::Sha384)
            }
            CKM_SHA512_RSA_PKCS => {
                no_param()?;
                Scheme::Pkcs1(HashAlg::Sha512)
            }
            CKM_RSA_PKCS_PSS => {
                let (hash, salt_len) = pss(None)?;
                Scheme::RawPss { hash, salt_len }
            }
            CKM_SHA256_RSA_PKCS_PSS => {
                let (hash, salt_len) = pss(Some(HashAlg::Sha256))?;
                Scheme::Pss { hash, salt_len }
            }
            CKM_SHA384_RSA_PKCS_PSS => {
                let (hash, salt_len) = pss(Some(HashAlg::Sha384))?;
                Scheme::Pss { hash, salt_len }
            }
            CKM_SHA512_RSA_PKCS_PSS => {
                let (hash, salt_len) = pss(Some(HashAlg::Sha512))?;
                Scheme::Pss { hash, salt_len }
            }
            _ => return Err(CKR_MECHANISM_INVALID),
        };
        let hasher = match scheme {
            Scheme::Pkcs1(h) | Scheme::Pss { hash: h, .. } => Some(Hasher::new(h)),
            _ => None,
        };
        Ok(SignOp {
            scheme,
            hasher,
            raw: Zeroizing::new(Vec::new()),
            bits,
            multipart: false,
        })
    }

    /// Length of the signature (the modulus length).
    pub fn signature_len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Adds input (C_SignUpdate, or the whole data of C_Sign).
    pub fn update(&mut self, data: &[u8]) -> Result<(), CK_RV> {
        match &mut self.hasher {
            Some(h) => h.update(data),
            None => {
                if self.raw.len() + data.len() > self.signature_len() {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                self.raw.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// The block for the card's raw RSA, the size of the modulus (`CKR_DATA_LEN_RANGE` when the
    /// input does not fit the mechanism).
    pub fn block(self) -> Result<Zeroizing<Vec<u8>>, CK_RV> {
        let k = self.signature_len();
        let digest = self.hasher.map(Hasher::finish);
        let out = match self.scheme {
            Scheme::RawPkcs1 => {
                // EMSA-PKCS1-v1_5 step 3-5 (RFC 8017 §9.2) over the caller's DigestInfo:
                // 00 01 FF..FF (at least 8) 00 T.
                let t = &self.raw;
                if t.len() + 11 > k {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                let mut b = Vec::with_capacity(k);
                b.extend_from_slice(&[0x00, 0x01]);
                b.resize(k - t.len() - 1, 0xFF);
                b.push(0x00);
                b.extend_from_slice(t);
                b
            }
            Scheme::Pkcs1(h) => {
                let d = digest.ok_or(CKR_GENERAL_ERROR)?;
                tscns_cert::emsa::pkcs1_v1_5_block(h, &d, k).map_err(|_| CKR_KEY_SIZE_RANGE)?
            }
            Scheme::RawPss { hash, salt_len } => {
                if self.raw.len() != hash.output_len() {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                pss(hash, &self.raw, self.bits, salt_len)?
            }
            Scheme::Pss { hash, salt_len } => {
                let d = digest.ok_or(CKR_GENERAL_ERROR)?;
                pss(hash, &d, self.bits, salt_len)?
            }
        };
        Ok(Zeroizing::new(out))
    }
}

fn pss(hash: HashAlg, digest: &[u8], bits: usize, salt_len: usize) -> Result<Vec<u8>, CK_RV> {
    let mut salt = Zeroizing::new(vec![0u8; salt_len]);
    getrandom::getrandom(&mut salt).map_err(|_| CKR_FUNCTION_FAILED)?;
    tscns_cert::emsa::pss_block_with_salt(hash, digest, bits, &salt).map_err(|_| CKR_KEY_SIZE_RANGE)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use rsa::traits::PublicKeyParts;
    use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};

    fn mech(kind: CK_MECHANISM_TYPE, pss: Option<PssParams>) -> Mechanism {
        Mechanism {
            kind,
            pss,
            param_len: if pss.is_some() { 24 } else { 0 },
        }
    }

    fn raw_sign(key: &RsaPrivateKey, block: &[u8]) -> Vec<u8> {
        let s = rsa::hazmat::rsa_decrypt_and_check(
            key,
            None::<&mut rsa::rand_core::OsRng>,
            &BigUint::from_bytes_be(block),
        )
        .unwrap();
        let mut v = s.to_bytes_be();
        while v.len() < key.size() {
            v.insert(0, 0);
        }
        v
    }

    #[test]
    fn every_mechanism_gives_a_block_the_rsa_crate_verifies() {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let public = key.to_public_key();
        let msg = b"tscns pkcs11 module";
        let sha256 = sha2::Sha256::digest(msg).to_vec();
        let pss256 = PssParams {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32,
        };

        // CKM_SHA256_RSA_PKCS, in two parts.
        let mut op = SignOp::new(&mech(CKM_SHA256_RSA_PKCS, None), 1024).unwrap();
        op.update(&msg[..5]).unwrap();
        op.update(&msg[5..]).unwrap();
        let sig = raw_sign(&key, &op.block().unwrap());
        public
            .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &sha256, &sig)
            .unwrap();

        // CKM_RSA_PKCS over a DigestInfo gives the same signature.
        let mut op = SignOp::new(&mech(CKM_RSA_PKCS, None), 1024).unwrap();
        op.update(&tscns_cert::emsa::digest_info(HashAlg::Sha256, &sha256).unwrap())
            .unwrap();
        let sig2 = raw_sign(&key, &op.block().unwrap());
        assert_eq!(sig, sig2);

        // CKM_SHA256_RSA_PKCS_PSS and CKM_RSA_PKCS_PSS.
        let mut op = SignOp::new(&mech(CKM_SHA256_RSA_PKCS_PSS, Some(pss256)), 1024).unwrap();
        op.update(msg).unwrap();
        let sig = raw_sign(&key, &op.block().unwrap());
        public
            .verify(Pss::new_with_salt::<sha2::Sha256>(32), &sha256, &sig)
            .unwrap();
        let mut op = SignOp::new(
            &mech(
                CKM_RSA_PKCS_PSS,
                Some(PssParams {
                    salt_len: 20,
                    ..pss256
                }),
            ),
            1024,
        )
        .unwrap();
        op.update(&sha256).unwrap();
        let sig = raw_sign(&key, &op.block().unwrap());
        public
            .verify(Pss::new_with_salt::<sha2::Sha256>(20), &sha256, &sig)
            .unwrap();
    }

    #[test]
    fn bad_parameters_and_lengths_are_refused() {
        let pss256 = PssParams {
            hash_alg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            salt_len: 32,
        };
        assert_eq!(
            SignOp::new(&mech(CKM_MD5_RSA_PKCS, None), 1024).err(),
            Some(CKR_MECHANISM_INVALID)
        );
        assert_eq!(
            SignOp::new(&mech(CKM_RSA_PKCS_PSS, None), 1024).err(),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            SignOp::new(&mech(CKM_SHA384_RSA_PKCS_PSS, Some(pss256)), 1024).err(),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            SignOp::new(
                &mech(
                    CKM_RSA_PKCS_PSS,
                    Some(PssParams {
                        mgf: CKG_MGF1_SHA1,
                        ..pss256
                    })
                ),
                1024
            )
            .err(),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            SignOp::new(
                &mech(
                    CKM_RSA_PKCS_PSS,
                    Some(PssParams {
                        salt_len: 1000,
                        ..pss256
                    })
                ),
                1024
            )
            .err(),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            SignOp::new(
                &Mechanism {
                    kind: CKM_SHA256_RSA_PKCS,
                    pss: None,
                    param_len: 4
                },
                1024
            )
            .err(),
            Some(CKR_MECHANISM_PARAM_INVALID)
        );
        let mut op = SignOp::new(&mech(CKM_RSA_PKCS, None), 1024).unwrap();
        op.update(&[1; 118]).unwrap();
        assert_eq!(op.block().err(), Some(CKR_DATA_LEN_RANGE));
        let mut op = SignOp::new(&mech(CKM_RSA_PKCS, None), 1024).unwrap();
        assert_eq!(op.update(&[1; 129]).err(), Some(CKR_DATA_LEN_RANGE));
        let mut op = SignOp::new(&mech(CKM_RSA_PKCS_PSS, Some(pss256)), 1024).unwrap();
        op.update(&[1; 20]).unwrap();
        assert_eq!(op.block().err(), Some(CKR_DATA_LEN_RANGE));
    }

    proptest! {
        #[test]
        fn raw_pkcs1_blocks_are_well_formed(data in proptest::collection::vec(any::<u8>(), 0..=117)) {
            let mut op = SignOp::new(&mech(CKM_RSA_PKCS, None), 1024).unwrap();
            op.update(&data).unwrap();
            let b = op.block().unwrap();
            prop_assert_eq!(b.len(), 128);
            prop_assert_eq!(&b[..2], &[0, 1]);
            prop_assert_eq!(&b[128 - data.len()..], &data[..]);
            prop_assert_eq!(b[128 - data.len() - 1], 0);
            prop_assert!(b[2..128 - data.len() - 1].iter().all(|&x| x == 0xFF));
        }
    }
}
