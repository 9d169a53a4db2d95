//! The smart-card listener's client-certificate verifier.
//!
//! The chain (CNS CAs, intermediates, validity) is checked by rustls's WebPKI verifier, unchanged.
//! The handshake signature (TLS 1.2 `CertificateVerify`, TLS 1.3 `CertificateVerify`) is where ring
//! alone would fail CNS 1.0 cards: ring's default RSA algorithms refuse moduli under 2048 bits,
//! while CNS 1.0 cards carry 1024-bit keys and the real Cohesion server accepts them. So for RSA
//! keys of 1024 up to 2047 bits the signature is verified here:
//! - PKCS#1 v1.5 (TLS 1.2 only) with SHA-256 / SHA-512 through ring's
//!   `RSA_PKCS1_1024_8192_*_FOR_LEGACY_USE_ONLY`, with SHA-384 through the `rsa` crate (ring has no
//!   1024-bit SHA-384 variant);
//! - RSA-PSS (TLS 1.2 and 1.3) with SHA-256 / 384 / 512, MGF1 with the same hash and salt length =
//!   hash length (RFC 8446 § 4.2.3), through the `rsa` crate.
//!
//! RSA keys of 2048 bits and more, and every non-RSA key, go to the WebPKI verifier (ring) as
//! before. RSA keys under 1024 bits are refused with a message saying so.

use std::sync::Arc;

use rsa::traits::PublicKeyParts as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, PeerMisbehaved,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

/// The smallest RSA modulus whose handshake signatures are accepted: CNS 1.0 cards have 1024-bit
/// keys (CNS specification, "File system": 1024-bit keys on the first cards, 2048 later).
pub(crate) const MIN_RSA_BITS: usize = 1024;

/// From this modulus size on, ring's default algorithms (the WebPKI verifier) accept the key.
const RING_DEFAULT_MIN_RSA_BITS: usize = 2048;

/// `rsaEncryption` (RFC 8017 appendix C, `pkcs-1 1`).
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// rustls's WebPKI client verifier for the chain; handshake signatures from 1024-bit RSA keys too.
#[derive(Debug)]
pub(crate) struct CnsClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl CnsClientVerifier {
    /// Wraps `inner` (the WebPKI verifier built on the CNS CAs).
    pub(crate) fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        Self { inner }
    }
}

/// An RSA key from the client's certificate, small enough to need this module.
struct SmallRsaKey {
    /// `RSAPublicKey` DER (PKCS#1), as ring takes it.
    pkcs1: Vec<u8>,
    key: rsa::RsaPublicKey,
}

/// What kind of key the end-entity certificate holds.
enum ClientKey {
    /// RSA with 1024..2048 bits: verified here.
    SmallRsa(Box<SmallRsaKey>),
    /// Anything else the WebPKI verifier handles (RSA >= 2048 bits, EC, ...).
    Default,
}

fn bad_encoding() -> rustls::Error {
    CertificateError::BadEncoding.into()
}

fn refused(reason: String) -> rustls::Error {
    CertificateError::Other(OtherError(Arc::new(crate::Error::Tls(reason)))).into()
}

/// Bits of a big-endian unsigned integer (leading zero bytes allowed).
fn bit_len(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    let lead = trimmed.first().map_or(0, |b| b.leading_zeros() as usize);
    trimmed.len() * 8 - lead
}

fn client_key(cert: &CertificateDer<'_>) -> Result<ClientKey, rustls::Error> {
    // One `der` crate: x509-cert's and the `rsa` crate's `pkcs1` share it.
    use x509_cert::der::Decode as _;
    let parsed = x509_cert::Certificate::from_der(cert.as_ref()).map_err(|_| bad_encoding())?;
    let spki = &parsed.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
        return Ok(ClientKey::Default);
    }
    let pkcs1 = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(bad_encoding)?;
    let asn1 = rsa::pkcs1::RsaPublicKey::from_der(pkcs1).map_err(|_| bad_encoding())?;
    let bits = bit_len(asn1.modulus.as_bytes());
    if bits >= RING_DEFAULT_MIN_RSA_BITS {
        return Ok(ClientKey::Default);
    }
    if bits < MIN_RSA_BITS {
        return Err(refused(format!(
            "the client certificate's RSA key has {bits} bits; the smart-card login accepts RSA \
             keys of {MIN_RSA_BITS} bits or more (CNS cards have 1024 or 2048)"
        )));
    }
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(asn1.modulus.as_bytes()),
        rsa::BigUint::from_bytes_be(asn1.public_exponent.as_bytes()),
    )
    .map_err(|e| {
        refused(format!(
            "the client certificate's RSA key is not usable: {e}"
        ))
    })?;
    Ok(ClientKey::SmallRsa(Box::new(SmallRsaKey {
        pkcs1: pkcs1.to_vec(),
        key,
    })))
}

/// Verifies `sig` over `message` with a 1024..2047-bit RSA key. `tls13` allows only RSA-PSS.
fn verify_small_rsa(
    key: &SmallRsaKey,
    scheme: SignatureScheme,
    message: &[u8],
    sig: &[u8],
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use ring::signature::{
        UnparsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    };
    let ring_pkcs1 = |alg: &'static ring::signature::RsaParameters| {
        UnparsedPublicKey::new(alg, &key.pkcs1)
            .verify(message, sig)
            .is_ok()
    };
    // A signature must be exactly as long as the modulus (RFC 8017 §§ 8.1.2, 8.2.2).
    let right_length = sig.len() == key.key.size();
    let valid = match scheme {
        SignatureScheme::RSA_PKCS1_SHA256 if !tls13 => {
            ring_pkcs1(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY)
        }
        SignatureScheme::RSA_PKCS1_SHA512 if !tls13 => {
            ring_pkcs1(&RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY)
        }
        SignatureScheme::RSA_PKCS1_SHA384 if !tls13 => {
            right_length
                && rsa_verifies::<sha2::Sha384>(
                    &key.key,
                    rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    message,
                    sig,
                )
        }
        // RSA-PSS, salt length = hash length (RFC 8446 § 4.2.3), which `Pss::new` sets and the
        // `rsa` crate's verification enforces.
        SignatureScheme::RSA_PSS_SHA256 => {
            right_length
                && rsa_verifies::<sha2::Sha256>(
                    &key.key,
                    rsa::Pss::new::<sha2::Sha256>(),
                    message,
                    sig,
                )
        }
        SignatureScheme::RSA_PSS_SHA384 => {
            right_length
                && rsa_verifies::<sha2::Sha384>(
                    &key.key,
                    rsa::Pss::new::<sha2::Sha384>(),
                    message,
                    sig,
                )
        }
        SignatureScheme::RSA_PSS_SHA512 => {
            right_length
                && rsa_verifies::<sha2::Sha512>(
                    &key.key,
                    rsa::Pss::new::<sha2::Sha512>(),
                    message,
                    sig,
                )
        }
        // PKCS#1 v1.5 in TLS 1.3, SHA-1, or a non-RSA scheme for an RSA key: never offered by the
        // server's CertificateRequest for this key.
        _ => return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into()),
    };
    if valid {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(CertificateError::BadSignature.into())
    }
}

/// The `rsa` crate's check of `sig` over the `D` hash of `message` with `padding`.
fn rsa_verifies<D: sha2::Digest>(
    key: &rsa::RsaPublicKey,
    padding: impl rsa::traits::SignatureScheme,
    message: &[u8],
    sig: &[u8],
) -> bool {
    key.verify(padding, &D::digest(message), sig).is_ok()
}

/// The signature check for `cert`'s key if this module handles it (RSA, 1024..2047 bits: `Some`),
/// `None` when the WebPKI verifier should (RSA >= 2048 bits, non-RSA keys); an error for RSA keys
/// under 1024 bits, unreadable certificates and bad signatures.
fn verify_here(
    cert: &CertificateDer<'_>,
    scheme: SignatureScheme,
    message: &[u8],
    sig: &[u8],
    tls13: bool,
) -> Result<Option<HandshakeSignatureValid>, rustls::Error> {
    match client_key(cert)? {
        ClientKey::SmallRsa(key) => verify_small_rsa(&key, scheme, message, sig, tls13).map(Some),
        ClientKey::Default => Ok(None),
    }
}

impl ClientCertVerifier for CnsClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match verify_here(cert, dss.scheme, message, dss.signature(), false)? {
            Some(valid) => Ok(valid),
            None => self.inner.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match verify_here(cert, dss.scheme, message, dss.signature(), true)? {
            Some(valid) => Ok(valid),
            None => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    use rsa::rand_core::OsRng;
    use rsa::RsaPrivateKey;
    use sha2::Digest as _;

    /// An RSA public key as rcgen writes it into a certificate.
    struct RsaPublic(Vec<u8>);

    impl rcgen::PublicKeyData for RsaPublic {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_RSA_SHA256
        }
    }

    /// A certificate for `subject` (any public key), issued by a throwaway ECDSA CA.
    fn certificate(subject: &impl rcgen::PublicKeyData) -> CertificateDer<'static> {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.signed_by(subject, &ca).unwrap().der().clone()
    }

    /// A fresh RSA key of `bits` bits and a certificate for it.
    fn rsa_identity(bits: usize) -> (RsaPrivateKey, CertificateDer<'static>) {
        let key = RsaPrivateKey::new(&mut OsRng, bits).unwrap();
        let public = RsaPublic(key.to_public_key().to_pkcs1_der().unwrap().into_vec());
        let cert = certificate(&public);
        (key, cert)
    }

    const MESSAGE: &[u8] = b"TLS 1.x CertificateVerify content, as the server computes it";

    fn sign(key: &RsaPrivateKey, scheme: SignatureScheme, message: &[u8]) -> Vec<u8> {
        use rsa::{Pkcs1v15Sign, Pss};
        use sha2::{Sha256, Sha384, Sha512};
        match scheme {
            SignatureScheme::RSA_PKCS1_SHA256 => key
                .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
                .unwrap(),
            SignatureScheme::RSA_PKCS1_SHA384 => key
                .sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message))
                .unwrap(),
            SignatureScheme::RSA_PKCS1_SHA512 => key
                .sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message))
                .unwrap(),
            SignatureScheme::RSA_PSS_SHA256 => key
                .sign_with_rng(&mut OsRng, Pss::new::<Sha256>(), &Sha256::digest(message))
                .unwrap(),
            SignatureScheme::RSA_PSS_SHA384 => key
                .sign_with_rng(&mut OsRng, Pss::new::<Sha384>(), &Sha384::digest(message))
                .unwrap(),
            other => panic!("no test signer for {other:?}"),
        }
    }

    const PKCS1: [SignatureScheme; 3] = [
        SignatureScheme::RSA_PKCS1_SHA256,
        SignatureScheme::RSA_PKCS1_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512,
    ];
    // PSS with SHA-512 and a 64-byte salt does not fit a 1024-bit modulus (RFC 8017 § 9.1.1).
    const PSS: [SignatureScheme; 2] = [
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PSS_SHA384,
    ];

    #[test]
    fn signatures_from_a_1024_bit_key_verify() {
        let (key, cert) = rsa_identity(1024);
        for scheme in PKCS1 {
            let sig = sign(&key, scheme, MESSAGE);
            assert!(
                verify_here(&cert, scheme, MESSAGE, &sig, false)
                    .unwrap()
                    .is_some(),
                "TLS 1.2 {scheme:?}"
            );
        }
        for scheme in PSS {
            let sig = sign(&key, scheme, MESSAGE);
            for tls13 in [false, true] {
                assert!(
                    verify_here(&cert, scheme, MESSAGE, &sig, tls13)
                        .unwrap()
                        .is_some(),
                    "{scheme:?} tls13={tls13}"
                );
            }
        }
    }

    #[test]
    fn tampered_signatures_from_a_1024_bit_key_are_refused() {
        let (key, cert) = rsa_identity(1024);
        for scheme in PKCS1.into_iter().chain(PSS) {
            let tls13 = PSS.contains(&scheme);
            let good = sign(&key, scheme, MESSAGE);
            let mut flipped = good.clone();
            flipped[40] ^= 0x01;
            let mut short = good.clone();
            short.remove(0);
            let mut long = good.clone();
            long.insert(0, 0);
            for sig in [flipped, short, long, vec![0; good.len()]] {
                let e = verify_here(&cert, scheme, MESSAGE, &sig, tls13).unwrap_err();
                assert_eq!(
                    e,
                    rustls::Error::InvalidCertificate(CertificateError::BadSignature),
                    "{scheme:?}"
                );
            }
            // The right signature over another message.
            let e = verify_here(&cert, scheme, b"another transcript", &good, tls13).unwrap_err();
            assert_eq!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::BadSignature)
            );
        }
    }

    #[test]
    fn a_signature_from_another_1024_bit_key_is_refused() {
        let (_, cert) = rsa_identity(1024);
        let (other, _) = rsa_identity(1024);
        let sig = sign(&other, SignatureScheme::RSA_PSS_SHA256, MESSAGE);
        assert!(verify_here(&cert, SignatureScheme::RSA_PSS_SHA256, MESSAGE, &sig, true).is_err());
    }

    #[test]
    fn pss_needs_a_salt_as_long_as_the_hash() {
        use sha2::Sha256;
        let (key, cert) = rsa_identity(1024);
        let sig = key
            .sign_with_rng(
                &mut OsRng,
                rsa::Pss::new_with_salt::<Sha256>(0),
                &Sha256::digest(MESSAGE),
            )
            .unwrap();
        let e =
            verify_here(&cert, SignatureScheme::RSA_PSS_SHA256, MESSAGE, &sig, true).unwrap_err();
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        );
    }

    #[test]
    fn pkcs1_is_refused_in_tls13_and_unoffered_schemes_everywhere() {
        let (key, cert) = rsa_identity(1024);
        let sig = sign(&key, SignatureScheme::RSA_PKCS1_SHA256, MESSAGE);
        let e = verify_here(
            &cert,
            SignatureScheme::RSA_PKCS1_SHA256,
            MESSAGE,
            &sig,
            true,
        )
        .unwrap_err();
        assert_eq!(
            e,
            rustls::Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)
        );
        for scheme in [
            SignatureScheme::RSA_PKCS1_SHA1,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ED25519,
        ] {
            assert!(verify_here(&cert, scheme, MESSAGE, &sig, false).is_err());
        }
    }

    #[test]
    fn rsa_keys_under_1024_bits_are_refused_even_with_a_good_signature() {
        let (key, cert) = rsa_identity(768);
        let sig = sign(&key, SignatureScheme::RSA_PKCS1_SHA256, MESSAGE);
        let e = verify_here(
            &cert,
            SignatureScheme::RSA_PKCS1_SHA256,
            MESSAGE,
            &sig,
            false,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("768 bits") && text.contains("1024 bits or more"),
            "{text}"
        );
        // The TLS 1.3 path too.
        let sig = sign(&key, SignatureScheme::RSA_PSS_SHA256, MESSAGE);
        assert!(verify_here(&cert, SignatureScheme::RSA_PSS_SHA256, MESSAGE, &sig, true).is_err());
    }

    #[test]
    fn large_rsa_and_ec_keys_go_to_the_webpki_verifier() {
        // The simulator's 2048-bit card certificate.
        let profile = tscns_sim::Profile::builtin("idemia-v2-2048").unwrap();
        let pki = tscns_sim::TestPki::issue(&profile).unwrap();
        let cert = CertificateDer::from(pki.card_cert_der().to_vec());
        let r = verify_here(
            &cert,
            SignatureScheme::RSA_PSS_SHA256,
            MESSAGE,
            &[0; 256],
            true,
        );
        assert!(matches!(r, Ok(None)), "{r:?}");
        let ec = rcgen::KeyPair::generate().unwrap();
        let cert = certificate(&ec);
        let r = verify_here(
            &cert,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            MESSAGE,
            &[0; 64],
            true,
        );
        assert!(matches!(r, Ok(None)), "{r:?}");
    }

    #[test]
    fn garbage_certificates_are_refused_not_panicked_on() {
        for bytes in [&b""[..], b"\x30\x03\x02\x01\x00", &[0xff; 40]] {
            let cert = CertificateDer::from(bytes.to_vec());
            let e = verify_here(&cert, SignatureScheme::RSA_PSS_SHA256, MESSAGE, &[], true)
                .unwrap_err();
            assert_eq!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any certificate bytes and signature: an answer, never a panic; never `Some` (valid) for
        /// bytes that are not a certificate.
        #[test]
        fn arbitrary_bytes_never_panic(
            cert in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            sig in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            tls13 in proptest::prelude::any::<bool>(),
        ) {
            let cert = CertificateDer::from(cert);
            let r = verify_here(&cert, SignatureScheme::RSA_PSS_SHA256, MESSAGE, &sig, tls13);
            proptest::prop_assert!(!matches!(r, Ok(Some(_))));
        }

        /// A 1024-bit key's certificate with any signature bytes: refused unless it is the real one.
        #[test]
        fn random_signatures_from_a_1024_bit_key_are_refused(
            sig in proptest::collection::vec(proptest::prelude::any::<u8>(), 128),
            pss in proptest::prelude::any::<bool>(),
        ) {
            let cert = fixed_1024_cert();
            let scheme = if pss {
                SignatureScheme::RSA_PSS_SHA256
            } else {
                SignatureScheme::RSA_PKCS1_SHA256
            };
            proptest::prop_assert!(verify_here(cert, scheme, MESSAGE, &sig, false).is_err());
        }
    }

    /// One 1024-bit certificate for the property tests (key generation once).
    fn fixed_1024_cert() -> &'static CertificateDer<'static> {
        static CERT: std::sync::OnceLock<CertificateDer<'static>> = std::sync::OnceLock::new();
        CERT.get_or_init(|| rsa_identity(1024).1)
    }

    /// A Cohesion signing certificate with a key `ring` cannot verify with is refused when the SP
    /// configuration is built, not at the first login.
    #[test]
    fn cohesion_signing_keys_under_2048_bits_are_refused_by_the_sp_config() {
        let build = |cert: &CertificateDer<'_>| {
            crate::SpConfig::builder()
                .environment(crate::Environment::Collaudo)
                .site_id("S")
                .mode(crate::Mode::Saml {
                    direct_to_cohesion_idp: false,
                })
                .allow(crate::AuthRestriction::SmartCard)
                .url_validate("https://s.example/cb")
                .cohesion_certificate(cert.as_ref())
                .build()
        };
        let e = build(fixed_1024_cert()).unwrap_err();
        assert!(
            matches!(&e, crate::Error::Config(m) if m.contains("1024 bits") && m.contains("2048")),
            "{e}"
        );
        assert!(build(&rsa_identity(2048).1).is_ok());
    }

    #[test]
    fn bit_length_counts_from_the_first_set_bit() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01, 0xff]), 9);
    }
}
