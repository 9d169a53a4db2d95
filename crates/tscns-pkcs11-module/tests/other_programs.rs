//! Programs nobody here wrote use the card through our module for TLS client authentication to
//! `openssl s_server -Verify 1`: curl with OpenSSL's PKCS#11 engine (libengine-pkcs11-openssl)
//! and a `pkcs11:` URI, and `gnutls-cli --provider`. A 2048-bit card in vpcd reader 1 through
//! pcscd; feature `system-tests`.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{module_path, run_env, Plugged, Scratch, READER};

/// `openssl s_server -Verify 1 -www` on a free loopback port, killed by PID on drop.
struct Server(Child, u16);

impl Server {
    fn start(dir: &Scratch, tls: &str) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args([
                "-cert",
                &dir.str("server.pem"),
                "-key",
                &dir.str("server.key"),
            ])
            .args(["-CAfile", &dir.str("ca.pem"), "-Verify", "1", "-www", tls])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl (Debian package openssl)");
        let s = Server(child, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn curl_and_gnutls_authenticate_with_the_card() {
    let card = Plugged::new("idemia-v2-2048");
    let p = &card.profile;
    let pin = p.pin.expose().to_owned();
    let cf = p.personal_data.codice_fiscale.clone();
    let dir = Scratch::new("others");
    let pki = card.handle.pki();
    let sc = pki.issue_server_certificate(&["localhost"]).unwrap();
    std::fs::write(dir.path("server.pem"), &sc.cert_pem).unwrap();
    std::fs::write(dir.path("server.key"), &sc.key_pem).unwrap();
    std::fs::write(dir.path("ca.pem"), pki.ca_cert_pem()).unwrap();
    let module = module_path().display().to_string();
    let token = format!(
        "pkcs11:token={}%20{}",
        p.personal_data.given_name, p.personal_data.surname
    );
    let env = [
        ("TSCNS_PKCS11_READER", READER),
        ("PKCS11_MODULE_PATH", module.as_str()),
    ];

    // curl + OpenSSL's pkcs11 engine (libp11), TLS 1.2 and 1.3.
    for tls in ["-tls1_2", "-tls1_3"] {
        let server = Server::start(&dir, tls);
        let url = format!("https://localhost:{}/", server.1);
        let cert = format!("{token};object=CNS0;type=cert");
        let key = format!("{token};object=CNS0;type=private;pin-value={pin}");
        let o = run_env(
            "curl",
            &[
                "-sS",
                "--max-time",
                "60",
                "--engine",
                "pkcs11",
                "--cert-type",
                "ENG",
                "--cert",
                &cert,
                "--key-type",
                "ENG",
                "--key",
                &key,
                "--cacert",
                &dir.str("ca.pem"),
                &url,
            ],
            &env,
            Duration::from_secs(90),
        );
        assert!(o.ok(), "curl {tls}: {}", o.all());
        assert!(
            o.stdout.contains(&cf),
            "curl {tls}: s_server shows the card's certificate: {}",
            o.stdout
        );
        assert!(
            o.stdout.contains(if tls == "-tls1_2" {
                "TLSv1.2"
            } else {
                "TLSv1.3"
            }),
            "{}",
            o.stdout
        );
        // curl exits without C_Finalize: pcscd resets a card whose client left holding it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while card.handle.pin_verified() {
            assert!(
                Instant::now() < deadline,
                "curl is done: the card must be reset"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // gnutls-cli with our module as its provider.
    let server = Server::start(&dir, "-tls1_3");
    let o = run_env(
        "gnutls-cli",
        &[
            "--provider",
            &module,
            "--x509certfile",
            &format!("{token};object=CNS0;type=cert"),
            "--x509keyfile",
            &format!("{token};object=CNS0;type=private"),
            "--x509cafile",
            &dir.str("ca.pem"),
            "-p",
            &server.1.to_string(),
            "localhost",
        ],
        &[
            ("TSCNS_PKCS11_READER", READER),
            ("GNUTLS_PIN", pin.as_str()),
        ],
        Duration::from_secs(90),
    );
    let all = o.all();
    assert!(all.contains("Handshake was completed"), "gnutls-cli: {all}");
    assert!(all.contains("TLS1.3"), "gnutls-cli: {all}");
    drop(server);
}
