//! ANPR code tables (public source: the ANPR "tabelle di decodifica", repository `italia/anpr`,
//! `src/tab/*.rst`, release 9.2.7). One type per table: its numeric code, its Italian
//! description, `from_code` that refuses unknown codes, serde as the numeric code.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::DomainError;

/// Defines a closed ANPR table as a Rust enum with `code`, `description`, `from_code`, `ALL` and
/// numeric serde.
macro_rules! anpr_table {
    (
        $(#[$meta:meta])*
        $name:ident, $table:literal {
            $( $variant:ident = $code:literal => $desc:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( #[doc = concat!("Code ", stringify!($code), ": ", $desc, ".")] $variant, )+
        }

        impl $name {
            /// Every code of the table, in code order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The ANPR name of the table.
            pub const TABLE: &'static str = $table;

            /// The ANPR numeric code.
            pub fn code(self) -> u16 {
                match self { $( $name::$variant => $code, )+ }
            }

            /// The Italian description from the ANPR table.
            pub fn description(self) -> &'static str {
                match self { $( $name::$variant => $desc, )+ }
            }

            /// The value for an ANPR code; an unknown code is refused.
            pub fn from_code(code: u16) -> Result<Self, DomainError> {
                match code {
                    $( $code => Ok($name::$variant), )+
                    _ => Err(DomainError::UnknownCode { table: $table, code: u32::from(code) }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.description())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u16(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = u16::deserialize(d)?;
                $name::from_code(code).map_err(serde::de::Error::custom)
            }
        }
    };
}

anpr_table! {
    /// Kind of certificate — ANPR Tabella 13 "tipo di certificato".
    CertificateKind, "Tabella 13 (tipo di certificato)" {
        Nascita = 1 => "certificato anagrafico di nascita",
        Morte = 2 => "certificato anagrafico di morte",
        Matrimonio = 3 => "certificato anagrafico di matrimonio",
        Cancellazione = 4 => "certificato di cancellazione anagrafica",
        Cittadinanza = 5 => "certificato di cittadinanza",
        StoricoCittadinanza = 6 => "certificato storico di cittadinanza",
        EsistenzaInVita = 7 => "certificato di esistenza in vita",
        Residenza = 8 => "certificato di residenza",
        StoricoResidenza = 9 => "certificato storico di residenza",
        ResidenzaAire = 10 => "certificato di residenza AIRE",
        StatoCivile = 11 => "certificato di stato civile",
        StatoDiFamiglia = 12 => "certificato di stato di famiglia",
        StatoDiFamigliaEStatoCivile = 13 => "certificato di stato di famiglia e di stato civile",
        ResidenzaInConvivenza = 14 => "certificato di residenza in convivenza",
        StatoDiFamigliaAire = 15 => "certificato di stato di famiglia AIRE",
        StatoDiFamigliaConParentela = 16 => "certificato di stato di famiglia con rapporti di parentela",
        StatoLibero = 17 => "certificato di stato libero",
        UnioneCivile = 18 => "certificato anagrafico di unione civile",
        ContrattoDiConvivenza = 19 => "certificato di contratto di convivenza",
        StoricoResidenzaAllaData = 20 => "certificato storico di residenza alla data",
    }
}

impl CertificateKind {
    /// Whether citizens may get this kind online (DM Interno 3 novembre 2021): 15 of the 20.
    pub fn online(self) -> bool {
        !matches!(
            self,
            CertificateKind::Morte
                | CertificateKind::Cancellazione
                | CertificateKind::StoricoCittadinanza
                | CertificateKind::StoricoResidenza
                | CertificateKind::StoricoResidenzaAllaData
        )
    }

    /// The URL/CLI slug of the kind (a contract: `nascita`, `stato-di-famiglia`, ...).
    pub fn slug(self) -> &'static str {
        match self {
            CertificateKind::Nascita => "nascita",
            CertificateKind::Morte => "morte",
            CertificateKind::Matrimonio => "matrimonio",
            CertificateKind::Cancellazione => "cancellazione",
            CertificateKind::Cittadinanza => "cittadinanza",
            CertificateKind::StoricoCittadinanza => "storico-cittadinanza",
            CertificateKind::EsistenzaInVita => "esistenza-in-vita",
            CertificateKind::Residenza => "residenza",
            CertificateKind::StoricoResidenza => "storico-residenza",
            CertificateKind::ResidenzaAire => "residenza-aire",
            CertificateKind::StatoCivile => "stato-civile",
            CertificateKind::StatoDiFamiglia => "stato-di-famiglia",
            CertificateKind::StatoDiFamigliaEStatoCivile => "stato-di-famiglia-e-stato-civile",
            CertificateKind::ResidenzaInConvivenza => "residenza-in-convivenza",
            CertificateKind::StatoDiFamigliaAire => "stato-di-famiglia-aire",
            CertificateKind::StatoDiFamigliaConParentela => "stato-di-famiglia-con-parentela",
            CertificateKind::StatoLibero => "stato-libero",
            CertificateKind::UnioneCivile => "unione-civile",
            CertificateKind::ContrattoDiConvivenza => "contratto-di-convivenza",
            CertificateKind::StoricoResidenzaAllaData => "storico-residenza-alla-data",
        }
    }

    /// The kind with this slug.
    pub fn from_slug(slug: &str) -> Result<Self, DomainError> {
        CertificateKind::ALL
            .iter()
            .copied()
            .find(|k| k.slug() == slug)
            .ok_or_else(|| DomainError::UnknownSlug(slug.chars().take(64).collect()))
    }

    /// Kinds that extract stato civile facts (birth, death, marriage, civil union): exempt from
    /// stamp duty by L. 405/1990 art. 7.
    pub fn is_stato_civile_extract(self) -> bool {
        matches!(
            self,
            CertificateKind::Nascita
                | CertificateKind::Morte
                | CertificateKind::Matrimonio
                | CertificateKind::UnioneCivile
        )
    }

    /// The title printed on the certificate, e.g. "CERTIFICATO DI RESIDENZA".
    pub fn title(self) -> String {
        self.description().to_uppercase()
    }
}

anpr_table! {
    /// Certifiability of a person — ANPR Tabella 42.
    Certifiability, "Tabella 42 (certificabilità)" {
        NonCertificabile = 0 => "non certificabile",
        Parziale = 1 => "certificabilità parziale (solo residenza e stato di famiglia)",
        Completa = 2 => "certificabilità completa",
        NonIscrivibile = 3 => "soggetto non iscrivibile",
        Interdetto = 4 => "interdetto sottoposto a tutela",
    }
}

anpr_table! {
    /// Civil status — ANPR Tabella 01 (there is no code 5).
    CivilStatus, "Tabella 01 (stato civile)" {
        Celibe = 1 => "celibe/nubile",
        Coniugato = 2 => "coniugato/a",
        Vedovo = 3 => "vedovo/a",
        Divorziato = 4 => "divorziato/a",
        UnitoCivilmente = 6 => "unito/a civilmente",
        LiberoDecessoUnito = 7 => "stato libero a seguito di decesso della parte unita civilmente",
        LiberoScioglimentoUnione = 8 => "stato libero a seguito di scioglimento dell'unione",
        NonClassificabile = 9 => "non classificabile",
    }
}

impl CivilStatus {
    /// Whether the person is free to marry or unite (what a certificate of stato libero certifies).
    pub fn is_free(self) -> bool {
        matches!(
            self,
            CivilStatus::Celibe
                | CivilStatus::Vedovo
                | CivilStatus::Divorziato
                | CivilStatus::LiberoDecessoUnito
                | CivilStatus::LiberoScioglimentoUnione
        )
    }
}

anpr_table! {
    /// Relationship to the head of the family — ANPR Tabella 05. Codes 14, 15, 19 and 80 were
    /// valid until 2015: they can be read but not written (see [`Relationship::writable`]).
    Relationship, "Tabella 05 (rapporto di parentela)" {
        Intestatario = 1 => "intestatario scheda",
        Coniuge = 2 => "marito/moglie",
        Figlio = 3 => "figlio/figlia",
        NipoteDiscendente = 4 => "nipote (discendente)",
        Pronipote = 5 => "pronipote",
        Genitore = 6 => "padre/madre",
        Nonno = 7 => "nonno/nonna",
        Bisnonno = 8 => "bisnonno/a",
        Fratello = 9 => "fratello/sorella",
        NipoteCollaterale = 10 => "nipote (collaterale)",
        ZioCollaterale = 11 => "zio/zia (collaterale)",
        Cugino = 12 => "cugino/a",
        AltroParente = 13 => "altro parente",
        Obsoleto14 = 14 => "codice 14 (in uso fino al 2015)",
        Obsoleto15 = 15 => "codice 15 (in uso fino al 2015)",
        Genero = 16 => "genero/nuora",
        Suocero = 17 => "suocero/a",
        Cognato = 18 => "cognato/a",
        Obsoleto19 = 19 => "codice 19 (in uso fino al 2015)",
        NipoteAffine = 20 => "nipote (affine)",
        ZioAffine = 21 => "zio/zia (affine)",
        AltroAffine = 22 => "altro affine",
        Convivente = 23 => "convivente (con vincoli di adozione o affettivi)",
        ResponsabileConvivenza = 24 => "responsabile della convivenza non affettiva",
        ConviventeNonAffettivo = 25 => "convivente in convivenza non affettiva",
        Tutore = 26 => "tutore",
        UnitoCivilmente = 28 => "unito/a civilmente",
        Obsoleto80 = 80 => "codice 80 (in uso fino al 2015)",
        Nipote = 81 => "nipote",
        NonDefinito = 99 => "non definito",
    }
}

impl Relationship {
    /// Whether the code is still valid (not one of the pre-2015 codes 14, 15, 19, 80).
    pub fn is_current(self) -> bool {
        !matches!(
            self,
            Relationship::Obsoleto14
                | Relationship::Obsoleto15
                | Relationship::Obsoleto19
                | Relationship::Obsoleto80
        )
    }

    /// The relationship for a code that may be written today: pre-2015 codes are refused.
    pub fn writable(code: u16) -> Result<Self, DomainError> {
        let r = Relationship::from_code(code)?;
        if r.is_current() {
            Ok(r)
        } else {
            Err(DomainError::ObsoleteRelationship(code))
        }
    }
}

anpr_table! {
    /// Destination of use of a certificate — ANPR `paEstera`.
    Destination, "paEstera (destinazione d'uso)" {
        Ordinaria = 0 => "uso ordinario tra privati",
        PaEstera = 1 => "per una pubblica amministrazione estera",
        Immigrazione = 2 => "per procedimenti in materia di immigrazione",
        Giudiziaria = 3 => "per procedimenti giudiziari (art. 40 DPR 445/2000)",
        Estero = 4 => "per l'uso all'estero",
    }
}

impl Destination {
    /// Destinations 2 and 3 must be exempt from stamp duty.
    pub fn requires_exemption(self) -> bool {
        matches!(self, Destination::Immigrazione | Destination::Giudiziaria)
    }

    /// The wording printed on the certificate.
    pub fn wording(self) -> &'static str {
        match self {
            Destination::Ordinaria => "Si rilascia per gli usi consentiti dalla legge tra privati.",
            Destination::PaEstera => {
                "Si rilascia per essere prodotto a una pubblica amministrazione estera."
            }
            Destination::Immigrazione => "Si rilascia per procedimenti in materia di immigrazione.",
            Destination::Giudiziaria => "Si rilascia per procedimenti giudiziari.",
            Destination::Estero => "Si rilascia per l'uso all'estero.",
        }
    }
}

/// Maximum length of the description of exemption 99 ("altro motivo").
pub const EXEMPTION_DESCRIPTION_MAX: usize = 256;

/// Exemption from stamp duty — ANPR Tabella 39 (`tipoEsenzione`; 0 "not exempt" is `None` here).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exemption {
    /// 1: ONLUS (art. 27-bis Tab. B DPR 642/1972).
    Onlus,
    /// 2: società sportive (art. 8-bis Tab. B).
    SocietaSportive,
    /// 3: processuale (art. 18 DPR 115/2002).
    Processuale,
    /// 4: CTU / curatore fallimentare (art. 16 Tab. B).
    Ctu,
    /// 5: interdizione, inabilitazione, amministrazione di sostegno (art. 13 Tab. B).
    Interdizione,
    /// 6: adozione, affidamento, tutela minori (art. 13 Tab. B; art. 82 L. 184/1983).
    Adozione,
    /// 7: separazione, divorzio (art. 19 L. 74/1987).
    SeparazioneDivorzio,
    /// 8: variazione toponomastica / numerazione civica (art. 16 c. 8 L. 537/1993).
    Toponomastica,
    /// 9: pensione estera (art. 9 Tab. B).
    PensioneEstera,
    /// 10: scambio atti fra PP.AA. (art. 16 Tab. B).
    ScambioAttiPa,
    /// 99: altro motivo, with the citizen's description (1 to 256 characters, never printed on
    /// the certificate).
    Altro(String),
}

impl Exemption {
    /// Every code of Tabella 39 except 0.
    pub const CODES: [u16; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99];

    /// The ANPR code.
    pub fn code(&self) -> u16 {
        match self {
            Exemption::Onlus => 1,
            Exemption::SocietaSportive => 2,
            Exemption::Processuale => 3,
            Exemption::Ctu => 4,
            Exemption::Interdizione => 5,
            Exemption::Adozione => 6,
            Exemption::SeparazioneDivorzio => 7,
            Exemption::Toponomastica => 8,
            Exemption::PensioneEstera => 9,
            Exemption::ScambioAttiPa => 10,
            Exemption::Altro(_) => 99,
        }
    }

    /// The exemption for a code; code 99 needs `description` (1..=256 characters), the others
    /// ignore it.
    pub fn from_code(code: u16, description: Option<&str>) -> Result<Self, DomainError> {
        Ok(match code {
            1 => Exemption::Onlus,
            2 => Exemption::SocietaSportive,
            3 => Exemption::Processuale,
            4 => Exemption::Ctu,
            5 => Exemption::Interdizione,
            6 => Exemption::Adozione,
            7 => Exemption::SeparazioneDivorzio,
            8 => Exemption::Toponomastica,
            9 => Exemption::PensioneEstera,
            10 => Exemption::ScambioAttiPa,
            99 => {
                let d = description.map(str::trim).unwrap_or("");
                let n = d.chars().count();
                if n == 0 || n > EXEMPTION_DESCRIPTION_MAX {
                    return Err(DomainError::ExemptionDescription { length: n });
                }
                Exemption::Altro(d.to_string())
            }
            other => {
                return Err(DomainError::UnknownCode {
                    table: "Tabella 39 (esenzione dal bollo)",
                    code: u32::from(other),
                })
            }
        })
    }

    /// The Italian description, with its legal reference.
    pub fn description(&self) -> &'static str {
        match self {
            Exemption::Onlus => "ONLUS (art. 27-bis Tab. B DPR 642/1972)",
            Exemption::SocietaSportive => "società sportive (art. 8-bis Tab. B DPR 642/1972)",
            Exemption::Processuale => "uso processuale (art. 18 DPR 115/2002)",
            Exemption::Ctu => "CTU / curatore fallimentare (art. 16 Tab. B DPR 642/1972)",
            Exemption::Interdizione => {
                "interdizione, inabilitazione, amministrazione di sostegno (art. 13 Tab. B DPR 642/1972)"
            }
            Exemption::Adozione => {
                "adozione, affidamento, tutela minori (art. 13 Tab. B DPR 642/1972; art. 82 L. 184/1983)"
            }
            Exemption::SeparazioneDivorzio => "separazione, divorzio (art. 19 L. 74/1987)",
            Exemption::Toponomastica => {
                "variazione toponomastica / numerazione civica (art. 16 c. 8 L. 537/1993)"
            }
            Exemption::PensioneEstera => "pensione estera (art. 9 Tab. B DPR 642/1972)",
            Exemption::ScambioAttiPa => {
                "scambio atti fra pubbliche amministrazioni (art. 16 Tab. B DPR 642/1972)"
            }
            Exemption::Altro(_) => "altro motivo di esenzione previsto dalla legge",
        }
    }

    /// The text of code 99's description (never printed on a certificate).
    pub fn other_description(&self) -> Option<&str> {
        match self {
            Exemption::Altro(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the exemption also waives the diritti di segreteria (codes 4, 6, 7, 10).
    pub fn waives_fees(&self) -> bool {
        matches!(
            self,
            Exemption::Ctu
                | Exemption::Adozione
                | Exemption::SeparazioneDivorzio
                | Exemption::ScambioAttiPa
        )
    }
}

impl std::fmt::Display for Exemption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// Serde form of [`Exemption`]: the numeric code, or `{"code": 99, "description": "..."}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ExemptionRepr {
    Code(u16),
    WithDescription {
        code: u16,
        description: Option<String>,
    },
}

impl Serialize for Exemption {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Exemption::Altro(d) => ExemptionRepr::WithDescription {
                code: 99,
                description: Some(d.clone()),
            },
            other => ExemptionRepr::Code(other.code()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Exemption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match ExemptionRepr::deserialize(d)? {
            ExemptionRepr::Code(c) => Exemption::from_code(c, None),
            ExemptionRepr::WithDescription { code, description } => {
                Exemption::from_code(code, description.as_deref())
            }
        }
        .map_err(serde::de::Error::custom)
    }
}
