//! `tscns fetch` end to end: the real binary with the simulated card against an in-process HTTPS
//! server that requires a client certificate from the simulator's CA and checks the codice fiscale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use tscns_sim::{Profile, TestPki};
use tscns_tls::server::{ClientAuthServer, ServerOptions};

fn tscns(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tscns"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        i.write_all(stdin.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
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
    let profile = Profile::builtin("default").unwrap();
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
    let server = ClientAuthServer::start(o).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_cert_pem()).unwrap();
    let mut other_profile = Profile::builtin("default").unwrap();
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
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), b.cf);
        assert!(stderr.contains("200 OK (1 card signature)"), "{stderr}");
    }
    let seen = b.server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].version, "TLSv1_3");
    assert_eq!(seen[1].version, "TLSv1_2");
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("wrong PIN:"), "{stderr}");
    assert!(stderr.contains("tries left"), "{stderr}");
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("refused the TLS handshake"), "{stderr}");
}

#[test]
fn the_url_must_be_https() {
    let out = tscns(&["fetch", "http://localhost/", "--simulated"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an https URL"));
}
