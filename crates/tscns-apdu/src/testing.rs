//! A minimal card for pcscd's vpcd driver, for tests (feature `test-card`).
//!
//! vpcd (vsmartcard's reader driver) makes pcscd show readers `Virtual PCD 00 00`, `00 01`, ...
//! and waits for a card on TCP 127.0.0.1:35963, 35964, ... The card side is the TCP client.
//! The framing (vsmartcard `vpcd.h`) is [`crate::vpcd`]'s, which the simulator of `tscns-sim`
//! uses too.
//!
//! [`VpcdCard`] answers APDUs with a closure, so a test decides the card's behaviour;
//! [`ReaderLock`] serialises tests (of any binary, any crate) that plug cards into one reader.
//! The full card simulator lives in crate `tscns-sim`.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::vpcd::{write_frame, FrameReader, Message, CTRL_RESET};

/// TCP port of vpcd's first reader.
pub const VPCD_PORT_0: u16 = crate::vpcd::DEFAULT_PORT;
/// PC/SC name of vpcd's first reader.
pub const VPCD_READER_0: &str = "Virtual PCD 00 00";
/// TCP port of vpcd's second reader.
pub const VPCD_PORT_1: u16 = 35964;
/// PC/SC name of vpcd's second reader.
pub const VPCD_READER_1: &str = "Virtual PCD 00 01";

/// The message a test shows when pcscd is not there.
pub const PCSCD_HOWTO: &str = "pcscd with the vpcd driver is not running: run scripts/test, or \
start it with `mkdir -p /run/pcscd; pcscd -f &` (Debian packages pcscd and vsmartcard-vpcd)";

/// An exclusive lock on `/tmp/tscns-vpcd-<port>.lock`, held while a test uses that vpcd reader.
#[derive(Debug)]
pub struct ReaderLock {
    _file: File,
    port: u16,
}

impl ReaderLock {
    /// Takes the lock for `port`, waiting at most `timeout` for another test to release it.
    pub fn acquire(port: u16, timeout: Duration) -> io::Result<ReaderLock> {
        let path = format!("/tmp/tscns-vpcd-{port}.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ReaderLock { _file: file, port }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{path} stayed locked for {timeout:?}: another test holds the reader"
                        ),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// The vpcd port this lock is for.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// What the card has seen, shared with the test.
#[derive(Debug, Default)]
struct Counters {
    apdus: AtomicUsize,
    power_events: AtomicUsize,
    resets: AtomicUsize,
}

/// A card plugged into a vpcd reader, answering APDUs with a closure, until dropped or
/// [`VpcdCard::remove`]d (which pulls it out of the reader).
#[derive(Debug)]
pub struct VpcdCard {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl VpcdCard {
    /// Connects a card with this ATR to vpcd on 127.0.0.1:`port`, retrying for at most `timeout`.
    /// The caller should hold the [`ReaderLock`] for `port`.
    pub fn insert(
        port: u16,
        atr: Vec<u8>,
        respond: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static,
        timeout: Duration,
    ) -> io::Result<VpcdCard> {
        Self::insert_with_power(port, atr, respond, || {}, timeout)
    }

    /// Like [`insert`](Self::insert), and calls `on_power` on every power off, power on and reset
    /// message, before the next APDU is answered: where a card with security state (a verified
    /// PIN) forgets it.
    pub fn insert_with_power(
        port: u16,
        atr: Vec<u8>,
        respond: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static,
        on_power: impl FnMut() + Send + 'static,
        timeout: Duration,
    ) -> io::Result<VpcdCard> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot reach vpcd on {addr}: {e}. {PCSCD_HOWTO}"),
                    ))
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut s = stream.try_clone()?;
        let (stop2, counters2) = (Arc::clone(&stop), Arc::clone(&counters));
        let thread = thread::Builder::new()
            .name(format!("vpcd card {port}"))
            .spawn(move || {
                let _ = serve(&mut s, &atr, respond, on_power, &stop2, &counters2);
                let _ = s.shutdown(Shutdown::Both);
            })?;
        Ok(VpcdCard {
            stream,
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// APDUs answered so far.
    pub fn apdus(&self) -> usize {
        self.counters.apdus.load(Ordering::SeqCst)
    }

    /// Power off / on / reset messages received so far (a reset of the card shows up here).
    pub fn power_events(&self) -> usize {
        self.counters.power_events.load(Ordering::SeqCst)
    }

    /// Reset messages received so far (a warm reset, e.g. a disconnect with "reset the card";
    /// pcscd's own power-off of an unused card is a power event, not a reset).
    pub fn resets(&self) -> usize {
        self.counters.resets.load(Ordering::SeqCst)
    }

    /// Pulls the card out: closes the connection to vpcd and waits for the card thread to end.
    pub fn remove(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VpcdCard {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn serve(
    s: &mut TcpStream,
    atr: &[u8],
    mut respond: impl FnMut(&[u8]) -> Vec<u8>,
    mut on_power: impl FnMut(),
    stop: &AtomicBool,
    counters: &Counters,
) -> io::Result<()> {
    let mut frames = FrameReader::default();
    while let Some(msg) = frames.read_frame(s, stop)? {
        match Message::of(&msg) {
            Message::SendAtr => write_frame(s, atr)?,
            Message::PowerOff | Message::PowerOn | Message::Reset => {
                counters.power_events.fetch_add(1, Ordering::SeqCst);
                on_power();
                if msg[0] == CTRL_RESET {
                    counters.resets.fetch_add(1, Ordering::SeqCst);
                }
            }
            Message::UnknownControl(_) | Message::Empty => {}
            Message::Apdu(apdu) => {
                counters.apdus.fetch_add(1, Ordering::SeqCst);
                let answer = respond(apdu);
                write_frame(s, &answer)?;
            }
        }
    }
    Ok(())
}

/// Builds an ATR offering T=0 and T=1 with these historical bytes (at most 15), TCK included
/// (ISO 7816-3 §8.2: TS=3B direct convention, T0 = 0x80 | K, TD1 = 0x80 (T=0, TD2 follows),
/// TD2 = 0x01 (T=1), TCK = XOR of T0..the last historical byte).
pub fn atr_with_historical_bytes(historical: &[u8]) -> Vec<u8> {
    let k = historical.len().min(15);
    let mut atr = vec![0x3B, 0x80 | k as u8, 0x80, 0x01];
    atr.extend_from_slice(&historical[..k]);
    let tck = atr[1..].iter().fold(0u8, |x, b| x ^ b);
    atr.push(tck);
    atr
}
