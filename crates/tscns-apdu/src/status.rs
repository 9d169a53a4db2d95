//! ISO 7816-4 status words (SW1 SW2) and what they mean to a person.

use std::fmt;

/// ISO 7816-4 status word: the two bytes SW1 SW2 that end every response APDU.
///
/// The named constants are the words this project meets (ISO/IEC 7816-4:2020 §5.6, tables 5-6).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(u16);

impl StatusWord {
    /// 9000: normal processing, no further qualification.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// 6282: end of file or record reached before reading Le bytes.
    pub const END_OF_FILE: StatusWord = StatusWord(0x6282);
    /// 6700: wrong length (Lc or Le).
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// 6882: secure messaging not supported.
    pub const SECURE_MESSAGING_NOT_SUPPORTED: StatusWord = StatusWord(0x6882);
    /// 6883: last command of the chain expected.
    pub const LAST_COMMAND_OF_CHAIN_EXPECTED: StatusWord = StatusWord(0x6883);
    /// 6884: command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: StatusWord = StatusWord(0x6884);
    /// 6981: command incompatible with file structure.
    pub const INCOMPATIBLE_FILE_STRUCTURE: StatusWord = StatusWord(0x6981);
    /// 6982: security status not satisfied (e.g. the PIN has not been verified).
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// 6983: authentication method blocked (e.g. PIN blocked).
    pub const AUTH_METHOD_BLOCKED: StatusWord = StatusWord(0x6983);
    /// 6984: reference data not usable.
    pub const REFERENCE_DATA_NOT_USABLE: StatusWord = StatusWord(0x6984);
    /// 6985: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    /// 6986: command not allowed (no current EF).
    pub const COMMAND_NOT_ALLOWED: StatusWord = StatusWord(0x6986);
    /// 6A80: incorrect parameters in the command data field.
    pub const INCORRECT_DATA: StatusWord = StatusWord(0x6A80);
    /// 6A81: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    /// 6A82: file or application not found.
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// 6A83: record not found.
    pub const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);
    /// 6A84: not enough memory space in the file.
    pub const NOT_ENOUGH_MEMORY: StatusWord = StatusWord(0x6A84);
    /// 6A86: incorrect parameters P1-P2.
    pub const INCORRECT_P1P2: StatusWord = StatusWord(0x6A86);
    /// 6A88: referenced data or reference data not found.
    pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    /// 6B00: wrong parameters P1-P2 (for READ BINARY: offset beyond the end of the file).
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6B00);
    /// 6D00: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// 6E00: class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// 6F00: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord(0x6F00);

    /// Builds a status word from SW1 and SW2.
    pub const fn new(sw1: u8, sw2: u8) -> Self {
        StatusWord(((sw1 as u16) << 8) | sw2 as u16)
    }

    /// Builds a status word from its 16-bit value (SW1 in the high byte).
    pub const fn from_u16(v: u16) -> Self {
        StatusWord(v)
    }

    /// The 16-bit value (SW1 in the high byte).
    pub const fn to_u16(self) -> u16 {
        self.0
    }

    /// SW1.
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub const fn sw2(self) -> u8 {
        (self.0 & 0xFF) as u8
    }

    /// SW1 and SW2 as they travel on the wire.
    pub const fn to_bytes(self) -> [u8; 2] {
        [self.sw1(), self.sw2()]
    }

    /// Whether this is 9000.
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// For 61xx: how many response bytes the card still holds for GET RESPONSE (xx = 00 means 256
    /// or more, ISO 7816-4 §5.6 table 5).
    pub fn bytes_available(self) -> Option<usize> {
        match self.sw1() {
            0x61 => Some(len_or_256(self.sw2())),
            _ => None,
        }
    }

    /// For 6Cxx: the exact Le the card wants the command re-sent with (xx = 00 means 256).
    pub fn correct_le(self) -> Option<usize> {
        match self.sw1() {
            0x6C => Some(len_or_256(self.sw2())),
            _ => None,
        }
    }

    /// For 63Cx: the number of verification tries left (ISO 7816-4 §5.6 table 6, counter in the low
    /// nibble of SW2).
    pub fn tries_left(self) -> Option<u8> {
        if self.sw1() == 0x63 && self.sw2() & 0xF0 == 0xC0 {
            Some(self.sw2() & 0x0F)
        } else {
            None
        }
    }

    /// What the status word means, as a value to match on.
    pub fn kind(self) -> StatusKind {
        match self {
            Self::SUCCESS => return StatusKind::Success,
            Self::END_OF_FILE => return StatusKind::EndOfFile,
            Self::WRONG_LENGTH => return StatusKind::WrongLength,
            Self::SECURE_MESSAGING_NOT_SUPPORTED => return StatusKind::SecureMessagingNotSupported,
            Self::LAST_COMMAND_OF_CHAIN_EXPECTED => return StatusKind::LastCommandOfChainExpected,
            Self::CHAINING_NOT_SUPPORTED => return StatusKind::ChainingNotSupported,
            Self::INCOMPATIBLE_FILE_STRUCTURE => return StatusKind::IncompatibleFileStructure,
            Self::SECURITY_STATUS_NOT_SATISFIED => return StatusKind::SecurityStatusNotSatisfied,
            Self::AUTH_METHOD_BLOCKED => return StatusKind::AuthMethodBlocked,
            Self::REFERENCE_DATA_NOT_USABLE => return StatusKind::ReferenceDataNotUsable,
            Self::CONDITIONS_NOT_SATISFIED => return StatusKind::ConditionsNotSatisfied,
            Self::COMMAND_NOT_ALLOWED => return StatusKind::CommandNotAllowed,
            Self::INCORRECT_DATA => return StatusKind::IncorrectData,
            Self::FUNCTION_NOT_SUPPORTED => return StatusKind::FunctionNotSupported,
            Self::FILE_NOT_FOUND => return StatusKind::FileNotFound,
            Self::RECORD_NOT_FOUND => return StatusKind::RecordNotFound,
            Self::NOT_ENOUGH_MEMORY => return StatusKind::NotEnoughMemory,
            Self::INCORRECT_P1P2 => return StatusKind::IncorrectP1P2,
            Self::REFERENCED_DATA_NOT_FOUND => return StatusKind::ReferencedDataNotFound,
            Self::WRONG_P1P2 => return StatusKind::WrongP1P2,
            Self::INS_NOT_SUPPORTED => return StatusKind::InsNotSupported,
            Self::CLA_NOT_SUPPORTED => return StatusKind::ClaNotSupported,
            Self::NO_PRECISE_DIAGNOSIS => return StatusKind::NoPreciseDiagnosis,
            _ => {}
        }
        if let Some(n) = self.bytes_available() {
            return StatusKind::BytesAvailable(n);
        }
        if let Some(n) = self.correct_le() {
            return StatusKind::WrongLe(n);
        }
        if let Some(n) = self.tries_left() {
            return StatusKind::VerificationFailed { tries_left: n };
        }
        match self.sw1() {
            0x62 | 0x63 => StatusKind::Warning,
            0x64..=0x66 => StatusKind::ExecutionError,
            _ => StatusKind::Unknown,
        }
    }
}

/// xx = 00 in 61xx / 6Cxx stands for 256 (ISO 7816-4 §5.6 table 5).
fn len_or_256(b: u8) -> usize {
    if b == 0 {
        256
    } else {
        usize::from(b)
    }
}

impl From<u16> for StatusWord {
    fn from(v: u16) -> Self {
        StatusWord(v)
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        sw.0
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

/// Shows `6982 (security status not satisfied: the PIN has not been verified)`.
impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.kind())
    }
}

/// The meaning of a [`StatusWord`], grouped the way a caller decides what to do next.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum StatusKind {
    /// 9000.
    Success,
    /// 61xx: more response bytes are waiting (GET RESPONSE).
    BytesAvailable(usize),
    /// 6Cxx: wrong Le; re-send with this Le.
    WrongLe(usize),
    /// 63Cx: verification failed, this many tries left.
    VerificationFailed {
        /// Tries left before the reference data (PIN) is blocked.
        tries_left: u8,
    },
    /// 6282.
    EndOfFile,
    /// 6700.
    WrongLength,
    /// 6882.
    SecureMessagingNotSupported,
    /// 6883.
    LastCommandOfChainExpected,
    /// 6884.
    ChainingNotSupported,
    /// 6981.
    IncompatibleFileStructure,
    /// 6982.
    SecurityStatusNotSatisfied,
    /// 6983.
    AuthMethodBlocked,
    /// 6984.
    ReferenceDataNotUsable,
    /// 6985.
    ConditionsNotSatisfied,
    /// 6986.
    CommandNotAllowed,
    /// 6A80.
    IncorrectData,
    /// 6A81.
    FunctionNotSupported,
    /// 6A82.
    FileNotFound,
    /// 6A83.
    RecordNotFound,
    /// 6A84.
    NotEnoughMemory,
    /// 6A86.
    IncorrectP1P2,
    /// 6A88.
    ReferencedDataNotFound,
    /// 6B00.
    WrongP1P2,
    /// 6D00.
    InsNotSupported,
    /// 6E00.
    ClaNotSupported,
    /// 6F00.
    NoPreciseDiagnosis,
    /// Another 62xx/63xx warning.
    Warning,
    /// Another 64xx-66xx execution error.
    ExecutionError,
    /// A word this crate does not name.
    Unknown,
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            StatusKind::Success => "success",
            StatusKind::BytesAvailable(n) => return write!(f, "{n} more response bytes available"),
            StatusKind::WrongLe(n) => {
                return write!(f, "wrong expected length: the card has {n} bytes")
            }
            StatusKind::VerificationFailed { tries_left } => {
                return match tries_left {
                    0 => write!(f, "verification failed: no tries left, now blocked"),
                    1 => write!(f, "verification failed: 1 try left"),
                    n => write!(f, "verification failed: {n} tries left"),
                }
            }
            StatusKind::EndOfFile => "end of file reached before the expected length",
            StatusKind::WrongLength => "wrong length",
            StatusKind::SecureMessagingNotSupported => "secure messaging not supported",
            StatusKind::LastCommandOfChainExpected => "last command of the chain expected",
            StatusKind::ChainingNotSupported => "command chaining not supported",
            StatusKind::IncompatibleFileStructure => "command incompatible with the file structure",
            StatusKind::SecurityStatusNotSatisfied => {
                "security status not satisfied: the PIN has not been verified"
            }
            StatusKind::AuthMethodBlocked => "authentication method blocked: the PIN is blocked",
            StatusKind::ReferenceDataNotUsable => "reference data not usable",
            StatusKind::ConditionsNotSatisfied => "conditions of use not satisfied",
            StatusKind::CommandNotAllowed => "command not allowed: no file selected",
            StatusKind::IncorrectData => "incorrect data in the command",
            StatusKind::FunctionNotSupported => "function not supported",
            StatusKind::FileNotFound => "file or application not found",
            StatusKind::RecordNotFound => "record not found",
            StatusKind::NotEnoughMemory => "not enough memory in the file",
            StatusKind::IncorrectP1P2 => "incorrect parameters P1-P2",
            StatusKind::ReferencedDataNotFound => "referenced data not found",
            StatusKind::WrongP1P2 => "wrong parameters P1-P2 (offset beyond the end of the file)",
            StatusKind::InsNotSupported => "instruction not supported",
            StatusKind::ClaNotSupported => "class not supported",
            StatusKind::NoPreciseDiagnosis => "error without precise diagnosis",
            StatusKind::Warning => "warning",
            StatusKind::ExecutionError => "execution error",
            StatusKind::Unknown => "unknown status",
        };
        f.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let sw = StatusWord::new(0x61, 0x10);
        assert_eq!(sw.to_u16(), 0x6110);
        assert_eq!(sw.sw1(), 0x61);
        assert_eq!(sw.sw2(), 0x10);
        assert_eq!(sw.to_bytes(), [0x61, 0x10]);
        assert_eq!(sw.bytes_available(), Some(16));
        assert_eq!(StatusWord::new(0x61, 0).bytes_available(), Some(256));
        assert_eq!(StatusWord::new(0x6C, 0x05).correct_le(), Some(5));
        assert_eq!(StatusWord::new(0x6C, 0).correct_le(), Some(256));
        assert_eq!(StatusWord::new(0x63, 0xC2).tries_left(), Some(2));
        assert_eq!(StatusWord::new(0x63, 0x00).tries_left(), None);
        assert!(StatusWord::SUCCESS.is_success());
        assert!(!StatusWord::END_OF_FILE.is_success());
        assert_eq!(StatusWord::from_u16(0x6A82), StatusWord::FILE_NOT_FOUND);
    }

    #[test]
    fn display_in_words() {
        assert_eq!(StatusWord::SUCCESS.to_string(), "9000 (success)");
        assert_eq!(
            StatusWord::new(0x63, 0xC2).to_string(),
            "63C2 (verification failed: 2 tries left)"
        );
        assert_eq!(
            StatusWord::SECURITY_STATUS_NOT_SATISFIED.to_string(),
            "6982 (security status not satisfied: the PIN has not been verified)"
        );
        assert_eq!(StatusWord::new(0x12, 0x34).kind(), StatusKind::Unknown);
        assert_eq!(format!("{:?}", StatusWord::WRONG_P1P2), "StatusWord(6B00)");
    }

    #[test]
    fn kinds_of_named_words() {
        let named = [
            (StatusWord::END_OF_FILE, StatusKind::EndOfFile),
            (StatusWord::WRONG_LENGTH, StatusKind::WrongLength),
            (
                StatusWord::AUTH_METHOD_BLOCKED,
                StatusKind::AuthMethodBlocked,
            ),
            (
                StatusWord::REFERENCE_DATA_NOT_USABLE,
                StatusKind::ReferenceDataNotUsable,
            ),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                StatusKind::ConditionsNotSatisfied,
            ),
            (StatusWord::FILE_NOT_FOUND, StatusKind::FileNotFound),
            (StatusWord::INCORRECT_P1P2, StatusKind::IncorrectP1P2),
            (StatusWord::WRONG_P1P2, StatusKind::WrongP1P2),
            (StatusWord::INS_NOT_SUPPORTED, StatusKind::InsNotSupported),
            (StatusWord::CLA_NOT_SUPPORTED, StatusKind::ClaNotSupported),
        ];
        for (sw, kind) in named {
            assert_eq!(sw.kind(), kind, "{sw:?}");
        }
        assert_eq!(
            StatusWord::new(0x61, 3).kind(),
            StatusKind::BytesAvailable(3)
        );
        assert_eq!(StatusWord::new(0x6C, 3).kind(), StatusKind::WrongLe(3));
        assert_eq!(StatusWord::new(0x62, 0x83).kind(), StatusKind::Warning);
    }
}
