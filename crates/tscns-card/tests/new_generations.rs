//! The cards citizens get since 2021: ST2021 (CNS 1.1), ST2022 over NFC and ACTALIS ACe 2025.
//! Recognition beyond the ATR (the ordered, read-only probe), ACe 2025's files and card id, the
//! signing paths tried once each after one VERIFY, and no data-less VERIFY to a card whose
//! answer is not confirmed. Every check reads the APDUs the simulated card saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tscns_card::generations::{
    AtrTest, CardGeneration, GetDataCheck, Layout, SignPath, ACE_2025_AID, ACTALIS_ACE_2025,
    ST2022_AID, ST2022_NFC,
};
use tscns_card::{CardIdOrigin, CnsCard, Error, HashAlg, Pin, RecognitionMethod, GENERATIONS};
use tscns_sim::{ApduRecord, DatalessVerify, SimCard, SimHandle, SimProfile};

const INS_SELECT: u8 = 0xA4;
const INS_VERIFY: u8 = 0x20;
const INS_MSE: u8 = 0x22;
const INS_PSO: u8 = 0x2A;

fn profile(name: &str) -> SimProfile {
    SimProfile::builtin(name).unwrap()
}

fn open(p: &SimProfile) -> (CnsCard<SimCard>, SimHandle) {
    let card = SimCard::new(p).unwrap();
    let handle = card.handle();
    (CnsCard::open(card).unwrap(), handle)
}

fn generation(name: &str) -> &'static CardGeneration {
    GENERATIONS.iter().find(|g| g.name == name).unwrap()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn count(log: &[ApduRecord], f: impl Fn(&ApduRecord) -> bool) -> usize {
    log.iter().filter(|r| f(r)).count()
}

fn sign(cns: &mut CnsCard<SimCard>) -> Result<Vec<u8>, Error> {
    let digest = HashAlg::Sha256.digest(b"new generations");
    cns.sign_pkcs1(HashAlg::Sha256, &digest)
}

#[test]
fn ace_2025_application_files_from_the_current_df_and_the_card_id_from_the_cn() {
    let p = profile("actalis-ace2025-2048");
    let (mut cns, handle) = open(&p);
    let r = cns.recognition();
    assert_eq!(r.generation.name, "actalis-ace2025");
    assert_eq!(r.method, RecognitionMethod::Atr);
    // The version byte says 1.0 ...
    assert_eq!(r.info.unwrap().cns_version.to_string(), "1.0");
    let id = cns.identity().unwrap().clone();
    // ... and the key, from the certificate, has 2048 bits.
    assert_eq!(cns.key_bits().unwrap(), 2048);
    assert_eq!(id.card_id.as_str(), p.card_id);
    assert_eq!(id.origins.card_id, CardIdOrigin::CertificateCn);
    assert_eq!(id.origins.card_id_file, None);
    assert_eq!(id.origins.certificate_file, "3F00/DA01/C001");
    assert_eq!(id.origins.personal_data_file, "3F00/1100/1102");
    assert_eq!(
        id.origins.application.as_deref(),
        Some(hex_upper(ACE_2025_AID).as_str())
    );
    assert_eq!(
        id.personal_data.codice_fiscale.as_deref(),
        Some(p.personal_data.codice_fiscale.as_str())
    );
    assert_eq!(id.checks.cf_matches_certificate, Some(true));
    let log = handle.apdu_log();
    let selects: Vec<(u8, u8, u16)> = log
        .iter()
        .filter(|r| r.ins == INS_SELECT)
        .map(|r| (r.p1, r.p2, r.sw))
        .collect();
    // Application, then each file by path from the current DF (the application again before
    // each path): EF_ID_Carta is absent, EF_Dati_personali and the certificate are found.
    assert_eq!(
        selects,
        [
            (0x04, 0x00, 0x9000),
            (0x09, 0x00, 0x6A82),
            (0x04, 0x00, 0x9000),
            (0x09, 0x00, 0x9000),
            (0x04, 0x00, 0x9000),
            (0x09, 0x00, 0x9000),
        ]
    );
    // No step-by-step select, no PIN.
    assert_eq!(count(&log, |r| r.ins == INS_SELECT && r.p1 <= 0x02), 0);
    assert_eq!(count(&log, |r| r.ins == INS_VERIFY), 0);
}

#[test]
fn ace_2025_takes_each_signing_path_after_one_verify_and_keeps_the_one_that_works() {
    for path in SignPath::ALL {
        let mut p = profile("actalis-ace2025-2048");
        p.guesses.signing = path;
        let (mut cns, handle) = open(&p);
        cns.identity().unwrap();
        handle.reset_counters();
        cns.verify_pin(&Pin::new(p.pin.expose()).unwrap()).unwrap();
        let first = sign(&mut cns).unwrap();
        let second = sign(&mut cns).unwrap();
        assert_eq!(first.len(), 256, "{path}");
        assert_eq!(second.len(), 256, "{path}");
        let log = handle.apdu_log();
        assert_eq!(count(&log, |r| r.ins == INS_VERIFY), 1, "{path}");
        // Each path before the card's own was tried once and refused (6A88 / 6A80).
        let refused: Vec<(u8, u8, u16)> = log
            .iter()
            .filter(|r| r.ins == INS_MSE && r.sw != 0x9000)
            .map(|r| (r.p1, r.p2, r.sw))
            .collect();
        let want: &[(u8, u8, u16)] = match path {
            SignPath::Cns => &[],
            SignPath::Mse84 => &[(0xF3, 0x03, 0x6A88)],
            SignPath::Decipher => &[(0xF3, 0x03, 0x6A88), (0x41, 0xB6, 0x6A80)],
        };
        assert_eq!(refused, want, "{path}");
        // The second signature went the working way at once: one PSO, no MSE.
        let last_two: Vec<u8> = log.iter().rev().take(1).map(|r| r.ins).collect();
        assert_eq!(last_two, [INS_PSO], "{path}");
        assert_eq!(count(&log, |r| r.ins == INS_PSO && r.sw == 0x9000), 2);
        assert_eq!(handle.counters().signatures, 2, "{path}");
    }
}

/// ACe 2025 with a signing sequence of the test's choosing (the simulator builds its card from
/// the generation, so this is the card whose bytes nothing public confirms, refusing them all).
static ACE_TWO_PATHS: CardGeneration = CardGeneration {
    name: "ace-two-paths",
    sign_paths: &[SignPath::Cns, SignPath::Mse84],
    ..ACTALIS_ACE_2025
};

#[test]
fn a_card_refusing_every_path_gets_a_typed_error_listing_them_and_one_verify() {
    let table = vec![&ACE_TWO_PATHS];
    let text = "maker = \"ace-two-paths\"\npin = \"13579246\"\ncard_id = \"6120000000000234\"\n\
                [guesses]\nsigning = \"decipher\"\n";
    let p = SimProfile::from_toml_among(text, &table).unwrap();
    let card = SimCard::new(&p).unwrap();
    let handle = card.handle();
    let mut cns = CnsCard::open_among(card, &table).unwrap();
    cns.identity().unwrap();
    cns.verify_pin(&Pin::new("13579246").unwrap()).unwrap();
    match sign(&mut cns) {
        Err(Error::SigningUnsupported { tried }) => {
            assert_eq!(
                tried,
                "cns: MSE RESTORE 6A88 (referenced data not found); \
                 mse-84: MSE SET 6A80 (incorrect data in the command)"
            );
        }
        other => panic!("{other:?}"),
    }
    let log = handle.apdu_log();
    assert_eq!(count(&log, |r| r.ins == INS_VERIFY), 1);
    assert_eq!(handle.counters().signatures, 0);
    assert!(
        handle.pin_verified(),
        "no second PIN, no reset: the card stays as it was"
    );
}

#[test]
fn without_a_verified_pin_the_first_answering_path_ends_the_attempt() {
    let p = profile("actalis-ace2025-2048");
    let (mut cns, handle) = open(&p);
    cns.identity().unwrap();
    handle.reset_counters();
    assert!(matches!(sign(&mut cns), Err(Error::PinRequired)));
    let log = handle.apdu_log();
    // CNS refused at MSE RESTORE, mse-84 set, PSO 6982: DECIPHER is not tried.
    let sent: Vec<(u8, u8, u8, u16)> = log.iter().map(|r| (r.ins, r.p1, r.p2, r.sw)).collect();
    assert_eq!(
        sent,
        [
            (INS_MSE, 0xF3, 0x03, 0x6A88),
            (INS_MSE, 0x41, 0xB6, 0x9000),
            (INS_PSO, 0x9E, 0x9A, 0x6982),
        ]
    );
}

#[test]
fn no_dataless_verify_to_a_card_whose_answer_is_not_confirmed() {
    for name in ["actalis-ace2025-2048", "st2022-nfc-2048"] {
        let mut p = profile(name);
        // The worst guess: the card would count it as a wrong PIN.
        p.guesses.dataless_verify = DatalessVerify::Consumes;
        let (mut cns, handle) = open(&p);
        handle.reset_counters();
        match cns.query_pin_tries() {
            Err(Error::TriesQueryUnconfirmed { generation }) => {
                assert_eq!(generation, cns.recognition().generation.name)
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(handle.counters().apdus, 0, "{name}: nothing was sent");
        assert_eq!(handle.pin_tries_left(), 3, "{name}");
    }
    // A wrong PIN still reports the tries left.
    let p = profile("actalis-ace2025-2048");
    let (mut cns, handle) = open(&p);
    match cns.verify_pin(&Pin::new("00000").unwrap()) {
        Err(Error::WrongSecret { tries_left, .. }) => assert_eq!(tries_left, Some(2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(handle.pin_tries_left(), 2);
}

#[test]
fn st2022_over_nfc_is_found_by_its_application_and_keeps_it_selected() {
    let p = profile("st2022-nfc-2048");
    let (mut cns, handle) = open(&p);
    let r = cns.recognition().clone();
    assert_eq!(r.generation.name, "st2022-nfc");
    assert_eq!(r.method, RecognitionMethod::Application);
    let probes: Vec<(&str, u16)> = r
        .probes
        .iter()
        .map(|p| (p.purpose.as_str(), p.sw))
        .collect();
    assert_eq!(
        probes,
        [
            ("application of actalis-ace2025", 0x6A82),
            ("application of st2022-nfc", 0x9000),
            ("GET DATA of st2022-nfc", 0x9000),
        ]
    );
    assert_eq!(r.probes[2].data, b"JSign4");
    assert_eq!(r.probes[1].command[5..13], *ST2022_AID);
    let id = cns.identity().unwrap().clone();
    assert_eq!(id.card_id.as_str(), p.card_id);
    assert_eq!(id.origins.card_id, CardIdOrigin::EfIdCarta);
    cns.verify_pin(&Pin::new(p.pin.expose()).unwrap()).unwrap();
    sign(&mut cns).unwrap();
    let log = handle.apdu_log();
    // One SELECT of the application for recognition and every read after it, one more in
    // the transaction of the VERIFY (the PIN goes to this application, whatever another
    // client selected in between).
    assert_eq!(
        count(&log, |r| r.ins == INS_SELECT
            && r.p1 == 0x04
            && r.sw == 0x9000),
        2
    );
    let verify_at = log.iter().position(|r| r.ins == INS_VERIFY).unwrap();
    assert_eq!(
        (log[verify_at - 1].ins, log[verify_at - 1].p1),
        (INS_SELECT, 0x04)
    );
    assert!(log
        .iter()
        .filter(|r| r.ins == INS_SELECT && r.p1 != 0x04)
        .all(|r| r.p1 == 0x08 && r.sw == 0x9000));
    // A 2048-bit block in one extended APDU.
    let pso = log.iter().rfind(|r| r.ins == INS_PSO).unwrap();
    assert!(pso.len > 256 && pso.cla == 0x00, "{pso:?}");

    // After a reset by another application the card forgot the application (and the PIN): the
    // driver selects the application again before the PIN and the signature.
    handle.reset_by_other_application();
    assert!(matches!(sign(&mut cns), Err(Error::PinStateLost)));
    handle.reset_counters();
    cns.verify_pin(&Pin::new(p.pin.expose()).unwrap()).unwrap();
    sign(&mut cns).unwrap();
    let sent: Vec<(u8, u8, u16)> = handle
        .apdu_log()
        .iter()
        .map(|r| (r.ins, r.p1, r.sw))
        .collect();
    assert_eq!(
        sent[..2],
        [(INS_SELECT, 0x04, 0x9000), (INS_VERIFY, 0x00, 0x9000)]
    );
}

/// A contactless card answering ST2022's AID but not "JSign4" is not taken for it.
static LOOKALIKE: CardGeneration = CardGeneration {
    name: "jsign-lookalike",
    atr_test: AtrTest::Application,
    confirm: Some(GetDataCheck {
        p1p2: [0x01, 0x80],
        expect: b"JSign9",
    }),
    ..ST2022_NFC
};

/// A contactless card that is no CNS: an application of its own, nothing the driver knows.
static NOT_A_CNS: CardGeneration = CardGeneration {
    name: "not-a-cns",
    layout: Layout {
        aid: Some(&[0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01]),
        ..ST2022_NFC.layout
    },
    confirm: None,
    ..ST2022_NFC
};

#[test]
fn recognition_checks_what_the_application_answers_and_says_what_it_tried() {
    let text = "maker = \"jsign-lookalike\"\n";
    let p = SimProfile::from_toml_among(text, &[&LOOKALIKE]).unwrap();
    let cns = CnsCard::open(SimCard::new(&p).unwrap()).unwrap();
    // The GET DATA answer is not "JSign4": not st2022-nfc. Its files under the application
    // (left selected by the probe) are classic ones, so the path probe finds a CNS.
    assert_ne!(cns.recognition().generation.name, "st2022-nfc");
    assert_eq!(cns.recognition().method, RecognitionMethod::Path);
    // The three probes, the MF selected again after the foreign application, the path.
    let purposes: Vec<&str> = cns
        .recognition()
        .probes
        .iter()
        .map(|p| p.purpose.as_str())
        .collect();
    assert_eq!(
        purposes,
        [
            "application of actalis-ace2025",
            "application of st2022-nfc",
            "GET DATA of st2022-nfc",
            "MF 3F00",
            "EF_ID_Carta 3F00/1000/1003"
        ]
    );
    assert_eq!(
        cns.recognition().generation.tries_query,
        tscns_card::generations::TriesQuery::Never
    );

    let p = SimProfile::from_toml_among("maker = \"not-a-cns\"\n", &[&NOT_A_CNS]).unwrap();
    let card = SimCard::new(&p).unwrap();
    let handle = card.handle();
    match CnsCard::open(card) {
        Err(Error::NotCns { reason }) => {
            assert_eq!(
                reason,
                "tried application of actalis-ace2025 (6A82), application of st2022-nfc \
                 (6A82), EF_ID_Carta 3F00/1000/1003 (6A82)"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let log = handle.apdu_log();
    assert_eq!(log.len(), 3, "a bounded probe: {log:?}");
    assert!(log.iter().all(|r| r.ins == INS_SELECT));
    assert_eq!(ACE_2025_AID.len(), 12);
}

#[test]
fn st2021_signs_a_2048_bit_block_with_extended_length_and_never_chains() {
    let p = profile("st2021-2048");
    let (mut cns, handle) = open(&p);
    assert_eq!(cns.recognition().generation.name, "st2021");
    assert_eq!(cns.recognition().pin_reference(), 0x90);
    cns.identity().unwrap();
    cns.verify_pin(&Pin::new(p.pin.expose()).unwrap()).unwrap();
    sign(&mut cns).unwrap();
    let log = handle.apdu_log();
    assert_eq!(count(&log, |r| r.cla & 0x10 != 0), 0);
    let pso = log.iter().rfind(|r| r.ins == INS_PSO).unwrap();
    assert!(pso.len > 256 && pso.sw == 0x9000, "{pso:?}");

    // A card that refuses extended length too: the driver does not fall back to chaining.
    let mut p = profile("st2021-2048");
    p.extended_length = false;
    p.command_chaining = true;
    let (mut cns, handle) = open(&p);
    cns.identity().unwrap();
    cns.verify_pin(&Pin::new(p.pin.expose()).unwrap()).unwrap();
    assert!(matches!(sign(&mut cns), Err(Error::Status { .. })));
    assert_eq!(count(&handle.apdu_log(), |r| r.cla & 0x10 != 0), 0);
    assert!(generation("st2021").lengths.never_chain);
}

#[test]
fn ace_2025_found_behind_a_bare_nfc_atr_by_its_aid() {
    static ACE_NFC: CardGeneration = CardGeneration {
        name: "ace-nfc",
        atr: &[0x3B, 0x80, 0x80, 0x01, 0x01],
        atr_test: AtrTest::Application,
        ..ACTALIS_ACE_2025
    };
    let mut table: Vec<&'static CardGeneration> = vec![&ACE_NFC];
    table.extend(GENERATIONS.iter().filter(|g| g.name != "actalis-ace2025"));
    let text = "maker = \"ace-nfc\"\ncard_id = \"6120000000000234\"\n";
    let p = SimProfile::from_toml_among(text, &table).unwrap();
    let mut cns = CnsCard::open_among(SimCard::new(&p).unwrap(), &table).unwrap();
    assert_eq!(cns.recognition().generation.name, "ace-nfc");
    assert_eq!(cns.recognition().method, RecognitionMethod::Application);
    assert_eq!(cns.identity().unwrap().card_id.as_str(), "6120000000000234");
}

/// A card answering 9000 to ACe 2025's AID with an FCI that does not name it is not taken for
/// ACe 2025 (which has no other check): no PIN would go to it.
#[test]
fn an_application_that_does_not_name_itself_is_not_ace_2025() {
    static ACE_LOOKALIKE: CardGeneration = CardGeneration {
        name: "ace-lookalike",
        atr: &[0x3B, 0x80, 0x80, 0x01, 0x01],
        atr_test: AtrTest::Application,
        layout: Layout {
            aid_fci: &[],
            ..ACTALIS_ACE_2025.layout
        },
        ..ACTALIS_ACE_2025
    };
    let text = "maker = \"ace-lookalike\"\ncard_id = \"6120000000000234\"\n";
    let p = SimProfile::from_toml_among(text, &[&ACE_LOOKALIKE]).unwrap();
    match CnsCard::open(SimCard::new(&p).unwrap()) {
        Err(Error::NotCns { reason }) => {
            assert!(
                reason.starts_with("tried application of actalis-ace2025 (9000)"),
                "{reason}"
            );
        }
        other => panic!("{:?}", other.map(|c| c.recognition().generation.name)),
    }
}
