//! `tscns fetch` end to end: the real binary with the simulated card against an in-process HTTPS
//! server that requires a client certificate from the simulator's CA and checks the codice fiscale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tscns_sim::{Profile, TestPki};
use tscns_tls::server::{ClientAuthServer, ServerOptions};

mod common;
use common::{Run, Tscns};

fn tscns(args: &[&str], stdin: &str) -> Run {
    Tscns::new(args).stdin(stdin).run()
}

struct Bed {
    _dir: tempfile::TempDir,
    ca: String,
    other_ca: String,
    server: ClientAuthServer,
    cf: String,
    pin: String,
}

fn bed() -> Bed {
    bed_with("default", false)
}

/// The card generations since 2021, each with its own built-in profile (PKI, codice fiscale, PIN).
const NEW_PROFILES: [&str; 3] = ["st2021-2048", "st2022-nfc-2048", "actalis-ace2025-2048"];

/// The bed for the card of profile `name`; with `tls13_pss`, a server that speaks TLS 1.3 only
/// and accepts only RSA-PSS-SHA256 in the client's CertificateVerify.
fn bed_with(name: &str, tls13_pss: bool) -> Bed {
    let profile = Profile::builtin(name).unwrap();
    let pki = TestPki::issue(&profile).unwrap();
    let cf = tscns_cert::CnsCertificate::from_der(pki.card_cert_der())
        .unwrap()
        .codice_fiscale()
        .unwrap()
        .to_string();
    let sc = pki.issue_server_certificate(&["localhost"]).unwrap();
    let mut o = ServerOptions::new(
        sc.cert_pem.into_bytes(),
        sc.key_pem.into_bytes(),
        pki.ca_cert_pem().as_bytes().to_vec(),
    );
    o.expect_codice_fiscale = Some(cf.clone());
    if tls13_pss {
        o.versions = vec![&tscns_tls::rustls::version::TLS13];
        o.client_schemes = Some(vec![tscns_tls::rustls::SignatureScheme::RSA_PSS_SHA256]);
    }
    let server = ClientAuthServer::start(o).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_cert_pem()).unwrap();
    let mut other_profile = Profile::builtin(name).unwrap();
    other_profile.seed ^= 0x5a5a;
    let other = TestPki::issue(&other_profile).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.ca_cert_pem()).unwrap();
    Bed {
        ca: ca.display().to_string(),
        other_ca: other_ca.display().to_string(),
        server,
        cf,
        pin: profile.pin.expose().to_string(),
        _dir: dir,
    }
}

fn url(b: &Bed) -> String {
    format!("https://localhost:{}/", b.server.addr().port())
}

#[test]
fn fetch_with_the_simulated_card_tls13_and_tls12() {
    let b = bed();
    for tls in ["1.3", "1.2"] {
        let out = tscns(
            &[
                "fetch",
                &url(&b),
                "--simulated",
                "--ca",
                &b.ca,
                "--tls",
                tls,
                "--pin-stdin",
            ],
            &format!("{}\n", b.pin),
        );
        let stderr = out.stderr.as_str();
        assert!(out.success(), "{stderr}");
        assert_eq!(out.stdout.trim(), b.cf);
        assert!(stderr.contains("200 OK (1 card signature)"), "{stderr}");
    }
    let seen = b.server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].version, "TLSv1_3");
    assert_eq!(seen[1].version, "TLSv1_2");
}

/// What the TLS 1.3 / RSA-PSS-only server saw of one `tscns fetch` with the card of `name`.
fn assert_one_tls13_pss_login(b: &Bed, name: &str, out: &Run) {
    let stderr = out.stderr.as_str();
    assert!(out.success(), "{name}: {stderr}");
    assert_eq!(out.stdout.trim(), b.cf, "{name}");
    assert!(
        stderr.contains("200 OK (1 card signature)"),
        "{name}: {stderr}"
    );
    let seen = b.server.seen();
    assert_eq!(seen.len(), 1, "{name}: {seen:?}");
    assert_eq!(seen[0].version, "TLSv1_3", "{name}");
    assert!(seen[0].presented_certificate, "{name}");
    assert_eq!(
        seen[0].codice_fiscale.as_deref(),
        Some(b.cf.as_str()),
        "{name}"
    );
    assert_eq!(seen[0].status, 200, "{name}");
}

#[test]
fn fetch_tls13_pss_with_each_card_generation_since_2021() {
    for name in NEW_PROFILES {
        // The server offers RSA-PSS-SHA256 only: the card signs a PSS CertificateVerify.
        let b = bed_with(name, true);
        let out = tscns(
            &[
                "fetch",
                &url(&b),
                "--simulated",
                name,
                "--ca",
                &b.ca,
                "--tls",
                "1.3",
                "--pin-stdin",
            ],
            &format!("{}\n", b.pin),
        );
        assert_one_tls13_pss_login(&b, name, &out);
    }
}

#[test]
fn fetch_writes_the_body_to_a_file() {
    let b = bed();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("page.txt");
    let out = tscns(
        &[
            "fetch",
            &url(&b),
            "--simulated",
            "default",
            "--ca",
            &b.ca,
            "--out",
            out_file.to_str().unwrap(),
            "--pin-stdin",
        ],
        &format!("{}\n", b.pin),
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(out_file).unwrap().trim(), b.cf);
}

#[test]
fn a_wrong_pin_says_how_many_tries_are_left() {
    let b = bed();
    let out = tscns(
        &[
            "fetch",
            &url(&b),
            "--simulated",
            "--ca",
            &b.ca,
            "--pin-stdin",
        ],
        "99999999\n",
    );
    let stderr = out.stderr.as_str();
    assert_eq!(out.code, Some(1));
    assert!(stderr.contains("wrong PIN:"), "{stderr}");
    assert!(stderr.contains("tries left"), "{stderr}");
    assert!(b.server.seen().is_empty(), "nothing was sent to the server");
}

/// `tscns fetch` of the bed's URL with the simulated card and the bed's CA, then `extra`; its
/// exit code and standard error.
fn fetch_simulated(b: &Bed, extra: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let url = url(b);
    let mut args = vec!["fetch", &url, "--simulated", "--ca", &b.ca];
    args.extend_from_slice(extra);
    let out = tscns(&args, stdin);
    (out.code, out.stdout, out.stderr)
}

#[test]
fn the_pin_is_the_first_line_of_standard_input() {
    // A CRLF line end and whatever follows the first line are not part of the PIN.
    let b = bed();
    let (code, stdout, stderr) =
        fetch_simulated(&b, &["--pin-stdin"], &format!("{}\r\nnot the PIN\n", b.pin));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), b.cf);
    assert!(stderr.contains("200 OK (1 card signature)"), "{stderr}");
    assert!(!stderr.contains(&b.pin), "{stderr}");
    assert_eq!(b.server.seen().len(), 1);
}

#[test]
fn no_pin_on_standard_input_or_no_terminal_sends_nothing() {
    let b = bed();
    let (code, _, stderr) = fetch_simulated(&b, &["--pin-stdin"], "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("invalid PIN: it is too short"), "{stderr}");
    // Without --pin-stdin and with neither stdin nor stderr a terminal there is nowhere to ask.
    let (code, _, stderr) = fetch_simulated(&b, &[], "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no terminal to ask for the PIN on: pass --pin-stdin"),
        "{stderr}"
    );
    assert!(b.server.seen().is_empty(), "nothing was sent to the server");
}

#[test]
fn an_untrusted_server_is_refused_with_a_clear_message() {
    let b = bed();
    let out = tscns(
        &[
            "fetch",
            &url(&b),
            "--simulated",
            "--ca",
            &b.other_ca,
            "--pin-stdin",
        ],
        &format!("{}\n", b.pin),
    );
    let stderr = out.stderr.as_str();
    assert_eq!(out.code, Some(1));
    assert!(stderr.contains("is not trusted"), "{stderr}");
}

#[test]
fn a_server_that_refuses_the_card_is_a_refused_handshake() {
    // A server whose client CA is another one: it refuses our certificate.
    let b = bed();
    let mut other_profile = Profile::builtin("default").unwrap();
    other_profile.seed ^= 0x5a5a;
    let other = TestPki::issue(&other_profile).unwrap();
    let profile = Profile::builtin("default").unwrap();
    let pki = TestPki::issue(&profile).unwrap();
    let sc = pki.issue_server_certificate(&["localhost"]).unwrap();
    let s = ClientAuthServer::start(ServerOptions::new(
        sc.cert_pem.into_bytes(),
        sc.key_pem.into_bytes(),
        other.ca_cert_pem().as_bytes().to_vec(),
    ))
    .unwrap();
    let out = tscns(
        &[
            "fetch",
            &format!("https://localhost:{}/", s.addr().port()),
            "--simulated",
            "--ca",
            &b.ca,
            "--pin-stdin",
        ],
        &format!("{}\n", b.pin),
    );
    let stderr = out.stderr.as_str();
    assert_eq!(out.code, Some(1));
    assert!(stderr.contains("refused the TLS handshake"), "{stderr}");
}

#[test]
fn the_url_must_be_https() {
    let out = tscns(&["fetch", "http://localhost/", "--simulated"], "");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("not an https URL"));
}

/// Through the real middleware: `--pkcs11` with SoftHSM2 holding a CNS-profile key and
/// certificate, and `--reader` with a tscns-sim card in pcscd's vpcd reader. Needs softhsm2,
/// opensc (pkcs11-tool), pcscd with vsmartcard-vpcd: `scripts/test` installs and starts them.
#[cfg(feature = "system-tests")]
mod system {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    fn tscns_env(args: &[&str], stdin: &str, env: (&str, &Path)) -> Run {
        Tscns::new(args).stdin(stdin).env(env.0, env.1).run()
    }

    fn run(conf: &Path, args: &[&str]) {
        let out = Command::new("timeout")
            .arg("60")
            .args(args)
            .env("SOFTHSM2_CONF", conf)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}: run scripts/test, or `apt-get install softhsm2 opensc`",
                    args[0]
                )
            });
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn fetch_with_pkcs11_through_softhsm2() {
        let module = [
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("SoftHSM2 is not installed: run scripts/test, or `apt-get install softhsm2`")
        });
        let cf = "RSSMRA80A01H501U";
        let pki = tscns_tls::test_pki::TestPki::generate(cf, 2048).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.der");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&key, &pki.client_key_pem).unwrap();
        std::fs::write(&cert, &pki.client_cert_der).unwrap();
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        run(
            &conf,
            &[
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                "CNS",
                "--pin",
                "12345678",
                "--so-pin",
                "87654321",
            ],
        );
        run(
            &conf,
            &[
                "softhsm2-util",
                "--import",
                key.to_str().unwrap(),
                "--token",
                "CNS",
                "--label",
                "CNS0",
                "--id",
                "01",
                "--pin",
                "12345678",
            ],
        );
        run(
            &conf,
            &[
                "pkcs11-tool",
                "--module",
                module,
                "--token-label",
                "CNS",
                "--login",
                "--pin",
                "12345678",
                "--write-object",
                cert.to_str().unwrap(),
                "--type",
                "cert",
                "--id",
                "01",
                "--label",
                "CNS0",
            ],
        );
        let mut o = ServerOptions::new(
            pki.server_cert_pem.clone().into_bytes(),
            pki.server_key_pem.clone().into_bytes(),
            pki.ca_pem.clone().into_bytes(),
        );
        o.expect_codice_fiscale = Some(cf.into());
        let s = ClientAuthServer::start(o).unwrap();
        let url = format!("https://127.0.0.1:{}/", s.addr().port());
        for tls in ["1.3", "1.2"] {
            let out = tscns_env(
                &[
                    "fetch",
                    &url,
                    "--pkcs11",
                    module,
                    "--ca",
                    ca.to_str().unwrap(),
                    "--tls",
                    tls,
                    "--pin-stdin",
                ],
                "12345678\n",
                ("SOFTHSM2_CONF", &conf),
            );
            let stderr = out.stderr.as_str();
            assert!(out.success(), "{stderr}");
            assert_eq!(out.stdout.trim(), cf);
            // A third-party module: logged out at the end, and the citizen is told the module
            // may keep the card unlocked.
            assert!(
                stderr.contains("logged out of the token") && stderr.contains(module),
                "{stderr}"
            );
        }
        let versions: Vec<String> = s.seen().iter().map(|x| x.version.clone()).collect();
        assert_eq!(versions, ["TLSv1_3", "TLSv1_2"]);
        let out = tscns_env(
            &[
                "fetch",
                &url,
                "--pkcs11",
                module,
                "--ca",
                ca.to_str().unwrap(),
                "--pin-stdin",
            ],
            "00000000\n",
            ("SOFTHSM2_CONF", &conf),
        );
        assert_eq!(out.code, Some(1));
        assert!(out.stderr.contains("wrong PIN"));
    }

    #[test]
    fn fetch_with_the_card_in_a_pcscd_reader() {
        use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
        let _lock = ReaderLock::acquire(35963, Duration::from_secs(120)).unwrap();
        let b = bed();
        let profile = Profile::builtin("default").unwrap();
        let sim = tscns_sim::SimCard::new(&profile).unwrap();
        let vpcd =
            tscns_sim::serve_vpcd(sim, 35963).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
        assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
        std::thread::sleep(Duration::from_millis(500));
        let out = tscns(
            &[
                "fetch",
                &url(&b),
                "--reader",
                &vpcd.reader_name(),
                "--ca",
                &b.ca,
                "--pin-stdin",
            ],
            &format!("{}\n", b.pin),
        );
        let stderr = out.stderr.as_str();
        assert!(out.success(), "{stderr}");
        assert_eq!(out.stdout.trim(), b.cf);
        vpcd.stop();
    }

    #[test]
    fn fetch_tls13_pss_with_each_card_generation_since_2021_in_a_pcscd_reader() {
        use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
        let _lock = ReaderLock::acquire(35963, Duration::from_secs(120)).unwrap();
        for name in NEW_PROFILES {
            let b = bed_with(name, true);
            let profile = Profile::builtin(name).unwrap();
            let sim = tscns_sim::SimCard::new(&profile).unwrap();
            let vpcd =
                tscns_sim::serve_vpcd(sim, 35963).unwrap_or_else(|e| panic!("{e}: {PCSCD_HOWTO}"));
            assert!(vpcd.wait_ready(Duration::from_secs(10)), "{PCSCD_HOWTO}");
            let reader = vpcd.reader_name();
            tscns_apdu::pcsc::wait_for_card(&reader, true, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{name}: pcscd does not see the card: {e}"));
            let out = tscns(
                &[
                    "fetch",
                    &url(&b),
                    "--reader",
                    &reader,
                    "--ca",
                    &b.ca,
                    "--tls",
                    "1.3",
                    "--pin-stdin",
                ],
                &format!("{}\n", b.pin),
            );
            assert_one_tls13_pss_login(&b, name, &out);
            vpcd.stop();
            let _ = tscns_apdu::pcsc::wait_for_card(&reader, false, Duration::from_secs(10));
        }
    }
}

/// The simulator's PKI, a server certificate for localhost, and the CA file, for tests that start
/// servers of their own.
struct Pki {
    _dir: tempfile::TempDir,
    pki: TestPki,
    server: tscns_sim::ServerCertificate,
    ca: String,
    pin: String,
}

fn pki() -> Pki {
    let profile = Profile::builtin("default").unwrap();
    let pki = TestPki::issue(&profile).unwrap();
    let server = pki.issue_server_certificate(&["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_cert_pem()).unwrap();
    Pki {
        ca: ca.display().to_string(),
        pki,
        server,
        pin: profile.pin.expose().to_string(),
        _dir: dir,
    }
}

impl Pki {
    fn options(&self) -> ServerOptions {
        ServerOptions::new(
            self.server.cert_pem.clone().into_bytes(),
            self.server.key_pem.clone().into_bytes(),
            self.pki.ca_cert_pem().as_bytes().to_vec(),
        )
    }
}

#[test]
fn a_certificate_sent_over_tls12_is_warned_about_on_stderr() {
    let b = bed();
    for (tls, warned) in [("1.2", true), ("1.3", false)] {
        let out = tscns(
            &[
                "fetch",
                &url(&b),
                "--simulated",
                "--ca",
                &b.ca,
                "--tls",
                tls,
                "--pin-stdin",
            ],
            &format!("{}\n", b.pin),
        );
        let stderr = out.stderr.as_str();
        assert!(out.success(), "{stderr}");
        assert_eq!(
            stderr.contains("warning: the certificate was sent over TLS 1.2, in clear"),
            warned,
            "--tls {tls}: {stderr}"
        );
    }
    // Without --tls, against a server that only speaks TLS 1.2: the fallback is not silent.
    let p = pki();
    let mut o = p.options();
    o.versions = vec![&tscns_tls::rustls::version::TLS12];
    let s12 = ClientAuthServer::start(o).unwrap();
    let out = tscns(
        &[
            "fetch",
            &format!("https://localhost:{}/", s12.addr().port()),
            "--simulated",
            "--ca",
            &p.ca,
            "--pin-stdin",
        ],
        &format!("{}\n", p.pin),
    );
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("sent over TLS 1.2, in clear"),
        "{}",
        out.stderr
    );
    assert_eq!(s12.seen()[0].version, "TLSv1_2");
}

/// `openssl s_server -tls1_2` (a server nobody here wrote) gets nothing from `--tls 1.3`. Needs
/// openssl: `scripts/test` installs it.
#[test]
fn tls_1_3_refuses_to_send_the_certificate_to_a_tls12_only_openssl_server() {
    let p = pki();
    let o = tscns_tls::server::OpensslServer::start(
        &p.server.cert_pem,
        &p.server.key_pem,
        p.pki.ca_cert_pem(),
        Some("1.2"),
    )
    .unwrap();
    let url = format!("https://localhost:{}/", o.port());
    let out = tscns(
        &[
            "fetch",
            &url,
            "--simulated",
            "--ca",
            &p.ca,
            "--tls",
            "1.3",
            "--pin-stdin",
        ],
        &format!("{}\n", p.pin),
    );
    let stderr = out.stderr.as_str();
    assert_eq!(out.code, Some(1), "{stderr}");
    assert!(stderr.contains("does not speak TLS 1.3"), "{stderr}");
    assert!(stderr.contains("the certificate was not sent"), "{stderr}");
    assert!(
        stderr.contains("--tls 1.2"),
        "the CLI names its own flag: {stderr}"
    );
    assert!(!stderr.contains("sent over TLS 1.2"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_urls_host_is_allowed_at_the_urls_port_only() {
    // The URL's server redirects to another service on the same host, another port: that one must
    // not learn who the citizen is.
    let p = pki();
    let mut other = p.options();
    other.require_client_cert = false;
    let other = ClientAuthServer::start(other).unwrap();
    let other_url = format!("https://localhost:{}/", other.addr().port());
    let mut first = p.options();
    first.redirect_to = Some(other_url.clone());
    let first = ClientAuthServer::start(first).unwrap();
    let first_url = format!("https://localhost:{}/", first.addr().port());
    let out = tscns(
        &[
            "fetch",
            &first_url,
            "--simulated",
            "--ca",
            &p.ca,
            "--pin-stdin",
        ],
        &format!("{}\n", p.pin),
    );
    assert!(first.seen()[0].presented_certificate, "{}", out.stderr);
    let seen = other.wait_for(1, std::time::Duration::from_secs(10));
    assert_eq!(seen.len(), 1, "{}", out.stderr);
    assert!(
        !seen[0].presented_certificate,
        "the other port got the certificate"
    );
    assert_eq!(out.stdout.trim(), "anonymous", "{}", out.stderr);

    // `--allow-host localhost:PORT` lets that port see it too.
    let entry = format!("localhost:{}", other.addr().port());
    let out = tscns(
        &[
            "fetch",
            &first_url,
            "--simulated",
            "--ca",
            &p.ca,
            "--pin-stdin",
            "--allow-host",
            &entry,
        ],
        &format!("{}\n", p.pin),
    );
    assert!(out.success(), "{}", out.stderr);
    let seen = other.wait_for(2, std::time::Duration::from_secs(10));
    assert!(seen[1].presented_certificate, "{}", out.stderr);
}
