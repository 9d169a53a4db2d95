//! A test PKI issuing CNS-profile certificates with rcgen (keys made once per test binary).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints as RcBasicConstraints, CertificateParams, CustomExtension, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
    SignatureAlgorithm, PKCS_RSA_SHA256,
};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePrivateKey;
use time::macros::datetime;
use time::OffsetDateTime;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, ExtendedKeyUsage};

/// A synthetic person: valid codice fiscale and card id, not a real person's.
pub const CF: &str = "RSSMRA85T10A562S";
pub const CARD_ID: &str = "8038000000000009";
/// base64 of 20 bytes.
pub const HASH: &str = "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=";

pub fn cns_cn() -> String {
    format!("{CF}/{CARD_ID}.{HASH}")
}

/// An RSA public key for rcgen (the leaf never signs anything here).
#[derive(Clone)]
pub struct RsaPublic(Vec<u8>);

impl PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

pub struct Keys {
    /// PKCS#8 DER of the root CA key (RSA 2048).
    pub ca: Vec<u8>,
    /// PKCS#8 DER of the intermediate CA key (RSA 2048).
    pub intermediate: Vec<u8>,
    /// PKCS#8 DER of another, untrusted CA (RSA 2048).
    pub other_ca: Vec<u8>,
    pub leaf_2048: RsaPublic,
    pub leaf_1024: RsaPublic,
    pub leaf_512: RsaPublic,
}

fn rsa_private(bits: usize) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap()
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pkcs8 = |k: rsa::RsaPrivateKey| k.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let public = |k: rsa::RsaPrivateKey| {
            RsaPublic(
                k.to_public_key()
                    .to_pkcs1_der()
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
            )
        };
        Keys {
            ca: pkcs8(rsa_private(2048)),
            intermediate: pkcs8(rsa_private(2048)),
            other_ca: pkcs8(rsa_private(2048)),
            leaf_2048: public(rsa_private(2048)),
            leaf_1024: public(rsa_private(1024)),
            leaf_512: public(rsa_private(512)),
        }
    })
}

pub fn key_pair(pkcs8: &[u8]) -> KeyPair {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8);
    KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_RSA_SHA256).unwrap()
}

pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IT");
    dn.push(DnType::OrganizationName, "Test Certificazione S.p.A.");
    dn.push(DnType::OrganizationalUnitName, "Servizi di Certificazione");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(RcBasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = datetime!(2020-01-01 0:00 UTC);
    p.not_after = datetime!(2045-01-01 0:00 UTC);
    p.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x23]));
    p
}

pub const CA_CN: &str = "Regione Test - CA Cittadini";

/// The root CA certificate (DER) and its issuer.
pub fn ca() -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let params = ca_params(CA_CN);
    let key = key_pair(&keys().ca);
    let cert = params.self_signed(&key).unwrap();
    (cert.der().to_vec(), Issuer::new(params, key))
}

/// An intermediate CA under the root (DER) and its issuer.
pub fn intermediate() -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let (_, root) = ca();
    let params = ca_params("Regione Test - CA Intermedia");
    let key = key_pair(&keys().intermediate);
    let cert = params.signed_by(&key, &root).unwrap();
    (cert.der().to_vec(), Issuer::new(params, key))
}

/// A CA nobody trusts (same name as the real one, different key).
pub fn other_ca() -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let params = ca_params(CA_CN);
    let key = key_pair(&keys().other_ca);
    let cert = params.self_signed(&key).unwrap();
    (cert.der().to_vec(), Issuer::new(params, key))
}

/// Key usage bits (RFC 5280 §4.2.1.3, bit 0 = the most significant bit of the first octet).
pub const KU_DIGITAL_SIGNATURE: u8 = 0x80;
pub const KU_NON_REPUDIATION: u8 = 0x40;
pub const KU_KEY_ENCIPHERMENT: u8 = 0x20;
pub const KU_KEY_CERT_SIGN: u8 = 0x04;

pub const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
pub const EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
pub const POLICY_CNS: &str = "1.3.76.16.2.1";

/// Everything a test may vary in a holder certificate; `default()` conforms to the profile.
#[derive(Clone)]
pub struct LeafSpec {
    pub cn: Option<String>,
    pub surname: Option<String>,
    pub given_name: Option<String>,
    pub ou: Option<String>,
    pub country: Option<String>,
    /// Key usage octet, `None` for no extension.
    pub key_usage: Option<u8>,
    pub key_usage_critical: bool,
    /// EKU OIDs, `None` for no extension.
    pub eku: Option<Vec<&'static str>>,
    /// Policy OIDs, `None` for no extension.
    pub policies: Option<Vec<&'static str>>,
    /// basicConstraints CA flag, `None` for no extension.
    pub basic_constraints_ca: Option<bool>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub rsa_1024: bool,
    pub rsa_512: bool,
    pub serial: Vec<u8>,
    /// An extra critical extension with an OID nobody processes.
    pub unknown_critical: bool,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            cn: Some(cns_cn()),
            surname: Some("ROSSI".into()),
            given_name: Some("MARIO".into()),
            ou: Some("REGIONE TEST".into()),
            country: Some("IT".into()),
            key_usage: Some(KU_DIGITAL_SIGNATURE),
            key_usage_critical: true,
            eku: Some(vec![CLIENT_AUTH, EMAIL_PROTECTION]),
            policies: Some(vec![POLICY_CNS]),
            basic_constraints_ca: None,
            not_before: datetime!(2024-01-01 0:00 UTC),
            not_after: datetime!(2030-01-01 0:00 UTC),
            rsa_1024: false,
            rsa_512: false,
            serial: vec![0x4A, 0x7F, 0x10, 0x03],
            unknown_critical: false,
        }
    }
}

fn oids(list: &[&str]) -> Vec<ObjectIdentifier> {
    list.iter()
        .map(|o| ObjectIdentifier::new_unwrap(o))
        .collect()
}

fn components(oid: &str) -> Vec<u64> {
    oid.split('.').map(|c| c.parse().unwrap()).collect()
}

fn ext(oid: &str, der: Vec<u8>, critical: bool) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(&components(oid), der);
    e.set_criticality(critical);
    e
}

impl LeafSpec {
    pub fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(c) = &self.country {
            dn.push(DnType::CountryName, c.as_str());
        }
        dn.push(DnType::OrganizationName, "Test Certificazione S.p.A.");
        if let Some(ou) = &self.ou {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        if let Some(cn) = &self.cn {
            dn.push(DnType::CommonName, cn.as_str());
        }
        if let Some(sn) = &self.surname {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 4]), sn.as_str());
        }
        if let Some(g) = &self.given_name {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 42]), g.as_str());
        }
        p.distinguished_name = dn;
        p.not_before = self.not_before;
        p.not_after = self.not_after;
        p.serial_number = Some(SerialNumber::from_slice(&self.serial));
        p.use_authority_key_identifier_extension = true;
        if let Some(bits) = self.key_usage {
            let der = if bits == 0 {
                vec![0x03, 0x01, 0x00]
            } else {
                vec![0x03, 0x02, bits.trailing_zeros() as u8, bits]
            };
            p.custom_extensions
                .push(ext("2.5.29.15", der, self.key_usage_critical));
        }
        if let Some(ca) = self.basic_constraints_ca {
            let der = BasicConstraints {
                ca,
                path_len_constraint: None,
            }
            .to_der()
            .unwrap();
            p.custom_extensions.push(ext("2.5.29.19", der, true));
        }
        if let Some(eku) = &self.eku {
            let der = ExtendedKeyUsage(oids(eku)).to_der().unwrap();
            p.custom_extensions.push(ext("2.5.29.37", der, false));
        }
        if let Some(pol) = &self.policies {
            let der = CertificatePolicies(
                oids(pol)
                    .into_iter()
                    .map(|policy_identifier| PolicyInformation {
                        policy_identifier,
                        policy_qualifiers: None,
                    })
                    .collect(),
            )
            .to_der()
            .unwrap();
            p.custom_extensions.push(ext("2.5.29.32", der, false));
        }
        if self.unknown_critical {
            p.custom_extensions
                .push(ext("1.3.6.1.4.1.99999.1", vec![0x05, 0x00], true));
        }
        p
    }

    /// Issues the certificate under the root CA.
    pub fn issue(&self) -> Vec<u8> {
        let (_, issuer) = ca();
        self.issue_by(&issuer)
    }

    pub fn issue_by(&self, issuer: &Issuer<'_, KeyPair>) -> Vec<u8> {
        let key = if self.rsa_512 {
            &keys().leaf_512
        } else if self.rsa_1024 {
            &keys().leaf_1024
        } else {
            &keys().leaf_2048
        };
        self.params().signed_by(key, issuer).unwrap().der().to_vec()
    }
}

/// Re-encodes a certificate after `f` changed it (the signature no longer verifies).
pub fn mutate(der: &[u8], f: impl FnOnce(&mut x509_cert::Certificate)) -> Vec<u8> {
    let mut cert = x509_cert::Certificate::from_der(der).unwrap();
    f(&mut cert);
    cert.to_der().unwrap()
}

/// A self-issued certificate with the CNS subject (issuer == subject).
pub fn self_issued() -> Vec<u8> {
    let key = key_pair(&keys().ca);
    LeafSpec::default()
        .params()
        .self_signed(&key)
        .unwrap()
        .der()
        .to_vec()
}
