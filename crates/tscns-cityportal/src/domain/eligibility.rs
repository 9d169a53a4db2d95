//! Who may get which certificate online, with which stamp duty and fee.
//!
//! Online, a citizen may request certificates for self and for members of their own famiglia
//! anagrafica only (DM Interno 3 novembre 2021); certificates carry EUR 16.00 of imposta di bollo
//! (DPR 642/1972, Tariffa art. 4) unless exempt; stato civile extracts are exempt by
//! L. 405/1990 art. 7; destinations 2 and 3 must be exempt.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use super::{Certifiability, CertificateKind, Destination, DomainError, Exemption, RegistryRecord};

/// Imposta di bollo on a certificate, in euro cents (DPR 642/1972, Tariffa art. 4).
pub const STAMP_DUTY_CENTS: u32 = 1600;
/// Diritti di segreteria on a certificate with bollo, in euro cents.
pub const FEE_WITH_BOLLO_CENTS: u32 = 52;
/// Diritti di segreteria on a bollo-exempt certificate, in euro cents.
pub const FEE_EXEMPT_CENTS: u32 = 26;

/// Legal reference of the exemption of stato civile extracts.
const STATO_CIVILE_REFERENCE: &str = "esente da imposta di bollo ai sensi dell'art. 7 L. 405/1990";

/// What the certificate is for: the destination of use and, if the citizen claims one, the
/// exemption from stamp duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    /// Destination of use (ANPR `paEstera`).
    pub destination: Destination,
    /// The exemption claimed (Tabella 39), if any.
    #[serde(default)]
    pub exemption: Option<Exemption>,
}

impl Purpose {
    /// Ordinary use between private parties, no exemption.
    pub fn ordinary() -> Self {
        Purpose {
            destination: Destination::Ordinaria,
            exemption: None,
        }
    }
}

/// The stamp duty a certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StampDuty {
    /// EUR 16.00 of bollo: the citizen gives the identifier of a marca da bollo.
    Required {
        /// Amount in euro cents (1600).
        amount_cents: u32,
    },
    /// Exempt by law whatever the use (stato civile extracts).
    ExemptByLaw {
        /// The legal reference printed on the certificate.
        legal_reference: String,
    },
    /// Exempt for the reason the citizen claimed (Tabella 39).
    Exempt {
        /// The exemption.
        exemption: Exemption,
    },
}

/// A positive answer of [`eligibility`]: what the certificate costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    /// The kind.
    pub kind: CertificateKind,
    /// The destination.
    pub destination: Destination,
    /// Stamp duty.
    pub stamp_duty: StampDuty,
    /// Diritti di segreteria in euro cents; `None` when waived.
    pub fee_cents: Option<u32>,
}

impl Eligibility {
    /// Checks that `stamp` is what this certificate needs: a marca when the bollo is required,
    /// the same exemption when one was claimed, nothing when exempt by law.
    pub fn check_stamp(&self, stamp: Option<&Stamp>) -> Result<(), DomainError> {
        match (&self.stamp_duty, stamp) {
            (StampDuty::Required { .. }, Some(Stamp::Marca(_))) => Ok(()),
            (StampDuty::Required { .. }, _) => Err(DomainError::StampMismatch(
                "this certificate needs the 14-digit identifier of a marca da bollo",
            )),
            (StampDuty::Exempt { exemption }, Some(Stamp::Exempt(e))) if e == exemption => Ok(()),
            (StampDuty::Exempt { .. }, _) => Err(DomainError::StampMismatch(
                "the stamp must be the exemption that was claimed",
            )),
            (StampDuty::ExemptByLaw { .. }, None) => Ok(()),
            (StampDuty::ExemptByLaw { .. }, Some(_)) => Err(DomainError::StampMismatch(
                "this certificate is exempt by law: no marca da bollo is needed",
            )),
        }
    }
}

/// Why a kind does not apply to the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotApplicable {
    /// An AIRE kind for someone resident in Italy.
    NotInAire,
    /// A kind of residence in Italy for someone registered in AIRE.
    InAire,
    /// Matrimonio without a marriage on record.
    NoMarriage,
    /// Unione civile without one.
    NoCivilUnion,
    /// Contratto di convivenza without one.
    NoCohabitationContract,
    /// Residenza in convivenza for someone in a famiglia.
    NotInConvivenza,
    /// Esistenza in vita (or another kind about the living) for a dead person.
    Deceased,
    /// Stato libero for someone married or united.
    NotFree,
    /// A family kind for someone with no family on record.
    NoFamily,
}

impl NotApplicable {
    fn sentence(self) -> &'static str {
        match self {
            NotApplicable::NotInAire => {
                "La persona risiede in Italia e non è iscritta all'AIRE: richieda il certificato di residenza o di stato di famiglia."
            }
            NotApplicable::InAire => {
                "La persona è iscritta all'AIRE: richieda il certificato di residenza AIRE o di stato di famiglia AIRE."
            }
            NotApplicable::NoMarriage => {
                "Nel registro non risulta alcun matrimonio di questa persona: il certificato di matrimonio non può essere rilasciato."
            }
            NotApplicable::NoCivilUnion => {
                "Nel registro non risulta alcuna unione civile di questa persona: il certificato di unione civile non può essere rilasciato."
            }
            NotApplicable::NoCohabitationContract => {
                "Nel registro non risulta alcun contratto di convivenza di questa persona."
            }
            NotApplicable::NotInConvivenza => {
                "La persona fa parte di una famiglia e non di una convivenza: richieda il certificato di residenza."
            }
            NotApplicable::Deceased => {
                "La persona risulta deceduta: il certificato richiesto riguarda solo persone in vita; il certificato di morte si richiede allo sportello."
            }
            NotApplicable::NotFree => {
                "La persona risulta coniugata o unita civilmente: il certificato di stato libero non può essere rilasciato."
            }
            NotApplicable::NoFamily => {
                "Nel registro la persona non fa parte di alcuna famiglia anagrafica: si rivolga all'ufficio anagrafe."
            }
        }
    }
}

/// Why a certificate is refused. Every message is one Italian sentence a citizen can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The requester is not in this municipality's registry.
    #[error("Lei non risulta residente in questo Comune: richieda il certificato al Comune in cui risiede oppure sul portale ANPR (www.anagrafenazionale.interno.it).")]
    RequesterNotResident,
    /// The subject is neither the requester nor a member of the requester's famiglia anagrafica.
    #[error("Online può richiedere certificati solo per sé e per i componenti della Sua famiglia anagrafica: per altre persone si rivolga allo sportello anagrafe (art. 33 DPR 223/1989).")]
    NotInFamily,
    /// The subject is non certificabile (Tabella 42, 0).
    #[error("Per questa persona il registro non consente il rilascio di certificati: si rivolga all'ufficio anagrafe per regolarizzare la posizione.")]
    NonCertifiable,
    /// The subject has partial certifiability: only residenza and stato di famiglia.
    #[error("Per questa persona si possono rilasciare solo i certificati di residenza e di stato di famiglia: per gli altri si rivolga all'ufficio anagrafe.")]
    PartialCertifiability,
    /// The subject is non iscrivibile (Tabella 42, 3).
    #[error("La persona risulta non iscrivibile in anagrafe: i certificati non possono essere rilasciati online, si rivolga all'ufficio anagrafe.")]
    NotRegistrable,
    /// The subject is interdetto sottoposto a tutela (Tabella 42, 4).
    #[error("La persona è sottoposta a tutela: i certificati si richiedono allo sportello anagrafe, anche tramite il tutore.")]
    UnderGuardianship,
    /// The kind is not issued online.
    #[error("Il {} non si rilascia online: lo richieda allo sportello anagrafe.", .kind.description())]
    NotOnline {
        /// The kind.
        kind: CertificateKind,
    },
    /// The kind does not apply to the subject.
    #[error("{}", .reason.sentence())]
    NotApplicable {
        /// The kind.
        kind: CertificateKind,
        /// Why.
        reason: NotApplicable,
    },
    /// Destination 2 or 3 without an exemption.
    #[error("Un certificato {} deve essere esente da imposta di bollo: indichi il motivo di esenzione.", .destination.description())]
    ExemptionRequired {
        /// The destination.
        destination: Destination,
    },
}

/// The identifier of a marca da bollo: exactly 14 digits.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MarcaId(String);

impl MarcaId {
    /// Parses an identifier: exactly 14 ASCII digits (surrounding white space ignored).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        if t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(MarcaId(t.to_string()))
        } else {
            Err(DomainError::BadMarca)
        }
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MarcaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MarcaId({})", self.0)
    }
}

impl fmt::Display for MarcaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MarcaId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        MarcaId::parse(&s)
    }
}

impl From<MarcaId> for String {
    fn from(m: MarcaId) -> String {
        m.0
    }
}

/// How the stamp duty of one certificate was paid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stamp {
    /// A marca da bollo, by its 14-digit identifier (usable once).
    Marca(MarcaId),
    /// An exemption (Tabella 39).
    Exempt(Exemption),
}

/// The one rule of who may get which certificate online. The portal server and the citizen's
/// client both call it.
///
/// `requester` is `None` when the logged-in citizen is not in this municipality's registry.
/// `today` is the issue date: the record is read as of that day (a death on or before it counts).
pub fn eligibility(
    requester: Option<&RegistryRecord>,
    subject: &RegistryRecord,
    kind: CertificateKind,
    purpose: &Purpose,
    today: Date,
) -> Result<Eligibility, Refusal> {
    let requester = requester.ok_or(Refusal::RequesterNotResident)?;
    let same = requester.is_same_person(subject);
    if !same
        && (requester.family.as_ref().is_none_or(|f| f.convivenza)
            || requester.family.as_ref().map(|f| &f.id) != subject.family.as_ref().map(|f| &f.id)
            || !requester.family_has(&subject.person.codice_fiscale))
    {
        return Err(Refusal::NotInFamily);
    }
    if !kind.online() {
        return Err(Refusal::NotOnline { kind });
    }
    match subject.person.certifiability {
        Certifiability::Completa => {}
        Certifiability::NonCertificabile => return Err(Refusal::NonCertifiable),
        Certifiability::NonIscrivibile => return Err(Refusal::NotRegistrable),
        Certifiability::Interdetto => return Err(Refusal::UnderGuardianship),
        Certifiability::Parziale => {
            if !matches!(
                kind,
                CertificateKind::Residenza | CertificateKind::StatoDiFamiglia
            ) {
                return Err(Refusal::PartialCertifiability);
            }
        }
    }
    if let Some(reason) = not_applicable(subject, kind, today) {
        return Err(Refusal::NotApplicable { kind, reason });
    }
    let destination = purpose.destination;
    let stamp_duty = if kind.is_stato_civile_extract() {
        StampDuty::ExemptByLaw {
            legal_reference: STATO_CIVILE_REFERENCE.to_string(),
        }
    } else if let Some(e) = &purpose.exemption {
        StampDuty::Exempt {
            exemption: e.clone(),
        }
    } else if destination.requires_exemption() {
        return Err(Refusal::ExemptionRequired { destination });
    } else {
        StampDuty::Required {
            amount_cents: STAMP_DUTY_CENTS,
        }
    };
    let fee_cents = match &stamp_duty {
        StampDuty::Required { .. } => Some(FEE_WITH_BOLLO_CENTS),
        StampDuty::ExemptByLaw { .. } => Some(FEE_EXEMPT_CENTS),
        StampDuty::Exempt { exemption } if exemption.waives_fees() => None,
        StampDuty::Exempt { .. } => Some(FEE_EXEMPT_CENTS),
    };
    Ok(Eligibility {
        kind,
        destination,
        stamp_duty,
        fee_cents,
    })
}

fn not_applicable(
    subject: &RegistryRecord,
    kind: CertificateKind,
    today: Date,
) -> Option<NotApplicable> {
    use CertificateKind as K;
    let p = &subject.person;
    let dead = p.is_dead_on(today);
    let living_only = !matches!(kind, K::Nascita | K::Matrimonio | K::UnioneCivile);
    if dead && living_only {
        return Some(NotApplicable::Deceased);
    }
    let family_kind = matches!(
        kind,
        K::StatoDiFamiglia
            | K::StatoDiFamigliaEStatoCivile
            | K::StatoDiFamigliaConParentela
            | K::StatoDiFamigliaAire
            | K::ResidenzaInConvivenza
    );
    if family_kind && subject.family.is_none() {
        return Some(NotApplicable::NoFamily);
    }
    match kind {
        K::ResidenzaAire | K::StatoDiFamigliaAire if !p.aire => Some(NotApplicable::NotInAire),
        K::Residenza
        | K::StatoDiFamiglia
        | K::StatoDiFamigliaEStatoCivile
        | K::StatoDiFamigliaConParentela
        | K::ResidenzaInConvivenza
            if p.aire =>
        {
            Some(NotApplicable::InAire)
        }
        K::ResidenzaInConvivenza if !subject.family.as_ref().is_some_and(|f| f.convivenza) => {
            Some(NotApplicable::NotInConvivenza)
        }
        K::Matrimonio if p.marriage.is_none() => Some(NotApplicable::NoMarriage),
        K::UnioneCivile if p.civil_union.is_none() => Some(NotApplicable::NoCivilUnion),
        K::ContrattoDiConvivenza if p.cohabitation_contract.is_none() => {
            Some(NotApplicable::NoCohabitationContract)
        }
        K::StatoLibero if !p.civil_status.is_free() => Some(NotApplicable::NotFree),
        _ => None,
    }
}
