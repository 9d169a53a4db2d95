//! OpenSC's `pkcs11-tool` drives our module through pcscd + vpcd, for every built-in maker
//! profile (1024 and 2048 bits): list, objects before and after login, a signature with every
//! mechanism verified by `openssl` against the card's certificate, the PIN counted down once
//! per wrong PIN and shown in the token flags, change PIN, unblock with the PUK, and
//! `pkcs11-tool --test`. Feature `system-tests` (scripts/test).
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{module_path, run_env, Output, Plugged, Scratch, PROFILES, READER};
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(120);

struct Tool {
    module: String,
}

impl Tool {
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--module", self.module.as_str()];
        all.extend_from_slice(args);
        run_env(
            "pkcs11-tool",
            &all,
            &[
                ("TSCNS_PKCS11_READER", READER),
                ("TSCNS_PKCS11_QUERY_PIN_TRIES", "1"),
                ("TSCNS_PKCS11_PINENTRY", ""),
            ],
            T,
        )
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.ok(), "pkcs11-tool {args:?}: {}", o.all());
        o
    }
}

fn openssl(args: &[&str]) -> Output {
    run_env("openssl", args, &[], T)
}

/// The whole judgement of one card.
fn judge(name: &str) {
    let card = Plugged::new(name);
    let p = &card.profile;
    let pin = p.pin.expose().to_owned();
    let puk = p.puk.expose().to_owned();
    let h = card.handle.clone();
    let dir = Scratch::new(name);
    let tool = Tool {
        module: module_path().to_string_lossy().into_owned(),
    };
    let holder = format!("{} {}", p.personal_data.given_name, p.personal_data.surname);

    // -L: the token names the holder, the card id, the maker profile.
    let list = tool.ok(&["-L"]);
    let text = &list.stdout;
    assert!(
        text.contains(&format!("token label        : {holder}")),
        "{name}: {text}"
    );
    assert!(
        text.contains(&format!("serial num         : {}", p.card_id)),
        "{name}: {text}"
    );
    assert!(text.contains("token model        : "), "{name}: {text}");
    assert!(
        text.contains("login required, token initialized, PIN initialized"),
        "{name}: {text}"
    );
    assert!(!text.contains("locked"), "{name}: {text}");

    // -O: certificate and public key; the private key only after login.
    let objs = tool.ok(&["-O"]);
    assert!(
        objs.stdout
            .contains("Certificate Object; type = X.509 cert"),
        "{}",
        objs.all()
    );
    assert!(
        objs.stdout
            .contains(&format!("RSA {} bits", p.key_bits.bits())),
        "{}",
        objs.all()
    );
    assert!(
        !objs.stdout.contains("Private Key Object"),
        "{}",
        objs.all()
    );
    let objs = tool.ok(&["--login", "--pin", &pin, "-O"]);
    assert!(
        objs.stdout.contains("Private Key Object; RSA"),
        "{}",
        objs.all()
    );
    assert!(objs.stdout.contains("Usage:      sign"), "{}", objs.all());
    assert!(objs.stdout.contains("never extractable"), "{}", objs.all());
    assert!(
        !h.pin_verified(),
        "{name}: the card must be reset after the program is done"
    );

    // The certificate as the module gives it (-r) equals the card's.
    let cert_der = dir.str("cert.der");
    tool.ok(&["-r", "--type", "cert", "--label", "CNS0", "-o", &cert_der]);
    assert_eq!(
        std::fs::read(&cert_der).unwrap(),
        h.pki().card_cert_der(),
        "{name}"
    );
    let pubkey = dir.str("pub.pem");
    let o = openssl(&[
        "x509", "-inform", "DER", "-in", &cert_der, "-pubkey", "-noout", "-out", &pubkey,
    ]);
    assert!(o.ok(), "{}", o.all());

    // --sign with every mechanism, each verified by openssl.
    let msg = dir.str("msg.txt");
    std::fs::write(
        &msg,
        format!("signed by the {name} card through tscns-pkcs11-module\n"),
    )
    .unwrap();
    let digest = Sha256::digest(std::fs::read(&msg).unwrap());
    let digest_file = dir.str("msg.sha256");
    std::fs::write(&digest_file, digest).unwrap();
    // DigestInfo for SHA-256 (RFC 8017 §9.2 note 1) || digest: the input of CKM_RSA_PKCS.
    let mut di = tscns_apdu::parse_hex("3031300d060960864801650304020105000420").unwrap();
    di.extend_from_slice(&digest);
    let di_file = dir.str("msg.digestinfo");
    std::fs::write(&di_file, &di).unwrap();
    let big = p.key_bits.bits() >= 2048;
    let cases: Vec<(&str, &str, Vec<&str>, &str, bool)> = vec![
        // (mechanism, input, extra pkcs11-tool args, openssl digest, pss)
        ("RSA-PKCS", &di_file, vec![], "-sha256", false),
        ("SHA1-RSA-PKCS", &msg, vec![], "-sha1", false),
        ("SHA256-RSA-PKCS", &msg, vec![], "-sha256", false),
        ("SHA384-RSA-PKCS", &msg, vec![], "-sha384", false),
        ("SHA512-RSA-PKCS", &msg, vec![], "-sha512", false),
        (
            "RSA-PKCS-PSS",
            &digest_file,
            vec!["--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256"],
            "-sha256",
            true,
        ),
        ("SHA256-RSA-PKCS-PSS", &msg, vec![], "-sha256", true),
        ("SHA384-RSA-PKCS-PSS", &msg, vec![], "-sha384", true),
    ];
    let mut cases = cases;
    if big {
        // EMSA-PSS with SHA-512 and a 64-byte salt needs emLen >= 130: 2048-bit keys only.
        cases.push(("SHA512-RSA-PKCS-PSS", &msg, vec![], "-sha512", true));
    }
    for (mech, input, extra, dgst, pss) in &cases {
        let sig = dir.str(&format!("{mech}.sig"));
        let mut args = vec![
            "--login", "--pin", &pin, "--sign", "-m", mech, "-i", input, "-o", &sig,
        ];
        args.extend_from_slice(extra);
        tool.ok(&args);
        let mut v = vec![
            "dgst",
            *dgst,
            "-verify",
            pubkey.as_str(),
            "-signature",
            sig.as_str(),
        ];
        if *pss {
            v.extend_from_slice(&[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:-1",
            ]);
        }
        v.push(&msg);
        let o = openssl(&v);
        assert!(
            o.ok() && o.stdout.contains("Verified OK"),
            "{name} {mech}: {}",
            o.all()
        );
    }
    if !big {
        let o = tool.run(&[
            "--login",
            "--pin",
            &pin,
            "--sign",
            "-m",
            "SHA512-RSA-PKCS-PSS",
            "-i",
            &msg,
            "-o",
            &dir.str("x"),
        ]);
        assert!(
            !o.ok() && o.all().contains("CKR_MECHANISM_PARAM_INVALID"),
            "{name}: {}",
            o.all()
        );
    }

    // A wrong PIN is counted once, and the token flags show it.
    let max = p.pin_tries;
    let o = tool.run(&["--login", "--pin", "99999", "-O"]);
    assert!(o.all().contains("CKR_PIN_INCORRECT"), "{name}: {}", o.all());
    assert_eq!(
        h.pin_tries_left(),
        max - 1,
        "{name}: one wrong PIN, one try"
    );
    // A new process knows the count only by asking the card (query_pin_tries), which the
    // module does only where the table allows a data-less VERIFY: not on ACe 2025, ST2022 or
    // a card with the shared bare NFC ATR (TriesQuery::Never), whose flags show nothing until
    // the next wrong PIN.
    let queries =
        p.maker.generation().tries_query == tscns_card::generations::TriesQuery::OnRequest;
    let flags = tool.ok(&["-T"]);
    assert_eq!(
        flags.stdout.contains("user PIN count low"),
        queries,
        "{name}: {}",
        flags.all()
    );
    // The right PIN restores the count.
    tool.ok(&["--login", "--pin", &pin, "-O"]);
    assert_eq!(h.pin_tries_left(), max);
    let flags = tool.ok(&["-T"]);
    assert!(
        !flags.stdout.contains("count low"),
        "{name}: {}",
        flags.all()
    );

    // --change-pin, and back.
    let temp = "13572468";
    tool.ok(&["--login", "--pin", &pin, "--change-pin", "--new-pin", temp]);
    let o = tool.run(&["--login", "--pin", &pin, "-O"]);
    assert!(
        o.all().contains("CKR_PIN_INCORRECT"),
        "{name}: the old PIN must not work: {}",
        o.all()
    );
    tool.ok(&["--login", "--pin", temp, "--change-pin", "--new-pin", &pin]);
    assert_eq!(h.pin_tries_left(), max);

    // Block the PIN, see it locked, unblock it with the PUK (pkcs11-tool --unlock-pin).
    for _ in 0..max {
        let _ = tool.run(&["--login", "--pin", "99999", "-O"]);
    }
    assert_eq!(h.pin_tries_left(), 0);
    let flags = tool.ok(&["-T"]);
    assert_eq!(
        flags.stdout.contains("user PIN locked"),
        queries,
        "{name}: {}",
        flags.all()
    );
    let o = tool.run(&["--login", "--pin", &pin, "-O"]);
    assert!(o.all().contains("CKR_PIN_LOCKED"), "{name}: {}", o.all());
    tool.ok(&[
        "--unlock-pin",
        "--login",
        "--login-type",
        "context-specific",
        "--puk",
        &puk,
        "--new-pin",
        &pin,
    ]);
    assert_eq!(h.pin_tries_left(), max, "{name}: unblocked");
    // And the OpenSC mapping: CKU_SO with the PUK, then C_InitPIN.
    for _ in 0..max {
        let _ = tool.run(&["--login", "--pin", "99999", "-O"]);
    }
    tool.ok(&[
        "--init-pin",
        "--login",
        "--login-type",
        "so",
        "--so-pin",
        &puk,
        "--pin",
        &pin,
    ]);
    assert_eq!(
        h.pin_tries_left(),
        max,
        "{name}: unblocked through CKU_SO + C_InitPIN"
    );
    let puk_left = h.puk_tries_left();
    // A wrong PUK is refused and counted once.
    for _ in 0..max {
        let _ = tool.run(&["--login", "--pin", "99999", "-O"]);
    }
    let o = tool.run(&[
        "--init-pin",
        "--login",
        "--login-type",
        "so",
        "--so-pin",
        "11111111",
        "--pin",
        &pin,
    ]);
    assert!(o.all().contains("CKR_PIN_INCORRECT"), "{name}: {}", o.all());
    assert_eq!(h.puk_tries_left(), puk_left - 1);
    tool.ok(&[
        "--unlock-pin",
        "--login",
        "--login-type",
        "context-specific",
        "--puk",
        &puk,
        "--new-pin",
        &pin,
    ]);

    // pkcs11-tool's own test suite.
    let t = tool.ok(&["--test", "--login", "--pin", &pin]);
    assert!(t.stdout.contains("No errors"), "{name}: {}", t.all());
    assert!(!h.pin_verified());
}

#[test]
fn pkcs11_tool_on_every_profile() {
    for name in PROFILES {
        judge(name);
    }
}
