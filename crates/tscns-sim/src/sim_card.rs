//! [`SimCard`]: the simulated card as a `tscns_apdu::Transport`, and [`SimHandle`], the test's
//! view of it (counters, PIN state, faults, removal and reset).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tscns_apdu::Transport;

use crate::commands::Engine;
use crate::faults::{mangle, FaultClock, Faults, Gate};
use crate::pki::TestPki;
use crate::profile::{Maker, SimProfile};
use crate::Error;

/// Counters of what the card has seen, for tests and benches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// C-APDUs the card answered.
    pub apdus: u64,
    /// Bytes of those C-APDUs.
    pub bytes_received: u64,
    /// Bytes of the R-APDUs sent back (data and status word).
    pub bytes_sent: u64,
    /// Private-key operations performed (PSO COMPUTE DIGITAL SIGNATURE and PSO DECIPHER).
    pub signatures: u64,
}

/// The header of one C-APDU the card answered, without its data (which may hold a PIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApduRecord {
    /// CLA.
    pub cla: u8,
    /// INS.
    pub ins: u8,
    /// P1.
    pub p1: u8,
    /// P2.
    pub p2: u8,
    /// Length of the whole C-APDU in bytes.
    pub len: usize,
    /// SW1 SW2 of the answer.
    pub sw: u16,
}

/// Most APDU records kept (the oldest are dropped).
const MAX_LOG: usize = 4096;

/// What happened to one C-APDU, with the delay the faults add.
pub(crate) enum Outcome {
    /// The card answered these bytes.
    Answer(Vec<u8>),
    /// The card is not in the reader.
    Removed,
    /// Another application reset the card.
    Reset,
    /// The card did not answer.
    Mute,
}

pub(crate) struct State {
    pub(crate) engine: Engine,
    counters: Counters,
    faults: Faults,
    clock: FaultClock,
    removed: bool,
    /// In-process: a reset happened that the host has not acknowledged with `reconnect()`.
    reset_pending: bool,
    log: Vec<ApduRecord>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) atr: Vec<u8>,
    pub(crate) pki: TestPki,
    pub(crate) maker: Maker,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves a usable state behind.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one C-APDU through the faults and the card. Returns the outcome and how long the
    /// host should wait for it.
    pub(crate) fn exchange(&self, command: &[u8]) -> (Outcome, Duration) {
        let mut st = self.lock();
        let faults = st.faults.clone();
        let removed = st.removed;
        match st.clock.gate(&faults, removed) {
            Gate::Removed => {
                st.removed = true;
                (Outcome::Removed, Duration::ZERO)
            }
            Gate::Mute => (Outcome::Mute, faults.mute_timeout),
            Gate::Reset => {
                st.engine.reset();
                st.reset_pending = true;
                (Outcome::Reset, Duration::ZERO)
            }
            Gate::Process { corrupt, truncate } => {
                let before = st.engine.signatures();
                let answer = st.engine.process_raw(command);
                let signed = st.engine.signatures() - before;
                let sw = match answer.as_slice() {
                    [.., a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0,
                };
                let answer = mangle(answer, corrupt, truncate);
                st.clock.answered += 1;
                let c = &mut st.counters;
                c.apdus += 1;
                c.bytes_received += command.len() as u64;
                c.bytes_sent += answer.len() as u64;
                c.signatures += signed;
                if st.log.len() >= MAX_LOG {
                    st.log.remove(0);
                }
                let header = |i: usize| command.get(i).copied().unwrap_or(0);
                st.log.push(ApduRecord {
                    cla: header(0),
                    ins: header(1),
                    p1: header(2),
                    p2: header(3),
                    len: command.len(),
                    sw,
                });
                let delay = faults.delay_for(command.len() + answer.len());
                (Outcome::Answer(answer), delay)
            }
        }
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.lock().removed
    }
}

/// A simulated TS-CNS card. Implements [`tscns_apdu::Transport`] in-process; serve it through
/// pcscd with [`crate::serve_vpcd`]. Keep a [`SimHandle`] (from [`SimCard::handle`]) to look at
/// counters and set faults while something else owns the card.
///
/// In-process the value is also the connection, and it closes like the PC/SC transport of
/// `tscns-apdu`: once a PIN or PUK was presented through it ([`tscns_apdu::presents_secret`]),
/// dropping it resets the card (the verified PIN and the security environment are lost, the
/// retry counters stay), unless [`SimCard::keep_unlocked`] was asked for. A [`SimHandle`] shows
/// the result.
pub struct SimCard {
    shared: Arc<Shared>,
    secret_presented: bool,
    keep_unlocked: bool,
}

impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard")
            .field("maker", &self.shared.maker)
            .finish_non_exhaustive()
    }
}

impl SimCard {
    /// Builds the card of a profile: keys (cached per seed and size), certificate, files.
    pub fn new(profile: &SimProfile) -> Result<SimCard, Error> {
        profile.validate()?;
        let pki = TestPki::issue(profile)?;
        let engine = Engine::new(profile, &pki);
        Ok(SimCard {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    engine,
                    counters: Counters::default(),
                    faults: profile.faults.clone(),
                    clock: FaultClock::default(),
                    removed: false,
                    reset_pending: false,
                    log: Vec::new(),
                }),
                atr: profile.maker.atr().to_vec(),
                pki,
                maker: profile.maker,
            }),
            secret_presented: false,
            keep_unlocked: false,
        })
    }

    /// The card of the built-in default profile ([`SimProfile::default_profile`]).
    pub fn with_default_profile() -> Result<SimCard, Error> {
        SimCard::new(&SimProfile::default_profile()?)
    }

    /// A handle on this card for tests: counters, PIN state, faults, removal.
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            shared: self.shared.clone(),
        }
    }

    /// The test PKI that issued this card's certificate.
    pub fn pki(&self) -> &TestPki {
        &self.shared.pki
    }

    /// Who built the card.
    pub fn maker(&self) -> Maker {
        self.shared.maker
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Opts in to leaving the card unlocked when this value is dropped, as
    /// `PcscTransport::keep_unlocked` does for a real card.
    pub fn keep_unlocked(&mut self) {
        self.keep_unlocked = true;
    }

    /// Whether a command presenting a PIN or PUK went through this value.
    pub fn secret_presented(&self) -> bool {
        self.secret_presented
    }
}

impl Drop for SimCard {
    fn drop(&mut self) {
        if self.secret_presented && !self.keep_unlocked {
            self.shared.lock().engine.reset();
        }
    }
}

impl Transport for SimCard {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, tscns_apdu::Error> {
        if self.shared.lock().reset_pending {
            return Err(tscns_apdu::Error::CardReset);
        }
        if tscns_apdu::presents_secret(command) {
            self.secret_presented = true;
        }
        let (outcome, delay) = self.shared.exchange(command);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        match outcome {
            Outcome::Answer(bytes) => Ok(bytes),
            Outcome::Removed => Err(tscns_apdu::Error::CardRemoved),
            Outcome::Reset => Err(tscns_apdu::Error::CardReset),
            Outcome::Mute => Err(tscns_apdu::Error::Timeout),
        }
    }

    fn atr(&self) -> &[u8] {
        &self.shared.atr
    }

    fn reconnect(&mut self) -> Result<(), tscns_apdu::Error> {
        let mut st = self.shared.lock();
        if st.removed {
            return Err(tscns_apdu::Error::CardRemoved);
        }
        st.reset_pending = false;
        Ok(())
    }
}

/// A cheap, cloneable view of a [`SimCard`] for tests and benches.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("maker", &self.shared.maker)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// What the card has seen so far.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters
    }

    /// Sets all counters (and the APDU log) back to zero.
    pub fn reset_counters(&self) {
        let mut st = self.shared.lock();
        st.counters = Counters::default();
        st.log.clear();
    }

    /// Headers of the APDUs answered since the card was made or [`SimHandle::reset_counters`]
    /// (at most the last 4096).
    pub fn apdu_log(&self) -> Vec<ApduRecord> {
        self.shared.lock().log.clone()
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Replaces the faults; "after N" counts from now. Also ends a mute spell.
    pub fn set_faults(&self, faults: Faults) {
        let mut st = self.shared.lock();
        st.faults = faults;
        st.clock = FaultClock::default();
    }

    /// PIN tries left (0 = blocked).
    pub fn pin_tries_left(&self) -> u8 {
        self.shared.lock().engine.pin_tries_left()
    }

    /// PUK tries left (0 = blocked).
    pub fn puk_tries_left(&self) -> u8 {
        self.shared.lock().engine.puk_tries_left()
    }

    /// Whether the PIN is verified in the current card session.
    pub fn pin_verified(&self) -> bool {
        self.shared.lock().engine.pin_verified()
    }

    /// Another application resets the card now: the security state is lost and the in-process
    /// transport answers `CardReset` until `reconnect()`.
    pub fn reset_by_other_application(&self) {
        let mut st = self.shared.lock();
        st.engine.reset();
        st.reset_pending = true;
    }

    /// Pulls the card out of the reader (in-process: `CardRemoved`; vpcd: disconnects).
    pub fn remove(&self) {
        self.shared.lock().removed = true;
    }

    /// Puts the card back: powered up fresh (security state lost), faults clock restarted,
    /// the removal and mute faults cleared.
    pub fn insert(&self) {
        let mut st = self.shared.lock();
        st.removed = false;
        st.reset_pending = false;
        st.engine.reset();
        st.faults.remove_after = None;
        st.faults.mute_after = None;
        st.clock = FaultClock::default();
    }

    /// Whether the card is out of the reader.
    pub fn is_removed(&self) -> bool {
        self.shared.is_removed()
    }

    /// The answer to reset.
    pub fn atr(&self) -> Vec<u8> {
        self.shared.atr.clone()
    }

    /// The test PKI of the card.
    pub fn pki(&self) -> &TestPki {
        &self.shared.pki
    }
}
