//! Serving a [`SimCard`] through pcscd's vpcd reader driver.
//!
//! The vpcd framing (vsmartcard `vpcd.h`: a 2-byte big-endian length and the payload; 1-byte
//! controls 0 power off, 1 power on, 2 reset, 4 "send your ATR") is [`tscns_apdu::vpcd`]'s. The
//! card side is the TCP client; vpcd polls presence by asking for the ATR.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tscns_apdu::vpcd::{write_frame, FrameReader, Message};

use crate::sim_card::{Outcome, Shared, SimCard, SimHandle};
use crate::Error;

/// The TCP port of reader `Virtual PCD 00 00`; reader `00 01` listens on the next one.
pub const DEFAULT_VPCD_PORT: u16 = tscns_apdu::vpcd::DEFAULT_PORT;

/// How often blocking reads wake up to look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Longest pause between reconnection attempts when pcscd is away.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The vpcd reader name for a port (`Virtual PCD 00 00` for 35963, `00 01` for 35964, ...).
pub fn vpcd_reader_name(port: u16) -> String {
    tscns_apdu::vpcd::reader_name(port)
}

/// Progress of the link, shared with the serving thread.
#[derive(Default)]
struct LinkState {
    connected: AtomicBool,
    /// ATR requests (vpcd's presence polls and power-ups) since the last connection.
    atr_requests: AtomicU64,
    connections: AtomicU64,
}

/// A card being served on a vpcd port by a background thread. Dropping it (or [`VpcdServer::stop`])
/// takes the card out of the reader.
pub struct VpcdServer {
    port: u16,
    stop: Arc<AtomicBool>,
    link: Arc<LinkState>,
    handle: SimHandle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for VpcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpcdServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Serves `card` on the vpcd reader listening on `127.0.0.1:port` from a background thread.
/// Fails at once (after trying for about 2 s) when nothing listens there, with a message saying
/// how to start pcscd; afterwards it reconnects by itself if pcscd restarts.
pub fn serve_vpcd(card: SimCard, port: u16) -> Result<VpcdServer, Error> {
    let shared = card.shared();
    let handle = card.handle();
    let deadline = Instant::now() + Duration::from_secs(2);
    let first = loop {
        match connect(port) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let link = Arc::new(LinkState::default());
    link.connected.store(true, Ordering::SeqCst);
    link.connections.store(1, Ordering::SeqCst);
    let thread = {
        let stop = stop.clone();
        let link = link.clone();
        std::thread::Builder::new()
            .name(format!("tscns-sim vpcd {port}"))
            .spawn(move || serve_loop(&shared, port, &stop, &link, Some(first)))
            .map_err(|e| Error::Vpcd {
                port,
                reason: format!("cannot start the serving thread: {e}"),
            })?
    };
    Ok(VpcdServer {
        port,
        stop,
        link,
        handle,
        thread: Some(thread),
    })
}

/// Serves `card` on `127.0.0.1:port` in the calling thread until `stop` becomes true (the
/// `tscns-sim vpcd` command passes a flag nobody sets: it serves until killed). Reconnects with a
/// bounded backoff whenever pcscd goes away.
pub fn run_vpcd(card: SimCard, port: u16, stop: &AtomicBool) {
    let link = LinkState::default();
    serve_loop(&card.shared(), port, stop, &link, None);
}

impl VpcdServer {
    /// The handle of the served card (counters, PIN state, faults, removal).
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// The vpcd port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PC/SC name of the reader the card sits in.
    pub fn reader_name(&self) -> String {
        vpcd_reader_name(self.port)
    }

    /// How many times the card connected to vpcd (1 + reconnections).
    pub fn connections(&self) -> u64 {
        self.link.connections.load(Ordering::SeqCst)
    }

    /// Waits (at most `timeout`) until pcscd has asked the connected card for its ATR, i.e. it
    /// knows the card is there. Returns whether that happened. PC/SC clients may still need a
    /// moment before the reader shows the card: poll the reader state with a deadline.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.link.connected.load(Ordering::SeqCst)
                && self.link.atr_requests.load(Ordering::SeqCst) > 0
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops serving: the card leaves the reader. Waits for the thread (bounded by its poll
    /// interval and the longest fault delay).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VpcdServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn connect(port: u16) -> Result<TcpStream, Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| Error::Vpcd {
            port,
            reason: e.to_string(),
        })?;
    let io = |e: std::io::Error| Error::Vpcd {
        port,
        reason: e.to_string(),
    };
    stream.set_nodelay(true).map_err(io)?;
    stream.set_read_timeout(Some(POLL)).map_err(io)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    Ok(stream)
}

/// Sleeps `total`, waking every poll interval to honour `stop`. Returns false when stopped.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
    let deadline = Instant::now() + total;
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(POLL));
    }
}

/// Why a connection ended.
enum End {
    Stopped,
    Dropped,
}

fn serve_loop(
    shared: &Shared,
    port: u16,
    stop: &AtomicBool,
    link: &LinkState,
    mut stream: Option<TcpStream>,
) {
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) {
        if shared.is_removed() {
            // Out of the reader: hang up (a connection kept from before would look inserted).
            stream = None;
            link.connected.store(false, Ordering::SeqCst);
            if !sleep_unless_stopped(POLL, stop) {
                break;
            }
            continue;
        }
        let s = match stream.take() {
            Some(s) => s,
            None => match connect(port) {
                Ok(s) => {
                    backoff = Duration::from_millis(100);
                    link.connections.fetch_add(1, Ordering::SeqCst);
                    tracing::info!(port, "card connected to vpcd");
                    s
                }
                Err(e) => {
                    tracing::debug!(port, error = %e, "vpcd not reachable; retrying");
                    if !sleep_unless_stopped(backoff, stop) {
                        break;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        link.atr_requests.store(0, Ordering::SeqCst);
        link.connected.store(true, Ordering::SeqCst);
        // A new connection is a freshly inserted card.
        shared.lock().engine.reset();
        let end = serve_connection(shared, s, stop, link);
        link.connected.store(false, Ordering::SeqCst);
        if let End::Stopped = end {
            break;
        }
        tracing::info!(port, "vpcd link closed; reconnecting");
    }
}

fn serve_connection(
    shared: &Shared,
    mut stream: TcpStream,
    stop: &AtomicBool,
    link: &LinkState,
) -> End {
    let mut frames = FrameReader::default();
    loop {
        if shared.is_removed() {
            return End::Dropped;
        }
        let frame = match frames.read_frame(&mut stream, stop) {
            Ok(Some(f)) => f,
            Ok(None) if stop.load(Ordering::SeqCst) => return End::Stopped,
            Ok(None) | Err(_) => return End::Dropped,
        };
        match Message::of(&frame) {
            Message::SendAtr => {
                link.atr_requests.fetch_add(1, Ordering::SeqCst);
                if write_frame(&mut stream, &shared.atr).is_err() {
                    return End::Dropped;
                }
            }
            Message::PowerOff | Message::PowerOn | Message::Reset => shared.lock().engine.reset(),
            Message::UnknownControl(control) => {
                tracing::warn!(control, "unknown vpcd control byte ignored")
            }
            Message::Empty => {}
            Message::Apdu(apdu) => {
                let (mut outcome, mut delay) = shared.exchange(apdu);
                if let Outcome::Reset = outcome {
                    // Over vpcd a reset by another application only costs the security state
                    // (already dropped); the command itself is answered.
                    (outcome, delay) = shared.exchange(apdu);
                }
                if !sleep_unless_stopped(delay, stop) {
                    return End::Stopped;
                }
                match outcome {
                    Outcome::Answer(bytes) => {
                        if write_frame(&mut stream, &bytes).is_err() {
                            return End::Dropped;
                        }
                    }
                    // Mute: the wait is over, hang up so pcscd stops waiting too.
                    Outcome::Removed | Outcome::Mute | Outcome::Reset => return End::Dropped,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_follow_ports() {
        assert_eq!(vpcd_reader_name(35963), "Virtual PCD 00 00");
        assert_eq!(vpcd_reader_name(35964), "Virtual PCD 00 01");
    }
}
