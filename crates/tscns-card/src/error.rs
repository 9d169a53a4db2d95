//! The one error type of this crate.

use tscns_apdu::StatusWord;

/// What the PIN (or PUK) operation that failed was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// The citizen's PIN.
    Pin,
    /// The PUK that unblocks the PIN.
    Puk,
}

impl SecretKind {
    /// "PIN" or "PUK".
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Pin => "PIN",
            SecretKind::Puk => "PUK",
        }
    }
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn tries(t: &Option<u8>) -> String {
    match t {
        Some(1) => "1 try left".to_owned(),
        Some(n) => format!("{n} tries left"),
        None => "the card does not say how many tries are left".to_owned(),
    }
}

/// Everything that can go wrong talking to a TS-CNS card.
///
/// Messages are written for the citizen at the keyboard: they say what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes of an answer to reset do not follow ISO 7816-3.
    #[error("the card's answer to reset (ATR) is malformed: {reason}")]
    MalformedAtr {
        /// What is wrong.
        reason: String,
    },
    /// The card is not a TS-CNS (recognition by ATR and by probing its files both failed).
    #[error("this card is not a TS-CNS (no CNS marker in its ATR, no known CNS application and no EF_ID_Carta at 3F00/1000/1003): {reason}")]
    NotCns {
        /// What was tried.
        reason: String,
    },
    /// EF_Dati_personali could not be parsed; `field` names the field (or "header").
    #[error("the card's personal data (EF_Dati_personali) is invalid at {field}: {reason}")]
    PersonalData {
        /// The field name as in [`crate::PersonalData`], or "header" / "file".
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// EF_ID_Carta does not hold a valid card id.
    #[error("the card id (EF_ID_Carta) is invalid: {reason}")]
    CardId {
        /// What is wrong.
        reason: String,
    },
    /// The authentication certificate on the card cannot be used.
    #[error("the card's authentication certificate is unusable: {reason}")]
    Certificate {
        /// What is wrong.
        reason: String,
    },
    /// A PIN or PUK typed by the user has the wrong shape; nothing was sent to the card.
    #[error("invalid {kind}: {reason} (nothing was sent to the card)")]
    InvalidSecret {
        /// PIN or PUK.
        kind: SecretKind,
        /// What is wrong.
        reason: &'static str,
    },
    /// The card rejected the PIN or PUK.
    #[error("wrong {kind}: {}", tries(tries_left))]
    WrongSecret {
        /// PIN or PUK.
        kind: SecretKind,
        /// Tries left before the card blocks it, when the card says (63Cx); `None` for 6300.
        tries_left: Option<u8>,
    },
    /// The PIN or PUK is blocked (6983).
    #[error("{}", match kind {
        SecretKind::Pin => "the PIN is blocked: unblock it with the PUK",
        _ => "the PUK is blocked: only the issuing administration can help now",
    })]
    Blocked {
        /// PIN or PUK.
        kind: SecretKind,
    },
    /// The PIN cannot be used (6984 / 6985: not activated, or not usable in this state).
    #[error("the {kind} cannot be used on this card ({sw}): it may not be activated yet; ask the issuer")]
    NotUsable {
        /// PIN or PUK.
        kind: SecretKind,
        /// The card's status word.
        sw: StatusWord,
    },
    /// The PIN callback gave no PIN.
    #[error("PIN entry was cancelled")]
    Cancelled,
    /// The operation needs a verified PIN and there is none.
    #[error("the card wants the PIN before it signs: verify the PIN first")]
    PinRequired,
    /// The card was reset after the PIN was verified: the card forgot it.
    #[error("the card was reset by another application and forgot the verified PIN: enter the PIN again")]
    PinStateLost,
    /// The card left the reader.
    #[error("the card was removed from the reader: insert it again and retry")]
    CardRemoved,
    /// A file the operation needs is not on the card.
    #[error("the card has no {file} file: it may not be a TS-CNS or may be damaged")]
    FileNotFound {
        /// The file's name and path (from the card's generation).
        file: String,
    },
    /// The card answered a status word the operation cannot go on from.
    #[error("the card refused {operation}: {sw}")]
    Status {
        /// What was being done.
        operation: &'static str,
        /// The status word.
        sw: StatusWord,
    },
    /// The digest given for signing has the wrong length for its hash algorithm.
    #[error("a {alg} digest is {expected} bytes, got {got}")]
    DigestLength {
        /// Hash algorithm name.
        alg: &'static str,
        /// Its output length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The RSA key is too small for the requested encoding.
    #[error("a {bits}-bit RSA key is too small for {what}")]
    KeyTooSmall {
        /// Key size in bits.
        bits: usize,
        /// The encoding asked for.
        what: &'static str,
    },
    /// The block given to `sign_raw_block` does not fit the key.
    #[error(
        "a raw RSA block must be exactly {expected} bytes and below the modulus, got {got} bytes"
    )]
    BadBlock {
        /// Modulus size in bytes.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The card returned a signature that does not verify with its own certificate.
    #[error("the card returned a signature that does not verify with its certificate: the card may be faulty")]
    BadSignature,
    /// The operating system's random generator failed (PSS salt).
    #[error("no randomness from the operating system for the PSS salt: {0}")]
    Random(String),
    /// The card refused every signing sequence the driver knows for it; `tried` lists each
    /// sequence with the command refused and the card's status word. No PIN was sent again.
    #[error("the card refused every signing sequence tscns knows for it ({tried}): please report this card with `tscns card report`")]
    SigningUnsupported {
        /// Each path tried, e.g. `cns: MSE RESTORE 6A88; mse-84: MSE SET 6A80`.
        tried: String,
    },
    /// The tries left cannot be asked of this card: nothing public says what it does with a
    /// data-less VERIFY (it might count a wrong PIN), so nothing was sent.
    #[error("the {generation} card is not known to report the PIN tries left safely: nothing was sent (a wrong PIN reports them)")]
    TriesQueryUnconfirmed {
        /// The card generation.
        generation: &'static str,
    },
    /// A transport error (PC/SC, simulator, protocol).
    #[error(transparent)]
    Apdu(tscns_apdu::Error),
}

impl From<tscns_apdu::Error> for Error {
    fn from(e: tscns_apdu::Error) -> Self {
        match e {
            tscns_apdu::Error::CardRemoved => Error::CardRemoved,
            other => Error::Apdu(other),
        }
    }
}

impl Error {
    pub(crate) fn is_reset(&self) -> bool {
        matches!(self, Error::Apdu(tscns_apdu::Error::CardReset))
    }
}
