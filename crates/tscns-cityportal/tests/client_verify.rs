//! `client::verify_with_seal` does not take a verification page's word: against a forged
//! verification server (a small axum server answering `valid: true`) it checks the sealed
//! original's hash, seal and id; `client::verify` without the seal CA trusts the server.
#![cfg(all(feature = "client", feature = "server"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use server_support::*;
use sha2::{Digest, Sha256};
use tscns_cityportal::client;

/// What the forged server answers for each `caso`: the JSON's sha256 and the PDF served.
type Cases = Arc<HashMap<String, (String, Vec<u8>)>>;

async fn forged(State(cases): State<Cases>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some((sha, pdf)) = q.get("caso").and_then(|c| cases.get(c)) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    if q.get("pdf").map(String::as_str) == Some("1") {
        return ([("content-type", "application/pdf")], pdf.clone()).into_response();
    }
    axum::Json(json!({
        "valid": true,
        "kind": {"code": 8, "slug": "residenza", "description": "certificato di residenza"},
        "issued_at": "2026-01-01T00:00:00Z",
        "sha256": sha,
    }))
    .into_response()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_verification_answer_is_not_valid_with_the_seal_ca() {
    // A genuine certificate from the real portal.
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store(&dir).await, 0).await;
    let b = Browser::new(&emu);
    b.login(&p.url, MARIO).await;
    let issued = b
        .post_json(
            &format!("{}/api/v1/certificates", p.url),
            &json!({"kind": "residenza", "destination": 0, "stamp": {"marca": marca()}}),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let issued = issued.json();
    let id = issued["id"].as_str().unwrap().to_string();
    let url = issued["verification_url"].as_str().unwrap().to_string();
    let pdf = b
        .get(&format!("{}/api/v1/certificates/{id}/pdf", p.url))
        .await
        .body;
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(sha(&pdf), issued["sha256"].as_str().unwrap());
    let seal_ca = seal().ca_pem.as_bytes();

    // The real page, checked: valid; a wrong code: not valid.
    let v = client::verify_with_seal(&url, &[], seal_ca).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.sha256.as_deref(), Some(sha(&pdf).as_str()));
    let code = issued["verification_code"].as_str().unwrap();
    let wrong = url.replace(code, "AAAAAAAAAAAAAAAA");
    assert!(
        !client::verify_with_seal(&wrong, &[], seal_ca)
            .await
            .unwrap()
            .valid
    );

    // The forged server.
    let mut modified = pdf.clone();
    let at = modified.len() / 3;
    modified[at] ^= 0x01;
    let mut cases = HashMap::new();
    cases.insert("honest".to_string(), (sha(&pdf), pdf.clone()));
    cases.insert("modified".to_string(), (sha(&modified), modified));
    cases.insert("hash".to_string(), ("00".repeat(32), pdf.clone()));
    cases.insert("other".to_string(), (sha(&pdf), pdf.clone()));
    cases.insert("text".to_string(), (sha(b"hello"), b"hello".to_vec()));
    let router = axum::Router::new()
        .route("/verifica/{id}", axum::routing::get(forged))
        .with_state(Arc::new(cases));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let at =
        |id: &str, case: &str| format!("http://{addr}/verifica/{id}?codice={code}&caso={case}");

    // Serving the genuine original under its own id is fine (it is the certificate).
    let v = client::verify_with_seal(&at(&id, "honest"), &[], seal_ca)
        .await
        .unwrap();
    assert!(v.valid, "{v:?}");
    // Anything else says valid: true in JSON, and is not valid.
    let other_id = format!("{id}X");
    for (cert, case) in [
        (id.as_str(), "modified"),
        (id.as_str(), "hash"),
        (id.as_str(), "text"),
        (other_id.as_str(), "other"),
    ] {
        let u = at(cert, case);
        let trusting = client::verify(&u, &[]).await.unwrap();
        assert!(
            trusting.valid,
            "without the seal CA the server's word is taken"
        );
        let v = client::verify_with_seal(&u, &[], seal_ca).await.unwrap();
        assert!(!v.valid, "{case}: {v:?}");
        assert_eq!(v.sha256, None, "{case}");
        assert_eq!(v.kind, None, "{case}");
    }
    // Another CA (the emulator's) does not vouch for the portal's seal.
    let v = client::verify_with_seal(&url, &[], emu.ca_pem().as_bytes())
        .await
        .unwrap();
    assert!(!v.valid, "{v:?}");
    server.abort();
    p.stop().await;
}
