//! The axum integration (`web`) against the emulator, as a browser drives it: the `return` target
//! stays on the site (open redirect), the callback must come back to the browser that started
//! the login (login CSRF), sessions expire and are bounded without the site refusing logins, and
//! what the citizen sees on errors is a generic Italian page without the codice fiscale.
#![cfg(feature = "emulator")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use common::*;
use tscns_cohesion::web::{
    Cohesion, CohesionUser, HOST_SESSION_COOKIE, SESSION_COOKIE, STATE_COOKIE,
};
use tscns_cohesion::{AuthRestriction as AR, DsAuth, ManualClock, Mode, ServiceProvider};

const PW_USER: &str = "RSSMRA85T10A562S";
const OTHER_USER: &str = "VRDGPP80A01H501U";

struct Site {
    base: String,
    cohesion: Cohesion,
}

async fn start_site(
    emu: &tscns_cohesion::emulator::Emulator,
    clock: Arc<ManualClock>,
    tune: impl FnOnce(Cohesion) -> Cohesion,
) -> Site {
    start_site_with(emu, clock, |b, _| b, tune).await
}

async fn start_site_with(
    emu: &tscns_cohesion::emulator::Emulator,
    clock: Arc<ManualClock>,
    configure: impl FnOnce(tscns_cohesion::SpConfigBuilder, u16) -> tscns_cohesion::SpConfigBuilder,
    tune: impl FnOnce(Cohesion) -> Cohesion,
) -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let config = tscns_cohesion::SpConfig::builder()
        .environment(tscns_cohesion::Environment::Custom(emu.base_url().unwrap()))
        .site_id("COMUNE_WEB")
        .mode(Mode::Classic)
        .allow(AR::Password)
        .url_validate(format!("{base}/cohesion/callback"))
        .trust_ca(emu.ca_pem().as_bytes())
        .native_roots(false)
        .clock(clock);
    let config = configure(config, port).build().unwrap();
    let cohesion = tune(Cohesion::new(ServiceProvider::new(config).unwrap()));
    let app = axum::Router::new()
        .route(
            "/area-riservata",
            get(|u: CohesionUser| async move { format!("cf={}", u.0.profile.login()) }),
        )
        .merge(cohesion.routes())
        .layer(cohesion.layer());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    Site { base, cohesion }
}

/// `/cohesion/login?return=<ret>` up to Cohesion's auto-posting callback form: (action, auth).
async fn until_callback(b: &Browser, site: &Site, ret_encoded: &str) -> (String, String) {
    let r = b
        .client
        .get(format!("{}/cohesion/login?return={ret_encoded}", site.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let set_state = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(STATE_COOKIE))
        .expect("the login sets the state cookie");
    for attr in ["Secure", "HttpOnly", "Path=/", "SameSite=None"] {
        assert!(set_state.contains(attr), "{set_state}");
    }
    assert!(!set_state.contains("Domain"), "{set_state}");
    let to_cohesion = r.headers()["location"].to_str().unwrap().to_owned();
    let (status, url, page) = b.get(&to_cohesion).await;
    assert_eq!(status, 200, "{page}");
    let (status, cb) =
        password_login(b, &url, &page, "login-password", PW_USER, "password", None).await;
    assert_eq!(status, 200, "{cb}");
    callback_auth(&cb).expect("auto-post callback form")
}

/// Posts the callback form: (status, Location, body).
async fn post_callback(b: &Browser, action: &str, auth: &str) -> (u16, String, String) {
    let r = b
        .client
        .post(action)
        .form(&[("auth", auth)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, loc, r.text().await.unwrap())
}

async fn protected(b: &Browser, site: &Site) -> (u16, String) {
    let r = b
        .client
        .get(format!("{}/area-riservata", site.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    (status, loc.unwrap_or(body))
}

fn assert_citizen_page(body: &str) {
    assert!(body.contains("<html lang=\"it\">"), "{body}");
    assert!(body.contains("Accesso non riuscito"), "{body}");
    assert!(body.contains("Accedi di nuovo"), "{body}");
    for leak in [PW_USER, OTHER_USER, "callback", "GetCredential", "error"] {
        assert!(!body.contains(leak), "the page shows {leak:?}: {body}");
    }
}

#[tokio::test]
async fn return_targets_stay_on_the_site() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let site = start_site(&emu, Arc::new(ManualClock::starting_now()), |c| c).await;
    // (encoded `return`, where the callback may send the browser)
    let cases = [
        ("%2F%09%2Fevil.example", "/"),
        ("%2F%0A%2Fevil.example", "/"),
        ("%2F%0D%2Fevil.example", "/"),
        ("%2F%00%2Fevil.example", "/"),
        ("%2F%20%2Fevil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%5C%5Cevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("%2F%2F%2Fevil.example", "/"),
        ("evil.example", "/"),
        ("%2Farea-riservata%3Fx%3D1", "/area-riservata?x=1"),
        ("%2Fa%2Fb", "/a/b"),
    ];
    for (ret, expected) in cases {
        let b = Browser::new(&emu, None);
        let (action, auth) = until_callback(&b, &site, ret).await;
        let (status, loc, body) = post_callback(&b, &action, &auth).await;
        assert_eq!(status, 303, "{ret}: {body}");
        assert_eq!(loc, expected, "return={ret}");
    }
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused_login_csrf() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let site = start_site(&emu, Arc::new(ManualClock::starting_now()), |c| c).await;
    // The attacker logs in with their own account and stops at the callback form.
    let attacker = Browser::new(&emu, None);
    let (action, auth) = until_callback(&attacker, &site, "%2F").await;
    // 1. The victim's browser, which never started a login, is made to post it.
    let victim = Browser::new(&emu, None);
    let (status, _, body) = post_callback(&victim, &action, &auth).await;
    assert_eq!(status, 403, "{body}");
    assert_citizen_page(&body);
    assert_eq!(protected(&victim, &site).await.0, 303, "no session");
    // 2. The victim did start a login (has a state cookie), but the callback carries the
    //    attacker's state.
    let _ = until_callback(&victim, &site, "%2F").await;
    let (status, _, body) = post_callback(&victim, &action, &auth).await;
    assert_eq!(status, 403, "{body}");
    // 3. Without any state in the URL.
    let bare = action.split('?').next().unwrap().to_owned();
    let (status, _, _) = post_callback(&attacker, &bare, &auth).await;
    assert_eq!(status, 403);
    // The attacker's own browser completes its login (the state matches) once.
    let attacker2 = Browser::new(&emu, None);
    let (action, auth) = until_callback(&attacker2, &site, "%2F").await;
    let (status, loc, _) = post_callback(&attacker2, &action, &auth).await;
    assert_eq!((status, loc.as_str()), (303, "/"));
    let (status, page) = protected(&attacker2, &site).await;
    assert_eq!((status, page.as_str()), (200, "cf=RSSMRA85T10A562S"));
    // The state is single use: the cookie was removed, the same post again is refused.
    let (status, _, _) = post_callback(&attacker2, &action, &auth).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn errors_are_a_generic_italian_page_without_the_codice_fiscale() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let site = start_site(&emu, Arc::new(ManualClock::starting_now()), |c| c).await;
    let b = Browser::new(&emu, None);
    let (action, auth) = until_callback(&b, &site, "%2F").await;
    // Another citizen's codice fiscale with the real session ids: identity mismatch.
    let xml = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &auth).unwrap(),
    )
    .unwrap();
    let mut doc = DsAuth::parse_xml("t", &xml).unwrap();
    doc.set("user", OTHER_USER);
    let (status, _, body) = post_callback(&b, &action, &doc.to_base64()).await;
    assert_eq!(status, 403, "{body}");
    assert_citizen_page(&body);
    // Garbage in place of the callback.
    let b3 = Browser::new(&emu, None);
    let (action3, _) = until_callback(&b3, &site, "%2F").await;
    let (status, _, body) = post_callback(&b3, &action3, "bm90IHhtbA==").await;
    assert_eq!(status, 400, "{body}");
    assert_citizen_page(&body);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_after_their_lifetime() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let clock = Arc::new(ManualClock::starting_now());
    let site = start_site(&emu, clock.clone(), |c| {
        c.session_ttl(Duration::from_secs(60), Duration::from_secs(300))
    })
    .await;
    let login = || async {
        let b = Browser::new(&emu, None);
        let (action, auth) = until_callback(&b, &site, "%2Farea-riservata").await;
        let (status, loc, _) = post_callback(&b, &action, &auth).await;
        assert_eq!((status, loc.as_str()), (303, "/area-riservata"));
        b
    };
    // Idle: used within 60 s it lives on; 60 s untouched and it is gone.
    let b = login().await;
    for _ in 0..3 {
        clock.advance(time::Duration::seconds(50));
        assert_eq!(protected(&b, &site).await.0, 200);
    }
    clock.advance(time::Duration::seconds(61));
    let (status, loc) = protected(&b, &site).await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/cohesion/login?return="), "{loc}");
    // Absolute: however active, 300 s after the login it ends.
    let b = login().await;
    for _ in 0..5 {
        clock.advance(time::Duration::seconds(55));
        assert_eq!(protected(&b, &site).await.0, 200);
    }
    clock.advance(time::Duration::seconds(30));
    assert_eq!(protected(&b, &site).await.0, 303);
}

#[tokio::test]
async fn a_full_session_store_evicts_the_oldest_instead_of_refusing() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let clock = Arc::new(ManualClock::starting_now());
    let site = start_site(&emu, clock.clone(), |c| c.max_sessions(2)).await;
    let mut browsers = Vec::new();
    for _ in 0..3 {
        let b = Browser::new(&emu, None);
        let (action, auth) = until_callback(&b, &site, "%2F").await;
        let (status, _, body) = post_callback(&b, &action, &auth).await;
        assert_eq!(status, 303, "never 503: {body}");
        browsers.push(b);
        clock.advance(time::Duration::seconds(1));
    }
    assert_eq!(site.cohesion.session_count(), 2);
    assert_eq!(
        protected(&browsers[0], &site).await.0,
        303,
        "oldest evicted"
    );
    assert_eq!(protected(&browsers[1], &site).await.0, 200);
    assert_eq!(protected(&browsers[2], &site).await.0, 200);
}

#[test]
fn cookie_names_are_the_documented_ones() {
    assert_eq!(SESSION_COOKIE, "tscns_cohesion_session");
    assert!(STATE_COOKIE.starts_with("__Host-"));
}

/// The review's flood: a script that sets the state cookie and the state in the URL itself passes
/// the login-CSRF check, and its forged callbacks spent the SP's one global bucket, so every citizen
/// got 503. The buckets are per client now: the flooding address is refused, another address logs
/// in.
#[tokio::test]
async fn a_flood_from_one_address_does_not_lock_out_a_citizen_at_another() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    // No refill during the test: the clock stands still.
    let site = start_site_with(
        &emu,
        Arc::new(ManualClock::starting_now()),
        |b, _| b.callback_rate_limit(4, 1),
        |c| c,
    )
    .await;
    // Plain HTTP: the TLS backend is never used, but reqwest wants one.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let attacker = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for i in 0..20 {
        let mut d = DsAuth::request(
            "COMUNE_WEB",
            &format!("{}/cohesion/callback", site.base),
            &format!("{}/", site.base),
            "AuthRestriction=0",
        );
        d.set("user", PW_USER);
        d.set("esito_auth_sso", "OK");
        d.set("id_sessione_sso", &format!("{i:064X}"));
        d.set("id_sessione_aspnet_sso", &format!("forged{i}"));
        let r = attacker
            .post(format!("{}/cohesion/callback?state=chosen", site.base))
            .header("cookie", format!("{STATE_COOKIE}=chosen"))
            .form(&[("auth", d.to_base64())])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        &statuses[..4],
        &[403; 4],
        "the burst reaches Cohesion, which refuses"
    );
    assert!(statuses[4..].iter().all(|s| *s == 503), "{statuses:?}");
    // A citizen at another address logs in.
    let b = Browser::new(&emu, None);
    let (action, auth) = until_callback(&b, &site, "%2Farea-riservata").await;
    let (status, loc, body) = post_callback(&b, &action, &auth).await;
    assert_eq!((status, loc.as_str()), (303, "/area-riservata"), "{body}");
    assert_eq!(protected(&b, &site).await.0, 200);
}

fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// A site whose `url_validate` is https names its session cookie `__Host-…` (Secure, Path=/, no
/// Domain), and reads no other: a sibling subdomain can set a plain `tscns_cohesion_session` for the
/// parent domain (cookie tossing) and so log the victim into the attacker's session, but it cannot
/// set a `__Host-` cookie. A plain-http loopback site keeps the plain name.
#[tokio::test]
async fn the_session_cookie_of_an_https_site_is_host_prefixed() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    // Served over plain HTTP on loopback by the test, configured as the https site it would be
    // behind a TLS terminator.
    let site = start_site_with(
        &emu,
        Arc::new(ManualClock::starting_now()),
        |b, port| b.url_validate(format!("https://127.0.0.1:{port}/cohesion/callback")),
        |c| c,
    )
    .await;
    assert_eq!(site.cohesion.session_cookie_name(), HOST_SESSION_COOKIE);
    let b = Browser::new(&emu, None);
    let (action, auth) = until_callback(&b, &site, "%2F").await;
    let action = action.replacen("https://", "http://", 1);
    let r = b
        .client
        .post(&action)
        .form(&[("auth", auth.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = set_cookie(r.headers(), HOST_SESSION_COOKIE).expect("a __Host- session cookie");
    for attr in ["Secure", "HttpOnly", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert!(set_cookie(r.headers(), SESSION_COOKIE).is_none());
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let get = |cookie: String| {
        let url = format!("{}/area-riservata", site.base);
        async move {
            reqwest::Client::builder()
                .tls_backend_preconfigured(
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
                )
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(format!("{HOST_SESSION_COOKIE}={id}")).await, 200);
    // The same session under the unprefixed name (as a sibling subdomain could plant it) is no
    // session at all.
    assert_eq!(get(format!("{SESSION_COOKIE}={id}")).await, 303);

    // The plain-http loopback site keeps the plain name.
    let plain = start_site(&emu, Arc::new(ManualClock::starting_now()), |c| c).await;
    assert_eq!(plain.cohesion.session_cookie_name(), SESSION_COOKIE);
    let b = Browser::new(&emu, None);
    let (action, auth) = until_callback(&b, &plain, "%2F").await;
    let r = b
        .client
        .post(&action)
        .form(&[("auth", auth.as_str())])
        .send()
        .await
        .unwrap();
    assert!(set_cookie(r.headers(), SESSION_COOKIE).is_some());
}

/// What axum's extractors refuse (a query string that does not parse, a body over the limit) is
/// the Italian error page too. Before, axum answered its own English plain text
/// ("Failed to deserialize query string: duplicate field `state`").
#[tokio::test]
async fn refused_queries_and_oversized_bodies_get_the_italian_page() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let site = start_site(&emu, Arc::new(ManualClock::starting_now()), |c| c).await;
    let b = Browser::new(&emu, None);
    let page = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ct, r.text().await.unwrap())
    };
    let check = |what: &str, (status, ct, body): (u16, String, String), want: u16| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(ct.starts_with("text/html"), "{what}: {ct}");
        assert!(body.contains("<html lang=\"it\">"), "{what}: {body}");
        assert!(body.contains("Accesso non riuscito"), "{what}: {body}");
        assert!(
            !body.contains("deserialize") && !body.contains("Failed"),
            "{what}: {body}"
        );
    };
    let r = b
        .client
        .get(format!(
            "{}/cohesion/login?return=%2Fa&return=%2Fb",
            site.base
        ))
        .send()
        .await
        .unwrap();
    check("login ?return twice", page(r).await, 400);
    let r = b
        .client
        .post(format!("{}/cohesion/callback?state=a&state=b", site.base))
        .form(&[("auth", "QQ==")])
        .send()
        .await
        .unwrap();
    check("callback ?state twice", page(r).await, 400);
    let r = b
        .client
        .post(format!("{}/cohesion/callback?state=a", site.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "auth={}",
            "A".repeat(tscns_cohesion::web::MAX_CALLBACK_BODY + 1)
        ))
        .send()
        .await
        .unwrap();
    check("callback body over the limit", page(r).await, 413);
}
