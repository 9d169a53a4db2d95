//! The emulator's profile signer: an RSA key and a self-signed "ClientCohesion" certificate, signing
//! profiles the way Cohesion does (enveloping XML-DSig, C14N 1.0, RSA-SHA1).
#![cfg_attr(not(feature = "emulator"), allow(dead_code))]

use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::RsaPrivateKey;

use crate::error::{Error, Result};

/// A signing identity for SAML-mode profiles.
#[derive(Clone)]
pub struct ProfileSigner {
    key: RsaPrivateKey,
    cert_der: Vec<u8>,
    cert_pem: String,
    sha256: bool,
}

impl std::fmt::Debug for ProfileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSigner").finish_non_exhaustive()
    }
}

impl ProfileSigner {
    /// Generates a fresh 2048-bit RSA key and a self-signed certificate with CN `cn`.
    pub fn generate(cn: &str) -> Result<Self> {
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048)
            .map_err(|e| Error::Tls(format!("RSA key generation: {e}")))?;
        Self::from_key(key, cn)
    }

    /// Uses an existing RSA key (PKCS#8 PEM).
    pub fn from_pkcs8_pem(pem: &str, cn: &str) -> Result<Self> {
        use rsa::pkcs8::DecodePrivateKey as _;
        let key =
            RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| Error::Tls(format!("RSA key: {e}")))?;
        Self::from_key(key, cn)
    }

    fn from_key(key: RsaPrivateKey, cn: &str) -> Result<Self> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| Error::Tls(format!("PKCS#8: {e}")))?;
        let pk = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pk, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| Error::Tls(format!("rcgen key: {e}")))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| Error::Tls(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "tscns Cohesion emulator");
        let cert = params
            .self_signed(&kp)
            .map_err(|e| Error::Tls(format!("certificate: {e}")))?;
        Ok(ProfileSigner {
            key,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            sha256: false,
        })
    }

    /// Signs with RSA-SHA256 / SHA-256 instead of Cohesion's RSA-SHA1.
    pub fn with_sha256(mut self, on: bool) -> Self {
        self.sha256 = on;
        self
    }

    /// The certificate an SP must configure ([`crate::SpConfigBuilder::cohesion_certificate`]), PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> Result<String> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| Error::Tls(e.to_string()))
    }

    /// Wraps `profile_xml` (a `<profile xmlns="">` element) in Cohesion's enveloping signature.
    pub fn sign_profile(&self, profile_xml: &str) -> Result<String> {
        let sha256 = self.sha256;
        crate::dsig::sign_enveloping(profile_xml, sha256, &self.cert_der, |msg| {
            let sig = if sha256 {
                use sha2::Digest as _;
                let h = sha2::Sha256::digest(msg);
                self.key.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &h)
            } else {
                use sha1::Digest as _;
                let h = sha1::Sha1::digest(msg);
                self.key.sign(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &h)
            };
            sig.map_err(|e| Error::Signature(format!("signing: {e}")))
        })
    }
}
