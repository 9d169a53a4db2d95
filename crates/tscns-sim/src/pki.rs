//! The test PKI: deterministic RSA keys, a test CA, and the CNS authentication certificate of
//! the simulated card (the CNS authentication certificate profile: CNS functional specification and OpenSC's `pkcs15-itacns.c`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData, SerialNumber,
    SignatureAlgorithm, SigningKey,
};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};
use time::Duration;

use crate::profile::SimProfile;
use crate::Error;

/// Independent random streams derived from one profile seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Stream {
    /// The card's authentication key.
    CardKey = 1,
    /// The test CA's key.
    CaKey = 2,
    /// Certificate serial numbers.
    Serial = 3,
    /// GET CHALLENGE answers.
    Challenge = 4,
}

/// A random generator for one stream of one seed.
pub(crate) fn rng(seed: u64, stream: Stream) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

type KeyCell = Arc<OnceLock<Result<Arc<RsaPrivateKey>, String>>>;
type KeyCache = Mutex<HashMap<(u64, Stream, usize), KeyCell>>;

/// Generates (once per process) the RSA key of `bits` bits for a seed and stream. Key generation
/// takes up to seconds for 2048 bits, so every key is cached.
pub(crate) fn rsa_key(seed: u64, stream: Stream, bits: usize) -> Result<Arc<RsaPrivateKey>, Error> {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    let cell = {
        let mut map = CACHE
            .get_or_init(|| Mutex::new(HashMap::new()))
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry((seed, stream, bits)).or_default().clone()
    };
    cell.get_or_init(|| {
        RsaPrivateKey::new(&mut rng(seed, stream), bits)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|reason| Error::Rsa { reason })
}

/// DER (tag, length, value) of an OBJECT IDENTIFIER written in dotted form.
pub(crate) fn encode_oid(dotted: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("{dotted:?} is not an object identifier like 1.3.76.16.2.1");
    let arcs = dotted
        .split('.')
        .map(|a| a.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
        return Err(bad());
    }
    let first = arcs[0]
        .checked_mul(40)
        .and_then(|v| v.checked_add(arcs[1]))
        .ok_or_else(bad)?;
    let mut body: Vec<u8> = Vec::new();
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        let mut chunk = vec![(arc & 0x7F) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push((rest & 0x7F) as u8 | 0x80);
            rest >>= 7;
        }
        body.extend(chunk.iter().rev());
    }
    let len = u8::try_from(body.len()).map_err(|_| bad())?;
    if len > 127 {
        return Err(bad());
    }
    let mut out = vec![0x06, len];
    out.extend(body);
    Ok(out)
}

/// DER of a SEQUENCE around `content` (any length).
fn der_sequence(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// certificatePolicies (RFC 5280 §4.2.1.4) with one PolicyInformation per OID, no qualifiers.
fn certificate_policies(policies: &[String]) -> Result<CustomExtension, Error> {
    let mut infos = Vec::new();
    for policy in policies {
        let oid =
            encode_oid(policy).map_err(|reason| Error::value("certificate.policies", reason))?;
        infos.extend(der_sequence(&oid));
    }
    // id-ce-certificatePolicies 2.5.29.32
    Ok(CustomExtension::from_oid_content(
        &[2, 5, 29, 32],
        der_sequence(&infos),
    ))
}

/// The hash in the CNS certificate CN: base64 of SHA-1 over EF_Dati_personali (spec: "the hash is
/// reportedly over EF_Dati_personali"), 28 characters.
pub fn cn_hash(dati_personali: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(dati_personali))
}

/// An RSA public key in the form rcgen writes into a certificate.
struct RsaPublicKeyData {
    pkcs1: Vec<u8>,
}

impl RsaPublicKeyData {
    fn new(key: &RsaPublicKey) -> Result<Self, Error> {
        Ok(RsaPublicKeyData {
            pkcs1: key.to_pkcs1_der().map_err(Error::pki)?.as_bytes().to_vec(),
        })
    }
}

impl PublicKeyData for RsaPublicKeyData {
    fn der_bytes(&self) -> &[u8] {
        &self.pkcs1
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// The test CA's key: signs with RSA PKCS#1 v1.5 and SHA-256 through the `rsa` crate
/// (deterministic, so certificates are the same bytes for the same seed).
struct RsaSigner {
    public: RsaPublicKeyData,
    key: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
}

impl RsaSigner {
    fn new(key: &RsaPrivateKey) -> Result<Self, Error> {
        Ok(RsaSigner {
            public: RsaPublicKeyData::new(&key.to_public_key())?,
            key: rsa::pkcs1v15::SigningKey::new(key.clone()),
        })
    }
}

impl PublicKeyData for RsaSigner {
    fn der_bytes(&self) -> &[u8] {
        self.public.der_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl SigningKey for RsaSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key
            .try_sign(msg)
            .map(|s| s.to_vec())
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A certificate and key issued by the test CA for a TLS server.
#[derive(Clone, Debug)]
pub struct ServerCertificate {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (ECDSA P-256), PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// The test PKI of one profile: the CA certificate and the card's authentication certificate.
#[derive(Clone)]
pub struct TestPki {
    ca_params: CertificateParams,
    ca_key: Arc<RsaPrivateKey>,
    ca_cert_der: Vec<u8>,
    ca_cert_pem: String,
    card_cert_der: Vec<u8>,
    card_cert_pem: String,
    card_key: Arc<RsaPrivateKey>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_cert_der_len", &self.ca_cert_der.len())
            .field("card_cert_der_len", &self.card_cert_der.len())
            .finish_non_exhaustive()
    }
}

/// Size of the test CA key (ring, used by rustls, accepts RSA keys of 2048 bits and more).
const CA_KEY_BITS: usize = 2048;

impl TestPki {
    /// Issues the test CA and the card certificate for a profile (deterministic for its seed).
    pub fn issue(profile: &SimProfile) -> Result<TestPki, Error> {
        profile.validate()?;
        let card_key = rsa_key(profile.seed, Stream::CardKey, profile.key_bits.bits())?;
        let ca_key = rsa_key(profile.seed, Stream::CaKey, CA_KEY_BITS)?;
        let cert = &profile.certificate;

        let mut ca_params = CertificateParams::default();
        let mut ca_dn = DistinguishedName::new();
        ca_dn.push(DnType::CountryName, "IT");
        ca_dn.push(DnType::OrganizationName, cert.organization.as_str());
        ca_dn.push(
            DnType::OrganizationalUnitName,
            "Servizi di Certificazione (TEST)",
        );
        ca_dn.push(
            DnType::CommonName,
            format!("{} - CA Cittadini TEST", cert.organization),
        );
        ca_params.distinguished_name = ca_dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        // The CA is valid a year before and ten years after the card (saturating).
        ca_params.not_before = cert
            .not_before
            .checked_sub(Duration::days(365))
            .unwrap_or(cert.not_before);
        ca_params.not_after = cert
            .not_after
            .checked_add(Duration::days(3650))
            .unwrap_or(cert.not_after);
        let mut serial_rng = rng(profile.seed, Stream::Serial);
        ca_params.serial_number = Some(serial(&mut serial_rng));
        let ca_signer = RsaSigner::new(&ca_key)?;
        let ca_cert = ca_params.self_signed(&ca_signer).map_err(Error::pki)?;

        let dati = crate::personal::encode(&profile.personal_data);
        let pd = &profile.personal_data;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // Encoding order C, O, OU, CN, givenName, SN: read back (RFC 4514) it is
        // "SN=..., givenName=..., CN=..., OU=..., O=..., C=IT" as on real cards.
        dn.push(DnType::CountryName, "IT");
        dn.push(DnType::OrganizationName, cert.organization.as_str());
        if !cert.issuing_administration.is_empty() {
            dn.push(
                DnType::OrganizationalUnitName,
                cert.issuing_administration.as_str(),
            );
        }
        dn.push(
            DnType::CommonName,
            format!(
                "{}/{}.{}",
                pd.codice_fiscale,
                profile.card_id,
                cn_hash(&dati)
            ),
        );
        if !pd.given_name.is_empty() {
            // givenName 2.5.4.42
            dn.push(
                DnType::CustomDnType(vec![2, 5, 4, 42]),
                pd.given_name.as_str(),
            );
        }
        if !pd.surname.is_empty() {
            // surname 2.5.4.4
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 4]), pd.surname.as_str());
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        // rcgen marks keyUsage critical.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.custom_extensions = vec![certificate_policies(&cert.policies)?];
        params.use_authority_key_identifier_extension = true;
        params.not_before = cert.not_before;
        params.not_after = cert.not_after;
        params.serial_number = Some(serial(&mut serial_rng));
        let issuer = Issuer::new(ca_params.clone(), RsaSigner::new(&ca_key)?);
        let card_public = RsaPublicKeyData::new(&card_key.to_public_key())?;
        let card_cert = params
            .signed_by(&card_public, &issuer)
            .map_err(Error::pki)?;

        Ok(TestPki {
            ca_params,
            ca_key,
            ca_cert_der: ca_cert.der().to_vec(),
            ca_cert_pem: ca_cert.pem(),
            card_cert_der: card_cert.der().to_vec(),
            card_cert_pem: card_cert.pem(),
            card_key,
        })
    }

    /// The test CA certificate, DER.
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.ca_cert_der
    }

    /// The test CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The card's authentication certificate, DER (the content of EF_C_Carta).
    pub fn card_cert_der(&self) -> &[u8] {
        &self.card_cert_der
    }

    /// The card's authentication certificate, PEM.
    pub fn card_cert_pem(&self) -> &str {
        &self.card_cert_pem
    }

    /// The card's public key (to verify its signatures).
    pub fn card_public_key(&self) -> RsaPublicKey {
        self.card_key.to_public_key()
    }

    pub(crate) fn card_private_key(&self) -> Arc<RsaPrivateKey> {
        self.card_key.clone()
    }

    /// The test CA's private key, PKCS#8 DER (for tests that issue more certificates).
    pub fn ca_key_pkcs8_der(&self) -> Result<Vec<u8>, Error> {
        Ok(self
            .ca_key
            .to_pkcs8_der()
            .map_err(Error::pki)?
            .as_bytes()
            .to_vec())
    }

    /// Issues a TLS server certificate for `dns_names` (e.g. `["localhost"]`, IP addresses too)
    /// from the test CA, with a fresh ECDSA P-256 key, valid from one day ago for one year.
    pub fn issue_server_certificate(&self, dns_names: &[&str]) -> Result<ServerCertificate, Error> {
        let names: Vec<String> = dns_names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(Error::pki)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            dns_names.first().copied().unwrap_or("localhost"),
        );
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        let key = rcgen::KeyPair::generate().map_err(Error::pki)?;
        let issuer = Issuer::new(self.ca_params.clone(), RsaSigner::new(&self.ca_key)?);
        let cert = params.signed_by(&key, &issuer).map_err(Error::pki)?;
        Ok(ServerCertificate {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pkcs8_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes `ca.pem`, `cert.pem` and `cert.der` into `dir` (created if missing).
    pub fn write_to_dir(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::File {
            action: "create the output directory",
            path: dir.to_owned(),
            source,
        })?;
        let files: [(&str, &[u8]); 3] = [
            ("ca.pem", self.ca_cert_pem.as_bytes()),
            ("cert.pem", self.card_cert_pem.as_bytes()),
            ("cert.der", &self.card_cert_der),
        ];
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|source| Error::File {
                action: "write",
                path,
                source,
            })?;
        }
        Ok(())
    }
}

/// A positive, non-zero 16-byte serial number.
fn serial(rng: &mut ChaCha20Rng) -> SerialNumber {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7F) | 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding_matches_known_der() {
        // 1.3.76.16.2.1 -> 06 05 2B 4C 10 02 01
        assert_eq!(
            encode_oid("1.3.76.16.2.1").unwrap(),
            [0x06, 0x05, 0x2B, 0x4C, 0x10, 0x02, 0x01]
        );
        // 1.2.840.113549 -> 06 06 2A 86 48 86 F7 0D
        assert_eq!(
            encode_oid("1.2.840.113549").unwrap(),
            [0x06, 0x06, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D]
        );
        for bad in ["", "1", "3.1", "1.40", "1.x.3", "1..2"] {
            assert!(encode_oid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cn_hash_is_28_base64_chars() {
        let h = cn_hash(b"000020");
        assert_eq!(h.len(), 28);
        assert!(h.ends_with('='));
    }

    #[test]
    fn long_sequences_use_long_form_length() {
        let s = der_sequence(&[0u8; 300]);
        assert_eq!(&s[..4], &[0x30, 0x82, 0x01, 0x2C]);
    }
}
