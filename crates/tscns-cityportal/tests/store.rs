//! The store on both engines (SQLite always; PostgreSQL with `system-tests`, from
//! `TSCNS_TEST_POSTGRES_URL`): migrations, import, reopen, the one-marca race between 16
//! instances, SIGKILL in the middle of issuing, the append-only audit log, sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use time::OffsetDateTime;
use tscns_cert::CodiceFiscale;
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::{
    AuditEntry, Engine, SelfDeclarationRecord, Session, Store, StoreError,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A real sealed certificate (residenza of the default card's holder): its font objects are the
/// shared parts.
fn real_certificate() -> Vec<u8> {
    use tscns_cityportal::domain::{CertificateKind, Destination};
    sealed(
        "RSSMRA80A01H501U",
        CertificateKind::Residenza,
        None,
        Destination::Ordinaria,
    )
    .0
}

fn fixture() -> Registry {
    Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap()
}

#[test]
fn open_import_issue_reopen_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            assert_eq!(store.schema_version().await.unwrap(), 3);
            if store.engine() == Engine::Sqlite {
                assert_eq!(
                    store.sqlite_journal_mode().await.unwrap().as_deref(),
                    Some("wal")
                );
            }
            store.import(&fixture()).await.unwrap();
            let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
            let rec = store.record("H769", &mario).await.unwrap().unwrap();
            assert_eq!(
                rec,
                fixture().record(&mario).unwrap(),
                "{url}: the stored record"
            );
            assert!(store.record("F205", &mario).await.unwrap().is_none());
            let stranger = CodiceFiscale::parse("VRDGPP80A41F205B").unwrap();
            assert!(store.record("H769", &stranger).await.unwrap().is_none());
            // The omocodic person, found by her code as issued, never by its base code.
            let francesca = CodiceFiscale::parse("CLMFNC75T45F20RC").unwrap();
            assert!(store.record("H769", &francesca).await.unwrap().is_some());
            assert!(store
                .record("H769", &francesca.canonical())
                .await
                .unwrap()
                .is_none());

            let c = sample_certificate(Some("01234567890123"), b"%PDF-1.7 sample".to_vec());
            store.issue(&c, &issue_audit(&c)).await.unwrap();
            let d = SelfDeclarationRecord {
                id: "D1".into(),
                declarant: mario.as_str().into(),
                facts: vec!["nascita".into(), "residenza".into()],
                issued_at: c.issued_at,
                sha256: "00".into(),
            };
            store
                .record_self_declaration(&d, &issue_audit(&c))
                .await
                .unwrap();
            let s = Session {
                id: "S1".into(),
                codice_fiscale: mario.as_str().into(),
                auth_level: 4,
                csrf_token: "T".into(),
                created_at: c.issued_at,
                expires_at: c.issued_at + time::Duration::minutes(15),
                data: "{}".into(),
            };
            store.create_session(&s).await.unwrap();
            store.close().await;

            // Reopen: everything committed is there; migrations do not run twice.
            let store = Store::open(&url).await.unwrap();
            assert_eq!(store.schema_version().await.unwrap(), 3);
            assert_eq!(store.certificate(&c.id).await.unwrap().unwrap(), c);
            assert_eq!(
                store
                    .verify_certificate(&c.id, &c.verification_code.to_lowercase())
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                c.id
            );
            assert!(store
                .verify_certificate(&c.id, "0000-0000-0000-0000")
                .await
                .unwrap()
                .is_none());
            assert_eq!(
                store.self_declarations(mario.as_str()).await.unwrap(),
                vec![d]
            );
            assert_eq!(store.session("S1", c.issued_at).await.unwrap().unwrap(), s);
            assert!(store
                .session("S1", c.issued_at + time::Duration::minutes(16))
                .await
                .unwrap()
                .is_none());
            assert_eq!(
                store
                    .purge_sessions(c.issued_at + time::Duration::hours(1))
                    .await
                    .unwrap(),
                1
            );
            let log = store.audit_log(10).await.unwrap();
            assert_eq!(log.len(), 2);
            assert_eq!(log[0].action, "certificate.issue");
            assert!(store.record("H769", &mario).await.unwrap().is_some());
            // A second use of the marca is refused, and nothing of it is stored.
            let again = sample_certificate(Some("01234567890123"), b"other".to_vec());
            match store.issue(&again, &issue_audit(&again)).await {
                Err(StoreError::MarcaAlreadyUsed(m)) => assert_eq!(m, "01234567890123"),
                other => panic!("{url}: {other:?}"),
            }
            assert!(store.certificate(&again.id).await.unwrap().is_none());
            assert_eq!(store.audit_log(10).await.unwrap().len(), 2);
            store.close().await;
        }
    });
}

#[test]
fn import_replaces_the_municipality_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            store.import(&fixture()).await.unwrap();
            let mut smaller = fixture().file().clone();
            smaller.people.retain(|p| p.surname != "VERDI");
            smaller.families.retain(|f| f.id != "F0004");
            store
                .import(&Registry::from_file(smaller).unwrap())
                .await
                .unwrap();
            let antonio = CodiceFiscale::parse("VRDNTN60H30H769F").unwrap();
            assert!(
                store.record("H769", &antonio).await.unwrap().is_none(),
                "{url}"
            );
            let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
            assert!(store.record("H769", &mario).await.unwrap().is_some());
            store.close().await;
        }
    });
}

#[test]
fn the_audit_log_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            let entry = AuditEntry {
                actor: "RSSMRA80A01H501U".into(),
                auth_level: 4,
                action: "record.view".into(),
                subject: None,
                at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
                remote_addr: "::1".into(),
                outcome: "ok".into(),
            };
            store.audit(&entry).await.unwrap();
            for sql in [
                "UPDATE audit_log SET outcome = 'forged'",
                "DELETE FROM audit_log",
            ] {
                let e = store.execute_raw(sql).await.unwrap_err();
                assert!(e.to_string().contains("append-only"), "{url}: {e}");
            }
            assert_eq!(store.audit_log(10).await.unwrap(), vec![entry]);
            store.close().await;
        }
    });
}

#[test]
fn sixteen_instances_one_marca_exactly_one_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let urls = rt().block_on(engines(&dir));
    for url in urls {
        rt().block_on(async { Store::open(&url).await.unwrap().close().await });
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let url = url.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    rt().block_on(async move {
                        // Each thread is its own portal instance: its own pool.
                        let store = Store::open(&url).await.unwrap();
                        let c = sample_certificate(
                            Some("99999999999999"),
                            format!("pdf {i}").into_bytes(),
                        );
                        barrier.wait();
                        let r = store.issue(&c, &issue_audit(&c)).await;
                        store.close().await;
                        r
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let used = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::MarcaAlreadyUsed(_))))
            .count();
        assert_eq!((ok, used), (1, 15), "{url}: {results:?}");
        rt().block_on(async {
            let store = Store::open(&url).await.unwrap();
            assert_eq!(store.certificate_ids().await.unwrap().len(), 1);
            assert_eq!(store.used_marche().await.unwrap().len(), 1);
            assert_eq!(store.audit_log(100).await.unwrap().len(), 1);
            store.close().await;
        });
    }
}

const CHILD_ENV: &str = "TSCNS_CITYPORTAL_SIGKILL_CHILD_URL";

/// The child of `issuing_survives_sigkill`: issues certificates (distinct marche; 256 KiB of
/// random bytes, or a real sealed certificate with its shared parts) until it is killed.
#[test]
#[ignore = "child process of issuing_survives_sigkill; does nothing without its environment"]
fn sigkill_child_issuer() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    rt().block_on(async {
        let store = Store::open(&url).await.unwrap();
        let started = Instant::now();
        let mut n: u64 = 0;
        // Every other certificate is a real one, whose font objects go to the shared parts.
        let real = real_certificate();
        while started.elapsed() < Duration::from_secs(120) {
            let mut pdf = vec![0u8; 256 * 1024];
            getrandom::getrandom(&mut pdf).unwrap();
            if n % 2 == 1 {
                // Distinct bytes each time, the shared parts unchanged.
                pdf = real.clone();
                pdf.extend_from_slice(format!("% {n}\n").as_bytes());
            }
            let marca = format!("{:014}", 10_000_000_000_000u64 + n);
            let c = sample_certificate(Some(&marca), pdf);
            store.issue(&c, &issue_audit(&c)).await.unwrap();
            n += 1;
        }
    });
}

#[test]
fn issuing_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let urls = rt().block_on(engines(&dir));
    for url in urls {
        rt().block_on(async { Store::open(&url).await.unwrap().close().await });
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_child_issuer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait (bounded) until the child has committed a few certificates, then kill it hard.
        let deadline = Instant::now() + Duration::from_secs(60);
        let before = loop {
            let n = rt().block_on(async {
                let s = Store::open(&url).await.unwrap();
                let n = s.certificate_ids().await.unwrap().len();
                s.close().await;
                n
            });
            if n >= 5 {
                break n;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{url}: the child exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "{url}: the child issued nothing in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        rt().block_on(async {
            let store = Store::open(&url).await.unwrap();
            let ids = store.certificate_ids().await.unwrap();
            assert!(
                ids.len() >= before,
                "{url}: committed certificates were lost"
            );
            let marche = store.used_marche().await.unwrap();
            assert_eq!(
                marche.len(),
                ids.len(),
                "{url}: a marca without its certificate, or the reverse"
            );
            for (marca, id) in &marche {
                // `certificate` checks the stored PDF against its SHA-256: none is half stored.
                let c = store.certificate(id).await.unwrap().unwrap_or_else(|| {
                    panic!("{url}: marca {marca} claimed, certificate {id} missing")
                });
                assert!(
                    c.pdf.len() == 256 * 1024 || c.pdf.starts_with(b"%PDF-"),
                    "{url}: {id} has {} bytes",
                    c.pdf.len()
                );
            }
            // The real certificates' font objects are stored once, whatever the kill cut.
            let size = store.archive_size().await.unwrap();
            assert_eq!(size.certificates, ids.len() as u64);
            assert_eq!(size.shared_parts, 2, "{url}: {size:?}");
            assert_eq!(store.audit_log(100_000).await.unwrap().len(), ids.len());
            store.close().await;
        });
    }
}

/// Real certificates keep their font objects once, in `pdf_parts`; every read puts them back.
#[test]
fn shared_parts_are_stored_once_and_put_back_on_every_read() {
    use tscns_cityportal::domain::{CertificateKind, Destination};
    let dir = tempfile::tempdir().unwrap();
    let pdfs: Vec<Vec<u8>> = [
        ("RSSMRA80A01H501U", CertificateKind::Residenza),
        ("RSSLCU10C15H769O", CertificateKind::StatoDiFamiglia),
        ("RSSMRA80A01H501U", CertificateKind::Nascita),
    ]
    .into_iter()
    .map(|(cf, kind)| sealed(cf, kind, None, Destination::Ordinaria).0)
    .collect();
    rt().block_on(async {
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            let mut issued = Vec::new();
            for pdf in &pdfs {
                let c = sample_certificate(None, pdf.clone());
                store.issue(&c, &issue_audit(&c)).await.unwrap();
                issued.push(c);
            }
            // Made-up bytes have no shared part: their row keeps them whole.
            let mut random = vec![0u8; 20_000];
            getrandom::getrandom(&mut random).unwrap();
            let plain = sample_certificate(None, random);
            store.issue(&plain, &issue_audit(&plain)).await.unwrap();
            let size = store.archive_size().await.unwrap();
            assert_eq!(size.certificates, 4, "{url}");
            assert_eq!(size.shared_parts, 2, "{url}: one part per font");
            assert!(size.shared_part_bytes > 50_000, "{url}: {size:?}");
            let whole: u64 = pdfs.iter().map(|p| p.len() as u64).sum();
            assert_eq!(
                size.certificate_bytes,
                whole - 3 * size.shared_part_bytes + 20_000,
                "{url}: each real certificate's row lacks both fonts' objects"
            );
            store.close().await;
            // A fresh store knows no part: it reads them from the database.
            let store = Store::open(&url).await.unwrap();
            for c in issued.iter().chain([&plain]) {
                let back = store.certificate(&c.id).await.unwrap().unwrap();
                assert!(back.pdf == c.pdf, "{url}: {} differs", c.id);
                assert_eq!(back.sha256, c.sha256);
            }
            let listed = store.certificates_of("RSSMRA80A01H501U").await.unwrap();
            assert_eq!(listed.len(), 4, "{url}");
            assert!(listed.iter().all(|l| issued
                .iter()
                .chain([&plain])
                .any(|c| c.id == l.id && c.pdf == l.pdf)));
            // Parts are never changed or deleted.
            for sql in [
                "UPDATE pdf_parts SET bytes = bytes",
                "DELETE FROM pdf_parts",
            ] {
                assert!(store.execute_raw(sql).await.is_err(), "{url}: {sql}");
            }
            assert_eq!(store.archive_size().await.unwrap().shared_parts, 2);
            // A row whose splices do not fit, or name a part that is not there, is corrupt.
            let id = &issued[0].id;
            for column in [
                format!("1:{}", "0".repeat(64)),
                "999999999:".to_string() + &issued[0].sha256,
                "not a list".into(),
            ] {
                store
                    .execute_raw(&format!(
                        "UPDATE certificates SET pdf_parts = '{column}' WHERE id = '{id}'"
                    ))
                    .await
                    .unwrap();
                assert!(
                    matches!(store.certificate(id).await, Err(StoreError::Corrupt { .. })),
                    "{url}: {column}"
                );
            }
            store.close().await;
        }
    });
}

/// Parts lost behind the store's back (a restored backup, a failover, a deletion by hand): the
/// next issuance stores them again, so every certificate reads back. On SQLite, INSERT OR
/// REPLACE cannot replace a part either.
#[test]
fn lost_parts_are_stored_again_and_parts_cannot_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = real_certificate();
    rt().block_on(async {
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            let first = sample_certificate(None, pdf.clone());
            store.issue(&first, &issue_audit(&first)).await.unwrap();
            if store.engine() == Engine::Sqlite {
                let before = store.archive_size().await.unwrap();
                store
                    .execute_raw("INSERT OR REPLACE INTO pdf_parts (sha256, bytes) SELECT sha256, X'00' FROM pdf_parts")
                    .await
                    .unwrap();
                assert_eq!(store.archive_size().await.unwrap(), before);
            }
            let drop_trigger = match store.engine() {
                Engine::Sqlite => "DROP TRIGGER pdf_parts_no_delete",
                Engine::Postgres => "DROP TRIGGER pdf_parts_no_change ON pdf_parts",
            };
            store.execute_raw(drop_trigger).await.unwrap();
            assert_eq!(store.execute_raw("DELETE FROM pdf_parts").await.unwrap(), 2);
            // The same store, which knew the parts, issues again: they are stored again.
            let second = sample_certificate(None, pdf.clone());
            store.issue(&second, &issue_audit(&second)).await.unwrap();
            store.close().await;
            let fresh = Store::open(&url).await.unwrap();
            assert_eq!(fresh.archive_size().await.unwrap().shared_parts, 2, "{url}");
            for c in [&first, &second] {
                let back = fresh.certificate(&c.id).await.unwrap().unwrap();
                assert!(back.pdf == c.pdf, "{url}: {}", c.id);
            }
            fresh.close().await;
        }
    });
}

/// A stored part altered behind the store's back (its triggers dropped): reading a certificate
/// that uses it is refused, and so is issuing one that would.
#[test]
fn an_altered_part_is_refused_when_read_and_when_issuing() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = real_certificate();
    rt().block_on(async {
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            let first = sample_certificate(None, pdf.clone());
            store.issue(&first, &issue_audit(&first)).await.unwrap();
            let drop_trigger = match store.engine() {
                Engine::Sqlite => "DROP TRIGGER pdf_parts_no_update",
                Engine::Postgres => "DROP TRIGGER pdf_parts_no_change ON pdf_parts",
            };
            store.execute_raw(drop_trigger).await.unwrap();
            let flip = match store.engine() {
                Engine::Sqlite => {
                    "UPDATE pdf_parts SET bytes = CAST(X'00' || substr(bytes, 2) AS BLOB)"
                }
                Engine::Postgres => "UPDATE pdf_parts SET bytes = set_byte(bytes, 0, 0)",
            };
            assert_eq!(store.execute_raw(flip).await.unwrap(), 2, "{url}");
            store.close().await;
            let store = Store::open(&url).await.unwrap();
            let read = store.certificate(&first.id).await;
            assert!(
                matches!(read, Err(StoreError::Corrupt { .. })),
                "{url}: {:?}",
                read.map(|c| c.map(|c| c.id))
            );
            let second = sample_certificate(Some("55555555555555"), pdf.clone());
            let e = store
                .issue(&second, &issue_audit(&second))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Corrupt { .. }), "{url}: {e}");
            // Nothing of the refused issuance was kept: not its row, not its marca.
            assert_eq!(
                store.certificate_ids().await.unwrap(),
                vec![first.id.clone()]
            );
            assert!(store.used_marche().await.unwrap().is_empty(), "{url}");
            store.close().await;
        }
    });
}

/// Records are kept in memory by the registry's version: every change of the registry's tables,
/// through this store, another instance or by hand, is seen by the next read.
#[test]
fn kept_records_follow_every_change_of_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
    let luca = CodiceFiscale::parse("RSSLCU10C15H769O").unwrap();
    rt().block_on(async {
        for url in engines(&dir).await {
            let a = Store::open(&url).await.unwrap();
            let b = Store::open(&url).await.unwrap();
            a.import(&fixture()).await.unwrap();
            let street = |r: &tscns_cityportal::domain::RegistryRecord| {
                r.family.as_ref().unwrap().address.street.clone()
            };
            let first = a.record("H769", &mario).await.unwrap().unwrap();
            assert_eq!(street(&first), "VIA ROMA");
            // Read again: the same, and the marca check still answers.
            let (r, s, used) = a
                .records_and_marca("H769", &mario, &luca, Some("12345678901234"))
                .await
                .unwrap();
            assert_eq!(r.unwrap(), first);
            assert!(s.unwrap().person.codice_fiscale == luca && !used);
            // Another instance imports a registry where the family moved.
            let moved = tscns_cityportal::SAN_BENEDETTO_FIXTURE.replacen("VIA ROMA", "VIA MILANO", 1);
            b.import(&Registry::from_json(moved.as_bytes()).unwrap())
                .await
                .unwrap();
            let after = a.record("H769", &mario).await.unwrap().unwrap();
            assert_eq!(street(&after), "VIA MILANO", "{url}: a stale record");
            let (_, s, _) = a.records_and_marca("H769", &mario, &luca, None).await.unwrap();
            assert_eq!(street(&s.unwrap()), "VIA MILANO", "{url}");
            // An edit by hand.
            b.execute_raw(
                "UPDATE people SET data = replace(data, 'MARIO', 'MARIANO') WHERE codice_fiscale = 'RSSMRA80A01H501U'",
            )
            .await
            .unwrap();
            let edited = a.record("H769", &mario).await.unwrap().unwrap();
            assert_eq!(edited.person.given_name, "MARIANO", "{url}");
            // A deletion: no longer in the registry.
            b.execute_raw("DELETE FROM people WHERE codice_fiscale = 'RSSLCU10C15H769O'")
                .await
                .unwrap();
            assert!(a.record("H769", &luca).await.unwrap().is_none(), "{url}");
            let (r, s, _) = a.records_and_marca("H769", &mario, &luca, None).await.unwrap();
            assert!(r.unwrap().members.iter().all(|m| m.codice_fiscale != luca));
            assert!(s.is_none(), "{url}");
            // The records are really kept: a deletion that bypasses the triggers is not seen by
            // this store (within the kept rows' minute), and is by a fresh one.
            let mario_before = a.record("H769", &mario).await.unwrap().unwrap();
            let drop_trigger = match a.engine() {
                Engine::Sqlite => "DROP TRIGGER people_delete_version",
                Engine::Postgres => "DROP TRIGGER people_version ON people",
            };
            b.execute_raw(drop_trigger).await.unwrap();
            b.execute_raw("DELETE FROM people WHERE codice_fiscale = 'RSSMRA80A01H501U'")
                .await
                .unwrap();
            assert_eq!(a.record("H769", &mario).await.unwrap().unwrap(), mario_before, "{url}");
            let fresh = Store::open(&url).await.unwrap();
            assert!(fresh.record("H769", &mario).await.unwrap().is_none(), "{url}");
            fresh.close().await;
            // A used marca is seen at once.
            let c = sample_certificate(Some("12345678901234"), b"%PDF-1.7 x".to_vec());
            b.issue(&c, &issue_audit(&c)).await.unwrap();
            let (_, _, used) = a
                .records_and_marca("H769", &luca, &luca, Some("12345678901234"))
                .await
                .unwrap();
            assert!(used, "{url}");
            a.close().await;
            b.close().await;
        }
    });
}

/// A seal key that counts its signatures.
#[derive(Debug)]
struct Counting {
    key: tscns_cityportal::documents::Pkcs8Key,
    signed: std::sync::atomic::AtomicUsize,
}

impl tscns_cert::sign::SigningKey for Counting {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.key.certificate_chain()
    }
    fn key_bits(&self) -> usize {
        self.key.key_bits()
    }
    fn schemes(&self) -> Vec<tscns_cert::sign::SignatureScheme> {
        self.key.schemes()
    }
    fn sign(
        &self,
        scheme: tscns_cert::sign::SignatureScheme,
        message: &[u8],
    ) -> Result<Vec<u8>, tscns_cert::sign::SignError> {
        self.signed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.key.sign(scheme, message)
    }
}

/// Issuing uses records kept in memory without asking the database, and stores the certificate
/// only if the registry is still at their version: after another instance's import, the
/// certificate made from the kept records is not stored (its marca not claimed), and the one
/// stored is made from the new records.
#[test]
fn certificates_from_kept_records_are_stored_only_if_the_registry_did_not_change() {
    use std::sync::atomic::Ordering;
    use tscns_cityportal::documents::{certificate_pdf, CertificateContent};
    use tscns_cityportal::domain::{CertificateKind, MarcaId, Purpose, Stamp};
    use tscns_cityportal::issue::{issue_certificate, IssueRequest};
    use tscns_cityportal::store::CertificateIds;
    let dir = tempfile::tempdir().unwrap();
    let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
    let luca = CodiceFiscale::parse("RSSLCU10C15H769O").unwrap();
    let purpose = Purpose::ordinary();
    rt().block_on(async {
        for (n, url) in engines(&dir).await.into_iter().enumerate() {
            let a = Store::open(&url).await.unwrap();
            let b = Store::open(&url).await.unwrap();
            a.import(&fixture()).await.unwrap();
            let key = Counting {
                key: seal_pki().key(),
                signed: 0.into(),
            };
            let marca = |i: u64| {
                Stamp::Marca(
                    MarcaId::parse(&format!("{:014}", 60_000_000_000_000 + 10 * n as u64 + i))
                        .unwrap(),
                )
            };
            let stamps = [marca(1), marca(2), marca(3)];
            let request = |stamp| IssueRequest {
                municipality: "H769",
                requester: &mario,
                auth_level: 4,
                remote_addr: "127.0.0.1",
                subject: &luca,
                kind: CertificateKind::Residenza,
                purpose: &purpose,
                stamp: Some(stamp),
                portal_base_url: BASE,
                now: AT,
            };
            // The first reads the records (and keeps them).
            issue_certificate(&a, &key, &request(&stamps[0]))
                .await
                .unwrap();
            assert_eq!(key.signed.load(Ordering::SeqCst), 1);
            // Another instance imports a registry where the family moved.
            let moved =
                tscns_cityportal::SAN_BENEDETTO_FIXTURE.replacen("VIA ROMA", "VIA MILANO", 1);
            b.import(&Registry::from_json(moved.as_bytes()).unwrap())
                .await
                .unwrap();
            // The second is made from the kept records, refused by its transaction, and made
            // again from the new ones: two signatures, one certificate.
            let c = issue_certificate(&a, &key, &request(&stamps[1]))
                .await
                .unwrap();
            assert_eq!(key.signed.load(Ordering::SeqCst), 3, "{url}");
            let now_record = b.record("H769", &luca).await.unwrap().unwrap();
            assert_eq!(
                now_record.family.as_ref().unwrap().address.street,
                "VIA MILANO"
            );
            let ids = CertificateIds {
                id: c.id.clone(),
                verification_code: c.verification_code.clone(),
            };
            let made = |record| {
                certificate_pdf(&CertificateContent {
                    record,
                    kind: CertificateKind::Residenza,
                    destination: purpose.destination,
                    stamp: Some(&stamps[1]),
                    ids: &ids,
                    issued_at: AT,
                    portal_base_url: BASE,
                })
                .unwrap()
            };
            let stored = a.certificate(&c.id).await.unwrap().unwrap();
            assert!(
                stored.pdf.starts_with(&made(&now_record)),
                "{url}: made from stale records"
            );
            let mut old = now_record.clone();
            old.family.as_mut().unwrap().address.street = "VIA ROMA".into();
            assert!(!stored.pdf.starts_with(&made(&old)));
            // Each marca claimed once, by its certificate; nothing else stored.
            let used = a.used_marche().await.unwrap();
            assert_eq!(used.len(), 2, "{url}: {used:?}");
            assert_eq!(a.certificate_ids().await.unwrap().len(), 2, "{url}");
            let second = format!("{:014}", 60_000_000_000_000 + 10 * n as u64 + 2);
            assert!(
                used.iter().any(|(m, id)| *m == second && *id == c.id),
                "{used:?}"
            );
            // The third is made from the records kept at the new version: one signature.
            issue_certificate(&a, &key, &request(&stamps[2]))
                .await
                .unwrap();
            assert_eq!(key.signed.load(Ordering::SeqCst), 4, "{url}");
            // A marca this store used is refused before anything is signed.
            let e = issue_certificate(&a, &key, &request(&stamps[2]))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("already been used"), "{e}");
            assert_eq!(key.signed.load(Ordering::SeqCst), 4, "{url}");
            // A marca another instance used: refused at its claim, then remembered, so the
            // next attempt is refused before anything is signed.
            let elsewhere = marca(4);
            let Stamp::Marca(m) = &elsewhere else {
                unreachable!()
            };
            let other = sample_certificate(Some(m.as_str()), b"%PDF-1.7 x".to_vec());
            b.issue(&other, &issue_audit(&other)).await.unwrap();
            for signed in [5, 5] {
                let e = issue_certificate(&a, &key, &request(&elsewhere))
                    .await
                    .unwrap_err();
                assert!(e.to_string().contains("already been used"), "{e}");
                assert_eq!(key.signed.load(Ordering::SeqCst), signed, "{url}");
            }
            assert_eq!(a.certificate_ids().await.unwrap().len(), 4, "{url}");
            a.close().await;
            b.close().await;
        }
    });
}

#[test]
fn bad_urls_are_refused() {
    rt().block_on(async {
        for url in ["mysql://x", "file:///tmp/x", ""] {
            assert!(
                matches!(Store::open(url).await, Err(StoreError::UnsupportedUrl(_))),
                "{url}"
            );
        }
    });
}

#[test]
fn verification_reads_the_pdf_only_for_a_right_code_and_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let url = format!("sqlite://{}/verify.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        store.import(&fixture()).await.unwrap();
        // A stored PDF that does not match its hash: reading it is an error, so any read of
        // the blob shows.
        let mut c = sample_certificate(None, b"%PDF-1.7 original".to_vec());
        c.pdf = b"%PDF-1.7 damaged".to_vec();
        store.issue(&c, &issue_audit(&c)).await.unwrap();
        assert!(matches!(
            store.certificate(&c.id).await,
            Err(StoreError::Corrupt { .. })
        ));
        // A wrong code (or an unknown id) never touches the blob.
        for (id, code) in [(c.id.as_str(), "0000-0000-0000-0000"), ("H769-NONE", "X")] {
            assert!(store.verify_certificate(id, code).await.unwrap().is_none());
            assert!(store
                .verify_certificate_metadata(id, code)
                .await
                .unwrap()
                .is_none());
        }
        // The right code without the PDF: the metadata, the stored hash, no blob.
        let m = store
            .verify_certificate_metadata(&c.id, &c.verification_code)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.id.as_str(), m.sha256.as_str()),
            (c.id.as_str(), c.sha256.as_str())
        );
        assert!(m.pdf.is_empty());
        // The right code with the PDF: the blob is read (and here found damaged).
        assert!(matches!(
            store.verify_certificate(&c.id, &c.verification_code).await,
            Err(StoreError::Corrupt { .. })
        ));
        store.close().await;
    });
}

#[test]
fn sessions_are_stored_by_the_sha256_of_their_id() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let url = format!("sqlite://{}/sessions.db", dir.path().display());
        // A store of the portal's first schema with a session kept by its raw id.
        let store = Store::open(&url).await.unwrap();
        let now = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap();
        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, codice_fiscale, auth_level, csrf_token, created_at, expires_at, data) VALUES ('OLD', 'RSSMRA80A01H501U', 2, 'T', $1, $2, '{}')",
        )
        .bind(now.unix_timestamp())
        .bind(now.unix_timestamp() + 900)
        .execute(&raw)
        .await
        .unwrap();
        store.close().await;
        // The portal's migration drops it.
        let store = Store::open_portal(&url).await.unwrap();
        assert!(store.session("OLD", now).await.unwrap().is_none());
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(count, 0, "sessions of the old schema are dropped");

        let id = "a".repeat(64);
        let s = Session {
            id: id.clone(),
            codice_fiscale: "RSSMRA80A01H501U".into(),
            auth_level: 2,
            csrf_token: "T".into(),
            created_at: now,
            expires_at: now + time::Duration::minutes(15),
            data: "{}".into(),
        };
        store.create_session(&s).await.unwrap();
        let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
            .fetch_all(&raw)
            .await
            .unwrap();
        assert_eq!(stored, vec![hex::encode(sha2::Sha256::digest(id.as_bytes()))]);
        assert!(!stored.contains(&id));
        // Found, renewed and ended by the id itself; the stored key is not a session id.
        assert_eq!(store.session(&id, now).await.unwrap().unwrap(), s);
        assert!(store.session(&stored[0], now).await.unwrap().is_none());
        store
            .touch_session(&id, now + time::Duration::minutes(30))
            .await
            .unwrap();
        assert_eq!(
            store.session(&id, now).await.unwrap().unwrap().expires_at,
            now + time::Duration::minutes(30)
        );
        store.delete_session(&id).await.unwrap();
        assert!(store.session(&id, now).await.unwrap().is_none());
        raw.close().await;
        store.close().await;
    });
}

/// Concurrent issuances through one store share commits (group commit): every distinct marca
/// gives a certificate with its audit line, a marca twice in the same group is claimed once,
/// exempt certificates need no claim, and all of it is there after a reopen.
#[test]
fn concurrent_issuances_on_one_store_are_each_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let urls = rt().block_on(engines(&dir));
    for url in urls {
        let results = rt().block_on(async {
            let store = Store::open(&url).await.unwrap();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..40u64 {
                let marca = match i {
                    0..30 => Some(format!("{:014}", 40_000_000_000_000 + i)),
                    30..35 => Some("88888888888888".to_string()),
                    _ => None,
                };
                let store = store.clone();
                set.spawn(async move {
                    let c = sample_certificate(marca.as_deref(), format!("pdf {i}").into_bytes());
                    let r = store.issue(&c, &issue_audit(&c)).await;
                    (c, r)
                });
            }
            let results = set.join_all().await;
            store.close().await;
            results
        });
        let ok: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        let used = results
            .iter()
            .filter(
                |(_, r)| matches!(r, Err(StoreError::MarcaAlreadyUsed(m)) if m == "88888888888888"),
            )
            .count();
        assert_eq!((ok.len(), used), (36, 4), "{url}: {results:?}");
        rt().block_on(async {
            let store = Store::open(&url).await.unwrap();
            let mut ids = store.certificate_ids().await.unwrap();
            ids.sort();
            let mut want: Vec<String> = ok.iter().map(|(c, _)| c.id.clone()).collect();
            want.sort();
            assert_eq!(ids, want, "{url}");
            for (c, _) in &ok {
                assert_eq!(
                    store.certificate(&c.id).await.unwrap().as_ref(),
                    Some(c),
                    "{url}"
                );
            }
            assert_eq!(store.used_marche().await.unwrap().len(), 31, "{url}");
            assert_eq!(store.audit_log(100).await.unwrap().len(), 36, "{url}");
            store.close().await;
        });
    }
}

/// `records` (requester and subject together) gives what two `record` calls give: for the
/// requester themselves, a family member, someone of another family, and a stranger.
#[test]
fn records_of_requester_and_subject_match_single_reads() {
    let dir = tempfile::tempdir().unwrap();
    let urls = rt().block_on(engines(&dir));
    let cf = |s: &str| CodiceFiscale::parse(s).unwrap();
    for url in urls {
        rt().block_on(async {
            let store = Store::open(&url).await.unwrap();
            store.import(&fixture()).await.unwrap();
            let mario = cf("RSSMRA80A01H501U");
            for subject in [
                "RSSMRA80A01H501U",
                "RSSLCU10C15H769O",
                "FRRNDR85E20A462B",
                "RSSMRA85T10A562S",
            ] {
                let subject = cf(subject);
                let pair = store.records("H769", &mario, &subject).await.unwrap();
                let single = (
                    store.record("H769", &mario).await.unwrap(),
                    store.record("H769", &subject).await.unwrap(),
                );
                assert_eq!(pair, single, "{url} {subject:?}");
            }
            assert!(pair_is_none(
                &store
                    .records("H769", &cf("RSSMRA85T10A562S"), &mario)
                    .await
                    .unwrap()
            ));
            store.close().await;
        });
    }
}

fn pair_is_none<T>(p: &(Option<T>, Option<T>)) -> bool {
    p.0.is_none() && p.1.is_none()
}
