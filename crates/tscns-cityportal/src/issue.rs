//! Issuing one certificate end to end: both records from the store, [`eligibility`], the stamp
//! check, the PDF, the seal, and the one store transaction (marca claimed, certificate stored,
//! audit line written). A refusal is written to the audit log too.

use time::OffsetDateTime;
use tscns_cert::CodiceFiscale;

use crate::documents::{
    certificate_pdf, seal_vec, CertificateContent, DocumentError, SealInfo, SealKey,
};
use crate::domain::{eligibility, CertificateKind, DomainError, Purpose, Refusal, Stamp};
use crate::store::{AuditEntry, Store, StoreError, StoredCertificate};

/// Why a certificate was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The rules refuse it (the message is for the citizen).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The stamp does not fit the certificate.
    #[error("{0}")]
    Stamp(#[from] DomainError),
    /// The store failed, or the marca was already used.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The PDF or the seal failed.
    #[error("{0}")]
    Document(#[from] DocumentError),
}

/// One request for a certificate.
#[derive(Debug, Clone)]
pub struct IssueRequest<'a> {
    /// Cadastral code of the municipality whose registry answers.
    pub municipality: &'a str,
    /// The logged-in citizen.
    pub requester: &'a CodiceFiscale,
    /// Their authentication level (for the audit log).
    pub auth_level: i64,
    /// Their address (for the audit log).
    pub remote_addr: &'a str,
    /// Whom the certificate is about.
    pub subject: &'a CodiceFiscale,
    /// The kind.
    pub kind: CertificateKind,
    /// Destination and exemption.
    pub purpose: &'a Purpose,
    /// How the stamp duty is paid (`None`: exempt by law).
    pub stamp: Option<&'a Stamp>,
    /// The portal's base URL (for the QR code).
    pub portal_base_url: &'a str,
    /// Now.
    pub now: OffsetDateTime,
}

/// Issues a sealed certificate, or explains why not. Nothing is stored unless everything
/// succeeds; a refusal leaves one audit line.
pub async fn issue_certificate(
    store: &Store,
    key: &dyn SealKey,
    req: &IssueRequest<'_>,
) -> Result<StoredCertificate, IssueError> {
    let audit = |outcome: String| AuditEntry {
        actor: req.requester.as_str().to_string(),
        auth_level: req.auth_level,
        action: format!("certificate.issue.{}", req.kind.slug()),
        subject: Some(req.subject.as_str().to_string()),
        at: req.now,
        remote_addr: req.remote_addr.to_string(),
        outcome,
    };
    let marca = match req.stamp {
        Some(Stamp::Marca(m)) => Some(m.as_str()),
        _ => None,
    };
    // Records kept in memory are used at once; the issuing transaction stores the certificate
    // only if the registry is still at their version. A refusal, or a registry that changed,
    // is decided again on records read from the database (once).
    let mut fresh = false;
    loop {
        let records = store
            .issue_records(req.municipality, req.requester, req.subject, marca, fresh)
            .await?;
        let checked = match (&records.requester, &records.subject) {
            (None, _) => Err(Refusal::RequesterNotResident),
            (Some(_), None) => Err(Refusal::NotInFamily),
            (Some(r), Some(s)) => eligibility(Some(r), s, req.kind, req.purpose, req.now.date()),
        };
        let (eligible, subject) = match (checked, records.subject) {
            (Ok(e), Some(s)) => (e, s),
            (Err(_), _) if records.kept => {
                fresh = true;
                continue;
            }
            (Err(refusal), _) => {
                store.audit(&audit(format!("refused: {refusal}"))).await?;
                return Err(refusal.into());
            }
            (Ok(_), None) => return Err(Refusal::NotInFamily.into()),
        };
        eligible.check_stamp(req.stamp)?;
        if let (Some(m), true) = (marca, records.marca_used) {
            return Err(StoreError::MarcaAlreadyUsed(m.to_string()).into());
        }
        let certificate = make_certificate(key, req, &subject)?;
        match store
            .issue_checked(
                &certificate,
                &audit(format!("ok {}", certificate.id)),
                records.version,
            )
            .await
        {
            Ok(()) => return Ok(certificate),
            Err(StoreError::RegistryChanged) if !fresh => fresh = true,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The sealed certificate of `subject` for `req`, with fresh ids.
fn make_certificate(
    key: &dyn SealKey,
    req: &IssueRequest<'_>,
    subject: &crate::domain::RegistryRecord,
) -> Result<StoredCertificate, IssueError> {
    let ids = Store::new_certificate_ids(req.municipality)?;
    let pdf = certificate_pdf(&CertificateContent {
        record: subject,
        kind: req.kind,
        destination: req.purpose.destination,
        stamp: req.stamp,
        ids: &ids,
        issued_at: req.now,
        portal_base_url: req.portal_base_url,
    })?;
    let municipality = &subject.municipality.name;
    let sealed = seal_vec(
        pdf,
        key,
        &SealInfo {
            name: format!("Comune di {municipality}"),
            location: municipality.clone(),
            reason: format!("Certificato n. {} ({})", ids.id, req.kind.description()),
            signing_time: req.now,
        },
    )?;
    Ok(StoredCertificate {
        id: ids.id,
        verification_code: ids.verification_code,
        municipality: req.municipality.to_string(),
        kind: req.kind,
        subject: req.subject.as_str().to_string(),
        requester: req.requester.as_str().to_string(),
        stamp: req.stamp.cloned(),
        destination: req.purpose.destination,
        issued_at: OffsetDateTime::from_unix_timestamp(req.now.unix_timestamp()).unwrap_or(req.now),
        sha256: hex::encode(sealed.sha256),
        pdf: sealed.pdf,
    })
}
