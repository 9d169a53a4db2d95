//! A scripted in-memory transport for unit tests.

use std::collections::VecDeque;

use crate::command::describe_raw;
use crate::{Error, Transport};

/// What the scripted card does when its expected command arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// Answer with these raw R-APDU bytes.
    Reply(Vec<u8>),
    /// Fail with [`Error::CardReset`].
    Reset,
    /// Fail with [`Error::CardRemoved`].
    Removed,
}

/// Test double: a script of expected C-APDUs (raw bytes) and the R-APDUs to answer.
///
/// Any command other than the next one in the script fails with [`Error::Unexpected`] (and the
/// transport stays failed, so a test cannot go on by accident); [`ScriptedTransport::finish`]
/// fails if entries remain.
///
/// ```
/// use tscns_apdu::{Card, Command, ScriptedTransport};
/// let t = ScriptedTransport::new([0x3B, 0x00])
///     .expect([0x00, 0xB0, 0x00, 0x00, 0x04], [0x01, 0x02, 0x61, 0x02])
///     .expect([0x00, 0xC0, 0x00, 0x00, 0x02], [0x03, 0x04, 0x90, 0x00]);
/// let mut card = Card::new(t);
/// let r = card.transmit(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(4))?;
/// assert_eq!(r.data(), [1, 2, 3, 4]);
/// card.into_inner().finish()?;
/// # Ok::<(), tscns_apdu::Error>(())
/// ```
#[derive(Debug)]
pub struct ScriptedTransport {
    atr: Vec<u8>,
    script: VecDeque<(Vec<u8>, Answer)>,
    exchanged: usize,
    failed: Option<(String, String)>,
    transactions_begun: usize,
    transactions_ended: usize,
    reconnects: usize,
}

impl ScriptedTransport {
    /// An empty script for a card with this ATR.
    pub fn new(atr: impl Into<Vec<u8>>) -> Self {
        ScriptedTransport {
            atr: atr.into(),
            script: VecDeque::new(),
            exchanged: 0,
            failed: None,
            transactions_begun: 0,
            transactions_ended: 0,
            reconnects: 0,
        }
    }

    /// Adds an expected command and the raw response (data + SW1 SW2) to answer.
    pub fn expect(mut self, command: impl AsRef<[u8]>, response: impl AsRef<[u8]>) -> Self {
        self.push(command, response);
        self
    }

    /// Like [`ScriptedTransport::expect`], from hex strings (spaces allowed), e.g.
    /// `expect_hex("00 A4 00 00 02 3F00", "9000")`. Invalid hex poisons the script: every later
    /// exchange and [`ScriptedTransport::finish`] fail, naming the entry.
    pub fn expect_hex(mut self, command: &str, response: &str) -> Self {
        match (parse_hex(command), parse_hex(response)) {
            (Some(c), Some(r)) => self.expect(c, r),
            _ => {
                self.failed.get_or_insert((
                    format!("valid hex in script entry {}", self.script.len() + 1),
                    "nothing yet".to_owned(),
                ));
                self
            }
        }
    }

    /// Adds an expected command and the raw response to answer (by reference).
    pub fn push(&mut self, command: impl AsRef<[u8]>, response: impl AsRef<[u8]>) {
        self.script.push_back((
            command.as_ref().to_vec(),
            Answer::Reply(response.as_ref().to_vec()),
        ));
    }

    /// Adds an expected command that fails with [`Error::CardReset`].
    pub fn expect_reset(mut self, command: impl AsRef<[u8]>) -> Self {
        self.script
            .push_back((command.as_ref().to_vec(), Answer::Reset));
        self
    }

    /// Adds an expected command that fails with [`Error::CardRemoved`].
    pub fn expect_removed(mut self, command: impl AsRef<[u8]>) -> Self {
        self.script
            .push_back((command.as_ref().to_vec(), Answer::Removed));
        self
    }

    /// Script entries not yet consumed.
    pub fn remaining(&self) -> usize {
        self.script.len()
    }

    /// Commands exchanged so far.
    pub fn exchanged(&self) -> usize {
        self.exchanged
    }

    /// How many transactions were begun and ended.
    pub fn transactions(&self) -> (usize, usize) {
        (self.transactions_begun, self.transactions_ended)
    }

    /// How many times [`Transport::reconnect`] was called.
    pub fn reconnects(&self) -> usize {
        self.reconnects
    }

    /// Checks that the whole script ran and nothing unexpected happened.
    pub fn finish(self) -> Result<(), Error> {
        if let Some((expected, got)) = self.failed {
            return Err(Error::Unexpected { expected, got });
        }
        match self.script.front() {
            None => Ok(()),
            Some((next, _)) => Err(Error::ScriptNotFinished {
                remaining: self.script.len(),
                next: describe_raw(next),
            }),
        }
    }
}

impl Transport for ScriptedTransport {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        if let Some((expected, got)) = &self.failed {
            return Err(Error::Unexpected {
                expected: expected.clone(),
                got: got.clone(),
            });
        }
        let matches = self.script.front().is_some_and(|(c, _)| c == command);
        if !matches {
            let expected = match self.script.front() {
                Some((c, _)) => describe_raw(c),
                None => "nothing: the script is over".to_owned(),
            };
            let got = describe_raw(command);
            self.failed = Some((expected.clone(), got.clone()));
            return Err(Error::Unexpected { expected, got });
        }
        self.exchanged += 1;
        match self.script.pop_front().map(|(_, a)| a) {
            Some(Answer::Reply(r)) => Ok(r),
            Some(Answer::Reset) => Err(Error::CardReset),
            Some(Answer::Removed) | None => Err(Error::CardRemoved),
        }
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn begin_transaction(&mut self) -> Result<(), Error> {
        self.transactions_begun += 1;
        Ok(())
    }

    fn end_transaction(&mut self) -> Result<(), Error> {
        self.transactions_ended += 1;
        Ok(())
    }

    fn reconnect(&mut self) -> Result<(), Error> {
        self.reconnects += 1;
        Ok(())
    }
}

/// Parses hex with optional whitespace; `None` on odd length or a non-hex digit.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    Some(digits.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_command_fails_and_stays_failed() {
        let mut t = ScriptedTransport::new([0x3B]).expect_hex("00A40000", "9000");
        let e = t.transmit_raw(&[0, 0xB0, 0, 0]).unwrap_err();
        assert!(matches!(e, Error::Unexpected { .. }), "{e}");
        assert!(t.transmit_raw(&[0, 0xA4, 0, 0]).is_err());
        assert!(t.finish().is_err());
    }

    #[test]
    fn finish_reports_leftovers() {
        let t = ScriptedTransport::new([0x3B]).expect_hex("00 20 00 10 04 31323334", "9000");
        let e = t.finish().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("<redacted 4 bytes>"), "{msg}");
        assert!(!msg.contains("31 32"), "{msg}");
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("00 a4 FF"), Some(vec![0, 0xA4, 0xFF]));
        assert_eq!(parse_hex("0"), None);
        assert_eq!(parse_hex("zz"), None);
    }

    #[test]
    fn reset_and_removed() {
        let mut t = ScriptedTransport::new([0x3B])
            .expect_reset([0, 0xA4, 0, 0])
            .expect_removed([0, 0xA4, 0, 0]);
        assert!(matches!(
            t.transmit_raw(&[0, 0xA4, 0, 0]),
            Err(Error::CardReset)
        ));
        assert!(matches!(
            t.transmit_raw(&[0, 0xA4, 0, 0]),
            Err(Error::CardRemoved)
        ));
        t.finish().unwrap();
    }
}
