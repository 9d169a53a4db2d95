//! The reference portal over HTTP on loopback: the record request (`GET /api/v1/me`) and
//! issuance end to end (`POST /api/v1/certificates`: session, rate limits, eligibility, PDF/A,
//! PAdES seal, one store transaction, audit), on SQLite and (with `TSCNS_TEST_POSTGRES_URL`)
//! PostgreSQL. In the same run, the baseline: the library's bare issuance
//! (`issue::issue_certificate`, the `cityportal` bench's figure) on the same store and seal key;
//! the summary prints what the HTTP layer costs on top of it.
//!
//! `cargo bench -p tscns-cityportal --features server --bench portal`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/server_support/mod.rs"]
mod server_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use server_support::{emulator, portal_with, Browser, MARIO};
use time::OffsetDateTime;
use tscns_cert::CodiceFiscale;
use tscns_cityportal::documents::Pkcs8Key;
use tscns_cityportal::domain::{CertificateKind, MarcaId, Purpose, Stamp};
use tscns_cityportal::issue::{issue_certificate, IssueRequest};
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::Store;

static MARCA: AtomicU64 = AtomicU64::new(0);

fn next_marca() -> String {
    format!(
        "{:014}",
        40_000_000_000_000u64 + MARCA.fetch_add(1, Ordering::Relaxed)
    )
}

/// The library's issuance of the same certificate the HTTP request asks for.
async fn issue_bare(store: &Store, key: &Pkcs8Key, base: &str) {
    let mario = CodiceFiscale::parse(MARIO).unwrap();
    let stamp = Stamp::Marca(MarcaId::parse(&next_marca()).unwrap());
    issue_certificate(
        store,
        key,
        &IssueRequest {
            municipality: "H769",
            requester: &mario,
            auth_level: 4,
            remote_addr: "127.0.0.1",
            subject: &mario,
            kind: CertificateKind::Residenza,
            purpose: &Purpose::ordinary(),
            stamp: Some(&stamp),
            portal_base_url: base,
            now: OffsetDateTime::now_utc(),
        },
    )
    .await
    .unwrap();
}

async fn record(b: &Browser, base: &str) {
    let a = b.get_json(&format!("{base}/api/v1/me")).await;
    assert_eq!(a.status, 200);
}

async fn issue_http(b: &Browser, base: &str) {
    let a = b
        .post_json(
            &format!("{base}/api/v1/certificates"),
            &json!({"kind": "residenza", "stamp": {"marca": next_marca()}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
}

type Job<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

fn per_second<'a>(n: u32, rt: &tokio::runtime::Runtime, f: &mut dyn FnMut() -> Job<'a>) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        rt.block_on(f());
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
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
    let emu = rt.block_on(emulator());
    let key = Pkcs8Key::new(
        server_support::seal().key_pem.as_bytes(),
        server_support::seal().cert_pem.as_bytes(),
    )
    .unwrap();
    let mut summary = Vec::new();
    let mut g = c.benchmark_group("portal");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));
    for (name, url) in &engines {
        rt.block_on(async {
            let s = Store::open_portal(url).await.unwrap();
            s.import(&registry).await.unwrap();
            s.close().await;
        });
        // One citizen issues thousands of certificates here: lift the issuance limit.
        let p = rt.block_on(portal_with(&emu, url, 0, |c| {
            c.limits.issue.limit = u32::MAX / 64;
        }));
        let b = Browser::new(&emu);
        rt.block_on(b.login(&p.url, MARIO));
        let base = p.url.clone();
        g.bench_function(format!("record_http_{name}"), |bn| {
            bn.iter(|| rt.block_on(record(&b, &base)))
        });
        g.bench_function(format!("issue_http_{name}"), |bn| {
            bn.iter(|| rt.block_on(issue_http(&b, &base)))
        });
        g.bench_function(format!("issue_bare_library_{name}"), |bn| {
            bn.iter(|| rt.block_on(issue_bare(&p.store, &key, &base)))
        });
        // The ratio, measured back to back in this process (interleaved rounds).
        let (mut http, mut bare) = (0.0, 0.0);
        for _ in 0..3 {
            http += per_second(30, &rt, &mut || Box::pin(issue_http(&b, &base)));
            bare += per_second(30, &rt, &mut || Box::pin(issue_bare(&p.store, &key, &base)));
        }
        let rec = per_second(200, &rt, &mut || Box::pin(record(&b, &base)));
        summary.push((*name, http / 3.0, bare / 3.0, rec));
        rt.block_on(p.stop());
    }
    g.finish();
    println!();
    for (name, http, bare, rec) in summary {
        println!(
            "{name}: record over HTTP {rec:.0}/s; issuance over HTTP {http:.1}/s vs the library's bare issuance {bare:.1}/s: \
             the HTTP layer costs {:.1}% of the bare rate",
            100.0 * (1.0 - http / bare)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
