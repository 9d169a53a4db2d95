//! Helpers shared by the emulator tests: a minimal "browser" and test certificates.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::routing::get;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use scraper::{Html, Selector};
use tscns_cohesion::emulator::{Emulator, EmulatorConfig};
use tscns_cohesion::web::{Cohesion, CohesionUser};
use tscns_cohesion::ServiceProvider;
use tscns_cohesion::{AuthRestriction, Clock, Environment, Mode, SpConfig, SpConfigBuilder};

/// A CNS-like client certificate made with rcgen: CA + leaf with CN `CF/cardid.hash` and the CNS
/// authentication policy 1.3.76.16.2.1 (the CNS authentication certificate profile (CNS functional specification)).
pub struct TestCns {
    pub ca_der: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

pub fn test_cns(cf: &str, with_policy: bool) -> TestCns {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA Cittadini");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("{cf}/8038000000000009.i1ZpZfaCX/eKyikBfnF8to+M2T8="),
    );
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    if with_policy {
        // certificatePolicies { policyIdentifier 1.3.76.16.2.1 } (RFC 5280 4.2.1.4).
        let der = vec![
            0x30, 0x09, 0x30, 0x07, 0x06, 0x05, 0x2B, 0x4C, 0x10, 0x02, 0x01,
        ];
        leaf.custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 32],
                der,
            ));
    }
    let cert = leaf.signed_by(&key, &ca).unwrap();
    TestCns {
        ca_der: ca.der().clone(),
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

pub async fn emulator(cns: &TestCns, clock: Arc<dyn Clock>) -> Emulator {
    let mut cfg = EmulatorConfig::loopback(vec![cns.ca_der.clone()]);
    cfg.clock = clock;
    Emulator::start(cfg).await.unwrap()
}

pub fn sp_builder(
    emu: &Emulator,
    site: &str,
    mode: Mode,
    allow: &[AuthRestriction],
) -> SpConfigBuilder {
    let mut b = SpConfig::builder()
        .environment(Environment::Custom(emu.base_url().unwrap()))
        .site_id(site)
        .mode(mode)
        .restrictions(allow.iter().copied())
        .url_validate(format!("https://{site}.example/cohesion/callback"))
        .trust_ca(emu.ca_pem().as_bytes())
        .native_roots(false);
    if matches!(mode, Mode::Saml { .. }) {
        b = b.cohesion_certificate(emu.signing_certificate_pem().as_bytes());
    }
    b
}

/// A browser: cookie jar, trusts the emulator, optional client certificate, no auto-redirects.
pub struct Browser {
    pub client: reqwest::Client,
}

impl Browser {
    pub fn new(emu: &Emulator, client_cert: Option<&TestCns>) -> Self {
        Self::with_ca(emu.ca_pem(), client_cert)
    }

    pub fn with_ca(ca_pem: &str, client_cert: Option<&TestCns>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match client_cert {
            Some(c) => b
                .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        Browser { client }
    }

    /// GET following redirects (bounded); returns (status, final URL, body).
    pub async fn get(&self, url: &str) -> (u16, String, String) {
        let mut url = reqwest::Url::parse(url).unwrap();
        for _ in 0..10 {
            let r = self.client.get(url.clone()).send().await.unwrap();
            if r.status().is_redirection() {
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                url = url.join(&loc).unwrap();
                continue;
            }
            let status = r.status().as_u16();
            return (status, url.to_string(), r.text().await.unwrap());
        }
        panic!("too many redirects");
    }

    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> (u16, String) {
        let r = self.client.post(url).form(fields).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// The `auth` value of the auto-posting callback form, and its action.
pub fn callback_auth(html: &str) -> Option<(String, String)> {
    let doc = Html::parse_document(html);
    let form = doc
        .select(&Selector::parse("form#cohesion-callback").unwrap())
        .next()?;
    let action = form.value().attr("action")?.to_owned();
    let auth = form
        .select(&Selector::parse("input[name=auth]").unwrap())
        .next()?
        .value()
        .attr("value")?
        .to_owned();
    Some((action, auth))
}

/// Fills and posts a login form by id (`login-password` or `login-pin`).
pub async fn password_login(
    b: &Browser,
    page_url: &str,
    page: &str,
    form_id: &str,
    user: &str,
    password: &str,
    pin: Option<&str>,
) -> (u16, String) {
    let (action, mut fields) = {
        let doc = Html::parse_document(page);
        let form = doc
            .select(&Selector::parse(&format!("form#{form_id}")).unwrap())
            .next()
            .unwrap_or_else(|| panic!("no form {form_id} in {page}"));
        let action = form.value().attr("action").unwrap().to_owned();
        let fields: Vec<(String, String)> = form
            .select(&Selector::parse("input[type=hidden]").unwrap())
            .map(|i| {
                (
                    i.value().attr("name").unwrap().to_owned(),
                    i.value().attr("value").unwrap_or("").to_owned(),
                )
            })
            .collect();
        (action, fields)
    };
    fields.push(("user".into(), user.into()));
    fields.push(("password".into(), password.into()));
    if let Some(p) = pin {
        fields.push(("pin".into(), p.into()));
    }
    let url = reqwest::Url::parse(page_url)
        .unwrap()
        .join(&action)
        .unwrap();
    b.post_form(url.as_str(), &fields).await
}

/// Starts the site on a free loopback port; returns its protected URL, whose page reads
/// `cf=<codice fiscale> tipo=<tipo_autenticazione>`.
pub async fn site(emu: &Emulator, mode: Mode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut b = SpConfig::builder()
        .environment(Environment::Custom(emu.base_url().unwrap()))
        .site_id("COMUNE_TEST")
        .mode(mode)
        .allow(AuthRestriction::SmartCard)
        .url_validate(format!("http://127.0.0.1:{port}/cohesion/callback"))
        .trust_ca(emu.ca_pem().as_bytes())
        .native_roots(false);
    if matches!(mode, Mode::Saml { .. }) {
        b = b.cohesion_certificate(emu.signing_certificate_pem().as_bytes());
    }
    let cohesion = Cohesion::new(ServiceProvider::new(b.build().unwrap()).unwrap());
    let app = axum::Router::new()
        .route(
            "/area-riservata",
            get(|u: CohesionUser| async move {
                format!(
                    "cf={} tipo={}",
                    u.0.profile.codice_fiscale().unwrap(),
                    u.0.profile.authentication().unwrap().code()
                )
            }),
        )
        // A detour through the site's own URLs, one carrying an `auth` parameter that names
        // another site: what a citizen's program shows must come from Cohesion only.
        .route(
            "/via-fake",
            get(|| async {
                let fake = tscns_cohesion::DsAuth::request(
                    "SITO_FALSO",
                    "https://falso.example/cb",
                    "https://falso.example/",
                    "AuthRestriction=0",
                );
                let auth: String =
                    form_urlencoded::byte_serialize(fake.to_base64().as_bytes()).collect();
                axum::response::Redirect::to(&format!("/bounce?auth={auth}"))
            }),
        )
        .route(
            "/bounce",
            get(|| async { axum::response::Redirect::to("/area-riservata") }),
        )
        .merge(cohesion.routes())
        .layer(cohesion.layer());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    format!("http://127.0.0.1:{port}/area-riservata")
}
