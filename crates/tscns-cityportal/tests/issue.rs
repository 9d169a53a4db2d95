//! Issuing end to end on both engines: store records, eligibility, PDF, seal, one transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{engines, seal_pki, BASE};
use time::macros::datetime;
use tscns_cert::CodiceFiscale;
use tscns_cityportal::documents::verify;
use tscns_cityportal::domain::{CertificateKind, MarcaId, Purpose, Refusal, Stamp};
use tscns_cityportal::issue::{issue_certificate, IssueError, IssueRequest};
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::{Store, StoreError};

#[test]
fn issue_refuse_and_never_reuse_a_marca() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let key = seal_pki().key();
        for url in engines(&dir).await {
            let store = Store::open(&url).await.unwrap();
            store
                .import(
                    &Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes())
                        .unwrap(),
                )
                .await
                .unwrap();
            let mario = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
            let luca = CodiceFiscale::parse("RSSLCU10C15H769O").unwrap();
            let andrea = CodiceFiscale::parse("FRRNDR85E20A462B").unwrap();
            let outsider = CodiceFiscale::parse("VRDGPP80A41F205B").unwrap();
            let marca = Stamp::Marca(MarcaId::parse("33333333333333").unwrap());
            let purpose = Purpose::ordinary();
            let req = |requester, subject| IssueRequest {
                municipality: "H769",
                requester,
                auth_level: 4,
                remote_addr: "127.0.0.1",
                subject,
                kind: CertificateKind::Residenza,
                purpose: &purpose,
                stamp: Some(&marca),
                portal_base_url: BASE,
                now: datetime!(2026-03-01 10:30:00 UTC),
            };
            let c = issue_certificate(&store, &key, &req(&mario, &luca))
                .await
                .unwrap();
            assert_eq!(store.certificate(&c.id).await.unwrap().unwrap(), c, "{url}");
            let v = verify(&c.pdf, std::slice::from_ref(&seal_pki().ca_der)).unwrap();
            assert_eq!(v.certificate_id, c.id);
            // The same marca again: refused, nothing stored.
            match issue_certificate(&store, &key, &req(&mario, &mario)).await {
                Err(IssueError::Store(StoreError::MarcaAlreadyUsed(_))) => {}
                other => panic!("{url}: {other:?}"),
            }
            // A stranger's certificate, and a requester from another municipality.
            match issue_certificate(&store, &key, &req(&mario, &andrea)).await {
                Err(IssueError::Refused(Refusal::NotInFamily)) => {}
                other => panic!("{url}: {other:?}"),
            }
            match issue_certificate(&store, &key, &req(&outsider, &outsider)).await {
                Err(IssueError::Refused(Refusal::RequesterNotResident)) => {}
                other => panic!("{url}: {other:?}"),
            }
            // A stamp that does not fit: a marca on a stato civile extract.
            let mut r = req(&mario, &mario);
            r.kind = CertificateKind::Nascita;
            assert!(matches!(
                issue_certificate(&store, &key, &r).await,
                Err(IssueError::Stamp(_))
            ));
            assert_eq!(store.certificate_ids().await.unwrap(), vec![c.id.clone()]);
            let log = store.audit_log(10).await.unwrap();
            assert_eq!(log.len(), 3, "{log:?}");
            assert!(log[0].outcome.starts_with("ok "));
            assert!(log[1].outcome.starts_with("refused: Online può richiedere"));
            assert_eq!(log[2].actor, outsider.as_str());
            store.close().await;
        }
    });
}
