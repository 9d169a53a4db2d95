//! Reading certificates given as PEM or DER (PEM through `rustls-pki-types`' `PemObject`).

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

/// All certificates in `data`: PEM (one or more `CERTIFICATE` blocks; other blocks are skipped) or
/// one DER certificate.
pub(crate) fn certificates(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    if data.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(data.to_vec())]);
    }
    if std::str::from_utf8(data).is_err() {
        return Err("certificate file is neither PEM nor DER".into());
    }
    CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_der_and_garbage() {
        let pem = include_bytes!("../tests/fixtures/xmlsec1-signer.pem");
        let certs = certificates(pem).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certificates(certs[0].as_ref()).unwrap(), certs);
        let two = [&pem[..], &pem[..]].concat();
        assert_eq!(certificates(&two).unwrap().len(), 2);
        assert!(certificates(b"\xff\xfe").is_err());
        assert!(certificates(b"-----BEGIN CERTIFICATE-----\nAAAA").is_err());
        assert!(
            certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(certificates(b"no pem here").unwrap().is_empty());
    }
}
