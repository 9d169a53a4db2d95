//! The registry domain: ANPR codes, the registry record and the rules of who may get which
//! certificate with which stamp duty. No I/O: the portal server and the citizen's client call the
//! same [`eligibility`] function.

mod codes;
mod eligibility;
pub(crate) mod record;

pub use codes::{
    Certifiability, CertificateKind, CivilStatus, Destination, Exemption, Relationship,
    EXEMPTION_DESCRIPTION_MAX,
};
pub use eligibility::{
    eligibility, Eligibility, MarcaId, NotApplicable, Purpose, Refusal, Stamp, StampDuty,
    FEE_EXEMPT_CENTS, FEE_WITH_BOLLO_CENTS, STAMP_DUTY_CENTS,
};
pub use record::{
    Address, AireResidence, Event, Family, FamilyMember, IdentityCard, Municipality, Person, Place,
    Registration, RegistryRecord, Sex,
};

/// A value outside what the ANPR tables or the domain rules allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A code that the table does not have.
    #[error("{table}: unknown code {code}")]
    UnknownCode {
        /// The ANPR table.
        table: &'static str,
        /// The code found.
        code: u32,
    },
    /// A relationship code valid only until 2015, given where a current code is needed.
    #[error("Tabella 05: code {0} was valid only until 2015 and cannot be written any more")]
    ObsoleteRelationship(u16),
    /// Exemption 99 without a description, or with one longer than 256 characters.
    #[error(
        "Tabella 39: exemption 99 needs a description of 1 to 256 characters (found {length})"
    )]
    ExemptionDescription {
        /// Characters found.
        length: usize,
    },
    /// A certificate slug that is not in the list.
    #[error("unknown certificate kind {0:?}")]
    UnknownSlug(String),
    /// A marca da bollo identifier that is not exactly 14 digits.
    #[error("the identifier of a marca da bollo has exactly 14 digits")]
    BadMarca,
    /// A stamp that does not fit what the certificate requires.
    #[error("stamp: {0}")]
    StampMismatch(&'static str),
}
