//! The registry record (visura): generalità, stato civile, cittadinanza, paternità/maternità,
//! residenza and famiglia, carta d'identità, lista elettorale, domicilio digitale,
//! iscrizione/cancellazione, certificabilità, AIRE.

use serde::{Deserialize, Serialize};
use time::Date;
use tscns_cert::CodiceFiscale;

use super::{Certifiability, CivilStatus, Relationship};

/// Serde of a [`CodiceFiscale`] as its 16-character string, checked on the way in.
pub(crate) mod cf_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use tscns_cert::CodiceFiscale;

    /// Writes the code as written.
    pub fn serialize<S: Serializer>(cf: &CodiceFiscale, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(cf.as_str())
    }

    /// Reads and validates a code (check letter included).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CodiceFiscale, D::Error> {
        let s = String::deserialize(d)?;
        CodiceFiscale::parse(&s).map_err(serde::de::Error::custom)
    }

    /// The same for an optional code.
    pub mod option {
        use super::*;

        /// Writes the code or null.
        pub fn serialize<S: Serializer>(
            cf: &Option<CodiceFiscale>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match cf {
                Some(cf) => s.serialize_some(cf.as_str()),
                None => s.serialize_none(),
            }
        }

        /// Reads an optional code.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<CodiceFiscale>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => CodiceFiscale::parse(&s)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

/// Serde of a [`Date`] as ISO 8601 `YYYY-MM-DD`.
pub(crate) mod date_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;
    use time::Date;

    const FORMAT: &[time::format_description::FormatItem<'static>] =
        format_description!("[year]-[month]-[day]");

    /// Writes `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        let text = d.format(FORMAT).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    /// Reads `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s, FORMAT)
            .map_err(|e| serde::de::Error::custom(format!("date {s:?} is not YYYY-MM-DD: {e}")))
    }

    /// The same for an optional date.
    pub mod option {
        use super::*;

        /// Writes the date or null.
        pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        /// Reads an optional date.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => Date::parse(&s, FORMAT).map(Some).map_err(|e| {
                    serde::de::Error::custom(format!("date {s:?} is not YYYY-MM-DD: {e}"))
                }),
                None => Ok(None),
            }
        }
    }

    /// Formats a date the Italian way, `01/02/2024`.
    pub fn italian(d: Date) -> String {
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    }
}

/// Sex as the registry records it: `"M"` or `"F"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    /// Maschio.
    #[serde(rename = "M")]
    M,
    /// Femmina.
    #[serde(rename = "F")]
    F,
}

/// The municipality whose registry this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Municipality {
    /// Name, e.g. "San Benedetto del Tronto".
    pub name: String,
    /// Cadastral (Belfiore) code, e.g. "H769".
    pub cadastral_code: String,
    /// ISTAT code, e.g. "044066".
    pub istat_code: String,
    /// Province abbreviation, e.g. "AP".
    pub province: String,
}

/// An address in the municipality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street, e.g. "VIA ROMA".
    pub street: String,
    /// House number, e.g. "1" or "12/B".
    pub number: String,
    /// Postal code (CAP).
    pub postal_code: String,
}

/// A famiglia anagrafica (or a convivenza) and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    /// Identifier inside the registry file, e.g. "F0001".
    pub id: String,
    /// Residence address.
    pub address: Address,
    /// Resident at this address since.
    #[serde(with = "date_serde")]
    pub since: Date,
    /// True for a convivenza (DPR 223/1989 art. 5) rather than a famiglia.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub convivenza: bool,
}

/// A place of birth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Municipality (or foreign town) name.
    pub municipality: String,
    /// Cadastral code (Italian municipality) or Z-code (foreign country).
    #[serde(default)]
    pub cadastral_code: Option<String>,
    /// Province abbreviation (Italian places).
    #[serde(default)]
    pub province: Option<String>,
    /// Country name.
    pub country: String,
}

/// A marriage, civil union or cohabitation contract: date and place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Date of the act.
    #[serde(with = "date_serde")]
    pub date: Date,
    /// Where it was celebrated or registered.
    pub place: String,
}

/// The carta d'identità on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCard {
    /// Card number, e.g. "CA00000AA".
    pub number: String,
    /// Expiry date.
    #[serde(with = "date_serde")]
    pub expiry: Date,
}

/// Registration in this municipality's registry (iscrizione).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Date of registration.
    #[serde(with = "date_serde")]
    pub date: Date,
    /// Municipality or country it came from; absent for birth in the municipality.
    #[serde(default)]
    pub from: Option<String>,
}

/// Residence abroad of a person registered in AIRE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AireResidence {
    /// Country, e.g. "GERMANIA".
    pub country: String,
    /// Town, e.g. "BERLINO".
    pub city: String,
    /// Street address.
    pub address: String,
}

/// One person of the registry, as the fixture file writes them (field names are a contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Codice fiscale, checked.
    #[serde(with = "cf_serde")]
    pub codice_fiscale: CodiceFiscale,
    /// Cognome.
    pub surname: String,
    /// Nome.
    pub given_name: String,
    /// Sesso.
    pub sex: Sex,
    /// Data di nascita.
    #[serde(with = "date_serde")]
    pub birth_date: Date,
    /// Luogo di nascita.
    pub birth_place: Place,
    /// Cittadinanza: ISTAT country code (100 = Italia).
    pub citizenship: u16,
    /// Stato civile (Tabella 01).
    pub civil_status: CivilStatus,
    /// The family (id in `families`) the person belongs to.
    #[serde(default)]
    pub family: Option<String>,
    /// Relationship to the head of the family (Tabella 05).
    #[serde(default)]
    pub relationship: Option<Relationship>,
    /// Certificabilità (Tabella 42).
    pub certifiability: Certifiability,
    /// Paternità: the father's name.
    #[serde(default)]
    pub father: Option<String>,
    /// Maternità: the mother's name.
    #[serde(default)]
    pub mother: Option<String>,
    /// Spouse's codice fiscale.
    #[serde(default, with = "cf_serde::option")]
    pub spouse: Option<CodiceFiscale>,
    /// Marriage.
    #[serde(default)]
    pub marriage: Option<Event>,
    /// Civil-union partner's codice fiscale.
    #[serde(default, with = "cf_serde::option")]
    pub partner: Option<CodiceFiscale>,
    /// Civil union (L. 76/2016).
    #[serde(default)]
    pub civil_union: Option<Event>,
    /// Cohabitation contract (contratto di convivenza, L. 76/2016 c. 50).
    #[serde(default)]
    pub cohabitation_contract: Option<Event>,
    /// Carta d'identità.
    #[serde(default)]
    pub identity_card: Option<IdentityCard>,
    /// Electoral section (lista elettorale).
    #[serde(default)]
    pub electoral_section: Option<u32>,
    /// Domicilio digitale (PEC address).
    #[serde(default)]
    pub digital_domicile: Option<String>,
    /// Iscrizione.
    #[serde(default)]
    pub registered: Option<Registration>,
    /// Date of death.
    #[serde(default, with = "date_serde::option")]
    pub death_date: Option<Date>,
    /// Registered in AIRE (Italians resident abroad).
    #[serde(default)]
    pub aire: bool,
    /// Residence abroad, for AIRE.
    #[serde(default)]
    pub aire_residence: Option<AireResidence>,
}

impl Person {
    /// "MARIO ROSSI".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.surname)
    }

    /// Whether the person had died on `day`.
    pub fn is_dead_on(&self, day: Date) -> bool {
        self.death_date.is_some_and(|d| d <= day)
    }
}

/// A member of a family, as a family certificate lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyMember {
    /// Codice fiscale.
    #[serde(with = "cf_serde")]
    pub codice_fiscale: CodiceFiscale,
    /// Cognome.
    pub surname: String,
    /// Nome.
    pub given_name: String,
    /// Sesso.
    pub sex: Sex,
    /// Data di nascita.
    #[serde(with = "date_serde")]
    pub birth_date: Date,
    /// Place of birth (municipality name).
    pub birth_municipality: String,
    /// Relationship to the head (Tabella 05).
    pub relationship: Option<Relationship>,
    /// Date of death, if any.
    #[serde(default, with = "date_serde::option")]
    pub death_date: Option<Date>,
}

impl FamilyMember {
    /// Whether the member had died on `day` (then no longer part of the family that day).
    pub fn is_dead_on(&self, day: Date) -> bool {
        self.death_date.is_some_and(|d| d <= day)
    }
}

impl From<&Person> for FamilyMember {
    fn from(p: &Person) -> Self {
        FamilyMember {
            codice_fiscale: p.codice_fiscale.clone(),
            surname: p.surname.clone(),
            given_name: p.given_name.clone(),
            sex: p.sex,
            birth_date: p.birth_date,
            birth_municipality: p.birth_place.municipality.clone(),
            relationship: p.relationship,
            death_date: p.death_date,
        }
    }
}

/// Everything the registry knows about one person: their record, their municipality, and their
/// family with its members (the subject included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// The municipality of the registry.
    pub municipality: Municipality,
    /// The person.
    pub person: Person,
    /// Their family and address, if they belong to one.
    pub family: Option<Family>,
    /// Members of that family (the person included), head first. For a convivenza anagrafica,
    /// the person alone: its residents are not each other's family.
    pub members: Vec<FamilyMember>,
}

impl RegistryRecord {
    /// Whether `cf` is a member of this record's family (the person included). Codes are
    /// compared exactly as issued: an omocodic code is a different person from its base code.
    pub fn family_has(&self, cf: &CodiceFiscale) -> bool {
        self.members.iter().any(|m| m.codice_fiscale == *cf)
    }

    /// Whether `other` is the same person as this record's.
    pub fn is_same_person(&self, other: &RegistryRecord) -> bool {
        self.person.codice_fiscale == other.person.codice_fiscale
    }
}
