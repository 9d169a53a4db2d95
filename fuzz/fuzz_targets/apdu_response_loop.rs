//! The response loop (61xx GET RESPONSE, 6Cxx re-send, chaining, READ BINARY of a whole file)
//! over a card whose answers come from the fuzz input: never panics, never outruns its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tscns_apdu::{Card, CardOptions, Command, Error, Transport};

/// A card answering with length-prefixed chunks of the input, then "removed".
struct FuzzCard<'a> {
    input: &'a [u8],
    sent: u64,
}

impl Transport for FuzzCard<'_> {
    fn transmit_raw(&mut self, _command: &[u8]) -> Result<Vec<u8>, Error> {
        self.sent += 1;
        let (&len, rest) = self.input.split_first().ok_or(Error::CardRemoved)?;
        let (answer, rest) = rest.split_at(usize::from(len).min(rest.len()));
        self.input = rest;
        Ok(answer.to_vec())
    }

    fn atr(&self) -> &[u8] {
        &[0x3B, 0x00]
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, answers)) = data.split_first() else {
        return;
    };
    let options = CardOptions {
        extended_length: cfg & 0x01 != 0,
        max_read_chunk: usize::from(cfg & 0x7E) * 4 + 1,
        max_get_response: 16,
    };
    let mut card = Card::with_options(
        FuzzCard {
            input: answers,
            sent: 0,
        },
        options,
    );
    let data_len = if cfg & 0x80 != 0 { 600 } else { 12 };
    let command = Command::new(0x00, 0x2A, 0x9E, 0x9A)
        .with_data(vec![0x55; data_len])
        .with_le(256);
    let _ = card.transmit(&command);
    let _ = card.read_binary_all(None);
    let _ = card.read_binary_all(Some(1000));
    assert!(card.apdu_count() <= card.transport().sent);
});
