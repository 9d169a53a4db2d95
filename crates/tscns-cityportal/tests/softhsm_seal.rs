//! The seal key in an HSM: SoftHSM2 holds the municipality's RSA key and certificate, and
//! `tscns-pkcs11` signs the PAdES seal through it.
//!
//! Needs `softhsm2-util` (softhsm2) and `pkcs11-tool` (opensc): `scripts/test` installs them.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{seal_info, seal_pki};
use tscns_cityportal::documents::{seal, verify};
use tscns_cityportal::domain::{CertificateKind, MarcaId, Stamp};
use tscns_cityportal::store::Store;
use tscns_pkcs11::{KeySelector, Module, Pin, Pkcs11Key};

const PIN: &str = "12345678";

fn softhsm_module() -> PathBuf {
    for p in [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("SoftHSM2 is not installed: run scripts/test, or `apt-get install softhsm2 opensc`");
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
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_seal_signed_in_softhsm_verifies() {
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
    let module_path = softhsm_module();
    let pki = seal_pki();
    let key_path = dir.path().join("seal.p8");
    let cert_path = dir.path().join("seal.der");
    // softhsm2-util imports PEM PKCS#8.
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pki.key_pkcs8)
    );
    std::fs::write(&key_path, pem).unwrap();
    std::fs::write(&cert_path, &pki.cert_der).unwrap();
    run(
        &conf,
        &[
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "SIGILLO",
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
            key_path.to_str().unwrap(),
            "--token",
            "SIGILLO",
            "--label",
            "SEAL",
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
            module_path.to_str().unwrap(),
            "--token-label",
            "SIGILLO",
            "--login",
            "--pin",
            PIN,
            "--write-object",
            cert_path.to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            "01",
            "--label",
            "SEAL",
        ],
    );

    // This test binary is its own process: the one place it sets SOFTHSM2_CONF.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let module = Module::open(&module_path).unwrap();
    let key = Pkcs11Key::open(&module, &KeySelector::Label("SEAL".into())).unwrap();
    key.login(&Pin::new(PIN).unwrap()).unwrap();

    let ids = Store::new_certificate_ids("H769").unwrap();
    let marca = Stamp::Marca(MarcaId::parse("22222222222222").unwrap());
    let pdf = common::unsealed(
        "RSSMRA80A01H501U",
        CertificateKind::Residenza,
        Some(&marca),
        &ids,
    );
    let sealed = seal(&pdf, &key, &seal_info(&ids)).unwrap();
    key.logout().unwrap();
    let v = verify(&sealed, std::slice::from_ref(&pki.ca_der)).unwrap();
    assert_eq!(v.certificate_id, ids.id);
    assert_eq!(v.signer_certificate, pki.cert_der);
}
