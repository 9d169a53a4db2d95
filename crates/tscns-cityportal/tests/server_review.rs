//! Fixes of the issue-12 security review, each through the portal's real HTTP interface with
//! the Cohesion emulator: an omocodic codice fiscale is a different person from its base code;
//! the residents of a convivenza anagrafica are not each other's family.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use serde_json::{json, Value};
use server_support::*;
use tscns_cert::{CodiceFiscale, Sex};
use tscns_cityportal::registry::Registry;

fn fixture() -> Value {
    serde_json::from_str(tscns_cityportal::SAN_BENEDETTO_FIXTURE).unwrap()
}

/// A copy of fixture person `i` with a new code, name, family and relationship.
fn person_like(
    d: &Value,
    i: usize,
    cf: &str,
    given: &str,
    family: &str,
    relationship: u16,
) -> Value {
    let mut p = d["people"][i].clone();
    p["codice_fiscale"] = json!(cf);
    p["given_name"] = json!(given);
    p["family"] = json!(family);
    p["relationship"] = json!(relationship);
    p["spouse"] = Value::Null;
    p
}

fn family(id: &str, street: &str, convivenza: bool) -> Value {
    json!({"id": id, "address": {"street": street, "number": "7", "postal_code": "63074"},
           "since": "2015-03-01", "convivenza": convivenza})
}

fn cf(surname: &str, given: &str, y: i32, m: time::Month, d: u8, sex: Sex) -> String {
    let born = time::Date::from_calendar_date(y, m, d).unwrap();
    CodiceFiscale::compute(surname, given, born, sex, "H769")
        .unwrap()
        .as_str()
        .to_string()
}

/// Francesca Colombo's base code (hers is omocodic): another person, in another family.
fn base_of_francesca() -> String {
    CodiceFiscale::parse(FRANCESCA)
        .unwrap()
        .canonical()
        .as_str()
        .to_string()
}

fn index_of(d: &Value, cf: &str) -> usize {
    d["people"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["codice_fiscale"] == cf)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_omocodic_code_is_another_person() {
    let base = base_of_francesca();
    assert_ne!(base, FRANCESCA);
    let mut d = fixture();
    let i = index_of(&d, FRANCESCA);
    let mut other = person_like(&d, i, &base, "FRANCESCA", "F0099", 1);
    other["identity_card"] = json!({"number": "CA99999ZZ", "expiry": "2032-01-01"});
    d["families"]
        .as_array_mut()
        .unwrap()
        .push(family("F0099", "VIA DELLA BASE", false));
    d["people"].as_array_mut().unwrap().push(other);
    // A registry with both codes imports: they are two people.
    let r = Registry::from_json(d.to_string().as_bytes()).expect("both codes import");
    assert_eq!(
        r.person(&CodiceFiscale::parse(&base).unwrap())
            .unwrap()
            .family
            .as_deref(),
        Some("F0099")
    );
    assert_eq!(
        r.person(&CodiceFiscale::parse(FRANCESCA).unwrap())
            .unwrap()
            .family
            .as_deref(),
        Some("F0003")
    );

    let emu = emulator_of(&r).await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store_of(&dir, &r).await, 0).await;
    let omo = Browser::new(&emu);
    omo.login(&p.url, FRANCESCA).await;
    let bas = Browser::new(&emu);
    bas.login(&p.url, &base).await;

    let me = omo.get(&format!("{}/api/v1/me", p.url)).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["codice_fiscale"], FRANCESCA);
    assert_eq!(me.json()["family"]["id"], "F0003");
    let me = bas.get(&format!("{}/api/v1/me", p.url)).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["codice_fiscale"], base.as_str());
    assert_eq!(me.json()["family"]["id"], "F0099");

    // The base-code resident's certificate is not the omocodic one's, and back.
    let issued = bas
        .post_json(
            &format!("{}/api/v1/certificates", p.url),
            &json!({"kind": "residenza", "destination": 0, "stamp": {"marca": marca()}}),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let id = issued.json()["id"].as_str().unwrap().to_string();
    for path in ["/api/v1/me", "/api/v1/family", "/anagrafe", "/certificati"] {
        let t = omo.get(&format!("{}{path}", p.url)).await.text();
        assert!(
            !t.contains(&base),
            "{path} shows the base code to the omocodic one"
        );
        assert!(!t.contains("VIA DELLA BASE"), "{path}: the other's address");
        assert!(!t.contains(&id), "{path}: the other's certificate");
        let t = bas.get(&format!("{}{path}", p.url)).await.text();
        assert!(
            !t.contains(FRANCESCA),
            "{path} shows the omocodic code to the base one"
        );
    }
    let list = omo.get(&format!("{}/api/v1/certificates", p.url)).await;
    assert_eq!(list.json().as_array().unwrap().len(), 0, "{}", list.text());
    let pdf = omo
        .get(&format!("{}/api/v1/certificates/{id}/pdf", p.url))
        .await;
    assert_eq!(pdf.status, 404, "the other's PDF");
    let pdf = bas
        .get(&format!("{}/api/v1/certificates/{id}/pdf", p.url))
        .await;
    assert_eq!(pdf.status, 200);
    for (b, other) in [(&omo, base.as_str()), (&bas, FRANCESCA)] {
        let opt = b
            .get(&format!(
                "{}/api/v1/certificates/options?subject={other}",
                p.url
            ))
            .await;
        assert_eq!(opt.status, 403, "{}", opt.text());
        assert_eq!(opt.json()["error"], "not_in_family");
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convivenza_residents_are_not_each_others_family() {
    use time::Month::*;
    let resp = cf("GALLI", "SUOR ANNA", 1950, March, 12, Sex::Female);
    let res = cf("MARINI", "TERESA", 1938, July, 2, Sex::Female);
    let mut d = fixture();
    d["families"]
        .as_array_mut()
        .unwrap()
        .push(family("C0001", "VIA DEL CONVENTO", true));
    let i = index_of(&d, FRANCESCA);
    let mut a = person_like(&d, i, &resp, "SUOR ANNA", "C0001", 24);
    a["surname"] = json!("GALLI");
    let mut b = person_like(&d, i, &res, "TERESA", "C0001", 25);
    b["surname"] = json!("MARINI");
    d["people"].as_array_mut().unwrap().extend([a, b]);
    let r = Registry::from_json(d.to_string().as_bytes()).unwrap();
    let emu = emulator_of(&r).await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store_of(&dir, &r).await, 0).await;
    let responsabile = Browser::new(&emu);
    responsabile.login(&p.url, &resp).await;
    let convivente = Browser::new(&emu);
    convivente.login(&p.url, &res).await;

    for (who, me, other, other_name) in [
        (&responsabile, &resp, &res, "MARINI"),
        (&convivente, &res, &resp, "GALLI"),
    ] {
        let fam = who.get(&format!("{}/api/v1/family", p.url)).await;
        assert_eq!(fam.status, 200, "{}", fam.text());
        let members: Vec<String> = fam
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["codice_fiscale"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(members, vec![me.clone()], "the family of {me}");
        for path in ["/api/v1/me", "/anagrafe", "/certificati"] {
            let t = who.get(&format!("{}{path}", p.url)).await.text();
            assert!(!t.contains(other.as_str()), "{path} shows {other} to {me}");
            assert!(!t.contains(other_name), "{path} shows {other_name} to {me}");
        }
        let opt = who
            .get(&format!(
                "{}/api/v1/certificates/options?subject={other}",
                p.url
            ))
            .await;
        assert_eq!(opt.status, 403, "{}", opt.text());
        assert_eq!(opt.json()["error"], "not_in_family");
        for kind in ["residenza", "residenza-in-convivenza", "stato-di-famiglia"] {
            let req = who
                .post_json(
                    &format!("{}/api/v1/certificates", p.url),
                    &json!({"kind": kind, "subject": other, "destination": 0,
                            "stamp": {"marca": marca()}}),
                )
                .await;
            assert_eq!(
                req.status,
                403,
                "{kind} of {other} for {me}: {}",
                req.text()
            );
            assert_eq!(req.json()["error"], "not_in_family");
        }
    }
    // The responsabile gets residenza in convivenza for themself.
    let own = responsabile
        .post_json(
            &format!("{}/api/v1/certificates", p.url),
            &json!({"kind": "residenza-in-convivenza", "subject": resp, "destination": 0,
                    "stamp": {"marca": marca()}}),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.text());
    let list = convivente
        .get(&format!("{}/api/v1/certificates", p.url))
        .await;
    assert_eq!(list.json().as_array().unwrap().len(), 0);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_public_url_behind_a_proxy_is_tls() {
    // The binary's rule: an https public URL is TLS even when the listener is plain.
    let mut c = tscns_cityportal::server::PortalConfig::new(
        "https://portale.example.it/".parse().unwrap(),
        "H769",
    );
    c.set_listener_tls(false);
    assert!(c.tls);
    let mut c = tscns_cityportal::server::PortalConfig::new(
        "http://127.0.0.1:8080/".parse().unwrap(),
        "H769",
    );
    c.set_listener_tls(false);
    assert!(!c.tls);
    c.set_listener_tls(true);
    assert!(c.tls);

    // A plain listener behind a TLS-terminating proxy: HSTS on every answer.
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal_with(&emu, &sqlite_store(&dir).await, 0, |c| {
        c.public_url = "https://portale.example.it/".parse().unwrap();
        c.set_listener_tls(false);
    })
    .await;
    assert!(p.url.starts_with("http://"));
    let home = Browser::new(&emu).get(&format!("{}/", p.url)).await;
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(
        home.headers.get("strict-transport-security").is_some(),
        "{:?}",
        home.headers
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_below_this_instances_level_is_not_a_login() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let lax = portal(&emu, &store, 0).await;
    let public = lax.url.clone();
    let strict = portal_with(&emu, &store, 2, |c| c.public_url = public.parse().unwrap()).await;
    let b = Browser::new(&emu);
    b.login(&lax.url, MARIO).await;
    let me = b.get(&format!("{}/api/v1/me", lax.url)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["codice_fiscale"], MARIO);
    // The cookie jar sends the same session cookie to the strict instance (same host).
    let me = b.get(&format!("{}/api/v1/me", strict.url)).await;
    assert_eq!(
        me.status,
        401,
        "a password session at level 2: {}",
        me.text()
    );
    assert!(!me.text().contains("ROSSI"));
    let page = b.get(&format!("{}/anagrafe", strict.url)).await;
    assert!((300..400).contains(&page.status), "{}", page.text());
    assert!(!page.text().contains("ROSSI"));
    lax.stop().await;
    strict.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_are_limited_per_address_before_auditing() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal_with(&emu, &sqlite_store(&dir).await, 0, |c| {
        c.limits.callback.limit = 3;
        c.limits.per_address_factor = 1;
        c.limits.callback.window_secs = 3600;
    })
    .await;
    let forger = Browser::new(&emu);
    let url = format!("{}{}", p.url, tscns_cityportal::server::CALLBACK_PATH);
    let audited = |log: &[tscns_cityportal::store::AuditEntry]| {
        log.iter()
            .filter(|l| l.action == "login" && l.outcome.starts_with("refused"))
            .count()
    };
    for i in 1..=3 {
        let r = forger.post_form(&url, "auth=forged", None).await;
        assert_eq!(r.status, 403, "forged callback {i}: {}", r.text());
        let log = p.store.audit_log(100).await.unwrap();
        assert_eq!(audited(&log), i, "{log:?}");
    }
    let r = forger.post_form(&url, "auth=forged", None).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.get("retry-after").is_some());
    let log = p.store.audit_log(100).await.unwrap();
    assert_eq!(audited(&log), 3, "no audit line past the limit: {log:?}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_error_and_message_in_italian() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store(&dir).await, 0).await;
    let b = Browser::new(&emu);
    b.login(&p.url, MARIO).await;
    let english = [
        "Failed",
        "failed",
        "expected",
        "duplicate",
        "line ",
        "column",
        "invalid type",
        "Content-Type header",
    ];
    let check = |a: &Answer, status: u16, code: &str| {
        assert_eq!(a.status, status, "{}", a.text());
        let v = a.json();
        assert_eq!(v["error"], code, "{v}");
        let m = v["message"].as_str().unwrap();
        for w in english {
            assert!(!m.contains(w), "{code}: {m:?} quotes the parser ({w})");
        }
        m.to_string()
    };
    let certs = format!("{}/api/v1/certificates", p.url);
    // Bad bodies: 422, one fixed sentence, whatever went wrong.
    let m1 = check(
        &b.post_json(&certs, &json!({"kind": [1, 2], "subject": 7}))
            .await,
        422,
        "bad_body",
    );
    let r = b
        .client
        .post(&certs)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    let a = Answer {
        status: r.status().as_u16(),
        url: String::new(),
        headers: r.headers().clone(),
        body: r.bytes().await.unwrap().to_vec(),
    };
    let m2 = check(&a, 422, "bad_body");
    let r = b
        .client
        .post(&certs)
        .body("kind=residenza")
        .send()
        .await
        .unwrap();
    let a = Answer {
        status: r.status().as_u16(),
        url: String::new(),
        headers: r.headers().clone(),
        body: r.bytes().await.unwrap().to_vec(),
    };
    let m3 = check(&a, 422, "bad_body");
    assert!(
        m1 == m2 && m2 == m3,
        "one fixed sentence: {m1:?} {m2:?} {m3:?}"
    );
    let m = check(
        &b.post_json(
            &format!("{}/api/v1/declarations", p.url),
            &json!({"facts": "residenza"}),
        )
        .await,
        422,
        "bad_body",
    );
    assert_eq!(m, m1);
    // Bad query strings and paths: 400.
    check(
        &b.get(&format!(
            "{}/api/v1/certificates/options?subject=A&subject=B",
            p.url
        ))
        .await,
        400,
        "bad_query",
    );
    check(
        &b.get_json(&format!("{}/verifica/X?codice=A&codice=B", p.url))
            .await,
        400,
        "bad_query",
    );
    check(
        &b.get(&format!("{}/api/v1/certificates/%FF%FE/pdf", p.url))
            .await,
        400,
        "bad_path",
    );
    // The pages answer an Italian page, never the parser's text.
    for path in ["/certificati?emesso=a&emesso=b", "/certificati/%FF%FE/pdf"] {
        let a = b.get(&format!("{}{path}", p.url)).await;
        assert_eq!(a.status, 400, "{path}: {}", a.text());
        let t = a.text();
        assert!(t.contains("<html") && t.contains("non"), "{path}: {t}");
        for w in english {
            assert!(!t.contains(w), "{path} quotes the parser ({w}): {t}");
        }
    }
    p.stop().await;
}
