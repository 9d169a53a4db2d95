//! Property tests: codice fiscale make -> parse, omocodia, single substitutions, card id Luhn,
//! and parsers that never panic on arbitrary or mutated input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use time::{Date, Month};
use tscns_cert::{CardId, CnsCertificate, CodiceFiscale, Sex};

fn arb_date() -> impl Strategy<Value = Date> {
    (1900i32..2100, 1u8..=12, 1u8..=31).prop_filter_map("valid date", |(y, m, d)| {
        Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
    })
}

fn arb_name() -> impl Strategy<Value = String> {
    "[A-Za-zÀÈÉÌÒÙàèéìòù' ]{0,5}[A-Za-z][A-Za-zàèéìòù' ]{0,20}"
}

fn arb_place() -> impl Strategy<Value = String> {
    "[A-Z][0-9]{3}"
}

fn arb_cf() -> impl Strategy<Value = CodiceFiscale> {
    (
        arb_name(),
        arb_name(),
        arb_date(),
        any::<bool>(),
        arb_place(),
    )
        .prop_map(|(s, g, d, female, p)| {
            let sex = if female { Sex::Female } else { Sex::Male };
            CodiceFiscale::compute(&s, &g, d, sex, &p).unwrap()
        })
}

proptest! {
    #[test]
    fn make_then_parse_round_trips(
        s in arb_name(), g in arb_name(), d in arb_date(), female in any::<bool>(), p in arb_place()
    ) {
        let sex = if female { Sex::Female } else { Sex::Male };
        let cf = CodiceFiscale::compute(&s, &g, d, sex, &p).unwrap();
        let parsed = CodiceFiscale::parse(&cf.to_string().to_lowercase()).unwrap();
        prop_assert_eq!(&parsed, &cf);
        prop_assert!(!parsed.is_omocodic());
        prop_assert!(parsed.matches_names(&s, &g));
        prop_assert_eq!(parsed.sex(), sex);
        prop_assert_eq!(parsed.birthplace_code(), p);
        // Resolved against a reference date 0..99 years after birth, the birth date comes back.
        let reference = Date::from_calendar_date(d.year() + 99, Month::January, 1).unwrap();
        prop_assert_eq!(parsed.birth_date(reference), Some(d));
        prop_assert_eq!(parsed.birth_date(d), Some(d));
    }

    #[test]
    fn every_omocodic_variant_is_valid_with_the_same_canonical_form(cf in arb_cf()) {
        for v in cf.omocodic_variants() {
            let parsed = CodiceFiscale::parse(v.as_str()).unwrap();
            prop_assert_eq!(parsed.canonical(), cf.clone());
            prop_assert_eq!(parsed.is_omocodic(), parsed != cf);
            prop_assert_eq!(parsed.sex(), cf.sex());
            prop_assert_eq!(parsed.birthplace_code(), cf.birthplace_code());
            prop_assert_eq!(parsed.birth_day(), cf.birth_day());
        }
    }

    #[test]
    fn any_single_character_substitution_is_rejected(
        cf in arb_cf(), pos in 0usize..16, c in "[A-Z0-9]"
    ) {
        let mut chars: Vec<char> = cf.as_str().chars().collect();
        let new = c.chars().next().unwrap();
        prop_assume!(chars[pos] != new);
        chars[pos] = new;
        let changed: String = chars.into_iter().collect();
        prop_assert!(CodiceFiscale::parse(&changed).is_err(), "{} accepted", changed);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = CodiceFiscale::parse(&s);
        let _ = CardId::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_codes(s in "[A-Za-z0-9LMNPQRSTUV ]{14,18}") {
        if let Ok(cf) = CodiceFiscale::parse(&s) {
            prop_assert_eq!(cf.canonical().canonical(), cf.canonical());
            let _ = cf.birth_date(Date::MIN);
            let _ = cf.birth_date(Date::MAX);
        }
    }

    #[test]
    fn card_id_luhn(first15 in "[0-9]{15}", last in 0u8..10) {
        let id = CardId::with_check_digit(&first15).unwrap();
        prop_assert_eq!(CardId::parse(id.as_str()).unwrap(), id.clone());
        let written = format!("{first15}{last}");
        prop_assert_eq!(CardId::parse(&written).is_ok(), written == id.as_str());
    }

    #[test]
    fn card_id_single_digit_change_is_rejected(first15 in "[0-9]{15}", pos in 0usize..16, d in 0u8..10) {
        let id = CardId::with_check_digit(&first15).unwrap();
        let mut b = id.as_str().as_bytes().to_vec();
        prop_assume!(b[pos] != b'0' + d);
        b[pos] = b'0' + d;
        prop_assert!(CardId::parse(std::str::from_utf8(&b).unwrap()).is_err());
    }

    #[test]
    fn certificate_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(c) = CnsCertificate::from_bytes(&bytes) {
            let _ = c.conformance(time::OffsetDateTime::UNIX_EPOCH);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn mutated_real_certificates_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<Option<usize>>(),
    ) {
        let mut der = real_der().to_vec();
        for (i, b) in edits {
            let i = i % der.len();
            der[i] = b;
        }
        if let Some(c) = cut {
            der.truncate(c % (der.len() + 1));
        }
        if let Ok(cert) = CnsCertificate::from_der(&der) {
            let _ = cert.conformance(time::OffsetDateTime::UNIX_EPOCH);
            let _ = tscns_cert::CertificateReport::new(&cert, time::OffsetDateTime::UNIX_EPOCH, None);
            let none: [&[u8]; 0] = [];
            let _ = cert.verify_chain(&[real_der()], &none, time::OffsetDateTime::UNIX_EPOCH);
        }
    }
}

fn real_der() -> &'static [u8] {
    static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DER.get_or_init(|| common::LeafSpec::default().issue())
}
