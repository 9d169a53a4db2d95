//! Fuzzes the simulated card with command APDUs: every input is a sequence of APDUs (each one a
//! length byte, then that many bytes); every APDU gets an answer of at least SW1 SW2, never a
//! panic.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use tscns_apdu::Transport;

fn card() -> &'static Mutex<tscns_sim::SimCard> {
    static CARD: OnceLock<Mutex<tscns_sim::SimCard>> = OnceLock::new();
    CARD.get_or_init(|| {
        let profile = tscns_sim::Profile::builtin("idemia2021-2048").expect("built-in profile");
        Mutex::new(tscns_sim::SimCard::new(&profile).expect("simulated card"))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut card = card().lock().unwrap_or_else(|p| p.into_inner());
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (apdu, next) = tail.split_at(len);
        let answer = card
            .transmit_raw(apdu)
            .expect("the simulator always answers");
        assert!(answer.len() >= 2);
        rest = next;
    }
});
