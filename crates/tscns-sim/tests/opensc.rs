//! OpenSC judges the simulated card: through pcscd + vpcd, `pkcs15-tool` and `pkcs11-tool` with
//! `opensc-pkcs11.so` read the certificate and the PIN, sign with the card's key (verified by
//! `openssl`), and count wrong PINs down to a blocked PIN.
//!
//! Debian 12's OpenSC 0.23 drives the CNS 1.0-marked cards with 1024-bit keys: the STIncard,
//! Athena and IDEMIA ID-One CNS v2 profiles. It predates the IDEMIA 2021 layout, does not know
//! the bare NFC ATR, and enables 2048-bit RSA only for ATRs that say CNS 1.1.
//!
//! The card generations since 2021 (`st2021`, `st2022-nfc`, `actalis-ace2025`) are what tscns
//! exists for: OpenSC 0.23 fails each of them. What it does with each, step by step, is the table
//! "OpenSC 0.23 and the card generations since 2021" of `crates/tscns-sim/README.md`; the test
//! [`opensc_0_23_on_the_card_generations_since_2021`] reads that table and asserts every cell, so
//! the table and OpenSC's behaviour cannot part.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{run, Output, Plugged, TempDir, READER};
use rsa::pkcs1v15::Pkcs1v15Sign;
use sha2::{Digest, Sha256};
use tscns_sim::SimProfile;

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const T: Duration = Duration::from_secs(60);

fn pkcs15_tool(args: &[&str]) -> Output {
    let mut all = vec!["--reader", READER];
    all.extend_from_slice(args);
    run("pkcs15-tool", &all, T)
}

/// pkcs11-tool on the slot of our reader (the other vpcd reader may hold another test's card).
fn pkcs11_tool(args: &[&str]) -> Output {
    let mut all = vec!["--module", MODULE, "--slot-description", READER];
    all.extend_from_slice(args);
    run("pkcs11-tool", &all, T)
}

/// The whole judgement for one maker profile.
fn opensc_accepts(profile_name: &str) {
    let profile = SimProfile::builtin(profile_name).unwrap();
    let pin = profile.pin.expose().to_owned();
    let puk = profile.puk.expose().to_owned();
    let card = Plugged::new(profile);
    let h = card.handle.clone();
    let pd = &card.profile.personal_data;
    let dir = TempDir::new(profile_name);

    // pkcs15-tool -D: the token, the certificate and the PIN.
    let dump = pkcs15_tool(&["-D"]);
    assert!(dump.success(), "{}", dump.all());
    let text = &dump.stdout;
    assert!(
        text.contains(&format!("PKCS#15 Card [{} {}]", pd.given_name, pd.surname)),
        "{text}"
    );
    assert!(
        text.contains(&format!("Serial number  : {}", card.profile.card_id)),
        "{text}"
    );
    assert!(text.contains("X.509 Certificate [CNS0]"), "{text}");
    assert!(text.contains("Path           : 3f0011001101"), "{text}");
    assert!(text.contains("PIN [PIN CNS0]"), "{text}");
    assert!(text.contains("Reference      : 16 (0x10)"), "{text}");
    assert!(text.contains("Private RSA Key [CNS0]"), "{text}");
    assert!(text.contains("ModLength      : 1024"), "{text}");

    // pkcs11-tool -O and --sign in one session: the certificate, the private key (shown after
    // login) and a signature, verified below by openssl against the certificate's public key.
    let input = dir.path("input.txt");
    let sig = dir.path("sig.bin");
    let cert = dir.path("cert.pem");
    let pubkey = dir.path("pubkey.pem");
    std::fs::write(&input, format!("CNS signing test for {profile_name}\n")).unwrap();
    std::fs::write(&cert, h.pki().card_cert_pem()).unwrap();
    let signed = pkcs11_tool(&[
        "--login",
        "--pin",
        &pin,
        "-O",
        "--sign",
        "-m",
        "SHA256-RSA-PKCS",
        "-i",
        input.to_str().unwrap(),
        "-o",
        sig.to_str().unwrap(),
    ]);
    assert!(signed.success(), "{}", signed.all());
    let text = &signed.stdout;
    assert!(
        text.contains("Certificate Object; type = X.509 cert"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "CN={}\\/{}.",
            pd.codice_fiscale, card.profile.card_id
        )),
        "{text}"
    );
    assert!(text.contains("Private Key Object; RSA"), "{text}");
    assert!(text.contains("Usage:      sign"), "{text}");
    assert_eq!(h.counters().signatures, 1, "one on-card RSA operation");
    let pk = run(
        "openssl",
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-pubkey",
            "-noout",
            "-out",
            pubkey.to_str().unwrap(),
        ],
        T,
    );
    assert!(pk.success(), "{}", pk.all());
    let verified = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            pubkey.to_str().unwrap(),
            "-signature",
            sig.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
        T,
    );
    assert!(
        verified.success() && verified.stdout.contains("Verified OK"),
        "{}",
        verified.all()
    );
    // And the same check in Rust, against the key the card holds.
    let signature = std::fs::read(&sig).unwrap();
    h.pki()
        .card_public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(std::fs::read(&input).unwrap()),
            &signature,
        )
        .unwrap();

    // Wrong PINs: OpenSC reports the counter falling, the card blocks at zero.
    for left in [2u8, 1, 0] {
        let out = pkcs15_tool(&["--change-pin", "--pin", "00000", "--new-pin", "99999"]);
        assert!(
            out.stderr
                .contains(&format!("PIN code incorrect; tries left: {left}")),
            "{}",
            out.all()
        );
        assert_eq!(h.pin_tries_left(), left);
    }
    let locked = pkcs11_tool(&["--login", "--pin", &pin, "-O"]);
    assert!(!locked.success());
    assert!(locked.all().contains("CKR_PIN_LOCKED"), "{}", locked.all());
    assert_eq!(h.pin_tries_left(), 0);

    // The PUK unblocks it and the PIN works again.
    let unblock = pkcs15_tool(&["--unblock-pin", "--puk", &puk, "--new-pin", &pin]);
    assert!(unblock.success(), "{}", unblock.all());
    assert_eq!(h.pin_tries_left(), 3);
    let again = pkcs11_tool(&["--login", "--pin", &pin, "-O"]);
    assert!(again.success(), "{}", again.all());
}

#[test]
fn opensc_accepts_the_stincard_card() {
    opensc_accepts("stincard-1024");
}

#[test]
fn opensc_accepts_the_athena_card() {
    opensc_accepts("athena-1024");
}

#[test]
fn opensc_accepts_the_idemia_v2_card() {
    opensc_accepts("idemia-v2-1024");
}

#[test]
fn opensc_reads_the_2048_bit_idemia_v2_certificate() {
    let card = Plugged::new(SimProfile::builtin("idemia-v2-2048").unwrap());
    let dump = pkcs15_tool(&["-D"]);
    assert!(dump.success(), "{}", dump.all());
    assert!(
        dump.stdout.contains("X.509 Certificate [CNS0]"),
        "{}",
        dump.all()
    );
    assert!(
        dump.stdout.contains("ModLength      : 2048"),
        "{}",
        dump.all()
    );
    let cert = pkcs15_tool(&["--read-certificate", "01"]);
    assert!(cert.success(), "{}", cert.all());
    assert_eq!(cert.stdout.trim(), card.handle.pki().card_cert_pem().trim());
}

/// The README, whose table says what OpenSC 0.23 does with the generations since 2021.
const README: &str = include_str!("../README.md");

/// The table's heading in the README.
const TABLE: &str = "## OpenSC 0.23 and the card generations since 2021";

/// One row of the table: the profile, then per column the `backticked` texts that must appear in
/// that step's output (stdout and stderr): `opensc-tool --name`, `pkcs15-tool -D`, our slot in
/// `pkcs11-tool -L`, `pkcs11-tool --login --sign`; then the commands the card answered
/// (`CLAINSP1P2 SW`; `no CLAINS.. SW`: none whose header starts so got that SW), and the prose (not checked) saying where it fails.
struct Row {
    profile: String,
    cells: Vec<Vec<String>>,
    card_saw: Vec<String>,
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, t)| t.to_owned())
        .collect()
}

fn table() -> Vec<Row> {
    let start = README.find(TABLE).expect("the README has the OpenSC table");
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and the |---| line
        .map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            assert_eq!(cells.len(), 7, "a row of 7 columns: {l}");
            Row {
                profile: backticked(cells[0]).concat(),
                cells: cells[1..5].iter().map(|c| backticked(c)).collect(),
                card_saw: backticked(cells[5]),
            }
        })
        .collect()
}

/// The part of `pkcs11-tool -L` about our reader's slot.
fn our_slot(list: &str) -> String {
    let at = list
        .find(&format!("): {READER}"))
        .unwrap_or_else(|| panic!("no slot for {READER}: {list}"));
    let rest = &list[at..];
    let end = rest[1..].find("\nSlot ").map_or(rest.len(), |e| e + 1);
    rest[..end].to_owned()
}

#[test]
fn opensc_0_23_on_the_card_generations_since_2021() {
    let rows = table();
    let names: Vec<&str> = rows.iter().map(|r| r.profile.as_str()).collect();
    assert_eq!(
        names,
        ["st2021-2048", "st2022-nfc-2048", "actalis-ace2025-2048"],
        "the table covers each new built-in profile"
    );
    for row in &rows {
        let name = row.profile.as_str();
        let profile = SimProfile::builtin(name).unwrap();
        let pin = profile.pin.expose().to_owned();
        let card = Plugged::new(profile);
        let h = card.handle.clone();
        let dir = TempDir::new(name);
        let input = dir.path("input.txt");
        std::fs::write(&input, format!("OpenSC 0.23 and {name}\n")).unwrap();
        let sig = dir.path("sig.bin");
        let steps = [
            run("opensc-tool", &["--reader", READER, "--name"], T),
            pkcs15_tool(&["-D"]),
            {
                let mut o = run("pkcs11-tool", &["--module", MODULE, "-L"], T);
                o.stdout = our_slot(&o.stdout);
                o
            },
            pkcs11_tool(&[
                "--login",
                "--pin",
                &pin,
                "--sign",
                "-m",
                "SHA256-RSA-PKCS",
                "-i",
                input.to_str().unwrap(),
                "-o",
                sig.to_str().unwrap(),
            ]),
        ];
        // The card's side: `CLAINSP1P2 SW` of every command it answered.
        let seen: Vec<String> = h
            .apdu_log()
            .iter()
            .map(|r| {
                format!(
                    "{:02X}{:02X}{:02X}{:02X} {:04X}",
                    r.cla, r.ins, r.p1, r.p2, r.sw
                )
            })
            .collect();
        for w in &row.card_saw {
            match w.strip_prefix("no ") {
                // `no 00A404 9000`: no command with that header start got that status.
                Some(never) => {
                    let (head, sw) = never.split_once(' ').unwrap();
                    assert!(
                        !seen
                            .iter()
                            .any(|s| s.starts_with(head) && s.ends_with(&format!(" {sw}"))),
                        "{name}: the card answered {never:?}: {seen:?}"
                    );
                }
                None => assert!(
                    seen.contains(w),
                    "{name}: the card never answered {w:?}: {seen:?}"
                ),
            }
        }
        for (i, (step, wanted)) in steps.iter().zip(&row.cells).enumerate() {
            let all = step.all();
            for w in wanted {
                assert!(
                    all.contains(w.as_str()),
                    "{name}, column {}: no {w:?} in\n{all}",
                    i + 2
                );
            }
        }
        // It signs nothing, and the PIN tries are as they were.
        assert!(!steps[3].success(), "{name}: {}", steps[3].all());
        assert_eq!(h.counters().signatures, 0, "{name}");
        assert_eq!(h.pin_tries_left(), card.profile.pin_tries, "{name}");
    }
}
