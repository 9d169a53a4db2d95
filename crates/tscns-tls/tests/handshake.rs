//! Real handshakes, both ends in process: a rustls server that requires client certificates from the
//! test CA and checks the codice fiscale, and `AuthClient` with software keys that behave like a card
//! (raw RSA), like a token without PSS, or like a removed card.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use tscns_tls::server::{ClientAuthServer, ServerOptions};
use tscns_tls::test_pki::{SoftwareKey, SoftwareKeyMode, SoftwareKeyRemoved, TestPki};
use tscns_tls::{AuthClient, AuthClientBuilder, Error, SigningKey, TlsVersion, TlsVersions};

const CF: &str = "RSSMRA80A01H501U";

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(CF, 2048).unwrap())
}

fn server(configure: impl FnOnce(&mut ServerOptions)) -> ClientAuthServer {
    let p = pki();
    let mut o = ServerOptions::new(
        p.server_cert_pem.clone().into_bytes(),
        p.server_key_pem.clone().into_bytes(),
        p.ca_pem.clone().into_bytes(),
    );
    o.expect_codice_fiscale = Some(CF.to_string());
    configure(&mut o);
    ClientAuthServer::start(o).unwrap()
}

fn client(key: Arc<dyn SigningKey>, versions: TlsVersions) -> Result<AuthClient, Error> {
    AuthClientBuilder::new(key)
        .add_ca_pem(pki().ca_pem.as_bytes(), "test CA")?
        .allow_host("127.0.0.1")?
        .tls_versions(versions)
        .reuse_connections(false)
        .timeout(std::time::Duration::from_secs(20))
        .build()
}

fn key(mode: SoftwareKeyMode) -> Arc<SoftwareKey> {
    Arc::new(pki().software_key(mode))
}

async fn get_ok(c: &AuthClient, s: &ClientAuthServer) -> String {
    let r = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn raw_rsa_key_logs_in_with_tls13_and_host_built_pss() {
    let s = server(|_| {});
    let k = key(SoftwareKeyMode::RawRsa);
    let c = client(k.clone(), TlsVersions::Auto).unwrap();
    assert_eq!(get_ok(&c, &s).await.trim(), CF);
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, "TLSv1_3");
    assert_eq!(seen[0].codice_fiscale.as_deref(), Some(CF));
    assert_eq!(k.signatures(), 1);
}

#[tokio::test]
async fn raw_rsa_key_logs_in_with_tls12() {
    let s = server(|_| {});
    let c = client(key(SoftwareKeyMode::RawRsa), TlsVersions::Tls12).unwrap();
    assert_eq!(get_ok(&c, &s).await.trim(), CF);
    assert_eq!(s.seen()[0].version, "TLSv1_2");
}

#[tokio::test]
async fn pkcs1_only_key_falls_back_to_tls12() {
    let s = server(|_| {});
    let c = client(key(SoftwareKeyMode::Pkcs1Only), TlsVersions::Auto).unwrap();
    assert_eq!(get_ok(&c, &s).await.trim(), CF);
    assert_eq!(s.seen()[0].version, "TLSv1_2");
}

#[test]
fn pkcs1_only_key_cannot_be_forced_to_tls13() {
    let err = client(key(SoftwareKeyMode::Pkcs1Only), TlsVersions::Tls13).unwrap_err();
    assert!(matches!(err, Error::Tls13NeedsPss { .. }), "{err}");
    assert!(err.to_string().contains("use TLS 1.2"));
}

#[tokio::test]
async fn no_common_scheme_is_an_error_not_an_empty_certificate() {
    // A TLS 1.2 server that only accepts PSS client signatures; the key can only do PKCS#1.
    let s = server(|o| {
        o.versions = vec![&tscns_tls::rustls::version::TLS12];
        o.client_schemes = Some(vec![tscns_tls::rustls::SignatureScheme::RSA_PSS_SHA256]);
    });
    let c = client(key(SoftwareKeyMode::Pkcs1Only), TlsVersions::Auto).unwrap();
    let err = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoCommonScheme { .. }), "{err}");
    assert!(err.to_string().contains("RSA_PSS_SHA256"), "{err}");
    assert!(s.seen().iter().all(|x| x.status != 200));
}

#[tokio::test]
async fn no_common_scheme_is_an_error_even_when_the_server_lets_anonymous_in() {
    let s = server(|o| {
        o.versions = vec![&tscns_tls::rustls::version::TLS12];
        o.client_schemes = Some(vec![tscns_tls::rustls::SignatureScheme::RSA_PSS_SHA512]);
        o.require_client_cert = false;
    });
    let c = client(key(SoftwareKeyMode::Pkcs1Only), TlsVersions::Auto).unwrap();
    let err = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoCommonScheme { .. }), "{err}");
    // The server really got an empty certificate: this is the trap the error makes visible.
    let seen = s.wait_for(1, std::time::Duration::from_secs(5));
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].presented_certificate);
}

#[tokio::test]
async fn a_host_not_allowed_never_receives_the_certificate() {
    // The server asks for a certificate but lets anonymous clients in, and records what it got.
    let s = server(|o| o.require_client_cert = false);
    let k = key(SoftwareKeyMode::RawRsa);
    let c = client(k.clone(), TlsVersions::Auto).unwrap();
    // Same server, reached by a name that is not allowed.
    let r = c
        .get(&format!("https://localhost:{}/", s.addr().port()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "anonymous\n");
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].presented_certificate);
    assert_eq!(k.signatures(), 0);
    // ...and by the allowed name it does.
    assert_eq!(get_ok(&c, &s).await.trim(), CF);
    assert!(s.seen()[1].presented_certificate);
}

#[test]
fn a_host_bound_config_refuses_to_show_the_certificate_to_another_name() {
    use std::io::Write;
    let s = server(|o| o.require_client_cert = false);
    let p = pki();
    let identity = tscns_tls::ClientIdentity::new(key(SoftwareKeyMode::RawRsa)).unwrap();
    let mut roots = tscns_tls::rustls::RootCertStore::empty();
    tscns_tls::rustls_glue::add_pem_roots(&mut roots, p.ca_pem.as_bytes()).unwrap();
    let versions =
        tscns_tls::rustls_glue::protocol_versions(TlsVersions::Auto, Some(&identity)).unwrap();
    let (cfg, _) = tscns_tls::rustls_glue::client_config(
        Arc::new(roots),
        &versions,
        Some((&identity, "127.0.0.1")),
    )
    .unwrap();
    // Misuse: the config for 127.0.0.1 used to connect to "localhost".
    let mut conn =
        tscns_tls::rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap())
            .unwrap();
    let mut sock = std::net::TcpStream::connect(s.addr()).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut failed = false;
    for _ in 0..16 {
        if conn.complete_io(&mut sock).is_err() {
            failed = true;
            break;
        }
        if !conn.is_handshaking() {
            break;
        }
    }
    let _ = sock.flush();
    drop(sock);
    assert!(failed, "the handshake must fail");
    // Wait (bounded) for the server to record the connection.
    let seen = s.wait_for(1, std::time::Duration::from_secs(5));
    assert_eq!(seen.len(), 1);
    assert!(seen.iter().all(|x| !x.presented_certificate));
    assert_eq!(identity.signatures(), 0);
}

#[tokio::test]
async fn ten_requests_cost_one_signature_tls13() {
    let s = server(|_| {});
    let k = key(SoftwareKeyMode::RawRsa);
    let c = client(k.clone(), TlsVersions::Tls13).unwrap();
    for _ in 0..10 {
        assert_eq!(get_ok(&c, &s).await.trim(), CF);
    }
    let seen = s.seen();
    assert_eq!(seen.len(), 10, "every request is a new connection");
    assert_eq!(seen.iter().filter(|x| x.resumed).count(), 9);
    assert_eq!(k.signatures(), 1);
    assert_eq!(c.signatures(), 1);
}

#[tokio::test]
async fn ten_requests_cost_one_signature_tls12() {
    let s = server(|_| {});
    let k = key(SoftwareKeyMode::Pkcs1Only);
    let c = client(k.clone(), TlsVersions::Auto).unwrap();
    for _ in 0..10 {
        assert_eq!(get_ok(&c, &s).await.trim(), CF);
    }
    let seen = s.seen();
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|x| x.version == "TLSv1_2"));
    assert_eq!(k.signatures(), 1);
}

#[tokio::test]
async fn a_signing_failure_surfaces_the_signers_typed_error() {
    let s = server(|_| {});
    let c = client(key(SoftwareKeyMode::Failing), TlsVersions::Auto).unwrap();
    let err = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap_err();
    match &err {
        Error::Signing { source, .. } => {
            assert!(source.downcast_ref::<SoftwareKeyRemoved>().is_some())
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn the_server_checks_the_codice_fiscale() {
    let s = server(|o| o.expect_codice_fiscale = Some("BNCGNN85T10A944S".into()));
    let c = client(key(SoftwareKeyMode::RawRsa), TlsVersions::Auto).unwrap();
    let r = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn an_untrusted_server_is_reported_as_such() {
    let s = server(|_| {});
    let other = TestPki::with_client_key("BNCGNN85T10A944S", pki().client_key.clone()).unwrap();
    let c = AuthClientBuilder::new(key(SoftwareKeyMode::RawRsa))
        .add_ca_pem(other.ca_pem.as_bytes(), "other CA")
        .unwrap()
        .allow_host("127.0.0.1")
        .unwrap()
        .build()
        .unwrap();
    let err = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedServer { .. }), "{err}");
}

#[tokio::test]
async fn a_server_refusing_our_ca_is_a_refused_handshake() {
    // The server trusts another CA for clients.
    let other = TestPki::with_client_key("BNCGNN85T10A944S", pki().client_key.clone()).unwrap();
    let s = server(|o| o.client_ca_pem = other.ca_pem.clone().into_bytes());
    let c = client(key(SoftwareKeyMode::RawRsa), TlsVersions::Auto).unwrap();
    let err = c
        .get(&format!("https://127.0.0.1:{}/", s.addr().port()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::HandshakeRefused { .. } | Error::Http { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_not_allowed_does_not_carry_the_certificate() {
    // B: asks for a certificate, lets anonymous clients in, records what it got.
    let b = server(|o| o.require_client_cert = false);
    // A (allowed as 127.0.0.1) sends the logged-in client on to B under a name not allowed.
    let to = format!("https://localhost:{}/landing", b.addr().port());
    let a = server(|o| o.redirect_to = Some(to.clone()));
    let k = key(SoftwareKeyMode::RawRsa);
    let c = client(k.clone(), TlsVersions::Auto).unwrap();
    let r = c
        .get(&format!("https://127.0.0.1:{}/", a.addr().port()))
        .await
        .unwrap();
    assert_eq!(r.url().as_str(), to);
    assert_eq!(r.status(), 401);
    assert!(a.seen()[0].presented_certificate);
    let seen_b = b.wait_for(1, std::time::Duration::from_secs(5));
    assert_eq!(seen_b.len(), 1);
    assert!(!seen_b[0].presented_certificate);
    assert_eq!(k.signatures(), 1);
    // The per-host reqwest client itself never follows a redirect off its host.
    let url = format!("https://127.0.0.1:{}/", a.addr().port());
    let direct = c
        .client_for(&url.parse().unwrap())
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 302);
    assert_eq!(b.seen().len(), 1);
}

fn client_allowing(
    key: Arc<dyn SigningKey>,
    versions: TlsVersions,
    entries: &[&str],
) -> AuthClient {
    let mut b = AuthClientBuilder::new(key)
        .add_ca_pem(pki().ca_pem.as_bytes(), "test CA")
        .unwrap()
        .tls_versions(versions)
        .reuse_connections(false)
        .timeout(std::time::Duration::from_secs(20));
    for e in entries {
        b = b.allow_host(e).unwrap();
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_host_port_entry_shows_the_certificate_at_that_port_only() {
    // Two services on one machine; the citizen allowed only the first one's port.
    let allowed = server(|o| o.require_client_cert = false);
    let other = server(|o| o.require_client_cert = false);
    let k = key(SoftwareKeyMode::RawRsa);
    let entry = format!("127.0.0.1:{}", allowed.addr().port());
    let c = client_allowing(k.clone(), TlsVersions::Auto, &[&entry]);
    let other_url = format!("https://127.0.0.1:{}/", other.addr().port());
    assert!(!c.is_allowed_url(&other_url.parse().unwrap()));
    let r = c.get(&other_url).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "anonymous\n");
    assert!(!other.seen()[0].presented_certificate);
    assert_eq!(k.signatures(), 0);
    assert!(c.certificate_sent_over().is_empty());
    // The allowed port gets it.
    assert_eq!(get_ok(&c, &allowed).await.trim(), CF);
    assert!(allowed.seen()[0].presented_certificate);
    assert!(c.is_allowed(&entry));
    assert!(!c.is_allowed("127.0.0.1"), "not every port");
    // A bare host keeps its meaning: every port.
    let every = client_allowing(k.clone(), TlsVersions::Auto, &["127.0.0.1"]);
    assert_eq!(get_ok(&every, &other).await.trim(), CF);
    assert!(other.seen()[1].presented_certificate);
}

#[tokio::test]
async fn the_outcome_says_which_tls_version_carried_the_certificate() {
    let s = server(|_| {});
    let c = client(key(SoftwareKeyMode::RawRsa), TlsVersions::Tls13).unwrap();
    assert_eq!(get_ok(&c, &s).await.trim(), CF);
    assert_eq!(c.certificate_sent_over(), [TlsVersion::Tls13]);
    assert!(TlsVersion::Tls13.certificate_encrypted());

    let c = client(key(SoftwareKeyMode::RawRsa), TlsVersions::Tls12).unwrap();
    assert_eq!(get_ok(&c, &s).await.trim(), CF);
    assert_eq!(c.certificate_sent_over(), [TlsVersion::Tls12]);
    assert!(!TlsVersion::Tls12.certificate_encrypted());

    // Auto with a server that cannot do 1.3: the fallback is reported, not hidden.
    let s12 = server(|o| o.versions = vec![&tscns_tls::rustls::version::TLS12]);
    let c = client(key(SoftwareKeyMode::RawRsa), TlsVersions::Auto).unwrap();
    assert_eq!(get_ok(&c, &s12).await.trim(), CF);
    assert_eq!(c.certificate_sent_over(), [TlsVersion::Tls12]);
}

/// `openssl s_server -tls1_2` (a server nobody here wrote) cannot get the certificate out of a
/// client that requires TLS 1.3. Needs openssl: `scripts/test` installs it.
#[tokio::test]
async fn tls13_required_never_sends_the_certificate_to_a_tls12_only_server() {
    let p = pki();
    let o = tscns_tls::server::OpensslServer::start(
        &p.server_cert_pem,
        &p.server_key_pem,
        &p.ca_pem,
        Some("1.2"),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/", o.port());
    let k = key(SoftwareKeyMode::RawRsa);
    let c = client(k.clone(), TlsVersions::Tls13).unwrap();
    let err = c.get(&url).await.unwrap_err();
    assert!(matches!(err, Error::Tls13Required { .. }), "{err:?}");
    assert!(err.to_string().contains("was not sent"), "{err}");
    assert_eq!(k.signatures(), 0);
    assert!(c.certificate_sent_over().is_empty());
    // The same server does get it over TLS 1.2 when the caller accepts that, and it is reported.
    let c = client(k.clone(), TlsVersions::Auto).unwrap();
    let body = c.get(&url).await.unwrap().text().await.unwrap();
    assert!(body.contains("TLSv1.2"), "{body}");
    assert!(body.contains(CF), "{body}");
    assert_eq!(c.certificate_sent_over(), [TlsVersion::Tls12]);
}
