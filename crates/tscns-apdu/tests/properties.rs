//! Property tests: command encode/decode round trips over all ISO cases and both length forms,
//! strict decoding of arbitrary bytes, and a response loop that never panics or spins on any card
//! answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;

use proptest::prelude::*;
use tscns_apdu::{
    Card, CardOptions, Command, Error, LengthForm, Response, Transport, MAX_EXTENDED_DATA,
    MAX_EXTENDED_LE, MAX_SHORT_DATA, MAX_SHORT_LE,
};

/// Data lengths around every boundary: none, short, extended, and the extended maximum.
fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 1..=MAX_SHORT_DATA),
        proptest::collection::vec(any::<u8>(), MAX_SHORT_DATA + 1..=1200),
        (0usize..4, any::<u8>()).prop_map(|(k, b)| vec![b; MAX_EXTENDED_DATA - k]),
    ]
}

fn le_strategy() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        Just(None),
        (1..=MAX_SHORT_LE).prop_map(Some),
        (MAX_SHORT_LE + 1..=MAX_EXTENDED_LE).prop_map(Some),
        prop_oneof![
            Just(1usize),
            Just(255),
            Just(256),
            Just(257),
            Just(65535),
            Just(65536)
        ]
        .prop_map(Some),
    ]
}

fn form_strategy() -> impl Strategy<Value = LengthForm> {
    prop_oneof![
        Just(LengthForm::Auto),
        Just(LengthForm::Short),
        Just(LengthForm::Extended)
    ]
}

fn command_strategy() -> impl Strategy<Value = Command> {
    (
        any::<[u8; 4]>(),
        data_strategy(),
        le_strategy(),
        form_strategy(),
    )
        .prop_map(|([cla, ins, p1, p2], data, le, form)| {
            let c = Command::new(cla, ins, p1, p2)
                .with_data(data)
                .with_length_form(form);
            match le {
                Some(le) => c.with_le(le),
                None => c,
            }
        })
}

/// Bytes shaped like commands (header, a length field, some body) so decoding explores the
/// interesting branches, not only "too short".
fn command_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 4]>(),
        prop_oneof![
            Just(Vec::new()),
            any::<u8>().prop_map(|b| vec![b]),
            any::<[u8; 3]>().prop_map(|[_, a, b]| vec![0, a, b]),
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(h, len, body, tail)| {
            let mut v = h.to_vec();
            v.extend(len);
            v.extend(body);
            v.extend(tail);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_encode_round_trip(c in command_strategy()) {
        let short_fits = c.data().len() <= MAX_SHORT_DATA && c.le().is_none_or(|le| le <= MAX_SHORT_LE);
        match c.encode() {
            Ok(bytes) => {
                prop_assert_eq!(c.encoded_len().unwrap(), bytes.len());
                let back = Command::decode(&bytes).unwrap();
                prop_assert_eq!(&back, &c);
                prop_assert_eq!(back.case(), c.case());
                prop_assert_eq!(back.is_extended(), c.is_extended());
                prop_assert_eq!(back.encode().unwrap(), bytes);
                // Auto picks short exactly when it fits.
                if c.length_form() == LengthForm::Auto && c.case() != 1 {
                    prop_assert_eq!(c.is_extended(), !short_fits);
                }
            }
            Err(Error::DataTooLong { .. }) | Err(Error::LeOutOfRange { .. }) => {
                // Only a forced short form can fail with in-range values.
                prop_assert_eq!(c.length_form(), LengthForm::Short);
                prop_assert!(!short_fits);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn every_case_and_form_round_trips(
        h in any::<[u8; 4]>(),
        data in proptest::collection::vec(any::<u8>(), 1..=MAX_SHORT_DATA),
        le in 1..=MAX_SHORT_LE,
    ) {
        let [cla, ins, p1, p2] = h;
        for form in [LengthForm::Short, LengthForm::Extended] {
            let cases = [
                Command::new(cla, ins, p1, p2),
                Command::new(cla, ins, p1, p2).with_le(le),
                Command::new(cla, ins, p1, p2).with_data(data.clone()),
                Command::new(cla, ins, p1, p2).with_data(data.clone()).with_le(le),
            ];
            for (i, c) in cases.into_iter().enumerate() {
                let c = c.with_length_form(form);
                prop_assert_eq!(usize::from(c.case()), i + 1);
                prop_assert_eq!(c.is_extended(), form == LengthForm::Extended && i > 0);
                let bytes = c.encode().unwrap();
                prop_assert_eq!(Command::decode(&bytes).unwrap(), c);
            }
        }
    }

    #[test]
    fn decode_arbitrary_bytes_is_strict(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(c) = Command::decode(&bytes) {
            prop_assert_eq!(c.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn decode_command_like_bytes_is_strict(bytes in command_like_bytes()) {
        match Command::decode(&bytes) {
            Ok(c) => prop_assert_eq!(c.encode().unwrap(), bytes),
            Err(e) => prop_assert!(matches!(e, Error::Malformed { .. }), "{e}"),
        }
    }

    #[test]
    fn response_parse_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        match Response::from_bytes(&bytes) {
            Ok(r) => prop_assert_eq!(r.to_bytes(), bytes),
            Err(_) => prop_assert!(bytes.len() < 2),
        }
    }

    #[test]
    fn response_loop_survives_any_card(
        answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40),
        extended in any::<bool>(),
        data_len in 0usize..700,
        chunk in 1usize..300,
    ) {
        let transport = AnswerTransport { answers: answers.into_iter().collect(), sent: 0 };
        let options = CardOptions { extended_length: extended, max_read_chunk: chunk, ..CardOptions::default() };
        let mut card = Card::with_options(transport, options);
        let _ = card.transmit(&Command::new(0, 0x2A, 0x9E, 0x9A).with_data(vec![7; data_len]).with_le(256));
        let _ = card.read_binary_all(None);
        let _ = card.read_binary_all(Some(data_len));
        // Every raw exchange consumed one answer or failed: the loop cannot outrun its input.
        prop_assert!(card.apdu_count() <= card.transport().sent as u64);
    }
}

/// A card that answers the given byte strings in order, then is "removed".
struct AnswerTransport {
    answers: VecDeque<Vec<u8>>,
    sent: usize,
}

impl Transport for AnswerTransport {
    fn transmit_raw(&mut self, _command: &[u8]) -> Result<Vec<u8>, Error> {
        self.sent += 1;
        self.answers.pop_front().ok_or(Error::CardRemoved)
    }
    fn atr(&self) -> &[u8] {
        &[0x3B, 0x00]
    }
}
