//! The TOML profile: defaults, built-ins, and errors that name the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tscns_sim::{KeyBits, Maker, SimCard, SimProfile, TestPki, BUILTIN_PROFILES};

/// The profile of the issue, with a card id whose Luhn digit is right.
const ISSUE_EXAMPLE: &str = r#"
seed = 7
maker = "stincard"          # stincard | athena | idemia-v2 | idemia2021 | nfc-bare
key_bits = 2048             # 1024 | 2048
card_id = "6120000000000002"  # 16 digits, Luhn
pin = "12345678"            # 5-8 digits
puk = "87654321"
pin_tries = 3
puk_tries = 10
[personal_data]             # the 16 EF_Dati_personali fields; dates YYYY-MM-DD; missing = empty
issuer_code = "6120"
issue_date = "2021-03-01"
expiry_date = "2027-03-01"
surname = "ROSSI"
given_name = "MARIO"
birth_date = "1980-01-01"
sex = "M"
codice_fiscale = "RSSMRA80A01H501U"
birth_municipality = "H501"
residence_municipality = "H769"
residence_address = "VIA ROMA 1"
[certificate]
issuing_administration = "REGIONE MARCHE"   # OU
not_before = "2021-03-01T00:00:00Z"
not_after = "2027-03-01T00:00:00Z"
"#;

fn err(text: &str) -> String {
    SimProfile::from_toml(text).unwrap_err().to_string()
}

#[test]
fn the_issue_example_parses() {
    let p = SimProfile::from_toml(ISSUE_EXAMPLE).unwrap();
    assert_eq!(
        (p.seed, p.maker, p.key_bits),
        (7, Maker::STINCARD, KeyBits::Rsa2048)
    );
    assert!(p.extended_length, "a 2048-bit key needs extended length");
    assert!(!p.command_chaining);
    assert_eq!(p.pin.expose(), "12345678");
    assert_eq!(p.personal_data.surname, "ROSSI");
    assert_eq!(p.personal_data.height, "");
    assert_eq!(p.certificate.policies, ["1.3.76.16.2.1"]);
    assert_eq!(p.certificate.not_after.year(), 2027);
}

#[test]
fn every_builtin_profile_parses_and_builds_a_card() {
    for (name, _) in BUILTIN_PROFILES {
        let p = SimProfile::builtin(name).unwrap();
        let card = SimCard::new(&p).unwrap();
        assert_eq!(card.maker(), p.maker, "{name}");
    }
    let files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files.len(),
        BUILTIN_PROFILES.len(),
        "every file in profiles/ is built in"
    );
    for f in files {
        let name = f.trim_end_matches(".toml");
        let from_file = SimProfile::from_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("profiles")
                .join(&f),
        )
        .unwrap();
        assert_eq!(from_file, SimProfile::builtin(name).unwrap());
    }
    assert!(SimProfile::builtin("nope")
        .unwrap_err()
        .to_string()
        .contains("stincard-1024"));
}

#[test]
fn missing_keys_take_defaults() {
    let p = SimProfile::from_toml("").unwrap();
    assert_eq!(
        (p.seed, p.maker, p.key_bits),
        (1, Maker::STINCARD, KeyBits::Rsa1024)
    );
    assert!(!p.extended_length);
    assert_eq!(p.personal_data.codice_fiscale, "RSSMRA80A01H501U");
    assert_eq!((p.pin_tries, p.puk_tries), (3, 10));
    let p = SimProfile::from_toml("maker = \"idemia2021\"").unwrap();
    assert_eq!(p.key_bits, KeyBits::Rsa2048);
    assert!(p.extended_length && p.command_chaining);
    // With a [personal_data] table, missing fields are empty.
    let p =
        SimProfile::from_toml("[personal_data]\ncodice_fiscale = \"BNCLRA75M52B202U\"").unwrap();
    assert_eq!(p.personal_data.surname, "");
    assert_eq!(p.personal_data.issue_date, None);
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("colour = 1", "colour"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nnickname = \"X\"", "nickname"),
        ("[faults]\nlatency = 3", "latency"),
        ("seed = \"seven\"", "seed"),
        ("seed = -1", "seed"),
        ("maker = \"gemalto\"", "maker"),
        ("key_bits = 4096", "key_bits"),
        ("card_id = \"6120000000000008\"", "card_id"),
        ("card_id = \"612000000000000\"", "card_id"),
        ("pin = \"1234\"", "pin"),
        ("puk = \"12345abc\"", "puk"),
        ("pin_tries = 0", "pin_tries"),
        ("puk_tries = 16", "puk_tries"),
        ("maker = \"athena\"\nkey_bits = 2048\nextended_length = false", "key_bits"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501X\"", "personal_data.codice_fiscale"),
        ("[personal_data]\nsurname = \"ROSSI\"", "personal_data.codice_fiscale"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nissue_date = \"01/03/2021\"", "personal_data.issue_date"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nsex = \"X\"", "personal_data.sex"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nsurname = \"NICOLÒ\"", "personal_data.surname"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nbirth_municipality = \"ROMA\"", "personal_data.birth_municipality"),
        ("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nheight = \"1.80\"", "personal_data.height"),
        ("[certificate]\nnot_before = \"yesterday\"", "certificate.not_before"),
        ("[certificate]\nnot_before = \"2030-01-01T00:00:00Z\"\nnot_after = \"2029-01-01T00:00:00Z\"", "certificate.not_after"),
        ("[certificate]\npolicies = [\"1.3.banana\"]", "certificate.policies"),
        ("[certificate]\nnot_after = \"9999-12-31T00:00:00Z\"", "certificate.not_after"),
        ("[certificate]\nnot_before = \"0001-01-01T00:00:00Z\"", "certificate.not_before"),
        ("[certificate]\norganization = \"\"", "certificate.organization"),
        ("[faults]\nbit_rate = 0", "faults.bit_rate"),
        ("[faults]\nlatency_ms = 600000", "faults.latency_ms"),
        ("[faults]\nremove_after = -3", "faults.remove_after"),
    ];
    for (text, key) in cases {
        let e = err(text);
        assert!(
            e.contains(key),
            "error for {text:?} should name {key:?}: {e}"
        );
    }
    // Too much personal data for the 400-byte file.
    let long = "A".repeat(200);
    let text = format!("[personal_data]\ncodice_fiscale = \"RSSMRA80A01H501U\"\nresidence_address = \"{long}\"\nexpatriation_notes = \"{long}\"");
    assert!(err(&text).contains("personal_data"));
}

#[test]
fn the_same_seed_gives_the_same_certificate_and_another_seed_another_key() {
    let a = TestPki::issue(&SimProfile::builtin("stincard-1024").unwrap()).unwrap();
    let b = TestPki::issue(&SimProfile::builtin("stincard-1024").unwrap()).unwrap();
    assert_eq!(a.card_cert_der(), b.card_cert_der());
    assert_eq!(a.ca_cert_der(), b.ca_cert_der());
    let mut p = SimProfile::builtin("stincard-1024").unwrap();
    p.seed = 8;
    let c = TestPki::issue(&p).unwrap();
    assert_ne!(a.card_public_key(), c.card_public_key());
}

#[test]
fn the_certificate_follows_the_cns_profile_and_chains_to_the_test_ca() {
    use sha1::Digest;
    for name in ["default", "athena-1024", "idemia2021-2048"] {
        let p = SimProfile::builtin(name).unwrap();
        let pki = TestPki::issue(&p).unwrap();
        let cert = tscns_cert::CnsCertificate::from_der(pki.card_cert_der()).unwrap();
        assert_eq!(
            cert.codice_fiscale().unwrap().as_str(),
            p.personal_data.codice_fiscale
        );
        assert_eq!(cert.card_id().unwrap().as_str(), p.card_id);
        assert_eq!(
            cert.surname().as_deref(),
            Some(p.personal_data.surname.as_str())
        );
        assert_eq!(
            cert.given_name().as_deref(),
            Some(p.personal_data.given_name.as_str())
        );
        assert_eq!(
            cert.issuing_administration().as_deref(),
            Some(p.certificate.issuing_administration.as_str())
        );
        assert_eq!(cert.country().as_deref(), Some("IT"));
        let dati = tscns_sim::personal::encode(&p.personal_data);
        let sha1: [u8; 20] = sha1::Sha1::digest(&dati).into();
        assert_eq!(
            cert.cn_parts().unwrap().data_hash_bytes(),
            Some(sha1),
            "{name}"
        );
        let at = p.certificate.not_before + time::Duration::days(1);
        let errors: Vec<_> = cert
            .conformance(at)
            .into_iter()
            .filter(|f| f.severity == tscns_cert::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        cert.verify_chain(&[pki.ca_cert_der()], &[] as &[&[u8]], at)
            .unwrap();
    }
}

#[test]
fn issue_writes_the_three_files() {
    let dir = std::env::temp_dir().join(format!("tscns-sim-issue-{}", std::process::id()));
    let pki = TestPki::issue(&SimProfile::default_profile().unwrap()).unwrap();
    pki.write_to_dir(&dir).unwrap();
    assert_eq!(
        std::fs::read(dir.join("cert.der")).unwrap(),
        pki.card_cert_der()
    );
    assert!(std::fs::read_to_string(dir.join("ca.pem"))
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
        pki.card_cert_pem()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_certificates_chain_to_the_test_ca() {
    let pki = TestPki::issue(&SimProfile::builtin("stincard-1024").unwrap()).unwrap();
    let server = pki
        .issue_server_certificate(&["localhost", "127.0.0.1"])
        .unwrap();
    assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(server.key_pem.contains("PRIVATE KEY"));
    assert!(!server.key_pkcs8_der.is_empty());
}

#[test]
fn builtin_or_file_takes_a_name_or_a_path_and_lists_the_names_otherwise() {
    let by_name = SimProfile::builtin_or_file("athena-1024").unwrap();
    assert_eq!(by_name.maker, Maker::ATHENA);

    let dir = std::env::temp_dir().join(format!("tscns-sim-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mine.toml");
    std::fs::write(&path, ISSUE_EXAMPLE).unwrap();
    let by_path = SimProfile::builtin_or_file(path.to_str().unwrap()).unwrap();
    assert_eq!(by_path.card_id, "6120000000000002");
    assert_eq!(by_path.maker, Maker::STINCARD);
    std::fs::remove_dir_all(&dir).unwrap();

    let e = SimProfile::builtin_or_file("no-such-profile")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-profile") && e.contains("athena-1024"),
        "{e}"
    );
}
