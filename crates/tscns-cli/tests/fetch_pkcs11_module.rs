//! `tscns fetch --pkcs11 <our module>`: our own PKCS#11 consumer (tscns-pkcs11) on our own module
//! (tscns-pkcs11-module), the card in vpcd reader 1 through pcscd, against `openssl s_server
//! -Verify 1` on TLS 1.2 and on TLS 1.3 with RSA-PSS, with 2048-bit cards. OpenSC's module fails
//! exactly this case (its driver signs with 1024-bit keys only). Feature `system-tests`.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Tscns;
use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO, VPCD_PORT_1, VPCD_READER_1};
use tscns_sim::{serve_vpcd, Profile, SimCard};
use tscns_tls::server::OpensslServer;

/// The module cargo built as this test's dependency.
fn module() -> String {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().join("libtscns_pkcs11_module.so");
    assert!(
        p.exists(),
        "{} missing: build tscns-pkcs11-module",
        p.display()
    );
    p.display().to_string()
}

#[test]
fn fetch_through_our_module_tls12_and_tls13_pss() {
    assert!(
        std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
        "{PCSCD_HOWTO}"
    );
    let module = module();
    for name in ["default", "idemia2021-2048", "nfc-bare-2048"] {
        let _lock = ReaderLock::acquire(VPCD_PORT_1, Duration::from_secs(600)).unwrap();
        let _ = tscns_apdu::pcsc::wait_for_card(VPCD_READER_1, false, Duration::from_secs(10));
        let profile = Profile::builtin(name).unwrap();
        let card = SimCard::new(&profile).unwrap();
        let h = card.handle();
        let pki = h.pki().clone();
        let vpcd = serve_vpcd(card, VPCD_PORT_1).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
        assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
        tscns_apdu::pcsc::wait_for_card(VPCD_READER_1, true, Duration::from_secs(10)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pki.ca_cert_pem()).unwrap();
        let sc = pki.issue_server_certificate(&["localhost"]).unwrap();
        let cf = profile.personal_data.codice_fiscale.clone();
        for (tls, protocol) in [("1.2", "TLSv1.2"), ("1.3", "TLSv1.3")] {
            let server =
                OpensslServer::start(&sc.cert_pem, &sc.key_pem, pki.ca_cert_pem(), Some(tls))
                    .unwrap();
            let url = format!("https://localhost:{}/", server.port());
            let ca_s = ca.display().to_string();
            let out = Tscns::new(&[
                "fetch",
                &url,
                "--pkcs11",
                &module,
                "--ca",
                &ca_s,
                "--tls",
                tls,
                "--pin-stdin",
            ])
            .stdin(&format!("{}\n", profile.pin.expose()))
            .env("TSCNS_PKCS11_READER", VPCD_READER_1)
            .run();
            assert!(out.success(), "{name} TLS {tls}: {}", out.both());
            // s_server -www describes the connection: the protocol and our certificate.
            assert!(
                out.stdout.contains(protocol),
                "{name} {tls}: {}",
                out.stdout
            );
            assert!(
                out.stdout.contains(&cf),
                "{name} {tls}: the card's certificate: {}",
                out.stdout
            );
            assert!(out.stderr.contains("1 card signature"), "{}", out.stderr);
            // Our module resets the card at logout: no warning about it.
            assert!(
                !out.stderr.contains("may keep the card unlocked"),
                "{}",
                out.stderr
            );
            assert!(
                !h.pin_verified(),
                "{name}: the card is reset when tscns is done"
            );
        }
        vpcd.stop();
        let _ = tscns_apdu::pcsc::wait_for_card(VPCD_READER_1, false, Duration::from_secs(10));
    }
}
