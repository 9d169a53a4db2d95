//! The certificates committed under `tests/examples` (used by the CLI tests and the bench) come
//! from the test PKI in `tests/common`. This test checks that they still read as documented;
//! `TSCNS_REGENERATE_EXAMPLES=1 cargo test -p tscns-cert --test examples` writes them anew.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use time::macros::datetime;
use tscns_cert::{codes, parse_certificates, CnsCertificate};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/examples")
}

fn pem(der: &[u8]) -> String {
    x509_cert::der::pem::encode_string("CERTIFICATE", x509_cert::der::pem::LineEnding::LF, der)
        .unwrap()
}

fn regenerate() {
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let (ca_der, _) = ca();
    std::fs::write(d.join("ca.pem"), pem(&ca_der)).unwrap();
    let valid = LeafSpec::default().issue();
    std::fs::write(d.join("cns-valid.der"), &valid).unwrap();
    std::fs::write(d.join("cns-valid.pem"), pem(&valid)).unwrap();
    let expired = LeafSpec {
        not_before: datetime!(2015-01-01 0:00 UTC),
        not_after: datetime!(2021-01-01 0:00 UTC),
        ..LeafSpec::default()
    }
    .issue();
    std::fs::write(d.join("cns-expired.der"), expired).unwrap();
    let small = LeafSpec {
        rsa_1024: true,
        ..LeafSpec::default()
    }
    .issue();
    std::fs::write(d.join("cns-1024.der"), small).unwrap();
    let no_client_auth = LeafSpec {
        eku: Some(vec![EMAIL_PROTECTION]),
        key_usage: Some(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION),
        ..LeafSpec::default()
    }
    .issue();
    std::fs::write(d.join("cns-no-client-auth.pem"), pem(&no_client_auth)).unwrap();
    let not_cns = LeafSpec {
        cn: Some("Mario Rossi".into()),
        surname: None,
        given_name: None,
        ou: None,
        ..LeafSpec::default()
    }
    .issue();
    std::fs::write(d.join("not-cns.der"), not_cns).unwrap();
}

fn read(name: &str) -> CnsCertificate {
    CnsCertificate::from_bytes(&std::fs::read(dir().join(name)).unwrap()).unwrap()
}

fn codes_at(name: &str) -> Vec<&'static str> {
    read(name)
        .conformance(datetime!(2026-06-01 0:00 UTC))
        .iter()
        .map(|f| f.code)
        .collect()
}

#[test]
fn committed_examples_read_as_documented() {
    if std::env::var_os("TSCNS_REGENERATE_EXAMPLES").is_some() {
        regenerate();
    }
    let anchors = parse_certificates(&std::fs::read(dir().join("ca.pem")).unwrap()).unwrap();
    assert_eq!(anchors.len(), 1);
    let none: [&[u8]; 0] = [];
    let at = datetime!(2026-06-01 0:00 UTC);

    let valid = read("cns-valid.der");
    assert_eq!(valid.der(), read("cns-valid.pem").der());
    assert_eq!(valid.codice_fiscale().unwrap().as_str(), CF);
    assert_eq!(codes_at("cns-valid.der"), Vec::<&str>::new());
    valid.verify_chain(&anchors, &none, at).unwrap();

    assert_eq!(codes_at("cns-expired.der"), vec![codes::EXPIRED]);
    assert_eq!(codes_at("cns-1024.der"), vec![codes::RSA_KEY_UNDER_2048]);
    assert_eq!(
        codes_at("cns-no-client-auth.pem"),
        vec![codes::NON_REPUDIATION_PRESENT, codes::CLIENT_AUTH_MISSING]
    );
    let e = read("cns-no-client-auth.pem")
        .verify_chain(&anchors, &none, at)
        .unwrap_err();
    assert!(e.to_string().contains("client authentication"), "{e}");
    assert_eq!(
        codes_at("not-cns.der"),
        vec![
            codes::CN_NOT_CNS_FORM,
            codes::SURNAME_MISSING,
            codes::GIVEN_NAME_MISSING,
            codes::ISSUING_ADMINISTRATION_MISSING
        ]
    );
}
