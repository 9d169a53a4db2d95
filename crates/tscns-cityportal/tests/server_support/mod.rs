//! The portal under test: a Cohesion emulator with the fixture's residents as password users, a
//! portal on a SQLite (or given) store on loopback, and a minimal "browser" (cookie jar, no
//! automatic redirects, bounded timeouts) that logs in by password.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use tscns_cityportal::documents::Pkcs8Key;
use tscns_cityportal::registry::Registry;
use tscns_cityportal::server::{self, Portal, PortalConfig, TestSeal};
use tscns_cityportal::store::Store;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig, TestUser};
use tscns_cohesion::ServiceProvider;

pub const SITE: &str = "CITYPORTAL_TEST";
pub const PASSWORD: &str = "prova-1234";
/// Mario Rossi, head of family F0001 (the holder of the `default` simulated card).
pub const MARIO: &str = "RSSMRA80A01H501U";
/// Laura Bianchi, Mario's wife (F0001).
pub const LAURA: &str = "BNCLRA82B41H769J";
/// Andrea Ferri, head of family F0002 (a civil union): a stranger to F0001.
pub const ANDREA: &str = "FRRNDR85E20A462B";
/// Francesca Colombo, living alone (F0003).
pub const FRANCESCA: &str = "CLMFNC75T45F20RC";

/// One test seal per process (RSA key generation is slow).
pub fn seal() -> &'static TestSeal {
    static S: OnceLock<TestSeal> = OnceLock::new();
    S.get_or_init(|| server::test_seal("San Benedetto del Tronto").unwrap())
}

/// The fixture's residents as a `--users` TOML file, all with [`PASSWORD`] and PIN 12345678.
pub fn users_toml() -> String {
    let r = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    users_toml_of(&r)
}

/// The residents of `r` as a `--users` TOML file, all with [`PASSWORD`] and PIN 12345678.
pub fn users_toml_of(r: &Registry) -> String {
    let mut s = String::new();
    for p in r.people() {
        s.push_str(&format!(
            "[[user]]\ncodice_fiscale = \"{}\"\npassword = \"{PASSWORD}\"\npin = \"12345678\"\nfirst_name = \"{}\"\nlast_name = \"{}\"\n\n",
            p.codice_fiscale.as_str(),
            p.given_name,
            p.surname
        ));
    }
    s
}

pub async fn emulator() -> Emulator {
    emulator_with_users(&users_toml()).await
}

/// An emulator whose password users are the residents of `r`.
pub async fn emulator_of(r: &Registry) -> Emulator {
    emulator_with_users(&users_toml_of(r)).await
}

async fn emulator_with_users(toml: &str) -> Emulator {
    let ca = rustls_pki_types::CertificateDer::from_pem_slice(seal().ca_pem.as_bytes()).unwrap();
    let mut cfg = EmulatorConfig::loopback(vec![ca]);
    cfg.users = TestUser::from_toml(toml).unwrap();
    Emulator::start(cfg).await.unwrap()
}

/// A store URL in `dir` with the registry `r` imported.
pub async fn sqlite_store_of(dir: &tempfile::TempDir, r: &Registry) -> String {
    let url = format!("sqlite://{}/portal.db", dir.path().display());
    let store = Store::open_portal(&url).await.unwrap();
    store.import(r).await.unwrap();
    store.close().await;
    url
}

/// A running portal.
pub struct TestPortal {
    pub url: String,
    /// The CA of the portal's TLS certificate (portals from [`portal_https`]).
    pub tls_ca_pem: Option<String>,
    pub store: Store,
    pub portal: Portal,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestPortal {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Drop for TestPortal {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A store URL in `dir` with the fixture imported.
pub async fn sqlite_store(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite://{}/portal.db", dir.path().display());
    let store = Store::open_portal(&url).await.unwrap();
    let r = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    store.import(&r).await.unwrap();
    store.close().await;
    url
}

/// Starts a portal on `store_url` (fixture imported) against `emu`.
pub async fn portal(emu: &Emulator, store_url: &str, min_level: u8) -> TestPortal {
    portal_with(emu, store_url, min_level, |_| {}).await
}

pub async fn portal_with(
    emu: &Emulator,
    store_url: &str,
    min_level: u8,
    tune: impl FnOnce(&mut PortalConfig),
) -> TestPortal {
    start_portal(emu, store_url, min_level, false, tune).await
}

/// Starts a portal served over TLS at `https://localhost:PORT` (a self-signed certificate for
/// `localhost`, as `--tls-cert`/`--tls-key` would give), against `emu`.
pub async fn portal_https(emu: &Emulator, store_url: &str, min_level: u8) -> TestPortal {
    start_portal(emu, store_url, min_level, true, |_| {}).await
}

async fn start_portal(
    emu: &Emulator,
    store_url: &str,
    min_level: u8,
    https: bool,
    tune: impl FnOnce(&mut PortalConfig),
) -> TestPortal {
    let store = Store::open_portal(store_url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (url, tls, tls_ca_pem) = if https {
        let pki = tscns_tls::test_pki::TestPki::generate(MARIO, 2048).unwrap();
        let tls = server::tls_config(
            pki.server_cert_pem.as_bytes(),
            pki.server_key_pem.as_bytes(),
        )
        .unwrap();
        (
            format!("https://localhost:{}", addr.port()),
            Some(tls),
            Some(pki.ca_pem),
        )
    } else {
        (format!("http://{addr}"), None, None)
    };
    let public: tscns_cohesion::Url = url.parse().unwrap();
    let mut config = PortalConfig::new(public, "H769");
    config.min_level = min_level;
    tune(&mut config);
    let sp = ServiceProvider::new(
        server::sp_config(
            emu.base_url().unwrap(),
            emu.ca_pem().as_bytes(),
            emu.signing_certificate_pem().as_bytes(),
            SITE,
            &config.public_url,
            config.min_level,
        )
        .unwrap(),
    )
    .unwrap();
    let key = Pkcs8Key::new(seal().key_pem.as_bytes(), seal().cert_pem.as_bytes()).unwrap();
    let portal = Portal::new(store.clone(), sp, Arc::new(key), config)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = portal.router();
    let task = tokio::spawn(async move {
        server::serve(listener, router, tls, async {
            let _ = rx.await;
        })
        .await;
    });
    TestPortal {
        url,
        tls_ca_pem,
        store,
        portal,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A browser: cookie jar, trusts the emulator's CA, no automatic redirects.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

pub struct Answer {
    pub status: u16,
    pub url: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// The callback a login posted to the portal: its URL and form body (for replay tests).
#[derive(Clone, Debug)]
pub struct Callback {
    pub action: String,
    pub body: String,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

impl Browser {
    pub fn new(emu: &Emulator) -> Self {
        Self::trusting(emu, None)
    }

    /// A browser that also trusts `extra_ca_pem` (a portal served over TLS).
    pub fn trusting(emu: &Emulator, extra_ca_pem: Option<&str>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for pem in [Some(emu.ca_pem()), extra_ca_pem].into_iter().flatten() {
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Browser { client, jar }
    }

    async fn answer(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let url = r.url().to_string();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap().to_vec();
        Answer {
            status,
            url,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Answer {
        Self::answer(self.client.get(url).send().await.unwrap()).await
    }

    pub async fn get_json(&self, url: &str) -> Answer {
        Self::answer(
            self.client
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Answer {
        Self::answer(self.client.post(url).json(body).send().await.unwrap()).await
    }

    pub async fn post_form(&self, url: &str, body: &str, origin: Option<&str>) -> Answer {
        let mut r = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        Self::answer(r.send().await.unwrap()).await
    }

    /// GET following redirects (at most 10).
    pub async fn follow(&self, url: &str) -> Answer {
        let mut url = url.to_string();
        for _ in 0..10 {
            let a = self.get(&url).await;
            match a.location() {
                Some(l) if (300..400).contains(&a.status) => {
                    url = reqwest::Url::parse(&a.url)
                        .unwrap()
                        .join(&l)
                        .unwrap()
                        .to_string();
                }
                _ => return a,
            }
        }
        panic!("more than 10 redirects from {url}");
    }

    /// Logs in at `portal` by password at the emulator and stops before posting the callback.
    pub async fn login_until_callback(&self, portal: &str, cf: &str, method: &str) -> Callback {
        let page = self.follow(&format!("{portal}/accedi")).await;
        assert_eq!(page.status, 200, "emulator login page: {}", page.text());
        let html = page.text();
        let req = html
            .split("name=\"req\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no login request id in {html}"))
            .to_string();
        let login = reqwest::Url::parse(&page.url)
            .unwrap()
            .join("/SA/Login.aspx")
            .unwrap();
        let body = format!("req={req}&method={method}&user={cf}&password={PASSWORD}&pin=12345678");
        let a = self.post_form(login.as_str(), &body, None).await;
        let html = a.text();
        let form = html
            .find("<form id=\"cohesion-callback\"")
            .map(|i| &html[i..])
            .unwrap_or_else(|| panic!("no callback form ({}) in {html}", a.status));
        let tag_end = form.find('>').unwrap();
        let action = attr(&form[..tag_end], "action").unwrap();
        let input = &form[form.find("name=\"auth\"").unwrap()..];
        let auth = attr(input, "value").unwrap();
        Callback {
            action,
            body: format!(
                "auth={}",
                form_urlencoded::byte_serialize(auth.as_bytes()).collect::<String>()
            ),
        }
    }

    /// Posts the callback as Cohesion's page would.
    pub async fn post_callback(&self, cb: &Callback) -> Answer {
        self.post_form(&cb.action, &cb.body, None).await
    }

    /// A full password login (method `PW`) or password+PIN (`PIN`); asserts it lands on
    /// /anagrafe.
    pub async fn login(&self, portal: &str, cf: &str) -> Callback {
        let cb = self.login_until_callback(portal, cf, "PW").await;
        let a = self.post_callback(&cb).await;
        assert_eq!(a.status, 303, "callback: {}", a.text());
        assert_eq!(a.location().as_deref(), Some("/anagrafe"));
        cb
    }

    /// The CSRF token in a page's forms.
    pub async fn csrf(&self, portal: &str) -> String {
        let a = self.get(&format!("{portal}/certificati")).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let html = a.text();
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string()
    }
}

/// A fresh, unused marca id.
pub fn marca() -> String {
    let b: [u8; 8] = rand_bytes();
    let n = u64::from_le_bytes(b) % 100_000_000_000_000;
    format!("{n:014}")
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    b
}
