//! All the rustls-specific code (rustls 0.23): the client-certificate resolver, the signing-key
//! adapter, the host-bound server verifier and the `ClientConfig` builder.
//!
//! Kept in one module because rustls 0.24 renames these traits.
//!
//! Two traps this module closes:
//! - **The empty certificate.** If `SigningKey::choose_scheme` finds nothing it can sign among the
//!   schemes the server offers, rustls silently sends an *empty* certificate. We record why in
//!   [`ClientAuthState`] so the caller turns the failed (or unauthenticated) exchange into
//!   [`Error::NoCommonScheme`](crate::Error::NoCommonScheme).
//! - **The allowlist.** `ResolvesClientCert::resolve` does not learn the server's name, so one
//!   `ClientConfig` is built per allowed host, and its server verifier refuses every other name —
//!   rustls verifies the server before it sends the client certificate (TLS 1.2: at ServerHelloDone;
//!   TLS 1.3: before the client's second flight), so a config can never present the certificate to
//!   another host even if misused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureAlgorithm, SupportedProtocolVersion};

use crate::allowlist::normalize_host;
use crate::key::{SignError, SigningKey};
use crate::scheme::SignatureScheme;

/// TLS protocol versions to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.3 and 1.2 when the key can produce RSA-PSS, TLS 1.2 only otherwise.
    #[default]
    Auto,
    /// TLS 1.2 only (PKCS#1 v1.5 or PSS, whichever the server and key share).
    Tls12,
    /// TLS 1.3 only (needs RSA-PSS). The certificate is never sent over anything older: a server
    /// that cannot do TLS 1.3 fails the connection with [`Error::Tls13Required`](crate::Error::Tls13Required).
    Tls13,
}

/// The TLS version of a handshake that carried the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2: the client's Certificate message travels **in clear** (RFC 5246 §7.4.6), so the
    /// citizen's name and codice fiscale are visible to anyone on the network path.
    Tls12,
    /// TLS 1.3: the client's Certificate message is encrypted (RFC 8446 §4.4.2).
    Tls13,
}

impl TlsVersion {
    /// Whether the certificate was encrypted on the wire (only the server could read it).
    pub fn certificate_encrypted(self) -> bool {
        matches!(self, Self::Tls13)
    }

    /// The version of the handshake whose client signature input is `message`: TLS 1.3 signs
    /// 64 spaces, the context string "TLS 1.3, client CertificateVerify" and a zero byte before the
    /// transcript hash (RFC 8446 §4.4.3); TLS 1.2 signs the handshake messages themselves, which
    /// start with the ClientHello (type 1, RFC 5246 §7.4.8).
    fn of_client_signature(message: &[u8]) -> Self {
        const CONTEXT: &[u8] = b"TLS 1.3, client CertificateVerify\0";
        let is_13 = message.len() > 64 + CONTEXT.len()
            && message[..64].iter().all(|&b| b == 0x20)
            && &message[64..64 + CONTEXT.len()] == CONTEXT;
        if is_13 {
            Self::Tls13
        } else {
            Self::Tls12
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "TLS 1.2",
            Self::Tls13 => "TLS 1.3",
        })
    }
}

/// How many handshakes carried the certificate, per version (shared by every config of one identity).
#[derive(Debug, Default)]
struct Disclosures {
    tls12: AtomicU64,
    tls13: AtomicU64,
}

impl Disclosures {
    fn record(&self, v: TlsVersion) {
        match v {
            TlsVersion::Tls12 => &self.tls12,
            TlsVersion::Tls13 => &self.tls13,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn versions(&self) -> Vec<TlsVersion> {
        let mut v = Vec::new();
        if self.tls12.load(Ordering::Relaxed) > 0 {
            v.push(TlsVersion::Tls12);
        }
        if self.tls13.load(Ordering::Relaxed) > 0 {
            v.push(TlsVersion::Tls13);
        }
        v
    }
}

/// Why the client certificate was not (fully) presented in a handshake.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientAuthFailure {
    /// The server offered no scheme the key can produce; rustls sent an empty certificate.
    NoCommonScheme {
        /// What the server offered (rustls names).
        offered: Vec<String>,
        /// What the key can produce.
        supported: Vec<SignatureScheme>,
    },
    /// The key failed to sign.
    Signing(SignError),
}

/// Per-host client-authentication state: the last failure and the shared signature counter.
#[derive(Debug)]
pub struct ClientAuthState {
    failure: Mutex<Option<ClientAuthFailure>>,
    signatures: Arc<AtomicU64>,
    disclosures: Arc<Disclosures>,
}

impl ClientAuthState {
    fn record(&self, f: ClientAuthFailure) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(f);
    }

    /// Takes the last recorded failure, if any.
    pub fn take_failure(&self) -> Option<ClientAuthFailure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Signatures made by the key so far (all hosts of one identity).
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// The TLS versions that carried the certificate so far (all hosts of one identity), oldest first.
    pub fn certificate_sent_over(&self) -> Vec<TlsVersion> {
        self.disclosures.versions()
    }
}

/// A key ready for rustls: its certificate chain parsed once, its real schemes computed once.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    key: Arc<dyn SigningKey>,
    chain: Vec<CertificateDer<'static>>,
    schemes: Vec<SignatureScheme>,
    signatures: Arc<AtomicU64>,
    disclosures: Arc<Disclosures>,
}

impl ClientIdentity {
    /// Wraps `key`; fails if it has no certificate or cannot sign any TLS scheme.
    pub fn new(key: Arc<dyn SigningKey>) -> Result<Self, crate::Error> {
        let chain: Vec<CertificateDer<'static>> = key
            .certificate_chain()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        if chain.is_empty() {
            return Err(crate::Error::BadCertificate(
                "the key came without a certificate".into(),
            ));
        }
        let bits = key.key_bits();
        let offered = key.schemes();
        // Keep our preference order, and only what fits the modulus.
        let schemes: Vec<SignatureScheme> = SignatureScheme::ALL
            .into_iter()
            .filter(|s| offered.contains(s) && s.fits_key(bits))
            .collect();
        if schemes.is_empty() {
            return Err(crate::Error::BadCertificate(format!(
                "the {bits}-bit key cannot produce any TLS RSA signature scheme"
            )));
        }
        Ok(Self {
            key,
            chain,
            schemes,
            signatures: Arc::new(AtomicU64::new(0)),
            disclosures: Arc::new(Disclosures::default()),
        })
    }

    /// The schemes this identity will use, most preferred first.
    pub fn schemes(&self) -> &[SignatureScheme] {
        &self.schemes
    }

    /// Whether the key can do RSA-PSS (and so TLS 1.3).
    pub fn can_pss(&self) -> bool {
        self.schemes.iter().any(|s| s.is_pss())
    }

    /// Signatures made so far through every config built from this identity.
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// The TLS versions of the handshakes that carried the certificate so far, through every config
    /// built from this identity, oldest first (empty: never sent; resumed sessions send nothing).
    pub fn certificate_sent_over(&self) -> Vec<TlsVersion> {
        self.disclosures.versions()
    }

    /// The end-entity certificate, DER.
    pub fn end_entity(&self) -> &[u8] {
        self.chain.first().map(|c| c.as_ref()).unwrap_or_default()
    }
}

/// The protocol versions to enable for `versions` given the key's capability.
pub fn protocol_versions(
    versions: TlsVersions,
    identity: Option<&ClientIdentity>,
) -> Result<Vec<&'static SupportedProtocolVersion>, crate::Error> {
    let can_pss = identity.map(ClientIdentity::can_pss).unwrap_or(true);
    match versions {
        TlsVersions::Tls12 => Ok(vec![&rustls::version::TLS12]),
        TlsVersions::Tls13 if !can_pss => Err(crate::Error::Tls13NeedsPss {
            supported: join(identity.map(|i| i.schemes()).unwrap_or_default()),
        }),
        TlsVersions::Tls13 => Ok(vec![&rustls::version::TLS13]),
        TlsVersions::Auto if can_pss => Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]),
        TlsVersions::Auto => Ok(vec![&rustls::version::TLS12]),
    }
}

pub(crate) fn join(schemes: &[SignatureScheme]) -> String {
    schemes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one crypto provider of the workspace: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a `ClientConfig`. With `auth = Some((identity, host))` the config presents the identity's
/// certificate, and only to `host`; with `None` it never presents a certificate.
///
/// Returns the config and, with `auth`, the state that records client-auth failures.
pub fn client_config(
    roots: Arc<RootCertStore>,
    versions: &[&'static SupportedProtocolVersion],
    auth: Option<(&ClientIdentity, &str)>,
) -> Result<(rustls::ClientConfig, Option<Arc<ClientAuthState>>), crate::Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| crate::Error::Config(e.to_string()))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| crate::Error::Config(e.to_string()))?;
    let (mut config, state) = match auth {
        None => (
            builder
                .dangerous()
                .with_custom_certificate_verifier(webpki)
                .with_no_client_auth(),
            None,
        ),
        Some((identity, host)) => {
            let host = normalize_host(host)?;
            let state = Arc::new(ClientAuthState {
                failure: Mutex::new(None),
                signatures: identity.signatures.clone(),
                disclosures: identity.disclosures.clone(),
            });
            let key = Arc::new(RustlsKey {
                identity: identity.clone(),
                state: state.clone(),
            });
            let certified = Arc::new(CertifiedKey::new(identity.chain.clone(), key));
            let verifier = Arc::new(HostBoundVerifier {
                inner: webpki,
                host,
            });
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_client_cert_resolver(Arc::new(Resolver { certified }));
            (config, Some(state))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, state))
}

fn to_rustls(s: SignatureScheme) -> rustls::SignatureScheme {
    match s {
        SignatureScheme::Pkcs1Sha256 => rustls::SignatureScheme::RSA_PKCS1_SHA256,
        SignatureScheme::Pkcs1Sha384 => rustls::SignatureScheme::RSA_PKCS1_SHA384,
        SignatureScheme::Pkcs1Sha512 => rustls::SignatureScheme::RSA_PKCS1_SHA512,
        SignatureScheme::PssSha256 => rustls::SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::PssSha384 => rustls::SignatureScheme::RSA_PSS_SHA384,
        SignatureScheme::PssSha512 => rustls::SignatureScheme::RSA_PSS_SHA512,
    }
}

#[derive(Debug)]
struct Resolver {
    certified: Arc<CertifiedKey>,
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // Always answer: choose_scheme then records a failure if nothing fits, instead of an
        // unexplained empty certificate.
        Some(self.certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct RustlsKey {
    identity: ClientIdentity,
    state: Arc<ClientAuthState>,
}

impl rustls::sign::SigningKey for RustlsKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        let chosen = self
            .identity
            .schemes
            .iter()
            .copied()
            .find(|s| offered.contains(&to_rustls(*s)));
        match chosen {
            Some(scheme) => Some(Box::new(RustlsSigner {
                scheme,
                key: self.identity.key.clone(),
                state: self.state.clone(),
            })),
            None => {
                tracing::warn!(?offered, "no signature scheme in common with the server");
                self.state.record(ClientAuthFailure::NoCommonScheme {
                    offered: offered.iter().map(|s| format!("{s:?}")).collect(),
                    supported: self.identity.schemes.clone(),
                });
                None
            }
        }
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct RustlsSigner {
    scheme: SignatureScheme,
    key: Arc<dyn SigningKey>,
    state: Arc<ClientAuthState>,
}

impl rustls::sign::Signer for RustlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // The Certificate message precedes CertificateVerify in the same flight: it is on its way.
        self.state
            .disclosures
            .record(TlsVersion::of_client_signature(message));
        match self.key.sign(self.scheme, message) {
            Ok(sig) => {
                self.state.signatures.fetch_add(1, Ordering::Relaxed);
                Ok(sig)
            }
            Err(e) => {
                let msg = format!("client key could not sign: {e}");
                self.state.record(ClientAuthFailure::Signing(e));
                Err(rustls::Error::General(msg))
            }
        }
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        to_rustls(self.scheme)
    }
}

/// Verifies the server with webpki, and refuses any server name but the one host this config's
/// certificate may be shown to.
#[derive(Debug)]
struct HostBoundVerifier {
    inner: Arc<WebPkiServerVerifier>,
    host: String,
}

impl ServerCertVerifier for HostBoundVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = match server_name {
            ServerName::DnsName(d) => normalize_host(d.as_ref()).ok(),
            ServerName::IpAddress(ip) => Some(std::net::IpAddr::from(*ip).to_string()),
            _ => None,
        };
        if name.as_deref() != Some(self.host.as_str()) {
            return Err(rustls::Error::General(format!(
                "this connection may show the client certificate only to {}",
                self.host
            )));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Finds the rustls error inside an error chain (reqwest -> hyper -> io -> rustls).
#[cfg(feature = "client")]
pub(crate) fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        depth += 1;
        if depth > 16 {
            break;
        }
        // io::Error::source() skips the wrapped error itself: descend through get_ref().
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Classifies a rustls error: true when the peers found no protocol version in common.
#[cfg(feature = "client")]
pub(crate) fn is_version_mismatch(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
            | rustls::Error::PeerIncompatible(_)
    )
}

/// Classifies a rustls error: true when it is about the server's certificate.
#[cfg(feature = "client")]
pub(crate) fn is_untrusted_server(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
    )
}

/// Parses PEM certificates into a root store; returns how many were added.
pub fn add_pem_roots(store: &mut RootCertStore, pem: &[u8]) -> Result<usize, String> {
    use rustls::pki_types::pem::PemObject;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("bad PEM: {e:?}"))?;
        store
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(n)
}

/// Loads the operating system's trusted CAs (feature `client`).
#[cfg(feature = "client")]
pub fn system_roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "reading a system CA certificate failed");
    }
    let (added, ignored) = store.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system CA certificates");
    store
}
