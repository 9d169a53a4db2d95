//! # tscns-apdu: ISO 7816-4 APDUs over any card link, and a PC/SC backend
//!
//! The transport layer of tscns, with nothing CNS-specific in it:
//!
//! - [`Command`] and [`Response`]: command APDUs of ISO cases 1-4 with short or extended length
//!   chosen automatically (or forced), limits enforced with typed errors, and strict decoding that
//!   rejects every malformed shape (ISO/IEC 7816-4 §5.1).
//! - [`StatusWord`]: SW1 SW2 with names and words a person understands.
//! - [`Transport`]: raw bytes to and from one card, implemented by the PC/SC backend (module `pcsc`,
//!   feature `pcsc`, on by default), by the simulator of crate `tscns-sim`, and by
//!   [`ScriptedTransport`] for unit tests. The PC/SC backend resets the card when a connection
//!   that presented a PIN or PUK ([`presents_secret`]) closes, so no verified PIN outlives it.
//! - [`Card`]: the response loop over any transport: 61xx answered with GET RESPONSE (bounded),
//!   6Cxx re-sent once with the right Le (never a secret-bearing command: a PIN goes to the card
//!   once), command chaining when the card lacks extended length,
//!   whole-file READ BINARY, exclusive transactions, and `tracing` output in which the data of
//!   VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER never appears.
//!
//! ```
//! use tscns_apdu::{Card, Command, ScriptedTransport, StatusWord};
//!
//! // A scripted card: SELECT of 3F00 succeeds, then the file's 3 bytes are read.
//! let transport = ScriptedTransport::new([0x3B, 0x8F, 0x80, 0x01])
//!     .expect_hex("00 A4 00 00 02 3F00", "9000")
//!     .expect_hex("00 B0 00 00 FF", "0A 0B 0C 6282");
//! let mut card = Card::new(transport);
//! card.transaction(|card| {
//!     let select = Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]);
//!     assert_eq!(card.transmit(&select)?.status(), StatusWord::SUCCESS);
//!     assert_eq!(card.read_binary_all(None)?, [0x0A, 0x0B, 0x0C]);
//!     Ok(())
//! })?;
//! card.into_inner().finish()?;
//! # Ok::<(), tscns_apdu::Error>(())
//! ```
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

mod card;
mod command;
mod error;
#[cfg(feature = "pcsc")]
pub mod pcsc;
mod response;
mod scripted;
mod status;
#[cfg(feature = "test-card")]
pub mod testing;
mod transport;
pub mod vpcd;

pub use card::{Card, CardOptions, MAX_READ_BINARY_OFFSET};
pub use command::{
    presents_secret, Command, LengthForm, CLA_CHAINING, INS_CHANGE_REFERENCE_DATA,
    INS_GET_RESPONSE, INS_READ_BINARY, INS_RESET_RETRY_COUNTER, INS_VERIFY, MAX_EXTENDED_DATA,
    MAX_EXTENDED_LE, MAX_SHORT_DATA, MAX_SHORT_LE,
};
pub use error::Error;
pub use response::Response;
pub use scripted::{parse_hex, ScriptedTransport};
pub use status::{StatusKind, StatusWord};
pub use transport::Transport;
