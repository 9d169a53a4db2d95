//! CnsCertificate from arbitrary DER or PEM bytes, then every accessor, the conformance check
//! and the report: errors, never panics.
#![no_main]

use tscns_cert::time::OffsetDateTime;
use tscns_cert::{parse_certificates, CertificateReport, CnsCertificate};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_certificates(data);
    if let Ok(cert) = CnsCertificate::from_bytes(data) {
        let _ = cert.cn_parts();
        let _ = cert.codice_fiscale();
        let _ = cert.card_id();
        let _ = cert.key();
        let _ = cert.key_usage_names();
        let _ = cert.not_before();
        let _ = cert.not_after();
        let _ = cert.conformance(OffsetDateTime::UNIX_EPOCH);
        let _ = CertificateReport::new(&cert, OffsetDateTime::UNIX_EPOCH, None);
        // Self as anchor: exercises webpki on the fuzzed bytes too.
        let none: [&[u8]; 0] = [];
        let _ = cert.verify_chain(&[data], &none, OffsetDateTime::UNIX_EPOCH);
    }
});
