//! What Poppler sees: `pdfsig` reports the seal valid and the whole document signed, and a
//! flipped byte as a digest mismatch; `pdftotext` finds the subject, the codice fiscale, the
//! certified facts and the notices; `pdftoppm` renders the page.
//!
//! Needs `pdfsig`, `pdftotext`, `pdftoppm` (poppler-utils) and `certutil` (libnss3-tools):
//! `scripts/test` installs them.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{keep, record, seal_pki, sealed, AT};
use tscns_cityportal::documents::{
    self_declaration_pdf, DeclaredFact, ABROAD_NOTICE, ART_40_NOTICE, ART_76_FORMULA,
};
use tscns_cityportal::domain::{CertificateKind, Destination, Exemption, MarcaId, Stamp};

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}: run scripts/test, or `apt-get install poppler-utils libnss3-tools`"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.code() != Some(127) && out.status.code() != Some(124),
        "{name} is missing or hung: run scripts/test, or `apt-get install poppler-utils libnss3-tools`\n{text}"
    );
    text
}

fn text_of(pdf: &[u8], dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    let t = tool("pdftotext", &["-layout", path.to_str().unwrap(), "-"]);
    // One space between words, whatever the layout.
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn pdfsig_reports_valid_then_modified() {
    let dir = tempfile::tempdir().unwrap();
    let nss = dir.path().join("nss");
    std::fs::create_dir(&nss).unwrap();
    let nssdir = format!("sql:{}", nss.display());
    tool("certutil", &["-N", "-d", &nssdir, "--empty-password"]);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &seal_pki().ca_pem).unwrap();
    let added = tool(
        "certutil",
        &[
            "-A",
            "-d",
            &nssdir,
            "-n",
            "seal-ca",
            "-t",
            "CT,C,C",
            "-i",
            ca.to_str().unwrap(),
        ],
    );
    assert!(!added.contains("rror"), "{added}");

    let marca = Stamp::Marca(MarcaId::parse("01234567890123").unwrap());
    let (pdf, _) = sealed(
        "RSSMRA80A01H501U",
        CertificateKind::Residenza,
        Some(&marca),
        Destination::Ordinaria,
    );
    let good = dir.path().join("good.pdf");
    std::fs::write(&good, &pdf).unwrap();
    let report = tool("pdfsig", &["-nssdir", &nssdir, good.to_str().unwrap()]);
    assert!(
        report.contains("Signature Type: ETSI.CAdES.detached"),
        "{report}"
    );
    assert!(
        report.contains("Signing Hash Algorithm: SHA-256"),
        "{report}"
    );
    assert!(report.contains("Total document signed"), "{report}");
    assert!(
        report.contains("Signature Validation: Signature is Valid."),
        "{report}"
    );
    assert!(
        report.contains("Certificate Validation: Certificate is Trusted."),
        "{report}"
    );

    // One flipped byte in the signed range (a letter of the document's XMP metadata).
    let at = pdf
        .windows(16)
        .position(|w| w == b"tscns-cityportal")
        .expect("creator in the metadata");
    let mut bad = pdf.clone();
    bad[at] = b'T';
    let badp = dir.path().join("bad.pdf");
    std::fs::write(&badp, &bad).unwrap();
    let report = tool("pdfsig", &["-nssdir", &nssdir, badp.to_str().unwrap()]);
    assert!(
        report.contains("Signature Validation: Digest Mismatch."),
        "{report}"
    );
    assert!(!report.contains("Signature is Valid."), "{report}");
}

#[test]
fn pdftotext_finds_the_facts_and_the_notices() {
    let dir = tempfile::tempdir().unwrap();
    let marca = Stamp::Marca(MarcaId::parse("01234567890123").unwrap());
    let (pdf, ids) = sealed(
        "RSSMRA80A01H501U",
        CertificateKind::Residenza,
        Some(&marca),
        Destination::Ordinaria,
    );
    let t = text_of(&pdf, dir.path(), "residenza.pdf");
    for want in [
        "COMUNE DI SAN BENEDETTO DEL TRONTO",
        "CERTIFICATO DI RESIDENZA",
        "ROSSI MARIO",
        "RSSMRA80A01H501U",
        "VIA ROMA 1, 63074 SAN BENEDETTO DEL TRONTO (AP), dal 01/05/2010",
        "ROMA (RM), 01/01/1980",
        &squash(ART_40_NOTICE),
        "Imposta di bollo di EUR 16,00",
        "n. 01234567890123",
        "San Benedetto del Tronto, 01/03/2026",
        &ids.id,
        &ids.verification_code,
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    // Family certificate with relationships: every living member, not the dead grandfather.
    let (pdf, _) = sealed(
        "RSSMRA80A01H501U",
        CertificateKind::StatoDiFamigliaConParentela,
        Some(&marca),
        Destination::Estero,
    );
    let t = text_of(&pdf, dir.path(), "famiglia.pdf");
    for want in [
        "BIANCHI LAURA",
        "RSSLCU10C15H769O",
        "ROSSI GIULIA",
        "figlio/figlia",
        "marito/moglie",
        ABROAD_NOTICE,
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    assert!(!t.contains("GIUSEPPE"), "a dead member is listed:\n{t}");
    assert!(
        !t.contains("art. 40"),
        "use abroad carries no art. 40 notice:\n{t}"
    );
    // Exemption 99: the reason, not its description.
    let altro = Stamp::Exempt(Exemption::Altro("motivo riservato del cittadino".into()));
    let (pdf, _) = sealed(
        "FRRNDR85E20A462B",
        CertificateKind::StatoCivile,
        Some(&altro),
        Destination::Ordinaria,
    );
    let t = text_of(&pdf, dir.path(), "altro.pdf");
    assert!(t.contains("Esente da imposta di bollo"), "{t}");
    assert!(t.contains("unito/a civilmente"), "{t}");
    assert!(
        !t.contains("motivo riservato"),
        "exemption 99's description is printed:\n{t}"
    );
    // A stato civile extract: exempt by law.
    let (pdf, _) = sealed(
        "FRRNDR85E20A462B",
        CertificateKind::UnioneCivile,
        None,
        Destination::Ordinaria,
    );
    let t = text_of(&pdf, dir.path(), "unione.pdf");
    assert!(t.contains("art. 7 L. 405/1990"), "{t}");
    assert!(t.contains("MARINI"), "the partner is named:\n{t}");

    // Self-declaration: facts, arts. 46 and 76, place, date, name, signature line; no stamp.
    let rec = record("RSSMRA80A01H501U");
    let pdf = self_declaration_pdf(&rec, &DeclaredFact::ALL, AT).unwrap();
    keep("autocertificazione.pdf", &pdf);
    let t = text_of(&pdf, dir.path(), "auto.pdf");
    for want in [
        "DICHIARAZIONE SOSTITUTIVA DI CERTIFICAZIONE",
        "art. 46",
        &squash(ART_76_FORMULA),
        "MARIO ROSSI",
        "RSSMRA80A01H501U",
        "di essere nato a ROMA (RM) il 01/01/1980",
        "di essere residente in VIA ROMA 1",
        "cittadinanza italiana",
        "coniugato/a",
        "di essere in vita",
        "San Benedetto del Tronto, 01/03/2026",
        "Firma ____",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    assert!(!t.contains("EUR 16"), "{t}");
}

#[test]
fn pdftoppm_renders_one_page_of_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = sealed(
        "RSSMRA80A01H501U",
        CertificateKind::StatoDiFamiglia,
        None,
        Destination::Ordinaria,
    );
    let decl = self_declaration_pdf(&record("RSSMRA80A01H501U"), &DeclaredFact::ALL, AT).unwrap();
    for (name, pdf) in [("cert", cert), ("decl", decl)] {
        let p = dir.path().join(format!("{name}.pdf"));
        std::fs::write(&p, &pdf).unwrap();
        let out = dir.path().join(name);
        tool(
            "pdftoppm",
            &[
                "-png",
                "-r",
                "80",
                "-f",
                "1",
                "-l",
                "1",
                p.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
        );
        let png = std::fs::read(dir.path().join(format!("{name}-1.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
        let info = tool("pdfinfo", &[p.to_str().unwrap()]);
        assert!(
            info.lines()
                .any(|l| l.starts_with("Pages:") && l.trim_end().ends_with(" 1")),
            "{info}"
        );
        assert!(info.contains("595.28 x 841.89 pts (A4)"), "{info}");
        // Both fonts embedded as subsets with a ToUnicode map, as poppler reads them.
        let fonts = tool("pdffonts", &[p.to_str().unwrap()]);
        let rows: Vec<&str> = fonts.lines().skip(2).collect();
        assert_eq!(rows.len(), 2, "{fonts}");
        for (row, family) in rows.iter().zip(["DejaVuSans", "DejaVuSans-Bold"]) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            assert!(cols[0].ends_with(&format!("+{family}")), "{fonts}");
            assert_eq!(cols[1..4], ["CID", "TrueType", "Identity-H"], "{fonts}");
            assert_eq!(cols[4..7], ["yes", "yes", "yes"], "emb sub uni: {fonts}");
        }
    }
}
