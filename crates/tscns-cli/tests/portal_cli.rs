//! `tscns portal` against the reference portal: the built binary logs in through the Cohesion
//! emulator (smart card) to the portal, both served by this test process on loopback. With the
//! in-process simulated card (`--simulated`) for every subcommand, and through pcscd + vpcd with a
//! tscns-sim card in a vpcd reader (feature `system-tests`, `flock /tmp/tscns-pcscd.lock`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tscns_cityportal::documents::Pkcs8Key;
use tscns_cityportal::registry::Registry;
use tscns_cityportal::server::{self, Portal, PortalConfig};
use tscns_cityportal::store::Store;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig};
use tscns_cohesion::ServiceProvider;
use tscns_sim::{Profile, SimCard};
use tscns_tls::rustls::pki_types::CertificateDer;

mod common;
use common::{Run, Tscns};

/// Emulator and portal, served by a runtime of this test process while the binary runs.
struct Servers {
    rt: Option<tokio::runtime::Runtime>,
    emu: Emulator,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    dir: tempfile::TempDir,
    ca: PathBuf,
    seal_ca: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.emu.shutdown();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

impl Servers {
    fn start(profile: &Profile) -> Servers {
        let card = SimCard::new(profile).unwrap();
        let cns_ca = CertificateDer::from(card.pki().ca_cert_der().to_vec());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("portal.db");
        let seal = server::test_seal("San Benedetto del Tronto").unwrap();
        let (emu, base, stop) = rt.block_on(async {
            let emu = Emulator::start(EmulatorConfig::loopback(vec![cns_ca]))
                .await
                .unwrap();
            let registry =
                Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
            let store = Store::open_portal(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            store.import(&registry).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let public: tscns_cohesion::Url = format!("http://{addr}/").parse().unwrap();
            let sp = ServiceProvider::new(
                server::sp_config(
                    emu.base_url().unwrap(),
                    emu.ca_pem().as_bytes(),
                    emu.signing_certificate_pem().as_bytes(),
                    "TSCNS-CLI-TEST",
                    &public,
                    2,
                )
                .unwrap(),
            )
            .unwrap();
            let key = Pkcs8Key::new(seal.key_pem.as_bytes(), seal.cert_pem.as_bytes()).unwrap();
            let portal = Portal::new(store, sp, Arc::new(key), PortalConfig::new(public, "H769"))
                .await
                .unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server::serve(listener, portal.router(), None, async move {
                let _ = stopped.await;
            }));
            (emu, format!("http://{addr}"), stop)
        });
        let ca = dir.path().join("cohesion-ca.pem");
        std::fs::write(&ca, emu.ca_pem()).unwrap();
        let seal_ca = dir.path().join("seal-ca.pem");
        std::fs::write(&seal_ca, &seal.ca_pem).unwrap();
        Servers {
            rt: Some(rt),
            emu,
            base,
            stop: Some(stop),
            dir,
            ca,
            seal_ca,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `tscns portal SUB URL ... --simulated --pin-stdin --ca CA --cohesion-host localhost`.
fn portal(srv: &Servers, sub: &str, url: &str, extra: &[&str], pin: &str) -> Run {
    let mut args = vec!["portal", sub, url];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--simulated",
        "--pin-stdin",
        "--ca",
        s(&srv.ca),
        "--cohesion-host",
        "localhost",
    ]);
    Tscns::new(&args).stdin(&format!("{pin}\n")).run()
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.both()))
}

#[test]
fn every_subcommand_against_the_portal() {
    let profile = Profile::builtin("default").unwrap();
    let pin = profile.pin.expose().to_owned();
    let srv = Servers::start(&profile);
    let base = srv.base.clone();

    let r = portal(&srv, "record", &base, &["--json"], &pin);
    assert!(r.success(), "{}", r.both());
    assert_eq!(json(&r)["codice_fiscale"], "RSSMRA80A01H501U");
    assert!(!r.both().contains(&pin), "the PIN was echoed");

    let r = portal(&srv, "family", &base, &["--json"], &pin);
    assert!(r.success(), "{}", r.both());
    let fam = json(&r);
    assert!(
        fam.as_array()
            .unwrap()
            .iter()
            .any(|m| m["codice_fiscale"] == "BNCLRA82B41H769J"),
        "{fam}"
    );
    assert!(fam[0]["relationship"]["code"].is_number(), "{fam}");

    let r = portal(&srv, "options", &base, &["--json"], &pin);
    assert!(r.success(), "{}", r.both());
    let o = json(&r);
    assert_eq!(o.as_array().unwrap().len(), 15, "{o}");
    for field in [
        "kind",
        "available",
        "reason",
        "stamp",
        "stamp_amount_cents",
        "fee_cents",
    ] {
        assert!(o[0].get(field).is_some(), "{field} missing: {o}");
    }

    // A certificate with a marca, its seal checked, its QR URL valid.
    let out = srv.path("residenza.pdf");
    let r = portal(
        &srv,
        "certificate",
        &base,
        &[
            "--kind",
            "residenza",
            "--marca",
            "12345678901234",
            "--out",
            s(&out),
            "--seal-ca",
            s(&srv.seal_ca),
            "--json",
        ],
        &pin,
    );
    assert!(r.success(), "{}", r.both());
    let c = json(&r);
    assert_eq!(c["seal"]["valid"], true, "{c}");
    assert!(
        c["seal"]["signer"].as_str().unwrap().contains("Sigillo"),
        "{c}"
    );
    assert_eq!(c["out"], s(&out));
    let url = c["verification_url"].as_str().unwrap().to_owned();
    assert!(url.contains(c["verification_code"].as_str().unwrap()));
    let pdf = std::fs::read(&out).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    let r = Tscns::new(&["portal", "verify", &url, "--json"]).run();
    assert!(r.success(), "{}", r.both());
    let v = json(&r);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["sha256"], c["sha256"]);
    assert_eq!(v["kind"]["slug"], "residenza");
    // A wrong code: exit 1.
    let wrong = url.replace(c["verification_code"].as_str().unwrap(), "AAAAAAAAAAAAAAAA");
    let r = Tscns::new(&["portal", "verify", &wrong, "--json"]).run();
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert_eq!(json(&r)["valid"], false);
    // With the seal CA the sealed original is fetched and checked too; a CA that did not seal
    // it makes the certificate not valid (exit 1), whatever the page says.
    let r = Tscns::new(&[
        "portal",
        "verify",
        &url,
        "--seal-ca",
        s(&srv.seal_ca),
        "--json",
    ])
    .run();
    assert!(r.success(), "{}", r.both());
    assert_eq!(json(&r)["valid"], true);
    assert_eq!(json(&r)["sha256"], c["sha256"]);
    let r = Tscns::new(&["portal", "verify", &url, "--seal-ca", s(&srv.ca), "--json"]).run();
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert_eq!(json(&r)["valid"], false);
    // The PDF offline.
    let r = Tscns::new(&[
        "portal",
        "verify",
        "--pdf",
        s(&out),
        "--seal-ca",
        s(&srv.seal_ca),
    ])
    .run();
    assert!(r.success(), "{}", r.both());

    // The same marca again: refused by the portal, exit 1, the reason on stderr, no file.
    let again = srv.path("again.pdf");
    let r = portal(
        &srv,
        "certificate",
        &base,
        &[
            "--kind",
            "8",
            "--marca",
            "12345678901234",
            "--out",
            s(&again),
        ],
        &pin,
    );
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("409"), "{}", r.both());
    assert!(!again.exists());
    // A stranger: exit 1 with the portal's Italian sentence.
    let r = portal(
        &srv,
        "certificate",
        &base,
        &[
            "--kind",
            "residenza",
            "--subject",
            "VRDGPP80A01H501U",
            "--marca",
            "22345678901234",
            "--out",
            s(&again),
        ],
        &pin,
    );
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("403"), "{}", r.both());

    let decl = srv.path("decl.pdf");
    let r = portal(
        &srv,
        "declaration",
        &base,
        &[
            "--fact",
            "nascita",
            "--fact",
            "residenza",
            "--out",
            s(&decl),
            "--json",
        ],
        &pin,
    );
    assert!(r.success(), "{}", r.both());
    assert!(std::fs::read(&decl).unwrap().starts_with(b"%PDF-"));

    let r = portal(&srv, "list", &base, &["--json"], &pin);
    assert!(r.success(), "{}", r.both());
    assert!(r.stdout.contains(c["id"].as_str().unwrap()), "{}", r.both());

    // A wrong PIN: a login failure, exit 3.
    let r = portal(&srv, "record", &base, &[], "00000000");
    assert_eq!(r.code, Some(3), "{}", r.both());
}

#[test]
fn a_holder_from_another_municipality_is_told_so() {
    let profile = Profile::builtin("idemia-v2-2048").unwrap();
    let pin = profile.pin.expose().to_owned();
    let srv = Servers::start(&profile);
    let args = [
        "portal",
        "record",
        &srv.base,
        "--simulated",
        "idemia-v2-2048",
        "--pin-stdin",
        "--ca",
        s(&srv.ca),
        "--cohesion-host",
        "localhost",
    ];
    let r = Tscns::new(&args).stdin(&format!("{pin}\n")).run();
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("403"), "{}", r.both());
}

/// Through the real middleware: the card in pcscd's vpcd reader.
#[cfg(feature = "system-tests")]
#[test]
fn portal_certificate_with_the_card_in_a_pcscd_reader() {
    use std::time::Duration;
    use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
    let _lock = ReaderLock::acquire(35963, Duration::from_secs(120)).unwrap();
    let profile = Profile::builtin("default").unwrap();
    let pin = profile.pin.expose().to_owned();
    let srv = Servers::start(&profile);
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let vpcd = tscns_sim::serve_vpcd(sim, 35963).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
    assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
    std::thread::sleep(Duration::from_millis(500));
    let before = handle.counters().signatures;
    let out = srv.path("famiglia.pdf");
    let reader = vpcd.reader_name();
    let r = Tscns::new(&[
        "portal",
        "certificate",
        &srv.base,
        "--kind",
        "stato-di-famiglia",
        "--marca",
        "32345678901234",
        "--out",
        s(&out),
        "--seal-ca",
        s(&srv.seal_ca),
        "--json",
        "--reader",
        &reader,
        "--pin-stdin",
        "--ca",
        s(&srv.ca),
        "--cohesion-host",
        "localhost",
    ])
    .stdin(&format!("{pin}\n"))
    .run();
    assert!(r.success(), "{}", r.both());
    assert_eq!(
        handle.counters().signatures - before,
        1,
        "one card signature"
    );
    let c = json(&r);
    assert_eq!(c["seal"]["valid"], true, "{c}");
    let url = c["verification_url"].as_str().unwrap().to_owned();
    let r = Tscns::new(&["portal", "verify", &url, "--json"]).run();
    assert!(r.success(), "{}", r.both());
    assert_eq!(json(&r)["valid"], true);
    assert_eq!(json(&r)["sha256"], c["sha256"]);
    vpcd.stop();
}
