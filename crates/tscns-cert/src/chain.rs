//! Chain verification for TLS client authentication, delegated to rustls-webpki.

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};

use crate::{CnsCertificate, Error};

impl CnsCertificate {
    /// Verifies that the certificate chains to one of `anchors` (DER certificates the caller
    /// trusts, for example the AgID list of CNS CAs) through any of `intermediates` (DER), is
    /// valid at `at`, and may be used for TLS client authentication (extendedKeyUsage clientAuth).
    ///
    /// Path building and signature checks are rustls-webpki's (with the `ring` provider); this
    /// crate hard-codes no trust. The error says why the chain fails, in words.
    pub fn verify_chain<A: AsRef<[u8]>, I: AsRef<[u8]>>(
        &self,
        anchors: &[A],
        intermediates: &[I],
        at: OffsetDateTime,
    ) -> Result<(), Error> {
        let anchor_ders: Vec<CertificateDer<'_>> = anchors
            .iter()
            .map(|a| CertificateDer::from(a.as_ref()))
            .collect();
        let mut trust_anchors = Vec::with_capacity(anchor_ders.len());
        for (index, der) in anchor_ders.iter().enumerate() {
            let ta = webpki::anchor_from_trusted_cert(der).map_err(|e| Error::BadTrustAnchor {
                index,
                reason: describe(&e),
            })?;
            trust_anchors.push(ta);
        }
        if trust_anchors.is_empty() {
            return Err(Error::ChainInvalid("no trust anchors were given".into()));
        }
        let intermediate_ders: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|i| CertificateDer::from(i.as_ref()))
            .collect();
        let leaf_der = CertificateDer::from(self.der());
        let leaf = EndEntityCert::try_from(&leaf_der).map_err(|e| {
            Error::ChainInvalid(format!("the certificate itself: {}", describe(&e)))
        })?;
        let seconds = u64::try_from(at.unix_timestamp())
            .map_err(|_| Error::ChainInvalid("the verification time is before 1970".into()))?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &trust_anchors,
            &intermediate_ders,
            time,
            KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| Error::ChainInvalid(describe(&e)))
    }
}

/// Words for webpki's errors (its own Display is the Debug form).
fn describe(e: &webpki::Error) -> String {
    use webpki::Error as W;
    match e {
        W::UnknownIssuer => "no given trust anchor or intermediate issued it (unknown issuer)".into(),
        W::CertExpired { .. } => "a certificate in the chain has expired".into(),
        W::CertNotValidYet { .. } => "a certificate in the chain is not valid yet".into(),
        W::InvalidSignatureForPublicKey => {
            "a signature in the chain does not verify with the issuer's key".into()
        }
        W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a signature in the chain uses an algorithm or key size that is not accepted (SHA-1 and RSA keys under 2048 bits are refused)".into()
        }
        W::RequiredEkuNotFoundContext(_) => {
            "the certificate is not valid for client authentication (extendedKeyUsage clientAuth missing)".into()
        }
        W::CaUsedAsEndEntity => "the certificate is a CA certificate, not a holder's".into(),
        W::EndEntityUsedAsCa => "an intermediate is not a CA certificate".into(),
        W::UnsupportedCriticalExtension => {
            "a certificate in the chain has a critical extension the verifier does not process".into()
        }
        W::UnsupportedCertVersion => "a certificate in the chain is not X.509 v3".into(),
        W::InvalidCertValidity => "a certificate's validity period is inverted".into(),
        W::PathLenConstraintViolated => "the chain is longer than a CA's path length allows".into(),
        W::BadDer | W::BadDerTime | W::TrailingData(_) => "a certificate is not valid DER".into(),
        W::MaximumPathDepthExceeded | W::MaximumPathBuildCallsExceeded => {
            "the chain is too long or too complex to build".into()
        }
        other => format!("{other:?}"),
    }
}
