//! A test seal for trying the portal: a CA and an RSA-2048 seal certificate and key
//! (`cityportal-server seal-keygen`). A municipality uses its qualified seal instead.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rsa::pkcs8::EncodePrivateKey as _;

use super::ServerError;

/// A generated test seal, PEM.
#[derive(Clone)]
pub struct TestSeal {
    /// The CA to trust (`seal-ca.pem`).
    pub ca_pem: String,
    /// The seal certificate (`seal-cert.pem`).
    pub cert_pem: String,
    /// The seal's private key, PKCS#8 (`seal-key.pem`).
    pub key_pem: String,
}

impl std::fmt::Debug for TestSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSeal").finish_non_exhaustive()
    }
}

/// Generates a test seal CA and an RSA-2048 seal for `municipality` (e.g. "San Benedetto del
/// Tronto").
pub fn test_seal(municipality: &str) -> Result<TestSeal, ServerError> {
    let err = |e: &dyn std::fmt::Display| ServerError::Config(format!("seal generation: {e}"));
    let ca_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca.distinguished_name.push(DnType::CountryName, "IT");
    ca.distinguished_name
        .push(DnType::OrganizationName, "tscns (solo per prove)");
    ca.distinguished_name
        .push(DnType::CommonName, "tscns CA di prova per sigilli");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = Issuer::new(ca, ca_key);
    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| err(&e))?;
    let pkcs8 = rsa_key.to_pkcs8_der().map_err(|e| err(&e))?;
    let kp = KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| err(&e))?;
    let mut sp = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    sp.distinguished_name.push(DnType::CountryName, "IT");
    sp.distinguished_name.push(
        DnType::OrganizationName,
        format!("Comune di {municipality}"),
    );
    sp.distinguished_name.push(
        DnType::CommonName,
        format!("Sigillo elettronico del Comune di {municipality} (prova)"),
    );
    sp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    let cert = sp.signed_by(&kp, &issuer).map_err(|e| err(&e))?;
    let key_pem = pkcs8
        .to_pem("PRIVATE KEY", rsa::pkcs8::LineEnding::LF)
        .map_err(|e| err(&e))?;
    Ok(TestSeal {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key_pem.to_string(),
    })
}
