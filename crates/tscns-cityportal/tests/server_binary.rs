//! The `cityportal-server` binary, as a municipality runs it: `seal-keygen` writes a test seal,
//! two `serve` processes on one PostgreSQL are one portal (a session opened on the first is
//! served by the second, a marca used on one is refused on the other), `import` loads a registry
//! and `audit --json` shows the logins, record views and issuance. Processes are stopped by PID.
//! Needs PostgreSQL (`TSCNS_TEST_POSTGRES_URL`; `scripts/test` starts a private one).
#![cfg(all(feature = "server", feature = "system-tests"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use server_support::{emulator, marca, Browser, MARIO, SITE};

const BIN: &str = env!("CARGO_BIN_EXE_cityportal-server");

/// A `cityportal-server serve` process, killed by PID when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
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

fn serve(dir: &Path, database: &str, cohesion: &str) -> Server {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/san-benedetto.json");
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--registry")
        .arg(&registry)
        .args(["--database", database])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--public-url", &url])
        .args(["--cohesion", cohesion])
        .arg("--cohesion-ca")
        .arg(dir.join("cohesion-ca.pem"))
        .arg("--cohesion-signing-cert")
        .arg(dir.join("cohesion-signer.pem"))
        .args(["--site-id", SITE])
        .arg("--seal-key")
        .arg(dir.join("seal-key.pem"))
        .arg("--seal-cert")
        .arg(dir.join("seal-cert.pem"))
        .args(["--min-level", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Its first line says where it listens; read it on a thread so the wait is bounded.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        for _ in lines {}
    });
    let server = Server { child, url };
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("cityportal-server did not say it listens within 60 s");
    assert!(
        line.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{line}"
    );
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgres() {
    let dir = tempfile::tempdir().unwrap();
    // The test seal, as a municipality trying the portal makes it.
    let out = Command::new(BIN)
        .args(["seal-keygen", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["seal-ca.pem", "seal-cert.pem", "seal-key.pem"] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{f}: {text}");
    }
    let emu = emulator().await;
    std::fs::write(dir.path().join("cohesion-ca.pem"), emu.ca_pem()).unwrap();
    std::fs::write(
        dir.path().join("cohesion-signer.pem"),
        emu.signing_certificate_pem(),
    )
    .unwrap();
    let database = common::fresh_postgres().await;

    // `import` on its own, then two instances (each imports the fixture again at start).
    let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/san-benedetto.json");
    let out = Command::new(BIN)
        .arg("import")
        .arg("--registry")
        .arg(&registry)
        .args(["--database", &database])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cohesion = emu.base_url().unwrap().to_string();
    let a = serve(dir.path(), &database, &cohesion);
    let b = serve(dir.path(), &database, &cohesion);

    let mario = Browser::new(&emu);
    mario.login(&a.url, MARIO).await;
    let me = mario.get_json(&format!("{}/api/v1/me", b.url)).await;
    assert_eq!(
        me.status,
        200,
        "B does not serve A's session: {}",
        me.text()
    );
    assert_eq!(me.json()["codice_fiscale"], MARIO);

    let m = marca();
    let body = json!({"kind": "residenza", "stamp": {"marca": m}});
    let first = mario
        .post_json(&format!("{}/api/v1/certificates", a.url), &body)
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = mario
        .post_json(&format!("{}/api/v1/certificates", b.url), &body)
        .await;
    assert_eq!(
        again.status,
        409,
        "a marca used on A is refused on B: {}",
        again.text()
    );
    let id = first.json()["id"].as_str().unwrap().to_string();

    // The seal verifies against the CA seal-keygen wrote.
    let pdf = mario
        .get(&format!("{}/api/v1/certificates/{id}/pdf", b.url))
        .await;
    assert_eq!(pdf.status, 200);
    let ca_pem = std::fs::read(dir.path().join("seal-ca.pem")).unwrap();
    let ca: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(&ca_pem).unwrap();
    let sealed = tscns_cityportal::documents::verify(&pdf.body, &[ca.to_vec()]).unwrap();
    assert_eq!(sealed.certificate_id, id);

    drop(a);
    drop(b);

    // The audit log, as an operator reads it: the login, the record view, the issuance.
    let out = Command::new(BIN)
        .args([
            "audit",
            "--database",
            &database,
            "--subject",
            MARIO,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = log.to_string();
    assert!(log.as_array().is_some_and(|a| a.len() >= 3), "{text}");
    for needle in [id.as_str(), "login", MARIO] {
        assert!(text.contains(needle), "audit lacks {needle}: {text}");
    }
}
