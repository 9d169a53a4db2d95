//! The three objects of a TS-CNS token and their attributes (PKCS#11 2.40 §4): the
//! authentication certificate, its public key, and the private key on the card.
#![forbid(unsafe_code)]

use cryptoki_sys::*;
use rsa::traits::PublicKeyParts;
use sha1::{Digest, Sha1};
use tscns_card::Identity;
use x509_cert::der::Encode;

/// `CK_UNAVAILABLE_INFORMATION` (PKCS#11 2.40 §3.2: `~0UL`).
pub const UNAVAILABLE: CK_ULONG = CK_ULONG::MAX;

/// Handle of the authentication certificate.
pub const CERTIFICATE: CK_OBJECT_HANDLE = 1;
/// Handle of its public key.
pub const PUBLIC_KEY: CK_OBJECT_HANDLE = 2;
/// Handle of the private key (visible after login, or always in pinentry mode).
pub const PRIVATE_KEY: CK_OBJECT_HANDLE = 3;

/// What the card's identity gives the token: read once per inserted card.
#[derive(Clone, Debug)]
pub struct TokenFacts {
    /// The holder, "GIVEN-NAME SURNAME".
    pub holder: String,
    /// The card id (EF_ID_Carta), 16 digits.
    pub card_id: String,
    /// The maker profile name (tscns-card's quirk set).
    pub model: String,
    /// The label of the three objects.
    pub object_label: String,
    /// CKA_ID of the three objects: SHA-1 of the modulus (a common convention, also NSS's).
    pub id: Vec<u8>,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// DER of the certificate's subject Name.
    pub subject: Vec<u8>,
    /// DER of the certificate's issuer Name.
    pub issuer: Vec<u8>,
    /// DER of the certificate's serial number INTEGER.
    pub serial: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// RSA modulus, big-endian without leading zeros.
    pub modulus: Vec<u8>,
    /// RSA public exponent, big-endian.
    pub exponent: Vec<u8>,
    /// Modulus size in bits.
    pub bits: usize,
}

impl TokenFacts {
    /// The facts of a card from its identity and the recognised maker profile name.
    pub fn from_identity(id: &Identity, model: &str) -> Result<Self, String> {
        let cert = &id.certificate;
        let tbs = &cert.x509().tbs_certificate;
        let der = |r: Result<Vec<u8>, x509_cert::der::Error>| r.map_err(|e| e.to_string());
        let subject = der(tbs.subject.to_der())?;
        let issuer = der(tbs.issuer.to_der())?;
        let serial = der(tbs.serial_number.to_der())?;
        let spki = der(tbs.subject_public_key_info.to_der())?;
        let key = {
            use rsa::pkcs8::DecodePublicKey;
            rsa::RsaPublicKey::from_public_key_der(&spki).map_err(|e| e.to_string())?
        };
        let modulus = key.n().to_bytes_be();
        let exponent = key.e().to_bytes_be();
        let pd = &id.personal_data;
        let given = pd.given_name.clone().or_else(|| cert.given_name());
        let surname = pd.surname.clone().or_else(|| cert.surname());
        let holder = match (given, surname) {
            (Some(g), Some(s)) => format!("{g} {s}"),
            (Some(n), None) | (None, Some(n)) => n,
            (None, None) => format!("TS-CNS {}", id.card_id.as_str()),
        };
        Ok(TokenFacts {
            holder,
            card_id: id.card_id.as_str().to_owned(),
            model: model.to_owned(),
            object_label: "CNS0".to_owned(),
            id: Sha1::digest(&modulus).to_vec(),
            bits: key.n().bits(),
            cert_der: cert.der().to_vec(),
            subject,
            issuer,
            serial,
            spki,
            modulus,
            exponent,
        })
    }

    /// Modulus length in bytes: the length of every signature.
    pub fn signature_len(&self) -> usize {
        self.bits.div_ceil(8)
    }
}

/// The value of one attribute, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    /// The bytes of the value as the C caller receives them.
    Value(Vec<u8>),
    /// The attribute exists but may not be revealed (`CKR_ATTRIBUTE_SENSITIVE`).
    Sensitive,
    /// The object has no such attribute (`CKR_ATTRIBUTE_TYPE_INVALID`).
    Invalid,
}

fn ulong(v: CK_ULONG) -> Attr {
    Attr::Value(v.to_ne_bytes().to_vec())
}

fn boolean(v: bool) -> Attr {
    Attr::Value(vec![if v { CK_TRUE } else { CK_FALSE }])
}

fn bytes(v: &[u8]) -> Attr {
    Attr::Value(v.to_vec())
}

/// Attributes every object of the token has (storage objects, PKCS#11 2.40 §4.4).
fn storage(
    facts: &TokenFacts,
    class: CK_OBJECT_CLASS,
    private: bool,
    t: CK_ATTRIBUTE_TYPE,
) -> Attr {
    match t {
        CKA_CLASS => ulong(class),
        CKA_TOKEN => boolean(true),
        CKA_PRIVATE => boolean(private),
        CKA_MODIFIABLE => boolean(false),
        CKA_COPYABLE => boolean(false),
        CKA_DESTROYABLE => boolean(false),
        CKA_LABEL => bytes(facts.object_label.as_bytes()),
        CKA_ID => bytes(&facts.id),
        _ => Attr::Invalid,
    }
}

/// Attributes common to both keys (PKCS#11 2.40 §4.7, §4.8 and §2.1 for RSA).
fn key_common(facts: &TokenFacts, t: CK_ATTRIBUTE_TYPE) -> Attr {
    match t {
        CKA_KEY_TYPE => ulong(CKK_RSA),
        CKA_SUBJECT => bytes(&facts.subject),
        CKA_START_DATE | CKA_END_DATE => Attr::Value(Vec::new()),
        CKA_DERIVE => boolean(false),
        CKA_LOCAL => boolean(false),
        CKA_KEY_GEN_MECHANISM => ulong(UNAVAILABLE),
        CKA_MODULUS => bytes(&facts.modulus),
        CKA_PUBLIC_EXPONENT => bytes(&facts.exponent),
        CKA_PUBLIC_KEY_INFO => bytes(&facts.spki),
        _ => Attr::Invalid,
    }
}

/// One attribute of one object. `object` must be one of the three handles.
pub fn attribute(facts: &TokenFacts, object: CK_OBJECT_HANDLE, t: CK_ATTRIBUTE_TYPE) -> Attr {
    match object {
        CERTIFICATE => {
            let a = storage(facts, CKO_CERTIFICATE, false, t);
            if a != Attr::Invalid {
                return a;
            }
            match t {
                CKA_CERTIFICATE_TYPE => ulong(CKC_X_509),
                CKA_TRUSTED => boolean(false),
                // 1 = token user (PKCS#11 2.40 §4.6.2).
                CKA_CERTIFICATE_CATEGORY => ulong(1),
                CKA_CHECK_VALUE => bytes(&Sha1::digest(&facts.cert_der)[..3]),
                CKA_START_DATE | CKA_END_DATE => Attr::Value(Vec::new()),
                CKA_PUBLIC_KEY_INFO => bytes(&facts.spki),
                CKA_SUBJECT => bytes(&facts.subject),
                CKA_ISSUER => bytes(&facts.issuer),
                CKA_SERIAL_NUMBER => bytes(&facts.serial),
                CKA_VALUE => bytes(&facts.cert_der),
                CKA_URL | CKA_HASH_OF_SUBJECT_PUBLIC_KEY | CKA_HASH_OF_ISSUER_PUBLIC_KEY => {
                    Attr::Value(Vec::new())
                }
                CKA_JAVA_MIDP_SECURITY_DOMAIN => ulong(0),
                _ => Attr::Invalid,
            }
        }
        PUBLIC_KEY => {
            let a = storage(facts, CKO_PUBLIC_KEY, false, t);
            if a != Attr::Invalid {
                return a;
            }
            let a = key_common(facts, t);
            if a != Attr::Invalid {
                return a;
            }
            match t {
                CKA_MODULUS_BITS => ulong(facts.bits as CK_ULONG),
                CKA_VERIFY => boolean(true),
                CKA_ENCRYPT | CKA_VERIFY_RECOVER | CKA_WRAP | CKA_TRUSTED => boolean(false),
                _ => Attr::Invalid,
            }
        }
        PRIVATE_KEY => {
            let a = storage(facts, CKO_PRIVATE_KEY, true, t);
            if a != Attr::Invalid {
                return a;
            }
            let a = key_common(facts, t);
            if a != Attr::Invalid {
                return a;
            }
            match t {
                CKA_SENSITIVE | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE => boolean(true),
                CKA_EXTRACTABLE => boolean(false),
                CKA_SIGN => boolean(true),
                CKA_ALWAYS_AUTHENTICATE => boolean(false),
                CKA_SIGN_RECOVER | CKA_DECRYPT | CKA_UNWRAP | CKA_WRAP_WITH_TRUSTED => {
                    boolean(false)
                }
                CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1
                | CKA_EXPONENT_2 | CKA_COEFFICIENT => Attr::Sensitive,
                _ => Attr::Invalid,
            }
        }
        _ => Attr::Invalid,
    }
}

/// Whether `object` has every attribute of `template` with exactly the given value.
pub fn matches(
    facts: &TokenFacts,
    object: CK_OBJECT_HANDLE,
    template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> bool {
    template
        .iter()
        .all(|(t, v)| attribute(facts, object, *t) == Attr::Value(v.clone()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tscns_card::CnsCard;
    use tscns_sim::{Profile, SimCard};

    fn facts() -> TokenFacts {
        let mut card =
            CnsCard::open(SimCard::new(&Profile::builtin("athena-1024").unwrap()).unwrap())
                .unwrap();
        let id = card.identity().unwrap().clone();
        TokenFacts::from_identity(&id, "athena").unwrap()
    }

    #[test]
    fn certificate_attributes_come_from_the_card() {
        let f = facts();
        assert!(f.holder.ends_with("BIANCHI"), "{}", f.holder);
        assert_eq!(f.bits, 1024);
        assert_eq!(
            attribute(&f, CERTIFICATE, CKA_VALUE),
            Attr::Value(f.cert_der.clone())
        );
        assert_eq!(
            attribute(&f, CERTIFICATE, CKA_CLASS),
            ulong(CKO_CERTIFICATE)
        );
        // The serial number is a DER INTEGER, the subject a DER Name (a SEQUENCE).
        assert_eq!(f.serial[0], 0x02);
        assert_eq!(f.subject[0], 0x30);
        assert_eq!(attribute(&f, CERTIFICATE, CKA_MODULUS), Attr::Invalid);
    }

    #[test]
    fn the_private_key_never_leaves_the_card() {
        let f = facts();
        assert_eq!(attribute(&f, PRIVATE_KEY, CKA_SIGN), boolean(true));
        assert_eq!(attribute(&f, PRIVATE_KEY, CKA_SENSITIVE), boolean(true));
        assert_eq!(attribute(&f, PRIVATE_KEY, CKA_EXTRACTABLE), boolean(false));
        assert_eq!(
            attribute(&f, PRIVATE_KEY, CKA_ALWAYS_AUTHENTICATE),
            boolean(false)
        );
        assert_eq!(
            attribute(&f, PRIVATE_KEY, CKA_PRIVATE_EXPONENT),
            Attr::Sensitive
        );
        assert_eq!(attribute(&f, PRIVATE_KEY, CKA_VALUE), Attr::Invalid);
        assert!(matches(&f, PRIVATE_KEY, &[(CKA_ID, f.id.clone())]));
        assert!(!matches(&f, PRIVATE_KEY, &[(CKA_ID, vec![1])]));
        assert!(!matches(
            &f,
            CERTIFICATE,
            &[(CKA_CLASS, CKO_PRIVATE_KEY.to_ne_bytes().to_vec())]
        ));
    }
}
