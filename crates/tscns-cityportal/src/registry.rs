//! The registry fixture: one JSON file per municipality (a contract: field names are never
//! renamed; its JSON Schema is `registry.schema.json` at the root of this crate).
//!
//! Loading is all or nothing: the first bad input is reported with its JSON path and the reason,
//! and nothing is half-loaded.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tscns_cert::CodiceFiscale;

use crate::domain::{Family, FamilyMember, Municipality, Person, RegistryRecord, Relationship};

/// A registry file that could not be loaded: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry file, at {path}: {reason}")]
pub struct RegistryError {
    /// JSON path of the bad value, e.g. `people[3].codice_fiscale` (`.` for the whole file).
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RegistryError {
    fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        RegistryError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The file as written: municipality, families, people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// The municipality.
    pub municipality: Municipality,
    /// Families (and convivenze).
    pub families: Vec<Family>,
    /// People.
    pub people: Vec<Person>,
}

/// A validated registry of one municipality, indexed by codice fiscale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    file: RegistryFile,
    /// Codice fiscale, exactly as issued -> index in `people`.
    by_cf: HashMap<String, usize>,
    /// Family id -> index in `families`.
    by_family: HashMap<String, usize>,
}

/// The largest registry file [`Registry::from_json`] accepts (64 MiB).
pub const MAX_REGISTRY_BYTES: usize = 64 << 20;

impl Registry {
    /// Parses and validates a registry file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RegistryError> {
        if bytes.len() > MAX_REGISTRY_BYTES {
            return Err(RegistryError::at(
                ".",
                format!("the file is larger than {MAX_REGISTRY_BYTES} bytes"),
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let file: RegistryFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            RegistryError::at(path, e.into_inner().to_string())
        })?;
        Registry::from_file(file)
    }

    /// Validates an already parsed file: families exist and are unique, one head per family,
    /// no person twice. Codes are compared exactly as issued: an omocodic code belongs to a
    /// different person from the one holding the base code (that is why it was issued).
    pub fn from_file(file: RegistryFile) -> Result<Self, RegistryError> {
        let mut by_family = HashMap::new();
        for (i, f) in file.families.iter().enumerate() {
            if f.id.trim().is_empty() {
                return Err(RegistryError::at(
                    format!("families[{i}].id"),
                    "a family needs a non-empty id",
                ));
            }
            if let Some(j) = by_family.insert(f.id.clone(), i) {
                return Err(RegistryError::at(
                    format!("families[{i}].id"),
                    format!("family {:?} is already defined at families[{j}]", f.id),
                ));
            }
        }
        let mut by_cf = HashMap::new();
        let mut heads: HashMap<&str, usize> = HashMap::new();
        for (i, p) in file.people.iter().enumerate() {
            let key = p.codice_fiscale.as_str().to_string();
            if let Some(j) = by_cf.insert(key, i) {
                return Err(RegistryError::at(
                    format!("people[{i}].codice_fiscale"),
                    format!(
                        "{} is the same person as people[{j}] (duplicate codice fiscale)",
                        p.codice_fiscale.as_str()
                    ),
                ));
            }
            if let Some(fam) = &p.family {
                if !by_family.contains_key(fam) {
                    return Err(RegistryError::at(
                        format!("people[{i}].family"),
                        format!("family {fam:?} does not exist in `families`"),
                    ));
                }
                if p.relationship == Some(Relationship::Intestatario) {
                    if let Some(j) = heads.insert(fam.as_str(), i) {
                        return Err(RegistryError::at(
                            format!("people[{i}].relationship"),
                            format!("family {fam:?} already has a head (intestatario scheda) at people[{j}]"),
                        ));
                    }
                }
            } else if p.relationship.is_some() {
                return Err(RegistryError::at(
                    format!("people[{i}].relationship"),
                    "a relationship to the head needs a family",
                ));
            }
            if p.birth_date > p.death_date.unwrap_or(p.birth_date) {
                return Err(RegistryError::at(
                    format!("people[{i}].death_date"),
                    "the date of death is before the date of birth",
                ));
            }
        }
        Ok(Registry {
            file,
            by_cf,
            by_family,
        })
    }

    /// The municipality.
    pub fn municipality(&self) -> &Municipality {
        &self.file.municipality
    }

    /// Every person, in file order.
    pub fn people(&self) -> &[Person] {
        &self.file.people
    }

    /// Every family, in file order.
    pub fn families(&self) -> &[Family] {
        &self.file.families
    }

    /// The file this registry was loaded from.
    pub fn file(&self) -> &RegistryFile {
        &self.file
    }

    /// The person with exactly this codice fiscale (an omocodic variant is another person).
    pub fn person(&self, cf: &CodiceFiscale) -> Option<&Person> {
        self.by_cf
            .get(cf.as_str())
            .and_then(|&i| self.file.people.get(i))
    }

    /// The full record of a person: their family and its members, head first.
    pub fn record(&self, cf: &CodiceFiscale) -> Option<RegistryRecord> {
        let person = self.person(cf)?.clone();
        let family = person
            .family
            .as_ref()
            .and_then(|id| self.by_family.get(id))
            .and_then(|&i| self.file.families.get(i))
            .cloned();
        let members: Vec<Person> = match &family {
            Some(f) => self
                .file
                .people
                .iter()
                .filter(|p| p.family.as_deref() == Some(f.id.as_str()))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Some(build_record(
            self.file.municipality.clone(),
            person,
            family,
            &members,
        ))
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.file).unwrap_or_default()
    }
}

/// Builds a record from a person, their family and the people of that family: members head
/// first, then by relationship code (the person alone when they have no family).
///
/// The residents of a convivenza anagrafica (DPR 223/1989 art. 5: a barracks, a care home, a
/// religious community) are not each other's family: for them the members are the person
/// alone, so no resident sees or certifies another (the responsabile included).
pub(crate) fn build_record(
    municipality: Municipality,
    person: Person,
    family: Option<Family>,
    family_people: &[Person],
) -> RegistryRecord {
    let mut members: Vec<FamilyMember> = if family.as_ref().is_some_and(|f| !f.convivenza) {
        family_people.iter().map(FamilyMember::from).collect()
    } else {
        vec![FamilyMember::from(&person)]
    };
    members.sort_by(|a, b| {
        let key = |m: &FamilyMember| (m.relationship.map_or(u16::MAX, |r| r.code()), m.birth_date);
        key(a)
            .cmp(&key(b))
            .then_with(|| a.codice_fiscale.as_str().cmp(b.codice_fiscale.as_str()))
    });
    RegistryRecord {
        municipality,
        person,
        family,
        members,
    }
}
