//! `tscns cf` and `tscns cert` run as a user runs them: the real binary, JSON fields, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;

mod common;
use common::{Run, Tscns};

fn tscns(args: &[&str]) -> Run {
    Tscns::new(args).run()
}

fn json(out: &Run) -> Value {
    serde_json::from_slice(&out.stdout_bytes).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            out.stdout,
            out.stderr.as_str()
        )
    })
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn cf_check_valid_json() {
    let out = tscns(&["cf", "check", " rssmra85t10a562s ", "--json"]);
    assert_eq!(out.code, Some(0));
    let v = json(&out);
    assert_eq!(v["input"], " rssmra85t10a562s ");
    assert_eq!(v["valid"], true);
    assert_eq!(v["canonical"], "RSSMRA85T10A562S");
    assert_eq!(v["omocodic"], false);
    assert_eq!(v["birth_date"], "1985-12-10");
    assert_eq!(v["sex"], "M");
    assert_eq!(v["birthplace_code"], "A562");
    assert_eq!(v["error"], Value::Null);
}

#[test]
fn cf_check_omocodic_and_female() {
    let v = json(&tscns(&["cf", "check", "RSSMRA85T10A56NH", "--json"]));
    assert_eq!(v["valid"], true);
    assert_eq!(v["omocodic"], true);
    assert_eq!(v["canonical"], "RSSMRA85T10A562S");
    let out = tscns(&["cf", "check", "VRDNNA01B68F205N", "--json"]);
    assert_eq!(out.code, Some(0));
    let v = json(&out);
    assert_eq!(v["sex"], "F");
    assert_eq!(v["birth_date"], "2001-02-28");
}

#[test]
fn cf_check_invalid_exits_1_with_the_reason() {
    let out = tscns(&["cf", "check", "RSSMRA85T10A562X", "--json"]);
    assert_eq!(out.code, Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["error"],
        "codice fiscale: check letter should be S, found X"
    );
    assert_eq!(v["canonical"], Value::Null);
    assert_eq!(v["birth_date"], Value::Null);

    let out = tscns(&["cf", "check", "RSSMRA85T32A562S"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("day 32 out of range"));
}

#[test]
fn cf_usage_errors_exit_2() {
    assert_eq!(tscns(&["cf", "check"]).code, Some(2));
    assert_eq!(tscns(&["cf", "check", "A", "--bogus"]).code, Some(2));
    let out = tscns(&[
        "cf",
        "make",
        "--surname",
        "Rossi",
        "--given-name",
        "Mario",
        "--birth",
        "1985-13-10",
        "--sex",
        "M",
        "--place",
        "A562",
    ]);
    assert_eq!(out.code, Some(2));
    let out = tscns(&[
        "cf",
        "make",
        "--surname",
        "Rossi",
        "--given-name",
        "Mario",
        "--birth",
        "1985-12-10",
        "--sex",
        "X",
        "--place",
        "A562",
    ]);
    assert_eq!(out.code, Some(2));
    let out = tscns(&[
        "cf",
        "make",
        "--surname",
        "Rossi",
        "--given-name",
        "Mario",
        "--birth",
        "1985-12-10",
        "--sex",
        "M",
        "--place",
        "Rome",
    ]);
    assert_eq!(out.code, Some(2));
}

#[test]
fn cf_make_prints_the_code() {
    let out = tscns(&[
        "cf",
        "make",
        "--surname",
        "Rossi",
        "--given-name",
        "Mario",
        "--birth",
        "1985-12-10",
        "--sex",
        "M",
        "--place",
        "A562",
    ]);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout.trim(), "RSSMRA85T10A562S");
    let out = tscns(&[
        "cf",
        "make",
        "--surname",
        "Verdi",
        "--given-name",
        "Anna",
        "--birth",
        "2001-02-28",
        "--sex",
        "F",
        "--place",
        "f205",
    ]);
    assert_eq!(out.stdout.trim(), "VRDNNA01B68F205N");
    let out = tscns(&[
        "cf",
        "make",
        "--surname",
        "123",
        "--given-name",
        "Anna",
        "--birth",
        "2001-02-28",
        "--sex",
        "F",
        "--place",
        "F205",
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("surname has no letters"));
}

const FIELDS: [&str; 16] = [
    "codice_fiscale",
    "card_id",
    "data_hash",
    "surname",
    "given_name",
    "issuer",
    "issuing_administration",
    "serial",
    "not_before",
    "not_after",
    "key",
    "policies",
    "extended_key_usage",
    "findings",
    "chain",
    "subject",
];

#[test]
fn cert_inspect_json_fields() {
    for file in ["cns-valid.der", "cns-valid.pem"] {
        let out = tscns(&[
            "cert",
            "inspect",
            &example(file),
            "--json",
            "--at",
            "2026-06-01T00:00:00Z",
        ]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let v = json(&out);
        for f in FIELDS {
            assert!(v.get(f).is_some(), "field {f} missing in {v}");
        }
        assert_eq!(v["codice_fiscale"], "RSSMRA85T10A562S");
        assert_eq!(v["card_id"], "8038000000000009");
        assert_eq!(v["data_hash"], "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(v["surname"], "ROSSI");
        assert_eq!(v["given_name"], "MARIO");
        assert_eq!(v["issuing_administration"], "REGIONE TEST");
        assert!(v["issuer"]
            .as_str()
            .unwrap()
            .contains("Regione Test - CA Cittadini"));
        assert_eq!(v["serial"], "4A7F1003");
        assert_eq!(v["not_before"], "2024-01-01T00:00:00Z");
        assert_eq!(v["not_after"], "2030-01-01T00:00:00Z");
        assert_eq!(v["key"]["algorithm"], "RSA");
        assert_eq!(v["key"]["bits"], 2048);
        assert_eq!(v["policies"], serde_json::json!(["1.3.76.16.2.1"]));
        assert_eq!(
            v["extended_key_usage"],
            serde_json::json!(["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4"])
        );
        assert_eq!(v["findings"], serde_json::json!([]));
        assert_eq!(v["chain"], Value::Null);
    }
}

#[test]
fn cert_inspect_findings_and_chain() {
    let out = tscns(&[
        "cert",
        "inspect",
        &example("cns-expired.der"),
        "--json",
        "--at",
        "2026-06-01T00:00:00Z",
        "--anchor",
        &example("ca.pem"),
    ]);
    assert_eq!(out.code, Some(0));
    let v = json(&out);
    assert_eq!(v["findings"][0]["code"], "expired");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert!(v["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("2021-01-01"));
    assert_eq!(v["chain"]["valid"], false);
    assert!(v["chain"]["error"].as_str().unwrap().contains("expired"));

    let v = json(&tscns(&[
        "cert",
        "inspect",
        &example("cns-valid.der"),
        "--json",
        "--at",
        "2026-06-01T00:00:00Z",
        "--anchor",
        &example("ca.pem"),
    ]));
    assert_eq!(v["chain"]["valid"], true);
    assert_eq!(v["chain"]["error"], Value::Null);

    let v = json(&tscns(&[
        "cert",
        "inspect",
        &example("cns-1024.der"),
        "--json",
        "--at",
        "2026-06-01T00:00:00Z",
    ]));
    assert_eq!(v["key"]["bits"], 1024);
    assert_eq!(v["findings"][0]["code"], "rsa-key-under-2048");
    assert_eq!(v["findings"][0]["severity"], "warning");

    let v = json(&tscns(&[
        "cert",
        "inspect",
        &example("not-cns.der"),
        "--json",
        "--at",
        "2026-06-01T00:00:00Z",
    ]));
    assert_eq!(v["codice_fiscale"], Value::Null);
    assert_eq!(v["card_id"], Value::Null);
    assert_eq!(v["surname"], Value::Null);
    assert_eq!(v["issuing_administration"], Value::Null);
    assert_eq!(v["findings"][0]["code"], "cn-not-cns-form");
}

#[test]
fn cert_inspect_human_output() {
    let out = tscns(&[
        "cert",
        "inspect",
        &example("cns-no-client-auth.pem"),
        "--at",
        "2026-06-01T00:00:00Z",
        "--anchor",
        &example("ca.pem"),
    ]);
    assert_eq!(out.code, Some(0));
    let text = out.stdout.as_str();
    assert!(text.contains("RSSMRA85T10A562S"), "{text}");
    assert!(text.contains("client-auth-missing"), "{text}");
    assert!(text.contains("non-repudiation-present"), "{text}");
    assert!(text.contains("INVALID"), "{text}");
}

#[test]
fn cert_inspect_failures() {
    // Not a certificate.
    let out = tscns(&["cert", "inspect", &example("README.md")]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("not an X.509 certificate"));
    // Missing file.
    let out = tscns(&["cert", "inspect", "/nonexistent/cert.der", "--json"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("cannot read"));
    // Usage errors.
    assert_eq!(tscns(&["cert", "inspect"]).code, Some(2));
    let out = tscns(&[
        "cert",
        "inspect",
        &example("cns-valid.der"),
        "--at",
        "yesterday",
    ]);
    assert_eq!(out.code, Some(2));
}

/// Output to a stdout that cannot take it (a closed pipe, a full disk) ends the output quietly:
/// no panic, the exit code still says what happened to the input.
#[test]
fn unwritable_stdout_is_no_panic() {
    if !std::path::Path::new("/dev/full").exists() {
        panic!("/dev/full is missing: this test needs a Linux /dev");
    }
    let cert = example("cns-valid.der");
    for (args, code) in [
        (vec!["cert", "inspect", cert.as_str()], 0),
        (vec!["cert", "inspect", cert.as_str(), "--json"], 0),
        (vec!["cf", "check", "RSSMRA85T10A562S"], 0),
        (vec!["cf", "check", "RSSMRA85T10A562S", "--json"], 0),
    ] {
        let out = Tscns::new(&args)
            .stdout_to(std::fs::File::create("/dev/full").unwrap())
            .run();
        let stderr = out.stderr.as_str();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.code, Some(code), "{args:?}: {stderr}");
    }
}
