//! The service provider against the emulator, in classic and SAML mode: login, profile, level
//! check, replay, tampered callback, expired token, signature tampering, LogoutSito, SSO.
#![cfg(feature = "emulator")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::*;
use tscns_cohesion::{
    AuthRestriction as AR, AuthenticationType, DsAuth, Error, ManualClock, Mode, ServiceProvider,
    UntrustedCallback,
};

const PW_USER: &str = "RSSMRA85T10A562S";
const PIN_USER: &str = "VRDGPP80A01H501U";
const SAML: Mode = Mode::Saml {
    direct_to_cohesion_idp: true,
};

/// Browser login with a password (PW) or password+PIN (PIN); returns the callback `auth`.
async fn login(b: &Browser, sp: &ServiceProvider, pin: bool) -> String {
    let (status, url, page) = b.get(sp.login_url().unwrap().as_str()).await;
    assert_eq!(status, 200, "{page}");
    let (status, cb) = if pin {
        password_login(
            b,
            &url,
            &page,
            "login-pin",
            PIN_USER,
            "password",
            Some("12345678"),
        )
        .await
    } else {
        password_login(b, &url, &page, "login-password", PW_USER, "password", None).await
    };
    assert_eq!(status, 200, "{cb}");
    let (action, auth) = callback_auth(&cb).expect("auto-post callback form");
    assert_eq!(action, sp.config().url_validate().as_str());
    auth
}

#[tokio::test]
async fn classic_password_login_profile_and_logout() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let sp = ServiceProvider::new(
        sp_builder(
            &emu,
            "SITO_A",
            Mode::Classic,
            &[AR::Password, AR::PasswordPin],
        )
        .build()
        .unwrap(),
    )
    .unwrap();
    assert!(sp.login_url().unwrap().path().ends_with("/sso/Check.aspx"));
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, false).await;
    let cb = sp.parse_callback(&auth).unwrap();
    assert_eq!(cb.claimed_user(), PW_USER);
    let user = sp.redeem(cb.clone()).await.unwrap();
    assert_eq!(user.profile.codice_fiscale().unwrap().as_str(), PW_USER);
    assert_eq!(
        user.profile.authentication(),
        Some(&AuthenticationType::Password)
    );
    assert_eq!(user.profile.first_name(), Some("MARIO"));
    assert!(user.profile.timestamp().is_some());

    // Replay of the same callback is refused (once Cohesion confirmed it: forged callbacks never
    // reach the replay store).
    assert!(matches!(sp.redeem(cb.clone()).await, Err(Error::Replay)));

    // LogoutSito ends the session: Cohesion no longer gives its profile.
    sp.logout_sito(&user.session).await.unwrap();
    let other = ServiceProvider::new(
        sp_builder(&emu, "SITO_A", Mode::Classic, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        other.redeem(cb).await,
        Err(Error::CredentialRefused(_))
    ));
}

#[tokio::test]
async fn saml_pin_login_signed_profile() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let sp = ServiceProvider::new(
        sp_builder(&emu, "SITO_S", SAML, &[AR::PasswordPin, AR::SmartCard])
            .logout_url("https://SITO_S.example/bye")
            .build()
            .unwrap(),
    )
    .unwrap();
    let url = sp.login_url().unwrap();
    assert!(url.path().ends_with("/SPManager/WAYF.aspx"));
    assert!(url
        .query()
        .unwrap()
        .contains("entityID=cohesion2.regione.marche.it%3Aidp"));
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, true).await;
    let cb = sp.parse_callback(&auth).unwrap();
    // SAML-mode compound aspnet id: session;entityID;logout URL;token;token;
    assert!(cb.aspnet_session_id().split(';').count() >= 5);
    assert_eq!(cb.extra("url_logout"), Some("https://sito_s.example/bye"));
    let user = sp.redeem(cb).await.unwrap();
    assert_eq!(user.profile.codice_fiscale().unwrap().as_str(), PIN_USER);
    assert_eq!(
        user.profile.get("fiscalNumber"),
        Some("TINIT-VRDGPP80A01H501U")
    );
    assert_eq!(
        user.profile.authentication(),
        Some(&AuthenticationType::PasswordPin)
    );
    assert_eq!(
        user.profile
            .date_of_birth()
            .unwrap_or_else(|| panic!("{:?}", user.profile.fields()))
            .year(),
        1980
    );
    assert!(sp
        .browser_logout_url()
        .unwrap()
        .unwrap()
        .path()
        .ends_with("/SPManager/Logout.aspx"));
    sp.logout_sito(&user.session).await.unwrap();
}

#[tokio::test]
async fn level_check_refuses_weaker_login() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let weak = ServiceProvider::new(
        sp_builder(&emu, "SITO_L", Mode::Classic, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let strict = ServiceProvider::new(
        sp_builder(&emu, "SITO_L", Mode::Classic, &[AR::SmartCard])
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    let auth = login(&b, &weak, false).await;
    // A password callback arriving at a site that asked for a smart card.
    let e = strict
        .redeem(strict.parse_callback(&auth).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InsufficientLevel { .. }), "{e}");
    assert!(e.to_string().contains("smart card"));
}

#[tokio::test]
async fn tampered_callbacks_refused() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let sp = ServiceProvider::new(
        sp_builder(&emu, "SITO_T", SAML, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, false).await;
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&auth)
            .unwrap(),
    )
    .unwrap();
    let mut doc = DsAuth::parse_xml("t", &xml).unwrap();
    // 1. Someone else's codice fiscale with the real session ids: Cohesion's profile disagrees.
    doc.set("user", PIN_USER);
    let forged = doc.to_base64();
    let e = sp
        .redeem(sp.parse_callback(&forged).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::IdentityMismatch { .. }), "{e}");
    // 2. Invented session ids: Cohesion says NO.
    doc.set("user", PW_USER);
    doc.set("id_sessione_sso", "DEADBEEF");
    let e = sp
        .redeem(sp.parse_callback(&doc.to_base64()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CredentialRefused(_)), "{e}");
    // 3. Other site, failed login, garbage, DTD.
    let mut other = DsAuth::parse_xml("t", &xml).unwrap();
    other.set("id_sito", "ALTRO");
    assert!(sp.parse_callback(&other.to_base64()).is_err());
    other.set("id_sito", "SITO_T");
    other.set("esito_auth_sso", "KO");
    assert!(matches!(
        sp.parse_callback(&other.to_base64()),
        Err(Error::LoginNotSuccessful(_))
    ));
    assert!(sp.parse_callback("%%%").is_err());
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>\
<dsAuth xmlns=\"http://tempuri.org/Auth.xsd\"><auth><user>&b;</user></auth></dsAuth>";
    let b64 = base64::engine::general_purpose::STANDARD.encode(bomb);
    assert!(matches!(
        UntrustedCallback::parse(&b64),
        Err(Error::DtdRejected { .. })
    ));
}

#[tokio::test]
async fn expired_tokens_refused() {
    let cns = test_cns(PW_USER, true);
    let emu_clock = Arc::new(ManualClock::starting_now());
    let sp_clock = Arc::new(ManualClock::starting_now());
    let emu = emulator(&cns, emu_clock.clone()).await;
    let sp = ServiceProvider::new(
        sp_builder(&emu, "SITO_E", Mode::Classic, &[AR::Password])
            .clock(sp_clock.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    // Cohesion itself refuses a token older than 60 minutes.
    let auth = login(&b, &sp, false).await;
    emu_clock.advance(time::Duration::minutes(61));
    let e = sp
        .redeem(sp.parse_callback(&auth).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CredentialRefused(_)), "{e}");
    // The SP refuses a profile whose timestamp is older than 60 minutes by its own clock.
    emu_clock.advance(time::Duration::minutes(-61));
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, false).await;
    sp_clock.advance(time::Duration::minutes(61));
    let e = sp
        .redeem(sp.parse_callback(&auth).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Expired { .. }), "{e}");
}

#[tokio::test]
async fn saml_signature_tampering_refused() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let sp = ServiceProvider::new(
        sp_builder(&emu, "SITO_X", SAML, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, false).await;
    let cb = sp.parse_callback(&auth).unwrap();
    // Fetch the signed answer ourselves, then tamper with it.
    let body = b
        .client
        .post(sp.web_check_session_url().unwrap())
        .form(&[
            ("Operation", "GetCredential"),
            ("IdSessioneSSO", cb.sso_session_id()),
            ("IdSessioneASPNET", cb.aspnet_session_id()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("<Signature"));
    let tampered = body.replace(">PW<", ">CF<");
    let e = sp
        .redeem_with_response(cb.clone(), tampered.as_bytes())
        .unwrap_err();
    assert!(matches!(e, Error::Signature(_)), "{e}");
    // Unsigned profile in SAML mode.
    let start = body.find("<profile").unwrap();
    let end = body.find("</profile>").unwrap() + "</profile>".len();
    let fresh = |sp: &ServiceProvider| {
        let mut d = DsAuth::parse_xml(
            "t",
            &String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(&auth)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        d.set("id_sessione_sso", &format!("{}0", cb.sso_session_id()));
        sp.parse_callback(&d.to_base64()).unwrap()
    };
    let e = sp
        .redeem_with_response(fresh(&sp), &body.as_bytes()[start..end])
        .unwrap_err();
    assert!(matches!(e, Error::Signature(_)), "{e}");
    // An SP configured with another certificate refuses the genuine answer.
    let other_cert = tscns_cohesion::emulator::Emulator::start(
        tscns_cohesion::emulator::EmulatorConfig::loopback(vec![cns.ca_der.clone()]),
    )
    .await
    .unwrap();
    let wrong = ServiceProvider::new(
        sp_builder(&emu, "SITO_X", SAML, &[AR::Password])
            .cohesion_certificate(other_cert.signing_certificate_pem().as_bytes())
            .build()
            .unwrap(),
    )
    .unwrap();
    // (both certificates configured: rollover — still verifies)
    assert!(wrong
        .redeem_with_response(fresh(&wrong), body.as_bytes())
        .is_ok());
    let only_wrong = ServiceProvider::new(
        common::sp_builder(&emu, "SITO_X", Mode::Classic, &[AR::Password])
            .mode(SAML)
            .cohesion_certificate(other_cert.signing_certificate_pem().as_bytes())
            .build()
            .unwrap(),
    );
    // sp_builder added the emulator's certificate for SAML only when mode was SAML at the start.
    let only_wrong = only_wrong.unwrap();
    let e = only_wrong
        .redeem_with_response(fresh(&only_wrong), body.as_bytes())
        .unwrap_err();
    assert!(matches!(e, Error::Signature(_)), "{e}");
}

#[tokio::test]
async fn smart_card_login_and_sso_across_sites() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let a = ServiceProvider::new(
        sp_builder(&emu, "SITO_1", SAML, &[AR::SmartCard])
            .build()
            .unwrap(),
    )
    .unwrap();
    let b_site = ServiceProvider::new(
        sp_builder(
            &emu,
            "SITO_2",
            Mode::Classic,
            &[AR::PasswordPin, AR::SmartCard],
        )
        .build()
        .unwrap(),
    )
    .unwrap();
    let browser = Browser::new(&emu, Some(&cns));
    let (_, _, page) = browser.get(a.login_url().unwrap().as_str()).await;
    assert!(
        !page.contains("login-password"),
        "only the smart card is offered: {page}"
    );
    let link = {
        let doc = scraper::Html::parse_document(&page);
        let sel = scraper::Selector::parse("a#login-smartcard").unwrap();
        doc.select(&sel)
            .next()
            .unwrap()
            .value()
            .attr("href")
            .unwrap()
            .to_owned()
    };
    assert!(link.contains(&emu.cns_addr().port().to_string()));
    let (status, _, cb_page) = browser.get(&link).await;
    assert_eq!(status, 200, "{cb_page}");
    let (_, auth) = callback_auth(&cb_page).unwrap();
    let user = a.redeem(a.parse_callback(&auth).unwrap()).await.unwrap();
    assert_eq!(user.profile.login(), PW_USER);
    assert_eq!(
        user.profile.authentication(),
        Some(&AuthenticationType::SmartCard)
    );

    // Second site, same browser: Check.aspx logs in silently (SSO), no login page.
    let (status, _, page2) = browser.get(b_site.login_url().unwrap().as_str()).await;
    assert_eq!(status, 200);
    let (_, auth2) = callback_auth(&page2).expect("SSO answers with the callback directly");
    let user2 = b_site
        .redeem(b_site.parse_callback(&auth2).unwrap())
        .await
        .unwrap();
    assert_eq!(
        user2.profile.authentication(),
        Some(&AuthenticationType::SmartCard)
    );
    assert_ne!(user.session.sso_session_id, user2.session.sso_session_id);

    // A certificate without the CNS policy is refused by the smart-card page.
    let no_policy = test_cns(PW_USER, false);
    let emu2 = emulator(&no_policy, Arc::new(tscns_cohesion::SystemClock)).await;
    let c = ServiceProvider::new(
        sp_builder(&emu2, "SITO_3", Mode::Classic, &[AR::SmartCard])
            .build()
            .unwrap(),
    )
    .unwrap();
    let br = Browser::new(&emu2, Some(&no_policy));
    let (_, _, page) = br.get(c.login_url().unwrap().as_str()).await;
    let link = page
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let (status, _, body) = br.get(&link).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("policy"));
}

#[tokio::test]
async fn emulator_refuses_unknown_site_malformed_auth_and_foreign_callers() {
    let cns = test_cns(PW_USER, true);
    let mut cfg = tscns_cohesion::emulator::EmulatorConfig::loopback(vec![cns.ca_der.clone()]);
    cfg.sites = ["KNOWN".to_string()].into();
    cfg.whitelist = vec!["192.0.2.1".parse().unwrap()];
    let emu = tscns_cohesion::emulator::Emulator::start(cfg)
        .await
        .unwrap();
    let known = ServiceProvider::new(
        sp_builder(&emu, "KNOWN", Mode::Classic, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let unknown = ServiceProvider::new(
        sp_builder(&emu, "UNKNOWN", Mode::Classic, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    let (status, _, body) = b.get(unknown.login_url().unwrap().as_str()).await;
    assert_eq!(status, 403, "{body}");
    let mut bad = emu.base_url().unwrap();
    bad.set_path("/sso/Check.aspx");
    bad.set_query(Some("auth=bm90LXhtbA%3D%3D"));
    let (status, _, _) = b.get(bad.as_str()).await;
    assert_eq!(status, 400);
    // The whitelist does not contain 127.0.0.1: GetCredential answers NO.
    let auth = login(&b, &known, false).await;
    let e = known
        .redeem(known.parse_callback(&auth).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CredentialRefused(_)), "{e}");
}

#[tokio::test]
async fn logout_sito_at_the_wrong_endpoint_is_refused() {
    // The PHP library's bug: LogoutSito sent to the classic endpoint for a SAML session.
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let saml = ServiceProvider::new(
        sp_builder(&emu, "SITO_P", SAML, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let classic = ServiceProvider::new(
        sp_builder(&emu, "SITO_P", Mode::Classic, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    let auth = login(&b, &saml, false).await;
    let user = saml
        .redeem(saml.parse_callback(&auth).unwrap())
        .await
        .unwrap();
    assert!(classic.logout_sito(&user.session).await.is_err());
    saml.logout_sito(&user.session).await.unwrap();
}

/// The flood of the review: forged callbacks with the public `id_sito` and fresh ids. Before the
/// fix each one was claimed before GetCredential, so they filled the replay store and every real
/// login then failed as a "replay". Now they never reach the store, at most the rate limit's burst
/// of them reach Cohesion, and a real login still succeeds.
#[tokio::test]
async fn forged_callback_flood_neither_fills_the_store_nor_locks_citizens_out() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let sp_clock = Arc::new(ManualClock::starting_now());
    let store = Arc::new(tscns_cohesion::MemoryReplayStore::with_capacity(16));
    let sp = ServiceProvider::new(
        sp_builder(&emu, "SITO_F", Mode::Classic, &[AR::Password])
            .clock(sp_clock.clone())
            .replay_store(store.clone())
            .callback_rate_limit(8, 2)
            .build()
            .unwrap(),
    )
    .unwrap();
    let forged = |i: usize| {
        let mut d = DsAuth::request(
            "SITO_F",
            "https://SITO_F.example/cohesion/callback",
            "https://SITO_F.example/",
            "AuthRestriction=0",
        );
        d.set("user", PW_USER);
        d.set("esito_auth_sso", "OK");
        d.set("id_sessione_sso", &format!("{i:0192X}"));
        d.set("id_sessione_aspnet_sso", &format!("forged{i}"));
        d.to_base64()
    };
    let (mut refused_by_cohesion, mut rate_limited) = (0, 0);
    for i in 0..100 {
        let cb = sp.parse_callback(&forged(i)).unwrap();
        match sp.redeem(cb).await {
            Err(Error::CredentialRefused(_)) => refused_by_cohesion += 1,
            Err(Error::RateLimited) => rate_limited += 1,
            other => panic!("forged callback {i}: {other:?}"),
        }
    }
    assert_eq!(refused_by_cohesion, 8, "only the burst reaches Cohesion");
    assert_eq!(rate_limited, 92);
    assert!(store.is_empty(), "forged callbacks never occupy the store");
    // The review's 1024-character ids are not Cohesion's: refused before anything else.
    let mut d = DsAuth::parse_xml(
        "t",
        &String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(forged(0))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    d.set("id_sessione_sso", &"A".repeat(1024));
    assert!(matches!(
        sp.parse_callback(&d.to_base64()),
        Err(Error::Malformed { .. })
    ));

    // Seconds later a real citizen logs in, once.
    sp_clock.advance(time::Duration::seconds(5));
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, false).await;
    let cb = sp.parse_callback(&auth).unwrap();
    let user = sp.redeem(cb.clone()).await.unwrap();
    assert_eq!(user.profile.codice_fiscale().unwrap().as_str(), PW_USER);
    assert_eq!(store.len(), 1);
    assert!(matches!(sp.redeem(cb).await, Err(Error::Replay)));
    // Verified logins give their token back: many in a row are never rate-limited.
    for _ in 0..10 {
        let b = Browser::new(&emu, None);
        let auth = login(&b, &sp, false).await;
        sp.redeem(sp.parse_callback(&auth).unwrap()).await.unwrap();
    }
}

/// In SAML mode the compound `id_sessione_aspnet_sso` names the site's logout URL: it must be the
/// one this SP configured.
#[tokio::test]
async fn saml_compound_logout_url_is_checked_against_the_configuration() {
    let cns = test_cns(PW_USER, true);
    let emu = emulator(&cns, Arc::new(tscns_cohesion::SystemClock)).await;
    let logout = "https://SITO_L.example/esci";
    let sp = ServiceProvider::new(
        sp_builder(&emu, "SITO_L", SAML, &[AR::Password])
            .logout_url(logout)
            .build()
            .unwrap(),
    )
    .unwrap();
    let b = Browser::new(&emu, None);
    let auth = login(&b, &sp, false).await;
    let cb = sp.parse_callback(&auth).unwrap();
    assert_eq!(
        cb.compound_logout_url()
            .map(|u| tscns_cohesion::Url::parse(u).unwrap()),
        Some(tscns_cohesion::Url::parse(logout).unwrap())
    );
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&auth)
            .unwrap(),
    )
    .unwrap();
    // Another site's logout URL in the compound: refused without asking Cohesion.
    let mut doc = DsAuth::parse_xml("t", &xml).unwrap();
    let compound = doc.get("id_sessione_aspnet_sso").to_owned();
    let parts: Vec<&str> = compound.split(';').collect();
    let mut other = parts.clone();
    other[2] = "https://evil.example/logout";
    doc.set("id_sessione_aspnet_sso", &other.join(";"));
    let e = sp.parse_callback(&doc.to_base64()).unwrap_err();
    assert!(
        matches!(&e, Error::Malformed { reason, .. } if reason.contains("logout URL")),
        "{e}"
    );
    let forged = UntrustedCallback::parse(&doc.to_base64()).unwrap();
    assert!(matches!(
        sp.redeem(forged).await,
        Err(Error::Malformed { .. })
    ));
    // A site that configured no logout URL refuses a compound that names one.
    let bare = ServiceProvider::new(
        sp_builder(&emu, "SITO_L", SAML, &[AR::Password])
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(bare.parse_callback(&auth).is_err());
    // The genuine one is redeemed.
    let user = sp.redeem(cb).await.unwrap();
    assert_eq!(user.profile.codice_fiscale().unwrap().as_str(), PW_USER);
}
