//! Sealed certificates per second on one core: record read, eligibility, PDF/A, PAdES seal and
//! the store transaction, on SQLite and (with `TSCNS_TEST_POSTGRES_URL`) PostgreSQL, beside the
//! bare RSA-2048 PKCS#1 v1.5 signing rate of the same key (one signature per certificate is the
//! floor).
//!
//! The figures are ratios measured in rounds: each round measures the bare signing rate, sealed
//! certificates 8 at a time, the bare rate, sealed certificates one at a time and the bare rate
//! again; each sealed rate is compared with the mean of the bare rates either side of it, and
//! the printed figure is the median round (the machine's speed drifts within a run; a ratio
//! from adjacent runs is steadier than one from rates minutes apart).
//!
//! The process pins itself to one CPU first, so every thread it starts (the runtime, sqlx's
//! SQLite workers) shares that core, and the bare signing rate is measured on it too. Two figures
//! per engine: one request at a time (each waits for its commit's fsync), and 8 requests at a
//! time, as a portal serves its citizens (each request a task of its own; one request's PDF and
//! seal run while another waits for the disk, and concurrent issuances share a commit). Durability is the same in both:
//! `synchronous=FULL`, and no request is answered before its commit.
//!
//! What it leaves out: every request is the same citizen's, so after the first one their records
//! come from memory (a portal serving many citizens reads more of them from the database), and
//! the PostgreSQL server is a process of its own, not pinned to the bench's CPU.
//!
//! `cargo bench -p tscns-cityportal --bench cityportal`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use time::OffsetDateTime;
use tscns_cert::sign::{SignatureScheme, SigningKey};
use tscns_cert::CodiceFiscale;
use tscns_cityportal::documents::Pkcs8Key;
use tscns_cityportal::domain::{CertificateKind, MarcaId, Purpose, Stamp};
use tscns_cityportal::issue::{issue_certificate, IssueRequest};
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::Store;

static MARCA: AtomicU64 = AtomicU64::new(0);

fn next_marca() -> Stamp {
    let n = MARCA.fetch_add(1, Ordering::Relaxed);
    Stamp::Marca(MarcaId::parse(&format!("{:014}", 20_000_000_000_000u64 + n)).unwrap())
}

async fn issue_one(store: &Store, key: &dyn SigningKey) {
    let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
    let luca = CodiceFiscale::parse("RSSLCU10C15H769O").unwrap();
    let stamp = next_marca();
    let purpose = Purpose::ordinary();
    issue_certificate(
        store,
        key,
        &IssueRequest {
            municipality: "H769",
            requester: &mario,
            auth_level: 4,
            remote_addr: "127.0.0.1",
            subject: &luca,
            kind: CertificateKind::StatoDiFamiglia,
            purpose: &purpose,
            stamp: Some(&stamp),
            portal_base_url: common::BASE,
            now: OffsetDateTime::now_utc(),
        },
    )
    .await
    .unwrap();
}

/// Pins this thread, and the threads it starts from now on, to the first CPU it may use.
fn pin_to_one_cpu() -> Option<usize> {
    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
    let allowed = sched_getaffinity(None).ok()?;
    let cpu = (0..CpuSet::MAX_CPU).find(|c| allowed.is_set(*c))?;
    let mut one = CpuSet::new();
    one.set(cpu);
    sched_setaffinity(None, &one).ok()?;
    Some(cpu)
}

/// Certificates per second with `concurrency` requests in flight, `n` in all: each request
/// loop is a task of its own, as a portal serves each connection, on the runtime's one thread.
fn concurrent_per_second(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    key: &Arc<Pkcs8Key>,
    n: u32,
    concurrency: u32,
) -> f64 {
    let start = Instant::now();
    rt.block_on(async {
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (store, key, next) = (store.clone(), Arc::clone(key), Arc::clone(&next));
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < u64::from(n) {
                        issue_one(&store, key.as_ref()).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn per_second(n: u32, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let cpu = pin_to_one_cpu();
    match cpu {
        Some(cpu) => println!("pinned to CPU {cpu}"),
        None => println!("could not pin to one CPU: the figures below use every CPU allowed"),
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(common::seal_pki().key());
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    let mut engines = vec![("sqlite", common::fresh_sqlite(&dir))];
    if std::env::var(common::POSTGRES_ENV).is_ok() {
        engines.push(("postgres", rt.block_on(common::fresh_postgres())));
    } else {
        eprintln!(
            "PostgreSQL skipped: set {} (scripts/lib.sh's tscns_start_postgres prints it)",
            common::POSTGRES_ENV
        );
    }
    let message = [0x5au8; 256];
    let mut g = c.benchmark_group("cityportal");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("bare_rsa2048_pkcs1_sha256_sign", |b| {
        b.iter(|| key.sign(SignatureScheme::Pkcs1Sha256, &message).unwrap())
    });
    for (name, url) in &engines {
        let store = rt.block_on(Store::open(url)).unwrap();
        rt.block_on(store.import(&registry)).unwrap();
        g.bench_function(format!("sealed_certificate_{name}"), |b| {
            b.iter(|| rt.block_on(issue_one(&store, &key)))
        });
        rt.block_on(store.close());
    }
    g.finish();
    phases(&rt, &key, &engines, &registry);
    // The ratios: this machine's speed drifts by several percent within a minute, so each
    // round measures the bare signing rate right before the sealed rates, and the figure is
    // the median of the rounds.
    let bare_rate = || {
        per_second(BARE_PER_ROUND, &mut || {
            key.sign(SignatureScheme::Pkcs1Sha256, &message).unwrap();
        })
    };
    let mut summary = Vec::new();
    for (name, url) in &engines {
        let store = rt.block_on(Store::open(url)).unwrap();
        rt.block_on(store.import(&registry)).unwrap();
        let (mut eight, mut one) = (Vec::new(), Vec::new());
        println!(
            "\n{name}, {ROUNDS} rounds (each sealed rate against the bare rates either side):"
        );
        for round in 1..=ROUNDS {
            // The bare rate before and after each sealed run, averaged: a drift of the machine's
            // speed during the round cancels out.
            let before = bare_rate();
            let concurrent = concurrent_per_second(&rt, &store, &key, CONCURRENT_PER_ROUND, 8);
            let middle = bare_rate();
            let alone = per_second(ALONE_PER_ROUND, &mut || {
                rt.block_on(issue_one(&store, &key))
            });
            let after = bare_rate();
            let (bare_c, bare_a) = ((before + middle) / 2.0, (middle + after) / 2.0);
            println!(
                "  round {round}: bare {before:.0}/s, 8 at a time {concurrent:.0}/s, bare {middle:.0}/s, one at a time {alone:.0}/s, bare {after:.0}/s: {:.1}% and {:.1}%",
                100.0 * concurrent / bare_c,
                100.0 * alone / bare_a
            );
            eight.push((100.0 * concurrent / bare_c, concurrent, bare_c));
            one.push((100.0 * alone / bare_a, alone, bare_a));
        }
        summary.push((*name, median(eight.clone()), median(one.clone())));
        let (low, high) = spread(&eight);
        println!("  8 at a time: rounds from {low:.1}% to {high:.1}%");
        let (low, high) = spread(&one);
        println!("  one at a time: rounds from {low:.1}% to {high:.1}%");
        rt.block_on(store.close());
    }
    println!();
    for (name, (c_ratio, c_rate, c_bare), (a_ratio, a_rate, a_bare)) in summary {
        println!(
            "sealed certificates on {name}, one core, 8 requests at a time: {c_rate:.0}/s = {c_ratio:.1}% of the bare signing rate ({c_bare:.0}/s), median of {ROUNDS} rounds"
        );
        println!(
            "sealed certificates on {name}, one core, one request at a time: {a_rate:.0}/s = {a_ratio:.1}% of the bare signing rate ({a_bare:.0}/s), median of {ROUNDS} rounds"
        );
    }
}

/// Rounds of the ratio measurement, and what each measures.
const ROUNDS: usize = 9;
const BARE_PER_ROUND: u32 = 300;
const CONCURRENT_PER_ROUND: u32 = 400;
const ALONE_PER_ROUND: u32 = 100;

/// The lowest and highest ratio of the rounds.
fn spread(rounds: &[(f64, f64, f64)]) -> (f64, f64) {
    rounds
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r.0), hi.max(r.0))
        })
}

/// The round whose ratio (the first field) is the median.
fn median(mut rounds: Vec<(f64, f64, f64)>) -> (f64, f64, f64) {
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    rounds[rounds.len() / 2]
}

/// Where the time of one sealed certificate goes (mean of 20), printed beside the figures.
fn phases(
    rt: &tokio::runtime::Runtime,
    key: &dyn SigningKey,
    engines: &[(&str, String)],
    registry: &Registry,
) {
    use tscns_cityportal::documents::{certificate_pdf, seal, CertificateContent, SealInfo};
    let n = 20u32;
    let rec = registry
        .record(&CodiceFiscale::parse("RSSLCU10C15H769O").unwrap())
        .unwrap();
    let ids = Store::new_certificate_ids("H769").unwrap();
    let stamp = next_marca();
    let content = CertificateContent {
        record: &rec,
        kind: CertificateKind::StatoDiFamiglia,
        destination: tscns_cityportal::domain::Destination::Ordinaria,
        stamp: Some(&stamp),
        ids: &ids,
        issued_at: OffsetDateTime::now_utc(),
        portal_base_url: common::BASE,
    };
    let t = Instant::now();
    let mut pdf = Vec::new();
    for _ in 0..n {
        pdf = certificate_pdf(&content).unwrap();
    }
    let pdf_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let info = SealInfo {
        name: "Comune".into(),
        location: "San Benedetto del Tronto".into(),
        reason: format!("Certificato n. {}", ids.id),
        signing_time: OffsetDateTime::now_utc(),
    };
    let t = Instant::now();
    for _ in 0..n {
        seal(&pdf, key, &info).unwrap();
    }
    let seal_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    println!("\nper certificate: PDF/A {pdf_ms:.1} ms, PAdES seal {seal_ms:.1} ms");
    for (name, url) in engines {
        let store = rt.block_on(Store::open(url)).unwrap();
        let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
        let t = Instant::now();
        for _ in 0..n {
            rt.block_on(store.record("H769", &mario)).unwrap();
        }
        let read_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
        let t = Instant::now();
        for _ in 0..n {
            let c = common::sample_certificate(
                Some(&format!(
                    "{:014}",
                    30_000_000_000_000u64 + MARCA.fetch_add(1, Ordering::Relaxed)
                )),
                pdf.clone(),
            );
            rt.block_on(store.issue(&c, &common::issue_audit(&c)))
                .unwrap();
        }
        let tx_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
        println!("{name}: record read {read_ms:.1} ms, issue transaction {tx_ms:.1} ms");
        rt.block_on(store.close());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
