//! Load: 200 citizens at once on loopback, each with its own session, asks for its record and has
//! a certificato di residenza issued (its own marca): 0 errors, 200 distinct certificates, 200
//! distinct marche, every PDF sealed. Bounded: at most 64 requests in flight, 300 s in all.
//! Prints the p50 and p99 latency of the record request and of issuance (a report, not a
//! performance claim: `cargo bench --bench portal` is where figures come from).
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use server_support::{emulator, marca, portal_with, sqlite_store, Browser};
use tscns_cityportal::domain::{eligibility, CertificateKind, Purpose};
use tscns_cityportal::registry::Registry;

const CITIZENS: usize = 200;
const IN_FLIGHT: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_citizens_at_once() {
    let registry = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    // Residents who may have their own certificato di residenza online.
    let residents: Vec<String> = registry
        .people()
        .iter()
        .filter_map(|p| {
            let r = registry.record(&p.codice_fiscale)?;
            let ok = eligibility(
                Some(&r),
                &r,
                CertificateKind::Residenza,
                &Purpose::ordinary(),
                today,
            )
            .is_ok();
            ok.then(|| p.codice_fiscale.as_str().to_string())
        })
        .collect();
    assert!(residents.len() >= 4, "fixture: {residents:?}");

    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = sqlite_store(&dir).await;
    // Every citizen is on one loopback address: raise the per-citizen issuance limit to what one
    // resident gets here (200 / residents) and keep the defaults otherwise.
    let per_citizen = CITIZENS.div_ceil(residents.len()) as u32 + 1;
    let p = portal_with(&emu, &store_url, 0, |c| {
        c.limits.issue.limit = c.limits.issue.limit.max(per_citizen);
        c.limits.per_address_factor = c.limits.per_address_factor.max(CITIZENS as u32);
    })
    .await;

    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CITIZENS {
        let cf = residents[i % residents.len()].clone();
        let base = p.url.clone();
        let gate = gate.clone();
        let browser = Browser::new(&emu);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            browser.login(&base, &cf).await;
            let t = Instant::now();
            let me = browser.get_json(&format!("{base}/api/v1/me")).await;
            let record = t.elapsed();
            if me.status != 200 || me.json()["codice_fiscale"] != cf.as_str() {
                return Err(format!("record of {cf}: {} {}", me.status, me.text()));
            }
            let marca = marca();
            let t = Instant::now();
            let r = browser
                .post_json(
                    &format!("{base}/api/v1/certificates"),
                    &json!({"kind": "residenza", "stamp": {"marca": marca}}),
                )
                .await;
            let issue = t.elapsed();
            if r.status != 201 {
                return Err(format!("issuance for {cf}: {} {}", r.status, r.text()));
            }
            let id = r.json()["id"].as_str().unwrap().to_string();
            Ok((record, issue, id, marca))
        }));
    }
    let mut errors = Vec::new();
    let mut records = Vec::new();
    let mut issues = Vec::new();
    let mut ids = HashSet::new();
    let mut marche = HashSet::new();
    let deadline = started + Duration::from_secs(300);
    for t in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, t).await {
            Err(_) => panic!("the load did not finish in 300 s"),
            Ok(joined) => match joined.unwrap() {
                Ok((r, i, id, m)) => {
                    records.push(r);
                    issues.push(i);
                    assert!(ids.insert(id.clone()), "duplicate certificate id {id}");
                    assert!(marche.insert(m), "duplicate marca");
                }
                Err(e) => errors.push(e),
            },
        }
    }
    let total = started.elapsed();
    assert!(
        errors.is_empty(),
        "{} errors, first: {}",
        errors.len(),
        errors[0]
    );
    assert_eq!(ids.len(), CITIZENS);
    let stored = p.store.certificate_ids().await.unwrap();
    assert_eq!(stored.len(), CITIZENS, "certificates in the store");
    assert_eq!(stored.iter().collect::<HashSet<_>>().len(), CITIZENS);
    assert_eq!(p.store.used_marche().await.unwrap().len(), CITIZENS);
    records.sort();
    issues.sort();
    println!(
        "{CITIZENS} citizens ({} residents, {IN_FLIGHT} in flight), {total:.1?} in all: \
         record p50 {:.1?} p99 {:.1?}; issuance p50 {:.1?} p99 {:.1?}",
        residents.len(),
        percentile(&records, 0.50),
        percentile(&records, 0.99),
        percentile(&issues, 0.50),
        percentile(&issues, 0.99),
    );
    p.stop().await;
}
