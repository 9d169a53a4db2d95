//! A plain summary of a certificate, ready to print or serialise (feature `serde`).
//!
//! Its field names are the contract of `tscns cert inspect --json` and of the certificate object
//! embedded by `tscns card info --json`: fields may be added, these never renamed.

use time::OffsetDateTime;

use crate::conformance::rfc3339;
use crate::{CnsCertificate, Error, Finding};

/// The key of a [`CertificateReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyReport {
    /// `"RSA"`, `"EC"`, `"Ed25519"`, `"RSA-PSS"` or an OID.
    pub algorithm: String,
    /// Key size in bits, `None` when unknown.
    pub bits: Option<u32>,
    /// EC curve name, `None` for other keys.
    pub curve: Option<String>,
}

/// One finding in a [`CertificateReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FindingReport {
    /// Stable code, see [`crate::codes`].
    pub code: String,
    /// `"error"` or `"warning"`.
    pub severity: String,
    /// What is wrong.
    pub message: String,
}

impl From<&Finding> for FindingReport {
    fn from(f: &Finding) -> Self {
        FindingReport {
            code: f.code.to_owned(),
            severity: f.severity.as_str().to_owned(),
            message: f.message.clone(),
        }
    }
}

/// The result of chain verification in a [`CertificateReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ChainReport {
    /// Whether the chain verified.
    pub valid: bool,
    /// Why not, `None` when valid.
    pub error: Option<String>,
}

impl ChainReport {
    /// From the result of [`CnsCertificate::verify_chain`].
    pub fn from_result(result: &Result<(), Error>) -> Self {
        match result {
            Ok(()) => ChainReport {
                valid: true,
                error: None,
            },
            Err(e) => ChainReport {
                valid: false,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Everything `tscns cert inspect --json` prints about a certificate. Fields the certificate
/// lacks are `None` (JSON `null`). `codice_fiscale` and `card_id` are the CN parts as written,
/// even when invalid (a finding then says so).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CertificateReport {
    /// Subject as an RFC 4514 string.
    pub subject: String,
    /// Codice fiscale from the CN.
    pub codice_fiscale: Option<String>,
    /// Card id from the CN.
    pub card_id: Option<String>,
    /// Base64 hash from the CN.
    pub data_hash: Option<String>,
    /// Subject SN.
    pub surname: Option<String>,
    /// Subject givenName.
    pub given_name: Option<String>,
    /// Issuer as an RFC 4514 string.
    pub issuer: String,
    /// Issuer CN (the CA's name).
    pub issuer_common_name: Option<String>,
    /// Subject OU.
    pub issuing_administration: Option<String>,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// Start of validity, RFC 3339.
    pub not_before: Option<String>,
    /// End of validity, RFC 3339.
    pub not_after: Option<String>,
    /// Public key.
    pub key: KeyReport,
    /// Signature algorithm OID.
    pub signature_algorithm: String,
    /// Key usage names; `None` without the extension.
    pub key_usage: Option<Vec<String>>,
    /// Certificate policy OIDs (empty without the extension).
    pub policies: Vec<String>,
    /// Extended key usage OIDs (empty without the extension).
    pub extended_key_usage: Vec<String>,
    /// Conformance findings at the time given.
    pub findings: Vec<FindingReport>,
    /// Chain verification, `None` when no anchors were given.
    pub chain: Option<ChainReport>,
}

impl CertificateReport {
    /// Builds the report: findings at `at`, and `chain` as the caller verified it (or `None`).
    pub fn new(
        cert: &CnsCertificate,
        at: OffsetDateTime,
        chain: Option<&Result<(), Error>>,
    ) -> Self {
        let parts = cert.cn_parts().ok();
        let key = cert.key();
        CertificateReport {
            subject: cert.subject(),
            codice_fiscale: parts.as_ref().map(|p| p.codice_fiscale.clone()),
            card_id: parts.as_ref().map(|p| p.card_id.clone()),
            data_hash: parts.as_ref().map(|p| p.data_hash.clone()),
            surname: cert.surname(),
            given_name: cert.given_name(),
            issuer: cert.issuer(),
            issuer_common_name: cert.issuer_common_name(),
            issuing_administration: cert.issuing_administration(),
            serial: cert.serial_hex(),
            not_before: cert.not_before().map(rfc3339),
            not_after: cert.not_after().map(rfc3339),
            key: KeyReport {
                algorithm: key.algorithm,
                bits: key.bits,
                curve: key.curve,
            },
            signature_algorithm: cert.signature_algorithm().to_string(),
            key_usage: cert
                .key_usage_names()
                .map(|v| v.into_iter().map(str::to_owned).collect()),
            policies: cert
                .policies()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            extended_key_usage: cert
                .extended_key_usage()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            findings: cert
                .conformance(at)
                .iter()
                .map(FindingReport::from)
                .collect(),
            chain: chain.map(ChainReport::from_result),
        }
    }
}
