//! TLS client authentication with the card through the real middleware: a tscns-sim card in
//! pcscd's vpcd reader, the pcsc crate, the card driver; handshakes verified by a rustls server
//! (checks the codice fiscale) and by `openssl s_server -Verify 1`, TLS 1.3 and 1.2; a card pulled
//! out of the reader before the handshake signs.
//!
//! Needs pcscd with vsmartcard-vpcd and openssl (`scripts/test` starts and installs them).
#![cfg(all(feature = "tls", feature = "system-tests"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tscns_apdu::pcsc::PcscTransport;
use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_sim::{serve_vpcd, Profile, SimCard, TestPki, VpcdServer};
use tscns_tls::server::{ClientAuthServer, OpensslServer, ServerOptions};
use tscns_tls::{AuthClientBuilder, Error, SigningKey, TlsVersions};

const PORT: u16 = 35963;

// Fields drop in this order: the card connection first (it resets the card it verified), then
// the reader, and the reader lock last, so that the next test never shares the reader with a
// connection of this one still closing.
struct Plugged {
    key: Arc<CardKey<PcscTransport>>,
    vpcd: VpcdServer,
    pki: TestPki,
    cf: String,
    _lock: ReaderLock,
}

fn plug(profile: &str) -> Plugged {
    let lock = ReaderLock::acquire(PORT, Duration::from_secs(120)).unwrap();
    let profile = Profile::builtin(profile).unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let pki = sim.pki().clone();
    let vpcd = serve_vpcd(sim, PORT).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
    assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
    // pcscd may need a moment before the reader shows the card: retry, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let transport = loop {
        match PcscTransport::connect_with_timeout(&vpcd.reader_name(), Duration::from_secs(10)) {
            Ok(t) => break t,
            Err(e) if std::time::Instant::now() >= deadline => panic!("{e}: {PCSCD_HOWTO}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut card = CnsCard::open(transport).unwrap();
    card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
        .unwrap()
        .codice_fiscale()
        .unwrap()
        .to_string();
    Plugged {
        key: Arc::new(CardKey::new(card).unwrap()),
        vpcd,
        pki,
        cf,
        _lock: lock,
    }
}

fn get(p: &Plugged, url: &str, versions: TlsVersions) -> Result<(u16, String, u64), Error> {
    let client = AuthClientBuilder::new(p.key.clone() as Arc<dyn SigningKey>)
        .add_ca_pem(p.pki.ca_cert_pem().as_bytes(), "simulator CA")?
        .allow_host("localhost")?
        .tls_versions(versions)
        .reuse_connections(false)
        .timeout(Duration::from_secs(30))
        .build()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut last = (0, String::new());
            // Three requests, three connections: one signature.
            for _ in 0..3 {
                let r = client.get(url).await?;
                last = (r.status().as_u16(), r.text().await.unwrap_or_default());
            }
            Ok((last.0, last.1, client.signatures()))
        })
}

#[test]
fn card_through_pcscd_logs_in_to_rustls_and_openssl_servers() {
    let p = plug("default");
    let sc = p.pki.issue_server_certificate(&["localhost"]).unwrap();
    let mut o = ServerOptions::new(
        sc.cert_pem.clone().into_bytes(),
        sc.key_pem.clone().into_bytes(),
        p.pki.ca_cert_pem().as_bytes().to_vec(),
    );
    o.expect_codice_fiscale = Some(p.cf.clone());
    let rustls_server = ClientAuthServer::start(o).unwrap();
    let url = format!("https://localhost:{}/", rustls_server.addr().port());
    for (v, name) in [
        (TlsVersions::Tls13, "TLSv1_3"),
        (TlsVersions::Tls12, "TLSv1_2"),
    ] {
        let (status, body, sigs) = get(&p, &url, v).unwrap();
        assert_eq!(
            (status, body.trim(), sigs),
            (200, p.cf.as_str(), 1),
            "{name}"
        );
        assert_eq!(rustls_server.seen().last().unwrap().version, name);
    }
    for (tls, v, shown) in [
        ("1.3", TlsVersions::Auto, "TLSv1.3"),
        ("1.2", TlsVersions::Tls12, "TLSv1.2"),
    ] {
        let s = OpensslServer::start(&sc.cert_pem, &sc.key_pem, p.pki.ca_cert_pem(), Some(tls))
            .unwrap();
        let (status, body, sigs) = get(&p, &format!("https://localhost:{}/", s.port()), v).unwrap();
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
fn card_pulled_out_of_the_reader_is_a_typed_error_and_nothing_hangs() {
    let p = plug("default");
    let sc = p.pki.issue_server_certificate(&["localhost"]).unwrap();
    let s = ClientAuthServer::start(ServerOptions::new(
        sc.cert_pem.into_bytes(),
        sc.key_pem.into_bytes(),
        p.pki.ca_cert_pem().as_bytes().to_vec(),
    ))
    .unwrap();
    p.vpcd.handle().remove();
    // Give pcscd (it polls vpcd) a moment to see the reader empty.
    std::thread::sleep(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let err = get(
        &p,
        &format!("https://localhost:{}/", s.addr().port()),
        TlsVersions::Auto,
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(40));
    match &err {
        Error::Signing { source, .. } => {
            let card = source.downcast_ref::<tscns_card::Error>().unwrap();
            assert!(
                matches!(
                    card,
                    tscns_card::Error::CardRemoved | tscns_card::Error::PinStateLost
                ),
                "{card}"
            );
        }
        other => panic!("unexpected: {other}"),
    }
}
