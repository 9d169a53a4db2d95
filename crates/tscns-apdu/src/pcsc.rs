//! The PC/SC backend (feature `pcsc`): list readers, connect, exclusive transactions, reset and
//! removal detection, reconnect, and a disconnect that leaves the card as it is.
//!
//! Built on the `pcsc` crate (pcsc-lite on Linux, the system framework on macOS and Windows).
//!
//! # Design
//! pcsc's `Transaction` borrows the connected `Card`, and pcsc-lite wants one context per thread.
//! So a [`PcscTransport`] owns a small worker thread that establishes its own context, connects,
//! and serves requests (transmit, begin/end transaction, reconnect, disconnect) sent over a
//! channel. A transaction is a real `SCardBeginTransaction` held by that thread until
//! [`Transport::end_transaction`]: other applications wait, and nothing here needs `unsafe`.
//! Every wait for the worker is bounded ([`PcscTransport::set_timeout`]).
//!
//! ```no_run
//! use tscns_apdu::pcsc::{list_readers, PcscTransport};
//! use tscns_apdu::{Card, Command};
//! for r in list_readers()? {
//!     println!("{}: card present {}", r.name, r.card_present);
//! }
//! let mut card = Card::new(PcscTransport::connect_first()?);
//! let r = card.transmit(&Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]))?;
//! println!("{}", r.status());
//! # Ok::<(), tscns_apdu::Error>(())
//! ```

use std::ffi::CString;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use ::pcsc as sys;
use zeroize::Zeroizing;

use crate::{Error, Transport};

/// Default bound on one PC/SC operation seen from the caller (a card may compute for long, e.g.
/// an RSA key generation, so this is generous).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A PC/SC reader as [`list_readers`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The reader's name, e.g. `Virtual PCD 00 00`.
    pub name: String,
    /// Whether a card is in the reader.
    pub card_present: bool,
    /// The card's answer to reset, when a card is present and powered.
    pub atr: Option<Vec<u8>>,
}

/// The transmission protocol negotiated with the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// T=0, character oriented (ISO 7816-3 §10).
    T0,
    /// T=1, block oriented (ISO 7816-3 §11).
    T1,
    /// Raw (reader specific).
    Raw,
    /// None reported.
    Unknown,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::T0 => "T=0",
            Protocol::T1 => "T=1",
            Protocol::Raw => "raw",
            Protocol::Unknown => "unknown",
        })
    }
}

/// What happens to the card when a connection ends or is re-established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Disposition {
    /// Leave the card as it is: a verified PIN stays verified (the default).
    #[default]
    LeaveCard,
    /// Warm-reset the card: it forgets the selected file and any verified PIN.
    ResetCard,
    /// Power the card down.
    UnpowerCard,
}

impl Disposition {
    fn to_sys(self) -> sys::Disposition {
        match self {
            Disposition::LeaveCard => sys::Disposition::LeaveCard,
            Disposition::ResetCard => sys::Disposition::ResetCard,
            Disposition::UnpowerCard => sys::Disposition::UnpowerCard,
        }
    }
}

/// Runs a pcsc call, turning a panic inside it (pcsc panics on unknown error codes in debug
/// builds) into an error.
fn shield<R>(f: impl FnOnce() -> Result<R, sys::Error>) -> Result<R, sys::Error> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(sys::Error::UnknownError))
}

/// Maps a pcsc error to this crate's error, with the reader for context.
fn map_err(e: sys::Error, reader: Option<&str>) -> Error {
    use sys::Error as E;
    match e {
        E::NoService | E::ServiceStopped => Error::NoService,
        E::NoReadersAvailable => Error::NoReader,
        E::UnknownReader | E::ReaderUnavailable => match reader {
            Some(r) => Error::ReaderNotFound { name: r.to_owned() },
            None => Error::NoReader,
        },
        E::NoSmartcard => Error::NoCard {
            reader: reader.map(str::to_owned),
        },
        E::RemovedCard => Error::CardRemoved,
        E::ResetCard => Error::CardReset,
        E::SharingViolation => Error::CardInUse,
        E::UnresponsiveCard | E::UnsupportedCard | E::UnpoweredCard | E::ProtoMismatch => {
            Error::CardUnresponsive
        }
        E::Timeout | E::WaitedTooLong => Error::Timeout,
        E::InvalidHandle => Error::Pcsc {
            message: "the connection to pcscd was lost (was pcscd restarted?): connect again"
                .to_owned(),
        },
        E::UnknownError => Error::Pcsc {
            message: "pcscd reported an unknown error: check that pcscd and the reader work \
                      (e.g. `opensc-tool -l`)"
                .to_owned(),
        },
        other => Error::Pcsc {
            message: format!("{other} (code {:#010X})", other as u32),
        },
    }
}

fn establish() -> Result<sys::Context, Error> {
    shield(|| sys::Context::establish(sys::Scope::User)).map_err(|e| map_err(e, None))
}

/// Lists the PC/SC readers with card presence and ATR. No reader at all gives an empty list;
/// pcscd not running gives [`Error::NoService`].
pub fn list_readers() -> Result<Vec<ReaderInfo>, Error> {
    let ctx = establish()?;
    let names = match shield(|| ctx.list_readers_owned()) {
        Ok(n) => n,
        Err(sys::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(map_err(e, None)),
    };
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut states: Vec<sys::ReaderState> = names
        .iter()
        .map(|n| sys::ReaderState::new(n.clone(), sys::State::UNAWARE))
        .collect();
    // With UNAWARE as the known state this returns at once with the current states.
    shield(|| ctx.get_status_change(Duration::from_secs(2), &mut states))
        .map_err(|e| map_err(e, None))?;
    Ok(states
        .iter()
        .map(|s| {
            let state = s.event_state();
            let card_present = state.contains(sys::State::PRESENT);
            let atr = (card_present && !s.atr().is_empty()).then(|| s.atr().to_vec());
            ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                card_present,
                atr,
            }
        })
        .collect())
}

/// Polls `reader` until a card is present (`present = true`) or absent, for at most `timeout`.
/// Returns the reader's state; [`Error::Timeout`] when the deadline passes (and
/// [`Error::ReaderNotFound`] if the reader never showed up).
pub fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Result<ReaderInfo, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let readers = list_readers()?;
        let found = readers.iter().find(|r| r.name == reader);
        if let Some(r) = found {
            // A card counts as present once its ATR is known.
            if r.card_present == present && (!present || r.atr.is_some()) {
                return Ok(r.clone());
            }
        }
        if Instant::now() >= deadline {
            return Err(match found {
                Some(_) => Error::Timeout,
                None => Error::ReaderNotFound {
                    name: reader.to_owned(),
                },
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Requests from a [`PcscTransport`] to its worker thread.
enum Request {
    Transmit(Zeroizing<Vec<u8>>),
    Begin,
    End,
    Reconnect(Disposition),
    Disconnect(Disposition),
}

/// Answers of the worker thread.
enum Reply {
    Data(Vec<u8>),
    Done,
    Connected { atr: Vec<u8>, protocol: Protocol },
}

/// A connection to one card through PC/SC, shared with other applications between transactions.
///
/// Dropping it disconnects with [`Disposition::LeaveCard`] (pcsc's own `Card` would reset the card
/// and lose a verified PIN); [`PcscTransport::disconnect`] chooses otherwise.
#[derive(Debug)]
pub struct PcscTransport {
    reader: String,
    atr: Vec<u8>,
    protocol: Protocol,
    requests: Sender<Request>,
    replies: Receiver<Result<Reply, Error>>,
    timeout: Duration,
    broken: bool,
    disconnected: bool,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Transmit(c) => write!(f, "Transmit({} bytes)", c.len()),
            Request::Begin => f.write_str("Begin"),
            Request::End => f.write_str("End"),
            Request::Reconnect(d) => write!(f, "Reconnect({d:?})"),
            Request::Disconnect(d) => write!(f, "Disconnect({d:?})"),
        }
    }
}

impl PcscTransport {
    /// Connects (shared, T=0 or T=1) to the card in the named reader.
    pub fn connect(reader: &str) -> Result<Self, Error> {
        Self::connect_with_timeout(reader, DEFAULT_TIMEOUT)
    }

    /// Connects to the card in the first reader that has one.
    pub fn connect_first() -> Result<Self, Error> {
        let readers = list_readers()?;
        if readers.is_empty() {
            return Err(Error::NoReader);
        }
        match readers.iter().find(|r| r.card_present) {
            Some(r) => Self::connect(&r.name),
            None => Err(Error::NoCard { reader: None }),
        }
    }

    /// Like [`PcscTransport::connect`], with a bound on each operation other than the default.
    pub fn connect_with_timeout(reader: &str, timeout: Duration) -> Result<Self, Error> {
        let name = CString::new(reader).map_err(|_| Error::ReaderNotFound {
            name: reader.to_owned(),
        })?;
        let (req_tx, req_rx) = mpsc::channel();
        let (rep_tx, rep_rx) = mpsc::channel();
        let reader_owned = reader.to_owned();
        thread::Builder::new()
            .name(format!("pcsc {reader}"))
            .spawn(move || worker(name, reader_owned, req_rx, rep_tx))
            .map_err(|e| Error::Pcsc {
                message: format!("cannot start the PC/SC thread: {e}"),
            })?;
        let mut t = PcscTransport {
            reader: reader.to_owned(),
            atr: Vec::new(),
            protocol: Protocol::Unknown,
            requests: req_tx,
            replies: rep_rx,
            timeout,
            broken: false,
            disconnected: false,
        };
        match t.wait()? {
            Reply::Connected { atr, protocol } => {
                t.atr = atr;
                t.protocol = protocol;
                tracing::debug!(target: "tscns_apdu", "connected to {reader:?}, {protocol}");
                Ok(t)
            }
            _ => Err(t.protocol_error()),
        }
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The protocol negotiated with the card.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sets the bound on each operation (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Re-establishes the connection, doing `disposition` to the card first (e.g.
    /// [`Disposition::ResetCard`] for a fresh start). Refreshes ATR and protocol.
    pub fn reconnect_with(&mut self, disposition: Disposition) -> Result<(), Error> {
        match self.call(Request::Reconnect(disposition))? {
            Reply::Connected { atr, protocol } => {
                self.atr = atr;
                self.protocol = protocol;
                Ok(())
            }
            _ => Err(self.protocol_error()),
        }
    }

    /// Disconnects, doing `disposition` to the card ([`Disposition::LeaveCard`] keeps a verified
    /// PIN verified).
    pub fn disconnect(mut self, disposition: Disposition) -> Result<(), Error> {
        self.disconnected = true;
        self.call(Request::Disconnect(disposition)).map(|_| ())
    }

    fn call(&mut self, request: Request) -> Result<Reply, Error> {
        if self.broken {
            return Err(Error::Pcsc {
                message: format!(
                    "the connection to reader {:?} is unusable after an earlier failure: \
                     connect again",
                    self.reader
                ),
            });
        }
        if self.requests.send(request).is_err() {
            self.broken = true;
            return Err(self.protocol_error());
        }
        self.wait()
    }

    fn wait(&mut self) -> Result<Reply, Error> {
        match self.replies.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                self.broken = true;
                Err(Error::Timeout)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.broken = true;
                Err(self.protocol_error())
            }
        }
    }

    fn protocol_error(&self) -> Error {
        Error::Pcsc {
            message: format!(
                "the PC/SC connection to reader {:?} ended unexpectedly: connect again",
                self.reader
            ),
        }
    }
}

impl Transport for PcscTransport {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        match self.call(Request::Transmit(Zeroizing::new(command.to_vec())))? {
            Reply::Data(d) => Ok(d),
            _ => Err(self.protocol_error()),
        }
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn begin_transaction(&mut self) -> Result<(), Error> {
        self.call(Request::Begin).map(|_| ())
    }

    fn end_transaction(&mut self) -> Result<(), Error> {
        self.call(Request::End).map(|_| ())
    }

    fn reconnect(&mut self) -> Result<(), Error> {
        self.reconnect_with(Disposition::LeaveCard)
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if self.disconnected || self.broken {
            return;
        }
        // Leave the card as it is, and wait (bounded) so the card is free when drop returns.
        if self
            .requests
            .send(Request::Disconnect(Disposition::LeaveCard))
            .is_ok()
        {
            let _ = self.replies.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// The worker thread: owns the context and the card, serves requests until told to disconnect or
/// until the transport is dropped.
fn worker(
    name: CString,
    reader: String,
    requests: Receiver<Request>,
    replies: Sender<Result<Reply, Error>>,
) {
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let w = Worker {
            reader,
            replies: replies.clone(),
        };
        w.run(&name, &requests);
    }));
    if panicked.is_err() {
        let _ = replies.send(Err(Error::Pcsc {
            message: "pcscd reported an unknown error: check that pcscd and the reader work"
                .to_owned(),
        }));
    }
}

enum TxExit {
    Ended,
    Exit(Option<Disposition>),
}

struct Worker {
    reader: String,
    replies: Sender<Result<Reply, Error>>,
}

impl Worker {
    fn reply(&self, r: Result<Reply, Error>) {
        let _ = self.replies.send(r);
    }

    fn run(&self, name: &CString, requests: &Receiver<Request>) {
        let ctx = match establish() {
            Ok(c) => c,
            Err(e) => return self.reply(Err(e)),
        };
        let mut card = match ctx.connect(name, sys::ShareMode::Shared, sys::Protocols::ANY) {
            Ok(c) => c,
            Err(e) => return self.reply(Err(map_err(e, Some(&self.reader)))),
        };
        let connected = self.connected(&card);
        let ok = connected.is_ok();
        self.reply(connected);
        let disposition = if ok {
            self.serve(&mut card, requests)
        } else {
            None
        };
        let asked = disposition.is_some();
        let d = disposition.unwrap_or_default();
        let result = match card.disconnect(d.to_sys()) {
            Ok(()) => Ok(Reply::Done),
            Err((card, e)) => {
                // The handle is unusable anyway (card gone, pcscd gone); do not let pcsc's Drop
                // reset a card that might still be there.
                std::mem::forget(card);
                Err(map_err(e, Some(&self.reader)))
            }
        };
        if asked {
            self.reply(result);
        }
    }

    /// Serves requests outside a transaction. Returns the disposition asked for, or None when the
    /// transport went away.
    fn serve(&self, card: &mut sys::Card, requests: &Receiver<Request>) -> Option<Disposition> {
        let mut buf = vec![0u8; sys::MAX_BUFFER_SIZE_EXTENDED];
        loop {
            let Ok(request) = requests.recv() else {
                return Some(Disposition::LeaveCard);
            };
            match request {
                Request::Transmit(cmd) => self.reply(self.transmit(card, &cmd, &mut buf)),
                Request::Begin => match card.transaction2() {
                    Ok(tx) => {
                        self.reply(Ok(Reply::Done));
                        match self.serve_transaction(tx, requests, &mut buf) {
                            TxExit::Ended => {}
                            TxExit::Exit(d) => return d,
                        }
                    }
                    Err((card, e)) => {
                        let e = self.session_error(card, e);
                        self.reply(Err(e));
                    }
                },
                Request::End => self.reply(Err(Error::Pcsc {
                    message: "ending a transaction that was not begun".to_owned(),
                })),
                Request::Reconnect(d) => {
                    let r = shield(|| {
                        card.reconnect(sys::ShareMode::Shared, sys::Protocols::ANY, d.to_sys())
                    })
                    .map_err(|e| map_err(e, Some(&self.reader)))
                    .and_then(|()| self.connected(card));
                    self.reply(r);
                }
                Request::Disconnect(d) => return Some(d),
            }
        }
    }

    /// Serves requests while holding an exclusive transaction.
    fn serve_transaction(
        &self,
        mut tx: sys::Transaction<'_>,
        requests: &Receiver<Request>,
        buf: &mut [u8],
    ) -> TxExit {
        loop {
            let Ok(request) = requests.recv() else {
                return TxExit::Exit(Some(Disposition::LeaveCard));
            };
            match request {
                Request::Transmit(cmd) => self.reply(self.transmit(&tx, &cmd, buf)),
                Request::Begin => self.reply(Err(Error::Pcsc {
                    message: "a transaction is already in progress".to_owned(),
                })),
                Request::End => {
                    let r = match tx.end(sys::Disposition::LeaveCard) {
                        Ok(()) => Ok(Reply::Done),
                        Err((tx, e)) => {
                            drop(tx);
                            Err(map_err(e, Some(&self.reader)))
                        }
                    };
                    self.reply(r);
                    return TxExit::Ended;
                }
                Request::Reconnect(d) => {
                    let r = shield(|| {
                        tx.reconnect(sys::ShareMode::Shared, sys::Protocols::ANY, d.to_sys())
                    })
                    .map_err(|e| map_err(e, Some(&self.reader)))
                    .and_then(|()| self.connected(&tx));
                    self.reply(r);
                }
                Request::Disconnect(d) => {
                    drop(tx);
                    return TxExit::Exit(Some(d));
                }
            }
        }
    }

    fn connected(&self, card: &sys::Card) -> Result<Reply, Error> {
        let status = shield(|| card.status2_owned()).map_err(|e| map_err(e, Some(&self.reader)))?;
        let protocol = match status.protocol2() {
            Some(sys::Protocol::T0) => Protocol::T0,
            Some(sys::Protocol::T1) => Protocol::T1,
            Some(sys::Protocol::RAW) => Protocol::Raw,
            None => Protocol::Unknown,
        };
        Ok(Reply::Connected {
            atr: status.atr().to_vec(),
            protocol,
        })
    }

    fn transmit(&self, card: &sys::Card, cmd: &[u8], buf: &mut [u8]) -> Result<Reply, Error> {
        match shield(|| card.transmit(cmd, buf).map(|r| r.to_vec())) {
            // A card that leaves the reader in the middle of a command can come back as an
            // "answer" without status bytes (vpcd does this when the card hangs up): ask pcscd
            // whether the card is still there before calling it a malformed answer.
            Ok(r) if r.len() < 2 => match self.card_gone(card) {
                Some(gone) => Err(gone),
                None => Ok(Reply::Data(r)),
            },
            Ok(r) => Ok(Reply::Data(r)),
            Err(e) => Err(self.session_error(card, e)),
        }
    }

    /// Classifies an error during a session: removal and reset are told apart from other failures
    /// by asking pcscd for the card's status (bounded: pcscd notices a removal within its polling
    /// period).
    fn session_error(&self, card: &sys::Card, e: sys::Error) -> Error {
        use sys::Error as E;
        match e {
            E::RemovedCard | E::NoSmartcard => return Error::CardRemoved,
            E::ResetCard => return Error::CardReset,
            E::CommError
            | E::UnpoweredCard
            | E::UnresponsiveCard
            | E::NotReady
            | E::NotTransacted
            | E::ReaderUnavailable
            | E::UnknownError => {}
            other => return map_err(other, Some(&self.reader)),
        }
        self.card_gone(card)
            .unwrap_or_else(|| map_err(e, Some(&self.reader)))
    }

    /// Asks pcscd, for up to 5 s (it notices a removal within its polling period, which a busy
    /// machine stretches), whether the card was removed or reset; `None` when it is still there
    /// as we left it.
    fn card_gone(&self, card: &sys::Card) -> Option<Error> {
        use sys::Error as E;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match shield(|| card.status2_owned()) {
                Err(E::RemovedCard | E::NoSmartcard) => return Some(Error::CardRemoved),
                Err(E::ResetCard) => return Some(Error::CardReset),
                Ok(s) if s.status().contains(sys::Status::ABSENT) => {
                    return Some(Error::CardRemoved)
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}
