//! The CNS driver over a card whose answers are arbitrary bytes: recognition, identity read
//! (card id, EF_Dati_personali, certificate length from its DER header), PIN and signing end in
//! an error or a result, never a panic.
//!
//! Input: one byte n, then an ATR of n bytes (at most 33), then answers, each a 2-byte big-endian
//! length and that many bytes; length 0 is "the card was reset", the end of the input a removed
//! card.
#![no_main]

use tscns_apdu::{Error, Transport};
use tscns_card::{CnsCard, HashAlg, Pin};

struct FuzzCard<'a> {
    atr: Vec<u8>,
    rest: &'a [u8],
}

impl Transport for FuzzCard<'_> {
    fn transmit_raw(&mut self, _command: &[u8]) -> Result<Vec<u8>, Error> {
        let Some((len, rest)) = self.rest.split_first_chunk::<2>() else {
            return Err(Error::CardRemoved);
        };
        let n = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (answer, rest) = rest.split_at(n);
        self.rest = rest;
        if n == 0 {
            return Err(Error::CardReset);
        }
        Ok(answer.to_vec())
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reconnect(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n).min(33).min(rest.len());
    let (atr, rest) = rest.split_at(n);
    let Ok(mut card) = CnsCard::open(FuzzCard {
        atr: atr.to_vec(),
        rest,
    }) else {
        return;
    };
    let _ = card.identity();
    if let Ok(pin) = Pin::new("12345") {
        let _ = card.verify_pin(&pin);
    }
    let _ = card.sign_pkcs1(HashAlg::Sha256, &[0x11; 32]);
    let _ = card.sign_pss(HashAlg::Sha1, &[0x22; 20]);
});
