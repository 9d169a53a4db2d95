//! The domain: every code round-trips, the rules of eligibility on the shipped fixture, and
//! property tests on arbitrary records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use time::macros::date;
use time::Date;
use tscns_cert::CodiceFiscale;
use tscns_cityportal::domain::*;
use tscns_cityportal::registry::Registry;

const TODAY: Date = date!(2026 - 03 - 01);

fn registry() -> Registry {
    Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes()).unwrap()
}

fn rec(r: &Registry, cf: &str) -> RegistryRecord {
    r.record(&CodiceFiscale::parse(cf).unwrap()).unwrap()
}

const MARIO: &str = "RSSMRA80A01H501U";
const LAURA: &str = "BNCLRA82B41H769J";
const LUCA: &str = "RSSLCU10C15H769O";
const GIULIA: &str = "RSSGLI13L62H769V";
const GIUSEPPE: &str = "RSSGPP50D10H501A";
const ANDREA: &str = "FRRNDR85E20A462B";
const FRANCESCA: &str = "CLMFNC75T45F20RC";
const ANTONIO: &str = "VRDNTN60H30H769F";
const ROSA: &str = "VRDRSO63M54H769W";
const ROBERTO: &str = "GLLRRT78S03H769N";

#[test]
fn tables_have_the_spec_sizes_and_codes_round_trip() {
    assert_eq!(CertificateKind::ALL.len(), 20);
    assert_eq!(
        CertificateKind::ALL.iter().filter(|k| k.online()).count(),
        15
    );
    assert_eq!(Certifiability::ALL.len(), 5);
    assert_eq!(CivilStatus::ALL.len(), 8);
    assert!(
        CivilStatus::from_code(5).is_err(),
        "Tabella 01 has no code 5"
    );
    assert_eq!(Destination::ALL.len(), 5);
    for k in CertificateKind::ALL {
        assert_eq!(CertificateKind::from_code(k.code()).unwrap(), *k);
        assert_eq!(CertificateKind::from_slug(k.slug()).unwrap(), *k);
        let json = serde_json::to_string(k).unwrap();
        assert_eq!(json, k.code().to_string());
        assert_eq!(serde_json::from_str::<CertificateKind>(&json).unwrap(), *k);
    }
    for r in Relationship::ALL {
        assert_eq!(Relationship::from_code(r.code()).unwrap(), *r);
    }
    assert!(CertificateKind::from_code(0).is_err());
    assert!(CertificateKind::from_code(21).is_err());
    assert!(serde_json::from_str::<CertificateKind>("21").is_err());
    assert!(serde_json::from_str::<Certifiability>("5").is_err());
}

#[test]
fn slugs_are_the_contract() {
    let expected = [
        (1, "nascita"),
        (2, "morte"),
        (3, "matrimonio"),
        (4, "cancellazione"),
        (5, "cittadinanza"),
        (6, "storico-cittadinanza"),
        (7, "esistenza-in-vita"),
        (8, "residenza"),
        (9, "storico-residenza"),
        (10, "residenza-aire"),
        (11, "stato-civile"),
        (12, "stato-di-famiglia"),
        (13, "stato-di-famiglia-e-stato-civile"),
        (14, "residenza-in-convivenza"),
        (15, "stato-di-famiglia-aire"),
        (16, "stato-di-famiglia-con-parentela"),
        (17, "stato-libero"),
        (18, "unione-civile"),
        (19, "contratto-di-convivenza"),
        (20, "storico-residenza-alla-data"),
    ];
    for (code, slug) in expected {
        assert_eq!(CertificateKind::from_code(code).unwrap().slug(), slug);
    }
    for off in [2, 4, 6, 9, 20] {
        assert!(!CertificateKind::from_code(off).unwrap().online());
    }
}

#[test]
fn pre_2015_relationships_read_but_not_written() {
    for code in [14u16, 15, 19, 80] {
        let r = Relationship::from_code(code).unwrap();
        assert!(!r.is_current());
        assert_eq!(
            Relationship::writable(code),
            Err(DomainError::ObsoleteRelationship(code))
        );
    }
    assert_eq!(
        Relationship::writable(28).unwrap(),
        Relationship::UnitoCivilmente
    );
    assert!(Relationship::from_code(27).is_err());
}

#[test]
fn exemptions_and_fees() {
    for code in Exemption::CODES {
        let e = Exemption::from_code(code, Some("motivo")).unwrap();
        assert_eq!(e.code(), code);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Exemption>(&json).unwrap(), e);
    }
    let waive: Vec<u16> = Exemption::CODES
        .iter()
        .filter(|&&c| Exemption::from_code(c, Some("x")).unwrap().waives_fees())
        .copied()
        .collect();
    assert_eq!(waive, vec![4, 6, 7, 10]);
    assert!(Exemption::from_code(99, None).is_err());
    assert!(Exemption::from_code(99, Some("")).is_err());
    assert!(Exemption::from_code(99, Some(&"a".repeat(256))).is_ok());
    assert_eq!(
        Exemption::from_code(99, Some(&"à".repeat(257))),
        Err(DomainError::ExemptionDescription { length: 257 })
    );
    assert!(Exemption::from_code(0, None).is_err());
    assert!(Exemption::from_code(11, None).is_err());
    assert!(serde_json::from_str::<Exemption>("99").is_err());
}

#[test]
fn marca_is_fourteen_digits() {
    assert_eq!(
        MarcaId::parse(" 01234567890123 ").unwrap().as_str(),
        "01234567890123"
    );
    for bad in [
        "",
        "0123456789012",
        "012345678901234",
        "0123456789012a",
        "٠١٢٣٤٥٦٧٨٩٠١٢٣",
    ] {
        assert_eq!(MarcaId::parse(bad), Err(DomainError::BadMarca), "{bad:?}");
    }
    assert!(serde_json::from_str::<Stamp>(r#"{"marca":"123"}"#).is_err());
    let s: Stamp = serde_json::from_str(r#"{"marca":"01234567890123"}"#).unwrap();
    assert_eq!(s, Stamp::Marca(MarcaId::parse("01234567890123").unwrap()));
}

#[test]
fn family_rules_on_the_fixture() {
    let r = registry();
    let mario = rec(&r, MARIO);
    let ordinary = Purpose::ordinary();
    // Self and family members.
    for cf in [MARIO, LAURA, LUCA] {
        let e = eligibility(
            Some(&mario),
            &rec(&r, cf),
            CertificateKind::Residenza,
            &ordinary,
            TODAY,
        )
        .unwrap();
        assert_eq!(e.stamp_duty, StampDuty::Required { amount_cents: 1600 });
        assert_eq!(e.fee_cents, Some(FEE_WITH_BOLLO_CENTS));
    }
    // Another family.
    assert_eq!(
        eligibility(
            Some(&mario),
            &rec(&r, ANDREA),
            CertificateKind::Residenza,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotInFamily)
    );
    // Not a resident.
    let refusal =
        eligibility(None, &mario, CertificateKind::Residenza, &ordinary, TODAY).unwrap_err();
    assert_eq!(refusal, Refusal::RequesterNotResident);
    assert!(refusal.to_string().contains("ANPR"), "{refusal}");
    // Partial certifiability: only residenza and stato di famiglia.
    let giulia = rec(&r, GIULIA);
    assert!(eligibility(
        Some(&mario),
        &giulia,
        CertificateKind::StatoDiFamiglia,
        &ordinary,
        TODAY
    )
    .is_ok());
    assert_eq!(
        eligibility(
            Some(&mario),
            &giulia,
            CertificateKind::Cittadinanza,
            &ordinary,
            TODAY
        ),
        Err(Refusal::PartialCertifiability)
    );
    // Non certificabile.
    let antonio = rec(&r, ANTONIO);
    assert_eq!(
        eligibility(
            Some(&antonio),
            &rec(&r, ROSA),
            CertificateKind::Residenza,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NonCertifiable)
    );
    // Dead person.
    let giuseppe = rec(&r, GIUSEPPE);
    assert_eq!(
        eligibility(
            Some(&mario),
            &giuseppe,
            CertificateKind::EsistenzaInVita,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotApplicable {
            kind: CertificateKind::EsistenzaInVita,
            reason: NotApplicable::Deceased
        })
    );
    // Alive before the death date.
    assert!(eligibility(
        Some(&mario),
        &giuseppe,
        CertificateKind::EsistenzaInVita,
        &ordinary,
        date!(2024 - 01 - 01)
    )
    .is_ok());
    // Stato libero for a married person.
    assert_eq!(
        eligibility(
            Some(&mario),
            &mario,
            CertificateKind::StatoLibero,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotApplicable {
            kind: CertificateKind::StatoLibero,
            reason: NotApplicable::NotFree
        })
    );
    // Unione civile without one; with one.
    assert!(matches!(
        eligibility(
            Some(&mario),
            &mario,
            CertificateKind::UnioneCivile,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotApplicable {
            reason: NotApplicable::NoCivilUnion,
            ..
        })
    ));
    let andrea = rec(&r, ANDREA);
    let e = eligibility(
        Some(&andrea),
        &andrea,
        CertificateKind::UnioneCivile,
        &ordinary,
        TODAY,
    )
    .unwrap();
    assert!(
        matches!(e.stamp_duty, StampDuty::ExemptByLaw { ref legal_reference } if legal_reference.contains("405/1990"))
    );
    // AIRE.
    assert!(matches!(
        eligibility(
            Some(&mario),
            &mario,
            CertificateKind::StatoDiFamigliaAire,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotApplicable {
            reason: NotApplicable::NotInAire,
            ..
        })
    ));
    let roberto = rec(&r, ROBERTO);
    assert!(eligibility(
        Some(&roberto),
        &roberto,
        CertificateKind::StatoDiFamigliaAire,
        &ordinary,
        TODAY
    )
    .is_ok());
    assert!(matches!(
        eligibility(
            Some(&roberto),
            &roberto,
            CertificateKind::Residenza,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotApplicable {
            reason: NotApplicable::InAire,
            ..
        })
    ));
    // Not online.
    assert_eq!(
        eligibility(
            Some(&mario),
            &mario,
            CertificateKind::StoricoResidenza,
            &ordinary,
            TODAY
        ),
        Err(Refusal::NotOnline {
            kind: CertificateKind::StoricoResidenza
        })
    );
    // Destinations 2 and 3 need an exemption.
    for d in [Destination::Immigrazione, Destination::Giudiziaria] {
        let p = Purpose {
            destination: d,
            exemption: None,
        };
        assert_eq!(
            eligibility(Some(&mario), &mario, CertificateKind::Residenza, &p, TODAY),
            Err(Refusal::ExemptionRequired { destination: d })
        );
        let p = Purpose {
            destination: d,
            exemption: Some(Exemption::Processuale),
        };
        let e = eligibility(Some(&mario), &mario, CertificateKind::Residenza, &p, TODAY).unwrap();
        assert_eq!(
            e.stamp_duty,
            StampDuty::Exempt {
                exemption: Exemption::Processuale
            }
        );
        assert_eq!(e.fee_cents, Some(FEE_EXEMPT_CENTS));
        e.check_stamp(Some(&Stamp::Exempt(Exemption::Processuale)))
            .unwrap();
        assert!(e.check_stamp(None).is_err());
    }
    let p = Purpose {
        destination: Destination::Ordinaria,
        exemption: Some(Exemption::Adozione),
    };
    let e = eligibility(
        Some(&mario),
        &luca_rec(&r),
        CertificateKind::StatoDiFamiglia,
        &p,
        TODAY,
    )
    .unwrap();
    assert_eq!(e.fee_cents, None, "exemption 6 waives the fees");
    // The omocodic person, alone, found under her code as issued only: the base code belongs
    // to another person (here, to nobody).
    let francesca = rec(&r, FRANCESCA);
    assert!(francesca.person.codice_fiscale.is_omocodic());
    assert_eq!(francesca.members.len(), 1);
    let canonical = francesca.person.codice_fiscale.canonical();
    assert!(r.record(&canonical).is_none());
}

fn luca_rec(r: &Registry) -> RegistryRecord {
    rec(r, LUCA)
}

#[test]
fn every_refusal_is_one_italian_sentence() {
    let refusals = [
        Refusal::RequesterNotResident,
        Refusal::NotInFamily,
        Refusal::NonCertifiable,
        Refusal::PartialCertifiability,
        Refusal::NotRegistrable,
        Refusal::UnderGuardianship,
        Refusal::NotOnline {
            kind: CertificateKind::Morte,
        },
        Refusal::NotApplicable {
            kind: CertificateKind::StatoLibero,
            reason: NotApplicable::NotFree,
        },
        Refusal::ExemptionRequired {
            destination: Destination::Giudiziaria,
        },
    ];
    for r in refusals {
        let s = r.to_string();
        assert!(s.ends_with('.'), "{s}");
        assert!(s.chars().next().unwrap().is_uppercase(), "{s}");
        let sentences = s
            .split(". ")
            .skip(1)
            .filter(|rest| rest.chars().next().is_some_and(char::is_uppercase))
            .count();
        assert_eq!(sentences, 0, "one sentence: {s}");
    }
}

// ---- property tests ----

fn arb_record() -> impl Strategy<Value = RegistryRecord> {
    (
        "[A-Z]{3,10}",
        "[A-Z]{3,10}",
        1930i32..2024,
        1u8..=12,
        1u8..=28,
        any::<bool>(),
        prop::sample::select(CivilStatus::ALL.to_vec()),
        prop::sample::select(Certifiability::ALL.to_vec()),
        prop::option::of(prop::sample::select(Relationship::ALL.to_vec())),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        prop::option::of(0i64..40_000),
        prop::option::of(0u8..3),
    )
        .prop_map(
            |(
                sur,
                given,
                y,
                m,
                d,
                female,
                cs,
                cert,
                rel,
                (aire, married, union, conv),
                death,
                fam,
            )| {
                let birth =
                    Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
                let sex = if female {
                    tscns_cert::Sex::Female
                } else {
                    tscns_cert::Sex::Male
                };
                let cf = CodiceFiscale::compute(&sur, &given, birth, sex, "H769").unwrap();
                let family = fam.map(|f| Family {
                    id: format!("F{f}"),
                    address: Address {
                        street: "VIA ROMA".into(),
                        number: "1".into(),
                        postal_code: "63074".into(),
                    },
                    since: date!(2000 - 01 - 01),
                    convivenza: conv,
                });
                let ev = Event {
                    date: date!(2010 - 01 - 01),
                    place: "SAN BENEDETTO DEL TRONTO".into(),
                };
                let person = Person {
                    codice_fiscale: cf,
                    surname: sur,
                    given_name: given,
                    sex: if female { Sex::F } else { Sex::M },
                    birth_date: birth,
                    birth_place: Place {
                        municipality: "SAN BENEDETTO DEL TRONTO".into(),
                        cadastral_code: Some("H769".into()),
                        province: Some("AP".into()),
                        country: "ITALIA".into(),
                    },
                    citizenship: 100,
                    civil_status: cs,
                    family: family.as_ref().map(|f| f.id.clone()),
                    relationship: rel,
                    certifiability: cert,
                    father: None,
                    mother: None,
                    spouse: None,
                    marriage: married.then(|| ev.clone()),
                    partner: None,
                    civil_union: union.then(|| ev.clone()),
                    cohabitation_contract: None,
                    identity_card: None,
                    electoral_section: None,
                    digital_domicile: None,
                    registered: None,
                    death_date: death.map(|n| birth + time::Duration::days(n)),
                    aire,
                    aire_residence: None,
                };
                let members = vec![FamilyMember::from(&person)];
                RegistryRecord {
                    municipality: Municipality {
                        name: "San Benedetto del Tronto".into(),
                        cadastral_code: "H769".into(),
                        istat_code: "044066".into(),
                        province: "AP".into(),
                    },
                    person,
                    family,
                    members,
                }
            },
        )
}

fn arb_purpose() -> impl Strategy<Value = Purpose> {
    (
        prop::sample::select(Destination::ALL.to_vec()),
        prop::option::of(prop::sample::select(Exemption::CODES.to_vec())),
    )
        .prop_map(|(destination, e)| Purpose {
            destination,
            exemption: e.map(|c| Exemption::from_code(c, Some("motivo")).unwrap()),
        })
}

/// Adds `subject` to `requester`'s family (same family id, listed as a member).
/// Puts `subject` in `requester`'s famiglia (never a convivenza: its residents are not each
/// other's family).
fn join(requester: &mut RegistryRecord, subject: &mut RegistryRecord) {
    let mut fam = requester.family.clone().unwrap_or(Family {
        id: "FX".into(),
        address: Address {
            street: "VIA ROMA".into(),
            number: "1".into(),
            postal_code: "63074".into(),
        },
        since: date!(2000 - 01 - 01),
        convivenza: false,
    });
    fam.convivenza = false;
    requester.family = Some(fam.clone());
    subject.family = Some(fam.clone());
    requester.person.family = Some(fam.id.clone());
    subject.person.family = Some(fam.id);
    requester.members.push(FamilyMember::from(&subject.person));
    subject.members = requester.members.clone();
}

proptest! {
    #[test]
    fn every_code_round_trips(code in 0u16..200) {
        if let Ok(k) = CertificateKind::from_code(code) { prop_assert_eq!(k.code(), code); }
        if let Ok(k) = Certifiability::from_code(code) { prop_assert_eq!(k.code(), code); }
        if let Ok(k) = CivilStatus::from_code(code) { prop_assert_eq!(k.code(), code); }
        if let Ok(k) = Relationship::from_code(code) {
            prop_assert_eq!(k.code(), code);
            let back: Relationship = serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
            prop_assert_eq!(back, k);
        }
        if let Ok(k) = Destination::from_code(code) { prop_assert_eq!(k.code(), code); }
        if let Ok(e) = Exemption::from_code(code, Some("x")) { prop_assert_eq!(e.code(), code); }
    }

    #[test]
    fn eligibility_never_panics(a in arb_record(), b in arb_record(), k in 1u16..=20, p in arb_purpose(), days in 0i64..40_000) {
        let kind = CertificateKind::from_code(k).unwrap();
        let today = date!(1930 - 01 - 01) + time::Duration::days(days);
        let _ = eligibility(Some(&a), &b, kind, &p, today);
        let _ = eligibility(None, &b, kind, &p, today);
        let _ = eligibility(Some(&a), &a, kind, &p, today);
    }

    #[test]
    fn a_strangers_certificate_is_never_allowed(a in arb_record(), b in arb_record(), k in 1u16..=20, p in arb_purpose()) {
        prop_assume!(a.person.codice_fiscale != b.person.codice_fiscale);
        let mut b = b;
        // A stranger: another family, or the same family id without being listed in it.
        if b.family.is_some() && b.family == a.family {
            b.family.as_mut().unwrap().id.push('X');
        }
        let kind = CertificateKind::from_code(k).unwrap();
        prop_assert_eq!(eligibility(Some(&a), &b, kind, &p, TODAY), Err(Refusal::NotInFamily));
    }

    #[test]
    fn a_fellow_resident_of_a_convivenza_is_never_family(
        a in arb_record(), b in arb_record(), k in 1u16..=20, p in arb_purpose()
    ) {
        let (mut a, mut b) = (a, b);
        prop_assume!(a.person.codice_fiscale != b.person.codice_fiscale);
        join(&mut a, &mut b);
        a.family.as_mut().unwrap().convivenza = true;
        b.family.as_mut().unwrap().convivenza = true;
        let kind = CertificateKind::from_code(k).unwrap();
        prop_assert_eq!(eligibility(Some(&a), &b, kind, &p, TODAY), Err(Refusal::NotInFamily));
    }

    #[test]
    fn a_family_members_certificate_is_allowed_when_certifiability_is_complete(
        a in arb_record(), b in arb_record(), p in arb_purpose()
    ) {
        let (mut a, mut b) = (a, b);
        prop_assume!(a.person.codice_fiscale != b.person.codice_fiscale);
        b.person.certifiability = Certifiability::Completa;
        b.person.death_date = None;
        b.person.aire = false;
        join(&mut a, &mut b);
        let p = Purpose { destination: if p.destination.requires_exemption() && p.exemption.is_none() { Destination::Ordinaria } else { p.destination }, ..p };
        // Kinds that apply to every living resident.
        for kind in [CertificateKind::Nascita, CertificateKind::Cittadinanza, CertificateKind::Residenza, CertificateKind::StatoCivile, CertificateKind::StatoDiFamiglia, CertificateKind::EsistenzaInVita] {
            let e = eligibility(Some(&a), &b, kind, &p, TODAY);
            prop_assert!(e.is_ok(), "{:?}: {:?}", kind, e);
        }
    }
}
