//! Findings against the CNS authentication certificate profile.
//!
//! The rules come from CNS functional specification (CNIPA/AgID); OpenSC's itacns driver ("Authentication certificate profile") and from what a
//! relying party checks before trusting a client certificate (RFC 5280 and common CA/B-forum
//! practice). Every finding has a stable `code` that programs may match on.

use std::collections::HashSet;
use std::fmt;

use time::OffsetDateTime;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage};
use x509_cert::Version;

use crate::certificate::{oid, CnParts, CNS_POLICIES};
use crate::{CardId, CnsCertificate, CodiceFiscale, Error};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The certificate should not be accepted as a CNS authentication certificate.
    Error,
    /// Acceptable, but worth knowing (e.g. a 1024-bit key still found on older cards).
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One departure from the CNS authentication profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier, e.g. `"cn-not-cns-form"`; see [`codes`].
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.severity, self.code, self.message)
    }
}

/// The stable finding codes.
pub mod codes {
    /// The subject has no CN (error).
    pub const CN_MISSING: &str = "cn-missing";
    /// The CN is not `<codice fiscale>/<card id>.<hash>` (error).
    pub const CN_NOT_CNS_FORM: &str = "cn-not-cns-form";
    /// The hash part of the CN is not 28 characters of base64 (a SHA-1 digest) (warning).
    pub const CN_HASH_MALFORMED: &str = "cn-hash-malformed";
    /// The codice fiscale in the CN is invalid (error).
    pub const CODICE_FISCALE_INVALID: &str = "codice-fiscale-invalid";
    /// The card id in the CN is not 16 digits (error).
    pub const CARD_ID_INVALID: &str = "card-id-invalid";
    /// The card id in the CN fails its Luhn check (error).
    pub const CARD_ID_LUHN: &str = "card-id-luhn";
    /// The codice fiscale's first six letters do not match SN and givenName (warning).
    pub const NAMES_MISMATCH: &str = "names-mismatch-codice-fiscale";
    /// No SN attribute (warning).
    pub const SURNAME_MISSING: &str = "surname-missing";
    /// No givenName attribute (warning).
    pub const GIVEN_NAME_MISSING: &str = "given-name-missing";
    /// No OU (issuing administration) (warning).
    pub const ISSUING_ADMINISTRATION_MISSING: &str = "issuing-administration-missing";
    /// Subject C is missing or not IT (warning).
    pub const COUNTRY_NOT_IT: &str = "country-not-it";
    /// Not an X.509 v3 certificate (error).
    pub const VERSION_NOT_V3: &str = "version-not-v3";
    /// Serial number zero, negative or longer than 20 octets (RFC 5280 §4.1.2.2) (warning).
    pub const SERIAL_INVALID: &str = "serial-invalid";
    /// notBefore is after notAfter (error).
    pub const VALIDITY_INVERTED: &str = "validity-inverted";
    /// Not yet valid at the time checked (error).
    pub const NOT_YET_VALID: &str = "not-yet-valid";
    /// Expired at the time checked (error).
    pub const EXPIRED: &str = "expired";
    /// The key is not RSA, which CNS cards use (warning).
    pub const KEY_NOT_RSA: &str = "key-not-rsa";
    /// RSA key under 2048 bits (warning: 1024-bit cards are still in use).
    pub const RSA_KEY_UNDER_2048: &str = "rsa-key-under-2048";
    /// RSA key under 1024 bits (error).
    pub const RSA_KEY_UNDER_1024: &str = "rsa-key-under-1024";
    /// RSA public key cannot be read (error).
    pub const KEY_MALFORMED: &str = "key-malformed";
    /// No keyUsage extension (error).
    pub const KEY_USAGE_MISSING: &str = "key-usage-missing";
    /// keyUsage lacks digitalSignature (error).
    pub const DIGITAL_SIGNATURE_MISSING: &str = "digital-signature-missing";
    /// keyUsage has nonRepudiation, which belongs to signature certificates (error).
    pub const NON_REPUDIATION_PRESENT: &str = "non-repudiation-present";
    /// keyUsage has keyCertSign or cRLSign on a holder certificate (error).
    pub const KEY_USAGE_CA: &str = "key-usage-ca";
    /// keyUsage is not marked critical (warning).
    pub const KEY_USAGE_NOT_CRITICAL: &str = "key-usage-not-critical";
    /// No extendedKeyUsage, or it lacks clientAuth (error).
    pub const CLIENT_AUTH_MISSING: &str = "client-auth-missing";
    /// extendedKeyUsage includes anyExtendedKeyUsage (warning).
    pub const ANY_EXTENDED_KEY_USAGE: &str = "any-extended-key-usage";
    /// No known CNS policy OID, and not a CIE either (error).
    pub const CNS_POLICY_MISSING: &str = "cns-policy-missing";
    /// Only the CIE policy, no CNS policy (warning).
    pub const CIE_POLICY_ONLY: &str = "cie-policy-only";
    /// basicConstraints says CA=true on a holder certificate (error).
    pub const BASIC_CONSTRAINTS_CA: &str = "basic-constraints-ca";
    /// An extension's value cannot be decoded (error).
    pub const EXTENSION_MALFORMED: &str = "extension-malformed";
    /// The same extension appears twice (RFC 5280 §4.2) (error).
    pub const EXTENSION_DUPLICATE: &str = "extension-duplicate";
    /// A critical extension a relying party does not process (error).
    pub const EXTENSION_UNKNOWN_CRITICAL: &str = "extension-unknown-critical";
    /// Signed with SHA-1 (warning: verifiers increasingly refuse it).
    pub const SIGNATURE_SHA1: &str = "signature-sha1";
    /// Signed with MD2/MD5 (error).
    pub const SIGNATURE_WEAK: &str = "signature-weak";
    /// Signature algorithm not known to this crate (warning).
    pub const SIGNATURE_ALGORITHM_UNKNOWN: &str = "signature-algorithm-unknown";
    /// The inner and outer signature algorithms differ (RFC 5280 §4.1.1.2) (error).
    pub const SIGNATURE_ALGORITHM_MISMATCH: &str = "signature-algorithm-mismatch";
    /// Issuer equals subject: a self-issued certificate, not a holder certificate (error).
    pub const SELF_ISSUED: &str = "self-issued";

    /// Every code above, for documentation and exhaustive tests.
    pub const ALL: &[&str] = &[
        CN_MISSING,
        CN_NOT_CNS_FORM,
        CN_HASH_MALFORMED,
        CODICE_FISCALE_INVALID,
        CARD_ID_INVALID,
        CARD_ID_LUHN,
        NAMES_MISMATCH,
        SURNAME_MISSING,
        GIVEN_NAME_MISSING,
        ISSUING_ADMINISTRATION_MISSING,
        COUNTRY_NOT_IT,
        VERSION_NOT_V3,
        SERIAL_INVALID,
        VALIDITY_INVERTED,
        NOT_YET_VALID,
        EXPIRED,
        KEY_NOT_RSA,
        RSA_KEY_UNDER_2048,
        RSA_KEY_UNDER_1024,
        KEY_MALFORMED,
        KEY_USAGE_MISSING,
        DIGITAL_SIGNATURE_MISSING,
        NON_REPUDIATION_PRESENT,
        KEY_USAGE_CA,
        KEY_USAGE_NOT_CRITICAL,
        CLIENT_AUTH_MISSING,
        ANY_EXTENDED_KEY_USAGE,
        CNS_POLICY_MISSING,
        CIE_POLICY_ONLY,
        BASIC_CONSTRAINTS_CA,
        EXTENSION_MALFORMED,
        EXTENSION_DUPLICATE,
        EXTENSION_UNKNOWN_CRITICAL,
        SIGNATURE_SHA1,
        SIGNATURE_WEAK,
        SIGNATURE_ALGORITHM_UNKNOWN,
        SIGNATURE_ALGORITHM_MISMATCH,
        SELF_ISSUED,
    ];
}

/// Signature algorithms, by OID (RFC 3279, RFC 4055, RFC 5758, RFC 8410).
fn signature_algorithm_class(alg: &ObjectIdentifier) -> SigClass {
    match alg.to_string().as_str() {
        "1.2.840.113549.1.1.11"
        | "1.2.840.113549.1.1.12"
        | "1.2.840.113549.1.1.13"
        | "1.2.840.113549.1.1.10"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10045.4.3.3"
        | "1.2.840.10045.4.3.4"
        | "1.3.101.112" => SigClass::Good,
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.3.14.3.2.29" => SigClass::Sha1,
        "1.2.840.113549.1.1.2" | "1.2.840.113549.1.1.4" => SigClass::Weak,
        _ => SigClass::Unknown,
    }
}

enum SigClass {
    Good,
    Sha1,
    Weak,
    Unknown,
}

/// Extensions a relying party using rustls-webpki processes (its `remember_extension`: id-ce 15,
/// 17, 19, 30, 31, 37); any other critical one makes it reject the certificate.
const PROCESSED_EXTENSIONS: [ObjectIdentifier; 6] = [
    oid::EXT_KEY_USAGE,
    oid::EXT_EXTENDED_KEY_USAGE,
    oid::EXT_BASIC_CONSTRAINTS,
    oid::EXT_SUBJECT_ALT_NAME,
    oid::EXT_NAME_CONSTRAINTS,
    oid::EXT_CRL_DISTRIBUTION_POINTS,
];

impl CnsCertificate {
    /// Checks the certificate against the CNS authentication profile at time `at`.
    /// An empty list means it conforms.
    pub fn conformance(&self, at: OffsetDateTime) -> Vec<Finding> {
        let mut f = Findings::default();
        self.check_identity(&mut f);
        self.check_basics(&mut f, at);
        self.check_key(&mut f);
        self.check_extensions(&mut f);
        f.0
    }

    fn check_identity(&self, f: &mut Findings) {
        match self.common_name() {
            None => f.error(codes::CN_MISSING, "the subject has no common name (CN)".into()),
            Some(cn) => match CnParts::split(&cn) {
                Err(Error::NotCnsIdentity { reason, .. }) => f.error(
                    codes::CN_NOT_CNS_FORM,
                    format!(
                        "CN {cn:?} is not in the CNS form <codice fiscale>/<card id>.<hash>: {reason}"
                    ),
                ),
                Err(e) => f.error(codes::CN_NOT_CNS_FORM, e.to_string()),
                Ok(parts) => {
                    match CodiceFiscale::parse(&parts.codice_fiscale) {
                        Err(e) => f.error(codes::CODICE_FISCALE_INVALID, e.to_string()),
                        Ok(cf) => {
                            if let (Some(sn), Some(gn)) = (self.surname(), self.given_name()) {
                                if !cf.matches_names(&sn, &gn) {
                                    f.warning(
                                        codes::NAMES_MISMATCH,
                                        format!(
                                            "the codice fiscale {cf} does not begin with the letters of SN {sn:?} and givenName {gn:?}"
                                        ),
                                    );
                                }
                            }
                        }
                    }
                    match CardId::parse(&parts.card_id) {
                        Ok(_) => {}
                        Err(e @ Error::CardIdLuhn { .. }) => f.error(codes::CARD_ID_LUHN, e.to_string()),
                        Err(e) => f.error(codes::CARD_ID_INVALID, e.to_string()),
                    }
                    if parts.data_hash_bytes().is_none() {
                        f.warning(
                            codes::CN_HASH_MALFORMED,
                            format!(
                                "the hash part {:?} of the CN is not 28 characters of base64 (a SHA-1 digest)",
                                parts.data_hash
                            ),
                        );
                    }
                }
            },
        }
        if self.surname().is_none() {
            f.warning(
                codes::SURNAME_MISSING,
                "the subject has no surname (SN)".into(),
            );
        }
        if self.given_name().is_none() {
            f.warning(
                codes::GIVEN_NAME_MISSING,
                "the subject has no given name (givenName)".into(),
            );
        }
        if self.issuing_administration().is_none() {
            f.warning(
                codes::ISSUING_ADMINISTRATION_MISSING,
                "the subject has no OU naming the issuing administration".into(),
            );
        }
        match self.country() {
            Some(c) if c == "IT" => {}
            Some(c) => f.warning(
                codes::COUNTRY_NOT_IT,
                format!("the subject country is {c:?}, not IT"),
            ),
            None => f.warning(
                codes::COUNTRY_NOT_IT,
                "the subject has no country (C=IT)".into(),
            ),
        }
        let tbs = &self.x509().tbs_certificate;
        if tbs.issuer == tbs.subject {
            f.error(
                codes::SELF_ISSUED,
                "issuer and subject are the same: this is a CA or self-signed certificate, not a card holder's".into(),
            );
        }
    }

    fn check_basics(&self, f: &mut Findings, at: OffsetDateTime) {
        let tbs = &self.x509().tbs_certificate;
        if tbs.version != Version::V3 {
            f.error(
                codes::VERSION_NOT_V3,
                format!(
                    "the certificate is X.509 {:?}, the CNS profile needs v3 extensions",
                    tbs.version
                ),
            );
        }
        let serial = tbs.serial_number.as_bytes();
        let negative = serial.first().is_some_and(|b| b & 0x80 != 0);
        let zero = serial.iter().all(|&b| b == 0);
        let significant = serial.iter().skip_while(|&&b| b == 0).count();
        if negative || zero || significant > 20 {
            f.warning(
                codes::SERIAL_INVALID,
                format!(
                    "the serial number {} is not a positive integer of at most 20 octets (RFC 5280 4.1.2.2)",
                    self.serial_hex()
                ),
            );
        }
        if let (Some(nb), Some(na)) = (self.not_before(), self.not_after()) {
            if nb > na {
                f.error(
                    codes::VALIDITY_INVERTED,
                    format!(
                        "notBefore {} is after notAfter {}",
                        rfc3339(nb),
                        rfc3339(na)
                    ),
                );
            }
            if at < nb {
                f.error(
                    codes::NOT_YET_VALID,
                    format!(
                        "not valid before {} (checked at {})",
                        rfc3339(nb),
                        rfc3339(at)
                    ),
                );
            }
            if at > na {
                f.error(
                    codes::EXPIRED,
                    format!("expired on {} (checked at {})", rfc3339(na), rfc3339(at)),
                );
            }
        }
        let outer = self.x509().signature_algorithm.oid;
        if tbs.signature != self.x509().signature_algorithm {
            f.error(
                codes::SIGNATURE_ALGORITHM_MISMATCH,
                format!(
                    "the signed part names signature algorithm {} but the certificate says {}",
                    tbs.signature.oid, outer
                ),
            );
        }
        match signature_algorithm_class(&outer) {
            SigClass::Good => {}
            SigClass::Sha1 => f.warning(
                codes::SIGNATURE_SHA1,
                format!("signed with SHA-1 ({outer}): many verifiers refuse it"),
            ),
            SigClass::Weak => f.error(
                codes::SIGNATURE_WEAK,
                format!("signed with a broken hash (MD2/MD5, {outer})"),
            ),
            SigClass::Unknown => f.warning(
                codes::SIGNATURE_ALGORITHM_UNKNOWN,
                format!("unknown signature algorithm {outer}"),
            ),
        }
    }

    fn check_key(&self, f: &mut Findings) {
        let key = self.key();
        if key.algorithm == "RSA" || key.algorithm == "RSA-PSS" {
            match key.bits {
                None => f.error(codes::KEY_MALFORMED, "the RSA public key cannot be read".into()),
                Some(b) if b < 1024 => f.error(
                    codes::RSA_KEY_UNDER_1024,
                    format!("the RSA key has {b} bits, far too small to be trusted"),
                ),
                Some(b) if b < 2048 => f.warning(
                    codes::RSA_KEY_UNDER_2048,
                    format!("the RSA key has {b} bits, under 2048 (1024-bit CNS 1.0 cards are still in use)"),
                ),
                Some(_) => {}
            }
        } else {
            f.warning(
                codes::KEY_NOT_RSA,
                format!(
                    "the key is {}, while CNS cards hold RSA keys",
                    key.algorithm
                ),
            );
        }
    }

    fn check_extensions(&self, f: &mut Findings) {
        let mut seen = HashSet::new();
        for ext in self.extensions() {
            if !seen.insert(ext.extn_id) {
                f.error(
                    codes::EXTENSION_DUPLICATE,
                    format!("extension {} appears more than once", ext.extn_id),
                );
            }
            if ext.critical && !PROCESSED_EXTENSIONS.contains(&ext.extn_id) {
                f.error(
                    codes::EXTENSION_UNKNOWN_CRITICAL,
                    format!("critical extension {} is not one relying parties process: TLS libraries such as rustls reject the certificate", ext.extn_id),
                );
            }
        }

        // keyUsage
        match self.extension::<KeyUsage>(oid::EXT_KEY_USAGE) {
            None => f.error(
                codes::KEY_USAGE_MISSING,
                "no keyUsage extension (digitalSignature expected)".into(),
            ),
            Some(Err(e)) => f.error(
                codes::EXTENSION_MALFORMED,
                format!("keyUsage cannot be decoded: {e}"),
            ),
            Some(Ok(ku)) => {
                if !ku.digital_signature() {
                    f.error(
                        codes::DIGITAL_SIGNATURE_MISSING,
                        "keyUsage lacks digitalSignature, needed for TLS client authentication"
                            .into(),
                    );
                }
                if ku.non_repudiation() {
                    f.error(
                        codes::NON_REPUDIATION_PRESENT,
                        "keyUsage has nonRepudiation: that belongs to a qualified-signature certificate, not the CNS authentication one".into(),
                    );
                }
                if ku.key_cert_sign() || ku.crl_sign() {
                    f.error(
                        codes::KEY_USAGE_CA,
                        "keyUsage has keyCertSign or cRLSign, which only CA certificates may have"
                            .into(),
                    );
                }
                if self.extension_critical(oid::EXT_KEY_USAGE) == Some(false) {
                    f.warning(
                        codes::KEY_USAGE_NOT_CRITICAL,
                        "keyUsage is not marked critical".into(),
                    );
                }
            }
        }

        // extendedKeyUsage
        match self.extension::<ExtendedKeyUsage>(oid::EXT_EXTENDED_KEY_USAGE) {
            None => f.error(
                codes::CLIENT_AUTH_MISSING,
                "no extendedKeyUsage extension: clientAuth (1.3.6.1.5.5.7.3.2) expected".into(),
            ),
            Some(Err(e)) => f.error(
                codes::EXTENSION_MALFORMED,
                format!("extendedKeyUsage cannot be decoded: {e}"),
            ),
            Some(Ok(eku)) => {
                if !eku.0.contains(&oid::KP_CLIENT_AUTH) {
                    f.error(
                        codes::CLIENT_AUTH_MISSING,
                        "extendedKeyUsage lacks clientAuth (1.3.6.1.5.5.7.3.2): the certificate cannot log in over TLS".into(),
                    );
                }
                if eku.0.contains(&oid::ANY_EXTENDED_KEY_USAGE) {
                    f.warning(
                        codes::ANY_EXTENDED_KEY_USAGE,
                        "extendedKeyUsage includes anyExtendedKeyUsage".into(),
                    );
                }
            }
        }

        // certificatePolicies
        match self.extension::<CertificatePolicies>(oid::EXT_CERTIFICATE_POLICIES) {
            Some(Err(e)) => f.error(
                codes::EXTENSION_MALFORMED,
                format!("certificatePolicies cannot be decoded: {e}"),
            ),
            other => {
                let policies: Vec<ObjectIdentifier> = match other {
                    Some(Ok(p)) => p.0.into_iter().map(|i| i.policy_identifier).collect(),
                    _ => Vec::new(),
                };
                if !policies.iter().any(|p| CNS_POLICIES.contains(p)) {
                    if policies.contains(&oid::POLICY_CIE) {
                        f.warning(
                            codes::CIE_POLICY_ONLY,
                            "the only known policy is the CIE one (1.3.76.47.4): an identity-card certificate, not a CNS one".into(),
                        );
                    } else {
                        f.error(
                            codes::CNS_POLICY_MISSING,
                            "no known CNS policy (1.3.76.16.2.1, or Lombardy's 1.3.159.6.1.3.2.10 / 1.3.76.12.1.1.10.2.2.10)".into(),
                        );
                    }
                }
            }
        }

        // basicConstraints
        match self.extension::<BasicConstraints>(oid::EXT_BASIC_CONSTRAINTS) {
            None => {}
            Some(Err(e)) => f.error(
                codes::EXTENSION_MALFORMED,
                format!("basicConstraints cannot be decoded: {e}"),
            ),
            Some(Ok(bc)) if bc.ca => f.error(
                codes::BASIC_CONSTRAINTS_CA,
                "basicConstraints says CA=true: a card holder's certificate must not be a CA"
                    .into(),
            ),
            Some(Ok(_)) => {}
        }
    }
}

/// RFC 3339 rendering used in messages and reports.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn error(&mut self, code: &'static str, message: String) {
        self.0.push(Finding {
            code,
            severity: Severity::Error,
            message,
        });
    }
    fn warning(&mut self, code: &'static str, message: String) {
        self.0.push(Finding {
            code,
            severity: Severity::Warning,
            message,
        });
    }
}
