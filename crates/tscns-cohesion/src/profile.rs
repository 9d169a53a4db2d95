//! The citizen's profile returned by GetCredential (Regione Marche's CohesionID-Docs, Profile).

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;
use tscns_cert::CodiceFiscale;

use crate::error::{Error, Result};
use crate::xml;

/// How the citizen authenticated (`tipo_autenticazione`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthenticationType {
    /// `PW`: password (SPID/CIE level 1).
    Password,
    /// `PIN`: password and PIN or OTP (SPID/CIE level 2).
    PasswordPin,
    /// `CF`: CNS smart card (class SmartcardPKI), CIE level 3, eIDAS high.
    SmartCard,
    /// `DRM`: the Regione's Windows domain. Not on the PW < PIN < CF scale.
    Domain,
    /// Any other value Cohesion may send; never meets a level requirement.
    Other(String),
}

/// The ordered strength of a login: `Password < PasswordPin < SmartCard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthLevel {
    /// PW.
    Password,
    /// PIN.
    PasswordPin,
    /// CF.
    SmartCard,
}

impl AuthenticationType {
    /// Parses `tipo_autenticazione`.
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "PW" => Self::Password,
            "PIN" => Self::PasswordPin,
            "CF" => Self::SmartCard,
            "DRM" => Self::Domain,
            other => Self::Other(other.to_owned()),
        }
    }
    /// The code Cohesion uses.
    pub fn code(&self) -> &str {
        match self {
            Self::Password => "PW",
            Self::PasswordPin => "PIN",
            Self::SmartCard => "CF",
            Self::Domain => "DRM",
            Self::Other(s) => s,
        }
    }
    /// The level on the PW < PIN < CF scale; `None` for domain and unknown logins.
    pub fn level(&self) -> Option<AuthLevel> {
        match self {
            Self::Password => Some(AuthLevel::Password),
            Self::PasswordPin => Some(AuthLevel::PasswordPin),
            Self::SmartCard => Some(AuthLevel::SmartCard),
            _ => None,
        }
    }
}

impl fmt::Display for AuthenticationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Password => "password (PW)",
            Self::PasswordPin => "password and PIN/OTP (PIN)",
            Self::SmartCard => "smart card (CF)",
            Self::Domain => "Regione domain (DRM)",
            Self::Other(s) => return write!(f, "unknown method {s:?}"),
        };
        f.write_str(name)
    }
}

/// Every field documented for the classic profile, in the documented order.
pub const CLASSIC_FIELDS: [&str; 30] = [
    "titolo",
    "nome",
    "cognome",
    "sesso",
    "login",
    "codice_fiscale",
    "telefono",
    "localita_nascita",
    "provincia_nascita",
    "cap_nascita",
    "regione_nascita",
    "data_nascita",
    "nazione_nascita",
    "gruppo",
    "ruolo",
    "email",
    "email_certificata",
    "telefono_ufficio",
    "fax_ufficio",
    "numero_cellulare",
    "indirizzo_residenza",
    "localita_residenza",
    "provincia_residenza",
    "cap_residenza",
    "regione_residenza",
    "nazione_residenza",
    "professione",
    "settore_azienda",
    "profilo_familiare",
    "tipo_autenticazione",
];

/// The fields SAML mode adds.
pub const SAML_FIELDS: [&str; 13] = [
    "placeOfBirth",
    "address",
    "gender",
    "digitalAddress",
    "familyName",
    "name",
    "dateOfBirth",
    "spidCode",
    "countyOfBirth",
    "fiscalNumber",
    "companyFiscalNumber",
    "ivaCode",
    "samlResponseBase64",
];

/// The old name of [`UserProfile`] (tscns-card and tscns-sim had profiles of their own). Kept
/// without `#[deprecated]` for now so that the crate's other modules can move at their pace.
pub type Profile = UserProfile;

/// The citizen's profile. Raw values of every element are kept ([`UserProfile::get`]); the fields a
/// site decides on are typed.
#[derive(Clone, PartialEq, Eq)]
pub struct UserProfile {
    fields: BTreeMap<String, String>,
    login: String,
    codice_fiscale: Option<CodiceFiscale>,
    authentication: Option<AuthenticationType>,
    timestamp: Option<OffsetDateTime>,
    date_of_birth: Option<time::Date>,
}

impl fmt::Debug for UserProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data: show only what identifies the login, not the whole record.
        f.debug_struct("UserProfile")
            .field("login", &self.login)
            .field("authentication", &self.authentication)
            .field("timestamp", &self.timestamp)
            .field("fields", &self.fields.len())
            .finish()
    }
}

fn no_namespace(n: roxmltree::Node<'_, '_>) -> bool {
    n.tag_name().namespace().is_none_or(str::is_empty)
}

fn strip_tinit(s: &str) -> &str {
    // SPID fiscalNumber carries the ETSI "TIN" + country prefix (TINIT-), Regione Marche's CohesionID-Docs, Profile.
    s.strip_prefix("TINIT-").unwrap_or(s)
}

impl UserProfile {
    /// Parses a `<profile>` element (no namespace) with its `<base>` child.
    pub(crate) fn from_element(what: &'static str, node: roxmltree::Node<'_, '_>) -> Result<Self> {
        if node.tag_name().name() != "profile" || !no_namespace(node) {
            return Err(Error::malformed(what, "expected a <profile> element"));
        }
        let timestamp = match node.attribute("timestamp") {
            // The value is not repeated: errors end up in logs.
            Some(t) => Some(
                crate::clock::parse_timestamp(t)
                    .ok_or_else(|| Error::malformed(what, "the profile timestamp is not a date"))?,
            ),
            None => None,
        };
        let bases: Vec<_> = node.children().filter(|c| c.is_element()).collect();
        if bases.len() != 1 || bases[0].tag_name().name() != "base" {
            return Err(Error::malformed(
                what,
                "<profile> must contain exactly one <base>",
            ));
        }
        let mut fields = BTreeMap::new();
        for el in bases[0].children().filter(|c| c.is_element()) {
            let name = el.tag_name().name();
            if !no_namespace(el) {
                return Err(Error::malformed(what, format!("<{name}> has a namespace")));
            }
            let value = xml::text_only(what, el)?;
            if fields.insert(name.to_owned(), value).is_some() {
                return Err(Error::malformed(what, format!("<{name}> appears twice")));
            }
        }
        Self::from_fields(what, fields, timestamp)
    }

    fn from_fields(
        what: &'static str,
        fields: BTreeMap<String, String>,
        timestamp: Option<OffsetDateTime>,
    ) -> Result<Self> {
        let login = fields
            .get("login")
            .filter(|l| !l.is_empty())
            .cloned()
            .ok_or_else(|| Error::CredentialRefused("the profile has no <login>".into()))?;
        let cf_field = fields.get("codice_fiscale").filter(|s| !s.is_empty());
        let fiscal = fields
            .get("fiscalNumber")
            .filter(|s| !s.is_empty())
            .map(|s| strip_tinit(s));
        // Field names only: the value (or a parse error quoting a letter, the day of birth) is
        // personal data, and errors end up in logs.
        let parse_cf = |field: &str, s: &str| {
            CodiceFiscale::parse(s).map_err(|_| {
                Error::malformed(what, format!("<{field}> is not a valid codice fiscale"))
            })
        };
        let codice_fiscale = match (cf_field, fiscal) {
            (Some(a), Some(b)) => {
                let (a, b) = (parse_cf("codice_fiscale", a)?, parse_cf("fiscalNumber", b)?);
                if a.canonical() != b.canonical() {
                    return Err(Error::malformed(
                        what,
                        "codice_fiscale and fiscalNumber disagree",
                    ));
                }
                Some(a)
            }
            (Some(a), None) => Some(parse_cf("codice_fiscale", a)?),
            (None, Some(b)) => Some(parse_cf("fiscalNumber", b)?),
            (None, None) => None,
        };
        let authentication = fields
            .get("tipo_autenticazione")
            .filter(|s| !s.is_empty())
            .map(|s| AuthenticationType::parse(s));
        let date_of_birth = match fields.get("dateOfBirth").filter(|s| !s.is_empty()) {
            Some(d) => {
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                Some(
                    time::Date::parse(d, &fmt)
                        .map_err(|_| Error::malformed(what, "<dateOfBirth> is not yyyy-mm-dd"))?,
                )
            }
            None => match fields.get("data_nascita").filter(|s| !s.is_empty()) {
                Some(d) => {
                    let fmt = time::macros::format_description!("[day]/[month]/[year]");
                    time::Date::parse(d, &fmt).ok()
                }
                None => None,
            },
        };
        Ok(UserProfile {
            fields,
            login,
            codice_fiscale,
            authentication,
            timestamp,
            date_of_birth,
        })
    }

    /// The raw text of any element of `<base>` (documented or not).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
    /// All raw fields.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }
    /// `login`: the user name Cohesion logged in (the codice fiscale for citizens).
    pub fn login(&self) -> &str {
        &self.login
    }
    /// The codice fiscale (`codice_fiscale`, or `fiscalNumber` without `TINIT-`), if any.
    pub fn codice_fiscale(&self) -> Option<&CodiceFiscale> {
        self.codice_fiscale.as_ref()
    }
    /// How the citizen authenticated.
    pub fn authentication(&self) -> Option<&AuthenticationType> {
        self.authentication.as_ref()
    }
    /// When Cohesion issued the token (`timestamp` attribute).
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        self.timestamp
    }
    /// Date of birth (`dateOfBirth`, else `data_nascita`).
    pub fn date_of_birth(&self) -> Option<time::Date> {
        self.date_of_birth
    }
    /// `nome` (or SAML `name`).
    pub fn first_name(&self) -> Option<&str> {
        self.nonempty("nome").or_else(|| self.nonempty("name"))
    }
    /// `cognome` (or SAML `familyName`).
    pub fn last_name(&self) -> Option<&str> {
        self.nonempty("cognome")
            .or_else(|| self.nonempty("familyName"))
    }
    /// `email`.
    pub fn email(&self) -> Option<&str> {
        self.nonempty("email")
    }
    /// `email_certificata` (or SAML `digitalAddress`): the PEC address.
    pub fn pec(&self) -> Option<&str> {
        self.nonempty("email_certificata")
            .or_else(|| self.nonempty("digitalAddress"))
    }
    /// SAML `spidCode`.
    pub fn spid_code(&self) -> Option<&str> {
        self.nonempty("spidCode")
    }

    fn nonempty(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|s| !s.is_empty())
    }

    /// Serialises back to Cohesion's `<profile>` XML (used by the emulator).
    pub fn to_xml(fields: &[(&str, &str)], timestamp: OffsetDateTime) -> String {
        let mut s = format!(
            "<profile timestamp=\"{}\" xmlns=\"\"><base>",
            crate::clock::format_timestamp(timestamp)
        );
        for (k, v) in fields {
            if v.is_empty() {
                s.push_str(&format!("<{k} />"));
            } else {
                s.push_str(&format!("<{k}>{}</{k}>", xml::escape_text(v)));
            }
        }
        s.push_str("</base></profile>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_domain_is_separate() {
        assert!(AuthLevel::Password < AuthLevel::PasswordPin);
        assert!(AuthLevel::PasswordPin < AuthLevel::SmartCard);
        assert_eq!(AuthenticationType::parse("DRM").level(), None);
        assert_eq!(
            AuthenticationType::parse("CF").level(),
            Some(AuthLevel::SmartCard)
        );
        assert_eq!(AuthenticationType::parse("XYZ").code(), "XYZ");
    }

    fn parse(xml: &str) -> Result<UserProfile> {
        let doc = crate::xml::parse("profile", xml, 1 << 20)?;
        UserProfile::from_element("profile", doc.root_element())
    }

    #[test]
    fn tinit_and_fields() {
        let p = parse(
            "<profile timestamp=\"Tue, 25 Jan 2022 22:02:49 GMT\"><base><login>RSSMRA85T10A562S</login>\
<fiscalNumber>TINIT-RSSMRA85T10A562S</fiscalNumber><tipo_autenticazione>CF</tipo_autenticazione>\
<dateOfBirth>1985-12-10</dateOfBirth><nome>MARIO</nome></base></profile>",
        )
        .unwrap();
        assert_eq!(p.codice_fiscale().unwrap().as_str(), "RSSMRA85T10A562S");
        assert_eq!(p.authentication(), Some(&AuthenticationType::SmartCard));
        assert_eq!(p.first_name(), Some("MARIO"));
        assert_eq!(p.date_of_birth().unwrap().year(), 1985);
    }

    #[test]
    fn bad_profiles() {
        // No login: refused like Cohesion's failure answer.
        assert!(matches!(
            parse("<profile><base><nome>X</nome></base></profile>"),
            Err(Error::CredentialRefused(_))
        ));
        // Disagreeing codici fiscali.
        assert!(parse("<profile><base><login>a</login><codice_fiscale>RSSMRA85T10A562S</codice_fiscale><fiscalNumber>TINIT-BNCLRA80A41H501D</fiscalNumber></base></profile>").is_err());
        // Duplicate field.
        assert!(parse("<profile><base><login>a</login><login>b</login></base></profile>").is_err());
        // Bad timestamp.
        assert!(
            parse("<profile timestamp=\"yesterday\"><base><login>a</login></base></profile>")
                .is_err()
        );
    }
}
