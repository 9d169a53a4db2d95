//! `tscns card report`: for every built-in simulated profile, the report (text and JSON) holds
//! none of the card's personal values, its card id or its certificate bytes, searched as text and
//! in hex; a known profile's report names its generation; `--out` writes the same report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use tscns_sim::{Profile, TestPki, BUILTIN_PROFILES};

mod common;
use common::Tscns;

fn hex_forms(bytes: &[u8]) -> Vec<String> {
    let upper: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    let lower: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        upper.join(" "),
        upper.concat(),
        lower.join(" "),
        lower.concat(),
    ]
}

/// Every value of the profile that must not appear, with a label, as text and in hex.
fn secrets(profile: &Profile, pki: &TestPki) -> Vec<(String, String)> {
    let pd = &profile.personal_data;
    let mut plain: Vec<(&str, String)> = vec![
        ("surname", pd.surname.clone()),
        ("given name", pd.given_name.clone()),
        ("codice fiscale", pd.codice_fiscale.clone()),
        ("residence address", pd.residence_address.clone()),
        ("card id", profile.card_id.clone()),
    ];
    if let Some(d) = pd.birth_date {
        let (y, m, day) = (d.year(), u8::from(d.month()), d.day());
        plain.push(("birth date", format!("{y:04}-{m:02}-{day:02}")));
        // As EF_Dati_personali writes it.
        plain.push(("birth date", format!("{day:02}{m:02}{y:04}")));
    }
    if !pd.birth_municipality.is_empty() {
        plain.push(("birth municipality", pd.birth_municipality.clone()));
    }
    let cert = tscns_cert::CnsCertificate::from_der(pki.card_cert_der()).unwrap();
    plain.push(("certificate serial", cert.serial_hex()));
    plain.push(("certificate serial", cert.serial_hex().to_lowercase()));
    let cn = cert.common_name().unwrap();
    plain.push(("certificate CN", cn.clone()));
    plain.push(("CN hash", cert.cn_parts().unwrap().data_hash));
    let mut out: Vec<(String, String)> = Vec::new();
    for (label, value) in plain {
        assert!(value.len() >= 4, "{label} {value:?} is too short to search");
        for form in hex_forms(value.as_bytes()) {
            out.push((format!("{label} in hex"), form));
        }
        out.push((label.to_owned(), value));
    }
    // The certificate and the holder's key: no 12-byte window of the DER, in hex.
    for (i, window) in pki.card_cert_der().windows(12).enumerate().step_by(3) {
        for form in hex_forms(window) {
            out.push((format!("certificate bytes at {i}"), form));
        }
    }
    out
}

fn assert_clean(report: &str, profile_name: &str, secrets: &[(String, String)]) {
    for (label, value) in secrets {
        assert!(
            !report.contains(value.as_str()),
            "{profile_name}: the report holds the {label} {value:?}:\n{report}"
        );
    }
}

#[test]
fn no_report_holds_personal_data_and_a_known_card_is_named() {
    for (name, _) in BUILTIN_PROFILES {
        let profile = Profile::builtin(name).unwrap();
        let pki = TestPki::issue(&profile).unwrap();
        let secrets = secrets(&profile, &pki);

        let text = Tscns::new(&["card", "report", "--simulated", name]).run();
        assert!(text.success(), "{name}: {}", text.stderr);
        let text = String::from_utf8(text.stdout_bytes).unwrap();
        assert_clean(&text, name, &secrets);

        let json = Tscns::new(&["card", "report", "--json", "--simulated", name]).run();
        assert!(json.success(), "{name}: {}", json.stderr);
        let raw = String::from_utf8(json.stdout_bytes).unwrap();
        assert_clean(&raw, name, &secrets);
        let v: Value = serde_json::from_str(&raw).unwrap();

        // A known profile names its generation, in both forms.
        let maker = profile.maker.name();
        assert_eq!(v["conclusion"]["known"], true, "{name}");
        assert_eq!(v["conclusion"]["generation"], maker, "{name}");
        assert!(
            text.contains(&format!("a known card: {maker} (")),
            "{name}: {text}"
        );
        // Read-only: nothing but SELECT, GET DATA and READ BINARY.
        for c in v["commands_sent"].as_array().unwrap() {
            assert!(
                ["SELECT", "GET DATA", "READ BINARY"].contains(&c.as_str().unwrap()),
                "{name}: {c}"
            );
        }
        // The shapes are there: the certificate's key size, the personal data's 16 lengths.
        let c = &v["contents"];
        assert_eq!(
            c["certificate"]["key_bits"],
            profile.key_bits.bits(),
            "{name}"
        );
        assert_eq!(
            c["ef_dati_personali"]["field_lengths"][3],
            profile.personal_data.surname.len(),
            "{name}: the surname's length, not the surname"
        );
        assert_eq!(
            c["ef_id_carta"].is_null(),
            profile.maker.generation().layout.card_id_from_certificate,
            "{name}"
        );
    }
}

#[test]
fn the_ace_2025_report_shows_its_probes_and_files() {
    let out = Tscns::new(&[
        "card",
        "report",
        "--json",
        "--simulated",
        "actalis-ace2025-2048",
    ])
    .run();
    assert!(out.success(), "{}", out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout_bytes).unwrap();
    assert_eq!(v["atr"]["cns"]["cns_version"], "1.0");
    assert_eq!(v["probes"][0]["purpose"], "application of actalis-ace2025");
    assert_eq!(v["probes"][0]["status"], "9000 (success)");
    assert_eq!(v["probes"][0]["answer_length"], 72);
    let files = v["files"].as_array().unwrap();
    let cert = files
        .iter()
        .find(|f| f["path"] == "3F00/DA01/C001")
        .unwrap();
    assert_eq!(cert["status"], "9000 (success)");
    assert!(cert["selection"]
        .as_str()
        .unwrap()
        .ends_with("by path from the current DF (P1 = 09)"));
    assert_eq!(v["contents"]["certificate"]["key_bits"], 2048);
    assert_eq!(v["contents"]["certificate"]["policies"][0], "1.3.76.16.2.1");
    assert_eq!(v["conclusion"]["recognised_by"], "atr");
}

#[test]
fn out_writes_the_report_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.txt");
    let out = Tscns::new(&[
        "card",
        "report",
        "--simulated",
        "st2022-nfc-2048",
        "--out",
        path.to_str().unwrap(),
    ])
    .run();
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout_bytes.is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("a known card: st2022-nfc ("), "{text}");
    assert!(text.contains("GET DATA of st2022-nfc"), "{text}");
    assert!(text.contains("\"JSign4\""), "{text}");
}

#[cfg(feature = "system-tests")]
mod system {
    use super::*;
    use std::time::Duration;
    use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
    use tscns_sim::{serve_vpcd, DatalessVerify, SimCard, DEFAULT_VPCD_PORT};

    /// Through pcscd + vpcd, as a citizen runs it with a reader: the report of each new card
    /// names its generation, holds none of its personal values, and the card saw only
    /// SELECT, READ BINARY and GET DATA (its PIN tries untouched, even where the simulator
    /// would count a data-less VERIFY as a wrong PIN).
    #[test]
    fn report_through_pcscd_and_vpcd() {
        assert!(
            std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
            "{PCSCD_HOWTO}"
        );
        let port = DEFAULT_VPCD_PORT;
        let _lock = ReaderLock::acquire(port, Duration::from_secs(120)).unwrap();
        for name in ["st2021-2048", "st2022-nfc-2048", "actalis-ace2025-2048"] {
            let mut profile = Profile::builtin(name).unwrap();
            profile.guesses.dataless_verify = DatalessVerify::Consumes;
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
            server.handle().reset_counters();
            let out = Tscns::new(&["card", "report", "--json", "--reader", &reader]).run();
            assert!(out.success(), "{name}: {}", out.stderr);
            let raw = String::from_utf8(out.stdout_bytes).unwrap();
            assert_clean(&raw, name, &secrets(&profile, &pki));
            let v: Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(
                v["conclusion"]["generation"],
                profile.maker.name(),
                "{name}"
            );
            assert_eq!(v["conclusion"]["known"], true, "{name}");
            assert_eq!(v["reader"], reader.as_str(), "{name}");
            let log = server.handle().apdu_log();
            assert!(!log.is_empty(), "{name}");
            assert!(
                log.iter()
                    .all(|r| matches!(r.ins, 0xA4 | 0xB0 | 0xCA | 0xC0)),
                "{name}: {log:?}"
            );
            assert_eq!(
                server.handle().pin_tries_left(),
                profile.pin_tries,
                "{name}"
            );
            assert!(!server.handle().pin_verified(), "{name}");
            server.stop();
        }
    }
}
