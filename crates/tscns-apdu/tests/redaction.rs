//! The data of VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER never reaches a trace, an
//! error message or Debug output, at the most verbose tracing level.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use tscns_apdu::{Card, Command, ScriptedTransport, INS_VERIFY};

/// A `MakeWriter` that appends everything to one shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Secret bytes easy to spot in any rendering: ASCII digits of a PIN and PUK.
const PIN: &[u8] = b"48151623";
const NEW_PIN: &[u8] = b"97531864";
const PUK: &[u8] = b"11223344";

fn spellings(secret: &[u8]) -> Vec<String> {
    let spaced: Vec<String> = secret.iter().map(|b| format!("{b:02X}")).collect();
    vec![
        String::from_utf8(secret.to_vec()).unwrap(),
        spaced.join(" "),
        spaced.join(""),
        spaced.join(" ").to_lowercase(),
        spaced.join("").to_lowercase(),
        format!("{secret:?}"),
        format!("{secret:02X?}"),
        // Partial runs, as a chunked dump would show them.
        spaced[..4].join(" "),
        spaced[..4].join(""),
    ]
}

fn assert_hidden(text: &str) {
    for secret in [PIN, NEW_PIN, PUK] {
        for s in spellings(secret) {
            assert!(!text.contains(&s), "secret {s:?} leaked into:\n{text}");
        }
    }
}

fn raw(c: &Command) -> Vec<u8> {
    c.encode().unwrap()
}

#[test]
fn secret_data_never_traced() {
    let verify = Command::new(0x00, INS_VERIFY, 0x00, 0x10).with_data(PIN);
    let mut change_data = PIN.to_vec();
    change_data.extend_from_slice(NEW_PIN);
    let change = Command::new(0x00, 0x24, 0x00, 0x10).with_data(change_data);
    let mut reset_data = PUK.to_vec();
    reset_data.extend_from_slice(NEW_PIN);
    let reset = Command::new(0x00, 0x2C, 0x00, 0x10).with_data(reset_data);
    // A long VERIFY goes out chained: every part must stay hidden too.
    let long_verify = Command::new(0x00, INS_VERIFY, 0x00, 0x11).with_data(PIN.repeat(40));
    let chained_parts: Vec<Vec<u8>> = long_verify
        .data()
        .chunks(255)
        .enumerate()
        .map(|(i, part)| {
            let cla = if i == 0 { 0x10 } else { 0x00 };
            raw(&Command::new(cla, INS_VERIFY, 0x00, 0x11).with_data(part.to_vec()))
        })
        .collect();

    let mut script = ScriptedTransport::new([0x3B, 0x00])
        .expect(raw(&verify), [0x63, 0xC2])
        .expect(raw(&change), [0x61, 0x02])
        .expect([0x00, 0xC0, 0x00, 0x00, 0x02], [0x01, 0x02, 0x90, 0x00])
        .expect(raw(&reset), [0x90, 0x00]);
    for p in &chained_parts {
        script = script.expect(p, [0x90, 0x00]);
    }

    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    let mut card = Card::new(script);
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(
            card.transmit(&verify).unwrap().status().tries_left(),
            Some(2)
        );
        assert!(card.transmit(&change).unwrap().is_success());
        assert!(card.transmit(&reset).unwrap().is_success());
        assert!(card.transmit(&long_verify).unwrap().is_success());
        // An unexpected VERIFY: the error and its Debug must not show the PIN either.
        let err = card.transmit(&verify).unwrap_err();
        tracing::error!("{err} / {err:?}");
    });
    card.into_inner().finish().unwrap_err();

    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    // The trace is really there: commands, the GET RESPONSE loop and the redaction markers.
    assert!(
        out.contains("C-APDU 00 20 00 10 | <redacted 8 bytes>"),
        "{out}"
    );
    assert!(
        out.contains("C-APDU 00 24 00 10 | <redacted 16 bytes>"),
        "{out}"
    );
    assert!(
        out.contains("C-APDU 00 2C 00 10 | <redacted 16 bytes>"),
        "{out}"
    );
    assert!(
        out.contains("C-APDU 10 20 00 11 | <redacted 255 bytes>"),
        "{out}"
    );
    assert!(out.contains("C-APDU 00 C0 00 00 | Le 2"), "{out}");
    assert!(out.contains("63C2"), "{out}");
    assert!(out.contains("R-APDU data 01 02"), "{out}");
    assert!(
        out.contains("unexpected command 00 20 00 10 | <redacted 8 bytes>"),
        "{out}"
    );
    assert_hidden(&out);
}

#[test]
fn secret_data_hidden_in_debug_and_display() {
    let verify = Command::new(0x00, INS_VERIFY, 0x00, 0x10).with_data(PIN);
    assert_hidden(&format!("{verify:?} {verify} {verify:#?}"));
    let select = Command::new(0x00, 0xA4, 0x00, 0x00).with_data(PIN);
    // Not a secret-bearing command: its data is shown (so the check above is meaningful).
    assert!(format!("{select}").contains("34 38 31 35"));
}
