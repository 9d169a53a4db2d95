//! Outside bytes never make the simulator misbehave: any C-APDU gets a well-formed R-APDU with an
//! ISO 7816-4 status word, no run of hostile commands verifies the PIN, makes the card sign or
//! changes what the card says its holder is, and any profile text gets a profile or one of the
//! two profile errors, naming the key at fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use tscns_apdu::{Card, Command, StatusWord, Transport};
use tscns_sim::{Error, SimCard, SimProfile};

fn profile() -> &'static SimProfile {
    static P: OnceLock<SimProfile> = OnceLock::new();
    P.get_or_init(|| SimProfile::builtin("idemia2021-2048").unwrap())
}

/// EF_ID_Carta, EF_Dati_personali and the certificate (IDEMIA 2021 path), as the card reads them.
fn files(card: SimCard) -> Vec<Vec<u8>> {
    let mut card = Card::new(card);
    [
        &[0x10, 0x00, 0x10, 0x03][..],
        &[0x11, 0x00, 0x11, 0x02],
        &[0x14, 0x00, 0x90, 0x01, 0x20, 0x02],
    ]
    .iter()
    .map(|path| {
        let r = card
            .transmit(&Command::new(0x00, 0xA4, 0x08, 0x00).with_data(path.to_vec()))
            .unwrap();
        assert_eq!(r.status(), StatusWord::SUCCESS, "SELECT {path:02X?}");
        card.read_binary_all(None).unwrap()
    })
    .collect()
}

/// The files of an untouched card.
fn truth() -> &'static Vec<Vec<u8>> {
    static T: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    T.get_or_init(|| files(SimCard::new(profile()).unwrap()))
}

/// Checks one answer: SW1 SW2 of an ISO 7816-4 class, data only with a status that allows it.
fn check_answer(r: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(r.len() >= 2, "answer without a status word: {r:02X?}");
    prop_assert!(r.len() <= 65536 + 2, "answer longer than any Le");
    let (data, sw) = r.split_at(r.len() - 2);
    prop_assert!(
        matches!(sw[0], 0x61..=0x6F | 0x90),
        "SW {:02X}{:02X} is not an ISO 7816-4 status word",
        sw[0],
        sw[1]
    );
    prop_assert!(
        !matches!(sw[0], 0x60 | 0x6C) || data.is_empty(),
        "6Cxx must come without data"
    );
    prop_assert!(
        data.is_empty() || matches!(sw[0], 0x90 | 0x61 | 0x62),
        "data {} bytes with the error {:02X}{:02X}",
        data.len(),
        sw[0],
        sw[1]
    );
    Ok(())
}

/// After hostile commands: no PIN verified, nothing signed, the holder's files as they were.
fn check_card_intact(card: SimCard) -> Result<(), TestCaseError> {
    let h = card.handle();
    prop_assert!(!h.pin_verified(), "hostile bytes verified the PIN");
    prop_assert_eq!(
        h.counters().signatures,
        0,
        "hostile bytes made the card sign"
    );
    prop_assert_eq!(
        &files(card),
        truth(),
        "hostile bytes changed the holder's files"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_get_a_status_word(apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut card = SimCard::new(profile()).unwrap();
        for apdu in apdus {
            let r = card.transmit_raw(&apdu).unwrap();
            check_answer(&r)?;
        }
        check_card_intact(card)?;
    }

    #[test]
    fn any_header_with_plausible_bodies_gets_a_status_word(
        cla in prop_oneof![Just(0u8), Just(0x10u8), any::<u8>()],
        ins in prop_oneof![Just(0xA4u8), Just(0xB0), Just(0x20), Just(0x24), Just(0x2C), Just(0x22), Just(0x2A), Just(0x84), any::<u8>()],
        p1 in any::<u8>(), p2 in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        le in proptest::option::of(1usize..=65536),
    ) {
        let mut card = SimCard::new(profile()).unwrap();
        let mut cmd = tscns_apdu::Command::new(cla, ins, p1, p2).with_data(data);
        if let Some(le) = le { cmd = cmd.with_le(le); }
        let bytes = cmd.encode().unwrap();
        let r = card.transmit_raw(&bytes).unwrap();
        check_answer(&r)?;
        if ins == 0x2A {
            // PSO without a verified PIN (and without MSE SET) never computes anything: at most
            // a chained part is taken (9000 without data).
            prop_assert_eq!(r.len(), 2, "PSO answered data");
        }
        check_card_intact(card)?;
    }

    #[test]
    fn any_profile_text_parses_or_errors(text in "\\PC{0,200}") {
        match SimProfile::from_toml(&text) {
            Ok(p) => prop_assert!(p.validate().is_ok()),
            Err(e) => prop_assert!(
                matches!(e, Error::ProfileSyntax { .. } | Error::ProfileValue { .. }),
                "{e:?}"
            ),
        }
    }

    #[test]
    fn profile_like_text_parses_or_errors(
        key in prop_oneof![Just("seed"), Just("maker"), Just("key_bits"), Just("card_id"), Just("pin"), Just("pin_tries"), Just("[faults]\nbit_rate"), Just("[personal_data]\nbirth_date"), Just("[certificate]\nnot_before")],
        value in prop_oneof![any::<i64>().prop_map(|v| v.to_string()), "\"[ -~]{0,20}\"".prop_map(|s| s), Just("true".to_owned())],
    ) {
        let name = key.rsplit('\n').next().unwrap();
        match SimProfile::from_toml(&format!("{key} = {value}\n")) {
            Ok(p) => {
                prop_assert!(p.validate().is_ok());
                if name == "seed" {
                    prop_assert_eq!(p.seed.to_string(), value);
                }
            }
            Err(Error::ProfileValue { key: at_fault, .. }) => {
                // A [personal_data] table also needs its codice_fiscale (documented).
                let table_needs_cf = key.starts_with("[personal_data]")
                    && at_fault == "personal_data.codice_fiscale";
                prop_assert!(
                    at_fault.ends_with(name) || table_needs_cf,
                    "{at_fault} for {name}"
                );
            }
            Err(Error::ProfileSyntax { message }) => {
                prop_assert!(!message.is_empty());
            }
            Err(e) => prop_assert!(false, "{e:?}"),
        }
    }
}
