//! `tscns middleware install|status|uninstall` in a scratch HOME with a Firefox profile, then NSS
//! itself (`certutil -L -h all`, a program nobody here wrote) lists the card's certificate through
//! the registered module; the card is a tscns-sim card in vpcd reader 1. Feature `system-tests`.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Tscns;
use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO, VPCD_PORT_1, VPCD_READER_1};
use tscns_sim::{serve_vpcd, Profile, SimCard};

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
fn install_status_nss_and_uninstall() {
    assert!(
        std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
        "{PCSCD_HOWTO}"
    );
    let _lock = ReaderLock::acquire(VPCD_PORT_1, Duration::from_secs(600)).unwrap();
    let _ = tscns_apdu::pcsc::wait_for_card(VPCD_READER_1, false, Duration::from_secs(10));
    let profile = Profile::builtin("idemia2021-2048").unwrap();
    let vpcd = serve_vpcd(SimCard::new(&profile).unwrap(), VPCD_PORT_1)
        .unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
    assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
    tscns_apdu::pcsc::wait_for_card(VPCD_READER_1, true, Duration::from_secs(10)).unwrap();

    let home = tempfile::tempdir().unwrap();
    let ff = home.path().join(".mozilla/firefox/t3st.default-esr");
    std::fs::create_dir_all(&ff).unwrap();
    std::fs::write(ff.join("prefs.js"), "").unwrap();
    std::fs::write(
        home.path().join(".mozilla/firefox/profiles.ini"),
        "[Profile0]\nName=default-esr\nIsRelative=1\nPath=t3st.default-esr\n",
    )
    .unwrap();
    let module = module();
    let h = home.path().display().to_string();
    let env = [("HOME", h.as_str()), ("TSCNS_PKCS11_READER", VPCD_READER_1)];
    let run = |args: &[&str]| {
        let mut all = vec!["middleware"];
        all.extend_from_slice(args);
        let out = Tscns::new(&all)
            .envs(&env)
            .timeout(Duration::from_secs(120))
            .run();
        assert!(out.success(), "tscns {all:?}: {}", out.both());
        out.stdout
    };

    let out = run(&[
        "install",
        "--module",
        &module,
        "--p11-kit",
        "--chromium",
        "--firefox",
    ]);
    assert!(out.contains("registered in 3 places"), "{out}");
    let p11 =
        std::fs::read_to_string(home.path().join(".config/pkcs11/modules/tscns.module")).unwrap();
    assert!(
        p11.starts_with("module: /") && p11.contains("libtscns_pkcs11_module.so"),
        "{p11}"
    );

    let out = run(&["status", "--module", &module]);
    assert_eq!(out.matches(": registered").count(), 3, "{out}");
    let holder = format!(
        "{} {}",
        profile.personal_data.given_name, profile.personal_data.surname
    );
    assert!(
        out.contains(&format!(
            "card {} of {holder} (idemia2021)",
            profile.card_id
        )),
        "{out}"
    );

    // NSS itself, through the registered module: the certificate on the token.
    for db in [home.path().join(".pki/nssdb"), ff.clone()] {
        let o = std::process::Command::new("certutil")
            .args(["-L", "-h", "all", "-d", &format!("sql:{}", db.display())])
            .env("TSCNS_PKCS11_READER", VPCD_READER_1)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("certutil (Debian libnss3-tools)");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            text.contains(&format!("{holder}:CNS0")),
            "certutil -L -h all: {text}"
        );
    }

    let out = run(&["uninstall"]);
    assert!(out.contains("unregistered from 3 places"), "{out}");
    let out = run(&["status", "--module", &module]);
    assert_eq!(out.matches(": registered").count(), 0, "{out}");
    assert!(!home
        .path()
        .join(".config/pkcs11/modules/tscns.module")
        .exists());
    vpcd.stop();
    let _ = tscns_apdu::pcsc::wait_for_card(VPCD_READER_1, false, Duration::from_secs(10));
}
