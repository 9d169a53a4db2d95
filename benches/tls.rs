//! TLS client authentication with the in-process simulated card.
//!
//! - Card signatures per 10 requests to one host, each request on a new TLS connection (printed;
//!   must be 1: the first handshake signs, the other nine resume the session).
//! - Full handshake time (TLS 1.3 with a host-built PSS block signed by the simulated card, and
//!   TLS 1.2 with PKCS#1 v1.5), and the time of a resumed request.
//!
//! `cargo bench --bench tls` (add `-- --quick` for a fast look).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_sim::{Profile, SimCard, SimHandle, TestPki};
use tscns_tls::server::{ClientAuthServer, ServerOptions};
use tscns_tls::{AuthClient, AuthClientBuilder, TlsVersions};

struct Bed {
    handle: SimHandle,
    pki: TestPki,
    key: Arc<CardKey<SimCard>>,
    server: ClientAuthServer,
}

fn bed() -> Bed {
    let profile = Profile::builtin("default").unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    let pki = sim.pki().clone();
    let mut card = CnsCard::open(sim).unwrap();
    card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    let sc = pki.issue_server_certificate(&["localhost"]).unwrap();
    let server = ClientAuthServer::start(ServerOptions::new(
        sc.cert_pem.into_bytes(),
        sc.key_pem.into_bytes(),
        pki.ca_cert_pem().as_bytes().to_vec(),
    ))
    .unwrap();
    Bed {
        handle,
        pki,
        key: Arc::new(CardKey::new(card).unwrap()),
        server,
    }
}

fn client(b: &Bed, versions: TlsVersions) -> AuthClient {
    AuthClientBuilder::new(b.key.clone())
        .add_ca_pem(b.pki.ca_cert_pem().as_bytes(), "simulator CA")
        .unwrap()
        .allow_host("localhost")
        .unwrap()
        .tls_versions(versions)
        .reuse_connections(false)
        .build()
        .unwrap()
}

fn tls(c: &mut Criterion) {
    let b = bed();
    let url = format!("https://localhost:{}/", b.server.addr().port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let get = |client: &AuthClient| {
        rt.block_on(async {
            let r = client.get(&url).await.unwrap();
            assert!(r.status().is_success());
        })
    };

    for (versions, name) in [
        (TlsVersions::Tls13, "TLS 1.3"),
        (TlsVersions::Tls12, "TLS 1.2"),
    ] {
        let before = b.handle.counters().signatures;
        let cl = client(&b, versions);
        for _ in 0..10 {
            get(&cl);
        }
        let sigs = b.handle.counters().signatures - before;
        println!(
            "{name}: card signatures per 10 requests to one host (new connection each): {sigs}"
        );
        assert_eq!(sigs, 1);
    }

    let mut g = c.benchmark_group("tls_client_auth_sim");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("full_handshake_tls13_pss", |bch| {
        bch.iter(|| get(&client(&b, TlsVersions::Tls13)))
    });
    g.bench_function("full_handshake_tls12_pkcs1", |bch| {
        bch.iter(|| get(&client(&b, TlsVersions::Tls12)))
    });
    let resumed = client(&b, TlsVersions::Tls13);
    get(&resumed);
    g.bench_function("resumed_request_tls13", |bch| bch.iter(|| get(&resumed)));
    g.finish();
}

criterion_group!(benches, tls);
criterion_main!(benches);
