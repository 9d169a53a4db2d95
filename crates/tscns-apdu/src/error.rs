//! The one error type of this crate.

use crate::StatusWord;

/// Everything that can go wrong between a program and a card.
///
/// Messages are written for the person at the keyboard: they say what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command data field is longer than the chosen length form allows.
    #[error(
        "command data of {len} bytes is too long: at most {max} bytes fit in this length form"
    )]
    DataTooLong {
        /// Length of the data field.
        len: usize,
        /// Largest length allowed (255 short, 65535 extended).
        max: usize,
    },
    /// The expected response length Le is outside 1..=max.
    #[error("expected response length Le = {le} is out of range: it must be 1 to {max}")]
    LeOutOfRange {
        /// The requested Le.
        le: usize,
        /// Largest Le allowed (256 short, 65536 extended).
        max: usize,
    },
    /// Bytes that should be an APDU have an impossible shape.
    #[error("malformed APDU: {reason}")]
    Malformed {
        /// What is wrong with the bytes.
        reason: String,
    },
    /// Another application reset the card: the selected file and a verified PIN are lost.
    #[error(
        "the card was reset by another application: reconnect and select the application again \
         (a PIN verified before is no longer verified)"
    )]
    CardReset,
    /// The card left the reader (or stopped answering) during the session.
    #[error("the card was removed from the reader: insert it again and retry")]
    CardRemoved,
    /// The PC/SC service is not reachable.
    #[error("pcscd is not running: start its service, or run `pcscd -f &` as root")]
    NoService,
    /// PC/SC knows no reader at all.
    #[error("no smart-card reader found: connect a reader (or load the vpcd driver) and retry")]
    NoReader,
    /// A reader was named that PC/SC does not know.
    #[error("reader {name:?} not found: `tscns readers` lists the readers PC/SC knows")]
    ReaderNotFound {
        /// The name asked for.
        name: String,
    },
    /// No card in the reader (or in any reader).
    #[error("{}", match reader {
        Some(r) => format!("no card in reader {r:?}: insert the card and retry"),
        None => "no card in any reader: insert the card and retry".to_owned(),
    })]
    NoCard {
        /// The reader looked at, if one was named.
        reader: Option<String>,
    },
    /// Another application holds the card exclusively.
    #[error("the card is in use by another application: close it and retry")]
    CardInUse,
    /// The card is mute or speaks an unsupported protocol.
    #[error("the card does not answer (mute or unsupported protocol): reinsert it and retry")]
    CardUnresponsive,
    /// A PC/SC operation timed out.
    #[error("the smart-card operation timed out: check the reader and retry")]
    Timeout,
    /// The card answered with a status word the operation cannot go on from.
    #[error("the card refused the command: {0}")]
    Status(StatusWord),
    /// The card kept answering 61xx for more GET RESPONSE rounds than allowed.
    #[error("the card asked for more than {limit} GET RESPONSE rounds: its answer looks broken")]
    TooManyGetResponse {
        /// The bound that was reached (`CardOptions::max_get_response`).
        limit: usize,
    },
    /// The card answered something that breaks the protocol (e.g. more bytes than asked for).
    #[error("the card answered something invalid: {reason}")]
    BadResponse {
        /// What is wrong with the answer.
        reason: String,
    },
    /// The operation is not supported by this transport or card.
    #[error("not supported: {what}")]
    NotSupported {
        /// What was asked for.
        what: String,
    },
    /// The scripted test transport got a command it did not expect.
    #[error("scripted transport: unexpected command {got} (expected {expected})")]
    Unexpected {
        /// The command expected next (hex, secrets redacted), or "nothing" at the end of the script.
        expected: String,
        /// The command received (hex, secrets redacted).
        got: String,
    },
    /// The scripted test transport still had entries when the test finished.
    #[error("scripted transport: {remaining} expected command(s) were never sent, next: {next}")]
    ScriptNotFinished {
        /// Entries left.
        remaining: usize,
        /// The next expected command (hex, secrets redacted).
        next: String,
    },
    /// A transport failed for a reason of its own (I/O error, simulator fault, ...).
    #[error("card transport failed: {reason}")]
    Transport {
        /// What went wrong.
        reason: String,
    },
    /// A PC/SC error without a more specific variant.
    #[error("PC/SC error: {message}")]
    Pcsc {
        /// pcsc-lite's description of the error.
        message: String,
    },
}

impl Error {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Error::Malformed {
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_response(reason: impl Into<String>) -> Self {
        Error::BadResponse {
            reason: reason.into(),
        }
    }
}
