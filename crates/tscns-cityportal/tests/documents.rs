//! Certificates and self-declarations: PDF/A export, the PAdES seal, `documents::verify`,
//! tampering, and property tests on arbitrary records. Set `TSCNS_CITYPORTAL_KEEP_DIR` to keep
//! the PDFs for a look.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_pdfa, keep, record, seal_info, seal_pki, sealed, AT, BASE};
use proptest::prelude::*;
use tscns_cityportal::documents::{
    certificate_pdf, seal, self_declaration_pdf, verification_url, verify, CertificateContent,
    DeclaredFact, DocumentError,
};
use tscns_cityportal::domain::{
    CertificateKind, Destination, Exemption, MarcaId, RegistryRecord, Stamp,
};
use tscns_cityportal::store::{CertificateIds, Store};

#[test]
fn a_sealed_certificate_verifies_and_names_its_id() {
    let marca = Stamp::Marca(MarcaId::parse("01234567890123").unwrap());
    let (pdf, ids) = sealed(
        "RSSMRA80A01H501U",
        CertificateKind::Residenza,
        Some(&marca),
        Destination::Ordinaria,
    );
    keep("residenza.pdf", &pdf);
    assert!(pdf.starts_with(b"%PDF-1.7"));
    let s = verify(&pdf, &[seal_pki().ca_der.clone()]).unwrap();
    assert_eq!(s.certificate_id, ids.id);
    assert_eq!(s.signed_at, AT);
    assert!(s.signer.contains("Sigillo elettronico"), "{}", s.signer);
    assert_eq!(s.signer_certificate, seal_pki().cert_der);
    // Trusting the seal certificate itself works too.
    verify(&pdf, &[seal_pki().cert_der.clone()]).unwrap();
    // Another anchor: refused.
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let e = verify(&pdf, &[other.der().to_vec()]).unwrap_err();
    assert!(e.to_string().contains("trusted anchor"), "{e}");
    assert!(verify(&pdf, &[]).is_err());
    // The digest that comes with the seal is the whole file's.
    let unsealed = common::unsealed(
        "RSSMRA80A01H501U",
        CertificateKind::Residenza,
        Some(&marca),
        &ids,
    );
    let with = tscns_cityportal::documents::seal_with_digest(
        &unsealed,
        &seal_pki().key(),
        &seal_info(&ids),
    )
    .unwrap();
    use sha2::Digest;
    assert_eq!(
        with.sha256,
        <[u8; 32]>::from(sha2::Sha256::digest(&with.pdf))
    );
    verify(&with.pdf, &[seal_pki().ca_der.clone()]).unwrap();
    // The QR code's URL.
    assert_eq!(
        verification_url(BASE, &ids),
        format!(
            "{BASE}/verifica/{}?codice={}",
            ids.id, ids.verification_code
        )
    );
}

#[test]
fn tampering_is_detected() {
    let (pdf, _) = sealed(
        "RSSMRA80A01H501U",
        CertificateKind::StatoDiFamiglia,
        Some(&Stamp::Marca(MarcaId::parse("11111111111111").unwrap())),
        Destination::Ordinaria,
    );
    let anchors = [seal_pki().ca_der.clone()];
    // One flipped byte in the first signed range (inside the page content), and in the second.
    for at in [pdf.len() / 3, pdf.len() - 40] {
        let mut bad = pdf.clone();
        bad[at] ^= 0x01;
        match verify(&bad, &anchors) {
            Err(DocumentError::Invalid(_)) => {}
            other => panic!("flip at {at}: {other:?}"),
        }
    }
    // Something appended after sealing.
    let mut longer = pdf.clone();
    longer.extend_from_slice(b"\n% appended\n");
    let e = verify(&longer, &anchors).unwrap_err();
    assert!(e.to_string().contains("whole document"), "{e}");
    // Not a sealed PDF at all.
    assert!(verify(b"%PDF-1.7\n", &anchors).is_err());
    assert!(verify(b"", &anchors).is_err());
}

#[test]
fn a_sealed_pdf_cannot_be_sealed_twice_and_garbage_is_refused() {
    let (pdf, ids) = sealed(
        "BNCLRA82B41H769J",
        CertificateKind::Cittadinanza,
        Some(&Stamp::Exempt(Exemption::Onlus)),
        Destination::Ordinaria,
    );
    assert!(matches!(
        seal(&pdf, &seal_pki().key(), &seal_info(&ids)),
        Err(DocumentError::Unsealable(_))
    ));
    assert!(matches!(
        seal(b"not a pdf", &seal_pki().key(), &seal_info(&ids)),
        Err(DocumentError::Unsealable(_))
    ));
}

#[test]
fn every_online_kind_renders_for_someone() {
    let cases = [
        ("RSSMRA80A01H501U", CertificateKind::Nascita),
        ("RSSMRA80A01H501U", CertificateKind::Matrimonio),
        ("RSSMRA80A01H501U", CertificateKind::Cittadinanza),
        ("RSSMRA80A01H501U", CertificateKind::EsistenzaInVita),
        ("RSSMRA80A01H501U", CertificateKind::Residenza),
        ("GLLRRT78S03H769N", CertificateKind::ResidenzaAire),
        ("RSSMRA80A01H501U", CertificateKind::StatoCivile),
        ("RSSMRA80A01H501U", CertificateKind::StatoDiFamiglia),
        (
            "RSSMRA80A01H501U",
            CertificateKind::StatoDiFamigliaEStatoCivile,
        ),
        ("GLLRRT78S03H769N", CertificateKind::StatoDiFamigliaAire),
        (
            "RSSMRA80A01H501U",
            CertificateKind::StatoDiFamigliaConParentela,
        ),
        ("VRDNTN60H30H769F", CertificateKind::StatoLibero),
        ("FRRNDR85E20A462B", CertificateKind::UnioneCivile),
        ("CLMFNC75T45F20RC", CertificateKind::Residenza),
    ];
    let anchors = [seal_pki().ca_der.clone()];
    for (cf, kind) in cases {
        let (pdf, ids) = sealed(cf, kind, None, Destination::Estero);
        keep(&format!("{}-{cf}.pdf", kind.slug()), &pdf);
        assert_eq!(
            verify(&pdf, &anchors).unwrap().certificate_id,
            ids.id,
            "{kind:?}"
        );
    }
}

#[test]
fn self_declarations_render() {
    let rec = record("RSSMRA80A01H501U");
    let pdf = self_declaration_pdf(&rec, &DeclaredFact::ALL, AT).unwrap();
    keep("autocertificazione.pdf", &pdf);
    assert_pdfa(&pdf);
    assert!(pdf.starts_with(b"%PDF-1.7"));
    // No seal on a self-declaration.
    assert!(verify(&pdf, &[seal_pki().ca_der.clone()]).is_err());
    for f in DeclaredFact::ALL {
        assert_eq!(DeclaredFact::from_slug(f.slug()), Some(f));
    }
}

/// A large convivenza: the members continue on further pages, each with header and footer.
pub fn big_family_pdf() -> (Vec<u8>, usize) {
    let mut rec = record("RSSMRA80A01H501U");
    let template = rec.members[1].clone();
    for i in 0..40 {
        let mut m = template.clone();
        m.surname = format!("MEMBRO{i:02}");
        rec.members.push(m);
    }
    let ids = Store::new_certificate_ids("H769").unwrap();
    let pdf = tscns_cityportal::documents::certificate_pdf(
        &tscns_cityportal::documents::CertificateContent {
            record: &rec,
            kind: CertificateKind::StatoDiFamigliaConParentela,
            destination: Destination::Ordinaria,
            stamp: None,
            ids: &ids,
            issued_at: AT,
            portal_base_url: BASE,
        },
    )
    .unwrap();
    let sealed = seal(&pdf, &seal_pki().key(), &seal_info(&ids)).unwrap();
    assert_pdfa(&sealed);
    let pages = lopdf::Document::load_mem(&sealed)
        .unwrap()
        .get_pages()
        .len();
    (sealed, pages)
}

#[test]
fn a_large_family_continues_on_further_pages() {
    let (pdf, pages) = big_family_pdf();
    keep("famiglia-numerosa.pdf", &pdf);
    assert!(pages >= 3, "{pages} pages");
    verify(&pdf, std::slice::from_ref(&seal_pki().ca_der)).unwrap();
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z' ]{1,40}",
        "\\PC{0,80}",
        Just("ÀÈÌÒÙ àèìòù ÇÑ ß “citazioni” — \u{200b}".to_string()),
        "[A-Z]{300,400}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_records_give_valid_pdfs(
        surname in arb_text(), given in arb_text(), street in arb_text(), place in arb_text(),
        kind in prop::sample::select(CertificateKind::ALL.to_vec()),
        dest in prop::sample::select(Destination::ALL.to_vec()),
        civil in prop::sample::select(tscns_cityportal::domain::CivilStatus::ALL.to_vec()),
        aire in any::<bool>(), dead in any::<bool>(),
    ) {
        let mut rec = record("RSSMRA80A01H501U");
        rec.person.surname = surname.clone();
        rec.person.given_name = given;
        rec.person.birth_place.municipality = place.clone();
        rec.person.civil_status = civil;
        rec.person.aire = aire;
        rec.person.death_date = dead.then_some(time::macros::date!(2020 - 01 - 01));
        if let Some(f) = rec.family.as_mut() { f.address.street = street; }
        if let Some(m) = rec.members.get_mut(1) { m.surname = surname; m.birth_municipality = place; }
        let ids = Store::new_certificate_ids("H769").unwrap();
        let stamp = Stamp::Exempt(Exemption::Altro("x".repeat(256)));
        let pdf = certificate_pdf(&CertificateContent {
            record: &rec, kind, destination: dest, stamp: Some(&stamp), ids: &ids, issued_at: AT, portal_base_url: BASE,
        }).unwrap();
        prop_assert_eq!(tscns_cityportal::documents::pdfa::check(&pdf), Ok(()));
        // The digest that comes with the seal is the file's, whether the document starts with
        // the shared head (Latin names) or not (other letters: extended subsets).
        let with = tscns_cityportal::documents::seal_vec(pdf.clone(), &seal_pki().key(), &seal_info(&ids)).unwrap();
        {
            use sha2::Digest;
            prop_assert_eq!(with.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&with.pdf)));
        }
        let sealed = seal(&pdf, &seal_pki().key(), &seal_info(&ids)).unwrap();
        prop_assert_eq!(&sealed, &with.pdf);
        prop_assert_eq!(tscns_cityportal::documents::pdfa::check(&sealed), Ok(()));
        prop_assert_eq!(verify(&sealed, &[seal_pki().ca_der.clone()]).unwrap().certificate_id, ids.id);
        let decl = self_declaration_pdf(&rec, &DeclaredFact::ALL, AT).unwrap();
        prop_assert!(decl.starts_with(b"%PDF-1.7"));
        prop_assert_eq!(tscns_cityportal::documents::pdfa::check(&decl), Ok(()));
    }
}

/// A certificate for a subject whose name needs glyphs outside the fonts' base subsets
/// (Greek, Cyrillic): the document embeds a larger subset, still PDF/A, with the text intact.
#[test]
fn names_outside_the_latin_repertoire_are_embedded_too() {
    let mut rec = record("RSSMRA80A01H501U");
    rec.person.surname = "ΠΑΠΑΔΟΠΟΥΛΟΣ ЖУКОВ".into();
    let ids = Store::new_certificate_ids("H769").unwrap();
    let pdf = residenza(&rec, &ids);
    assert_pdfa(&pdf);
    // Made again, from the cache of extended subsets: the same bytes.
    assert_eq!(residenza(&rec, &ids), pdf);
    let plain = residenza(&record("RSSMRA80A01H501U"), &ids);
    assert!(pdf.len() > plain.len(), "the extra glyphs are embedded");
}

/// The unsealed certificate of residence of `rec` (ordinary use, exempt by law), issued at `AT`.
fn residenza(rec: &RegistryRecord, ids: &CertificateIds) -> Vec<u8> {
    certificate_pdf(&CertificateContent {
        record: rec,
        kind: CertificateKind::Residenza,
        destination: Destination::Ordinaria,
        stamp: None,
        ids,
        issued_at: AT,
        portal_base_url: BASE,
    })
    .unwrap()
}

/// Edits a PDF through lopdf and returns the saved bytes.
fn edited(pdf: &[u8], edit: impl FnOnce(&mut lopdf::Document)) -> Vec<u8> {
    let mut doc = lopdf::Document::load_mem(pdf).unwrap();
    edit(&mut doc);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn problems(pdf: &[u8]) -> String {
    format!(
        "{:?}",
        tscns_cityportal::documents::pdfa::check(pdf).unwrap_err()
    )
}

/// Asserts that the check reports a breach of `clause` in `pdf`.
#[track_caller]
fn assert_caught(pdf: &[u8], clause: &str) {
    let p = problems(pdf);
    assert!(p.contains(clause), "{clause}: {p}");
}

/// The checker is not a rubber stamp: each rule it states fails on a document that breaks it.
#[test]
fn the_pdfa_check_catches_what_it_checks() {
    let rec = record("RSSMRA80A01H501U");
    let pdf = self_declaration_pdf(&rec, &DeclaredFact::ALL, AT).unwrap();
    assert_pdfa(&pdf);
    // lopdf's own writing keeps it valid (so the failures below are the edits').
    assert_pdfa(&edited(&pdf, |_| {}));

    let cid_fonts = |doc: &lopdf::Document| -> Vec<lopdf::ObjectId> {
        doc.objects
            .iter()
            .filter(|(_, o)| {
                o.as_dict().is_ok_and(|d| {
                    d.get(b"Subtype").and_then(|s| s.as_name()).ok() == Some(&b"CIDFontType2"[..])
                })
            })
            .map(|(id, _)| *id)
            .collect()
    };
    // Widths that disagree with the font program.
    let wrong_widths = edited(&pdf, |doc| {
        for id in cid_fonts(doc) {
            let d = doc.get_object_mut(id).unwrap().as_dict_mut().unwrap();
            let w = d.get_mut(b"W").unwrap().as_array_mut().unwrap();
            for item in w.iter_mut() {
                if let Ok(list) = item.as_array_mut() {
                    for v in list.iter_mut() {
                        *v = lopdf::Object::Real(1.0);
                    }
                }
            }
        }
    });
    assert_caught(&wrong_widths, "6.2.11.5");
    // Every character mapped to .notdef.
    let notdef = edited(&pdf, |doc| {
        for id in cid_fonts(doc) {
            let d = doc.get_object_mut(id).unwrap().as_dict_mut().unwrap();
            let map = d.get(b"CIDToGIDMap").unwrap().as_reference().unwrap();
            let zeros = vec![0u8; 2 * 65536];
            *doc.get_object_mut(map).unwrap() =
                lopdf::Object::Stream(lopdf::Stream::new(lopdf::Dictionary::new(), zeros));
        }
    });
    assert_caught(&notdef, "6.2.11.8");
    // No output intent.
    let no_intent = edited(&pdf, |doc| {
        let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
        doc.get_object_mut(root)
            .unwrap()
            .as_dict_mut()
            .unwrap()
            .remove(b"OutputIntents");
    });
    assert_caught(&no_intent, "6.2.2");
    // Info and XMP that disagree.
    let other_title = edited(&pdf, |doc| {
        let info = doc.trailer.get(b"Info").unwrap().as_reference().unwrap();
        doc.get_object_mut(info)
            .unwrap()
            .as_dict_mut()
            .unwrap()
            .set("Title", lopdf::Object::string_literal("Altro titolo"));
    });
    assert_caught(&other_title, "6.6.3");
    // XMP claiming another part, and no file identifier.
    let part1 = edited(&pdf, |doc| {
        let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
        let meta = doc
            .get_dictionary(root)
            .unwrap()
            .get(b"Metadata")
            .unwrap()
            .as_reference()
            .unwrap();
        let s = doc.get_object_mut(meta).unwrap().as_stream_mut().unwrap();
        let xml = String::from_utf8(s.content.clone()).unwrap();
        s.set_content(
            xml.replace("<pdfaid:part>2<", "<pdfaid:part>1<")
                .into_bytes(),
        );
        doc.trailer.remove(b"ID");
    });
    let p = problems(&part1);
    assert!(p.contains("6.6.4") && p.contains("6.1.3"), "{p}");
}

/// Control characters in a registry name reach neither the page nor the metadata (they would
/// make the XMP ill-formed): the document stays PDF/A.
#[test]
fn control_characters_in_names_do_not_break_the_metadata() {
    let mut rec = record("RSSMRA80A01H501U");
    rec.person.surname = "ROSSI\u{1}\r\nBIS\u{7f}".into();
    let pdf = self_declaration_pdf(&rec, &DeclaredFact::ALL, AT).unwrap();
    assert_pdfa(&pdf);
    let cert = residenza(&rec, &Store::new_certificate_ids("H769").unwrap());
    assert_pdfa(&cert);
}

/// The seal's reader refuses a cross-reference entry past the end of the file (no panic), and a
/// placeholder-like text in the original cannot be mistaken for the seal's own byte range.
#[test]
fn the_seal_reader_refuses_bad_offsets_and_keeps_the_original_bytes() {
    let rec = record("RSSMRA80A01H501U");
    let ids = Store::new_certificate_ids("H769").unwrap();
    let pdf = residenza(&rec, &ids);
    // Object 1's entry is the second line of the table.
    let xref = pdf.windows(6).rposition(|w| w == b"\nxref\n").unwrap() + 1;
    let first_entry = xref + pdf[xref..].iter().position(|b| *b == b'\n').unwrap() + 1;
    let first_entry =
        first_entry + pdf[first_entry..].iter().position(|b| *b == b'\n').unwrap() + 1;
    let second = first_entry + pdf[first_entry..].iter().position(|b| *b == b'\n').unwrap() + 1;
    let mut bad = pdf.clone();
    bad[second..second + 10].copy_from_slice(b"9999999999");
    assert!(matches!(
        seal(&bad, &seal_pki().key(), &seal_info(&ids)),
        Err(DocumentError::Unsealable(_))
    ));
    let mut tricky = pdf.clone();
    tricky.extend_from_slice(b"%/ByteRange [0 0000000000 0000000000 0000000000]\n");
    let sealed = seal(&tricky, &seal_pki().key(), &seal_info(&ids)).unwrap();
    assert!(sealed.starts_with(&tricky));
    assert_eq!(
        verify(&sealed, std::slice::from_ref(&seal_pki().ca_der))
            .unwrap()
            .certificate_id,
        ids.id
    );
}
