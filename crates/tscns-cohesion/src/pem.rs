//! Reading certificates given as PEM or DER.

use base64::Engine as _;
use rustls_pki_types::CertificateDer;

/// All certificates in `data`: PEM (one or more `CERTIFICATE` blocks) or one DER certificate.
pub(crate) fn certificates(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    if data.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(data.to_vec())]);
    }
    let text = std::str::from_utf8(data).map_err(|_| "certificate file is neither PEM nor DER")?;
    let mut out = Vec::new();
    let mut rest = text;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    while let Some(i) = rest.find(BEGIN) {
        let after = &rest[i + BEGIN.len()..];
        let j = after.find(END).ok_or("PEM certificate without END line")?;
        let b64: String = after[..j].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64 in PEM certificate: {e}"))?;
        out.push(CertificateDer::from(der));
        rest = &after[j + END.len()..];
    }
    Ok(out)
}
