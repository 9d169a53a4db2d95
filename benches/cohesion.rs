//! The Cohesion service provider's work per login, without the network: parse the callback, verify
//! the SAML-mode profile signature (C14N + SHA-1 digest + RSA-2048 verification), parse the profile,
//! run the relying-party checks (identity, level, age, replay). Classic mode (no signature) too.
//!
//! `cargo bench --bench cohesion` (add `-- --quick` for a fast look). Throughput is logins/second on
//! one core.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tscns_cohesion::{
    AuthRestriction, DsAuth, Environment, Mode, Profile, ProfileSigner, ServiceProvider, SpConfig,
    Url,
};

fn sp(mode: Mode, cert_pem: &str) -> ServiceProvider {
    let mut b = SpConfig::builder()
        .environment(Environment::Custom(
            Url::parse("https://127.0.0.1:1/").unwrap(),
        ))
        .site_id("BENCH")
        .mode(mode)
        .allow(AuthRestriction::SmartCard)
        .url_validate("https://bench.example/cb")
        .trust_ca(cert_pem.as_bytes())
        .native_roots(false);
    if matches!(mode, Mode::Saml { .. }) {
        b = b.cohesion_certificate(cert_pem.as_bytes());
    }
    ServiceProvider::new(b.build().unwrap()).unwrap()
}

fn profile_xml() -> String {
    let fields = [
        ("nome", "MARIO"),
        ("cognome", "ROSSI"),
        ("sesso", "M"),
        ("login", "RSSMRA85T10A562S"),
        ("codice_fiscale", "RSSMRA85T10A562S"),
        ("data_nascita", "10/12/1985"),
        ("email", "mario.rossi@example.invalid"),
        ("tipo_autenticazione", "CF"),
        ("familyName", "ROSSI"),
        ("name", "MARIO"),
        ("dateOfBirth", "1985-12-10"),
        ("fiscalNumber", "TINIT-RSSMRA85T10A562S"),
    ];
    Profile::to_xml(&fields, time::OffsetDateTime::now_utc())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh callback `auth` value (unique session id, so the replay check accepts it).
fn callback() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut d = DsAuth::request(
        "BENCH",
        "https://bench.example/cb",
        "https://bench.example/",
        "AuthRestriction=2",
    );
    d.set("user", "RSSMRA85T10A562S");
    d.set("esito_auth_sso", "OK");
    d.set("id_sessione_sso", &format!("{n:0128X}"));
    d.set("id_sessione_aspnet_sso", "ufrq00x4f0cq2yog2ozv4lxx");
    d.to_base64()
}

fn login(c: &mut Criterion) {
    let signer = ProfileSigner::generate("ClientCohesion").unwrap();
    let xml = profile_xml();
    let signed = signer.sign_profile(&xml).unwrap();
    let saml = sp(
        Mode::Saml {
            direct_to_cohesion_idp: false,
        },
        signer.certificate_pem(),
    );
    let classic = sp(Mode::Classic, signer.certificate_pem());

    let mut g = c.benchmark_group("cohesion_sp_login");
    g.throughput(Throughput::Elements(1));
    g.bench_function("saml_callback_signature_profile_checks", |b| {
        b.iter_batched(
            callback,
            |auth| {
                let cb = saml.parse_callback(black_box(&auth)).unwrap();
                saml.redeem_with_response(cb, black_box(signed.as_bytes()))
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("classic_callback_profile_checks", |b| {
        b.iter_batched(
            callback,
            |auth| {
                let cb = classic.parse_callback(black_box(&auth)).unwrap();
                classic
                    .redeem_with_response(cb, black_box(xml.as_bytes()))
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, login);
criterion_main!(benches);
