//! CnsCertificate, conformance findings and chain verification on certificates issued by a test
//! PKI (rcgen): the conforming profile and one variant per finding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use time::macros::datetime;
use time::OffsetDateTime;
use tscns_cert::{codes, CnsCertificate, Error, Severity};
use x509_cert::der::asn1::ObjectIdentifier;

const AT: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn codes_of(der: &[u8]) -> Vec<&'static str> {
    let cert = CnsCertificate::from_der(der).unwrap();
    let codes: Vec<&'static str> = cert.conformance(AT).iter().map(|f| f.code).collect();
    record(&codes);
    codes
}

/// Codes seen by the tests of this binary, for `every_code_is_produced_by_some_test`.
static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

fn record(codes: &[&'static str]) {
    SEEN.lock().unwrap().extend_from_slice(codes);
}

/// The certificate has exactly this finding.
fn assert_only(der: &[u8], code: &str, severity: Severity) {
    let cert = CnsCertificate::from_der(der).unwrap();
    let findings = cert.conformance(AT);
    record(&findings.iter().map(|f| f.code).collect::<Vec<_>>());
    assert_eq!(findings.len(), 1, "expected only {code}: {findings:#?}");
    assert_eq!(findings[0].code, code);
    assert_eq!(findings[0].severity, severity);
    assert!(!findings[0].message.is_empty());
}

#[test]
fn conforming_certificate_reads_and_has_no_findings() {
    let der = LeafSpec::default().issue();
    let cert = CnsCertificate::from_der(&der).unwrap();
    assert_eq!(cert.codice_fiscale().unwrap().as_str(), CF);
    assert_eq!(cert.card_id().unwrap().as_str(), CARD_ID);
    assert_eq!(cert.cn_parts().unwrap().data_hash, HASH);
    let identity = cert.identity().unwrap();
    assert_eq!(identity.codice_fiscale.as_str(), CF);
    assert_eq!(identity.card_id.as_str(), CARD_ID);
    assert_eq!(cert.surname().as_deref(), Some("ROSSI"));
    assert_eq!(cert.given_name().as_deref(), Some("MARIO"));
    assert_eq!(
        cert.issuing_administration().as_deref(),
        Some("REGIONE TEST")
    );
    assert_eq!(cert.issuer_common_name().as_deref(), Some(CA_CN));
    assert!(cert.issuer().contains("CN=Regione Test - CA Cittadini"));
    assert_eq!(cert.serial_hex(), "4A7F1003");
    assert_eq!(cert.not_before(), Some(datetime!(2024-01-01 0:00 UTC)));
    assert_eq!(cert.not_after(), Some(datetime!(2030-01-01 0:00 UTC)));
    let key = cert.key();
    assert_eq!(key.algorithm, "RSA");
    assert_eq!(key.bits, Some(2048));
    assert_eq!(cert.key_usage_names(), Some(vec!["digitalSignature"]));
    assert_eq!(
        cert.extended_key_usage().unwrap(),
        vec![
            ObjectIdentifier::new_unwrap(CLIENT_AUTH),
            ObjectIdentifier::new_unwrap(EMAIL_PROTECTION)
        ]
    );
    assert_eq!(
        cert.policies().unwrap(),
        vec![ObjectIdentifier::new_unwrap(POLICY_CNS)]
    );
    assert_eq!(cert.conformance(AT), vec![]);
    // The same certificate in PEM.
    let pem = x509_cert::der::pem::encode_string(
        "CERTIFICATE",
        x509_cert::der::pem::LineEnding::LF,
        &der,
    )
    .unwrap();
    let from_pem = CnsCertificate::from_bytes(pem.as_bytes()).unwrap();
    assert_eq!(from_pem.der(), der.as_slice());
    // And back to PEM.
    assert_eq!(cert.to_pem().unwrap(), pem);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem.lines().all(|l| l.len() <= 64));
}

#[test]
fn lombardy_policies_are_cns_and_cie_is_a_warning() {
    for p in ["1.3.159.6.1.3.2.10", "1.3.76.12.1.1.10.2.2.10"] {
        let der = LeafSpec {
            policies: Some(vec![p]),
            ..LeafSpec::default()
        }
        .issue();
        assert_eq!(codes_of(&der), Vec::<&str>::new(), "{p}");
    }
    let cie = LeafSpec {
        policies: Some(vec!["1.3.76.47.4"]),
        ..LeafSpec::default()
    }
    .issue();
    assert_only(&cie, codes::CIE_POLICY_ONLY, Severity::Warning);
}

#[test]
fn every_finding_has_its_variant() {
    let d = LeafSpec::default;
    let cases: Vec<(LeafSpec, &str, Severity)> = vec![
        (
            LeafSpec {
                cn: Some("Mario Rossi".into()),
                ..d()
            },
            codes::CN_NOT_CNS_FORM,
            Severity::Error,
        ),
        (
            LeafSpec { cn: None, ..d() },
            codes::CN_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec {
                cn: Some(format!("RSSMRA85T10A562X/{CARD_ID}.{HASH}")),
                ..d()
            },
            codes::CODICE_FISCALE_INVALID,
            Severity::Error,
        ),
        (
            LeafSpec {
                cn: Some(format!("{CF}/8038000000000001.{HASH}")),
                ..d()
            },
            codes::CARD_ID_LUHN,
            Severity::Error,
        ),
        (
            LeafSpec {
                cn: Some(format!("{CF}/80380000.{HASH}")),
                ..d()
            },
            codes::CARD_ID_INVALID,
            Severity::Error,
        ),
        (
            LeafSpec {
                cn: Some(format!("{CF}/{CARD_ID}.nothash")),
                ..d()
            },
            codes::CN_HASH_MALFORMED,
            Severity::Warning,
        ),
        (
            LeafSpec {
                surname: None,
                ..d()
            },
            codes::SURNAME_MISSING,
            Severity::Warning,
        ),
        (
            LeafSpec {
                surname: Some("BIANCHI".into()),
                ..d()
            },
            codes::NAMES_MISMATCH,
            Severity::Warning,
        ),
        (
            LeafSpec {
                given_name: None,
                ..d()
            },
            codes::GIVEN_NAME_MISSING,
            Severity::Warning,
        ),
        (
            LeafSpec { ou: None, ..d() },
            codes::ISSUING_ADMINISTRATION_MISSING,
            Severity::Warning,
        ),
        (
            LeafSpec {
                country: Some("FR".into()),
                ..d()
            },
            codes::COUNTRY_NOT_IT,
            Severity::Warning,
        ),
        (
            LeafSpec {
                eku: Some(vec![EMAIL_PROTECTION]),
                ..d()
            },
            codes::CLIENT_AUTH_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec { eku: None, ..d() },
            codes::CLIENT_AUTH_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec {
                eku: Some(vec![CLIENT_AUTH, "2.5.29.37.0"]),
                ..d()
            },
            codes::ANY_EXTENDED_KEY_USAGE,
            Severity::Warning,
        ),
        (
            LeafSpec {
                key_usage: Some(KU_KEY_ENCIPHERMENT),
                ..d()
            },
            codes::DIGITAL_SIGNATURE_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec {
                key_usage: Some(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION),
                ..d()
            },
            codes::NON_REPUDIATION_PRESENT,
            Severity::Error,
        ),
        (
            LeafSpec {
                key_usage: Some(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN),
                ..d()
            },
            codes::KEY_USAGE_CA,
            Severity::Error,
        ),
        (
            LeafSpec {
                key_usage: None,
                ..d()
            },
            codes::KEY_USAGE_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec {
                key_usage_critical: false,
                ..d()
            },
            codes::KEY_USAGE_NOT_CRITICAL,
            Severity::Warning,
        ),
        (
            LeafSpec {
                policies: Some(vec!["1.2.3.4"]),
                ..d()
            },
            codes::CNS_POLICY_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec {
                policies: None,
                ..d()
            },
            codes::CNS_POLICY_MISSING,
            Severity::Error,
        ),
        (
            LeafSpec {
                basic_constraints_ca: Some(true),
                ..d()
            },
            codes::BASIC_CONSTRAINTS_CA,
            Severity::Error,
        ),
        (
            LeafSpec {
                not_before: datetime!(2027-01-01 0:00 UTC),
                ..d()
            },
            codes::NOT_YET_VALID,
            Severity::Error,
        ),
        (
            LeafSpec {
                not_before: datetime!(2015-01-01 0:00 UTC),
                not_after: datetime!(2021-01-01 0:00 UTC),
                ..d()
            },
            codes::EXPIRED,
            Severity::Error,
        ),
        (
            LeafSpec {
                rsa_1024: true,
                ..d()
            },
            codes::RSA_KEY_UNDER_2048,
            Severity::Warning,
        ),
        (
            LeafSpec {
                unknown_critical: true,
                ..d()
            },
            codes::EXTENSION_UNKNOWN_CRITICAL,
            Severity::Error,
        ),
    ];
    for (spec, code, severity) in cases {
        let der = spec.issue();
        assert_only(&der, code, severity);
    }
}

#[test]
fn basic_constraints_ca_false_is_fine() {
    let der = LeafSpec {
        basic_constraints_ca: Some(false),
        ..LeafSpec::default()
    }
    .issue();
    assert_eq!(codes_of(&der), Vec::<&str>::new());
}

#[test]
fn inverted_validity_is_reported() {
    let der = LeafSpec {
        not_before: datetime!(2026-07-01 0:00 UTC),
        not_after: datetime!(2026-01-01 0:00 UTC),
        ..LeafSpec::default()
    }
    .issue();
    let codes = codes_of(&der);
    assert!(codes.contains(&codes::VALIDITY_INVERTED), "{codes:?}");
}

#[test]
fn signature_algorithm_findings() {
    let good = LeafSpec::default().issue();
    let sha1 = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    let md5 = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
    let der = mutate(&good, |c| {
        c.signature_algorithm.oid = sha1;
        c.tbs_certificate.signature.oid = sha1;
    });
    assert_only(&der, codes::SIGNATURE_SHA1, Severity::Warning);
    let der = mutate(&good, |c| {
        c.signature_algorithm.oid = md5;
        c.tbs_certificate.signature.oid = md5;
    });
    assert_only(&der, codes::SIGNATURE_WEAK, Severity::Error);
    let unknown = ObjectIdentifier::new_unwrap("1.2.3.4.5");
    let der = mutate(&good, |c| {
        c.signature_algorithm.oid = unknown;
        c.tbs_certificate.signature.oid = unknown;
    });
    assert_only(&der, codes::SIGNATURE_ALGORITHM_UNKNOWN, Severity::Warning);
    let der = mutate(&good, |c| c.signature_algorithm.oid = sha1);
    let codes = codes_of(&der);
    assert!(
        codes.contains(&codes::SIGNATURE_ALGORITHM_MISMATCH),
        "{codes:?}"
    );
}

#[test]
fn structural_findings() {
    let good = LeafSpec::default().issue();
    // Duplicate extension.
    let der = mutate(&good, |c| {
        let exts = c.tbs_certificate.extensions.as_mut().unwrap();
        let first = exts[0].clone();
        exts.push(first);
    });
    assert!(codes_of(&der).contains(&codes::EXTENSION_DUPLICATE));
    // Malformed key usage.
    let der = mutate(&good, |c| {
        let exts = c.tbs_certificate.extensions.as_mut().unwrap();
        for e in exts.iter_mut() {
            if e.extn_id == tscns_cert::oid::EXT_KEY_USAGE {
                e.extn_value = x509_cert::der::asn1::OctetString::new(vec![0x05, 0x00]).unwrap();
            }
        }
    });
    assert_only(&der, codes::EXTENSION_MALFORMED, Severity::Error);
    // X.509 v1: no extensions at all.
    let der = mutate(&good, |c| {
        c.tbs_certificate.version = x509_cert::Version::V1;
        c.tbs_certificate.extensions = None;
    });
    let codes = codes_of(&der);
    assert!(codes.contains(&codes::VERSION_NOT_V3), "{codes:?}");
    assert!(codes.contains(&codes::KEY_USAGE_MISSING), "{codes:?}");
    // An EC key (CNS cards hold RSA keys).
    let ec = {
        let (_, issuer) = ca();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        LeafSpec::default()
            .params()
            .signed_by(&key, &issuer)
            .unwrap()
            .der()
            .to_vec()
    };
    assert_only(&ec, codes::KEY_NOT_RSA, Severity::Warning);
    let cert = CnsCertificate::from_der(&ec).unwrap();
    assert_eq!(cert.key().curve.as_deref(), Some("P-256"));
    assert_eq!(cert.key().bits, Some(256));
    // Serial number zero (RFC 5280 wants a positive integer).
    let der = mutate(&good, |c| {
        c.tbs_certificate.serial_number =
            x509_cert::serial_number::SerialNumber::new(&[0x00]).unwrap();
    });
    assert_only(&der, codes::SERIAL_INVALID, Severity::Warning);
    // Self-issued.
    let der = self_issued();
    assert_only(&der, codes::SELF_ISSUED, Severity::Error);
}

#[test]
fn rsa_1024_key_size_is_read() {
    let der = LeafSpec {
        rsa_1024: true,
        ..LeafSpec::default()
    }
    .issue();
    let cert = CnsCertificate::from_der(&der).unwrap();
    assert_eq!(cert.key().bits, Some(1024));
}

#[test]
fn not_a_certificate() {
    for bad in [
        &b""[..],
        b"hello",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        &[0x30, 0x03, 0x02, 0x01, 0x01],
    ] {
        let e = CnsCertificate::from_bytes(bad).unwrap_err();
        assert!(matches!(e, Error::NotACertificate(_)), "{e:?}");
    }
    // Trailing garbage after a DER certificate.
    let mut der = LeafSpec::default().issue();
    der.push(0);
    assert!(CnsCertificate::from_der(&der).is_err());
}

#[test]
fn chain_verifies_against_the_right_anchor_only() {
    let (ca_der, _) = ca();
    let leaf = LeafSpec::default().issue();
    let cert = CnsCertificate::from_der(&leaf).unwrap();
    let none: [&[u8]; 0] = [];
    cert.verify_chain(&[&ca_der], &none, AT).unwrap();

    let (other_der, _) = other_ca();
    let e = cert.verify_chain(&[&other_der], &none, AT).unwrap_err();
    assert!(
        e.to_string().contains("signature") || e.to_string().contains("unknown issuer"),
        "{e}"
    );
    let e = cert.verify_chain(&none, &none, AT).unwrap_err();
    assert!(e.to_string().contains("no trust anchors"), "{e}");
    // Outside validity.
    let e = cert
        .verify_chain(&[&ca_der], &none, datetime!(2031-01-01 0:00 UTC))
        .unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    let e = cert
        .verify_chain(&[&ca_der], &none, datetime!(2023-01-01 0:00 UTC))
        .unwrap_err();
    assert!(e.to_string().contains("not valid yet"), "{e}");
}

#[test]
fn chain_needs_client_auth() {
    let (ca_der, _) = ca();
    let leaf = LeafSpec {
        eku: Some(vec![EMAIL_PROTECTION]),
        ..LeafSpec::default()
    }
    .issue();
    let cert = CnsCertificate::from_der(&leaf).unwrap();
    let none: [&[u8]; 0] = [];
    let e = cert.verify_chain(&[&ca_der], &none, AT).unwrap_err();
    assert!(e.to_string().contains("client authentication"), "{e}");
}

#[test]
fn chain_through_an_intermediate() {
    let (root_der, _) = ca();
    let (int_der, int_issuer) = intermediate();
    let leaf = LeafSpec::default().issue_by(&int_issuer);
    let cert = CnsCertificate::from_der(&leaf).unwrap();
    cert.verify_chain(&[&root_der], &[&int_der], AT).unwrap();
    let none: [&[u8]; 0] = [];
    let e = cert.verify_chain(&[&root_der], &none, AT).unwrap_err();
    assert!(e.to_string().contains("unknown issuer"), "{e}");
}

#[test]
fn chain_accepts_a_1024_bit_holder_key_and_rejects_a_tampered_certificate() {
    let (ca_der, _) = ca();
    let none: [&[u8]; 0] = [];
    let leaf = LeafSpec {
        rsa_1024: true,
        ..LeafSpec::default()
    }
    .issue();
    CnsCertificate::from_der(&leaf)
        .unwrap()
        .verify_chain(&[&ca_der], &none, AT)
        .unwrap();
    let good = LeafSpec::default().issue();
    let tampered = mutate(&good, |c| {
        c.tbs_certificate.serial_number =
            x509_cert::serial_number::SerialNumber::new(&[0x01]).unwrap();
    });
    let e = CnsCertificate::from_der(&tampered)
        .unwrap()
        .verify_chain(&[&ca_der], &none, AT)
        .unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    // An unusable anchor.
    let e = CnsCertificate::from_der(&good)
        .unwrap()
        .verify_chain(&[&b"junk"[..]], &none, AT)
        .unwrap_err();
    assert!(matches!(e, Error::BadTrustAnchor { index: 0, .. }), "{e:?}");
}

#[test]
fn tiny_and_malformed_keys() {
    let der = LeafSpec {
        rsa_512: true,
        ..LeafSpec::default()
    }
    .issue();
    assert_only(&der, codes::RSA_KEY_UNDER_1024, Severity::Error);
    let good = LeafSpec::default().issue();
    let der = mutate(&good, |c| {
        c.tbs_certificate.subject_public_key_info.subject_public_key =
            x509_cert::der::asn1::BitString::from_bytes(&[0x05, 0x00]).unwrap();
    });
    assert_only(&der, codes::KEY_MALFORMED, Severity::Error);
}

/// Every finding code is produced by at least one certificate variant above. The tests share
/// `SEEN`, so this one runs them all first (each is cheap once the keys exist).
#[test]
fn every_code_is_produced_by_some_test() {
    every_finding_has_its_variant();
    lombardy_policies_are_cns_and_cie_is_a_warning();
    inverted_validity_is_reported();
    signature_algorithm_findings();
    structural_findings();
    tiny_and_malformed_keys();
    let seen = SEEN.lock().unwrap().clone();
    let missing: Vec<&&str> = codes::ALL.iter().filter(|c| !seen.contains(c)).collect();
    assert!(missing.is_empty(), "codes never produced: {missing:?}");
}

#[test]
fn pem_variants_and_bundles() {
    let (ca_der, _) = ca();
    let leaf = LeafSpec::default().issue();
    let pem = |der: &[u8]| {
        x509_cert::der::pem::encode_string("CERTIFICATE", x509_cert::der::pem::LineEnding::LF, der)
            .unwrap()
    };
    // CRLF line endings.
    let crlf = pem(&leaf).replace('\n', "\r\n");
    assert_eq!(
        CnsCertificate::from_bytes(crlf.as_bytes()).unwrap().der(),
        leaf.as_slice()
    );
    // Text before the block, as `openssl x509 -text` prints it, and a key block to skip.
    let text = format!(
        "Certificate:\n    Data: ...\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}",
        pem(&leaf)
    );
    assert_eq!(
        CnsCertificate::from_bytes(text.as_bytes()).unwrap().der(),
        leaf.as_slice()
    );
    // A bundle of anchors.
    let bundle = format!("{}\n{}", pem(&ca_der), pem(&leaf));
    let all = tscns_cert::parse_certificates(bundle.as_bytes()).unwrap();
    assert_eq!(all, vec![ca_der.clone(), leaf.clone()]);
    // A bare DER file is one certificate.
    assert_eq!(
        tscns_cert::parse_certificates(&ca_der).unwrap(),
        vec![ca_der.clone()]
    );
    // A truncated block is an error, not a panic.
    let truncated = &pem(&leaf)[..100];
    assert!(tscns_cert::parse_certificates(truncated.as_bytes()).is_err());
}
