//! The portal's guarantees through its real HTTP interface, with the Cohesion emulator: citizen A
//! never reads B's data on any endpoint; forms without the CSRF token (or from another origin)
//! are refused; a replayed callback is refused; a login below the minimum level is refused; the
//! API's contract (fields, codes, OpenAPI) and the security headers.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use serde_json::json;
use server_support::*;

async fn issue(
    b: &Browser,
    url: &str,
    kind: &str,
    subject: &str,
    stamp: serde_json::Value,
) -> serde_json::Value {
    let a = b
        .post_json(
            &format!("{url}/api/v1/certificates"),
            &json!({"kind": kind, "subject": subject, "destination": 0, "stamp": stamp}),
        )
        .await;
    assert_eq!(a.status, 201, "issue {kind} for {subject}: {}", a.text());
    a.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_a_never_reads_citizen_b() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store(&dir).await, 0).await;
    let mario = Browser::new(&emu);
    mario.login(&p.url, MARIO).await;
    let andrea = Browser::new(&emu);
    andrea.login(&p.url, ANDREA).await;
    let laura = Browser::new(&emu);
    laura.login(&p.url, LAURA).await;

    let m = issue(
        &mario,
        &p.url,
        "residenza",
        MARIO,
        json!({"marca": marca()}),
    )
    .await;
    let for_laura = issue(&mario, &p.url, "8", LAURA, json!({"marca": marca()})).await;
    let a = issue(
        &andrea,
        &p.url,
        "residenza",
        ANDREA,
        json!({"marca": marca()}),
    )
    .await;
    let (m_id, l_id, a_id) = (
        m["id"].as_str().unwrap().to_string(),
        for_laura["id"].as_str().unwrap().to_string(),
        a["id"].as_str().unwrap().to_string(),
    );

    // Andrea's session, every endpoint: nothing of Mario's family.
    let me = andrea.get(&format!("{}/api/v1/me", p.url)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["codice_fiscale"], ANDREA);
    for path in [
        "/api/v1/me",
        "/api/v1/family",
        "/api/v1/certificates",
        "/anagrafe",
        "/certificati",
        "/autocertificazione",
    ] {
        let r = andrea.get(&format!("{}{path}", p.url)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let t = r.text();
        for secret in [
            MARIO,
            LAURA,
            m_id.as_str(),
            l_id.as_str(),
            "ROSSI",
            "BIANCHI",
        ] {
            assert!(!t.contains(secret), "{path} shows {secret} to Andrea");
        }
    }
    let opt = andrea
        .get(&format!(
            "{}/api/v1/certificates/options?subject={MARIO}",
            p.url
        ))
        .await;
    assert_eq!(opt.status, 403, "{}", opt.text());
    assert_eq!(opt.json()["error"], "not_in_family");
    assert!(!opt.text().contains("ROSSI"));
    let req = andrea
        .post_json(
            &format!("{}/api/v1/certificates", p.url),
            &json!({"kind": "residenza", "subject": MARIO, "stamp": {"marca": marca()}}),
        )
        .await;
    assert_eq!(req.status, 403, "{}", req.text());
    assert_eq!(req.json()["error"], "not_in_family");
    assert!(req.json()["message"]
        .as_str()
        .unwrap()
        .contains("famiglia anagrafica"));
    for id in [&m_id, &l_id] {
        let r = andrea
            .get(&format!("{}/api/v1/certificates/{id}/pdf", p.url))
            .await;
        assert_eq!(r.status, 404, "API PDF {id} to Andrea");
        assert_eq!(r.json()["error"], "not_found");
        let r = andrea.get(&format!("{}/certificati/{id}/pdf", p.url)).await;
        assert_eq!(r.status, 404, "page PDF {id} to Andrea");
        assert!(!r.text().starts_with("%PDF"));
    }
    // Andrea's own certificate is his.
    let own = andrea
        .get(&format!("{}/api/v1/certificates/{a_id}/pdf", p.url))
        .await;
    assert_eq!(own.status, 200);
    assert!(own.body.starts_with(b"%PDF"));
    let list = andrea
        .get(&format!("{}/api/v1/certificates", p.url))
        .await
        .json();
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![a_id.clone()]);

    // Mario reads both of his, not Andrea's; Laura reads the one about her, not Mario's own.
    for id in [&m_id, &l_id] {
        let r = mario
            .get(&format!("{}/api/v1/certificates/{id}/pdf", p.url))
            .await;
        assert_eq!(r.status, 200);
        let sealed =
            tscns_cityportal::documents::verify(&r.body, &[pem_der(&seal().ca_pem)]).unwrap();
        assert_eq!(&sealed.certificate_id, id);
    }
    assert_eq!(
        mario
            .get(&format!("{}/api/v1/certificates/{a_id}/pdf", p.url))
            .await
            .status,
        404
    );
    assert_eq!(
        laura
            .get(&format!("{}/api/v1/certificates/{l_id}/pdf", p.url))
            .await
            .status,
        200
    );
    assert_eq!(
        laura
            .get(&format!("{}/api/v1/certificates/{m_id}/pdf", p.url))
            .await
            .status,
        404
    );
    let ll = laura
        .get(&format!("{}/api/v1/certificates", p.url))
        .await
        .json();
    assert_eq!(ll.as_array().unwrap().len(), 1);
    assert_eq!(ll[0]["id"], l_id.as_str());

    // Without a session: the API says 401, pages send to the login.
    let anon = Browser::new(&emu);
    for path in [
        "/api/v1/me",
        "/api/v1/family",
        "/api/v1/certificates",
        "/api/v1/certificates/options",
    ] {
        let r = anon.get(&format!("{}{path}", p.url)).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()["error"], "not_logged_in");
    }
    let r = anon
        .get(&format!("{}/api/v1/certificates/{m_id}/pdf", p.url))
        .await;
    assert_eq!(r.status, 401);
    let r = anon.get(&format!("{}/certificati", p.url)).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location().as_deref(),
        Some("/accedi?ritorno=%2Fcertificati")
    );

    // Every view, issuance, refusal and download is in the audit log.
    let log = p.store.audit_about(Some(ANDREA), 1000).await.unwrap();
    for (action, outcome) in [
        ("login", "ok"),
        ("record.view", "ok"),
        ("certificate.issue", "not_in_family"),
        ("certificate.download", "not_found"),
        ("certificate.options", "not_in_family"),
    ] {
        assert!(
            log.iter()
                .any(|l| l.action == action && l.outcome.starts_with(outcome)),
            "no {action} {outcome} in {log:?}"
        );
    }
    p.stop().await;
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_session_token_and_the_portal_origin() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store(&dir).await, 0).await;
    let b = Browser::new(&emu);
    b.login(&p.url, MARIO).await;
    let token = b.csrf(&p.url).await;
    let form = |csrf: &str, m: &str| {
        format!("csrf={csrf}&tipo=residenza&soggetto={MARIO}&destinazione=0&bollo=marca&marca={m}")
    };

    let m1 = marca();
    for (body, origin, what) in [
        (
            format!("tipo=residenza&soggetto={MARIO}&bollo=marca&marca={m1}"),
            Some(p.url.as_str()),
            "no token",
        ),
        (
            form(&"0".repeat(64), &m1),
            Some(p.url.as_str()),
            "wrong token",
        ),
        (
            form(&token, &m1),
            Some("http://evil.example"),
            "other origin",
        ),
    ] {
        let r = b
            .post_form(&format!("{}/certificati", p.url), &body, origin)
            .await;
        assert_eq!(r.status, 403, "{what}: {}", r.text());
        assert!(
            r.text().contains("non proviene da questo portale"),
            "{what}"
        );
    }
    assert!(
        !p.store.marca_used(&m1).await.unwrap(),
        "a refused form issued a certificate"
    );
    let r = b
        .post_form(
            &format!("{}/certificati", p.url),
            &form(&token, &m1),
            Some(&p.url),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(p.store.marca_used(&m1).await.unwrap());

    // The self-declaration and sign-out forms too.
    let r = b
        .post_form(
            &format!("{}/autocertificazione", p.url),
            "fatto=residenza",
            Some(&p.url),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post_form(
            &format!("{}/autocertificazione", p.url),
            &format!("csrf={token}&fatto=residenza&fatto=codice-fiscale"),
            Some(&p.url),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(b"%PDF"));
    let r = b
        .post_form(&format!("{}/esci", p.url), "", Some(&p.url))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        b.get(&format!("{}/api/v1/me", p.url)).await.status,
        200,
        "a refused sign-out ended the session"
    );

    // The API refuses a browser's cross-site request (a program sends no Origin).
    let r = b
        .client
        .post(format!("{}/api/v1/certificates", p.url))
        .header("origin", "http://evil.example")
        .json(&json!({"kind": "nascita"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = b
        .client
        .post(format!("{}/api/v1/logout", p.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // Sign-out with the token: LogoutSito at Cohesion, session gone.
    let before = emu.tokens_logged_out();
    let r = b
        .post_form(
            &format!("{}/esci", p.url),
            &format!("csrf={token}"),
            Some(&p.url),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.location().unwrap().contains("/SPManager/Logout.aspx"));
    assert_eq!(emu.tokens_logged_out(), before + 1, "no LogoutSito");
    assert_eq!(b.get(&format!("{}/api/v1/me", p.url)).await.status, 401);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_callback_is_refused() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal(&emu, &sqlite_store(&dir).await, 0).await;
    let b = Browser::new(&emu);
    let cb = b.login(&p.url, MARIO).await;

    // Another browser with its own valid login state posts the same callback.
    let thief = Browser::new(&emu);
    let start = thief.get(&format!("{}/accedi", p.url)).await;
    assert_eq!(start.status, 303);
    let to_cohesion = reqwest::Url::parse(&start.location().unwrap()).unwrap();
    assert!(to_cohesion
        .as_str()
        .starts_with(emu.base_url().unwrap().as_str()));
    let cookie = {
        use reqwest::cookie::CookieStore as _;
        thief
            .jar
            .cookies(&p.url.parse().unwrap())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let state = cookie
        .split("__Host-cityportal_login=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let replay = Callback {
        action: format!(
            "{}/cohesion/callback?ritorno=%2Fanagrafe&stato={state}",
            p.url
        ),
        body: cb.body.clone(),
    };
    let r = thief.post_callback(&replay).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("già stata usata"), "{}", r.text());
    assert_eq!(thief.get(&format!("{}/api/v1/me", p.url)).await.status, 401);
    // Without the login state of the browser, a callback is refused before Cohesion is asked.
    let r = Browser::new(&emu).post_callback(&cb).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("non è partita da questo browser"));
    let log = p.store.audit_log(100).await.unwrap();
    assert!(log
        .iter()
        .any(|l| l.action == "login" && l.outcome == "refused replayed_callback"));
    assert!(log
        .iter()
        .any(|l| l.action == "login" && l.outcome == "refused login_state"));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_below_the_minimum_level_is_refused() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    // Two instances of one portal (same public URL, same store): one accepts passwords, the other
    // (the default) only smart cards.
    let lax = portal(&emu, &store, 0).await;
    let public = lax.url.clone();
    let strict = portal_with(&emu, &store, 2, |c| c.public_url = public.parse().unwrap()).await;
    assert_eq!(strict.portal.config().min_level, 2);

    let b = Browser::new(&emu);
    let cb = b.login_until_callback(&lax.url, MARIO, "PW").await;
    let to_strict = Callback {
        action: cb.action.replace(&lax.url, &strict_url(&strict)),
        body: cb.body.clone(),
    };
    let r = b.post_callback(&to_strict).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("non basta"), "{}", r.text());
    assert!(r
        .headers
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("cityportal_session=")));
    assert_eq!(b.get(&format!("{}/api/v1/me", lax.url)).await.status, 401);
    let log = lax.store.audit_log(100).await.unwrap();
    assert!(
        log.iter()
            .any(|l| l.action == "login" && l.outcome == "refused insufficient_level"),
        "{log:?}"
    );

    // The same kind of login is fine where the minimum is 0, and the session holds on both.
    let b2 = Browser::new(&emu);
    b2.login(&lax.url, MARIO).await;
    let me = b2.get(&format!("{}/api/v1/me", lax.url)).await;
    assert_eq!(me.json()["codice_fiscale"], MARIO);
    // The strict instance's own login page at Cohesion offers the smart card only.
    let page = Browser::new(&emu)
        .follow(&format!("{}/accedi", strict_url(&strict)))
        .await;
    assert!(page.text().contains("login-smartcard") && !page.text().contains("login-password"));
    lax.stop().await;
    strict.stop().await;
}

/// Where the strict instance really listens (its public URL is the other instance's).
fn strict_url(p: &TestPortal) -> String {
    p.url.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract_headers_and_verification() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let p = portal_with(&emu, &sqlite_store(&dir).await, 0, |c| {
        c.limits.issue.limit = 8;
    })
    .await;
    let b = Browser::new(&emu);
    b.login(&p.url, MARIO).await;

    let me = b.get(&format!("{}/api/v1/me", p.url)).await.json();
    assert_eq!(me["surname"], "ROSSI");
    assert_eq!(me["given_name"], "MARIO");
    assert_eq!(me["birth_date"], "1980-01-01");
    assert_eq!(me["civil_status"]["code"], 2);
    assert!(me["civil_status"]["description"]
        .as_str()
        .unwrap()
        .starts_with("coniugat"));
    assert_eq!(me["citizenship"]["code"], 100);
    let fam = b.get(&format!("{}/api/v1/family", p.url)).await.json();
    let fam = fam.as_array().unwrap();
    assert_eq!(fam.len(), 5);
    let laura = fam.iter().find(|m| m["codice_fiscale"] == LAURA).unwrap();
    assert_eq!(laura["relationship"]["code"], 2);
    assert!(laura["surname"].is_string() && laura["given_name"].is_string());

    let opts = b
        .get(&format!("{}/api/v1/certificates/options", p.url))
        .await
        .json();
    let opts = opts.as_array().unwrap();
    assert_eq!(opts.len(), 15);
    let res = opts
        .iter()
        .find(|o| o["kind"]["slug"] == "residenza")
        .unwrap();
    assert_eq!(res["kind"]["code"], 8);
    assert_eq!(res["available"], true);
    assert_eq!(res["stamp"], "required");
    assert_eq!(res["stamp_amount_cents"], 1600);
    assert!(res["fee_cents"].is_number());
    let nascita = opts
        .iter()
        .find(|o| o["kind"]["slug"] == "nascita")
        .unwrap();
    assert_eq!(nascita["stamp"], "exempt");
    let libero = opts
        .iter()
        .find(|o| o["kind"]["slug"] == "stato-libero")
        .unwrap();
    assert_eq!(libero["available"], false);
    assert!(libero["reason"].as_str().unwrap().contains("coniugata"));

    // Bad bodies are 422, a used marca 409, a missing stamp 422.
    let url = format!("{}/api/v1/certificates", p.url);
    for bad in [
        json!({"kind": "residenza", "colour": "red"}),
        json!({"kind": "nope"}),
        json!({"kind": "residenza", "stamp": {"marca": "123"}}),
        json!([1, 2]),
    ] {
        let r = b.post_json(&url, &bad).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        assert!(r.json()["error"].is_string() && r.json()["message"].is_string());
    }
    let r = b.post_json(&url, &json!({"kind": "residenza"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"], "stamp_mismatch");
    let m = marca();
    let first = issue(&b, &p.url, "residenza", MARIO, json!({"marca": m})).await;
    for k in [
        "id",
        "verification_code",
        "verification_url",
        "sha256",
        "pdf_url",
    ] {
        assert!(first[k].is_string(), "{k} missing in {first}");
    }
    let again = b
        .post_json(
            &url,
            &json!({"kind": "stato-di-famiglia", "stamp": {"marca": m}}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.json()["error"], "marca_already_used");
    let exempt = issue(
        &b,
        &p.url,
        "stato-di-famiglia",
        MARIO,
        json!({"exemption": 99, "description": "uso sportivo"}),
    )
    .await;

    // Public verification: JSON, the PDF, the page; a wrong code is not valid.
    let v = Browser::new(&emu);
    let ok = v
        .get_json(first["verification_url"].as_str().unwrap())
        .await;
    assert_eq!(ok.status, 200);
    let okj = ok.json();
    assert_eq!(okj["valid"], true);
    assert_eq!(okj["kind"]["slug"], "residenza");
    assert_eq!(okj["sha256"], first["sha256"]);
    assert!(okj["issued_at"].is_string());
    let pdf = v
        .get(&format!(
            "{}&pdf=1",
            first["verification_url"].as_str().unwrap()
        ))
        .await;
    assert!(pdf.body.starts_with(b"%PDF"));
    let wrong = v
        .get_json(&format!(
            "{}/verifica/{}?codice=AAAA-BBBB-CCCC-DDDD",
            p.url,
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(wrong.json()["valid"], false);
    let page = v.get(exempt["verification_url"].as_str().unwrap()).await;
    assert!(page.text().contains("Certificato valido"));
    let page = v
        .get(&format!(
            "{}/verifica/{}?codice=X",
            p.url,
            first["id"].as_str().unwrap()
        ))
        .await;
    assert!(page.text().contains("Certificato non valido"));

    // The rate limit of issuance (every attempt counts): over 8 an hour for this citizen, 429
    // with Retry-After.
    let mut limited = None;
    for _ in 0..8 {
        let r = b.post_json(&url, &json!({"kind": "nascita"})).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = limited.expect("no 429 after the limit");
    assert_eq!(r.json()["error"], "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));

    // Self-declaration through the API.
    let d = b
        .post_json(
            &format!("{}/api/v1/declarations", p.url),
            &json!({"facts": ["residenza", "codice-fiscale"]}),
        )
        .await;
    assert_eq!(d.status, 200);
    assert!(d.body.starts_with(b"%PDF"));
    let d = b
        .post_json(
            &format!("{}/api/v1/declarations", p.url),
            &json!({"facts": ["oroscopo"]}),
        )
        .await;
    assert_eq!(d.status, 422);

    // OpenAPI, generated: every contract path is there.
    let doc = v
        .get(&format!("{}/api/v1/openapi.json", p.url))
        .await
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/me",
        "/api/v1/family",
        "/api/v1/certificates/options",
        "/api/v1/certificates",
        "/api/v1/certificates/{id}/pdf",
        "/api/v1/declarations",
        "/verifica/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(doc["components"]["schemas"]["CertificateRequest"]["properties"]["stamp"].is_object());

    // Security headers on pages.
    let home = v.get(&format!("{}/", p.url)).await;
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    assert!(
        home.headers.get("strict-transport-security").is_none(),
        "HSTS without TLS"
    );
    assert!(home.text().contains("Accedi") && home.text().contains("lang=\"it\""));
    let session_cookie = {
        let bb = Browser::new(&emu);
        let cb = bb.login_until_callback(&p.url, LAURA, "PW").await;
        let r = bb.post_callback(&cb).await;
        r.headers
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().to_string())
            .find(|c| c.starts_with("cityportal_session="))
            .unwrap()
    };
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    p.stop().await;
}
