//! A throw-away PKI and software RSA keys for tests, examples and benches (feature `test-pki`).
//!
//! A CA, a server certificate for `localhost`/`127.0.0.1`, and a client certificate shaped like a CNS
//! authentication certificate (CN `CF/card id.hash`, keyUsage digitalSignature, extendedKeyUsage
//! clientAuth, policy 1.3.76.16.2.1), with an RSA key held in memory. [`SoftwareKey`] implements
//! [`SigningKey`] in the ways real tokens behave: raw RSA (like the card), PKCS#1 v1.5 only
//! (like a token without PSS), or failing.

use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_RSA_SHA256,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};

use crate::key::{raw_rsa_schemes, SignError, SigningKey};
use crate::padding;
use crate::scheme::SignatureScheme;

/// The PKI: PEM/DER of everything a test needs.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (issues both server and client certificates), PEM.
    pub ca_pem: String,
    /// The server certificate for `localhost` and `127.0.0.1`, PEM.
    pub server_cert_pem: String,
    /// The server's key, PKCS#8 PEM.
    pub server_key_pem: String,
    /// The client certificate, DER.
    pub client_cert_der: Vec<u8>,
    /// The client certificate, PEM.
    pub client_cert_pem: String,
    /// The client key, PKCS#8 PEM (for importing into a token).
    pub client_key_pem: String,
    /// The client key.
    pub client_key: RsaPrivateKey,
    /// The codice fiscale in the client certificate.
    pub codice_fiscale: String,
}

/// Test PKI failures.
#[derive(Debug, thiserror::Error)]
#[error("test PKI: {0}")]
pub struct TestPkiError(String);

fn e<E: std::fmt::Display>(err: E) -> TestPkiError {
    TestPkiError(err.to_string())
}

impl TestPki {
    /// Generates a PKI whose client certificate carries `codice_fiscale`, with a `key_bits` RSA key.
    pub fn generate(codice_fiscale: &str, key_bits: usize) -> Result<Self, TestPkiError> {
        let mut rng = rsa::rand_core::OsRng;
        let client_key = RsaPrivateKey::new(&mut rng, key_bits).map_err(e)?;
        Self::with_client_key(codice_fiscale, client_key)
    }

    /// Like [`generate`](Self::generate) with a given client key.
    pub fn with_client_key(
        codice_fiscale: &str,
        client_key: RsaPrivateKey,
    ) -> Result<Self, TestPkiError> {
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tscns test CA Cittadini");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "tscns test");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(e)?;
        let mut sp = CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
        sp.subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        sp.distinguished_name.push(DnType::CommonName, "localhost");
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = sp.signed_by(&server_key, &issuer).map_err(e)?;

        let pkcs8 = client_key.to_pkcs8_der().map_err(e)?;
        let client_key_pem = client_key.to_pkcs8_pem(LineEnding::LF).map_err(e)?;
        let client_kp = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec()),
            &PKCS_RSA_SHA256,
        )
        .map_err(e)?;
        let mut cp = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        cp.distinguished_name.push(DnType::CountryName, "IT");
        cp.distinguished_name
            .push(DnType::OrganizationName, "tscns test");
        cp.distinguished_name.push(
            DnType::CommonName,
            format!("{codice_fiscale}/6120016461039008.i1ZpZfaCX/eKyikBfnF8to+M2T8="),
        );
        cp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // certificatePolicies (2.5.29.32) = SEQUENCE { SEQUENCE { OID 1.3.76.16.2.1 } }:
        // the CNS authentication policy (DigitPA/AgID CNS profile).
        cp.custom_extensions.push(CustomExtension::from_oid_content(
            &[2, 5, 29, 32],
            vec![
                0x30, 0x09, 0x30, 0x07, 0x06, 0x05, 0x2b, 0x4c, 0x10, 0x02, 0x01,
            ],
        ));
        let client_cert = cp.signed_by(&client_kp, &issuer).map_err(e)?;

        Ok(Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_der: client_cert.der().to_vec(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key_pem.to_string(),
            client_key,
            codice_fiscale: codice_fiscale.to_string(),
        })
    }

    /// A software key over this PKI's client key and certificate.
    pub fn software_key(&self, mode: SoftwareKeyMode) -> SoftwareKey {
        SoftwareKey {
            key: self.client_key.clone(),
            chain: vec![self.client_cert_der.clone()],
            mode,
            signatures: AtomicU64::new(0),
        }
    }
}

/// How a [`SoftwareKey`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareKeyMode {
    /// Raw RSA with host-built blocks, like the TS-CNS card: every scheme that fits.
    RawRsa,
    /// PKCS#1 v1.5 only, like a token without PSS or raw RSA.
    Pkcs1Only,
    /// Every signature fails (a removed card).
    Failing,
}

/// An in-memory RSA key implementing [`SigningKey`].
#[derive(Debug)]
pub struct SoftwareKey {
    key: RsaPrivateKey,
    chain: Vec<Vec<u8>>,
    mode: SoftwareKeyMode,
    signatures: AtomicU64,
}

/// The error a failing [`SoftwareKey`] returns.
#[derive(Debug, thiserror::Error)]
#[error("the card was removed")]
pub struct SoftwareKeyRemoved;

impl SoftwareKey {
    /// Signatures made so far.
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// The raw RSA private operation on a block the size of the modulus.
    pub fn raw_rsa(&self, block: &[u8]) -> Result<Vec<u8>, SignError> {
        let c = BigUint::from_bytes_be(block);
        let mut rng = rsa::rand_core::OsRng;
        let m = rsa::hazmat::rsa_decrypt_and_check(&self.key, Some(&mut rng), &c)?;
        let k = self.key.size();
        let bytes = m.to_bytes_be();
        let mut out = vec![0u8; k.saturating_sub(bytes.len())];
        out.extend_from_slice(&bytes);
        Ok(out)
    }
}

impl SigningKey for SoftwareKey {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.chain.clone()
    }

    fn key_bits(&self) -> usize {
        self.key.n().bits()
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        match self.mode {
            SoftwareKeyMode::RawRsa | SoftwareKeyMode::Failing => raw_rsa_schemes(self.key_bits()),
            SoftwareKeyMode::Pkcs1Only => raw_rsa_schemes(self.key_bits())
                .into_iter()
                .filter(|s| !s.is_pss())
                .collect(),
        }
    }

    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        if self.mode == SoftwareKeyMode::Failing {
            return Err(Box::new(SoftwareKeyRemoved));
        }
        if !self.schemes().contains(&scheme) {
            return Err(format!("{scheme} is not supported by this key").into());
        }
        let block = padding::block_for_message(scheme, message, self.key_bits())?;
        let sig = self.raw_rsa(&block)?;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(sig)
    }
}
