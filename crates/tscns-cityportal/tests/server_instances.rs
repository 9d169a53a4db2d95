//! Two `Portal` instances on one PostgreSQL are one portal: a citizen who logged in on instance A
//! is served by instance B (sessions live in the store), and concurrent issuance on both with one
//! marca da bollo gives exactly one certificate (the others are 409), with one row, one used marca
//! and one issuance line in the audit log. Needs PostgreSQL (`TSCNS_TEST_POSTGRES_URL`;
//! `scripts/test` starts a private one).
#![cfg(all(feature = "server", feature = "system-tests"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_support;

use serde_json::json;
use server_support::{emulator, marca, portal, Browser, LAURA, MARIO};
use tscns_cityportal::registry::Registry;
use tscns_cityportal::store::Store;

async fn postgres_portal_store() -> String {
    let url = common::fresh_postgres().await;
    let store = Store::open_portal(&url).await.unwrap();
    let r = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap();
    store.import(&r).await.unwrap();
    store.close().await;
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_are_one_portal() {
    let emu = emulator().await;
    let url = postgres_portal_store().await;
    let a = portal(&emu, &url, 0).await;
    let b = portal(&emu, &url, 0).await;
    assert_ne!(a.url, b.url);

    // Logged in on A; the same cookie (cookies do not depend on the port) is a session on B.
    let mario = Browser::new(&emu);
    mario.login(&a.url, MARIO).await;
    let me_b = mario.get_json(&format!("{}/api/v1/me", b.url)).await;
    assert_eq!(
        me_b.status,
        200,
        "instance B does not know A's session: {}",
        me_b.text()
    );
    assert_eq!(me_b.json()["codice_fiscale"], MARIO, "{}", me_b.text());
    let page_b = mario.get(&format!("{}/anagrafe", b.url)).await;
    assert_eq!(page_b.status, 200);
    assert!(page_b.text().contains(MARIO));

    // 16 concurrent requests, 8 on each instance, all with the same marca: exactly one wins.
    let shared = marca();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let base = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let browser = mario.clone();
        let marca = shared.clone();
        tasks.push(tokio::spawn(async move {
            let r = browser
                .post_json(
                    &format!("{base}/api/v1/certificates"),
                    &json!({"kind": "residenza", "subject": LAURA, "stamp": {"marca": marca}}),
                )
                .await;
            (r.status, r.text())
        }));
    }
    let mut created = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(120), t)
            .await
            .expect("issuance did not answer in 120 s")
            .unwrap();
        match status {
            201 => created.push(body),
            409 => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(
                    v["error"].as_str().is_some() && v["message"].as_str().is_some(),
                    "{body}"
                );
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created.len(), conflicts), (1, 15), "{created:?}");
    let issued: serde_json::Value = serde_json::from_str(&created[0]).unwrap();
    let id = issued["id"].as_str().unwrap();

    // Both instances list it and serve its PDF; the store holds exactly one of everything.
    for base in [&a.url, &b.url] {
        let list = mario.get_json(&format!("{base}/api/v1/certificates")).await;
        assert_eq!(list.status, 200);
        assert!(list.text().contains(id), "{base}: {}", list.text());
        let pdf = mario
            .get(&format!("{base}/api/v1/certificates/{id}/pdf"))
            .await;
        assert_eq!(pdf.status, 200);
        assert!(pdf.body.starts_with(b"%PDF-"));
    }
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.certificate_ids().await.unwrap(), vec![id.to_string()]);
    assert_eq!(store.used_marche().await.unwrap().len(), 1);
    store.close().await;

    // Logout on B ends the session on A too.
    let out = mario
        .post_json(&format!("{}/api/v1/logout", b.url), &json!({}))
        .await;
    assert_eq!(out.status, 204, "{}", out.text());
    let me_a = mario.get_json(&format!("{}/api/v1/me", a.url)).await;
    assert_eq!(me_a.status, 401, "{}", me_a.text());
    a.stop().await;
    b.stop().await;
}
