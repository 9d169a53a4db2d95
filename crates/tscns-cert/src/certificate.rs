//! The CNS authentication certificate (EF_C_Carta) read with `x509-cert`.

use time::OffsetDateTime;
use x509_cert::der::asn1::{ObjectIdentifier, UintRef};
use x509_cert::der::{Any, Decode, Reader, SliceReader, Tag, Tagged};
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage};
use x509_cert::name::Name;
use x509_cert::Certificate;

use crate::{CardId, CodiceFiscale, Error};

/// Object identifiers this crate reads (RFC 5280, RFC 4519, RFC 3279/4055/5480/8410, and the CNS
/// policy OIDs of the CNS authentication certificate profile: CNS functional specification and OpenSC's `pkcs15-itacns.c`).
pub mod oid {
    use x509_cert::der::asn1::ObjectIdentifier as Oid;

    /// commonName (RFC 4519).
    pub const CN: Oid = Oid::new_unwrap("2.5.4.3");
    /// surname (RFC 4519).
    pub const SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
    /// givenName (RFC 4519).
    pub const GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
    /// organizationalUnitName (RFC 4519).
    pub const OU: Oid = Oid::new_unwrap("2.5.4.11");
    /// organizationName (RFC 4519).
    pub const O: Oid = Oid::new_unwrap("2.5.4.10");
    /// countryName (RFC 4519).
    pub const C: Oid = Oid::new_unwrap("2.5.4.6");

    /// keyUsage extension (RFC 5280 §4.2.1.3).
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    /// extendedKeyUsage extension (RFC 5280 §4.2.1.12).
    pub const EXT_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
    /// certificatePolicies extension (RFC 5280 §4.2.1.4).
    pub const EXT_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
    /// basicConstraints extension (RFC 5280 §4.2.1.9).
    pub const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    /// subjectKeyIdentifier (RFC 5280 §4.2.1.2).
    pub const EXT_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
    /// authorityKeyIdentifier (RFC 5280 §4.2.1.1).
    pub const EXT_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
    /// subjectAltName (RFC 5280 §4.2.1.6).
    pub const EXT_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
    /// cRLDistributionPoints (RFC 5280 §4.2.1.13).
    pub const EXT_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
    /// nameConstraints (RFC 5280 §4.2.1.10).
    pub const EXT_NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");

    /// id-kp-clientAuth (RFC 5280 §4.2.1.12).
    pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
    /// anyExtendedKeyUsage (RFC 5280 §4.2.1.12).
    pub const ANY_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37.0");

    /// CNS authentication certificate policy (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver).
    pub const POLICY_CNS: Oid = Oid::new_unwrap("1.3.76.16.2.1");
    /// Lombardy CRS policy, first form (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver).
    pub const POLICY_CRS_LOMBARDIA_1: Oid = Oid::new_unwrap("1.3.159.6.1.3.2.10");
    /// Lombardy CRS policy, second form (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver).
    pub const POLICY_CRS_LOMBARDIA_2: Oid = Oid::new_unwrap("1.3.76.12.1.1.10.2.2.10");
    /// CIE (electronic identity card) policy (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver).
    pub const POLICY_CIE: Oid = Oid::new_unwrap("1.3.76.47.4");

    /// rsaEncryption (RFC 3279 §2.3.1).
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    /// id-RSASSA-PSS as a key algorithm (RFC 4055 §3.1).
    pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
    /// id-ecPublicKey (RFC 5480 §2.1.1).
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    /// secp256r1 / P-256 (RFC 5480 §2.1.1.1).
    pub const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 / P-384 (RFC 5480 §2.1.1.1).
    pub const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
    /// secp521r1 / P-521 (RFC 5480 §2.1.1.1).
    pub const P521: Oid = Oid::new_unwrap("1.3.132.0.35");
    /// Ed25519 (RFC 8410 §3).
    pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
}

/// Known CNS authentication policies (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver).
pub const CNS_POLICIES: [ObjectIdentifier; 3] = [
    oid::POLICY_CNS,
    oid::POLICY_CRS_LOMBARDIA_1,
    oid::POLICY_CRS_LOMBARDIA_2,
];

/// The public key of the certificate: algorithm and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `"RSA"`, `"RSA-PSS"`, `"EC"`, `"Ed25519"`, or the algorithm OID when unknown.
    pub algorithm: String,
    /// Key size in bits: the RSA modulus length, the EC curve size; `None` when unknown.
    pub bits: Option<u32>,
    /// The EC curve name (`"P-256"`, ...) or OID, for EC keys.
    pub curve: Option<String>,
}

/// The identity written in the subject CN of a CNS certificate, `<cf>/<card id>.<hash>`,
/// split into its three parts as written (not yet validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnParts {
    /// The part before `/`: the holder's codice fiscale.
    pub codice_fiscale: String,
    /// The part between `/` and `.`: the card id.
    pub card_id: String,
    /// The part after the first `.`: a base64 SHA-1 hash (reportedly over EF_Dati_personali).
    pub data_hash: String,
}

impl CnParts {
    /// Splits a CN of the form `<cf>/<card id>.<hash>`.
    pub fn split(cn: &str) -> Result<CnParts, Error> {
        let bad = |reason: &str| Error::NotCnsIdentity {
            cn: cn.to_owned(),
            reason: reason.to_owned(),
        };
        let (cf, rest) = cn
            .split_once('/')
            .ok_or_else(|| bad("no '/' after the codice fiscale"))?;
        let (card, hash) = rest
            .split_once('.')
            .ok_or_else(|| bad("no '.' after the card id"))?;
        if cf.is_empty() || card.is_empty() || hash.is_empty() {
            return Err(bad("a part is empty"));
        }
        Ok(CnParts {
            codice_fiscale: cf.to_owned(),
            card_id: card.to_owned(),
            data_hash: hash.to_owned(),
        })
    }

    /// The 20 bytes of the hash if it is 28 characters of standard base64 (a SHA-1 digest).
    pub fn data_hash_bytes(&self) -> Option<[u8; 20]> {
        decode_base64_sha1(&self.data_hash)
    }
}

/// The validated identity in a CNS certificate's CN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnsIdentity {
    /// The holder's codice fiscale.
    pub codice_fiscale: CodiceFiscale,
    /// The card id (EF_ID_Carta).
    pub card_id: CardId,
    /// The base64 hash after the card id, as written.
    pub data_hash: String,
}

/// A CNS authentication certificate: an X.509 certificate plus the CNS reading of it.
///
/// Built from DER or PEM with [`CnsCertificate::from_der`], [`CnsCertificate::from_pem`] or
/// [`CnsCertificate::from_bytes`] (either). Accessors never fail: a field the certificate lacks
/// is `None`; [`CnsCertificate::conformance`] says what is wrong with it.
#[derive(Debug, Clone)]
pub struct CnsCertificate {
    der: Vec<u8>,
    cert: Certificate,
}

impl CnsCertificate {
    /// Reads a DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let cert = Certificate::from_der(der).map_err(|e| Error::NotACertificate(e.to_string()))?;
        Ok(CnsCertificate {
            der: der.to_vec(),
            cert,
        })
    }

    /// Reads a PEM certificate (`-----BEGIN CERTIFICATE-----`); the first one if there are several.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let ders = parse_certificates(pem)?;
        match ders.first() {
            Some(der) => CnsCertificate::from_der(der),
            None => Err(Error::NotACertificate("no PEM certificate found".into())),
        }
    }

    /// Reads a certificate in DER or PEM (detected from the content).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if looks_like_pem(bytes) {
            CnsCertificate::from_pem(bytes)
        } else {
            CnsCertificate::from_der(bytes)
        }
    }

    /// The DER encoding, exactly as read.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`, base64 in 64-character lines, LF
    /// line endings), encoding the DER exactly as read.
    pub fn to_pem(&self) -> Result<String, Error> {
        use x509_cert::der::pem::{encode_string, LineEnding};
        encode_string("CERTIFICATE", LineEnding::LF, &self.der)
            .map_err(|e| Error::NotACertificate(format!("cannot encode as PEM: {e}")))
    }

    /// The parsed `x509-cert` certificate, for anything this type does not expose.
    pub fn x509(&self) -> &Certificate {
        &self.cert
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// The subject common name (CN), e.g. `RSSMRA85T10A562S/8038000000000009.<hash>`.
    pub fn common_name(&self) -> Option<String> {
        attribute(&self.cert.tbs_certificate.subject, oid::CN)
    }

    /// The CN split into codice fiscale, card id and hash, if it has the CNS form.
    pub fn cn_parts(&self) -> Result<CnParts, Error> {
        match self.common_name() {
            Some(cn) => CnParts::split(&cn),
            None => Err(Error::NotCnsIdentity {
                cn: String::new(),
                reason: "the subject has no CN".into(),
            }),
        }
    }

    /// The holder's identity from the CN, every part validated: codice fiscale (check letter),
    /// card id (Luhn) and the hash as written.
    pub fn identity(&self) -> Result<CnsIdentity, Error> {
        let parts = self.cn_parts()?;
        Ok(CnsIdentity {
            codice_fiscale: CodiceFiscale::parse(&parts.codice_fiscale)?,
            card_id: CardId::parse(&parts.card_id)?,
            data_hash: parts.data_hash,
        })
    }

    /// The holder's codice fiscale from the CN, validated.
    pub fn codice_fiscale(&self) -> Result<CodiceFiscale, Error> {
        CodiceFiscale::parse(&self.cn_parts()?.codice_fiscale)
    }

    /// The card id from the CN, validated (Luhn).
    pub fn card_id(&self) -> Result<CardId, Error> {
        CardId::parse(&self.cn_parts()?.card_id)
    }

    /// The holder's surname (subject SN).
    pub fn surname(&self) -> Option<String> {
        attribute(&self.cert.tbs_certificate.subject, oid::SURNAME)
    }

    /// The holder's given name (subject givenName).
    pub fn given_name(&self) -> Option<String> {
        attribute(&self.cert.tbs_certificate.subject, oid::GIVEN_NAME)
    }

    /// The issuing administration (subject OU), e.g. `REGIONE LAZIO`.
    pub fn issuing_administration(&self) -> Option<String> {
        attribute(&self.cert.tbs_certificate.subject, oid::OU)
    }

    /// The subject country (C).
    pub fn country(&self) -> Option<String> {
        attribute(&self.cert.tbs_certificate.subject, oid::C)
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    /// The issuer CA's common name, e.g. `Regione Lazio - CA Cittadini`.
    pub fn issuer_common_name(&self) -> Option<String> {
        attribute(&self.cert.tbs_certificate.issuer, oid::CN)
    }

    /// The serial number in upper-case hex, without the DER sign byte.
    pub fn serial_hex(&self) -> String {
        let bytes = self.cert.tbs_certificate.serial_number.as_bytes();
        let trimmed = match bytes {
            [0, rest @ ..] if !rest.is_empty() => rest,
            other => other,
        };
        hex::encode_upper(trimmed)
    }

    /// Start of validity.
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        to_offset(self.cert.tbs_certificate.validity.not_before)
    }

    /// End of validity.
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        to_offset(self.cert.tbs_certificate.validity.not_after)
    }

    /// The public key algorithm and size.
    pub fn key(&self) -> KeyInfo {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let alg = spki.algorithm.oid;
        let key_bytes = spki.subject_public_key.raw_bytes();
        if alg == oid::RSA_ENCRYPTION || alg == oid::RSASSA_PSS {
            KeyInfo {
                algorithm: if alg == oid::RSA_ENCRYPTION {
                    "RSA".into()
                } else {
                    "RSA-PSS".into()
                },
                bits: rsa_modulus_bits(key_bytes),
                curve: None,
            }
        } else if alg == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            let (name, bits) = match curve {
                Some(c) if c == oid::P256 => (Some("P-256".to_owned()), Some(256)),
                Some(c) if c == oid::P384 => (Some("P-384".to_owned()), Some(384)),
                Some(c) if c == oid::P521 => (Some("P-521".to_owned()), Some(521)),
                Some(c) => (Some(c.to_string()), None),
                None => (None, None),
            };
            KeyInfo {
                algorithm: "EC".into(),
                bits,
                curve: name,
            }
        } else if alg == oid::ED25519 {
            KeyInfo {
                algorithm: "Ed25519".into(),
                bits: Some(256),
                curve: None,
            }
        } else {
            KeyInfo {
                algorithm: alg.to_string(),
                bits: None,
                curve: None,
            }
        }
    }

    /// The signature algorithm OID of the certificate (outer `signatureAlgorithm`).
    pub fn signature_algorithm(&self) -> ObjectIdentifier {
        self.cert.signature_algorithm.oid
    }

    /// The key usage extension, if present and well-formed.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.extension::<KeyUsage>(oid::EXT_KEY_USAGE)
            .and_then(Result::ok)
    }

    /// Names of the key usages set (`digitalSignature`, `nonRepudiation`, ...), RFC 5280 spelling.
    pub fn key_usage_names(&self) -> Option<Vec<&'static str>> {
        let ku = self.key_usage()?;
        let all = [
            (ku.digital_signature(), "digitalSignature"),
            (ku.non_repudiation(), "nonRepudiation"),
            (ku.key_encipherment(), "keyEncipherment"),
            (ku.data_encipherment(), "dataEncipherment"),
            (ku.key_agreement(), "keyAgreement"),
            (ku.key_cert_sign(), "keyCertSign"),
            (ku.crl_sign(), "cRLSign"),
            (ku.encipher_only(), "encipherOnly"),
            (ku.decipher_only(), "decipherOnly"),
        ];
        Some(all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect())
    }

    /// The extended key usage OIDs, if the extension is present and well-formed.
    pub fn extended_key_usage(&self) -> Option<Vec<ObjectIdentifier>> {
        self.extension::<ExtendedKeyUsage>(oid::EXT_EXTENDED_KEY_USAGE)
            .and_then(Result::ok)
            .map(|e| e.0)
    }

    /// The certificate policy OIDs, if the extension is present and well-formed.
    pub fn policies(&self) -> Option<Vec<ObjectIdentifier>> {
        self.extension::<CertificatePolicies>(oid::EXT_CERTIFICATE_POLICIES)
            .and_then(Result::ok)
            .map(|p| p.0.into_iter().map(|i| i.policy_identifier).collect())
    }

    /// The basic constraints extension, if present and well-formed.
    pub fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.extension::<BasicConstraints>(oid::EXT_BASIC_CONSTRAINTS)
            .and_then(Result::ok)
    }

    /// Whether the extension with this OID is present and marked critical.
    pub fn extension_critical(&self, id: ObjectIdentifier) -> Option<bool> {
        self.extensions()
            .iter()
            .find(|e| e.extn_id == id)
            .map(|e| e.critical)
    }

    pub(crate) fn extensions(&self) -> &[x509_cert::ext::Extension] {
        self.cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
    }

    /// The first extension with this OID decoded as `T`: `None` when absent.
    pub(crate) fn extension<'a, T: Decode<'a>>(
        &'a self,
        id: ObjectIdentifier,
    ) -> Option<Result<T, x509_cert::der::Error>> {
        self.extensions()
            .iter()
            .find(|e| e.extn_id == id)
            .map(|e| T::from_der(e.extn_value.as_bytes()))
    }
}

/// Whether bytes look like PEM rather than DER: not starting with a DER SEQUENCE tag, and
/// holding a `-----BEGIN ` line somewhere (text such as `openssl x509 -text` output may precede it).
pub(crate) fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.first() != Some(&0x30) && bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Splits a file of one or more certificates (PEM, possibly several, or a single DER) into DER
/// encodings, each checked to parse as a certificate. Useful to load trust anchors such as the
/// CNS CA list a deployment downloads.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    if !looks_like_pem(bytes) {
        Certificate::from_der(bytes).map_err(|e| Error::NotACertificate(e.to_string()))?;
        return Ok(vec![bytes.to_vec()]);
    }
    // RFC 7468 textual encoding, read by rustls-pki-types: blocks with other labels and text
    // between blocks (as `openssl x509 -text` writes) are skipped.
    use rustls_pki_types::pem::PemObject;
    let mut out = Vec::new();
    for der in rustls_pki_types::CertificateDer::pem_slice_iter(bytes) {
        let der = der.map_err(|e| Error::NotACertificate(format!("bad PEM: {e}")))?;
        Certificate::from_der(der.as_ref()).map_err(|e| Error::NotACertificate(e.to_string()))?;
        out.push(der.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(Error::NotACertificate(
            "no -----BEGIN CERTIFICATE----- block found".into(),
        ));
    }
    Ok(out)
}

/// The first value of an attribute in a name, decoded to text.
fn attribute(name: &Name, id: ObjectIdentifier) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == id)
        .and_then(|atv| any_to_string(&atv.value))
}

/// Decodes a directory string (UTF8, Printable, IA5, Teletex as Latin-1, BMP, Universal).
fn any_to_string(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        // T.61 is close enough to Latin-1 for names in practice.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn to_offset(t: x509_cert::time::Time) -> Option<OffsetDateTime> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Bit length of the modulus in an RSAPublicKey (RFC 8017 §A.1.1).
fn rsa_modulus_bits(key: &[u8]) -> Option<u32> {
    let seq = Any::from_der(key).ok()?;
    if seq.tag() != Tag::Sequence {
        return None;
    }
    let mut reader = SliceReader::new(seq.value()).ok()?;
    let n: UintRef<'_> = reader.decode().ok()?;
    let bytes = n.as_bytes();
    let first = *bytes.first()?;
    let bits = (bytes.len() as u32) * 8 - first.leading_zeros();
    Some(bits)
}

/// Decodes 28 characters of standard base64 into 20 bytes.
fn decode_base64_sha1(s: &str) -> Option<[u8; 20]> {
    let b = s.as_bytes();
    if b.len() != 28 || b[27] != b'=' {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = [0u8; 20];
    let mut o = 0;
    // 27 significant characters = 162 bits, of which 160 are data and the last 2 must be zero.
    let mut acc: u64 = 0;
    let mut nbits = 0;
    for &c in &b[..27] {
        acc = (acc << 6) | u64::from(value(c)?);
        nbits += 6;
        while nbits >= 8 && o < 20 {
            nbits -= 8;
            out[o] = ((acc >> nbits) & 0xFF) as u8;
            o += 1;
        }
    }
    if o != 20 || acc & ((1 << nbits) - 1) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_split() {
        let p = CnParts::split("RSSMRA85T10A562S/8038000000000009.AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .unwrap();
        assert_eq!(p.codice_fiscale, "RSSMRA85T10A562S");
        assert_eq!(p.card_id, "8038000000000009");
        assert_eq!(p.data_hash_bytes(), Some([0; 20]));
        assert!(CnParts::split("RSSMRA85T10A562S").is_err());
        assert!(CnParts::split("RSSMRA85T10A562S/8038000000000009").is_err());
    }

    #[test]
    fn base64_sha1() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d, base64 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=
        let d = decode_base64_sha1("qZk+NkcGgWq6PiVxeFDCbJzQ2J0=").unwrap();
        assert_eq!(d[..4], [0xa9, 0x99, 0x3e, 0x36]);
        assert_eq!(d[16..], [0x9c, 0xd0, 0xd8, 0x9d]);
        assert!(decode_base64_sha1("qZk+NkcGgWq6PiVxeFDCbJzQ2J1=").is_none());
        assert!(decode_base64_sha1("qZk+NkcGgWq6PiVxeFDCbJzQ2J0").is_none());
        assert!(decode_base64_sha1("qZk+NkcGgWq6PiVxeFDCbJzQ2J*=").is_none());
    }
}
