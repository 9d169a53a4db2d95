//! Parse a CNS authentication certificate and extract the holder's identity (codice fiscale,
//! card id, names), with `tscns-cert` (over `x509-cert`) and, for comparison, with `x509-parser`
//! doing the same parse and CN extraction (without validating the codice fiscale or card id).
//!
//! `cargo bench --bench cert` (add `-- --quick` for a fast look).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tscns::cert::CnsCertificate;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The conforming example certificate of tscns-cert (RSA 2048, CNS subject), copied into `benches/data`.
const DER: &[u8] = include_bytes!("data/cns-valid.der");

fn tscns_identity(der: &[u8]) -> (String, String, Option<String>, Option<String>) {
    let cert = CnsCertificate::from_der(der).unwrap();
    let identity = cert.identity().unwrap();
    (
        identity.codice_fiscale.as_str().to_owned(),
        identity.card_id.as_str().to_owned(),
        cert.surname(),
        cert.given_name(),
    )
}

fn x509_parser_identity(der: &[u8]) -> (String, String, Option<String>, Option<String>) {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap();
    let (cf, rest) = cn.split_once('/').unwrap();
    let (id, _) = rest.split_once('.').unwrap();
    let attr = |oid: &str| {
        subject
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == oid)
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
    };
    (
        cf.to_owned(),
        id.to_owned(),
        attr("2.5.4.4"),
        attr("2.5.4.42"),
    )
}

fn identity(c: &mut Criterion) {
    assert_eq!(tscns_identity(DER), x509_parser_identity(DER));
    let mut g = c.benchmark_group("cert_identity");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tscns_cert", |b| b.iter(|| tscns_identity(black_box(DER))));
    g.bench_function("x509_parser", |b| {
        b.iter(|| x509_parser_identity(black_box(DER)))
    });
    g.finish();
}

criterion_group!(benches, identity);
criterion_main!(benches);
