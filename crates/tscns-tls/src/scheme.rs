//! The RSA signature schemes a TLS client key may be asked for, and the hashes they use.

use std::fmt;

/// A hash function used by an RSA signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (32-byte digest).
    Sha256,
    /// SHA-384 (48-byte digest).
    Sha384,
    /// SHA-512 (64-byte digest).
    Sha512,
}

impl HashAlgorithm {
    /// Length of the digest in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Hashes `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, message).as_ref().to_vec()
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        })
    }
}

/// An RSA signature scheme usable for TLS client authentication (RFC 8446 §4.2.3).
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
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::Pkcs1Sha256 | Self::PssSha256 => HashAlgorithm::Sha256,
            Self::Pkcs1Sha384 | Self::PssSha384 => HashAlgorithm::Sha384,
            Self::Pkcs1Sha512 | Self::PssSha512 => HashAlgorithm::Sha512,
        }
    }

    /// True for the RSASSA-PSS schemes (the only RSA schemes TLS 1.3 allows in CertificateVerify).
    pub fn is_pss(self) -> bool {
        matches!(self, Self::PssSha256 | Self::PssSha384 | Self::PssSha512)
    }

    /// The PSS scheme with the given hash.
    pub fn pss(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha256 => Self::PssSha256,
            HashAlgorithm::Sha384 => Self::PssSha384,
            HashAlgorithm::Sha512 => Self::PssSha512,
        }
    }

    /// The PKCS#1 v1.5 scheme with the given hash.
    pub fn pkcs1(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha256 => Self::Pkcs1Sha256,
            HashAlgorithm::Sha384 => Self::Pkcs1Sha384,
            HashAlgorithm::Sha512 => Self::Pkcs1Sha512,
        }
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
            k >= crate::padding::digest_info_prefix(self.hash()).len() + h + 11
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
    fn digests_have_their_lengths() {
        for h in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            assert_eq!(h.digest(b"abc").len(), h.output_len());
        }
    }
}
