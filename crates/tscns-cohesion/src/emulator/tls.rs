//! The emulator's HTTPS plumbing: certificates, rustls server configs, the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::client_auth::CnsClientVerifier;
use crate::error::{Error, Result};

/// What the handlers learn about the connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// The client certificate chain (smart-card listener only).
    pub(crate) client_chain: Vec<CertificateDer<'static>>,
    pub(crate) cns_listener: bool,
}

/// The server certificate: either given, or made here for localhost/127.0.0.1 with a fresh CA.
pub(crate) struct ServerIdentity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    /// PEM of the CA to trust (made here), or of the given chain's last certificate.
    pub(crate) ca_pem: String,
}

pub(crate) fn make_identity(hosts: &[String]) -> Result<ServerIdentity> {
    let err = |e: rcgen::Error| Error::Tls(format!("certificate generation: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tscns Cohesion emulator CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
    let leaf_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut leaf = rcgen::CertificateParams::new(hosts.to_vec()).map_err(err)?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "tscns Cohesion emulator");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&leaf_key, &ca).map_err(err)?;
    Ok(ServerIdentity {
        chain: vec![cert.der().clone(), ca.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        ca_pem: ca.pem(),
    })
}

pub(crate) fn load_identity(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerIdentity> {
    let chain = crate::pem::certificates(cert_pem).map_err(Error::Tls)?;
    if chain.is_empty() {
        return Err(Error::Tls(
            "the server certificate file holds no certificate".into(),
        ));
    }
    let key = parse_private_key(key_pem)?;
    let last = chain
        .last()
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    Ok(ServerIdentity {
        ca_pem: to_pem("CERTIFICATE", &last),
        chain,
        key,
    })
}

/// The first private key (PKCS#8, PKCS#1 or SEC1 PEM block) in the key file.
fn parse_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    use rustls_pki_types::pem::{self, PemObject as _};
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::Tls("no private key found in the key file".into()),
        other => Error::Tls(format!("key PEM: {other}")),
    })
}

pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn server_config(
    id: &ServerIdentity,
    client_roots: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match client_roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store
                    .add(r.clone())
                    .map_err(|e| Error::Tls(format!("CNS CA refused: {e}")))?;
            }
            let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
                .build()
                .map_err(|e| Error::Tls(format!("client verifier: {e}")))?;
            // The chain as WebPKI checks it; handshake signatures from 1024-bit CNS 1.0 keys too.
            builder.with_client_cert_verifier(Arc::new(CnsClientVerifier::new(webpki)))
        }
    };
    let mut cfg = builder
        .with_single_cert(id.chain.clone(), id.key.clone_key())
        .map_err(|e| Error::Tls(format!("server certificate: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `router` over TLS on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    cns_listener: bool,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        let Ok((tcp, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(Duration::from_secs(20), acceptor.accept(tcp)).await;
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let client_chain = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let info = ConnInfo {
                peer,
                client_chain,
                cns_listener,
            };
            let app = router.layer(axum::Extension(info));
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(20))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            tokio::select! {
                r = conn => { if let Err(e) = r { tracing::debug!(%peer, "connection: {e}"); } }
                _ = stop.changed() => {}
            }
        });
    }
}
