//! Time to identity: tscns against OpenSC on the same simulated card through pcscd + vpcd.
//!
//! `cargo bench --bench identity` (needs pcscd with the vpcd driver, and OpenSC's `pkcs15-tool`
//! and `opensc-tool`; scripts/test installs and starts them). The card is a tscns-sim
//! `stincard-1024` card (CNS 1.0, 0xFF read cap, the maker OpenSC 0.23 fully supports) served on
//! reader `Virtual PCD 00 01` (port 35964, held with the `/tmp/tscns-vpcd-35964.lock` lock).
//!
//! Work measured, from "card in the reader" to "identity known": card id (EF_ID_Carta),
//! personal data (EF_Dati_personali) and the authentication certificate.
//! - tscns: connect through PC/SC, `CnsCard::open`, `identity()`.
//! - OpenSC: `pkcs15-tool --read-certificate 01` (driver matching, PKCS#15 emulation binding,
//!   certificate read) plus one `opensc-tool` run that selects and reads EF_ID_Carta and
//!   EF_Dati_personali (OpenSC has no command that prints them).
//!
//! Reader model (the simulator's fault injection): a USB CCID reader talking T=1 to the card at
//! 115 200 bit/s (3.57 MHz clock, F=372, D=12 as the CNS ATR's TA1 = 18 announces), i.e. 8 bits
//! per byte of command and answer at that rate, plus 10 ms per APDU for the USB round trip
//! (two 1 ms frames) and the card's own processing of a file command (about 8 ms on a CNS 1.0
//! chip). vpcd's own relay time comes on top for both sides alike.
//!
//! APDUs are counted by the simulated card itself, so both figures count the same thing. The
//! bench prints both wall times, both APDU counts and the ratio.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tscns::apdu::pcsc::{wait_for_card, PcscTransport};
use tscns_card::CnsCard;
use tscns_sim::{serve_vpcd, Faults, Profile, SimCard, SimHandle};

const PORT: u16 = 35964;
/// Fixed time per APDU of the reader model.
const APDU_LATENCY: Duration = Duration::from_millis(10);
/// Line rate of the reader model, bits per second.
const BIT_RATE: u64 = 115_200;

#[derive(Default)]
struct Tally {
    runs: u32,
    apdus: u64,
    time: Duration,
}

impl Tally {
    fn add(&mut self, apdus: u64, time: Duration) {
        self.runs += 1;
        self.apdus += apdus;
        self.time += time;
    }
    fn mean_apdus(&self) -> f64 {
        self.apdus as f64 / f64::from(self.runs.max(1))
    }
    fn mean_ms(&self) -> f64 {
        self.time.as_secs_f64() * 1000.0 / f64::from(self.runs.max(1))
    }
}

fn lock() -> std::fs::File {
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("/tmp/tscns-vpcd-{PORT}.lock"))
        .expect("open the vpcd lock file");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match f.try_lock() {
            Ok(()) => return f,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("vpcd reader {PORT} stays locked by another test: {e}"),
        }
    }
}

fn tscns_identity(reader: &str, handle: &SimHandle) -> (u64, Duration) {
    let before = handle.counters().apdus;
    let start = Instant::now();
    let mut card = CnsCard::open(PcscTransport::connect(reader).expect("connect")).expect("CNS");
    let id = card.identity().expect("identity");
    assert_eq!(id.checks.cf_matches_certificate, Some(true));
    let elapsed = start.elapsed();
    (handle.counters().apdus - before, elapsed)
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("OpenSC tools are installed (Debian package opensc)");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn opensc_identity(reader: &str, handle: &SimHandle) -> (u64, Duration) {
    let before = handle.counters().apdus;
    let start = Instant::now();
    run(Command::new("pkcs15-tool").args(["--reader", reader, "--read-certificate", "01"]));
    run(Command::new("opensc-tool").args([
        "--reader",
        reader,
        "-s",
        "00 A4 08 00 04 10 00 10 03",
        "-s",
        "00 B0 00 00 10",
        "-s",
        "00 A4 08 00 04 11 00 11 02",
        "-s",
        "00 B0 00 00 FF",
    ]));
    let elapsed = start.elapsed();
    (handle.counters().apdus - before, elapsed)
}

fn identity(c: &mut Criterion) {
    assert!(
        std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
        "pcscd is not running: run scripts/test, or start it with `mkdir -p /run/pcscd; pcscd -f &`"
    );
    let _lock = lock();
    let mut profile = Profile::builtin("stincard-1024").unwrap();
    profile.faults = Faults {
        latency: APDU_LATENCY,
        bit_rate: Some(BIT_RATE),
        ..Faults::none()
    };
    let server = serve_vpcd(SimCard::new(&profile).unwrap(), PORT).expect("vpcd reader");
    assert!(server.wait_ready(Duration::from_secs(10)));
    let reader = server.reader_name();
    wait_for_card(&reader, true, Duration::from_secs(10)).expect("pcscd sees the card");
    let handle = server.handle();

    let tscns = RefCell::new(Tally::default());
    let opensc = RefCell::new(Tally::default());
    let mut g = c.benchmark_group("time_to_identity");
    g.sample_size(10);
    g.sampling_mode(criterion::SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(20));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("tscns", |b| {
        b.iter(|| {
            let (n, t) = tscns_identity(&reader, &handle);
            tscns.borrow_mut().add(n, t);
        })
    });
    g.bench_function("opensc", |b| {
        b.iter(|| {
            let (n, t) = opensc_identity(&reader, &handle);
            opensc.borrow_mut().add(n, t);
        })
    });
    g.finish();

    let (t, o) = (tscns.borrow(), opensc.borrow());
    println!();
    println!(
        "time to identity (card id + personal data + certificate), stincard-1024 via pcscd+vpcd,"
    );
    println!(
        "reader model: {} ms per APDU + {} bit/s:",
        APDU_LATENCY.as_millis(),
        BIT_RATE
    );
    println!(
        "  tscns : {:6.1} APDUs  {:8.1} ms  ({} runs)",
        t.mean_apdus(),
        t.mean_ms(),
        t.runs
    );
    println!(
        "  OpenSC: {:6.1} APDUs  {:8.1} ms  ({} runs)",
        o.mean_apdus(),
        o.mean_ms(),
        o.runs
    );
    if t.mean_ms() > 0.0 {
        println!(
            "  ratio OpenSC / tscns: {:.2}x time, {:.2}x APDUs",
            o.mean_ms() / t.mean_ms(),
            o.mean_apdus() / t.mean_apdus().max(1.0)
        );
    }
    server.stop();
}

criterion_group!(benches, identity);
criterion_main!(benches);
