//! Time to the first signature through PKCS#11: our module against OpenSC's on the same
//! simulated card through pcscd + vpcd.
//!
//! `cargo bench -p tscns-pkcs11-module --bench pkcs11_module` (needs pcscd with the vpcd driver
//! and OpenSC's `opensc-pkcs11.so`; scripts/test installs and starts them). The card and reader
//! model are those of the workspace's `benches/identity.rs`: a tscns-sim `stincard-1024` card
//! (CNS 1.0, the maker OpenSC 0.23 fully supports) on reader `Virtual PCD 00 01` (port 35964,
//! held with the `/tmp/tscns-vpcd-35964.lock` lock), behind a USB CCID reader talking T=1 at
//! 115 200 bit/s plus 10 ms per APDU.
//!
//! One run, for each module, loaded through the `cryptoki` crate in this process:
//! `C_Initialize`, the slot of that reader, a session, the certificate found and read
//! (`CKA_VALUE`), `C_Login` with the PIN, the private key found, `C_Sign` with
//! `CKM_SHA256_RSA_PKCS`, and the signature verified against the certificate's key (in the timed
//! part: "first verified signature"). `C_Finalize` and unloading come after the clock stops.
//! APDUs are counted by the simulated card itself, so both figures count the same thing. The
//! bench prints both wall times, both APDU counts and the ratios.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use tscns_sim::{serve_vpcd, Faults, Profile, SimCard, SimHandle};
use x509_cert::der::{Decode, Encode};

const PORT: u16 = 35964;
/// Fixed time per APDU of the reader model.
const APDU_LATENCY: Duration = Duration::from_millis(10);
/// Line rate of the reader model, bits per second.
const BIT_RATE: u64 = 115_200;
/// The baseline: Debian's OpenSC module.
const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

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

/// The lock of vpcd reader 1 that every test and bench of the workspace takes (the one of
/// `tscns_apdu::testing::ReaderLock`).
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

/// Our module, built by cargo next to this bench binary (`target/<profile>/deps`).
fn our_module() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for dir in [deps, deps.parent().unwrap()] {
        let p = dir.join("libtscns_pkcs11_module.so");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "libtscns_pkcs11_module.so not found next to {}",
        exe.display()
    );
}

/// From `C_Initialize` to a verified signature; returns the APDUs the card answered and the time.
fn first_signature(module: &Path, reader: &str, pin: &str, handle: &SimHandle) -> (u64, Duration) {
    let pkcs11 = Pkcs11::new(module).expect("load the module");
    let before = handle.counters().apdus;
    let start = Instant::now();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = pkcs11
        .get_slots_with_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            pkcs11
                .get_slot_info(*s)
                .is_ok_and(|i| i.slot_description().contains(reader))
        })
        .unwrap_or_else(|| panic!("{}: no token in {reader}", module.display()));
    let session = pkcs11.open_ro_session(slot).expect("C_OpenSession");
    let certs = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
        ])
        .expect("find the certificate");
    let cert = *certs.first().expect("a certificate");
    let attrs = session
        .get_attributes(cert, &[AttributeType::Value, AttributeType::Id])
        .expect("read the certificate");
    let (mut der, mut id) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Value(v) => der = v,
            Attribute::Id(v) => id = v,
            _ => {}
        }
    }
    session
        .login(UserType::User, Some(&AuthPin::new(pin.into())))
        .expect("C_Login");
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id),
        ])
        .expect("find the private key");
    let key = *keys.first().expect("the private key");
    let data = b"tscns bench: first signature";
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, key, data)
        .expect("C_Sign");
    let c = x509_cert::Certificate::from_der(&der).expect("an X.509 certificate");
    let spki = c
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("SPKI");
    RsaPublicKey::from_public_key_der(&spki)
        .expect("an RSA key")
        .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data), &sig)
        .expect("the signature verifies");
    let elapsed = start.elapsed();
    let apdus = handle.counters().apdus - before;
    drop(session);
    pkcs11.finalize().expect("C_Finalize");
    (apdus, elapsed)
}

fn bench(c: &mut Criterion) {
    assert!(
        Path::new("/run/pcscd/pcscd.comm").exists(),
        "pcscd is not running: run scripts/test, or start it with `mkdir -p /run/pcscd; pcscd -f &`"
    );
    assert!(
        Path::new(OPENSC).exists(),
        "{OPENSC} missing (Debian package opensc-pkcs11)"
    );
    let _lock = lock();
    let mut profile = Profile::builtin("stincard-1024").unwrap();
    profile.faults = Faults {
        latency: APDU_LATENCY,
        bit_rate: Some(BIT_RATE),
        ..Faults::none()
    };
    let pin = profile.pin.expose().to_owned();
    let server = serve_vpcd(SimCard::new(&profile).unwrap(), PORT).expect("vpcd reader");
    assert!(server.wait_ready(Duration::from_secs(10)));
    let reader = server.reader_name();
    tscns_apdu::pcsc::wait_for_card(&reader, true, Duration::from_secs(10))
        .expect("pcscd sees the card");
    let handle = server.handle();
    // Our module sees only this reader (another test's card may sit in reader 0).
    std::env::set_var("TSCNS_PKCS11_READER", &reader);
    std::env::remove_var("TSCNS_PKCS11_PINENTRY");
    let ours = our_module();

    let t_ours = RefCell::new(Tally::default());
    let t_opensc = RefCell::new(Tally::default());
    let mut g = c.benchmark_group("time_to_first_signature");
    g.sample_size(10);
    g.sampling_mode(criterion::SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(20));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("tscns-pkcs11-module", |b| {
        b.iter(|| {
            let (n, t) = first_signature(&ours, &reader, &pin, &handle);
            t_ours.borrow_mut().add(n, t);
        })
    });
    g.bench_function("opensc-pkcs11", |b| {
        b.iter(|| {
            let (n, t) = first_signature(Path::new(OPENSC), &reader, &pin, &handle);
            t_opensc.borrow_mut().add(n, t);
        })
    });
    g.finish();

    let (t, o) = (t_ours.borrow(), t_opensc.borrow());
    println!();
    println!(
        "C_Initialize to first verified signature (certificate found, login, CKM_SHA256_RSA_PKCS),"
    );
    println!(
        "stincard-1024 via pcscd+vpcd, reader model: {} ms per APDU + {} bit/s:",
        APDU_LATENCY.as_millis(),
        BIT_RATE
    );
    println!(
        "  tscns-pkcs11-module: {:6.1} APDUs  {:8.1} ms  ({} runs)",
        t.mean_apdus(),
        t.mean_ms(),
        t.runs
    );
    println!(
        "  OpenSC 0.23 module : {:6.1} APDUs  {:8.1} ms  ({} runs)",
        o.mean_apdus(),
        o.mean_ms(),
        o.runs
    );
    if t.mean_ms() > 0.0 {
        println!(
            "  ratio OpenSC / tscns-pkcs11-module: {:.2}x time, {:.2}x APDUs",
            o.mean_ms() / t.mean_ms(),
            o.mean_apdus() / t.mean_apdus().max(1.0)
        );
    }
    server.stop();
}

criterion_group!(benches, bench);
criterion_main!(benches);
