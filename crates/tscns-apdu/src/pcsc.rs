//! The PC/SC backend (feature `pcsc`): list readers, connect, exclusive transactions, reset and
//! removal detection, reconnect, and a disconnect that never leaves a verified PIN behind.
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
//! # A verified PIN does not outlive the connection
//! A card keeps a verified PIN until it is reset or powered off, whoever talks to it: a
//! connection that verified the PIN and then let go with "leave the card" would let any local
//! PC/SC client sign as the citizen without the PIN, until the card is pulled. So once a command
//! presenting a PIN or PUK ([`crate::presents_secret`]: VERIFY, CHANGE REFERENCE DATA, RESET
//! RETRY COUNTER with data) went to the card on a connection, closing that connection resets the
//! card, whatever way it closes:
//!
//! - dropping the [`PcscTransport`] (the normal end of a program, and every error path);
//! - the transport failing (a timeout): the worker thread resets the card when it is done, so a
//!   program should call [`close_all`] on its way out, which waits for that (the `tscns` command
//!   does on every exit path);
//! - a signal: a program's SIGINT/SIGTERM handler calls [`close_all`] before it exits (the `tscns`
//!   command does);
//!
//! The reset happens while the connection holds the card's lock (an exclusive transaction, the
//! one in progress or one taken for it), so no other client waiting for the card can get it
//! between this connection's last command and the reset.
//! - the process dying without any of that (SIGKILL, a crash) is beyond the process: pcscd
//!   closes the dead client's connections, but pcsc-lite (1.9) resets the card only if that
//!   client held a transaction at the time; otherwise it leaves the card as it is and powers it
//!   off (which also ends the verified PIN) only once no client is connected any more, about
//!   half a second later. A PC/SC client that was already connected keeps the card unlocked
//!   until it is reset or pulled (a test of the `tscns` command shows it).
//!
//! Keeping the card unlocked is an explicit opt-in: [`PcscTransport::keep_unlocked`], or
//! [`PcscTransport::disconnect`] with [`Disposition::LeaveCard`].
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
///
/// `Default` is [`Disposition::LeaveCard`], the right choice for a reconnection; what closing a
/// [`PcscTransport`] does is [`PcscTransport::closing_disposition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Disposition {
    /// Leave the card as it is: a verified PIN stays verified, for every application.
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
    /// Disconnect as closing the transport would, answering on this channel ([`close_all`]).
    Close(Sender<Result<Reply, Error>>),
}

/// What one connection did to the card's security state, shared by the transport and its worker.
#[derive(Debug, Default)]
struct Unlock {
    /// A command presenting a PIN or PUK was sent on this connection.
    secret_presented: AtomicBool,
    /// The owner opted in to leaving the card unlocked ([`PcscTransport::keep_unlocked`]).
    keep_unlocked: AtomicBool,
}

impl Unlock {
    fn closing(&self) -> Disposition {
        if self.secret_presented.load(Ordering::SeqCst)
            && !self.keep_unlocked.load(Ordering::SeqCst)
        {
            Disposition::ResetCard
        } else {
            Disposition::LeaveCard
        }
    }
}

/// The open connections of this process, for [`close_all`].
static OPEN: Mutex<Vec<(u64, Sender<Request>)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Worker threads still running (a dropped transport's worker may still be finishing a command
/// that timed out, and closes the card only after it): [`close_all`] waits for them.
static LIVE_WORKERS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Counts a worker thread as live from before its spawn to the end of its last PC/SC call.
struct LiveWorker;

impl LiveWorker {
    fn new() -> Self {
        *LIVE_WORKERS
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        LiveWorker
    }
}

impl Drop for LiveWorker {
    fn drop(&mut self) {
        let mut n = LIVE_WORKERS
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        LIVE_WORKERS.1.notify_all();
    }
}

fn unregister(id: u64) {
    OPEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(i, _)| *i != id);
}

/// Closes every [`PcscTransport`] of this process as dropping it would: a card to which a PIN or
/// PUK was presented is reset (unless [`PcscTransport::keep_unlocked`] was asked for). Made for a
/// SIGINT/SIGTERM handler that is about to end the process, while the transports themselves sit
/// on another thread's stack: afterwards they answer every request with an error.
///
/// Also waits for connections already dropped whose PC/SC thread is still busy: a transport whose
/// command timed out returns from `drop` at once, and its thread resets the card only once that
/// command is over. A program should therefore call this on every way out of `main`, not only on
/// signals, or it may exit before such a card is reset.
///
/// Waits at most `timeout` in all (a command in progress on a connection is finished first).
/// Returns how many open connections were closed in time.
pub fn close_all(timeout: Duration) -> usize {
    let open: Vec<(u64, Sender<Request>)> =
        std::mem::take(&mut *OPEN.lock().unwrap_or_else(PoisonError::into_inner));
    let deadline = Instant::now() + timeout;
    let waiting: Vec<Receiver<Result<Reply, Error>>> = open
        .into_iter()
        .filter_map(|(_, requests)| {
            let (tx, rx) = mpsc::channel();
            requests.send(Request::Close(tx)).ok().map(|()| rx)
        })
        .collect();
    let closed = waiting
        .iter()
        .filter(|rx| {
            let left = deadline.saturating_duration_since(Instant::now());
            matches!(rx.recv_timeout(left), Ok(Ok(_)))
        })
        .count();
    let (count, changed) = &LIVE_WORKERS;
    let mut live = count.lock().unwrap_or_else(PoisonError::into_inner);
    while *live > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        live = changed
            .wait_timeout(live, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    closed
}

/// Answers of the worker thread.
enum Reply {
    Data(Vec<u8>),
    Done,
    Connected { atr: Vec<u8>, protocol: Protocol },
}

/// A connection to one card through PC/SC, shared with other applications between transactions.
///
/// Dropping it disconnects with [`PcscTransport::closing_disposition`]: the card is left as it is
/// (its selected file survives for the next program), unless a PIN or PUK was presented on this
/// connection; then the card is reset, so that no verified PIN outlives the program (see the
/// [module documentation](self)). [`PcscTransport::keep_unlocked`] and
/// [`PcscTransport::disconnect`] choose otherwise.
#[derive(Debug)]
pub struct PcscTransport {
    id: u64,
    unlock: Arc<Unlock>,
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
            Request::Close(_) => f.write_str("Close"),
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
        let unlock = Arc::new(Unlock::default());
        let worker_unlock = Arc::clone(&unlock);
        let live = LiveWorker::new();
        thread::Builder::new()
            .name(format!("pcsc {reader}"))
            .spawn(move || {
                let _live = live;
                worker(name, reader_owned, worker_unlock, req_rx, rep_tx)
            })
            .map_err(|e| Error::Pcsc {
                message: format!("cannot start the PC/SC thread: {e}"),
            })?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        OPEN.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, req_tx.clone()));
        let mut t = PcscTransport {
            id,
            unlock,
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

    /// Disconnects, doing `disposition` to the card, exactly as asked: [`Disposition::LeaveCard`]
    /// keeps a verified PIN verified for every local application. [`PcscTransport::close`] is
    /// the safe choice.
    pub fn disconnect(mut self, disposition: Disposition) -> Result<(), Error> {
        self.disconnected = true;
        unregister(self.id);
        self.call(Request::Disconnect(disposition)).map(|_| ())
    }

    /// Disconnects as dropping would ([`PcscTransport::closing_disposition`]), reporting errors
    /// that a drop has to swallow.
    pub fn close(self) -> Result<(), Error> {
        let d = self.closing_disposition();
        self.disconnect(d)
    }

    /// Whether a command presenting a PIN or PUK was sent on this connection (so that the card
    /// may hold a verified secret).
    pub fn secret_presented(&self) -> bool {
        self.unlock.secret_presented.load(Ordering::SeqCst)
    }

    /// Opts in to leaving the card as it is when this connection closes, even after a PIN was
    /// verified on it: until the card is reset or pulled out, **any** local PC/SC client can then
    /// use the verified PIN (sign as the citizen) without knowing it. For a program that hands
    /// the unlocked card to another one on purpose; the `tscns` command never does this.
    pub fn keep_unlocked(&mut self) {
        self.unlock.keep_unlocked.store(true, Ordering::SeqCst);
    }

    /// What closing this connection (drop, [`PcscTransport::close`], [`close_all`], a failure)
    /// does to the card: [`Disposition::ResetCard`] once a PIN or PUK was presented, unless
    /// [`PcscTransport::keep_unlocked`] was asked for; else [`Disposition::LeaveCard`].
    pub fn closing_disposition(&self) -> Disposition {
        self.unlock.closing()
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
        unregister(self.id);
        // A broken transport's worker may still be busy: it closes the card with the closing
        // disposition itself once it sees the transport gone.
        if self.disconnected || self.broken {
            return;
        }
        // Reset the card if a secret was presented, else leave it as it is; wait (bounded) so
        // the card is free when drop returns.
        if self
            .requests
            .send(Request::Disconnect(self.closing_disposition()))
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
    unlock: Arc<Unlock>,
    requests: Receiver<Request>,
    replies: Sender<Result<Reply, Error>>,
) {
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let w = Worker {
            reader,
            unlock,
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
    /// Stop; the closing disposition was already applied when the transaction ended.
    Exit(Stop, Applied),
}

/// Whether the closing disposition was already applied (by ending a transaction with it, while
/// the lock was still held), so the disconnect itself leaves the card.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applied {
    Yes,
    No,
}

/// Why the worker stops serving.
enum Stop {
    /// [`Request::Disconnect`]: this disposition, answered on the transport's channel.
    Asked(Disposition),
    /// [`Request::Close`]: the closing disposition, answered on this channel.
    Close(Sender<Result<Reply, Error>>),
    /// The transport went away: the closing disposition, no answer.
    Gone,
}

struct Worker {
    reader: String,
    unlock: Arc<Unlock>,
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
        let (d, answer_to, applied) = if ok {
            let (stop, applied) = self.serve(&mut card, requests);
            let (d, to) = self.stop_disposition(stop);
            (d, to, applied)
        } else {
            (Disposition::LeaveCard, None, Applied::No)
        };
        if d != Disposition::LeaveCard {
            tracing::debug!(target: "tscns_apdu", "closing {:?} with {d:?}", self.reader);
        }
        // Apply a reset (or power-off, eject) under an exclusive transaction, so no other client
        // can take the card between our last command and the reset; the disconnect itself then
        // leaves the card as the transaction's end made it.
        let applied = if applied == Applied::No && d != Disposition::LeaveCard {
            match card.transaction2() {
                Ok(tx) => self.end_with(tx, d),
                Err(_) => Applied::No,
            }
        } else {
            applied
        };
        let on_disconnect = if applied == Applied::Yes {
            Disposition::LeaveCard
        } else {
            d
        };
        let result = match card.disconnect(on_disconnect.to_sys()) {
            Ok(()) => Ok(Reply::Done),
            Err((card, e)) => {
                // The handle is unusable anyway (card gone, pcscd gone); do not let pcsc's Drop
                // reset a card that might still be there.
                std::mem::forget(card);
                Err(map_err(e, Some(&self.reader)))
            }
        };
        if let Some(to) = answer_to {
            let _ = to.send(result);
        }
    }

    /// The disposition a stop closes the card with, and where the answer goes.
    fn stop_disposition(&self, stop: Stop) -> (Disposition, Option<Sender<Result<Reply, Error>>>) {
        match stop {
            Stop::Asked(d) => (d, Some(self.replies.clone())),
            Stop::Close(to) => (self.unlock.closing(), Some(to)),
            Stop::Gone => (self.unlock.closing(), None),
        }
    }

    /// Ends a transaction with `d` (the card is reset while this connection still holds the
    /// lock); on failure the transaction is dropped and `d` is left for the disconnect.
    fn end_with(&self, tx: sys::Transaction<'_>, d: Disposition) -> Applied {
        if d == Disposition::LeaveCard {
            drop(tx);
            return Applied::Yes;
        }
        match tx.end(d.to_sys()) {
            Ok(()) => Applied::Yes,
            Err((tx, e)) => {
                tracing::debug!(
                    target: "tscns_apdu",
                    "ending the transaction on {:?} with {d:?} failed: {e}",
                    self.reader
                );
                drop(tx);
                Applied::No
            }
        }
    }

    /// Serves requests outside a transaction, until told to stop or the transport went away.
    fn serve(&self, card: &mut sys::Card, requests: &Receiver<Request>) -> (Stop, Applied) {
        let mut buf = vec![0u8; sys::MAX_BUFFER_SIZE_EXTENDED];
        loop {
            let Ok(request) = requests.recv() else {
                return (Stop::Gone, Applied::No);
            };
            match request {
                Request::Transmit(cmd) => self.reply(self.transmit(card, &cmd, &mut buf)),
                Request::Begin => match card.transaction2() {
                    Ok(tx) => {
                        self.reply(Ok(Reply::Done));
                        match self.serve_transaction(tx, requests, &mut buf) {
                            TxExit::Ended => {}
                            TxExit::Exit(stop, applied) => return (stop, applied),
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
                Request::Disconnect(d) => return (Stop::Asked(d), Applied::No),
                Request::Close(to) => return (Stop::Close(to), Applied::No),
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
                let applied = self.end_with(tx, self.unlock.closing());
                return TxExit::Exit(Stop::Gone, applied);
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
                // Closing inside a transaction: end it with the closing disposition while the
                // lock is held. Ending it with LeaveCard first and resetting at the disconnect
                // left a gap in which another client waiting for the lock could sign with the
                // card this connection had verified.
                Request::Disconnect(d) => {
                    let applied = self.end_with(tx, d);
                    return TxExit::Exit(Stop::Asked(d), applied);
                }
                Request::Close(to) => {
                    let applied = self.end_with(tx, self.unlock.closing());
                    return TxExit::Exit(Stop::Close(to), applied);
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
        if crate::presents_secret(cmd) {
            // Before sending: an answer lost on the way may still have verified the secret.
            self.unlock.secret_presented.store(true, Ordering::SeqCst);
        }
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
