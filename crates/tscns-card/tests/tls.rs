//! TLS client authentication with the card (feature `tls`): the simulated card in process, a rustls
//! server that requires a certificate from the simulator's test CA and checks the codice fiscale.
//! TLS 1.3 (host-built PSS) and TLS 1.2, resumption, a card removed before the handshake signs.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_sim::{Profile, SimCard, SimHandle, TestPki};
use tscns_tls::server::{ClientAuthServer, ServerOptions};
use tscns_tls::{AuthClient, AuthClientBuilder, Error, SigningKey, TlsVersions};

struct Setup {
    handle: SimHandle,
    pki: TestPki,
    key: Arc<CardKey<SimCard>>,
    cf: String,
}

fn setup(profile: &str) -> Setup {
    let profile = Profile::builtin(profile).unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let pki = sim.pki().clone();
    let mut card = CnsCard::open(sim).unwrap();
    card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
        .unwrap()
        .codice_fiscale()
        .unwrap()
        .to_string();
    Setup {
        handle,
        pki,
        key: Arc::new(CardKey::new(card).unwrap()),
        cf,
    }
}

fn server(
    s: &Setup,
    versions: Vec<&'static tscns_tls::rustls::SupportedProtocolVersion>,
) -> ClientAuthServer {
    let sc = s.pki.issue_server_certificate(&["localhost"]).unwrap();
    let mut o = ServerOptions::new(
        sc.cert_pem.into_bytes(),
        sc.key_pem.into_bytes(),
        s.pki.ca_cert_pem().as_bytes().to_vec(),
    );
    o.expect_codice_fiscale = Some(s.cf.clone());
    o.versions = versions;
    ClientAuthServer::start(o).unwrap()
}

fn client(s: &Setup, versions: TlsVersions) -> AuthClient {
    AuthClientBuilder::new(s.key.clone())
        .add_ca_pem(s.pki.ca_cert_pem().as_bytes(), "simulator CA")
        .unwrap()
        .allow_host("localhost")
        .unwrap()
        .tls_versions(versions)
        .reuse_connections(false)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_card_logs_in_with_tls13_and_tls12_and_resumes() {
    let s = setup("default");
    assert!(s.key.schemes().iter().any(|x| x.is_pss()));
    let srv = server(
        &s,
        vec![
            &tscns_tls::rustls::version::TLS13,
            &tscns_tls::rustls::version::TLS12,
        ],
    );
    let url = format!("https://localhost:{}/", srv.addr().port());
    for (versions, name) in [
        (TlsVersions::Tls13, "TLSv1_3"),
        (TlsVersions::Tls12, "TLSv1_2"),
    ] {
        let before = s.handle.counters().signatures;
        let c = client(&s, versions);
        rt().block_on(async {
            for _ in 0..10 {
                let r = c.get(&url).await.unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.text().await.unwrap().trim(), s.cf);
            }
        });
        // Ten requests, ten TLS connections, one card signature.
        assert_eq!(s.handle.counters().signatures - before, 1, "{name}");
        assert_eq!(c.signatures(), 1);
        let seen = srv.seen();
        assert!(seen.iter().rev().take(10).all(|x| x.version == name));
    }
}

#[test]
fn a_1024_bit_card_can_still_produce_tls13_pss() {
    // (ring, behind the rustls server, refuses RSA keys under 2048 bits, so the 1024-bit handshake
    // runs against openssl s_server in the system tests; here the PSS signature itself is checked.)
    use sha2::Digest;
    let s = setup("athena-1024");
    assert_eq!(s.key.key_bits(), 1024);
    // PSS with SHA-512 does not fit 1024 bits; SHA-256 does.
    assert!(!s
        .key
        .schemes()
        .contains(&tscns_tls::SignatureScheme::PssSha512));
    let sig = s
        .key
        .sign(
            tscns_tls::SignatureScheme::PssSha256,
            b"TLS 1.3, client CertificateVerify",
        )
        .unwrap();
    let digest = sha2::Sha256::digest(b"TLS 1.3, client CertificateVerify");
    s.pki
        .card_public_key()
        .verify(rsa::Pss::new::<sha2::Sha256>(), &digest, &sig)
        .unwrap();
}

#[test]
fn a_card_removed_before_the_signature_is_a_typed_error_and_nothing_hangs() {
    let s = setup("default");
    let srv = server(&s, vec![&tscns_tls::rustls::version::TLS13]);
    let c = client(&s, TlsVersions::Auto);
    s.handle.remove();
    let started = std::time::Instant::now();
    let err = rt()
        .block_on(c.get(&format!("https://localhost:{}/", srv.addr().port())))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    match &err {
        Error::Signing { source, .. } => {
            let card = source.downcast_ref::<tscns_card::Error>().unwrap();
            assert!(matches!(card, tscns_card::Error::CardRemoved), "{card}");
        }
        other => panic!("unexpected: {other}"),
    }
    assert!(err.to_string().contains("removed"), "{err}");
}

#[test]
fn without_the_pin_the_card_refuses_and_the_error_says_so() {
    let profile = Profile::builtin("default").unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let pki = sim.pki().clone();
    let handle = sim.handle();
    let key = Arc::new(CardKey::new(CnsCard::open(sim).unwrap()).unwrap());
    let s = Setup {
        handle,
        pki,
        key,
        cf: String::new(),
    };
    let srv = server(&s, vec![&tscns_tls::rustls::version::TLS13]);
    let err = rt()
        .block_on(
            client(&s, TlsVersions::Auto).get(&format!("https://localhost:{}/", srv.addr().port())),
        )
        .unwrap_err();
    match &err {
        Error::Signing { source, .. } => {
            let card = source.downcast_ref::<tscns_card::Error>().unwrap();
            assert!(matches!(card, tscns_card::Error::PinRequired), "{card}");
        }
        other => panic!("unexpected: {other}"),
    }
}

/// The in-process card against `openssl s_server -Verify 1` (a server nobody here wrote), TLS 1.3
/// and 1.2, 2048-bit and 1024-bit cards (security level 0 for the latter: Debian's default refuses
/// 1024-bit RSA). Needs openssl: `scripts/test` installs it.
#[cfg(feature = "system-tests")]
#[test]
fn the_card_logs_in_to_openssl_s_server() {
    for (profile, level) in [("default", None), ("athena-1024", Some(0))] {
        let s = setup(profile);
        let sc = s.pki.issue_server_certificate(&["localhost"]).unwrap();
        for (tls, v, shown) in [
            ("1.3", TlsVersions::Auto, "TLSv1.3"),
            ("1.2", TlsVersions::Tls12, "TLSv1.2"),
        ] {
            let o = tscns_tls::server::OpensslServer::start_with_security_level(
                &sc.cert_pem,
                &sc.key_pem,
                s.pki.ca_cert_pem(),
                Some(tls),
                level,
            )
            .unwrap();
            let c = client(&s, v);
            let before = s.handle.counters().signatures;
            let body = rt().block_on(async {
                let mut body = String::new();
                for _ in 0..3 {
                    let r = c
                        .get(&format!("https://localhost:{}/", o.port()))
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    body = r.text().await.unwrap();
                }
                body
            });
            assert!(body.contains(shown), "{profile}: {body}");
            assert!(body.contains(&s.cf), "{profile}: {body}");
            assert_eq!(
                s.handle.counters().signatures - before,
                1,
                "{profile} {tls}"
            );
        }
    }
}
