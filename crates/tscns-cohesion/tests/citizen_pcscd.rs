//! The citizen's smart-card login through the real middleware: the simulated TS-CNS card in pcscd's
//! vpcd reader, the pcsc crate and the card driver; the Cohesion emulator and an axum site in
//! process. One card signature, counted by the simulator; the site sees the codice fiscale with
//! tipo_autenticazione CF.
//!
//! Needs pcscd with vsmartcard-vpcd (`scripts/test` starts it).
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::site;

use std::sync::Arc;
use std::time::Duration;

use tscns_apdu::pcsc::PcscTransport;
use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_cohesion::citizen::CitizenLogin;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig};
use tscns_cohesion::Mode;
use tscns_sim::{serve_vpcd, Profile, SimCard};

/// vpcd reader 0 (spec testbed.md).
const PORT: u16 = 35963;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_card_login_through_pcscd() {
    let _lock = tokio::task::spawn_blocking(|| ReaderLock::acquire(PORT, Duration::from_secs(300)))
        .await
        .unwrap()
        .unwrap();
    let profile = Profile::default_profile().unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let pki = sim.pki().clone();
    let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
        .unwrap()
        .codice_fiscale()
        .unwrap()
        .to_string();
    let vpcd = serve_vpcd(sim, PORT).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
    let key = tokio::task::spawn_blocking(move || {
        assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let transport = loop {
            match PcscTransport::connect_with_timeout(&vpcd.reader_name(), Duration::from_secs(10))
            {
                Ok(t) => break t,
                Err(e) if std::time::Instant::now() >= deadline => panic!("{e}: {PCSCD_HOWTO}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let mut card = CnsCard::open(transport).unwrap();
        card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
            .unwrap();
        (CardKey::new(card).unwrap(), vpcd)
    })
    .await
    .unwrap();
    let (key, _vpcd) = key;
    let ca = rustls_pki_types::CertificateDer::from(pki.ca_cert_der().to_vec());
    let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
        .await
        .unwrap();
    let url = site(
        &emu,
        Mode::Saml {
            direct_to_cohesion_idp: true,
        },
    )
    .await;
    handle.reset_counters();
    let login = CitizenLogin::builder(Arc::new(key))
        .cohesion_host("localhost")
        .trust_ca_pem(emu.ca_pem().as_bytes())
        .build()
        .unwrap();
    let out = login.login(&url).await.unwrap();
    assert_eq!(out.body, format!("cf={cf} tipo=CF"));
    assert_eq!(out.signatures, 1);
    assert_eq!(
        handle.counters().signatures,
        1,
        "the card signed exactly once"
    );
}
