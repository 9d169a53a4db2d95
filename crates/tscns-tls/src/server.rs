//! A small HTTPS server that asks for a client certificate from a given CA and reports the codice
//! fiscale it saw (feature `server`): for tests, examples, benches and emulators, on loopback.
//!
//! Each connection gets one response (`Connection: close`), so every request is a new TLS handshake:
//! exactly what shows whether session resumption saves the card a signature.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::rustls_glue::provider;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The server's certificate chain, PEM.
    pub cert_chain_pem: Vec<u8>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
    /// CA certificates (PEM) that client certificates must chain to.
    pub client_ca_pem: Vec<u8>,
    /// `false`: the server asks for a certificate but lets clients without one in (and records that).
    pub require_client_cert: bool,
    /// Offer clients only these signature schemes for CertificateVerify (default: ring's set).
    pub client_schemes: Option<Vec<SignatureScheme>>,
    /// TLS versions to accept (default both).
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Answer 403 unless the client certificate carries this codice fiscale.
    pub expect_codice_fiscale: Option<String>,
    /// Answer every authenticated request with `302 Found` to this URL instead.
    pub redirect_to: Option<String>,
}

impl ServerOptions {
    /// Options with a required client certificate, both TLS versions, ring's schemes.
    pub fn new(cert_chain_pem: Vec<u8>, key_pem: Vec<u8>, client_ca_pem: Vec<u8>) -> Self {
        Self {
            cert_chain_pem,
            key_pem,
            client_ca_pem,
            require_client_cert: true,
            client_schemes: None,
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            expect_codice_fiscale: None,
            redirect_to: None,
        }
    }
}

/// What the server saw of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenClient {
    /// Whether the client presented a certificate.
    pub presented_certificate: bool,
    /// The codice fiscale from the certificate's CN (`CF/card id.hash`), if any.
    pub codice_fiscale: Option<String>,
    /// "TLSv1_2" or "TLSv1_3".
    pub version: String,
    /// Whether the handshake resumed an earlier session (no client signature).
    pub resumed: bool,
    /// The HTTP status the server answered.
    pub status: u16,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Bad certificate, key or CA input.
    #[error("server setup: {0}")]
    Setup(String),
    /// Socket error.
    #[error("server socket: {0}")]
    Io(#[from] std::io::Error),
}

/// A running server; stops (and joins its thread) on drop.
#[derive(Debug)]
pub struct ClientAuthServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SeenClient>>>,
    thread: Option<JoinHandle<()>>,
}

impl ClientAuthServer {
    /// Starts the server on 127.0.0.1 with an ephemeral port.
    pub fn start(options: ServerOptions) -> Result<Self, ServerError> {
        let setup = |e: String| ServerError::Setup(e);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&options.cert_chain_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| setup(format!("server certificate: {e:?}")))?;
        let key = PrivateKeyDer::from_pem_slice(&options.key_pem)
            .map_err(|e| setup(format!("server key: {e:?}")))?;
        let mut roots = RootCertStore::empty();
        crate::rustls_glue::add_pem_roots(&mut roots, &options.client_ca_pem)
            .map_err(|e| setup(format!("client CA: {e}")))?;
        let mut vb = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        if !options.require_client_cert {
            vb = vb.allow_unauthenticated();
        }
        let inner = vb.build().map_err(|e| setup(e.to_string()))?;
        let verifier = Arc::new(SchemeLimitedVerifier {
            inner,
            schemes: options.client_schemes.clone(),
        });
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&options.versions)
            .map_err(|e| setup(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| setup(e.to_string()))?;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = stop.clone();
            let seen = seen.clone();
            let expect = options.expect_codice_fiscale.clone();
            let redirect = options.redirect_to.clone();
            // Blocking accept; Drop wakes it with a connection of its own after setting `stop`.
            std::thread::spawn(move || {
                for sock in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match sock {
                        Ok(sock) => serve(
                            sock,
                            config.clone(),
                            expect.as_deref(),
                            redirect.as_deref(),
                            &seen,
                        ),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(Self {
            addr,
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// The address the server listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every connection seen so far (including failed handshakes, with status 0).
    pub fn seen(&self) -> Vec<SeenClient> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientAuthServer {
    /// Waits (at most `timeout`) until at least `n` connections were recorded; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SeenClient> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = self.seen();
            if seen.len() >= n || std::time::Instant::now() >= deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ClientAuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept (bounded: a loopback connect either succeeds or fails at once).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    sock: TcpStream,
    config: Arc<rustls::ServerConfig>,
    expect: Option<&str>,
    redirect: Option<&str>,
    seen: &Mutex<Vec<SeenClient>>,
) {
    let record = |s: SeenClient| seen.lock().unwrap_or_else(PoisonError::into_inner).push(s);
    if let Some(s) = handle(sock, config, expect, redirect, &record) {
        record(s);
    }
}

/// Serves one connection; records the client before answering (so a client that got its answer
/// finds itself in [`ClientAuthServer::seen`]) and returns `None`, or returns what to record.
fn handle(
    mut sock: TcpStream,
    config: Arc<rustls::ServerConfig>,
    expect: Option<&str>,
    redirect: Option<&str>,
    record: &dyn Fn(SeenClient),
) -> Option<SeenClient> {
    sock.set_nonblocking(false).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    sock.set_write_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut conn = rustls::ServerConnection::new(config).ok()?;
    let mut failed = SeenClient {
        presented_certificate: false,
        codice_fiscale: None,
        version: String::new(),
        resumed: false,
        status: 0,
    };
    // Bounded: complete_io returns on error or timeout; a handshake takes a handful of flights.
    for _ in 0..32 {
        if !conn.is_handshaking() {
            break;
        }
        if conn.complete_io(&mut sock).is_err() {
            // Record what the client presented before the failure, if anything.
            failed.presented_certificate = conn.peer_certificates().is_some_and(|c| !c.is_empty());
            return Some(failed);
        }
    }
    if conn.is_handshaking() {
        return Some(failed);
    }
    let certs = conn
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let cf = certs.first().and_then(|c| codice_fiscale_of(c.as_ref()));
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let resumed = matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    // Read the request head, bounded in size (and in time by the socket timeout).
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = match (&cf, expect) {
        (None, _) => (401, "anonymous\n".to_string()),
        (Some(cf), Some(want)) if cf != want => (403, format!("forbidden: {cf}\n")),
        (Some(_), _) if redirect.is_some() => (302, String::new()),
        (Some(cf), _) => (200, format!("{cf}\n")),
    };
    let reason = match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        _ => "Forbidden",
    };
    let location = match (status, redirect) {
        (302, Some(to)) => format!("Location: {to}\r\n"),
        _ => String::new(),
    };
    record(SeenClient {
        presented_certificate: !certs.is_empty(),
        codice_fiscale: cf.clone(),
        version,
        resumed,
        status,
    });
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\n{location}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    None
}

/// The codice fiscale in a CNS certificate (subject CN `CF/card id.hash`), check letter verified.
pub fn codice_fiscale_of(cert_der: &[u8]) -> Option<String> {
    let cert = tscns_cert::CnsCertificate::from_der(cert_der).ok()?;
    cert.codice_fiscale().ok().map(|cf| cf.to_string())
}

#[derive(Debug)]
struct SchemeLimitedVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    schemes: Option<Vec<SignatureScheme>>,
}

impl ClientCertVerifier for SchemeLimitedVerifier {
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
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.schemes {
            Some(s) => s.clone(),
            None => self.inner.supported_verify_schemes(),
        }
    }
}

/// `openssl s_server -Verify 1 -www` as a server nobody here wrote: it requires a client certificate
/// from the given CA and answers each connection with a status page that names the client
/// certificate's subject. Killed (by PID) on drop.
#[derive(Debug)]
pub struct OpensslServer {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OpensslServer {
    /// Starts `openssl s_server` on 127.0.0.1 with the given PEM inputs; `tls` is `Some("1.2")`,
    /// `Some("1.3")` or `None` for both. Waits (at most 10 s) until it accepts connections.
    pub fn start(
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
        tls: Option<&str>,
    ) -> Result<Self, ServerError> {
        Self::start_with_security_level(cert_pem, key_pem, client_ca_pem, tls, None)
    }

    /// Like [`start`](Self::start), with OpenSSL's security level set (`Some(0)` accepts the
    /// 1024-bit RSA keys of older TS-CNS cards, which Debian's default level 2 refuses).
    pub fn start_with_security_level(
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
        tls: Option<&str>,
        security_level: Option<u8>,
    ) -> Result<Self, ServerError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tscns-s_server-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cert.pem"), cert_pem)?;
        std::fs::write(dir.join("key.pem"), key_pem)?;
        std::fs::write(dir.join("ca.pem"), client_ca_pem)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = std::process::Command::new("openssl");
        cmd.arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .arg("-CAfile")
            .arg(dir.join("ca.pem"))
            .args(["-Verify", "1", "-www"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(level) = security_level {
            cmd.arg("-cipher").arg(format!("DEFAULT:@SECLEVEL={level}"));
        }
        match tls {
            Some("1.2") => {
                cmd.arg("-tls1_2");
            }
            Some("1.3") => {
                cmd.arg("-tls1_3");
            }
            _ => {}
        }
        let child = cmd.spawn().map_err(|e| {
            ServerError::Setup(format!(
                "cannot run `openssl s_server` ({e}): install it with `apt-get install openssl`, or run scripts/test"
            ))
        })?;
        let mut server = Self { child, port, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = server.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(ServerError::Setup(format!(
                    "openssl s_server exited ({status}): {err}"
                )));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if std::time::Instant::now() >= deadline {
                return Err(ServerError::Setup(
                    "openssl s_server did not accept connections within 10 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
