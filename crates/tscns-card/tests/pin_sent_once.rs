//! A PIN or PUK goes to the card once per call, whatever the card answers: a reset, a 6Cxx
//! "wrong length" or a 61xx never makes the driver send VERIFY, CHANGE REFERENCE DATA or
//! RESET RETRY COUNTER again. The scripted transport fails on any command it does not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tscns_apdu::ScriptedTransport;
use tscns_card::{CnsCard, Error, Pin, Puk};

/// A bare ATR (no CNS marker): the driver probes the applications of ACe 2025 and ST2022 (absent
/// here), then SELECT 3F00/1000/1003, and then uses the standard quirks (PIN reference 0x10).
const BARE_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
const PROBE_ACE_2025: &str = "00 A4 04 00 0C A000000530000B104001021A 00";
const PROBE_ST2022: &str = "00 A4 04 00 08 A00000009501004D 00";
const PROBE: &str = "00 A4 08 00 04 1000 1003";

const VERIFY: &str = "00 20 00 10 08 3132333435 FFFFFF";
const CHANGE: &str = "00 24 00 10 10 3132333435 FFFFFF 3534333231 FFFFFF";
const UNBLOCK: &str = "00 2C 00 10 10 3837363534333231 3534333231 FFFFFF";

fn script() -> ScriptedTransport {
    ScriptedTransport::new(BARE_ATR)
        .expect_hex(PROBE_ACE_2025, "6A82")
        .expect_hex(PROBE_ST2022, "6A82")
        .expect_hex(PROBE, "9000")
}

/// Runs one PIN operation of the three against `card`.
fn run(card: &mut CnsCard<ScriptedTransport>, which: &str) -> Result<(), Error> {
    let pin = Pin::new("12345").unwrap();
    let new = Pin::new("54321").unwrap();
    let puk = Puk::new("87654321").unwrap();
    match which {
        "verify" => card.verify_pin(&pin),
        "change" => card.change_pin(&pin, &new),
        _ => card.unblock_pin(&puk, &new),
    }
}

const OPERATIONS: [(&str, &str); 3] =
    [("verify", VERIFY), ("change", CHANGE), ("unblock", UNBLOCK)];

#[test]
fn reset_during_a_pin_command_is_reported_not_retried() {
    for (which, apdu) in OPERATIONS {
        let t = script().expect_reset(tscns_apdu::parse_hex(apdu).unwrap());
        let mut card = CnsCard::open(t).unwrap();
        let e = run(&mut card, which).unwrap_err();
        assert!(
            matches!(e, Error::Apdu(tscns_apdu::Error::CardReset)),
            "{which}: {e}"
        );
        assert!(!card.is_pin_verified());
        let t = card.into_inner();
        assert_eq!(t.reconnects(), 1, "{which}: the link is re-established");
        t.finish().unwrap();
    }
}

#[test]
fn reset_during_verify_after_a_verified_pin_is_pin_state_lost() {
    let t = script()
        .expect_hex(VERIFY, "9000")
        .expect_reset(tscns_apdu::parse_hex(VERIFY).unwrap());
    let mut card = CnsCard::open(t).unwrap();
    run(&mut card, "verify").unwrap();
    assert!(matches!(run(&mut card, "verify"), Err(Error::PinStateLost)));
    card.into_inner().finish().unwrap();
}

#[test]
fn wrong_length_answer_to_a_pin_command_is_not_resent() {
    for (which, apdu) in OPERATIONS {
        let t = script().expect_hex(apdu, "6C08");
        let mut card = CnsCard::open(t).unwrap();
        let e = run(&mut card, which).unwrap_err();
        assert!(matches!(e, Error::Status { .. }), "{which}: {e}");
        assert!(!card.is_pin_verified());
        card.into_inner().finish().unwrap();
    }
}

#[test]
fn wrong_pin_is_reported_once() {
    for (which, apdu) in OPERATIONS {
        let t = script().expect_hex(apdu, "63C2");
        let mut card = CnsCard::open(t).unwrap();
        let e = run(&mut card, which).unwrap_err();
        assert!(
            matches!(
                e,
                Error::WrongSecret {
                    tries_left: Some(2),
                    ..
                }
            ),
            "{which}: {e}"
        );
        card.into_inner().finish().unwrap();
    }
}
