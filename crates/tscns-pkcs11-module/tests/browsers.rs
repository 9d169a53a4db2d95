//! Real browsers log in to a Cohesion-protected site with the card through our module: the
//! seed's own flow. The tscns-cohesion emulator (its smart-card method requires a TLS client
//! certificate chained to the card's CA) and its demo site run in this process on loopback; the
//! browser is Debian's, headless, with a fresh profile whose NSS database has our module (added
//! with `modutil`) and the emulator's HTTPS CA. The module runs in pinentry mode (protected
//! authentication path), with the test pinentry answering the PIN: the browser never sees it.
//!
//! - Firefox ESR: `security.default_personal_cert = "Select Automatically"`, driven through its
//!   own Marionette protocol (no WebDriver download).
//! - Chromium: `AutoSelectCertificateForUrls` for the smart-card listener only, the NSS database
//!   in `$HOME/.pki/nssdb` of a temporary HOME, driven by Debian's chromedriver.
//!
//! The browser opens the protected page, is sent to Cohesion, clicks "Accedi con Smart Card",
//! the TLS handshake signs on the card (the PIN asked once through pinentry), the callback comes
//! back, and the protected page shows the holder's codice fiscale. The test asserts it in the
//! browser's DOM and in what the site saw (a smart-card login for that codice fiscale), and writes
//! a screenshot under the target directory (`browser-screenshots/`; with `TSCNS_UPDATE_DOCS=1`
//! also the crate's `docs/screenshots/`, which the README shows). Everything on loopback; the
//! browsers' proxy is a closed loopback port, so nothing leaves the machine. Every wait is bounded
//! and each browser is stopped by PID. Feature `system-tests`.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{
    module_path, pinentry_calls, pinentry_stub, run_env, target_dir, Plugged, Scratch, READER,
};
use serde_json::{json, Value};
use tscns_cohesion::emulator::{DemoSite, Emulator, EmulatorConfig};
use tscns_cohesion::AuthenticationType;

/// The whole login, from the first navigation to the protected page with the codice fiscale.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(120);
/// A browser's start (profile creation, first window).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The Cohesion emulator and the demo site, on a tokio runtime of their own.
struct Cohesion {
    site: DemoSite,
    emu: Emulator,
    rt: tokio::runtime::Runtime,
}

impl Cohesion {
    fn start(card_ca_der: &[u8]) -> Cohesion {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ca = rustls_pki_types::CertificateDer::from(card_ca_der.to_vec());
        let (emu, site) = rt.block_on(async {
            let emu = Emulator::start(EmulatorConfig::loopback(vec![ca]))
                .await
                .unwrap();
            let site = DemoSite::start(&emu, 0).await.unwrap();
            (emu, site)
        });
        Cohesion { site, emu, rt }
    }

    fn stop(self) {
        self.site.shutdown();
        self.emu.shutdown();
        self.rt.shutdown_timeout(Duration::from_secs(5));
    }
}

/// A child process stopped by PID (SIGTERM, a bounded wait, then SIGKILL) when dropped.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (Debian package {name})"));
        Proc { child, name }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// SIGTERM to `pid`, up to 10 s for it to go, then SIGKILL.
fn stop_pid(pid: u32) {
    let alive = || Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid);
    if !alive() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            eprintln!("{} (pid {pid}) ignored SIGTERM: killed", self.name);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What the login needs from a browser, through Marionette or WebDriver alike.
trait Browser {
    fn navigate(&mut self, url: &str);
    /// Clicks the element the CSS selector finds; `false` when there is none.
    fn click(&mut self, css: &str) -> bool;
    fn url(&mut self) -> String;
    fn source(&mut self) -> String;
    fn screenshot(&mut self) -> Vec<u8>;
}

/// Firefox's own remote protocol: frames `LEN:JSON`, commands `[0, id, name, params]`, answers
/// `[1, id, error, result]`.
struct Marionette {
    stream: BufReader<TcpStream>,
    next: u64,
}

impl Marionette {
    fn connect(port: u16) -> Marionette {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(90)))
            .unwrap();
        let mut m = Marionette {
            stream: BufReader::new(stream),
            next: 1,
        };
        let hello = m.read_frame();
        assert_eq!(hello["applicationType"], "gecko", "{hello}");
        m
    }

    fn read_frame(&mut self) -> Value {
        let mut len = Vec::new();
        self.stream.read_until(b':', &mut len).unwrap();
        len.pop();
        let n: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
        let mut body = vec![0; n];
        self.stream.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn send(&mut self, name: &str, params: Value) -> Result<Value, Value> {
        let id = self.next;
        self.next += 1;
        let msg = json!([0, id, name, params]).to_string();
        let frame = format!("{}:{msg}", msg.len());
        self.stream.get_mut().write_all(frame.as_bytes()).unwrap();
        loop {
            let v = self.read_frame();
            if v[0] == 1 && v[1] == id {
                return if v[2].is_null() {
                    Ok(v[3].clone())
                } else {
                    Err(v[2].clone())
                };
            }
        }
    }

    fn call(&mut self, name: &str, params: Value) -> Value {
        self.send(name, params)
            .unwrap_or_else(|e| panic!("Marionette {name}: {e}"))
    }
}

impl Browser for Marionette {
    fn navigate(&mut self, url: &str) {
        self.call("WebDriver:Navigate", json!({ "url": url }));
    }

    fn click(&mut self, css: &str) -> bool {
        let found = self.send(
            "WebDriver:FindElement",
            json!({"using": "css selector", "value": css}),
        );
        let Ok(found) = found else { return false };
        let id = element_id(&found["value"]);
        self.call("WebDriver:ElementClick", json!({ "id": id }));
        true
    }

    fn url(&mut self) -> String {
        self.call("WebDriver:GetCurrentURL", json!({}))["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn source(&mut self) -> String {
        self.call("WebDriver:GetPageSource", json!({}))["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let v = self.call("WebDriver:TakeScreenshot", json!({"full": false}));
        base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap()
    }
}

/// The W3C web element reference in a FindElement answer.
fn element_id(v: &Value) -> String {
    v["element-6066-11e4-a52e-4f735466cecf"]
        .as_str()
        .unwrap_or_else(|| panic!("no element reference in {v}"))
        .to_owned()
}

/// W3C WebDriver over HTTP/1.1 (chromedriver), one connection per command.
struct WebDriver {
    port: u16,
    session: String,
}

impl WebDriver {
    fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        // chromedriver keeps the connection open: the answer ends after Content-Length bytes.
        let mut r = BufReader::new(s);
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "chromedriver: {head}");
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {head}\n{}", String::from_utf8_lossy(&body)));
        (status, v)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Value> {
        let (status, v) = Self::http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        );
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(v)
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }
}

impl Drop for WebDriver {
    /// Ends the session (chromedriver then stops its Chromium), also when the test failed.
    fn drop(&mut self) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
            let req = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut status = String::new();
                let _ = BufReader::new(s).read_line(&mut status);
            }
        }
    }
}

impl Browser for WebDriver {
    fn navigate(&mut self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    fn click(&mut self, css: &str) -> bool {
        let Ok(found) = self.cmd(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        ) else {
            return false;
        };
        let id = element_id(&found);
        self.call("POST", &format!("/element/{id}/click"), Some(&json!({})));
        true
    }

    fn url(&mut self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn source(&mut self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The browser's part of the seed: protected page, Cohesion, the smart-card method, back to the
/// protected page. Saves a screenshot of Cohesion's login page as `NAME-cohesion-accesso.png`;
/// returns the final page source.
fn log_in(b: &mut dyn Browser, c: &Cohesion, cf: &str, name: &str) -> String {
    let what = name;
    let start = Instant::now();
    b.navigate(&c.site.protected_url());
    // SAML mode straight to Cohesion's IdP: the login page; the WAYF chooser only without it.
    b.click("#idp-cohesion");
    let page = b.source();
    assert!(
        page.contains("login-smartcard"),
        "{what}: Cohesion's login page offers the smart card: {} {page}",
        b.url()
    );
    save_png(b, &format!("{name}-cohesion-accesso.png"));
    assert!(b.click("#login-smartcard"));
    loop {
        let url = b.url();
        let page = b.source();
        if url.starts_with(&c.site.protected_url()) && page.contains(cf) {
            eprintln!(
                "{what}: protected page with the codice fiscale after {:?}",
                start.elapsed()
            );
            return page;
        }
        assert!(
            start.elapsed() < LOGIN_TIMEOUT,
            "{what}: no protected page within {LOGIN_TIMEOUT:?}; at {url}: {page}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Asserts what the site saw, and that the card signed with a PIN asked once; writes the
/// screenshot and returns its path.
fn check_and_shoot(
    b: &mut dyn Browser,
    c: &Cohesion,
    card: &Plugged,
    dir: &Scratch,
    page: &str,
    cf: &str,
    name: &str,
) -> PathBuf {
    assert!(page.contains(&format!("codice fiscale: {cf}")), "{page}");
    assert!(page.contains("tipo_autenticazione: CF"), "{page}");
    let seen = c
        .site
        .last_login()
        .expect("the site served the protected page");
    assert_eq!(
        seen.profile.codice_fiscale().map(|c| c.as_str().to_owned()),
        Some(cf.to_owned())
    );
    assert_eq!(
        seen.profile.authentication(),
        Some(&AuthenticationType::SmartCard),
        "a smart-card login"
    );
    assert!(
        card.handle.counters().signatures >= 1,
        "the card signed the handshake"
    );
    assert_eq!(
        pinentry_calls(dir),
        1,
        "the PIN was asked once, by pinentry"
    );
    save_png(b, name)
}

/// Writes the browser's screenshot as `TARGET/browser-screenshots/NAME` and prints the path.
fn save_png(b: &mut dyn Browser, name: &str) -> PathBuf {
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let out = target_dir().join("browser-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join(name);
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    // The README shows them: `TSCNS_UPDATE_DOCS=1` refreshes the crate's docs/screenshots/.
    if std::env::var_os("TSCNS_UPDATE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
    }
    path
}

/// An NSS database at `db` with our module and the emulator's CA (trusted for TLS servers).
fn nss_db(db: &Path, dir: &Scratch, emu: &Emulator, env: &[(&str, &str)]) {
    std::fs::create_dir_all(db).unwrap();
    let sql = format!("sql:{}", db.display());
    let t = Duration::from_secs(60);
    let o = run_env("certutil", &["-N", "-d", &sql, "--empty-password"], env, t);
    assert!(o.ok(), "certutil -N: {}", o.all());
    let module = module_path().display().to_string();
    let o = run_env(
        "modutil",
        &[
            "-dbdir", &sql, "-add", "tscns", "-libfile", &module, "-force",
        ],
        env,
        t,
    );
    assert!(o.ok(), "modutil -add: {}", o.all());
    std::fs::write(dir.path("emu-ca.pem"), emu.ca_pem()).unwrap();
    let o = run_env(
        "certutil",
        &[
            "-A",
            "-d",
            &sql,
            "-n",
            "cohesion-emulator",
            "-t",
            "C,,",
            "-i",
            &dir.str("emu-ca.pem"),
        ],
        env,
        t,
    );
    assert!(o.ok(), "certutil -A: {}", o.all());
    // NSS itself sees the card's certificate through the module.
    let o = run_env("certutil", &["-L", "-d", &sql, "-h", "all"], env, t);
    assert!(o.ok() && o.stdout.contains("CNS0"), "{}", o.all());
}

/// Prints the module's trace when a test fails, to see which call went wrong.
struct TraceOnPanic(PathBuf);

impl Drop for TraceOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let t = std::fs::read_to_string(&self.0).unwrap_or_default();
            let tail: Vec<&str> = t.lines().rev().take(60).collect();
            eprintln!("--- module trace (last lines)");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

#[test]
fn firefox_logs_in_through_cohesion_with_the_card() {
    let card = Plugged::new("default");
    let cf = card.profile.personal_data.codice_fiscale.clone();
    let pin = card.profile.pin.expose().to_owned();
    let dir = Scratch::new("firefox");
    let stub = pinentry_stub(&dir, &pin);
    let c = Cohesion::start(card.handle.pki().ca_cert_der());
    let home = dir.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let trace = dir.path("module.log");
    let _show = TraceOnPanic(trace.clone());
    let (home_s, stub_s, trace_s) = (
        home.display().to_string(),
        stub.display().to_string(),
        trace.display().to_string(),
    );
    let env = [
        ("HOME", home_s.as_str()),
        ("TSCNS_PKCS11_READER", READER),
        ("TSCNS_PKCS11_PINENTRY", stub_s.as_str()),
        ("TSCNS_PKCS11_LOG", trace_s.as_str()),
    ];
    let profile = dir.path("profile");
    nss_db(&profile, &dir, &c.emu, &env);
    std::fs::write(
        profile.join("user.js"),
        r#"user_pref("security.default_personal_cert", "Select Automatically");
user_pref("marionette.port", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("security.OCSP.enabled", 0);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("network.proxy.type", 1);
user_pref("network.proxy.http", "127.0.0.1");
user_pref("network.proxy.http_port", 9);
user_pref("network.proxy.ssl", "127.0.0.1");
user_pref("network.proxy.ssl_port", 9);
"#,
    )
    .unwrap();
    let log = std::fs::File::create(dir.path("firefox.log")).unwrap();
    let mut cmd = Command::new("firefox-esr");
    cmd.args(["--headless", "--no-remote", "--marionette", "--profile"])
        .arg(&profile)
        .arg("about:blank")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut ff = Proc::spawn("firefox-esr", &mut cmd);
    let port_file = profile.join("MarionetteActivePort");
    let start = Instant::now();
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(ff.alive(), "firefox-esr exited while starting");
        assert!(
            start.elapsed() < START_TIMEOUT,
            "Firefox did not open Marionette within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut m = Marionette::connect(port);
    let caps = m.call("WebDriver:NewSession", json!({"capabilities": {}}));
    eprintln!(
        "Firefox {} via Marionette on port {port}",
        caps["capabilities"]["browserVersion"]
    );
    m.call(
        "WebDriver:SetTimeouts",
        json!({"implicit": 0, "pageLoad": 60000, "script": 30000}),
    );
    let page = log_in(&mut m, &c, &cf, "firefox");
    let shot = check_and_shoot(
        &mut m,
        &c,
        &card,
        &dir,
        &page,
        &cf,
        "firefox-area-riservata.png",
    );
    assert!(shot.exists());
    let _ = m.send("Marionette:Quit", json!({"flags": ["eForceQuit"]}));
    drop(m);
    drop(ff);
    c.stop();
}

/// A browser process that is not our child, stopped by its PID when dropped.
struct BrowserPid(u32);

impl Drop for BrowserPid {
    fn drop(&mut self) {
        stop_pid(self.0);
    }
}

/// A managed Chromium policy file, removed when dropped.
struct Policy(PathBuf);

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn chromium_logs_in_through_cohesion_with_the_card() {
    let card = Plugged::new("default");
    let cf = card.profile.personal_data.codice_fiscale.clone();
    let pin = card.profile.pin.expose().to_owned();
    let dir = Scratch::new("chromium");
    let stub = pinentry_stub(&dir, &pin);
    let c = Cohesion::start(card.handle.pki().ca_cert_der());
    let home = dir.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let trace = dir.path("module.log");
    let _show = TraceOnPanic(trace.clone());
    let (home_s, stub_s, trace_s) = (
        home.display().to_string(),
        stub.display().to_string(),
        trace.display().to_string(),
    );
    let env = [
        ("HOME", home_s.as_str()),
        ("TSCNS_PKCS11_READER", READER),
        ("TSCNS_PKCS11_PINENTRY", stub_s.as_str()),
        ("TSCNS_PKCS11_LOG", trace_s.as_str()),
    ];
    nss_db(&home.join(".pki/nssdb"), &dir, &c.emu, &env);
    // Chromium reads policies only from /etc/chromium/policies/managed: one file of this test,
    // for the emulator's smart-card listener (this run's port) only, removed at the end.
    let policies = Path::new("/etc/chromium/policies/managed");
    std::fs::create_dir_all(policies).unwrap();
    let policy = Policy(policies.join(format!("tscns-test-{}.json", std::process::id())));
    let pattern =
        json!({"pattern": format!("https://localhost:{}", c.emu.cns_addr().port()), "filter": {}})
            .to_string();
    std::fs::write(
        &policy.0,
        json!({ "AutoSelectCertificateForUrls": [pattern] }).to_string(),
    )
    .unwrap();

    let port = free_port();
    let log = std::fs::File::create(dir.path("chromedriver.log")).unwrap();
    let mut cmd = Command::new("chromedriver");
    cmd.arg(format!("--port={port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut driver = Proc::spawn("chromium-driver", &mut cmd);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(driver.alive(), "chromedriver exited while starting");
        assert!(
            start.elapsed() < START_TIMEOUT,
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let binary = if Path::new("/usr/lib/chromium/chromium").exists() {
        "/usr/lib/chromium/chromium"
    } else {
        "/usr/bin/chromium"
    };
    let user_data = dir.path("chromium-data");
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "pageLoadStrategy": "normal",
        "timeouts": {"implicit": 0, "pageLoad": 60000, "script": 30000},
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1024,768",
                "--proxy-server=127.0.0.1:9",
                format!("--user-data-dir={}", user_data.display()),
            ]
        }
    }}});
    let (status, v) = WebDriver::http(port, "POST", "/session", Some(&caps));
    assert_eq!(status, 200, "new Chromium session: {v}");
    let session = v["value"]["sessionId"].as_str().unwrap().to_owned();
    // chromedriver leaves its Chromium running when it is stopped itself: stopped by its PID.
    let _chromium = BrowserPid(
        v["value"]["capabilities"]["goog:processID"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .expect("chromedriver names Chromium's PID"),
    );
    eprintln!(
        "Chromium {} via chromedriver on port {port}",
        v["value"]["capabilities"]["browserVersion"]
    );
    let mut wd = WebDriver { port, session };
    let page = log_in(&mut wd, &c, &cf, "chromium");
    let shot = check_and_shoot(
        &mut wd,
        &c,
        &card,
        &dir,
        &page,
        &cf,
        "chromium-area-riservata.png",
    );
    assert!(shot.exists());
    drop(wd);
    drop(driver);
    drop(policy);
    c.stop();
}
