//! The registry fixture: the shipped file loads and covers the cases the issue lists, the schema
//! agrees with the loader, and every kind of bad input is refused with its JSON path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{json, Value};
use tscns_cert::CodiceFiscale;
use tscns_cityportal::domain::{Certifiability, CivilStatus, Relationship};
use tscns_cityportal::registry::Registry;

fn fixture() -> Value {
    serde_json::from_str(tscns_cityportal::SAN_BENEDETTO_FIXTURE).unwrap()
}

fn load(v: &Value) -> Result<Registry, tscns_cityportal::registry::RegistryError> {
    Registry::from_json(serde_json::to_vec(v).unwrap().as_slice())
}

#[test]
fn the_fixture_covers_the_required_cases() {
    let r = load(&fixture()).unwrap();
    assert_eq!(r.municipality().cadastral_code, "H769");
    assert_eq!(r.municipality().istat_code, "044066");
    assert!(r.people().len() >= 12);
    assert!(r.families().len() >= 4);
    let people = r.people();
    // The default simulated card's holder, with a family.
    let mario = r
        .record(&CodiceFiscale::parse("RSSMRA80A01H501U").unwrap())
        .unwrap();
    let fam = mario.family.as_ref().unwrap();
    assert_eq!(
        (fam.address.street.as_str(), fam.address.number.as_str()),
        ("VIA ROMA", "1")
    );
    assert!(mario.members.len() >= 3);
    // Married couple with children.
    assert_eq!(mario.person.civil_status, CivilStatus::Coniugato);
    assert!(mario
        .members
        .iter()
        .any(|m| m.relationship == Some(Relationship::Figlio)));
    assert!(mario
        .members
        .iter()
        .any(|m| m.relationship == Some(Relationship::Coniuge)));
    // Civil union, partial, non certifiable, dead, AIRE, omocodic, alone.
    assert!(people
        .iter()
        .any(|p| p.civil_status == CivilStatus::UnitoCivilmente && p.civil_union.is_some()));
    assert!(people
        .iter()
        .any(|p| p.certifiability == Certifiability::Parziale));
    assert!(people
        .iter()
        .any(|p| p.certifiability == Certifiability::NonCertificabile));
    assert!(people.iter().any(|p| p.death_date.is_some()));
    assert!(people.iter().any(|p| p.aire));
    assert!(people.iter().any(|p| p.codice_fiscale.is_omocodic()));
    assert!(r.families().iter().any(|f| people
        .iter()
        .filter(|p| p.family.as_deref() == Some(&f.id))
        .count()
        == 1));
}

#[test]
fn holders_of_the_other_simulated_cards_live_elsewhere() {
    let r = load(&fixture()).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tscns-sim/profiles");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let field = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.split('"').nth(1))
                    .map(str::to_string)
            })
        };
        let (Some(cf), Some(town)) = (field("codice_fiscale ="), field("residence_municipality ="))
        else {
            continue;
        };
        seen += 1;
        let found = r.person(&CodiceFiscale::parse(&cf).unwrap());
        assert_eq!(found.is_some(), town == "H769", "{cf} lives in {town}");
    }
    assert!(seen >= 5);
}

/// Every property the schema names is a field the loader accepts, at every level, and the
/// schema forbids others exactly where the loader does.
#[test]
fn the_schema_agrees_with_the_loader() {
    let schema: Value = serde_json::from_str(include_str!("../registry.schema.json")).unwrap();
    fn walk(schema: &Value, path: &str, out: &mut Vec<(String, BTreeSet<String>, Vec<String>)>) {
        let s = schema
            .get("oneOf")
            .and_then(|o| o.as_array())
            .and_then(|a| a.iter().find(|x| x.get("type") != Some(&json!("null"))))
            .unwrap_or(schema);
        if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
            assert_eq!(s["additionalProperties"], json!(false), "{path}");
            let req = s["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            out.push((path.to_string(), props.keys().cloned().collect(), req));
            for (k, v) in props {
                walk(v, &format!("{path}.{k}"), out);
            }
        }
        if let Some(items) = s.get("items") {
            walk(items, &format!("{path}[]"), out);
        }
    }
    let mut objects = Vec::new();
    walk(&schema, "", &mut objects);
    assert!(objects.len() >= 10);
    // A maximal document: every optional field of the schema filled in, must load.
    let mut doc = fixture();
    let mario = &mut doc["people"][0];
    mario["partner"] = json!(null);
    mario["civil_union"] = json!(null);
    mario["cohabitation_contract"] =
        json!({"date": "2009-01-01", "place": "SAN BENEDETTO DEL TRONTO"});
    mario["aire_residence"] = json!(null);
    doc["families"][0]["convivenza"] = json!(false);
    load(&doc).unwrap();
    let person_props = &objects.iter().find(|(p, _, _)| p == ".people[]").unwrap().1;
    let filled: BTreeSet<String> = doc["people"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        &filled, person_props,
        "schema properties vs a fully filled person"
    );
    // Each required field, removed, is refused; each other field, removed, is accepted.
    for (path, props, required) in &objects {
        if path != ".people[]" {
            continue;
        }
        for p in props {
            let mut d = fixture();
            d["people"][0].as_object_mut().unwrap().remove(p);
            if p == "family" {
                // A relationship to the head is meaningless without a family (checked apart).
                d["people"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("relationship");
            }
            assert_eq!(load(&d).is_ok(), !required.contains(p), "people[0].{p}");
        }
    }
    // An unknown field is refused at every object level.
    for (pointer, name) in [
        ("", "municipality"),
        ("/municipality", "name"),
        ("/families/0", "id"),
        ("/families/0/address", "street"),
        ("/people/0", "surname"),
        ("/people/0/birth_place", "country"),
    ] {
        let mut d = fixture();
        d.pointer_mut(pointer)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert("nickname".into(), json!("x"));
        let e = load(&d).unwrap_err();
        assert!(e.reason.contains("nickname"), "{pointer} ({name}): {e}");
    }
}

fn refused(mutate: impl FnOnce(&mut Value)) -> tscns_cityportal::registry::RegistryError {
    let mut d = fixture();
    mutate(&mut d);
    load(&d).unwrap_err()
}

#[test]
fn bad_input_is_refused_with_its_path() {
    let e = refused(|d| d["people"][2]["nickname"] = json!("x"));
    assert_eq!(e.path, "people[2].nickname");
    let e = refused(|d| d["people"][3]["civil_status"] = json!(5));
    assert_eq!(e.path, "people[3].civil_status");
    assert!(e.reason.contains("unknown code 5"), "{e}");
    let e = refused(|d| d["people"][1]["codice_fiscale"] = json!("BNCLRA82B41H769K"));
    assert_eq!(e.path, "people[1].codice_fiscale");
    let e = refused(|d| d["people"][1]["spouse"] = json!("RSSMRA80A01H501X"));
    assert_eq!(e.path, "people[1].spouse");
    let e = refused(|d| d["people"][4]["family"] = json!("F9999"));
    assert_eq!(e.path, "people[4].family");
    assert!(e.reason.contains("F9999"));
    let e = refused(|d| d["people"][1]["relationship"] = json!(1));
    assert_eq!(e.path, "people[1].relationship");
    assert!(e.reason.contains("people[0]"), "{e}");
    let e = refused(|d| {
        let dup = d["people"][0].clone();
        d["people"].as_array_mut().unwrap().push(dup);
    });
    assert!(
        e.path.ends_with(".codice_fiscale") && e.reason.contains("duplicate"),
        "{e}"
    );
    // An omocodic variant of a present code is another person: it imports.
    let mut d: serde_json::Value =
        serde_json::from_str(tscns_cityportal::SAN_BENEDETTO_FIXTURE).unwrap();
    {
        let mut dup = d["people"][8].clone();
        dup["codice_fiscale"] = json!("VRDNTN60H30H76VF");
        let cf = CodiceFiscale::parse("VRDNTN60H30H769F").unwrap();
        let variant = cf
            .omocodic_variants()
            .into_iter()
            .find(|v| *v != cf)
            .unwrap();
        dup["codice_fiscale"] = json!(variant.as_str());
        dup["relationship"] = json!(9);
        d["people"].as_array_mut().unwrap().push(dup);
    }
    let both = Registry::from_json(d.to_string().as_bytes()).expect("an omocodic variant imports");
    assert_eq!(both.people().len(), d["people"].as_array().unwrap().len());
    let e = refused(|d| d["people"][0]["birth_date"] = json!("1980-13-01"));
    assert_eq!(e.path, "people[0].birth_date");
    let e = refused(|d| d["families"][1]["id"] = json!("F0001"));
    assert_eq!(e.path, "families[1].id");
    let e = refused(|d| d["people"][0]["certifiability"] = json!(7));
    assert_eq!(e.path, "people[0].certifiability");
    assert!(Registry::from_json(b"{").is_err());
    assert!(Registry::from_json(b"").is_err());
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let mut d = fixture();
    for field in [
        "father",
        "mother",
        "spouse",
        "marriage",
        "identity_card",
        "electoral_section",
        "digital_domicile",
        "registered",
        "death_date",
        "aire",
    ] {
        d["people"][0][field] = json!(null);
        if field == "aire" {
            d["people"][0].as_object_mut().unwrap().remove("aire");
        }
    }
    let r = load(&d).unwrap();
    assert!(r.people()[0].marriage.is_none());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Registry::from_json(&bytes);
    }

    #[test]
    fn mutated_fixture_never_panics(idx in 0usize..12, field in prop::sample::select(vec!["civil_status", "relationship", "certifiability", "family", "codice_fiscale", "birth_date", "death_date", "citizenship"]), value in prop_oneof![any::<i64>().prop_map(|n| json!(n)), "[A-Z0-9-]{0,20}".prop_map(|s| json!(s)), Just(json!(null))]) {
        let mut d = fixture();
        d["people"][idx][field] = value;
        if let Ok(r) = load(&d) {
            for p in r.people() {
                prop_assert!(r.record(&p.codice_fiscale).is_some());
            }
        }
    }
}
