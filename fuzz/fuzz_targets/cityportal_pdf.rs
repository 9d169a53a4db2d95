//! PDFs from outside: the PDF/A check, the seal's reading of a document (trailer, catalog, page
//! tree) and `documents::verify` take arbitrary bytes. Each gives an answer or a typed error,
//! never a panic; a sealed result still starts with the input (an incremental update); nothing
//! verifies without a trust anchor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use tscns_cert::sign::{SignError, SignatureScheme, SigningKey};
use tscns_cityportal::documents::{pdfa, seal, verify, SealInfo};

/// A seal key whose certificate is a fixture and whose signature is zeros: the parser is what
/// is fuzzed, not RSA.
#[derive(Debug)]
struct FixtureKey;

static CERT: &[u8] = include_bytes!("../fixtures/seal-cert.der");

impl SigningKey for FixtureKey {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        vec![CERT.to_vec()]
    }
    fn key_bits(&self) -> usize {
        2048
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        SignatureScheme::ALL.to_vec()
    }
    fn sign(&self, _: SignatureScheme, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![0; 256])
    }
}

fuzz_target!(|data: &[u8]| {
    if let Err(problems) = pdfa::check(data) {
        assert!(problems.iter().all(|p| !p.is_empty()));
    }
    assert!(
        verify(data, &[]).is_err(),
        "verified without a trust anchor"
    );
    let info = SealInfo {
        name: "Comune".into(),
        location: "Luogo".into(),
        reason: "Certificato n. X".into(),
        signing_time: OffsetDateTime::UNIX_EPOCH,
    };
    match seal(data, &FixtureKey, &info) {
        Ok(out) => {
            assert!(out.starts_with(data));
            assert!(out.len() > data.len());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
