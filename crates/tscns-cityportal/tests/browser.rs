//! The portal in a real browser: Debian's Chromium, headless, driven through Debian's
//! chromedriver with fantoccini (nothing downloads a browser). A resident logs in by password at
//! the Cohesion emulator (`--users`, portal `--min-level 0`), reads the record, requests a
//! certificate with a marca da bollo and downloads it (its seal verifies), sees the refusal
//! explained for a subject outside the family, gets a self-declaration, opens the public
//! verification page, and signs out. axe-core (npm package `axe-core`, injected by the test)
//! checks every page against WCAG 2.1 A and AA: 0 violations. Screenshots go to
//! `<target>/tmp/cityportal-screenshots/` for a person to look at.
//!
//! Needs `chromium`, `chromium-driver` and axe-core (`scripts/test` installs them: axe-core with
//! `npm install --prefix <target>/npm axe-core`, or point `TSCNS_AXE_CORE_JS` at `axe.min.js`).
#![cfg(all(feature = "server", feature = "system-tests"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use server_support::{emulator, marca, portal_https, sqlite_store, ANDREA, MARIO, PASSWORD};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const HOWTO: &str = "install Debian's chromium and chromium-driver (scripts/test does: apt-get install chromium chromium-driver)";

/// chromedriver, stopped by PID when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver() -> Driver {
    assert!(
        Path::new(CHROMEDRIVER).exists(),
        "{CHROMEDRIVER} is missing: {HOWTO}"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: {HOWTO}"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} ({e}): {HOWTO}"));
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen in 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

fn axe_source() -> String {
    let path = std::env::var_os("TSCNS_AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("../npm/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {} ({e}): run scripts/test, or `npm install --prefix <target>/npm axe-core` \
             or set TSCNS_AXE_CORE_JS to axe.min.js",
            path.display()
        )
    })
}

fn screenshot_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cityportal-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Session {
    c: Client,
    axe: String,
    shots: PathBuf,
    n: usize,
    checked: Vec<String>,
}

impl Session {
    /// Opens `url` and waits (at most 20 s) until its document is there: chromedriver now and
    /// then answers a navigation before the page has any source, and then the navigation is
    /// made again.
    async fn goto(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.c.goto(url).await.unwrap();
            for _ in 0..25 {
                if self.c.source().await.unwrap().contains("</html>") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(Instant::now() < deadline, "{url}: no page after 20 s");
        }
    }

    async fn source(&self) -> String {
        self.c.source().await.unwrap()
    }

    /// axe-core on the current page (WCAG 2.1 A and AA), then a screenshot.
    async fn check(&mut self, name: &str) {
        let url = self.c.current_url().await.unwrap().to_string();
        // WebDriver scripts are not subject to the page's CSP (which allows no script at all).
        self.c
            .execute(&format!("{}\n;return typeof axe;", self.axe), vec![])
            .await
            .unwrap();
        let result = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
                   .then(r => done({violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\
                     nodes: v.nodes.map(n => n.html)})), passes: r.passes.length}))\
                   .catch(e => done({error: String(e)}));",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            result.get("error").is_none(),
            "axe failed on {url}: {result}"
        );
        let violations = result["violations"].as_array().unwrap();
        assert!(
            violations.is_empty(),
            "{name} ({url}): {} accessibility violations: {}",
            violations.len(),
            serde_json::to_string_pretty(violations).unwrap()
        );
        assert!(
            result["passes"].as_u64().unwrap() > 0,
            "axe checked nothing on {url}"
        );
        self.n += 1;
        let png = self.c.screenshot().await.unwrap();
        let path = self.shots.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, png).unwrap();
        println!(
            "{name}: {url}: 0 axe violations; screenshot {}",
            path.display()
        );
        self.checked.push(url);
    }

    async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// Waits (bounded) until the current URL's path is `path`.
    async fn wait_path(&self, path: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let u = self.c.current_url().await.unwrap();
            if u.path() == path {
                return u.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "still at {u}, waiting for {path}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn cookie_header(&self) -> String {
        self.c
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_uses_the_portal_in_chromium() {
    let axe = axe_source();
    let driver = start_driver();
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal_https(&emu, &sqlite_store(&dir).await, 0).await;
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        // The emulator's and the portal's test CAs are not in the browser's store.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1600",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let c = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port)),
    )
    .await
    .expect("Chromium did not start in 60 s")
    .unwrap_or_else(|e| panic!("chromedriver session: {e}: {HOWTO}"));
    let mut s = Session {
        c,
        axe,
        shots: screenshot_dir(),
        n: 0,
        checked: Vec::new(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(300), journey(&mut s, &p, &emu)).await;
    let _ = s.c.clone().close().await;
    drop(driver);
    outcome.expect("the browser journey did not finish in 300 s");
    p.stop().await;
}

async fn journey(
    s: &mut Session,
    p: &server_support::TestPortal,
    emu: &tscns_cohesion::emulator::Emulator,
) {
    // Home page, then "Accedi".
    s.goto(&format!("{}/", p.url)).await;
    let home = s.source().await;
    assert!(
        home.contains("Accedi"),
        "the home page has no \"Accedi\":\n{home}"
    );
    s.check("home").await;
    s.click("a.pulsante[href='/accedi']").await;

    // The emulator's Cohesion login page: password method.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if s.c.find(Locator::Css("#login-password")).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no password login form at {}",
            s.c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.fill("#login-password input[name='user']", MARIO).await;
    s.fill("#login-password input[name='password']", PASSWORD)
        .await;
    s.click("#login-password button[type='submit']").await;

    // Back on the portal: Interrogazione Anagrafe with the record and the family.
    s.wait_path("/anagrafe").await;
    let html = s.source().await;
    assert!(html.contains("Interrogazione Anagrafe"), "{html}");
    assert!(html.contains(MARIO) && html.contains("ROSSI"), "{html}");
    assert!(
        html.contains("BNCLRA82B41H769J"),
        "the family is listed: {html}"
    );
    s.check("anagrafe").await;
    // Under TLS the session cookie is `__Host-` (Secure, host-only, path /) and HttpOnly.
    let cookies = s.c.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "__Host-cityportal_session")
        .unwrap_or_else(|| panic!("no __Host- session cookie: {cookies:?}"));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert!(!cookies.iter().any(|c| c.name() == "cityportal_session"));

    // Certificazione: a certificato di residenza with a marca da bollo.
    s.goto(&format!("{}/certificati", p.url)).await;
    s.check("certificati").await;
    let marca = marca();
    s.select("#tipo", "residenza").await;
    s.select("#soggetto", MARIO).await;
    s.click("#bollo-marca").await;
    s.fill("#marca", &marca).await;
    s.click("form.modulo button[type='submit']").await;
    // The form posts and the portal redirects to /certificati?emesso=ID (wait, bounded, for that
    // navigation: the page before the click is /certificati too).
    let deadline = Instant::now() + Duration::from_secs(60);
    let issued_url = loop {
        let u = s.c.current_url().await.unwrap().to_string();
        if u.contains("emesso=") {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "no certificate issued: {u}: {}",
            s.source().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let html = s.source().await;
    let id = issued_url
        .split("emesso=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert!(html.contains(&id), "{html}");
    s.check("certificato-emesso").await;

    // Its download link, fetched with the browser's session cookie: a sealed PDF that verifies.
    let href =
        s.c.find(Locator::Css(&format!("a[href='/certificati/{id}/pdf']")))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
    let dl = server_support::Browser::trusting(emu, p.tls_ca_pem.as_deref());
    let pdf = dl
        .client
        .get(format!("{}{href}", p.url))
        .header("cookie", s.cookie_header().await)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    let pdf = pdf.bytes().await.unwrap().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    let ca =
        rustls_pki_types::pem::PemObject::from_pem_slice(server_support::seal().ca_pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap();
    let sealed = tscns_cityportal::documents::verify(&pdf, &[ca])
        .expect("the downloaded certificate's seal verifies");
    assert_eq!(sealed.certificate_id, id);
    std::fs::write(s.shots.join("certificato-residenza.pdf"), &pdf).unwrap();

    // A subject outside the family: the refusal is explained, nothing is issued.
    s.goto(&format!("{}/certificati", p.url)).await;
    s.select("#tipo", "residenza").await;
    s.select("#soggetto", "altro").await;
    s.fill("#altro", ANDREA).await;
    s.click("#bollo-marca").await;
    s.fill("#marca", &server_support::marca()).await;
    s.click("form.modulo button[type='submit']").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let html = s.source().await;
        if html.contains("Richiesta non accolta") && html.contains("famiglia anagrafica") {
            break html;
        }
        assert!(Instant::now() < deadline, "no refusal shown: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !refused.contains("FERRI"),
        "the stranger's data leaked: {refused}"
    );
    s.check("certificato-rifiutato").await;
    assert_eq!(p.store.certificate_ids().await.unwrap(), vec![id.clone()]);

    // Autocertificazione page.
    s.goto(&format!("{}/autocertificazione", p.url)).await;
    assert!(s.source().await.contains("Autocertificazione"));
    s.check("autocertificazione").await;

    // The public verification page of the certificate (what its QR code opens).
    let issued = p.store.certificate(&id).await.unwrap().unwrap();
    s.goto(&format!(
        "{}/verifica/{id}?codice={}",
        p.url, issued.verification_code
    ))
    .await;
    let html = s.source().await;
    assert!(
        html.contains("valido") && !html.contains("non valido"),
        "{html}"
    );
    s.check("verifica").await;

    // Esci: the session ends, protected pages send the browser to log in again.
    s.goto(&format!("{}/anagrafe", p.url)).await;
    s.click("form.esci button[type='submit']").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let u = s.c.current_url().await.unwrap();
        if u.path() != "/anagrafe" {
            break;
        }
        assert!(Instant::now() < deadline, "still at {u} after Esci");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.check("uscita").await;
    let api = dl
        .client
        .get(format!("{}/api/v1/me", p.url))
        .header("cookie", s.cookie_header().await)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401, "the session still answers after Esci");
    assert!(s.checked.len() >= 8, "pages checked: {:?}", s.checked);
}
