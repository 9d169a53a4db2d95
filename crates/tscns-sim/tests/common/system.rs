//! The system-test half of the shared test code (feature `system-tests`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO, VPCD_PORT_1, VPCD_READER_1};
use tscns_sim::{serve_vpcd, SimCard, SimHandle, SimProfile, VpcdServer};

/// The vpcd port and reader these tests use (reader 1, so tests of other crates that take
/// reader 0 need not wait for them).
pub const PORT: u16 = VPCD_PORT_1;
/// Its PC/SC name.
pub const READER: &str = VPCD_READER_1;

/// A simulated card in the vpcd reader: holds the reader lock, takes the card out and waits
/// until PC/SC sees the reader empty when dropped.
pub struct Plugged {
    server: Option<VpcdServer>,
    pub handle: SimHandle,
    pub profile: SimProfile,
    _lock: ReaderLock,
}

impl Plugged {
    pub fn new(profile: SimProfile) -> Plugged {
        assert!(
            Path::new("/run/pcscd/pcscd.comm").exists(),
            "pcscd is not running: {PCSCD_HOWTO}"
        );
        let lock = ReaderLock::acquire(PORT, Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("cannot lock vpcd reader {READER}: {e}"));
        // A previous holder may have left just now: start from an empty reader.
        let _ = tscns_apdu::pcsc::wait_for_card(READER, false, Duration::from_secs(10));
        let card = SimCard::new(&profile).unwrap();
        let handle = card.handle();
        let server = serve_vpcd(card, PORT).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            server.wait_ready(Duration::from_secs(10)),
            "pcscd did not ask the card for its ATR within 10 s: {PCSCD_HOWTO}"
        );
        let info = tscns_apdu::pcsc::wait_for_card(READER, true, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the card did not show up in {READER}: {e}"));
        assert_eq!(info.atr.as_deref(), Some(profile.maker.atr()));
        Plugged {
            server: Some(server),
            handle,
            profile,
            _lock: lock,
        }
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
        let _ = tscns_apdu::pcsc::wait_for_card(READER, false, Duration::from_secs(10));
    }
}

/// The result of an external command.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, for messages.
    pub fn all(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs a program with a timeout: spawn, bounded wait, kill. Fails the test with a hint when
/// the program is missing.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (install the Debian packages opensc, opensc-pkcs11 and openssl, or run scripts/test)")
        });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        match child.try_wait().unwrap() {
            Some(status) => break status.code(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program} {args:?} did not finish within {timeout:?} and was killed");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        code,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "tscns-sim-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
