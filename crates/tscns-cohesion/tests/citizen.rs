//! The citizen's side end to end, in process: the simulated TS-CNS card (tscns-sim) behind the card
//! driver's TLS key, the Cohesion emulator, and an axum site protected by Cohesion (feature `axum`).
//! Exactly one card signature for the whole login; the site sees the card's codice fiscale with
//! tipo_autenticazione CF.
#![cfg(all(feature = "emulator", feature = "citizen", feature = "axum"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::site;

use std::sync::Arc;

use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_cohesion::citizen::CitizenLogin;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig};
use tscns_cohesion::{Error, Mode};
use tscns_sim::{Profile, SimCard};
use tscns_tls::{SignError, SignatureScheme, SigningKey, TlsVersions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_card_login_with_one_signature_in_both_modes() {
    for mode in [
        Mode::Saml {
            direct_to_cohesion_idp: true,
        },
        Mode::Saml {
            direct_to_cohesion_idp: false,
        },
        Mode::Classic,
    ] {
        let profile = Profile::default_profile().unwrap();
        let sim = SimCard::new(&profile).unwrap();
        let handle = sim.handle();
        let pki = sim.pki().clone();
        let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
            .unwrap()
            .codice_fiscale()
            .unwrap()
            .to_string();
        let key = tokio::task::spawn_blocking(move || {
            let mut card = CnsCard::open(sim).unwrap();
            card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
                .unwrap();
            CardKey::new(card).unwrap()
        })
        .await
        .unwrap();
        let ca = rustls_pki_types::CertificateDer::from(pki.ca_cert_der().to_vec());
        let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
            .await
            .unwrap();
        let url = site(&emu, mode).await;
        handle.reset_counters();

        let login = CitizenLogin::builder(Arc::new(key))
            .cohesion_hosts(["localhost".to_string()])
            .trust_ca_pem(emu.ca_pem().as_bytes())
            .build()
            .unwrap();
        let out = login.login(&url).await.unwrap();
        assert_eq!(out.status, 200, "{}", out.body);
        assert_eq!(out.site_id.as_deref(), Some("COMUNE_TEST"), "{mode:?}");
        let jar = out.netscape_cookie_file();
        assert!(
            jar.lines().any(|l| l
                .starts_with("#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\ttscns_cohesion_session\t")),
            "{jar}"
        );
        assert_eq!(out.body, format!("cf={cf} tipo=CF"), "{mode:?}");
        assert_eq!(out.signatures, 1, "{mode:?}");
        assert_eq!(
            handle.counters().signatures,
            1,
            "the card signed exactly once"
        );
        assert!(out.url.as_str().ends_with("/area-riservata"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_never_shown_to_unlisted_hosts() {
    let profile = Profile::default_profile().unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let pki = sim.pki().clone();
    let key = tokio::task::spawn_blocking(move || {
        let mut card = CnsCard::open(sim).unwrap();
        card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
            .unwrap();
        CardKey::new(card).unwrap()
    })
    .await
    .unwrap();
    let ca = rustls_pki_types::CertificateDer::from(pki.ca_cert_der().to_vec());
    let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
        .await
        .unwrap();
    let url = site(&emu, Mode::Classic).await;
    // Default allowlist: only the real Cohesion hosts, not this emulator on localhost.
    let login = CitizenLogin::builder(Arc::new(key))
        .trust_ca_pem(emu.ca_pem().as_bytes())
        .build()
        .unwrap();
    let e = login.login(&url).await.unwrap_err();
    assert!(
        matches!(e, Error::HostNotAllowed { ref host } if host == "localhost"),
        "{e}"
    );
    assert_eq!(handle.counters().signatures, 0);
}

/// A key that offers only some of the card key's schemes (to make the client sign PKCS#1 v1.5),
/// and with `tamper` flips a bit of every signature.
#[derive(Debug)]
struct OnlySchemes<K>(K, Vec<SignatureScheme>, bool);

impl<K: SigningKey> SigningKey for OnlySchemes<K> {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.0.certificate_chain()
    }
    fn key_bits(&self) -> usize {
        self.0.key_bits()
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        self.1.clone()
    }
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        assert!(self.1.contains(&scheme), "asked for {scheme}");
        let mut sig = self.0.sign(scheme, message)?;
        if self.2 {
            sig[20] ^= 0x04;
        }
        Ok(sig)
    }
}

/// Logs in to the test site with a simulated `profile_name` card through the emulator;
/// `schemes` restricts the key's schemes (None: all the card can do). With `tamper` every signature
/// is corrupted and the login must fail at the handshake.
async fn login_with_profile(
    profile_name: &str,
    versions: TlsVersions,
    schemes: Option<Vec<SignatureScheme>>,
    tamper: bool,
) {
    let what = format!("{profile_name} {versions:?} {schemes:?}");
    let profile = Profile::builtin(profile_name).unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let pki = sim.pki().clone();
    let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
        .unwrap()
        .codice_fiscale()
        .unwrap()
        .to_string();
    let key = tokio::task::spawn_blocking(move || {
        let mut card = CnsCard::open(sim).unwrap();
        card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
            .unwrap();
        CardKey::new(card).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(key.key_bits(), 1024, "{what}: a CNS 1.0 key");
    let all = key.schemes();
    let key: Arc<dyn SigningKey> = Arc::new(OnlySchemes(key, schemes.unwrap_or(all), tamper));
    let ca = rustls_pki_types::CertificateDer::from(pki.ca_cert_der().to_vec());
    let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
        .await
        .unwrap();
    let url = site(&emu, Mode::Classic).await;
    handle.reset_counters();

    let login = CitizenLogin::builder(key)
        .cohesion_hosts(["localhost".to_string()])
        .trust_ca_pem(emu.ca_pem().as_bytes())
        .tls_versions(versions)
        .build()
        .unwrap();
    if tamper {
        let e = login.login(&url).await.unwrap_err();
        assert!(
            e.to_string().contains("refused the TLS handshake"),
            "{what}: {e}"
        );
        assert_eq!(handle.counters().signatures, 1, "{what}: signed once");
        return;
    }
    let out = login
        .login(&url)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(out.status, 200, "{what}: {}", out.body);
    assert_eq!(out.body, format!("cf={cf} tipo=CF"), "{what}");
    assert_eq!(out.signatures, 1, "{what}");
    assert_eq!(
        handle.counters().signatures,
        1,
        "{what}: the card signed exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_bit_card_logs_in_with_tls13_pss() {
    login_with_profile("stincard-1024", TlsVersions::Tls13, None, false).await;
    // Auto picks TLS 1.3 (PSS) for a key that can do PSS.
    login_with_profile("athena-1024", TlsVersions::Auto, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_bit_card_logs_in_with_tls12_pkcs1() {
    for scheme in [
        SignatureScheme::Pkcs1Sha256,
        SignatureScheme::Pkcs1Sha384,
        SignatureScheme::Pkcs1Sha512,
    ] {
        login_with_profile(
            "stincard-1024",
            TlsVersions::Tls12,
            Some(vec![scheme]),
            false,
        )
        .await;
    }
    // TLS 1.2 with every scheme the card can do: the client prefers PSS there too.
    login_with_profile("stincard-1024", TlsVersions::Tls12, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_from_a_1024_bit_card_is_refused() {
    login_with_profile("stincard-1024", TlsVersions::Tls13, None, true).await;
    let pkcs1 = Some(vec![SignatureScheme::Pkcs1Sha256]);
    login_with_profile("stincard-1024", TlsVersions::Tls12, pkcs1, true).await;
}

/// A page that auto-posts the callback to another host than the one the login started from: the
/// citizen's session ids are never sent there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_is_posted_only_to_the_host_the_login_started_from() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let profile = Profile::default_profile().unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let key =
        tokio::task::spawn_blocking(move || CardKey::new(CnsCard::open(sim).unwrap()).unwrap())
            .await
            .unwrap();
    // The thief: counts what reaches it.
    let stolen = Arc::new(AtomicUsize::new(0));
    let thief = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_port = thief.local_addr().unwrap().port();
    let counter = stolen.clone();
    let thief_app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "grazie"
        }
    });
    tokio::spawn(async move { axum::serve(thief, thief_app).await });
    // The "site" whose page hands the callback to localhost (another host than 127.0.0.1).
    let page = format!(
        "<html><body onload=\"document.forms[0].submit()\"><form method=\"post\" \
         action=\"http://localhost:{thief_port}/cohesion/callback\"><input type=\"hidden\" \
         name=\"auth\" value=\"QQ==\"></form></body></html>"
    );
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_port = site.local_addr().unwrap().port();
    let site_app = axum::Router::new().route(
        "/area-riservata",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(site, site_app).await });
    let login = CitizenLogin::builder(Arc::new(key)).build().unwrap();
    let e = login
        .login(&format!("http://127.0.0.1:{site_port}/area-riservata"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::CallbackElsewhere { expected, got }
            if *expected == format!("http://127.0.0.1:{site_port}")
                && *got == format!("http://localhost:{thief_port}")),
        "{e}"
    );
    assert!(e.to_string().contains("localhost"), "{e}");
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "nothing was posted to the other host"
    );
    assert_eq!(handle.counters().signatures, 0);
}

/// The `id_sito` shown to the citizen comes from Cohesion's own pages only: before, the first URL
/// on any host with an `auth` parameter (here the site's own detour, naming "SITO_FALSO") won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_id_shown_comes_from_cohesion_not_from_the_sites_urls() {
    let profile = Profile::default_profile().unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let pki = sim.pki().clone();
    let key = tokio::task::spawn_blocking(move || {
        let mut card = CnsCard::open(sim).unwrap();
        card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
            .unwrap();
        CardKey::new(card).unwrap()
    })
    .await
    .unwrap();
    let ca = rustls_pki_types::CertificateDer::from(pki.ca_cert_der().to_vec());
    let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
        .await
        .unwrap();
    let url = site(&emu, Mode::Classic).await;
    let via = url.replace("/area-riservata", "/via-fake");
    let shown = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mismatches = Arc::new(std::sync::Mutex::new(0usize));
    let (s2, m2) = (shown.clone(), mismatches.clone());
    let login = CitizenLogin::builder(Arc::new(key))
        .cohesion_hosts(["localhost".to_string()])
        .trust_ca_pem(emu.ca_pem().as_bytes())
        .on_site_id(move |id| s2.lock().unwrap().push(id.to_owned()))
        .on_site_id_mismatch(move |_, _| *m2.lock().unwrap() += 1)
        .build()
        .unwrap();
    let out = login.login(&via).await.unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.site_id.as_deref(), Some("COMUNE_TEST"));
    assert_eq!(*shown.lock().unwrap(), ["COMUNE_TEST"]);
    assert_eq!(*mismatches.lock().unwrap(), 0);
}
