//! Outside bytes never make the simulator panic: any C-APDU gets an R-APDU, any profile text
//! gets a profile or an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use tscns_apdu::Transport;
use tscns_sim::{Profile, SimCard};

fn profile() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| Profile::builtin("idemia2021-2048").unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_get_a_status_word(apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut card = SimCard::new(profile()).unwrap();
        for apdu in apdus {
            let r = card.transmit_raw(&apdu).unwrap();
            prop_assert!(r.len() >= 2);
        }
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
        prop_assert!(r.len() >= 2);
    }

    #[test]
    fn any_profile_text_parses_or_errors(text in "\\PC{0,200}") {
        let _ = Profile::from_toml(&text);
    }

    #[test]
    fn profile_like_text_parses_or_errors(
        key in prop_oneof![Just("seed"), Just("maker"), Just("key_bits"), Just("card_id"), Just("pin"), Just("pin_tries"), Just("[faults]\nbit_rate"), Just("[personal_data]\nbirth_date"), Just("[certificate]\nnot_before")],
        value in prop_oneof![any::<i64>().prop_map(|v| v.to_string()), "\"[ -~]{0,20}\"".prop_map(|s| s), Just("true".to_owned())],
    ) {
        let _ = Profile::from_toml(&format!("{key} = {value}\n"));
    }
}
