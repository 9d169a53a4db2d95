//! PKCS#11 through OpenSC's `opensc-pkcs11.so` (its itacns driver) over pcscd + vpcd with the
//! tscns-sim card: the token and its CNS certificate are found, the PIN logs in, the card's key
//! signs TLS 1.3 / 1.2 handshakes that a rustls server and `openssl s_server -Verify 1` verify;
//! wrong PIN and blocked PIN come back as typed errors.
//!
//! Needs pcscd with vsmartcard-vpcd, OpenSC (opensc-pkcs11) and openssl: `scripts/test`.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
use tscns_pkcs11::{Error, KeySelector, Module, Pin, Pkcs11Key};
use tscns_sim::{serve_vpcd, Profile, SimCard, TestPki, VpcdServer};
use tscns_tls::server::OpensslServer;
use tscns_tls::{AuthClientBuilder, SigningKey, TlsVersions};

const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

fn module() -> &'static Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        let path = [
            OPENSC,
            "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib/opensc-pkcs11.so",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("OpenSC is not installed: run scripts/test, or `apt-get install opensc-pkcs11`")
        });
        Module::open(Path::new(path)).unwrap()
    })
}

/// The OpenSC module sees every vpcd reader: hold both readers so no other test's card shows up,
/// and let tests of this binary take turns.
struct Plugged {
    _serial: MutexGuard<'static, ()>,
    vpcd: Option<VpcdServer>,
    handle: tscns_sim::SimHandle,
    pki: TestPki,
    cf: String,
    pin: String,
    _locks: (ReaderLock, ReaderLock),
}

impl Drop for Plugged {
    fn drop(&mut self) {
        if let Some(v) = self.vpcd.take() {
            v.stop();
        }
        // Wait (bounded) until OpenSC has seen the card leave, so the next test's card is new to it.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline
            && module()
                .find_certificate(&KeySelector::CodiceFiscale(self.cf.clone()))
                .is_ok()
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn plug(profile: &str) -> Plugged {
    static SERIAL: Mutex<()> = Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let l0 = ReaderLock::acquire(35963, Duration::from_secs(180)).unwrap();
    let l1 = ReaderLock::acquire(35964, Duration::from_secs(180)).unwrap();
    let profile = Profile::builtin(profile).unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let pki = sim.pki().clone();
    let handle = sim.handle();
    let vpcd = serve_vpcd(sim, 35964).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
    assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
    let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
        .unwrap()
        .codice_fiscale()
        .unwrap()
        .to_string();
    Plugged {
        _serial: serial,
        vpcd: Some(vpcd),
        handle,
        pki,
        cf,
        pin: profile.pin.expose().to_string(),
        _locks: (l0, l1),
    }
}

/// OpenSC notices the card after a moment: look for its certificate, bounded.
fn open_key(cf: &str) -> Pkcs11Key {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match Pkcs11Key::open(module(), &KeySelector::CodiceFiscale(cf.into())) {
            Ok(k) => return k,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("OpenSC does not show the simulated card's certificate: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

fn fetch(p: &Plugged, key: Arc<dyn SigningKey>, url: &str, v: TlsVersions) -> (u16, String, u64) {
    let client = AuthClientBuilder::new(key)
        .add_ca_pem(p.pki.ca_cert_pem().as_bytes(), "simulator CA")
        .unwrap()
        .allow_host("localhost")
        .unwrap()
        .tls_versions(v)
        .reuse_connections(false)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut last = (0, String::new());
            for _ in 0..3 {
                let r = client.get(url).await.unwrap();
                last = (r.status().as_u16(), r.text().await.unwrap_or_default());
            }
            (last.0, last.1, client.signatures())
        })
}

#[test]
fn opensc_signs_tls_handshakes_with_the_simulated_card() {
    // OpenSC 0.23's itacns driver declares 1024-bit RSA only ("Card does not support RSA with key
    // length 2048"): the 2048-bit profiles cannot sign through it, so this uses a 1024-bit card.
    // ring (behind the rustls server) refuses RSA keys under 2048 bits, so the verifying server is
    // openssl s_server at security level 0.
    let p = plug("athena-1024");
    let key = open_key(&p.cf);
    eprintln!("OpenSC signing mechanisms: {:?}", key.mechanisms());
    eprintln!("schemes: {:?}", key.schemes());
    key.login(&Pin::new(&p.pin).unwrap()).unwrap();
    // OpenSC 0.23 lists CKM_RSA_PKCS_PSS and CKM_RSA_X_509 for the TS-CNS, but its itacns driver
    // refuses both: the login's probe finds out, so the key honestly offers PKCS#1 only (TLS 1.2).
    eprintln!("schemes after the login probe: {:?}", key.schemes());
    let key: Arc<dyn SigningKey> = Arc::new(key);
    let sc = p.pki.issue_server_certificate(&["localhost"]).unwrap();
    let can_pss = key.schemes().iter().any(|x| x.is_pss());
    eprintln!("can produce PSS: {can_pss}");
    let mut versions = vec![(TlsVersions::Tls12, "TLSv1.2", "1.2")];
    if can_pss {
        versions.push((TlsVersions::Tls13, "TLSv1.3", "1.3"));
    } else {
        // TLS 1.3 refused up front, with a typed error, instead of an empty certificate.
        let err = AuthClientBuilder::new(key.clone())
            .add_ca_pem(p.pki.ca_cert_pem().as_bytes(), "simulator CA")
            .unwrap()
            .tls_versions(TlsVersions::Tls13)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, tscns_tls::Error::Tls13NeedsPss { .. }),
            "{err}"
        );
        // And Auto picks TLS 1.2 (against a server that offers both).
        versions.push((TlsVersions::Auto, "TLSv1.2", "both"));
    }
    for (v, shown, tls) in versions {
        let o = OpensslServer::start_with_security_level(
            &sc.cert_pem,
            &sc.key_pem,
            p.pki.ca_cert_pem(),
            (tls != "both").then_some(tls),
            Some(0),
        )
        .unwrap();
        let (status, body, sigs) = fetch(
            &p,
            key.clone(),
            &format!("https://localhost:{}/", o.port()),
            v,
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(shown), "{body}");
        assert!(
            body.contains(&p.cf),
            "openssl saw the card's certificate: {body}"
        );
        assert_eq!(sigs, 1);
    }
}

#[test]
fn opensc_wrong_and_blocked_pin_are_typed_errors() {
    let p = plug("default");
    let key = open_key(&p.cf);
    let mut last = None;
    // Wrong PINs until the card blocks it (bounded by the profile's tries, at most 10).
    for _ in 0..10 {
        match key.login(&Pin::new("99999999").unwrap()) {
            Err(Error::WrongPin { tries_left }) => last = Some(tries_left),
            Err(Error::PinBlocked) => {
                last = None;
                break;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert!(last.is_none(), "the PIN never blocked");
    // Blocked: even the right PIN is refused, as a typed error.
    let err = key.login(&Pin::new(&p.pin).unwrap()).unwrap_err();
    assert!(matches!(err, Error::PinBlocked), "{err}");
    assert!(err.to_string().contains("blocked"));
}

#[test]
fn opensc_card_removed_after_login_is_token_removed_and_nothing_hangs() {
    let mut p = plug("athena-1024");
    let key = open_key(&p.cf);
    key.login(&Pin::new(&p.pin).unwrap()).unwrap();
    let key: Arc<dyn SigningKey> = Arc::new(key);
    let sc = p.pki.issue_server_certificate(&["localhost"]).unwrap();
    let o = OpensslServer::start_with_security_level(
        &sc.cert_pem,
        &sc.key_pem,
        p.pki.ca_cert_pem(),
        Some("1.2"),
        Some(0),
    )
    .unwrap();
    // Pull the card out of the reader, then ask for a handshake.
    if let Some(v) = p.vpcd.take() {
        v.stop();
    }
    std::thread::sleep(Duration::from_secs(2));
    let client = AuthClientBuilder::new(key)
        .add_ca_pem(p.pki.ca_cert_pem().as_bytes(), "simulator CA")
        .unwrap()
        .allow_host("localhost")
        .unwrap()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.get(&format!("https://localhost:{}/", o.port())))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(60));
    match &err {
        tscns_tls::Error::Signing { source, .. } => {
            let e = source.downcast_ref::<Error>().unwrap();
            assert!(matches!(e, Error::TokenRemoved), "{e}");
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn opensc_with_a_2048_bit_card_fails_at_login_with_a_clear_error() {
    // OpenSC 0.23's itacns driver lists mechanisms but refuses 2048-bit keys for all of them.
    let p = plug("default");
    let key = open_key(&p.cf);
    let err = key.login(&Pin::new(&p.pin).unwrap()).unwrap_err();
    assert!(matches!(err, Error::NoWorkingMechanism { .. }), "{err}");
    assert!(err.to_string().contains("use the card directly"), "{err}");
}

/// `Pkcs11Key`'s drop logs out (before, it only closed its session, and a program holding any
/// other session stayed logged in). What the card then holds is up to the module, and this test
/// documents OpenSC 0.23's itacns driver: it has no logout of its own, so after `C_Logout`, and
/// after the program's last session is closed, the card still holds the verified PIN on OpenSC's
/// PC/SC connection, and any local PC/SC client could sign until the card is reset or pulled
/// (`Pkcs11Key`'s documentation says so; tscns' own module resets the card). If OpenSC ever resets
/// here, this test says so.
#[test]
fn opensc_logs_out_on_drop_but_keeps_the_card_verified() {
    let p = plug("athena-1024");
    let key = open_key(&p.cf);
    // A bystander key of the same program, as a browser or a second consumer would hold.
    let bystander = open_key(&p.cf);
    key.login(&Pin::new(&p.pin).unwrap()).unwrap();
    assert!(
        p.handle.pin_verified(),
        "the login verified the PIN on the card"
    );
    assert!(bystander.is_logged_in().unwrap());
    drop(key);
    assert!(!bystander.is_logged_in().unwrap(), "the drop logged out");
    drop(bystander);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        p.handle.pin_verified(),
        "OpenSC now resets the card at C_Logout: update Pkcs11Key's documentation"
    );
}
