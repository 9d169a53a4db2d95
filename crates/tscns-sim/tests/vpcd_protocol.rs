//! The vpcd link without pcscd: a fake vpcd (a TCP listener on loopback speaking vsmartcard's
//! framing) drives the served card and the `tscns-sim` binary. Power controls, reconnection when
//! the other side goes away, removal and a mute card are checked here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tscns_sim::{serve_vpcd, Faults, SimCard, SimProfile};

/// The vpcd side of one connection.
struct FakeVpcd {
    stream: TcpStream,
}

impl FakeVpcd {
    fn accept(listener: &TcpListener) -> FakeVpcd {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    return FakeVpcd { stream };
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("the card did not connect within 10 s: {e}"),
            }
        }
    }

    fn send(&mut self, payload: &[u8]) {
        let mut msg = (payload.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(payload);
        self.stream.write_all(&msg).unwrap();
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn atr(&mut self) -> Vec<u8> {
        self.send(&[4]);
        self.recv().unwrap()
    }

    fn apdu(&mut self, hex: &str) -> Vec<u8> {
        self.send(&tscns_apdu::parse_hex(hex).unwrap());
        self.recv().unwrap()
    }
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn served_card_answers_atr_apdus_and_power_controls() {
    let (l, port) = listener();
    let profile = SimProfile::builtin("athena-1024").unwrap();
    let server = serve_vpcd(SimCard::new(&profile).unwrap(), port).unwrap();
    let h = server.handle();
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.atr(), profile.maker.atr());
    assert!(server.wait_ready(Duration::from_secs(5)));
    vpcd.send(&[1]); // power on
    assert_eq!(vpcd.apdu("00 20 00 10 08 3234363830FFFFFF"), [0x90, 0x00]);
    assert!(h.pin_verified());
    for control in [2u8, 0] {
        // reset, power off: the security state goes
        vpcd.send(&[control]);
        assert_eq!(vpcd.apdu("00 20 00 10"), [0x63, 0xC3]);
        assert_eq!(vpcd.apdu("00 20 00 10 08 3234363830FFFFFF"), [0x90, 0x00]);
    }
    // Extended-length answers fit the 2-byte frame.
    let cert = vpcd.apdu("00 A4 08 00 04 1100 1101 00");
    assert_eq!(&cert[cert.len() - 2..], [0x90, 0x00]);
    assert_eq!(h.counters().apdus, 6);
    server.stop();
    // The card hung up.
    assert!(vpcd.recv().is_err());
}

#[test]
fn served_card_reconnects_when_vpcd_goes_away() {
    let (l, port) = listener();
    let server = serve_vpcd(
        SimCard::new(&SimProfile::builtin("athena-1024").unwrap()).unwrap(),
        port,
    )
    .unwrap();
    let mut first = FakeVpcd::accept(&l);
    assert_eq!(first.apdu("00 84 00 00 08").len(), 10);
    drop(first); // pcscd restarted
    let mut second = FakeVpcd::accept(&l);
    assert_eq!(second.apdu("00 84 00 00 08").len(), 10);
    assert!(server.connections() >= 2);
}

#[test]
fn removal_and_mute_faults_over_vpcd() {
    let (l, port) = listener();
    let server = serve_vpcd(
        SimCard::new(&SimProfile::builtin("athena-1024").unwrap()).unwrap(),
        port,
    )
    .unwrap();
    let h = server.handle();
    let mut vpcd = FakeVpcd::accept(&l);
    h.remove();
    // The card leaves: the next APDU gets no answer, the link closes.
    vpcd.send(&tscns_apdu::parse_hex("00 84 00 00 08").unwrap());
    assert!(vpcd.recv().is_err());
    h.insert();
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.apdu("00 84 00 00 08").len(), 10);
    // A mute card keeps vpcd waiting for mute_timeout, then hangs up.
    h.set_faults(Faults {
        mute_after: Some(0),
        mute_timeout: Duration::from_millis(300),
        ..Faults::none()
    });
    let t = Instant::now();
    vpcd.send(&tscns_apdu::parse_hex("00 84 00 00 08").unwrap());
    assert!(vpcd.recv().is_err());
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    h.set_faults(Faults::none());
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.apdu("00 84 00 00 08").len(), 10);
}

#[test]
fn serving_fails_with_a_hint_when_nothing_listens() {
    let (l, port) = listener();
    drop(l);
    let err = serve_vpcd(
        SimCard::new(&SimProfile::builtin("athena-1024").unwrap()).unwrap(),
        port,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("pcscd -f"), "{err}");
}

/// The binary, killed (by PID) when dropped.
struct Bin(Child);

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tscns-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tscns-sim {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn binary_vpcd_serves_the_default_profile_until_killed() {
    let (l, port) = listener();
    let child = Command::new(env!("CARGO_BIN_EXE_tscns-sim"))
        .args(["vpcd", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Bin(child);
    let mut vpcd = FakeVpcd::accept(&l);
    assert_eq!(vpcd.atr(), tscns_sim::Maker::STINCARD.atr());
    let id = vpcd.apdu("00 A4 08 0C 04 1000 1003");
    assert_eq!(id, [0x90, 0x00]);
    assert_eq!(vpcd.apdu("00 B0 00 00 10"), b"6120000000000002\x90\x00");
    // STIncard: PIN reference 0x90.
    assert_eq!(vpcd.apdu("00 20 00 90 08 3132333435363738"), [0x90, 0x00]);
}

#[test]
fn binary_issue_writes_the_certificates() {
    let dir = std::env::temp_dir().join(format!("tscns-sim-bin-issue-{}", std::process::id()));
    let out = bin(&[
        "issue",
        "--builtin",
        "athena-1024",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let pki = tscns_sim::TestPki::issue(&SimProfile::builtin("athena-1024").unwrap()).unwrap();
    assert_eq!(
        std::fs::read(dir.join("cert.der")).unwrap(),
        pki.card_cert_der()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
        pki.card_cert_pem()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        pki.ca_cert_pem()
    );
    // From a profile file too.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/athena-1024.toml");
    let out = bin(&[
        "issue",
        "--profile",
        file,
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(dir.join("cert.der")).unwrap(),
        pki.card_cert_der()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // A bad profile: exit 1 and the key named.
    let bad = std::env::temp_dir().join(format!("tscns-sim-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "pin = \"12\"\n").unwrap();
    let out = bin(&[
        "issue",
        "--profile",
        bad.to_str().unwrap(),
        "--out-dir",
        "/nonexistent",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("profile key `pin`"),
        "{out:?}"
    );
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn binary_help_describes_the_profile_format() {
    let out = bin(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "vpcd",
        "issue",
        "maker = \"stincard\"",
        "[personal_data]",
        "[faults]",
        "mute_after",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
    let out = bin(&["vpcd", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--port"));
}
