//! The driver and the simulator read the same table of card generations
//! (`tscns_generations::GENERATIONS`): for every entry, the simulator built from it is
//! recognised as that generation and read completely (identity, PIN with the generation's
//! reference, signature with its key). Then a generation that is not in the table is added the
//! way a contributor adds one, with one entry and one profile, and the same checks pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tscns_card::generations::{
    AtrTest, CardGeneration, CnsTest, FciStyle, KeySet, Layout, Lengths, PinRules, SelectMode,
    SignPath, Signing, TriesQuery, EF_DATI_PERSONALI, EF_ID_CARTA,
};
use tscns_card::{CnsCard, Error, HashAlg, Pin, GENERATIONS};
use tscns_sim::{ApduRecord, Maker, SimCard, SimProfile, BUILTIN_PROFILES};

const INS_SELECT: u8 = 0xA4;
const INS_VERIFY: u8 = 0x20;
const INS_MSE: u8 = 0x22;
const INS_PSO: u8 = 0x2A;

/// Opens the simulator of `profile` with the driver (among `table`) and checks everything the
/// generation says, against the APDUs the simulated card saw.
fn check(generation: &CardGeneration, profile: &SimProfile, table: &[&'static CardGeneration]) {
    let name = generation.name;
    assert_eq!(profile.maker.generation(), generation, "{name}");
    let card = SimCard::new(profile).unwrap();
    let handle = card.handle();
    assert_eq!(handle.atr(), generation.atr, "{name}: the simulator's ATR");
    let mut cns = CnsCard::open_among(card, table).unwrap();
    assert_eq!(cns.recognition().generation, generation, "{name}");
    assert_eq!(
        cns.recognition().needs_probe(),
        !matches!(generation.atr_test, AtrTest::Cns(_)),
        "{name}"
    );

    let id = cns.identity().unwrap().clone();
    assert_eq!(id.card_id.as_str(), profile.card_id, "{name}");
    assert_eq!(
        id.personal_data.codice_fiscale.as_deref(),
        Some(profile.personal_data.codice_fiscale.as_str()),
        "{name}"
    );
    assert_eq!(id.key_set, generation.layout.key_set, "{name}");
    assert_eq!(id.certificate.der(), handle.pki().card_cert_der(), "{name}");
    assert_eq!(id.checks.cf_matches_certificate, Some(true), "{name}");
    assert_eq!(id.checks.data_hash_matches, Some(true), "{name}");
    assert_eq!(cns.key_bits().unwrap(), profile.key_bits.bits(), "{name}");
    let log = handle.apdu_log();
    let selects: Vec<&ApduRecord> = log.iter().filter(|r| r.ins == INS_SELECT).collect();
    assert!(
        selects
            .iter()
            .filter(|r| r.p1 == 0x08 || r.p1 == 0x09)
            .all(|r| r.p1 == generation.layout.select.p1()),
        "{name}: {selects:?}"
    );
    if let Some(_aid) = generation.layout.aid {
        assert!(
            selects.iter().any(|r| (r.p1, r.sw) == (0x04, 0x9000)),
            "{name}: the application is selected by its AID: {selects:?}"
        );
    }

    handle.reset_counters();
    cns.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    let digest = HashAlg::Sha256.digest(generation.name.as_bytes());
    let signature = cns.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
    assert_eq!(signature.len(), profile.key_bits.bytes(), "{name}");
    let log = handle.apdu_log();
    let verify = log.iter().find(|r| r.ins == INS_VERIFY).unwrap();
    assert_eq!(
        (verify.p2, verify.sw),
        (generation.pin.pin_reference, 0x9000),
        "{name}"
    );
    let mse: Vec<(u8, u8, u16)> = log
        .iter()
        .filter(|r| r.ins == INS_MSE)
        .map(|r| (r.p1, r.p2, r.sw))
        .collect();
    // The driver walks the generation's signing paths in order up to the one the card takes
    // (the profile's guess): each refused path leaves its first refused MSE in the log.
    let taken = profile.guesses.signing;
    let mut want = Vec::new();
    for path in generation.sign_paths {
        let ok = *path == taken;
        match path {
            SignPath::Cns => {
                if let Some([p1, p2]) = generation.signing.restore {
                    want.push((p1, p2, if ok { 0x9000 } else { 0x6A88 }));
                }
                if ok {
                    want.push((generation.signing.set[0], generation.signing.set[1], 0x9000));
                }
            }
            SignPath::Mse84 => want.push((0x41, 0xB6, if ok { 0x9000 } else { 0x6A80 })),
            SignPath::Decipher => want.push((0xF1, 0xB8, if ok { 0x9000 } else { 0x6A80 })),
        }
        if ok {
            break;
        }
    }
    assert_eq!(mse, want, "{name}");
    let pso = log.iter().rfind(|r| r.ins == INS_PSO).unwrap();
    let pso_p1p2 = match taken {
        SignPath::Decipher => [0x80, 0x86],
        SignPath::Mse84 => [0x9E, 0x9A],
        SignPath::Cns => generation.signing.pso,
    };
    assert_eq!([pso.p1, pso.p2], pso_p1p2, "{name}");
    assert_eq!(pso.sw, 0x9000, "{name}");
    assert_eq!(handle.counters().signatures, 1, "{name}");
}

fn known_table() -> Vec<&'static CardGeneration> {
    GENERATIONS.iter().collect()
}

#[test]
fn every_generation_is_recognised_and_read_from_its_simulator() {
    let table = known_table();
    for generation in GENERATIONS {
        let profiles: Vec<SimProfile> = BUILTIN_PROFILES
            .iter()
            .map(|(name, _)| SimProfile::builtin(name).unwrap())
            .filter(|p| p.maker.name() == generation.name)
            .collect();
        assert!(
            !profiles.is_empty(),
            "{}: no built-in profile in crates/tscns-sim/profiles",
            generation.name
        );
        for profile in &profiles {
            check(generation, profile, &table);
        }
    }
    // And every maker of the simulator is a generation of the table.
    assert_eq!(Maker::ALL.len(), GENERATIONS.len());
}

/// An example generation as a contributor would add it to `GENERATIONS`: an application selected
/// by AID, its files selected from the current DF (`P1 = 09`), the certificate and key in a
/// layout of its own, key reference 0x03, extended length.
static EXAMPLE: CardGeneration = CardGeneration {
    name: "example-2025",
    summary: "an example generation: NXP chip, Gemalto mask, CNS 1.1, application by AID",
    // NXP chip (04), Gemalto mask (0D), firmware 25 01, CNS 1.1; TCK 75.
    atr: &[
        0x3B, 0xFF, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x00, 0x6B, 0x04, 0x0D, 0x25, 0x01,
        0x01, 0x21, 0x01, 0x43, 0x4E, 0x53, 0x11, 0x31, 0x80, 0x75,
    ],
    atr_test: AtrTest::Cns(CnsTest {
        chip_maker: Some(0x04),
        mask_maker: Some(0x0D),
        ..CnsTest::ANY
    }),
    layout: Layout {
        aid: Some(&[0xA0, 0x00, 0x00, 0x00, 0x00, 0x39, 0x80, 0x25]),
        select: SelectMode::FromCurrentDf,
        id_carta: EF_ID_CARTA,
        dati_personali: EF_DATI_PERSONALI,
        key_set: KeySet {
            cert_path: &[[0x15, 0x00], [0x15, 0x01]],
            key_reference: 0x03,
        },
        key_file: Some(&[[0x15, 0x00], [0x15, 0x02]]),
        card_id_from_certificate: false,
        select_by_fid: true,
        aid_fci: &[],
        fci: FciStyle::Classic,
        cert_file_padded: true,
        other_files: &[],
    },
    pin: PinRules::STANDARD,
    lengths: Lengths {
        extended: true,
        chaining: false,
        max_read: 0xFF,
        max_challenge: 0x100,
        never_chain: false,
        extended_reads: true,
    },
    signing: Signing::CNS,
    sign_paths: &[SignPath::Cns],
    tries_query: TriesQuery::OnRequest,
    confirm: None,
    key_bits: 2048,
};

/// Its simulator profile, as `crates/tscns-sim/profiles/example-2025-2048.toml` would hold it.
const EXAMPLE_PROFILE: &str = r#"
seed = 2025
maker = "example-2025"
card_id = "6120000000000010"
pin = "20252025"

[personal_data]
issuer_code = "6120"
issue_date = "2025-06-01"
expiry_date = "2031-06-01"
surname = "VERDI"
given_name = "ANNA"
birth_date = "1990-05-15"
sex = "F"
codice_fiscale = "VRDNNA90E55H501F"
birth_municipality = "H501"
residence_municipality = "H501"
residence_address = "VIA NAZIONALE 25"
"#;

/// Adding a generation is one entry plus one profile: with [`EXAMPLE`] in the table and
/// [`EXAMPLE_PROFILE`], the driver recognises and reads the simulator built from them, AID and
/// `P1 = 09` selection included, with no other change to the driver or the simulator. The same
/// entry and profile committed to the tree (crates/tscns-generations/README.md) give
/// `git diff --stat`:
///
/// ```text
///  crates/tscns-generations/src/lib.rs              | 31 ++++++++++++++++++++++++
///  crates/tscns-sim/profiles/example-2025-2048.toml | 17 +++++++++++++
///  2 files changed, 48 insertions(+)
/// ```
///
/// and with them `every_generation_is_recognised_and_read_from_its_simulator` walks the new
/// entry too (its profile is a built-in one through the simulator's build script).
#[test]
fn adding_a_generation_is_one_entry_and_one_profile() {
    let mut table = known_table();
    table.push(&EXAMPLE);
    let profile = SimProfile::from_toml_among(EXAMPLE_PROFILE, &table).unwrap();
    check(&EXAMPLE, &profile, &table);

    if GENERATIONS.iter().any(|g| g.name == EXAMPLE.name) {
        // doc/example-generation.patch is applied: the entry is in the table, and the walk over
        // every entry has read it already.
        return;
    }
    // Without the entry the simulator does not know the maker, and the driver takes the card for
    // another CNS 1.1 card: it probes the applications it knows (not this one), then looks for
    // the files where the classic generations keep them, outside the card's application, and
    // the error names the path (from the table, not from the driver's code).
    let err = SimProfile::from_toml(EXAMPLE_PROFILE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"example-2025\" is not a maker"), "{err}");
    let mut cns = CnsCard::open(SimCard::new(&profile).unwrap()).unwrap();
    assert_eq!(cns.recognition().generation.name, "standard");
    let probed: Vec<&str> = cns
        .recognition()
        .probes
        .iter()
        .map(|p| p.purpose.as_str())
        .collect();
    assert_eq!(
        probed,
        [
            "application of actalis-ace2025",
            "application of st2022-nfc"
        ]
    );
    match cns.identity() {
        Err(Error::FileNotFound { file }) => assert_eq!(file, "EF_ID_Carta (3F00/1000/1003)"),
        other => panic!("{other:?}"),
    }
}
