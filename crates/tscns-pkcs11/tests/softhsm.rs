//! PKCS#11 through SoftHSM2 with an imported CNS-profile key and certificate: TLS 1.2 and 1.3
//! handshakes verified by a rustls server (which checks the codice fiscale) and by
//! `openssl s_server -Verify 1`; every mechanism route; wrong PIN; the allowlist; resumption.
//!
//! Needs `softhsm2-util` (softhsm2), `pkcs11-tool` (opensc) and `openssl`: `scripts/test` installs
//! them. Each run has its own token directory (SOFTHSM2_CONF in a temporary directory).
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tscns_pkcs11::cryptoki::mechanism::MechanismType;
use tscns_pkcs11::{Error, KeySelector, Module, Pin, Pkcs11Key, Route};
use tscns_tls::server::{ClientAuthServer, OpensslServer, ServerOptions};
use tscns_tls::test_pki::TestPki;
use tscns_tls::{AuthClientBuilder, SignatureScheme, SigningKey, TlsVersions};

const CF: &str = "RSSMRA80A01H501U";
const PIN: &str = "12345678";

struct Fixture {
    _dir: tempfile::TempDir,
    module: Module,
    pki: TestPki,
}

fn softhsm_module() -> PathBuf {
    for p in [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "SoftHSM2 is not installed: run scripts/test, or install it with `apt-get install softhsm2 opensc`"
    );
}

fn run(conf: &Path, args: &[&str]) {
    let out = Command::new("timeout")
        .arg("60")
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}: run scripts/test, or `apt-get install softhsm2 opensc`",
                args[0]
            )
        });
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two tokens: "CNS" for the handshakes, "PINTEST" for wrong-PIN tests (same key and certificate).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let module_path = softhsm_module();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let pki = TestPki::generate(CF, 2048).unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.der");
        std::fs::write(&key, &pki.client_key_pem).unwrap();
        std::fs::write(&cert, &pki.client_cert_der).unwrap();
        let m = module_path.to_str().unwrap();
        for label in ["CNS", "PINTEST"] {
            run(
                &conf,
                &[
                    "softhsm2-util",
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--pin",
                    PIN,
                    "--so-pin",
                    "87654321",
                ],
            );
            run(
                &conf,
                &[
                    "softhsm2-util",
                    "--import",
                    key.to_str().unwrap(),
                    "--token",
                    label,
                    "--label",
                    "CNS0",
                    "--id",
                    "01",
                    "--pin",
                    PIN,
                ],
            );
            run(
                &conf,
                &[
                    "pkcs11-tool",
                    "--module",
                    m,
                    "--token-label",
                    label,
                    "--login",
                    "--pin",
                    PIN,
                    "--write-object",
                    cert.to_str().unwrap(),
                    "--type",
                    "cert",
                    "--id",
                    "01",
                    "--label",
                    "CNS0",
                ],
            );
        }
        // SoftHSM2 reads its configuration when the module is initialised, in this process.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let module = Module::open(&module_path).unwrap();
        Fixture {
            _dir: dir,
            module,
            pki,
        }
    })
}

/// PKCS#11 login state is per token and process: tests take turns.
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

fn slot_of(label: &str) -> u64 {
    fixture()
        .module
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.label == label)
        .unwrap()
        .slot_id
}

fn cns_key() -> Pkcs11Key {
    let f = fixture();
    let slot = slot_of("CNS");
    let cert = f
        .module
        .certificates(slot)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(cert.codice_fiscale.as_deref(), Some(CF));
    let key =
        Pkcs11Key::open_in_slot(&f.module, slot, &KeySelector::CodiceFiscale(CF.into())).unwrap();
    assert_eq!(key.certificate().slot_id, slot);
    key.login(&Pin::new(PIN).unwrap()).unwrap();
    key
}

fn rustls_server(f: &Fixture) -> ClientAuthServer {
    let mut o = ServerOptions::new(
        f.pki.server_cert_pem.clone().into_bytes(),
        f.pki.server_key_pem.clone().into_bytes(),
        f.pki.ca_pem.clone().into_bytes(),
    );
    o.expect_codice_fiscale = Some(CF.into());
    ClientAuthServer::start(o).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn fetch(
    key: Arc<dyn SigningKey>,
    versions: TlsVersions,
    url: &str,
) -> Result<(u16, String, u64), tscns_tls::Error> {
    let client = AuthClientBuilder::new(key)
        .add_ca_pem(fixture().pki.ca_pem.as_bytes(), "test CA")?
        .allow_host("127.0.0.1")?
        .tls_versions(versions)
        .reuse_connections(false)
        .timeout(Duration::from_secs(30))
        .build()?;
    runtime().block_on(async {
        let r = client.get(url).await?;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        Ok((status, body, client.signatures()))
    })
}

#[test]
fn tokens_certificates_and_mechanisms_are_listed() {
    let _g = serial();
    let f = fixture();
    let tokens = f.module.tokens().unwrap();
    assert!(tokens.iter().any(|t| t.label == "CNS"));
    let key = Pkcs11Key::open(&f.module, &KeySelector::Label("CNS0".into())).unwrap();
    assert_eq!(key.key_bits(), 2048);
    assert!(key.has_mechanism(MechanismType::RSA_PKCS_PSS));
    // The best routes SoftHSM2 offers.
    assert_eq!(key.route(SignatureScheme::PssSha256), Some(Route::Pss));
    assert_eq!(
        key.route(SignatureScheme::Pkcs1Sha256),
        Some(Route::Pkcs1DigestInfo)
    );
    let conformant = f.module.find_certificate(&KeySelector::CnsConformant);
    assert!(conformant.is_ok(), "{conformant:?}");
    let missing = Pkcs11Key::open(
        &f.module,
        &KeySelector::CodiceFiscale("BNCGNN85T10A944S".into()),
    );
    assert!(
        matches!(missing, Err(Error::NoCertificate { .. })),
        "{:?}",
        missing.map(|_| ())
    );
}

#[test]
fn wrong_pin_is_a_typed_error_and_nothing_is_retried() {
    let _g = serial();
    let f = fixture();
    let slot = slot_of("PINTEST");
    let cert = f.module.certificates(slot).unwrap().remove(0);
    assert_eq!(cert.slot_id, slot);
    let key = tscns_pkcs11_key_on(slot);
    let err = key.login(&Pin::new("00000000").unwrap()).unwrap_err();
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    assert!(err.to_string().starts_with("wrong PIN"), "{err}");
    // Not logged in: signing asks for the PIN instead of trying anything.
    let err = key
        .sign_scheme(SignatureScheme::Pkcs1Sha256, b"x")
        .unwrap_err();
    assert!(matches!(err, Error::NotLoggedIn), "{err}");
    let short = key.login(&Pin::new("1").unwrap()).unwrap_err();
    assert!(matches!(short, Error::InvalidPin { .. }), "{short}");
    key.login(&Pin::new(PIN).unwrap()).unwrap();
    key.sign_scheme(SignatureScheme::Pkcs1Sha256, b"x").unwrap();
    key.logout().unwrap();
}

fn tscns_pkcs11_key_on(slot: u64) -> Pkcs11Key {
    // The CF selector finds the CNS token first; select PINTEST by its label + slot.
    let f = fixture();
    let label = f
        .module
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.slot_id == slot)
        .unwrap()
        .label;
    assert_eq!(label, "PINTEST");
    Pkcs11Key::open_in_slot(&f.module, slot, &KeySelector::Label("CNS0".into())).unwrap()
}

#[test]
fn rustls_server_tls13_and_tls12_with_every_route() {
    let _g = serial();
    let f = fixture();
    let s = rustls_server(f);
    let url = format!("https://127.0.0.1:{}/", s.addr().port());
    let full = Arc::new(cns_key());
    assert!(full.schemes().iter().any(|s| s.is_pss()));
    let (st, body, sigs) = fetch(full.clone(), TlsVersions::Tls13, &url).unwrap();
    assert_eq!((st, body.trim(), sigs), (200, CF, 1));
    let (st, body, _) = fetch(full.clone(), TlsVersions::Tls12, &url).unwrap();
    assert_eq!((st, body.trim()), (200, CF));

    // A token with only CKM_RSA_X_509: host-built PSS, so TLS 1.3 still works.
    let raw = Arc::new(cns_key().limit_mechanisms(&[MechanismType::RSA_X_509]));
    assert_eq!(raw.route(SignatureScheme::PssSha256), Some(Route::Raw));
    let (st, body, _) = fetch(raw.clone(), TlsVersions::Auto, &url).unwrap();
    assert_eq!((st, body.trim()), (200, CF));
    // A token with only the hashing PSS mechanism.
    let hashing = Arc::new(cns_key().limit_mechanisms(&[MechanismType::SHA256_RSA_PKCS_PSS]));
    let (st, _, _) = fetch(hashing, TlsVersions::Tls13, &url).unwrap();
    assert_eq!(st, 200);
    // A token with only CKM_RSA_PKCS: no PSS, so TLS 1.2, chosen automatically.
    let pkcs1 = Arc::new(cns_key().limit_mechanisms(&[MechanismType::RSA_PKCS]));
    assert!(pkcs1.schemes().iter().all(|s| !s.is_pss()));
    let (st, body, _) = fetch(pkcs1.clone(), TlsVersions::Auto, &url).unwrap();
    assert_eq!((st, body.trim()), (200, CF));
    let err = fetch(pkcs1, TlsVersions::Tls13, &url).unwrap_err();
    assert!(
        matches!(err, tscns_tls::Error::Tls13NeedsPss { .. }),
        "{err}"
    );

    let versions: Vec<String> = s.seen().iter().map(|x| x.version.clone()).collect();
    assert_eq!(
        versions,
        ["TLSv1_3", "TLSv1_2", "TLSv1_3", "TLSv1_3", "TLSv1_2"]
    );
    assert!(s
        .seen()
        .iter()
        .all(|x| x.codice_fiscale.as_deref() == Some(CF)));
}

#[test]
fn ten_requests_one_token_signature() {
    let _g = serial();
    let f = fixture();
    let s = rustls_server(f);
    let url = format!("https://127.0.0.1:{}/", s.addr().port());
    let key: Arc<dyn SigningKey> = Arc::new(cns_key());
    let client = AuthClientBuilder::new(key)
        .add_ca_pem(f.pki.ca_pem.as_bytes(), "test CA")
        .unwrap()
        .allow_host("127.0.0.1")
        .unwrap()
        .reuse_connections(false)
        .build()
        .unwrap();
    runtime().block_on(async {
        for _ in 0..10 {
            let r = client.get(&url).await.unwrap();
            assert_eq!(r.status(), 200);
        }
    });
    assert_eq!(s.seen().len(), 10);
    assert_eq!(client.signatures(), 1);
}

fn openssl_fetch(key: Arc<dyn SigningKey>, tls: &str, versions: TlsVersions) -> String {
    let f = fixture();
    let server = OpensslServer::start(
        &f.pki.server_cert_pem,
        &f.pki.server_key_pem,
        &f.pki.ca_pem,
        Some(tls),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/", server.port());
    let (status, body, sigs) = fetch(key, versions, &url).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(sigs, 1);
    body
}

#[test]
fn openssl_s_server_verifies_tls13_and_tls12() {
    let _g = serial();
    let key: Arc<dyn SigningKey> = Arc::new(cns_key());
    let body = openssl_fetch(key.clone(), "1.3", TlsVersions::Auto);
    assert!(body.contains("TLSv1.3"), "{body}");
    assert!(body.contains(CF), "the server saw the certificate: {body}");
    let body = openssl_fetch(key, "1.2", TlsVersions::Tls12);
    assert!(body.contains("TLSv1.2"), "{body}");
    assert!(body.contains(CF), "{body}");
    // A PKCS#1-only token against a TLS 1.2 openssl server.
    let pkcs1: Arc<dyn SigningKey> =
        Arc::new(cns_key().limit_mechanisms(&[MechanismType::SHA256_RSA_PKCS]));
    let body = openssl_fetch(pkcs1, "1.2", TlsVersions::Auto);
    assert!(body.contains(CF), "{body}");
}

#[test]
fn a_host_not_allowed_never_gets_the_token_certificate() {
    let _g = serial();
    let f = fixture();
    let mut o = ServerOptions::new(
        f.pki.server_cert_pem.clone().into_bytes(),
        f.pki.server_key_pem.clone().into_bytes(),
        f.pki.ca_pem.clone().into_bytes(),
    );
    o.require_client_cert = false;
    let s = ClientAuthServer::start(o).unwrap();
    let key: Arc<dyn SigningKey> = Arc::new(cns_key());
    let (status, body, sigs) = fetch(
        key,
        TlsVersions::Auto,
        &format!("https://localhost:{}/", s.addr().port()),
    )
    .unwrap();
    assert_eq!((status, body.as_str(), sigs), (401, "anonymous\n", 0));
    assert!(!s.seen()[0].presented_certificate);
}

#[test]
fn discovery_follows_tscns_pkcs11_module_first() {
    let _g = serial();
    let f = fixture();
    std::env::set_var(tscns_pkcs11::MODULE_ENV, f.module.path());
    let found = Module::discover().unwrap();
    assert_eq!(found.path(), f.module.path());
    assert!(found.tokens().unwrap().iter().any(|t| t.label == "CNS"));
    std::env::set_var(tscns_pkcs11::MODULE_ENV, "/nonexistent/libnothing.so");
    let err = Module::discover().unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/libnothing.so"));
    std::env::remove_var(tscns_pkcs11::MODULE_ENV);
}

/// Dropping a logged-in key logs out: before, only its session was closed, so while the program
/// held any other session on the token (another key, the module's own) the token stayed logged in
/// and the card verified. The login is per application, so the last logged-in key logs out.
#[test]
fn dropping_a_logged_in_key_logs_out_once_no_other_key_needs_the_login() {
    let _turn = serial();
    let f = fixture();
    let slot = slot_of("CNS");
    let open = || {
        Pkcs11Key::open_in_slot(&f.module, slot, &KeySelector::CodiceFiscale(CF.into())).unwrap()
    };
    let sign = |k: &Pkcs11Key| {
        k.sign_with_mechanism(
            &tscns_pkcs11::cryptoki::mechanism::Mechanism::Sha256RsaPkcs,
            b"data",
        )
    };
    // A bystander key that never logs in sees the application's login state.
    let bystander = open();
    let first = cns_key();
    assert!(bystander.is_logged_in().unwrap());
    assert!(sign(&bystander).is_ok(), "the login is per application");
    let second = cns_key();
    drop(first);
    assert!(
        bystander.is_logged_in().unwrap(),
        "another key still needs the login"
    );
    assert!(sign(&second).is_ok());
    drop(second);
    assert!(
        !bystander.is_logged_in().unwrap(),
        "the last logged-in key was dropped and the token is still logged in"
    );
    assert!(sign(&bystander).is_err(), "signed after the logout");
    // An explicit logout, then the drop, log out and do not disturb the count.
    let k = cns_key();
    k.logout().unwrap();
    assert!(!bystander.is_logged_in().unwrap());
    drop(k);
    let k = cns_key();
    assert!(bystander.is_logged_in().unwrap());
    drop(k);
    assert!(!bystander.is_logged_in().unwrap());
}
