//! The response loop over any transport: GET RESPONSE on 61xx, re-send on 6Cxx, command chaining,
//! READ BINARY of a whole file, transactions and tracing with secret redaction.

use zeroize::Zeroizing;

use crate::command::{
    Hex, CLA_CHAINING, INS_GET_RESPONSE, INS_READ_BINARY, MAX_SHORT_DATA, MAX_SHORT_LE,
};
use crate::{Command, Error, LengthForm, Response, StatusWord, Transport};

/// Largest offset READ BINARY with even INS can address: P1-P2 is a 15-bit offset when bit 8 of
/// P1 is 0 (ISO 7816-4 §11.3.3).
pub const MAX_READ_BINARY_OFFSET: usize = 0x7FFF;

/// How a [`Card`] talks to a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardOptions {
    /// Largest Le of one READ BINARY in [`Card::read_binary_all`] (default 0xFF, clamped to
    /// 1..=256 without extended length).
    pub max_read_chunk: usize,
    /// Whether the card accepts extended length fields (default false). When false, commands with
    /// more than 255 data bytes are sent by command chaining and Le above 256 is lowered to 256
    /// (the rest arrives through GET RESPONSE), unless the command forces
    /// [`LengthForm::Extended`].
    pub extended_length: bool,
    /// Most GET RESPONSE rounds after one command before giving up with
    /// [`Error::TooManyGetResponse`] (default 64, i.e. up to 16 KiB).
    pub max_get_response: usize,
}

impl Default for CardOptions {
    fn default() -> Self {
        CardOptions {
            max_read_chunk: 0xFF,
            extended_length: false,
            max_get_response: 64,
        }
    }
}

/// The response loop over any [`Transport`].
///
/// Every call to [`Card::transmit`] and [`Card::read_binary_all`] runs inside one exclusive
/// transaction; [`Card::transaction`] groups several. Commands and responses are traced through
/// `tracing` (target `tscns_apdu`, level DEBUG; response data at TRACE) with the data of VERIFY,
/// CHANGE REFERENCE DATA and RESET RETRY COUNTER replaced by `<redacted N bytes>`.
///
/// ```
/// use tscns_apdu::{Card, Command, ScriptedTransport, StatusWord};
/// let script = ScriptedTransport::new([0x3B, 0x00])
///     // The card says 6C05: "ask again with Le = 5".
///     .expect_hex("00 CA 01 00 00", "6C05")
///     .expect_hex("00 CA 01 00 05", "0102030405 9000");
/// let mut card = Card::new(script);
/// let r = card.transmit(&Command::new(0x00, 0xCA, 0x01, 0x00).with_le(256))?;
/// assert_eq!(r.status(), StatusWord::SUCCESS);
/// assert_eq!(r.data(), [1, 2, 3, 4, 5]);
/// assert_eq!(card.apdu_count(), 2);
/// # Ok::<(), tscns_apdu::Error>(())
/// ```
#[derive(Debug)]
pub struct Card<T: Transport> {
    transport: T,
    options: CardOptions,
    apdu_count: u64,
    tx_depth: u32,
}

impl<T: Transport> Card<T> {
    /// A card over `transport` with default [`CardOptions`].
    pub fn new(transport: T) -> Self {
        Self::with_options(transport, CardOptions::default())
    }

    /// A card over `transport` with the given options.
    pub fn with_options(transport: T, options: CardOptions) -> Self {
        Card {
            transport,
            options,
            apdu_count: 0,
            tx_depth: 0,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// The options in force.
    pub fn options(&self) -> &CardOptions {
        &self.options
    }

    /// Changes the options (e.g. once the ATR tells the card supports extended length).
    pub fn set_options(&mut self, options: CardOptions) {
        self.options = options;
    }

    /// The card's answer to reset.
    pub fn atr(&self) -> &[u8] {
        self.transport.atr()
    }

    /// Raw APDUs exchanged so far (GET RESPONSE, re-sends and chained parts included).
    pub fn apdu_count(&self) -> u64 {
        self.apdu_count
    }

    /// Re-establishes the link after [`Error::CardReset`] (the caller re-selects afterwards).
    pub fn reconnect(&mut self) -> Result<(), Error> {
        self.transport.reconnect()
    }

    /// Runs `f` inside one exclusive transaction. Nested calls join the outer transaction. The
    /// transaction ends even when `f` fails; `f`'s error wins over an error ending it.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if self.tx_depth > 0 {
            return f(self);
        }
        self.transport.begin_transaction()?;
        self.tx_depth += 1;
        let result = f(self);
        self.tx_depth -= 1;
        let end = self.transport.end_transaction();
        match (result, end) {
            (Err(e), _) => Err(e),
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(e),
        }
    }

    /// Sends a command, follows 61xx with GET RESPONSE (bounded) and 6Cxx with one re-send, chains
    /// long data when the card lacks extended length, and returns the final response whatever its
    /// status word: the caller decides. A secret-bearing command ([`Command::is_secret_bearing`])
    /// is never re-sent: its 6Cxx goes back to the caller as it is.
    pub fn transmit(&mut self, command: &Command) -> Result<Response, Error> {
        self.transaction(|card| card.transmit_in_transaction(command))
    }

    /// Reads the whole currently selected transparent EF with READ BINARY in chunks of
    /// `options.max_read_chunk` bytes, stopping at `known_len` when given, on 6282 (end of file)
    /// or on 6B00 (offset beyond the end). The result can be shorter than `known_len` when the
    /// file ends first. Any other status word gives [`Error::Status`].
    pub fn read_binary_all(&mut self, known_len: Option<usize>) -> Result<Vec<u8>, Error> {
        self.transaction(|card| card.read_binary_in_transaction(known_len))
    }

    fn read_binary_in_transaction(&mut self, known_len: Option<usize>) -> Result<Vec<u8>, Error> {
        let max_chunk = if self.options.extended_length {
            crate::command::MAX_EXTENDED_LE
        } else {
            MAX_SHORT_LE
        };
        let chunk = self.options.max_read_chunk.clamp(1, max_chunk);
        let mut out = Vec::new();
        loop {
            let offset = out.len();
            let want = match known_len {
                Some(n) if offset >= n => break,
                Some(n) => (n - offset).min(chunk),
                None => chunk,
            };
            if offset > MAX_READ_BINARY_OFFSET {
                return Err(Error::NotSupported {
                    what: format!(
                        "reading past offset {MAX_READ_BINARY_OFFSET} of a file (READ BINARY \
                         with odd INS)"
                    ),
                });
            }
            // READ BINARY, offset in P1-P2 with bit 8 of P1 = 0 (ISO 7816-4 §11.3.3).
            let [p1, p2] = (offset as u16).to_be_bytes();
            let cmd = Command::new(0x00, INS_READ_BINARY, p1, p2).with_le(want);
            let response = self.transmit_in_transaction(&cmd)?;
            let sw = response.status();
            let data = response.into_data();
            if data.len() > want {
                return Err(Error::bad_response(format!(
                    "READ BINARY returned {} bytes, {want} were asked for",
                    data.len()
                )));
            }
            match sw {
                StatusWord::SUCCESS => {
                    if data.is_empty() {
                        break;
                    }
                    out.extend_from_slice(&data);
                }
                StatusWord::END_OF_FILE => {
                    out.extend_from_slice(&data);
                    break;
                }
                StatusWord::WRONG_P1P2 => break,
                other => return Err(Error::Status(other)),
            }
        }
        Ok(out)
    }

    fn transmit_in_transaction(&mut self, command: &Command) -> Result<Response, Error> {
        let adapt = !self.options.extended_length && command.length_form() != LengthForm::Extended;
        if !adapt {
            return self.exchange(command);
        }
        let short_le = command.le().map(|le| le.min(MAX_SHORT_LE));
        if command.data().len() <= MAX_SHORT_DATA {
            if short_le == command.le() {
                return self.exchange(command);
            }
            let mut c = command.clone().with_length_form(LengthForm::Short);
            if let Some(le) = short_le {
                c = c.with_le(le);
            }
            return self.exchange(&c);
        }
        // Command chaining (ISO 7816-4 §5.4.1): every part but the last has CLA bit b5 (0x10) set.
        let mut parts = command.data().chunks(MAX_SHORT_DATA).peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            let base = Command::new(command.cla(), command.ins(), command.p1(), command.p2())
                .with_data(part.to_vec())
                .with_length_form(LengthForm::Short);
            if last {
                let c = match short_le {
                    Some(le) => base.with_le(le),
                    None => base,
                };
                return self.exchange(&c);
            }
            let c = base.with_cla(command.cla() | CLA_CHAINING);
            tracing::debug!(target: "tscns_apdu", "chaining: more parts follow");
            let r = self.send(&c)?;
            if !r.is_success() {
                return Ok(r);
            }
        }
        // Unreachable for non-empty data; answer as the card would to an empty chain.
        Err(Error::malformed("command chaining with no data"))
    }

    /// One logical exchange: send, re-send once on 6Cxx, follow 61xx with GET RESPONSE.
    fn exchange(&mut self, command: &Command) -> Result<Response, Error> {
        let mut response = self.send(command)?;
        if let Some(le) = response.status().correct_le() {
            if command.is_secret_bearing() {
                // Never send a PIN or PUK twice on the caller's behalf: a card (or something
                // posing as one) answering 6Cxx to VERIFY would otherwise get a second try.
                return Ok(response);
            }
            // 6Cxx: wrong Le, re-send once with Le = xx (ISO 7816-4 §5.6 table 5).
            tracing::debug!(target: "tscns_apdu", "{}: re-sending with Le {le}", response.status());
            let again = command.clone().with_le(le);
            response = self.send(&again)?;
        }
        if response.status().bytes_available().is_none() {
            return Ok(response);
        }
        let mut sw = response.status();
        let mut data = response.into_data();
        let mut rounds = 0usize;
        while let Some(available) = sw.bytes_available() {
            if rounds >= self.options.max_get_response {
                return Err(Error::TooManyGetResponse {
                    limit: self.options.max_get_response,
                });
            }
            rounds += 1;
            // GET RESPONSE (ISO 7816-4 §11.6.1) with Le = xx of 61xx.
            let get = Command::new(get_response_cla(command.cla()), INS_GET_RESPONSE, 0, 0)
                .with_le(available);
            let mut r = self.send(&get)?;
            if let Some(le) = r.status().correct_le() {
                r = self.send(&get.with_le(le))?;
            }
            sw = r.status();
            data.extend_from_slice(r.data());
        }
        Ok(Response::new(data, sw))
    }

    /// One raw exchange, traced.
    fn send(&mut self, command: &Command) -> Result<Response, Error> {
        let mut raw = Zeroizing::new(Vec::new());
        command.encode_into(&mut raw)?;
        tracing::debug!(target: "tscns_apdu", "C-APDU {command}");
        let result = self.transport.transmit_raw(&raw);
        self.apdu_count += 1;
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(target: "tscns_apdu", "transport error: {e}");
                return Err(e);
            }
        };
        let response = Response::from_vec(answer)?;
        tracing::debug!(
            target: "tscns_apdu",
            "R-APDU {} data bytes, SW {}",
            response.data().len(),
            response.status()
        );
        tracing::trace!(target: "tscns_apdu", "R-APDU data {}", Hex(response.data()));
        Ok(response)
    }
}

/// CLA for GET RESPONSE: an interindustry command, sent on the logical channel of the command it
/// follows (ISO 7816-4 §5.4.1: channel bits b2-b1 of the first interindustry class, b4-b1 and b7 of
/// the further interindustry class); 00 after a proprietary class.
fn get_response_cla(cla: u8) -> u8 {
    match cla {
        0x00..=0x1F => cla & 0x03,
        0x40..=0x7F => cla & 0x4F,
        _ => 0x00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScriptedTransport;

    fn card(script: ScriptedTransport) -> Card<ScriptedTransport> {
        Card::new(script)
    }

    #[test]
    fn plain_exchange_in_a_transaction() {
        let mut c = card(ScriptedTransport::new([0x3B]).expect_hex("00A4000C023F00", "9000"));
        let r = c
            .transmit(&Command::new(0, 0xA4, 0, 0x0C).with_data([0x3F, 0]))
            .unwrap();
        assert!(r.is_success());
        assert_eq!(c.apdu_count(), 1);
        let t = c.into_inner();
        assert_eq!(t.transactions(), (1, 1));
        t.finish().unwrap();
    }

    #[test]
    fn get_response_loop_concatenates() {
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect_hex("00 B0 00 00 00", "AA 61 02")
                .expect_hex("00 C0 00 00 02", "BB CC 61 00")
                .expect_hex("00 C0 00 00 00", "DD 90 00"),
        );
        let r = c
            .transmit(&Command::new(0, 0xB0, 0, 0).with_le(256))
            .unwrap();
        assert_eq!(r.data(), [0xAA, 0xBB, 0xCC, 0xDD]);
        assert!(r.is_success());
        assert_eq!(c.apdu_count(), 3);
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn get_response_loop_is_bounded() {
        let mut s = ScriptedTransport::new([0x3B]).expect_hex("00 CA 00 00 01", "6101");
        for _ in 0..3 {
            s = s.expect_hex("00 C0 00 00 01", "01 6101");
        }
        let mut c = Card::with_options(
            s,
            CardOptions {
                max_get_response: 3,
                ..CardOptions::default()
            },
        );
        let e = c
            .transmit(&Command::new(0, 0xCA, 0, 0).with_le(1))
            .unwrap_err();
        assert!(matches!(e, Error::TooManyGetResponse { limit: 3 }), "{e}");
        let t = c.into_inner();
        assert_eq!(t.transactions(), (1, 1), "transaction ended on error");
        t.finish().unwrap();
    }

    #[test]
    fn wrong_le_resent_once_only() {
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect_hex("00 CA 00 00 10", "6C 08")
                .expect_hex("00 CA 00 00 08", "6C 04"),
        );
        let r = c
            .transmit(&Command::new(0, 0xCA, 0, 0).with_le(16))
            .unwrap();
        assert_eq!(r.status(), StatusWord::new(0x6C, 0x04));
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn wrong_le_never_resends_a_secret() {
        // VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER answered 6Cxx: the status goes
        // back to the caller and the PIN is not sent again (the script fails on a second send).
        for ins in [0x20, 0x24, 0x2C] {
            let cmd = Command::new(0, ins, 0, 0x10).with_data(*b"12345\xFF\xFF\xFF");
            let mut c =
                card(ScriptedTransport::new([0x3B]).expect(cmd.encode().unwrap(), [0x6C, 0x08]));
            let r = c.transmit(&cmd).unwrap();
            assert_eq!(r.status(), StatusWord::new(0x6C, 0x08));
            assert_eq!(c.apdu_count(), 1);
            c.into_inner().finish().unwrap();
        }
        // With Le too (case 4): still sent once.
        let cmd = Command::new(0, 0x20, 0, 0x10)
            .with_data(*b"12345678")
            .with_le(4);
        let mut c =
            card(ScriptedTransport::new([0x3B]).expect(cmd.encode().unwrap(), [0x6C, 0x02]));
        assert_eq!(
            c.transmit(&cmd).unwrap().status(),
            StatusWord::new(0x6C, 0x02)
        );
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn wrong_le_then_get_response() {
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect_hex("80 CA 00 00 10", "6C 03")
                .expect_hex("80 CA 00 00 03", "01 61 02")
                .expect_hex("00 C0 00 00 02", "02 03 90 00"),
        );
        let r = c
            .transmit(&Command::new(0x80, 0xCA, 0, 0).with_le(16))
            .unwrap();
        assert_eq!(r.data(), [1, 2, 3]);
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn get_response_keeps_logical_channel() {
        assert_eq!(get_response_cla(0x01), 0x01);
        assert_eq!(get_response_cla(0x1C), 0x00);
        assert_eq!(get_response_cla(0x45), 0x45);
        assert_eq!(get_response_cla(0x80), 0x00);
    }

    #[test]
    fn chaining_without_extended_length() {
        let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let mut p1 = vec![0x10, 0x2A, 0x80, 0x86, 0xFF];
        p1.extend_from_slice(&data[..255]);
        let mut p2 = vec![0x10, 0x2A, 0x80, 0x86, 0xFF];
        p2.extend_from_slice(&data[255..510]);
        let mut p3 = vec![0x00, 0x2A, 0x80, 0x86, 90];
        p3.extend_from_slice(&data[510..]);
        p3.push(0x00); // Le 300 lowered to 256
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect(p1, [0x90, 0x00])
                .expect(p2, [0x90, 0x00])
                .expect(p3, [0xAB, 0x90, 0x00]),
        );
        let r = c
            .transmit(
                &Command::new(0, 0x2A, 0x80, 0x86)
                    .with_data(data.clone())
                    .with_le(300),
            )
            .unwrap();
        assert_eq!(r.data(), [0xAB]);
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn chaining_stops_on_error() {
        let data = vec![0x55; 300];
        let mut p1 = vec![0x10, 0xDA, 0x00, 0x00, 0xFF];
        p1.extend_from_slice(&data[..255]);
        let mut c = card(ScriptedTransport::new([0x3B]).expect(p1, [0x68, 0x84]));
        let r = c
            .transmit(&Command::new(0, 0xDA, 0, 0).with_data(data))
            .unwrap();
        assert_eq!(r.status(), StatusWord::CHAINING_NOT_SUPPORTED);
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn extended_length_when_card_supports_it() {
        let data = vec![0x11; 300];
        let cmd = Command::new(0, 0xDA, 0, 0).with_data(data);
        let mut c = Card::with_options(
            ScriptedTransport::new([0x3B]).expect(cmd.encode().unwrap(), [0x90, 0x00]),
            CardOptions {
                extended_length: true,
                ..CardOptions::default()
            },
        );
        assert!(c.transmit(&cmd).unwrap().is_success());
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn read_binary_all_until_end_of_file() {
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect_hex("00 B0 00 00 FF", &format!("{} 9000", "01".repeat(255)))
                .expect_hex("00 B0 00 FF FF", "02 03 6282"),
        );
        let d = c.read_binary_all(None).unwrap();
        assert_eq!(d.len(), 257);
        assert_eq!(&d[255..], [2, 3]);
        let t = c.into_inner();
        assert_eq!(t.transactions(), (1, 1));
        t.finish().unwrap();
    }

    #[test]
    fn read_binary_all_until_wrong_p1p2() {
        let mut c = Card::with_options(
            ScriptedTransport::new([0x3B])
                .expect_hex("00 B0 00 00 04", "01 02 03 04 9000")
                .expect_hex("00 B0 00 04 04", "05 9000")
                .expect_hex("00 B0 00 05 04", "6B00"),
            CardOptions {
                max_read_chunk: 4,
                ..CardOptions::default()
            },
        );
        assert_eq!(c.read_binary_all(None).unwrap(), [1, 2, 3, 4, 5]);
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn read_binary_all_known_length() {
        let mut c = Card::with_options(
            ScriptedTransport::new([0x3B])
                .expect_hex("00 B0 00 00 04", "01 02 03 04 9000")
                .expect_hex("00 B0 00 04 02", "05 06 9000"),
            CardOptions {
                max_read_chunk: 4,
                ..CardOptions::default()
            },
        );
        assert_eq!(c.read_binary_all(Some(6)).unwrap(), [1, 2, 3, 4, 5, 6]);
        c.into_inner().finish().unwrap();
    }

    #[test]
    fn read_binary_all_status_and_bad_answers() {
        let mut c = card(ScriptedTransport::new([0x3B]).expect_hex("00 B0 00 00 FF", "6982"));
        assert!(matches!(
            c.read_binary_all(None),
            Err(Error::Status(StatusWord::SECURITY_STATUS_NOT_SATISFIED))
        ));
        let mut c = card(ScriptedTransport::new([0x3B]).expect_hex("00 B0 00 00 01", "0102 9000"));
        assert!(matches!(
            c.read_binary_all(Some(1)),
            Err(Error::BadResponse { .. })
        ));
        let mut c = card(ScriptedTransport::new([0x3B]).expect_hex("00 B0 00 00 01", "90"));
        assert!(matches!(
            c.read_binary_all(Some(1)),
            Err(Error::BadResponse { .. })
        ));
    }

    #[test]
    fn nested_transactions_join() {
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect_hex("00 A4 00 00", "9000")
                .expect_hex("00 A4 00 00", "9000"),
        );
        c.transaction(|c| {
            c.transmit(&Command::new(0, 0xA4, 0, 0))?;
            c.transmit(&Command::new(0, 0xA4, 0, 0))
        })
        .unwrap();
        assert_eq!(c.into_inner().transactions(), (1, 1));
    }

    #[test]
    fn reset_and_removed_pass_through() {
        let mut c = card(
            ScriptedTransport::new([0x3B])
                .expect_reset([0, 0xA4, 0, 0])
                .expect_removed([0, 0xA4, 0, 0]),
        );
        let cmd = Command::new(0, 0xA4, 0, 0);
        assert!(matches!(c.transmit(&cmd), Err(Error::CardReset)));
        c.reconnect().unwrap();
        assert!(matches!(c.transmit(&cmd), Err(Error::CardRemoved)));
        let t = c.into_inner();
        assert_eq!(t.reconnects(), 1);
        assert_eq!(t.transactions(), (2, 2));
    }
}
