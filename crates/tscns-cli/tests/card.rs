//! `tscns card ...` end to end: the real binary on the in-process simulated card (`--simulated`)
//! and, with feature `system-tests`, through pcscd + vpcd with a tscns-sim card in the reader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rsa::{Pkcs1v15Sign, Pss};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384};
use tscns_sim::{Profile, TestPki, BUILTIN_PROFILES};

mod common;
use common::{Run, Tscns};

fn tscns(args: &[&str], stdin: Option<&str>) -> Run {
    let cmd = Tscns::new(args);
    match stdin {
        Some(s) => cmd.stdin(s),
        None => cmd,
    }
    .run()
}

fn text(v: &str) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::String(v.to_owned())
    }
}

fn date(d: Option<tscns_cert::time::Date>) -> Value {
    d.map_or(Value::Null, |d| {
        Value::String(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        ))
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The profile name `tscns card info` reports for a simulator maker.
fn expected_profile(maker: &str) -> &'static str {
    match maker {
        "stincard" => "stincard",
        "athena" => "athena",
        "idemia-v2" => "idemia-v2",
        "idemia2021" => "idemia2021",
        "nfc-bare" => "nfc-bare",
        "st2021" => "st2021",
        "st2022-nfc" => "st2022-nfc",
        "actalis-ace2025" => "actalis-ace2025",
        other => panic!("unknown maker {other}"),
    }
}

/// The CNS version the ATR of a simulator maker announces (`None`: no CNS marker in the ATR).
fn expected_cns_version(maker: &str) -> Option<&'static str> {
    match maker {
        "nfc-bare" | "st2022-nfc" => None,
        "st2021" => Some("1.1"),
        _ => Some("1.0"),
    }
}

/// Checks `card.recognised_by`, `card.application` and `origins` of `tscns card info --json`.
fn check_origins(json: &Value, maker: &str) {
    let card = &json["card"];
    let origins = &json["origins"];
    let (method, application) = match maker {
        "nfc-bare" => ("path", Value::Null),
        "st2022-nfc" => ("application", Value::from(ST2022_AID)),
        "actalis-ace2025" => ("atr", Value::from(ACE_2025_AID)),
        _ => ("atr", Value::Null),
    };
    assert_eq!(card["recognised_by"], method, "{maker}: {card}");
    assert_eq!(card["application"], application, "{maker}: {card}");
    assert_eq!(origins.as_object().unwrap().len(), 4, "{maker}: {origins}");
    if maker == "actalis-ace2025" {
        // No EF_ID_Carta: the card id is the one in the certificate CN.
        assert_eq!(origins["card_id"], "certificate CN", "{origins}");
        assert_eq!(origins["card_id_file"], Value::Null, "{origins}");
        assert_eq!(
            origins["personal_data_file"], ACE_2025_PERSONAL_DATA,
            "{origins}"
        );
        assert_eq!(
            origins["certificate_file"], ACE_2025_CERTIFICATE,
            "{origins}"
        );
    } else {
        assert_eq!(origins["card_id"], "EF_ID_Carta", "{maker}: {origins}");
        assert_eq!(
            origins["card_id_file"], "3F00/1000/1003",
            "{maker}: {origins}"
        );
        assert_eq!(
            origins["personal_data_file"], "3F00/1100/1102",
            "{maker}: {origins}"
        );
        assert!(
            origins["certificate_file"].is_string(),
            "{maker}: {origins}"
        );
    }
}

/// The AID of the ST2022 JSign application, in hex.
const ST2022_AID: &str = "A00000009501004D";
/// The AID of the ACe 2025 CNS application, in hex.
const ACE_2025_AID: &str = "A000000530000B104001021A";
/// Where ACe 2025 keeps EF_Dati_personali, as `tscns card info` reports it.
const ACE_2025_PERSONAL_DATA: &str = "3F00/1100/1102";
/// Where ACe 2025 keeps the certificate, as `tscns card info` reports it.
const ACE_2025_CERTIFICATE: &str = "3F00/DA01/C001";

/// Checks `tscns card info --json` against the profile the card was built from, field by field.
fn check_info(json: &Value, profile: &Profile, pki: &TestPki) {
    let pd = &profile.personal_data;
    assert_eq!(json["atr"], hex(profile.maker.atr()));
    assert_eq!(json["card_id"], profile.card_id.as_str());
    assert_eq!(
        json["card"]["profile"],
        expected_profile(profile.maker.name())
    );
    let maker = profile.maker.name();
    match expected_cns_version(maker) {
        None => {
            assert_eq!(json["card"]["cns_version"], Value::Null, "{maker}");
            assert_eq!(json["card"]["chip_maker"], Value::Null, "{maker}");
        }
        Some(v) => {
            assert_eq!(json["card"]["cns_version"], v, "{maker}");
            assert!(json["card"]["chip_maker"].is_string(), "{maker}");
            assert!(json["card"]["os_maker"].is_string(), "{maker}");
        }
    }
    check_origins(json, maker);
    let got = &json["personal_data"];
    let want = [
        ("issuer_code", text(&pd.issuer_code)),
        ("issue_date", date(pd.issue_date)),
        ("expiry_date", date(pd.expiry_date)),
        ("surname", text(&pd.surname)),
        ("given_name", text(&pd.given_name)),
        ("birth_date", date(pd.birth_date)),
        ("sex", text(&pd.sex)),
        ("height", text(&pd.height)),
        ("codice_fiscale", text(&pd.codice_fiscale)),
        ("citizenship", text(&pd.citizenship)),
        ("birth_municipality", text(&pd.birth_municipality)),
        ("birth_country", text(&pd.birth_country)),
        ("birth_act", text(&pd.birth_act)),
        ("residence_municipality", text(&pd.residence_municipality)),
        ("residence_address", text(&pd.residence_address)),
        ("expatriation_notes", text(&pd.expatriation_notes)),
    ];
    assert_eq!(got.as_object().unwrap().len(), 16, "{got}");
    for (k, v) in want {
        assert_eq!(got[k], v, "personal_data.{k}");
    }
    let cert = &json["certificate"];
    let card_cert = tscns_cert::CnsCertificate::from_der(pki.card_cert_der()).unwrap();
    assert_eq!(cert["subject"], card_cert.subject());
    assert_eq!(cert["codice_fiscale"], pd.codice_fiscale.as_str());
    assert_eq!(cert["card_id"], profile.card_id.as_str());
    assert_eq!(cert["serial"], card_cert.serial_hex());
    assert_eq!(cert["key"]["bits"], profile.key_bits.bits());
    assert_eq!(json["checks"]["cf_matches_certificate"], true);
    assert_eq!(json["checks"]["data_hash_matches"], true);
    let apdus = json["apdus"].as_u64().unwrap();
    assert!((5..=16).contains(&apdus), "apdus {apdus}");
}

#[test]
fn info_json_matches_every_simulated_profile() {
    for (name, _) in BUILTIN_PROFILES {
        let out = tscns(&["card", "info", "--json", "--simulated", name], None);
        assert!(out.success(), "{name}: {}", out.stderr);
        let json: Value = serde_json::from_slice(&out.stdout_bytes).unwrap();
        let profile = Profile::builtin(name).unwrap();
        let pki = TestPki::issue(&profile).unwrap();
        assert_eq!(json["reader"], format!("simulated ({name})"));
        check_info(&json, &profile, &pki);
    }
}

#[test]
fn info_text_says_how_the_card_was_recognised_and_where_each_part_was_read() {
    let out = tscns(
        &["card", "info", "--simulated", "actalis-ace2025-2048"],
        None,
    );
    assert!(out.success(), "{}", out.stderr);
    let line = format!(
        "read from:         recognised by atr, application {ACE_2025_AID}; card id from \
         certificate CN; personal data {ACE_2025_PERSONAL_DATA}; certificate \
         {ACE_2025_CERTIFICATE}"
    );
    assert!(out.stdout.contains(&line), "{}", out.stdout);
    let out = tscns(&["card", "info", "--simulated", "st2022-nfc-2048"], None);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "read from:         recognised by application, application {ST2022_AID}; card id \
             from EF_ID_Carta 3F00/1000/1003;"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn simulated_without_profile_uses_the_default() {
    let out = tscns(&["card", "info", "--simulated"], None);
    assert!(out.success(), "{}", out.stderr);
    let s = String::from_utf8(out.stdout_bytes).unwrap();
    assert!(s.contains("simulated (default)"), "{s}");
    assert!(s.contains("MARIO ROSSI"), "{s}");
    let bad = tscns(&["card", "info", "--simulated", "no-such-profile"], None);
    assert_eq!(bad.code, Some(1));
}

#[test]
fn pin_verify_reports_tries_left_and_never_echoes() {
    let ok = tscns(
        &["card", "pin", "verify", "--pin-stdin", "--simulated"],
        Some("12345678\n"),
    );
    assert!(ok.success(), "{}", ok.stderr);
    let wrong = tscns(
        &[
            "card",
            "pin",
            "verify",
            "--pin-stdin",
            "--json",
            "--simulated",
        ],
        Some("99999\n"),
    );
    assert_eq!(wrong.code, Some(1));
    let json: Value = serde_json::from_slice(&wrong.stdout_bytes).unwrap();
    assert_eq!(json["tries_left"], 2);
    assert_eq!(json["ok"], false);
    let all = format!("{}{}", wrong.stdout, wrong.stderr);
    assert!(!all.contains("99999"), "{all}");
    assert!(all.contains("2 tries left"), "{all}");
    // A malformed PIN is refused before anything reaches the card.
    let bad = tscns(
        &["card", "pin", "verify", "--pin-stdin", "--simulated"],
        Some("12a\n"),
    );
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("nothing was sent"));
}

#[test]
fn pin_change_and_unblock() {
    let ch = tscns(
        &[
            "card",
            "pin",
            "change",
            "--pin-stdin",
            "--simulated",
            "athena-1024",
        ],
        Some("24680\n1122334\n"),
    );
    assert!(ch.success(), "{}", ch.stderr);
    let ch_wrong = tscns(
        &[
            "card",
            "pin",
            "change",
            "--pin-stdin",
            "--simulated",
            "athena-1024",
        ],
        Some("11111\n1122334\n"),
    );
    assert_eq!(ch_wrong.code, Some(1));
    let ub = tscns(
        &[
            "card",
            "pin",
            "unblock",
            "--pin-stdin",
            "--simulated",
            "athena-1024",
        ],
        Some("13579135\n55555\n"),
    );
    assert!(ub.success(), "{}", ub.stderr);
    let ub_wrong = tscns(
        &[
            "card",
            "pin",
            "unblock",
            "--pin-stdin",
            "--simulated",
            "athena-1024",
        ],
        Some("00000000\n55555\n"),
    );
    assert_eq!(ub_wrong.code, Some(1));
    assert!(ub_wrong.stderr.contains("wrong PUK: 9 tries left"));
}

#[test]
fn cert_writes_the_card_certificate_as_pem() {
    let dir = std::env::temp_dir().join(format!("tscns-card-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("auth.pem");
    let out = tscns(
        &[
            "card",
            "cert",
            "--simulated",
            "idemia2021-2048",
            "--out",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.success(), "{}", out.stderr);
    let pem = std::fs::read(&path).unwrap();
    let cert = tscns_cert::CnsCertificate::from_pem(&pem).unwrap();
    let pki = TestPki::issue(&Profile::builtin("idemia2021-2048").unwrap()).unwrap();
    assert_eq!(cert.der(), pki.card_cert_der());
    let stdout = tscns(&["card", "cert", "--simulated"], None);
    assert!(stdout.stdout.starts_with("-----BEGIN CERTIFICATE-----"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sign_pkcs1_and_pss_verify_with_the_card_key() {
    let dir = std::env::temp_dir().join(format!("tscns-card-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("doc.txt");
    std::fs::write(&input, b"domanda di certificato anagrafico").unwrap();
    for name in ["default", "athena-1024", "idemia2021-2048"] {
        let profile = Profile::builtin(name).unwrap();
        let key = TestPki::issue(&profile).unwrap().card_public_key();
        let pin = format!("{}\n", profile.pin.expose());
        let sig = dir.join(format!("{name}.sig"));
        let out = tscns(
            &[
                "card",
                "sign",
                "--simulated",
                name,
                "--pin-stdin",
                "--in",
                input.to_str().unwrap(),
                "--out",
                sig.to_str().unwrap(),
            ],
            Some(&pin),
        );
        assert!(out.success(), "{name}: {}", out.stderr);
        let digest = Sha256::digest(std::fs::read(&input).unwrap());
        key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &digest,
            &std::fs::read(&sig).unwrap(),
        )
        .unwrap();
        let out = tscns(
            &[
                "card",
                "sign",
                "--simulated",
                name,
                "--pin-stdin",
                "--pss",
                "--hash",
                "sha384",
                "--in",
                input.to_str().unwrap(),
                "--out",
                sig.to_str().unwrap(),
            ],
            Some(&pin),
        );
        assert!(out.success(), "{name}: {}", out.stderr);
        let digest = Sha384::digest(std::fs::read(&input).unwrap());
        key.verify(
            Pss::new_with_salt::<Sha384>(48),
            &digest,
            &std::fs::read(&sig).unwrap(),
        )
        .unwrap();
    }
    // A wrong PIN signs nothing.
    let out = tscns(
        &[
            "card",
            "sign",
            "--simulated",
            "--pin-stdin",
            "--in",
            input.to_str().unwrap(),
            "--out",
            "/dev/null",
        ],
        Some("00000\n"),
    );
    assert_eq!(out.code, Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Through the middleware a citizen has: pcscd, the vpcd reader driver, a tscns-sim card.
#[cfg(feature = "system-tests")]
mod system {
    use super::*;
    use std::time::Duration;
    use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
    use tscns_sim::{serve_vpcd, SimCard, DEFAULT_VPCD_PORT};

    fn pcscd_running() {
        assert!(
            std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
            "{PCSCD_HOWTO}"
        );
    }

    #[test]
    fn info_json_through_pcscd_and_vpcd_matches_the_profile() {
        pcscd_running();
        let port = DEFAULT_VPCD_PORT;
        let _lock = ReaderLock::acquire(port, Duration::from_secs(120)).unwrap();
        for name in [
            "stincard-1024",
            "athena-1024",
            "idemia-v2-2048",
            "idemia2021-2048",
            "nfc-bare-2048",
            "st2021-2048",
            "st2022-nfc-2048",
            "actalis-ace2025-2048",
        ] {
            let profile = Profile::builtin(name).unwrap();
            let card = SimCard::new(&profile).unwrap();
            let pki = card.pki().clone();
            let server = serve_vpcd(card, port).unwrap();
            assert!(
                server.wait_ready(Duration::from_secs(10)),
                "{name}: vpcd card not ready"
            );
            let reader = server.reader_name();
            tscns_apdu::pcsc::wait_for_card(&reader, true, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{name}: pcscd does not see the card: {e}"));
            let out = tscns(&["card", "info", "--json", "--reader", &reader], None);
            assert!(out.success(), "{name}: {}", out.stderr);
            let json: Value = serde_json::from_slice(&out.stdout_bytes).unwrap();
            assert_eq!(json["reader"], reader.as_str());
            check_info(&json, &profile, &pki);
            // PIN: wrong counts down, right one signs.
            let wrong = tscns(
                &[
                    "card",
                    "pin",
                    "verify",
                    "--json",
                    "--pin-stdin",
                    "--reader",
                    &reader,
                ],
                Some("99999\n"),
            );
            assert_eq!(wrong.code, Some(1), "{name}");
            let j: Value = serde_json::from_slice(&wrong.stdout_bytes).unwrap();
            assert_eq!(j["tries_left"], 2, "{name}");
            assert_eq!(server.handle().pin_tries_left(), 2);
            let dir = std::env::temp_dir().join(format!("tscns-card-vpcd-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let input = dir.join("doc");
            std::fs::write(&input, name).unwrap();
            let sig = dir.join("sig");
            let out = tscns(
                &[
                    "card",
                    "sign",
                    "--reader",
                    &reader,
                    "--pin-stdin",
                    "--pss",
                    "--in",
                    input.to_str().unwrap(),
                    "--out",
                    sig.to_str().unwrap(),
                ],
                Some(&format!("{}\n", profile.pin.expose())),
            );
            assert!(out.success(), "{name}: {}", out.stderr);
            let digest = Sha256::digest(name.as_bytes());
            pki.card_public_key()
                .verify(
                    Pss::new_with_salt::<Sha256>(32),
                    &digest,
                    &std::fs::read(&sig).unwrap(),
                )
                .unwrap();
            assert_eq!(
                server.handle().pin_tries_left(),
                3,
                "{name}: a good PIN restores the count"
            );
            std::fs::remove_dir_all(&dir).unwrap();
            server.stop();
        }
    }
}
