//! The `cohesion-emulator` binary as a stranger's service provider would use it: started with the
//! documented command line, its CA and signing certificate written to files, a SAML-mode login by a
//! password+PIN user, GetCredential with a signed profile, `--site` refusing other sites.
#![cfg(feature = "emulator")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use tscns_cohesion::{
    AuthRestriction, AuthenticationType, Environment, Mode, ServiceProvider, SpConfig, Url,
};

/// Kills the emulator process by PID when the test ends, whatever happens.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_a_saml_login() {
    let dir = std::env::temp_dir().join(format!("cohesion-emu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cns = test_cns("RSSMRA85T10A562S", true);
    let cns_ca = dir.join("cns-ca.der");
    std::fs::write(&cns_ca, cns.ca_der.as_ref()).unwrap();
    let ca = dir.join("ca.pem");
    let signer = dir.join("signer.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohesion-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--cns-listen",
            "127.0.0.1:0",
            "--cns-ca",
        ])
        .arg(&cns_ca)
        .arg("--write-ca")
        .arg(&ca)
        .arg("--write-signing-cert")
        .arg(&signer)
        .args(["--site", "SITO_BIN"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    // First line: "cohesion-emulator: ADDR (smart card on ADDR), base URL URL" (bounded wait: the
    // process prints it right after binding, or exits).
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        BufReader::new(stdout).read_line(&mut l).unwrap();
        l
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), line)
        .await
        .expect("the emulator did not start within 60 s")
        .unwrap();
    let base = line.rsplit("base URL ").next().unwrap().trim().to_owned();
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let sp = ServiceProvider::new(
        SpConfig::builder()
            .environment(Environment::Custom(Url::parse(&base).unwrap()))
            .site_id("SITO_BIN")
            .mode(Mode::Saml {
                direct_to_cohesion_idp: false,
            })
            .allow(AuthRestriction::PasswordPin)
            .url_validate("https://sito.example/cb")
            .cohesion_certificate(&std::fs::read(&signer).unwrap())
            .trust_ca(ca_pem.as_bytes())
            .native_roots(false)
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::with_ca(&ca_pem, None);
    // Without entityID the WAYF chooser comes first; choose Cohesion's own IdP.
    let (status, wayf_url, wayf) = b.get(sp.login_url().unwrap().as_str()).await;
    assert_eq!(status, 200, "{wayf}");
    let idp = wayf
        .split("id=\"idp-cohesion\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let idp = Url::parse(&wayf_url).unwrap().join(idp).unwrap();
    let (status, url, page) = b.get(idp.as_str()).await;
    assert_eq!(status, 200, "{page}");
    let (_, cb) = password_login(
        &b,
        &url,
        &page,
        "login-pin",
        "VRDGPP80A01H501U",
        "password",
        Some("12345678"),
    )
    .await;
    let (_, auth) = callback_auth(&cb).unwrap();
    let user = sp.redeem(sp.parse_callback(&auth).unwrap()).await.unwrap();
    assert_eq!(
        user.profile.authentication(),
        Some(&AuthenticationType::PasswordPin)
    );
    // A wrong PIN is refused (new browser: the first one now has an SSO session).
    let b = Browser::with_ca(&ca_pem, None);
    let (_, url, page) = b.get(idp.as_str().replace("req=", "req=x").as_str()).await;
    assert!(
        page.contains("scaduta"),
        "an unknown login request is refused: {page}"
    );
    let mut direct = sp.login_url().unwrap();
    direct
        .query_pairs_mut()
        .append_pair("entityID", "cohesion2.regione.marche.it:idp");
    let (_, url2, page2) = b.get(direct.as_str()).await;
    let _ = (url, page);
    let (url, page) = (url2, page2);
    let (status, _) = password_login(
        &b,
        &url,
        &page,
        "login-pin",
        "VRDGPP80A01H501U",
        "password",
        Some("0000"),
    )
    .await;
    assert_eq!(status, 401);
    // --site: another id_sito is refused.
    let mut other = base.clone();
    other.push_str("sso/Check.aspx?auth=");
    let doc =
        tscns_cohesion::DsAuth::request("ALTRO", "https://x/", "https://x/", "AuthRestriction=0");
    other.push_str(&form_urlencoded_encode(&doc.to_base64()));
    let (status, _, _) = b.get(&other).await;
    assert_eq!(status, 403);
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

fn form_urlencoded_encode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
