//! `tscns portal`'s contract where no portal is needed: usage errors exit 2, an unreachable
//! portal exits 3 (login/network), and `verify --pdf` checks a sealed PDF offline (exit 0 valid
//! with `{valid, kind, issued_at, sha256, signer}`, exit 1 modified or untrusted).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tscns_cert::CodiceFiscale;
use tscns_cityportal::documents::{certificate_pdf, seal, CertificateContent, Pkcs8Key, SealInfo};
use tscns_cityportal::domain::{CertificateKind, Destination, MarcaId, Stamp};
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::Store;
use tscns_tls::test_pki::TestPki;

mod common;
use common::{Run, Tscns};

fn tscns(args: &[&str]) -> Run {
    Tscns::new(args).run()
}

fn usage(args: &[&str]) {
    let r = tscns(args);
    assert_eq!(
        r.code,
        Some(2),
        "{args:?} should be a usage error: {}",
        r.both()
    );
    assert!(r.stdout.is_empty(), "{}", r.both());
}

#[test]
fn usage_errors_exit_2() {
    let u = "http://127.0.0.1:9";
    // --out is required, --marca and --exemption exclude each other, --reason needs --exemption.
    usage(&["portal", "certificate", u, "--kind", "residenza"]);
    usage(&[
        "portal",
        "certificate",
        u,
        "--kind",
        "residenza",
        "--out",
        "x.pdf",
        "--marca",
        "01234567890123",
        "--exemption",
        "5",
    ]);
    usage(&[
        "portal",
        "certificate",
        u,
        "--kind",
        "residenza",
        "--out",
        "x.pdf",
        "--reason",
        "r",
    ]);
    usage(&["portal", "certificate", u, "--out", "x.pdf"]);
    // declaration needs a fact and --out.
    usage(&["portal", "declaration", u, "--out", "x.pdf"]);
    usage(&["portal", "declaration", u, "--fact", "nascita"]);
    // verify: a URL or --pdf with --seal-ca, not both, not neither.
    usage(&["portal", "verify"]);
    usage(&["portal", "verify", "--pdf", "x.pdf"]);
    usage(&["portal", "verify", "--seal-ca", "ca.pem"]);
    usage(&[
        "portal",
        "verify",
        "http://x/verifica/1?codice=2",
        "--pdf",
        "x.pdf",
        "--seal-ca",
        "c",
    ]);
    // one key source at a time, like `tscns cohesion login`.
    usage(&["portal", "record", u, "--simulated", "--pkcs11"]);
    usage(&["portal", "nothing", u]);
    // a URL that is no URL is refused before any PIN is asked.
    usage(&["portal", "record", "not a url", "--simulated"]);
}

#[test]
fn every_subcommand_takes_the_key_source_options() {
    for sub in ["record", "family", "options", "list"] {
        let r = tscns(&["portal", sub, "--help"]);
        assert!(r.success(), "{}", r.both());
        for flag in [
            "--simulated",
            "--reader",
            "--pkcs11",
            "--pin-stdin",
            "--ca",
            "--cohesion-host",
            "--json",
        ] {
            assert!(r.stdout.contains(flag), "{sub} lacks {flag}: {}", r.stdout);
        }
    }
    let r = tscns(&["portal", "certificate", "--help"]);
    for flag in [
        "--kind",
        "--subject",
        "--destination",
        "--marca",
        "--exemption",
        "--reason",
        "--out",
        "--seal-ca",
        "--pin-stdin",
    ] {
        assert!(
            r.stdout.contains(flag),
            "certificate lacks {flag}: {}",
            r.stdout
        );
    }
}

#[test]
fn an_unreachable_portal_is_a_network_failure_exit_3() {
    let pin = tscns_sim::Profile::builtin("default")
        .unwrap()
        .pin
        .expose()
        .to_owned();
    // Port 9 (discard) on loopback: nothing listens in the test environment.
    let r = Tscns::new(&[
        "portal",
        "record",
        "http://127.0.0.1:9",
        "--simulated",
        "--pin-stdin",
    ])
    .stdin(&format!("{pin}\n"))
    .run();
    assert_eq!(r.code, Some(3), "{}", r.both());
    assert!(r.stderr.contains("tscns portal record"), "{}", r.both());
    assert!(!r.both().contains(&pin), "the PIN was echoed: {}", r.both());
    // A verification page that cannot be reached: 3 as well.
    let r = tscns(&["portal", "verify", "http://127.0.0.1:9/verifica/X?codice=Y"]);
    assert_eq!(r.code, Some(3), "{}", r.both());
}

fn sealed_pdf(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let pki = TestPki::generate("RSSMRA80A01H501U", 2048).unwrap();
    let key = Pkcs8Key::new(
        pki.client_key_pem.as_bytes(),
        pki.client_cert_pem.as_bytes(),
    )
    .unwrap();
    let registry = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    let rec = registry
        .record(&CodiceFiscale::parse("RSSMRA80A01H501U").unwrap())
        .unwrap()
        .clone();
    let ids = Store::new_certificate_ids("H769").unwrap();
    let at = time::OffsetDateTime::now_utc();
    let at = time::OffsetDateTime::from_unix_timestamp(at.unix_timestamp()).unwrap();
    let marca = Stamp::Marca(MarcaId::parse("01234567890123").unwrap());
    let pdf = certificate_pdf(&CertificateContent {
        record: &rec,
        kind: CertificateKind::Residenza,
        destination: Destination::Ordinaria,
        stamp: Some(&marca),
        ids: &ids,
        issued_at: at,
        portal_base_url: "http://127.0.0.1:9",
    })
    .unwrap();
    let pdf = seal(
        &pdf,
        &key,
        &SealInfo {
            name: "Comune di San Benedetto del Tronto".into(),
            location: "San Benedetto del Tronto".into(),
            reason: format!(
                "Certificato n. {} ({})",
                ids.id,
                CertificateKind::Residenza.description()
            ),
            signing_time: at,
        },
    )
    .unwrap();
    let pdf_path = dir.join("residenza.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let ca = dir.join("seal-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    (pdf_path, ca, ids.id)
}

#[test]
fn verify_pdf_checks_the_seal_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (pdf, ca, id) = sealed_pdf(dir.path());
    let (pdf_s, ca_s) = (pdf.to_str().unwrap(), ca.to_str().unwrap());
    let r = tscns(&[
        "portal",
        "verify",
        "--pdf",
        pdf_s,
        "--seal-ca",
        ca_s,
        "--json",
    ]);
    assert!(r.success(), "{}", r.both());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["kind"]["slug"], "residenza", "{v}");
    assert_eq!(v["kind"]["code"], 8, "{v}");
    assert!(v["issued_at"].as_str().unwrap().starts_with("20"), "{v}");
    assert!(!v["signer"].as_str().unwrap().is_empty(), "{v}");
    let bytes = std::fs::read(&pdf).unwrap();
    let sha = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(v["sha256"], sha.as_str());

    // One byte changed inside the signed range: not valid, exit 1.
    let mut bad = bytes.clone();
    let at = bad.len() / 3;
    bad[at] ^= 0x01;
    let bad_path = dir.path().join("modified.pdf");
    std::fs::write(&bad_path, &bad).unwrap();
    let r = tscns(&[
        "portal",
        "verify",
        "--pdf",
        bad_path.to_str().unwrap(),
        "--seal-ca",
        ca_s,
        "--json",
    ]);
    assert_eq!(r.code, Some(1), "{}", r.both());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");

    // Another CA: untrusted seal, exit 1.
    let other = TestPki::generate("RSSMRA80A01H501U", 2048).unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other.ca_pem).unwrap();
    let r = tscns(&[
        "portal",
        "verify",
        "--pdf",
        pdf_s,
        "--seal-ca",
        other_ca.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.both().contains("trusted anchor"), "{}", r.both());

    // A seal CA file without a certificate: usage, exit 2.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "nothing").unwrap();
    let r = tscns(&[
        "portal",
        "verify",
        "--pdf",
        pdf_s,
        "--seal-ca",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(2), "{}", r.both());
}
