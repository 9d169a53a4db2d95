//! The one error type of this crate.

/// Everything that can go wrong when reading a codice fiscale, a card id or a certificate.
///
/// Messages name exactly what is wrong so that a citizen (or the clerk helping them) can fix the
/// input: the position of a bad character, the check letter that was expected, and so on.
/// Positions in messages are 1-based, as a person counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The codice fiscale does not have 16 characters.
    #[error("codice fiscale: length is {found}, expected 16")]
    CodiceFiscaleLength {
        /// Number of characters found (after trimming surrounding spaces).
        found: usize,
    },
    /// A character of the codice fiscale is not allowed at its position.
    #[error("codice fiscale: character '{character}' at position {position} must be {expected}")]
    CodiceFiscaleCharacter {
        /// The offending character (upper-cased).
        character: char,
        /// 1-based position.
        position: usize,
        /// What is allowed there, in words.
        expected: &'static str,
    },
    /// The month letter (position 9) is not one of the twelve month letters.
    #[error("codice fiscale: month letter '{letter}' at position 9 is not one of A B C D E H L M P R S T")]
    CodiceFiscaleMonth {
        /// The letter found.
        letter: char,
    },
    /// The day of birth (positions 10-11) is out of range.
    #[error("codice fiscale: day {day} out of range ({detail})")]
    CodiceFiscaleDay {
        /// The two-digit day field as written (women have 40 added).
        day: u8,
        /// Why it is out of range.
        detail: &'static str,
    },
    /// The check letter (position 16) does not match the first 15 characters.
    #[error("codice fiscale: check letter should be {expected}, found {found}")]
    CodiceFiscaleCheckLetter {
        /// The check letter computed from the first 15 characters.
        expected: char,
        /// The check letter written in the code.
        found: char,
    },
    /// A codice fiscale cannot be computed from the given data.
    #[error("cannot compute the codice fiscale: {0}")]
    CodiceFiscaleCompute(String),
    /// The card id does not have 16 characters.
    #[error("card id: length is {found}, expected 16 digits")]
    CardIdLength {
        /// Number of characters found.
        found: usize,
    },
    /// The card id contains a character that is not a decimal digit.
    #[error("card id: character '{character}' at position {position} is not a digit")]
    CardIdCharacter {
        /// The offending character.
        character: char,
        /// 1-based position.
        position: usize,
    },
    /// The Luhn check digit of the card id is wrong.
    #[error("card id: check digit should be {expected}, found {found} (Luhn)")]
    CardIdLuhn {
        /// The check digit computed from the first 15 digits.
        expected: char,
        /// The last digit written.
        found: char,
    },
    /// The bytes are not an X.509 certificate (neither DER nor PEM).
    #[error("not an X.509 certificate: {0}")]
    NotACertificate(String),
    /// The certificate subject CN is not `<codice fiscale>/<card id>.<hash>`.
    #[error(
        "certificate CN {cn:?} is not in the CNS form <codice fiscale>/<card id>.<hash>: {reason}"
    )]
    NotCnsIdentity {
        /// The CN found (empty when the subject has none).
        cn: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A trust anchor or intermediate certificate given by the caller cannot be used.
    #[error("trust anchor or intermediate #{index} is unusable: {reason}")]
    BadTrustAnchor {
        /// 0-based index in the list given.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The certificate chain does not verify for client authentication.
    #[error("certificate chain does not verify: {0}")]
    ChainInvalid(String),
    /// The digest given for an EMSA block has the wrong length for its hash algorithm.
    #[error("a {alg} digest is {expected} bytes, got {got}")]
    DigestLength {
        /// Hash algorithm name (`sha1`, `sha256`, ...).
        alg: &'static str,
        /// Its output length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The RSA key is too small for the requested EMSA encoding.
    #[error("a {bits}-bit RSA key is too small for {what}")]
    KeyTooSmall {
        /// Key size in bits.
        bits: usize,
        /// The encoding asked for.
        what: &'static str,
    },
    /// The operating system's random generator failed (PSS salt).
    #[error("no randomness from the operating system for the PSS salt: {0}")]
    Random(String),
}
