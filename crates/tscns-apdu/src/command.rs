//! Command APDUs: encoding and strict decoding (ISO/IEC 7816-4:2020 §5.1 and §5.2).

use std::fmt;

use zeroize::Zeroizing;

use crate::Error;

/// Largest data field in short form (Lc is one byte, 1..=255; ISO 7816-4 §5.1).
pub const MAX_SHORT_DATA: usize = 255;
/// Largest data field in extended form (Lc is two bytes, 1..=65535; ISO 7816-4 §5.1).
pub const MAX_EXTENDED_DATA: usize = 65535;
/// Largest Le in short form (Le byte 00 means 256; ISO 7816-4 §5.1).
pub const MAX_SHORT_LE: usize = 256;
/// Largest Le in extended form (Le 0000 means 65536; ISO 7816-4 §5.1).
pub const MAX_EXTENDED_LE: usize = 65536;

/// INS VERIFY (ISO 7816-4 §11.5.6): data is a PIN.
pub const INS_VERIFY: u8 = 0x20;
/// INS CHANGE REFERENCE DATA (ISO 7816-4 §11.5.7): data holds old and new PIN.
pub const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
/// INS RESET RETRY COUNTER (ISO 7816-4 §11.5.10): data holds PUK and new PIN.
pub const INS_RESET_RETRY_COUNTER: u8 = 0x2C;
/// INS GET RESPONSE (ISO 7816-4 §11.6.1).
pub const INS_GET_RESPONSE: u8 = 0xC0;
/// INS READ BINARY with an offset in P1-P2 (ISO 7816-4 §11.3.3).
pub const INS_READ_BINARY: u8 = 0xB0;
/// CLA bit telling the card that more commands of the chain follow (ISO 7816-4 §5.4.1, b5).
pub const CLA_CHAINING: u8 = 0x10;

/// Whether a command is encoded with short or extended length fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum LengthForm {
    /// Short when data and Le fit (data <= 255, Le <= 256), extended otherwise.
    #[default]
    Auto,
    /// Always short: encoding fails if data or Le do not fit.
    Short,
    /// Always extended (for case 1, which has no length fields, this changes nothing).
    Extended,
}

/// A command APDU: `CLA INS P1 P2 [Lc data] [Le]`.
///
/// `le` is the number of expected response bytes, 1..=65536 (the Le byte 00 in short form means 256;
/// 0000 in extended form means 65536). The data field is wiped from memory when the command is
/// dropped, and the data of VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER never appears in
/// `Debug` or `Display`.
///
/// Two commands are equal when they have the same header, data, Le and actual length form
/// ([`Command::is_extended`]): a command forced [`LengthForm::Short`] equals the same command with
/// [`LengthForm::Auto`], since both encode to the same bytes.
///
/// ```
/// use tscns_apdu::Command;
/// // SELECT by file id 3F00, expecting up to 256 bytes back.
/// let select = Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]).with_le(256);
/// assert_eq!(select.encode()?, [0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00, 0x00]);
/// assert_eq!(Command::decode(&select.encode()?)?, select);
/// # Ok::<(), tscns_apdu::Error>(())
/// ```
#[derive(Clone, Eq)]
pub struct Command {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Zeroizing<Vec<u8>>,
    le: Option<usize>,
    form: LengthForm,
}

impl Command {
    /// A case 1 command (no data, no response data expected).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Zeroizing::new(Vec::new()),
            le: None,
            form: LengthForm::Auto,
        }
    }

    /// Sets the data field (case 3, or case 4 together with [`Command::with_le`]). Empty data means
    /// no data field.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }

    /// Sets Le, the number of response bytes expected, 1..=65536 (case 2, or case 4 with data).
    /// Out-of-range values make [`Command::encode`] fail with [`Error::LeOutOfRange`].
    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Removes Le (the command expects no response data).
    pub fn without_le(mut self) -> Self {
        self.le = None;
        self
    }

    /// Forces short or extended length fields (default [`LengthForm::Auto`]).
    pub fn with_length_form(mut self, form: LengthForm) -> Self {
        self.form = form;
        self
    }

    /// Replaces CLA (e.g. to set the chaining bit or a logical channel).
    pub fn with_cla(mut self, cla: u8) -> Self {
        self.cla = cla;
        self
    }

    /// Class byte.
    pub fn cla(&self) -> u8 {
        self.cla
    }

    /// Instruction byte.
    pub fn ins(&self) -> u8 {
        self.ins
    }

    /// Parameter P1.
    pub fn p1(&self) -> u8 {
        self.p1
    }

    /// Parameter P2.
    pub fn p2(&self) -> u8 {
        self.p2
    }

    /// The data field (empty for cases 1 and 2).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Le, the number of response bytes expected, if any.
    pub fn le(&self) -> Option<usize> {
        self.le
    }

    /// The length form asked for.
    pub fn length_form(&self) -> LengthForm {
        self.form
    }

    /// The ISO case: 1 (no data, no Le), 2 (Le), 3 (data), 4 (data and Le).
    pub fn case(&self) -> u8 {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => 1,
            (true, true) => 2,
            (false, false) => 3,
            (false, true) => 4,
        }
    }

    /// Whether the data field carries a secret (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER,
    /// even or odd INS), so that traces and `Debug` hide it.
    pub fn is_secret_bearing(&self) -> bool {
        is_secret_ins(self.ins)
    }

    /// Whether [`Command::encode`] uses extended length fields. Case 1 commands have no length
    /// fields and are never extended.
    pub fn is_extended(&self) -> bool {
        if self.case() == 1 {
            return false;
        }
        match self.form {
            LengthForm::Short => false,
            LengthForm::Extended => true,
            LengthForm::Auto => {
                self.data.len() > MAX_SHORT_DATA || self.le.is_some_and(|le| le > MAX_SHORT_LE)
            }
        }
    }

    /// Checks the limits and returns the encoded length.
    pub fn encoded_len(&self) -> Result<usize, Error> {
        let ext = self.is_extended();
        let (max_data, max_le) = if ext {
            (MAX_EXTENDED_DATA, MAX_EXTENDED_LE)
        } else {
            (MAX_SHORT_DATA, MAX_SHORT_LE)
        };
        if self.data.len() > max_data {
            return Err(Error::DataTooLong {
                len: self.data.len(),
                max: max_data,
            });
        }
        if let Some(le) = self.le {
            if le == 0 || le > max_le {
                return Err(Error::LeOutOfRange { le, max: max_le });
            }
        }
        let lc_len = match (self.data.is_empty(), ext) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 3,
        };
        let le_len = match (self.le.is_some(), ext, self.data.is_empty()) {
            (false, _, _) => 0,
            (true, false, _) => 1,
            // Case 2E: 00 Le1 Le2; case 4E: Le1 Le2 after the data (the 00 came with Lc).
            (true, true, true) => 3,
            (true, true, false) => 2,
        };
        Ok(4 + lc_len + self.data.len() + le_len)
    }

    /// Encodes the command (limits checked: data <= 65535 bytes, Le 1..=65536). The returned
    /// `Vec` is not wiped on drop: for a secret-bearing command, encode into a
    /// `Zeroizing<Vec<u8>>` with [`Command::encode_into`] as [`crate::Card`] does.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded command to `out`, allocating at most once. On error `out` is unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.encoded_len()?;
        out.reserve(len);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let ext = self.is_extended();
        if !self.data.is_empty() {
            // Lc: 1..=255 short, or 00 followed by 2 bytes extended (ISO 7816-4 §5.1).
            if ext {
                out.push(0x00);
                out.extend_from_slice(&len16(self.data.len()));
            } else {
                out.push(len8(self.data.len()));
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            if ext {
                if self.data.is_empty() {
                    out.push(0x00);
                }
                out.extend_from_slice(&len16(le));
            } else {
                out.push(len8(le));
            }
        }
        Ok(())
    }

    /// Decodes a command APDU, strictly: every shape ISO 7816-4 §5.1 does not allow is an error
    /// (never a panic). `decode(bytes)?.encode()? == bytes` for every accepted input.
    pub fn decode(bytes: &[u8]) -> Result<Command, Error> {
        let (header, body) = match bytes.split_first_chunk::<4>() {
            Some(x) => x,
            None => {
                return Err(Error::malformed(format!(
                    "{} bytes is shorter than the 4-byte header",
                    bytes.len()
                )))
            }
        };
        let [cla, ins, p1, p2] = *header;
        let mut cmd = Command::new(cla, ins, p1, p2);
        let extended;
        match body {
            // Case 1.
            [] => return Ok(cmd),
            // Case 2S.
            [le] => {
                extended = false;
                cmd.le = Some(le_or_max(usize::from(*le), MAX_SHORT_LE));
            }
            // Short Lc (1..=255): case 3S or 4S.
            [lc, rest @ ..] if *lc != 0 => {
                extended = false;
                let lc = usize::from(*lc);
                if rest.len() == lc {
                    cmd.data = Zeroizing::new(rest.to_vec());
                } else if rest.len() == lc + 1 {
                    cmd.data = Zeroizing::new(rest[..lc].to_vec());
                    cmd.le = Some(le_or_max(usize::from(rest[lc]), MAX_SHORT_LE));
                } else {
                    return Err(Error::malformed(format!(
                        "short Lc says {lc} data bytes but {} bytes follow it",
                        rest.len()
                    )));
                }
            }
            // Case 2E: 00 Le1 Le2.
            [0, a, b] => {
                extended = true;
                cmd.le = Some(le_or_max(
                    usize::from(u16::from_be_bytes([*a, *b])),
                    MAX_EXTENDED_LE,
                ));
            }
            // Extended Lc: 00 Lc1 Lc2 data [Le1 Le2].
            [0, a, b, rest @ ..] => {
                extended = true;
                let lc = usize::from(u16::from_be_bytes([*a, *b]));
                if lc == 0 {
                    return Err(Error::malformed("extended Lc of 0 followed by more bytes"));
                }
                if rest.len() == lc {
                    cmd.data = Zeroizing::new(rest.to_vec());
                } else if rest.len() == lc + 2 {
                    cmd.data = Zeroizing::new(rest[..lc].to_vec());
                    let le = u16::from_be_bytes([rest[lc], rest[lc + 1]]);
                    cmd.le = Some(le_or_max(usize::from(le), MAX_EXTENDED_LE));
                } else {
                    return Err(Error::malformed(format!(
                        "extended Lc says {lc} data bytes but {} bytes follow it",
                        rest.len()
                    )));
                }
            }
            // 00 x: neither a short Le nor an extended field.
            _ => {
                return Err(Error::malformed(format!(
                    "body of {} bytes starting with 00 is neither short nor extended",
                    body.len()
                )))
            }
        }
        if extended && !cmd.is_extended() {
            // Extended although short would fit: keep the form so encode gives the same bytes.
            cmd.form = LengthForm::Extended;
        }
        Ok(cmd)
    }
}

/// Le 0 on the wire stands for the maximum (ISO 7816-4 §5.1).
fn le_or_max(v: usize, max: usize) -> usize {
    if v == 0 {
        max
    } else {
        v
    }
}

/// One length byte; 256 encodes as 00. Callers have checked `v <= 256`.
fn len8(v: usize) -> u8 {
    (v & 0xFF) as u8
}

/// Two length bytes, big endian; 65536 encodes as 0000. Callers have checked `v <= 65536`.
fn len16(v: usize) -> [u8; 2] {
    ((v & 0xFFFF) as u16).to_be_bytes()
}

/// Whether a raw C-APDU presents a PIN or PUK to the card: VERIFY, CHANGE REFERENCE DATA or
/// RESET RETRY COUNTER (ISO 7816-4 §11.5.6, §11.5.7, §11.5.10), even or odd INS (20/21, 24/25,
/// 2C/2D: the odd ones carry the secret in BER-TLV), with a data field, so that the card
/// may be left with the secret verified. A header with at most Le (VERIFY without data asks for
/// the tries left) does not. Transports use this to reset the card when they let go of it.
pub fn presents_secret(raw: &[u8]) -> bool {
    match raw {
        [_, ins, _, _, _, _, ..] => is_secret_ins(*ins),
        _ => false,
    }
}

pub(crate) fn is_secret_ins(ins: u8) -> bool {
    // The odd INS of each (21, 25, 2D) is the BER-TLV form of the same command (ISO 7816-4 §5.1.2).
    matches!(
        ins & !1,
        INS_VERIFY | INS_CHANGE_REFERENCE_DATA | INS_RESET_RETRY_COUNTER
    )
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.cla == other.cla
            && self.ins == other.ins
            && self.p1 == other.p1
            && self.p2 == other.p2
            && *self.data == *other.data
            && self.le == other.le
            && self.is_extended() == other.is_extended()
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Command");
        d.field("cla", &format_args!("{:02X}", self.cla))
            .field("ins", &format_args!("{:02X}", self.ins))
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2));
        if self.is_secret_bearing() && !self.data.is_empty() {
            d.field(
                "data",
                &format_args!("<redacted {} bytes>", self.data.len()),
            );
        } else {
            d.field("data", &format_args!("{}", Hex(&self.data)));
        }
        d.field("le", &self.le).field("form", &self.form).finish()
    }
}

/// Shows the command as spaced hex, `00 A4 04 00 | 3F 00 | Le 256`; the data of VERIFY,
/// CHANGE REFERENCE DATA and RESET RETRY COUNTER is shown as `<redacted N bytes>`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )?;
        if !self.data.is_empty() {
            if self.is_secret_bearing() {
                write!(f, " | <redacted {} bytes>", self.data.len())?;
            } else {
                write!(f, " | {}", Hex(&self.data))?;
            }
        }
        if let Some(le) = self.le {
            write!(f, " | Le {le}")?;
        }
        if self.is_extended() {
            f.write_str(" (extended)")?;
        }
        Ok(())
    }
}

/// Spaced uppercase hex of a byte slice.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// Describes raw command bytes for error messages and traces, hiding secret data: decodable
/// commands go through [`Command`]'s `Display`; undecodable bytes of a secret-bearing INS are
/// shown as header only.
pub(crate) fn describe_raw(raw: &[u8]) -> String {
    match Command::decode(raw) {
        Ok(c) => c.to_string(),
        Err(_) => match raw.get(1) {
            Some(ins) if is_secret_ins(*ins) => format!(
                "{} | <redacted {} bytes>",
                Hex(&raw[..raw.len().min(4)]),
                raw.len().saturating_sub(4)
            ),
            _ => Hex(raw).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(cla: u8, ins: u8) -> Command {
        Command::new(cla, ins, 0x01, 0x02)
    }

    #[test]
    fn encode_all_cases_short() {
        assert_eq!(c(0, 0xA4).encode().unwrap(), [0, 0xA4, 1, 2]);
        assert_eq!(
            c(0, 0xB0).with_le(256).encode().unwrap(),
            [0, 0xB0, 1, 2, 0]
        );
        assert_eq!(c(0, 0xB0).with_le(5).encode().unwrap(), [0, 0xB0, 1, 2, 5]);
        assert_eq!(
            c(0, 0xD6).with_data([9, 8]).encode().unwrap(),
            [0, 0xD6, 1, 2, 2, 9, 8]
        );
        assert_eq!(
            c(0, 0xA4).with_data([9, 8]).with_le(255).encode().unwrap(),
            [0, 0xA4, 1, 2, 2, 9, 8, 0xFF]
        );
    }

    #[test]
    fn encode_all_cases_extended() {
        let e = LengthForm::Extended;
        assert_eq!(
            c(0, 0xA4).with_length_form(e).encode().unwrap(),
            [0, 0xA4, 1, 2]
        );
        assert_eq!(
            c(0, 0xB0).with_le(65536).encode().unwrap(),
            [0, 0xB0, 1, 2, 0, 0, 0]
        );
        assert_eq!(
            c(0, 0xB0).with_le(5).with_length_form(e).encode().unwrap(),
            [0, 0xB0, 1, 2, 0, 0, 5]
        );
        assert_eq!(
            c(0, 0xD6)
                .with_data([9])
                .with_length_form(e)
                .encode()
                .unwrap(),
            [0, 0xD6, 1, 2, 0, 0, 1, 9]
        );
        assert_eq!(
            c(0, 0x2A).with_data([9]).with_le(257).encode().unwrap(),
            [0, 0x2A, 1, 2, 0, 0, 1, 9, 1, 1]
        );
        let big = c(0, 0xD6).with_data(vec![7; 300]);
        assert!(big.is_extended());
        let enc = big.encode().unwrap();
        assert_eq!(&enc[..7], [0, 0xD6, 1, 2, 0, 0x01, 0x2C]);
        assert_eq!(enc.len(), 307);
    }

    #[test]
    fn limits_are_typed_errors() {
        assert!(matches!(
            c(0, 0xD6).with_data(vec![0; 65536]).encode(),
            Err(Error::DataTooLong {
                len: 65536,
                max: 65535
            })
        ));
        assert!(matches!(
            c(0, 0xD6)
                .with_data(vec![0; 256])
                .with_length_form(LengthForm::Short)
                .encode(),
            Err(Error::DataTooLong { len: 256, max: 255 })
        ));
        assert!(matches!(
            c(0, 0xB0).with_le(65537).encode(),
            Err(Error::LeOutOfRange {
                le: 65537,
                max: 65536
            })
        ));
        assert!(matches!(
            c(0, 0xB0).with_le(0).encode(),
            Err(Error::LeOutOfRange { le: 0, .. })
        ));
        assert!(matches!(
            c(0, 0xB0)
                .with_le(257)
                .with_length_form(LengthForm::Short)
                .encode(),
            Err(Error::LeOutOfRange { le: 257, max: 256 })
        ));
        let mut out = vec![1, 2];
        assert!(c(0, 0xB0).with_le(0).encode_into(&mut out).is_err());
        assert_eq!(out, [1, 2]);
        c(0, 0xB0).with_le(1).encode_into(&mut out).unwrap();
        assert_eq!(out, [1, 2, 0, 0xB0, 1, 2, 1]);
    }

    #[test]
    fn decode_rejects_malformed_shapes() {
        let bad: &[&[u8]] = &[
            &[],
            &[0],
            &[0, 0xA4, 0],
            &[0, 0xA4, 0, 0, 0, 0],          // 00 x: neither form
            &[0, 0xA4, 0, 0, 2, 1],          // Lc 2, one byte
            &[0, 0xA4, 0, 0, 2, 1, 2, 3, 4], // Lc 2, four bytes
            &[0, 0xA4, 0, 0, 0, 0, 0, 1],    // extended Lc 0 then data
            &[0, 0xA4, 0, 0, 0, 0, 2, 1],    // extended Lc 2, one byte
            &[0, 0xA4, 0, 0, 0, 0, 1, 1, 2], // extended Lc 1, Le of one byte
        ];
        for b in bad {
            assert!(
                matches!(Command::decode(b), Err(Error::Malformed { .. })),
                "{b:02X?}"
            );
        }
    }

    #[test]
    fn decode_forms() {
        let x = Command::decode(&[0, 0xB0, 0, 0, 0, 0, 5]).unwrap();
        assert!(x.is_extended());
        assert_eq!(x.le(), Some(5));
        assert_eq!(x.length_form(), LengthForm::Extended);
        let y = Command::decode(&[0, 0xB0, 0, 0, 0]).unwrap();
        assert!(!y.is_extended());
        assert_eq!(y.le(), Some(256));
        assert_eq!(y.case(), 2);
    }

    #[test]
    fn short_forced_equals_auto() {
        let a = c(0, 0xB0).with_le(10);
        assert_eq!(a.clone().with_length_form(LengthForm::Short), a);
        assert_ne!(a.clone().with_length_form(LengthForm::Extended), a);
    }

    #[test]
    fn secrets_hidden_in_debug_and_display() {
        let v = Command::new(0, INS_VERIFY, 0, 0x10).with_data(*b"12345678");
        let dbg = format!("{v:?}");
        let disp = v.to_string();
        assert!(!dbg.contains("31 32"), "{dbg}");
        assert!(dbg.contains("<redacted 8 bytes>"));
        assert_eq!(disp, "00 20 00 10 | <redacted 8 bytes>");
        let raw = v.encode().unwrap();
        assert_eq!(describe_raw(&raw), "00 20 00 10 | <redacted 8 bytes>");
        assert_eq!(describe_raw(&raw[..7]), "00 20 00 10 | <redacted 3 bytes>");
        let s = Command::new(0, 0xA4, 0, 0)
            .with_data([0x3F, 0])
            .with_le(256);
        assert_eq!(s.to_string(), "00 A4 00 00 | 3F 00 | Le 256");
    }

    #[test]
    fn odd_ins_forms_present_secrets_too() {
        // Before: only 20, 24 and 2C counted, so a VERIFY in its BER-TLV form (21) left the
        // card verified at close and showed the PIN in traces.
        for ins in [0x20, 0x21, 0x24, 0x25, 0x2C, 0x2D] {
            let raw = Command::new(0, ins, 0, 0x10)
                .with_data(*b"\x80\x0812345678")
                .encode()
                .unwrap();
            assert!(presents_secret(&raw), "{ins:02X}");
            assert!(!describe_raw(&raw).contains("31 32"), "{ins:02X}");
            // Without data (tries left) it presents nothing.
            assert!(!presents_secret(&[0, ins, 0, 0x10]), "{ins:02X}");
        }
        for ins in [0x22, 0x23, 0x2A, 0x2B, 0x26, 0x2E, 0x84, 0xA4] {
            let raw = Command::new(0, ins, 0, 0)
                .with_data(*b"12345678")
                .encode()
                .unwrap();
            assert!(!presents_secret(&raw), "{ins:02X}");
        }
    }
}
