//! `tscns cohesion login` as a citizen runs it: the built binary against the Cohesion emulator and
//! its demo site, both started on loopback in this test process, with the in-process simulated
//! card of the binary (`--simulated`). The facts on the final page are checked against the
//! simulator's profile; each way the login fails gives exit 1 and a message the citizen can act on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tscns_cohesion::emulator::{DemoSite, Emulator, EmulatorConfig, DEMO_SITE_ID};
use tscns_cohesion::web::SESSION_COOKIE;
use tscns_sim::{Profile, SimCard};
use tscns_tls::rustls::pki_types::CertificateDer;

mod common;
use common::{Run, Tscns};

/// The built-in profile the tests log in with (the binary's `--simulated` default).
const PROFILE: &str = "default";

/// Runs the binary with `stdin` as its standard input; waits at most
/// [`common::RUN_TIMEOUT`] (180 s: a debug build makes RSA keys for the simulated card), then
/// kills it.
fn tscns(args: &[&str], stdin: &str) -> Run {
    Tscns::new(args)
        .stdin(stdin)
        .env("RUST_BACKTRACE", "1")
        .run()
}

/// The emulator (trusting the test CA of the simulated card's profile) and the demo site, served
/// by a runtime of this test process while the binary runs.
struct Servers {
    rt: Option<tokio::runtime::Runtime>,
    emu: Emulator,
    site: DemoSite,
    dir: tempfile::TempDir,
    /// The emulator's HTTPS CA, written for `--ca`.
    ca: PathBuf,
}

impl Servers {
    fn start(profile: &Profile) -> Servers {
        // The CLI makes its own simulated card from the same profile: the test PKI is
        // deterministic for the profile's seed, so this CA is the one that issued its certificate.
        let card = SimCard::new(profile).unwrap();
        let cns_ca = CertificateDer::from(card.pki().ca_cert_der().to_vec());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (emu, site) = rt.block_on(async {
            let emu = Emulator::start(EmulatorConfig::loopback(vec![cns_ca]))
                .await
                .unwrap();
            let site = DemoSite::start(&emu, 0).await.unwrap();
            (emu, site)
        });
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("cohesion-ca.pem");
        std::fs::write(&ca, emu.ca_pem()).unwrap();
        Servers {
            rt: Some(rt),
            emu,
            site,
            dir,
            ca,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.site.shutdown();
        self.emu.shutdown();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts a failed run: exit 1, nothing on stdout, no panic, the PIN nowhere.
fn assert_failed(run: &Run, pin: &str) {
    assert_eq!(run.code, Some(1), "{}", run.both());
    assert!(run.stdout.is_empty(), "{}", run.both());
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("backtrace"),
        "{}",
        run.both()
    );
    assert!(
        !run.stderr.starts_with("tscns cohesion login: \n"),
        "{}",
        run.both()
    );
    assert!(
        !run.both().contains(pin),
        "the PIN was echoed: {}",
        run.both()
    );
}

#[test]
fn login_with_the_simulated_card_shows_the_citizen_and_keeps_the_session() {
    let profile = Profile::builtin(PROFILE).unwrap();
    let pin = profile.pin.expose().to_owned();
    let cf = profile.personal_data.codice_fiscale.clone();
    let srv = Servers::start(&profile);
    let out = srv.path("page.txt");
    let jar = srv.path("cookies.txt");
    let url = srv.site.protected_url();
    let run = tscns(
        &[
            "cohesion",
            "login",
            &url,
            "--simulated",
            PROFILE,
            "--pin-stdin",
            "--ca",
            s(&srv.ca),
            "--cohesion-host",
            "localhost",
            "--cookie-jar",
            s(&jar),
            "--out",
            s(&out),
        ],
        &format!("{pin}\n"),
    );
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert!(
        run.stdout.is_empty(),
        "the page went to --out: {}",
        run.both()
    );
    assert!(
        !run.both().contains(&pin),
        "the PIN was echoed: {}",
        run.both()
    );
    assert!(
        run.stderr.contains("logged in") && run.stderr.contains("(1 card signature)"),
        "{}",
        run.both()
    );

    // The final page is the site's protected page, showing what Cohesion told the site.
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(
        page.contains(&format!("codice fiscale: {cf}")),
        "the page does not show {cf}:\n{page}"
    );
    assert!(
        page.contains("tipo_autenticazione: CF"),
        "not a smart-card login:\n{page}"
    );
    let seen = srv.site.last_login().expect("the site saw no login");
    assert_eq!(
        seen.profile.codice_fiscale().map(|c| c.as_str().to_owned()),
        Some(cf.clone())
    );
    assert_eq!(srv.emu.tokens_issued(), 1, "one Cohesion login");

    // The site the login was for is named before the card is used, and in the final line.
    let named = format!("id_sito {DEMO_SITE_ID:?}");
    assert!(run.stderr.contains(&named), "{}", run.both());
    assert!(
        run.stderr.find(&named) < run.stderr.find("logged in"),
        "{}",
        run.both()
    );

    // The cookie jar: Netscape format, readable by its owner only, with the site's session cookie
    // for the site's host and its attributes (HttpOnly as curl writes it: `#HttpOnly_` prefix).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&jar).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "cookie jar mode {mode:o}");
    }
    let text = std::fs::read_to_string(&jar).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# Netscape HTTP Cookie File"), "{text}");
    let session: Vec<Vec<&str>> = lines
        .filter(|l| !l.is_empty() && (!l.starts_with('#') || l.starts_with("#HttpOnly_")))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.get(5) == Some(&SESSION_COOKIE))
        .collect();
    assert_eq!(
        session.len(),
        1,
        "no single {SESSION_COOKIE} line in:\n{text}"
    );
    let f = &session[0];
    assert_eq!(
        f.len(),
        7,
        "a Netscape line has 7 tab-separated fields: {f:?}"
    );
    assert_eq!(f[0], "#HttpOnly_127.0.0.1", "HttpOnly and host kept: {f:?}");
    assert_eq!(f[1], "FALSE", "a host-only cookie: {f:?}");
    assert_eq!(f[2], "/", "{f:?}");
    assert_eq!(f[3], "FALSE", "the demo site is plain http: {f:?}");
    assert_eq!(f[4], "0", "a session cookie: {f:?}");
    assert!(!f[6].is_empty(), "empty session id: {f:?}");
}

#[test]
fn login_without_the_page_written_to_out_prints_it() {
    let profile = Profile::builtin(PROFILE).unwrap();
    let pin = profile.pin.expose().to_owned();
    let srv = Servers::start(&profile);
    let url = srv.site.protected_url();
    let run = tscns(
        &[
            "cohesion",
            "login",
            &url,
            "--simulated",
            "--pin-stdin",
            "--ca",
            s(&srv.ca),
            "--cohesion-host",
            "localhost",
        ],
        &format!("{pin}\n"),
    );
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert!(
        run.stdout.contains(&format!(
            "codice fiscale: {}",
            profile.personal_data.codice_fiscale
        )) && run.stdout.contains("tipo_autenticazione: CF"),
        "{}",
        run.both()
    );
    assert!(
        !run.both().contains(&pin),
        "the PIN was echoed: {}",
        run.both()
    );
}

#[test]
fn a_wrong_pin_fails_after_one_try_and_says_how_many_are_left() {
    let profile = Profile::builtin(PROFILE).unwrap();
    let srv = Servers::start(&profile);
    let out = srv.path("page.txt");
    let jar = srv.path("cookies.txt");
    let url = srv.site.protected_url();
    let wrong = "99999";
    assert_ne!(wrong, profile.pin.expose());
    let run = tscns(
        &[
            "cohesion",
            "login",
            &url,
            "--simulated",
            "--pin-stdin",
            "--ca",
            s(&srv.ca),
            "--cohesion-host",
            "localhost",
            "--cookie-jar",
            s(&jar),
            "--out",
            s(&out),
        ],
        &format!("{wrong}\n"),
    );
    assert_failed(&run, wrong);
    // The fresh simulated card starts with `pin_tries` tries: exactly one VERIFY was used, the
    // PIN was never retried.
    let left = profile.pin_tries - 1;
    assert!(
        run.stderr.contains("wrong PIN") && run.stderr.contains(&format!("{left} tries left")),
        "{}",
        run.both()
    );
    // Nothing reached Cohesion, nothing was written.
    assert_eq!(srv.emu.tokens_issued(), 0);
    assert!(srv.site.last_login().is_none());
    assert!(!out.exists() && !jar.exists());
}

#[test]
fn an_untrusted_cohesion_server_is_refused_with_a_way_out() {
    let profile = Profile::builtin(PROFILE).unwrap();
    let pin = profile.pin.expose().to_owned();
    let srv = Servers::start(&profile);
    let out = srv.path("page.txt");
    let url = srv.site.protected_url();
    // No --ca: the emulator's certificate comes from a CA the system does not trust.
    let run = tscns(
        &[
            "cohesion",
            "login",
            &url,
            "--simulated",
            "--pin-stdin",
            "--cohesion-host",
            "localhost",
            "--out",
            s(&out),
        ],
        &format!("{pin}\n"),
    );
    assert_failed(&run, &pin);
    assert!(
        run.stderr.contains("is not trusted") && run.stderr.contains("--ca FILE"),
        "the message should say the server's certificate is not trusted and how to trust it: {}",
        run.both()
    );
    assert_eq!(srv.emu.tokens_issued(), 0);
    assert!(srv.site.last_login().is_none());
    assert!(!out.exists());
}

/// The card's certificate goes only to the Cohesion hosts: without `--cohesion-host localhost`
/// the emulator is not one of them, and the command says which option is missing.
#[test]
fn the_certificate_is_not_shown_to_a_host_that_is_not_cohesion() {
    let profile = Profile::builtin(PROFILE).unwrap();
    let pin = profile.pin.expose().to_owned();
    let srv = Servers::start(&profile);
    let url = srv.site.protected_url();
    let run = tscns(
        &[
            "cohesion",
            "login",
            &url,
            "--simulated",
            "--pin-stdin",
            "--ca",
            s(&srv.ca),
        ],
        &format!("{pin}\n"),
    );
    assert_failed(&run, &pin);
    assert!(run.stderr.contains("--cohesion-host"), "{}", run.both());
    assert_eq!(srv.emu.tokens_issued(), 0);
    assert!(srv.site.last_login().is_none());
}

/// The card generations since 2021, each with its own built-in profile.
const NEW_PROFILES: [&str; 3] = ["st2021-2048", "st2022-nfc-2048", "actalis-ace2025-2048"];

/// One `tscns cohesion login` with the card from `card_args` (`--simulated NAME` or
/// `--reader READER`): exit 0, one card signature, the site saw the profile's codice fiscale.
fn logs_in(profile: &Profile, name: &str, card_args: &[&str]) {
    let pin = profile.pin.expose().to_owned();
    let cf = profile.personal_data.codice_fiscale.clone();
    let srv = Servers::start(profile);
    let out = srv.path("page.txt");
    let url = srv.site.protected_url();
    let mut args = vec!["cohesion", "login", &url];
    args.extend_from_slice(card_args);
    args.extend_from_slice(&[
        "--pin-stdin",
        "--ca",
        s(&srv.ca),
        "--cohesion-host",
        "localhost",
        "--out",
        s(&out),
    ]);
    let run = tscns(&args, &format!("{pin}\n"));
    assert_eq!(run.code, Some(0), "{name}: {}", run.both());
    assert!(!run.both().contains(&pin), "{name}: {}", run.both());
    assert!(
        run.stderr.contains("logged in") && run.stderr.contains("(1 card signature)"),
        "{name}: {}",
        run.both()
    );
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(
        page.contains(&format!("codice fiscale: {cf}")),
        "{name}: {page}"
    );
    assert!(page.contains("tipo_autenticazione: CF"), "{name}: {page}");
    let seen = srv.site.last_login().expect("the site saw no login");
    assert_eq!(
        seen.profile.codice_fiscale().map(|c| c.as_str().to_owned()),
        Some(cf),
        "{name}"
    );
    assert_eq!(srv.emu.tokens_issued(), 1, "{name}: one Cohesion login");
}

#[test]
fn login_with_each_card_generation_since_2021() {
    for name in NEW_PROFILES {
        let profile = Profile::builtin(name).unwrap();
        logs_in(&profile, name, &["--simulated", name]);
    }
}

/// Through pcscd + vpcd with a tscns-sim card in the reader.
#[cfg(feature = "system-tests")]
#[test]
fn login_with_each_card_generation_since_2021_in_a_pcscd_reader() {
    use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
    use tscns_sim::{serve_vpcd, DEFAULT_VPCD_PORT};
    assert!(Path::new("/run/pcscd/pcscd.comm").exists(), "{PCSCD_HOWTO}");
    let port = DEFAULT_VPCD_PORT;
    let _lock = ReaderLock::acquire(port, Duration::from_secs(120)).unwrap();
    for name in NEW_PROFILES {
        let profile = Profile::builtin(name).unwrap();
        let server = serve_vpcd(SimCard::new(&profile).unwrap(), port)
            .unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
        assert!(server.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
        let reader = server.reader_name();
        tscns_apdu::pcsc::wait_for_card(&reader, true, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{name}: pcscd does not see the card: {e}"));
        logs_in(&profile, name, &["--reader", &reader]);
        assert_eq!(server.handle().counters().signatures, 1, "{name}");
        server.stop();
        let _ = tscns_apdu::pcsc::wait_for_card(&reader, false, Duration::from_secs(10));
    }
}
