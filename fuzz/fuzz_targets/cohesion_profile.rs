//! The GetCredential answer handling: classic profile parsing, and in SAML mode the enveloping
//! XML-DSig verification (C14N, digest, RSA) before the profile is read, then the checks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tscns_cohesion::{
    AuthRestriction, Checks, Environment, Mode, ServiceProvider, SpConfig, UntrustedCallback, Url,
};

struct Fixture {
    classic: ServiceProvider,
    saml: ServiceProvider,
    callback: UntrustedCallback,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let build = |mode| {
            let mut b = SpConfig::builder()
                .environment(Environment::Custom(
                    Url::parse("https://127.0.0.1:1/").unwrap(),
                ))
                .site_id("FUZZ")
                .mode(mode)
                .allow(AuthRestriction::Password)
                .url_validate("https://fuzz.example/cb")
                .checks({
                    let mut checks = Checks::default();
                    checks.replay = false;
                    checks
                })
                .trust_ca(include_bytes!(
                    "../../crates/tscns-cohesion/tests/fixtures/xmlsec1-signer.pem"
                ))
                .native_roots(false);
            if matches!(mode, Mode::Saml { .. }) {
                b = b.cohesion_certificate(include_bytes!(
                    "../../crates/tscns-cohesion/tests/fixtures/xmlsec1-signer.pem"
                ));
            }
            ServiceProvider::new(b.build().unwrap()).unwrap()
        };
        let mut doc = tscns_cohesion::DsAuth::request(
            "FUZZ",
            "https://fuzz.example/cb",
            "https://fuzz.example/",
            "AuthRestriction=0",
        );
        doc.set("user", "RSSMRA85T10A562S");
        doc.set("esito_auth_sso", "OK");
        doc.set("id_sessione_sso", "ABCDEF");
        doc.set("id_sessione_aspnet_sso", "abc");
        Fixture {
            classic: build(Mode::Classic),
            saml: build(Mode::Saml {
                direct_to_cohesion_idp: false,
            }),
            callback: UntrustedCallback::parse(&doc.to_base64()).unwrap(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let sp = if first & 1 == 0 { &f.classic } else { &f.saml };
    let _ = sp.redeem_with_response(f.callback.clone(), body);
});
