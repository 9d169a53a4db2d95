//! The citizen's client (`tscns_cityportal::client`) against the reference portal, both in this
//! process on loopback: the Cohesion emulator, the portal on SQLite with the San Benedetto
//! fixture and a test seal, and the in-process simulated card (`default` profile, the holder
//! RSSMRA80A01H501U lives there). Every API call of the client, its typed refusals, and the seal
//! check.
#![cfg(all(feature = "client", feature = "server"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_cityportal::client::{
    CertificateRequest, CityPortal, ClientError, LoginOptions, StampChoice,
};
use tscns_cityportal::documents::Pkcs8Key;
use tscns_cityportal::registry::Registry;
use tscns_cityportal::server::{self, Portal, PortalConfig};
use tscns_cityportal::store::Store;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig};
use tscns_cohesion::ServiceProvider;
use tscns_tls::rustls::pki_types::CertificateDer;

struct Bed {
    emu: Emulator,
    base: String,
    seal: server::TestSeal,
    key: Arc<CardKey<tscns_sim::SimCard>>,
    sim: tscns_sim::SimHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.emu.shutdown();
    }
}

async fn bed() -> Bed {
    let profile = tscns_sim::Profile::builtin("default").unwrap();
    let sim = tscns_sim::SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let ca = CertificateDer::from(sim.pki().ca_cert_der().to_vec());
    let card = CnsCard::open(sim).unwrap();
    let key = CardKey::new(card).unwrap();
    key.card()
        .verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    let store = Store::open_portal(&format!(
        "sqlite://{}",
        dir.path().join("portal.db").display()
    ))
    .await
    .unwrap();
    store.import(&registry).await.unwrap();
    let seal = server::test_seal("San Benedetto del Tronto").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public: tscns_cohesion::Url = format!("http://{addr}/").parse().unwrap();
    let sp = ServiceProvider::new(
        server::sp_config(
            emu.base_url().unwrap(),
            emu.ca_pem().as_bytes(),
            emu.signing_certificate_pem().as_bytes(),
            "TSCNS-CLIENT-TEST",
            &public,
            2,
        )
        .unwrap(),
    )
    .unwrap();
    let seal_key = Pkcs8Key::new(seal.key_pem.as_bytes(), seal.cert_pem.as_bytes()).unwrap();
    let portal = Portal::new(
        store,
        sp,
        Arc::new(seal_key),
        PortalConfig::new(public, "H769"),
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, portal.router(), None, async move {
        let _ = stopped.await;
    }));
    Bed {
        emu,
        base: format!("http://{addr}"),
        seal,
        key: Arc::new(key),
        sim: handle,
        stop: Some(stop),
        _dir: dir,
    }
}

fn options(b: &Bed, seal_ca: Option<&str>) -> LoginOptions {
    let mut o = LoginOptions::default()
        .cohesion_host("localhost")
        .trust_ca_pem(b.emu.ca_pem().as_bytes());
    if let Some(ca) = seal_ca {
        o = o.seal_ca_pem(ca.as_bytes());
    }
    o
}

fn marca(n: u64) -> StampChoice {
    StampChoice::Marca(format!("{:014}", 42_000_000_000_000 + n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_api_through_the_client() {
    let b = bed().await;
    let before = b.sim.counters().signatures;
    let portal = CityPortal::login(&b.base, b.key.clone(), options(&b, Some(&b.seal.ca_pem)))
        .await
        .unwrap();
    assert_eq!(
        b.sim.counters().signatures - before,
        1,
        "one card signature"
    );
    assert_eq!(portal.login_signatures(), 1);

    // Interrogazione Anagrafe.
    let me = portal.record().await.unwrap();
    assert_eq!(me["codice_fiscale"], "RSSMRA80A01H501U", "{me}");
    assert_eq!(me["surname"], "ROSSI");
    let family = portal.family().await.unwrap();
    assert!(
        family
            .iter()
            .any(|m| m.codice_fiscale == "BNCLRA82B41H769J"),
        "{family:?}"
    );
    assert!(
        family.iter().all(|m| m.relationship.is_some()),
        "{family:?}"
    );

    // Options: the 15 online kinds, residenza available with the stamp duty.
    let opts = portal.certificate_options(None).await.unwrap();
    assert_eq!(opts.len(), 15, "{opts:?}");
    let res = opts.iter().find(|o| o.kind.slug == "residenza").unwrap();
    assert!(res.available, "{res:?}");
    assert_eq!(res.stamp, "required");
    assert_eq!(res.stamp_amount_cents, 1600);

    // A certificate with a marca: sealed, verified, its QR URL says valid.
    let issued = portal
        .request_certificate(&CertificateRequest::new("residenza").stamp(marca(1)))
        .await
        .unwrap();
    let sealed = issued.seal.as_ref().expect("the seal was checked");
    assert_eq!(sealed.certificate_id, issued.id);
    assert!(issued.pdf.starts_with(b"%PDF-"));
    assert!(issued
        .url
        .starts_with(&format!("{}/verifica/{}", b.base, issued.id)));
    assert!(issued.url.contains(&issued.code));
    let v = portal.verify(&issued.url).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.sha256.as_deref(), Some(issued.sha256.as_str()));
    assert_eq!(v.kind.as_ref().unwrap().slug, "residenza");
    // Anyone can verify, without logging in; a wrong code is not valid.
    let v = tscns_cityportal::client::verify(&issued.url, &[])
        .await
        .unwrap();
    assert!(v.valid);
    let wrong = issued.url.replace(&issued.code, "AAAAAAAAAAAAAAAA");
    assert!(!portal.verify(&wrong).await.unwrap().valid);

    // The same marca again: 409, with the portal's reason.
    let e = portal
        .request_certificate(&CertificateRequest::new("8").stamp(marca(1)))
        .await
        .unwrap_err();
    match &e {
        ClientError::Refused {
            status, message, ..
        } => {
            assert_eq!(*status, 409, "{e}");
            assert!(!message.is_empty());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A stranger's certificate: 403 with an Italian sentence.
    let e = portal
        .request_certificate(
            &CertificateRequest::new("residenza")
                .subject("VRDGPP80A01H501U")
                .stamp(marca(2)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { status: 403, .. }),
        "{e:?}"
    );
    assert!(e.is_refusal());
    // A bad body (unknown kind): 422.
    let e = portal
        .request_certificate(&CertificateRequest::new("nessuno").stamp(marca(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Refused { status: 422, .. }),
        "{e:?}"
    );
    // An exemption instead of a marca.
    let fam = portal
        .request_certificate(&CertificateRequest::new("stato-di-famiglia").stamp(
            StampChoice::Exemption {
                code: 3,
                description: None,
            },
        ))
        .await
        .unwrap();

    // The list and the downloads.
    let list = portal.certificates().await.unwrap();
    for id in [&issued.id, &fam.id] {
        assert!(list.iter().any(|c| &c.id == id), "{id} not in {list:?}");
    }
    assert_eq!(portal.download(&issued.id).await.unwrap(), issued.pdf);
    assert!(matches!(
        portal.download("H769-NONE").await.unwrap_err(),
        ClientError::Refused { status: 404, .. }
    ));

    // A self-declaration.
    let pdf = portal.declaration(&["nascita", "residenza"]).await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    // Logout: the session is gone, and LogoutSito reached Cohesion.
    portal.logout().await.unwrap();
    assert!(b.emu.tokens_logged_out() >= 1);
    assert!(matches!(
        portal.record().await.unwrap_err(),
        ClientError::Refused { status: 401, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_from_another_ca_is_refused() {
    let b = bed().await;
    let other = server::test_seal("Altrove").unwrap();
    let portal = CityPortal::login(&b.base, b.key.clone(), options(&b, Some(&other.ca_pem)))
        .await
        .unwrap();
    let e = portal
        .request_certificate(&CertificateRequest::new("residenza").stamp(marca(10)))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Seal(_)), "{e:?}");
    assert!(!e.is_refusal());
    portal.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_portal_is_a_network_error() {
    let b = bed().await;
    let e = CityPortal::login("http://127.0.0.1:9", b.key.clone(), options(&b, None))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Login(_)), "{e:?}");
    assert!(matches!(
        CityPortal::login("ftp://x", b.key.clone(), options(&b, None))
            .await
            .unwrap_err(),
        ClientError::Config(_)
    ));
    // Plain http:// to another machine: refused before anything is sent (no card signature).
    let before = b.sim.counters().signatures;
    let e = CityPortal::login("http://192.0.2.10:8080", b.key.clone(), options(&b, None))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::InsecureUrl(_)), "{e:?}");
    assert_eq!(b.sim.counters().signatures, before);
}
