//! Verification of a sealed certificate: the last signature covers the whole file, its CMS
//! digest and signature hold, the signing-certificate-v2 attribute names the signer, and the
//! signer chains to one of the caller's anchors.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::OctetString;
use der::{Decode, Encode, Reader, SliceReader};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::Certificate;

use super::seal::{oid, rfind, SigningCertificateV2};
use super::DocumentError;

/// Who sealed a PDF, when, and which certificate it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The seal certificate's subject (RFC 4514 string).
    pub signer: String,
    /// The seal certificate, DER.
    pub signer_certificate: Vec<u8>,
    /// The signing time (`/M` of the signature dictionary, covered by the signature).
    pub signed_at: OffsetDateTime,
    /// The certificate id (from the signed `/Reason`).
    pub certificate_id: String,
}

fn invalid(s: impl Into<String>) -> DocumentError {
    DocumentError::Invalid(s.into())
}

fn parse_range(pdf: &[u8]) -> Result<[usize; 4], DocumentError> {
    let at = rfind(pdf, b"/ByteRange").ok_or_else(|| invalid("the PDF has no signature"))?;
    let tail = &pdf[at + 10..pdf.len().min(at + 120)];
    let text = String::from_utf8_lossy(tail);
    let open = text.find('[').ok_or_else(|| invalid("bad /ByteRange"))?;
    let close = text.find(']').ok_or_else(|| invalid("bad /ByteRange"))?;
    let nums: Vec<usize> = text
        .get(open + 1..close)
        .unwrap_or("")
        .split_whitespace()
        .map(|n| n.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("bad /ByteRange"))?;
    match nums.as_slice() {
        [a, b, c, d] => Ok([*a, *b, *c, *d]),
        _ => Err(invalid("/ByteRange needs four numbers")),
    }
}

fn dict_string(dict: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(dict);
    let at = text.find(&format!("{key} ("))? + key.len() + 2;
    let mut out = String::new();
    let mut escaped = false;
    for c in text[at..].chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ')' {
            return Some(out);
        } else {
            out.push(c);
        }
    }
    None
}

fn parse_pdf_date(s: &str) -> Option<OffsetDateTime> {
    let d = s.strip_prefix("D:")?;
    let n = |r: std::ops::Range<usize>| d.get(r).and_then(|x| x.parse::<u32>().ok());
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc())
}

fn verify_rsa_sha256(spki_cert: &Certificate, message: &[u8], sig: &[u8]) -> bool {
    let Some(key) = spki_cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
    else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(message, sig)
        .is_ok()
}

/// Whether `issuer` signed `cert` (RSA PKCS#1 with SHA-256, 384 or 512; ECDSA P-256, P-384).
fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    let Some(sig) = cert.signature.as_bytes() else {
        return false;
    };
    let Some(key) = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
    else {
        return false;
    };
    use ring::signature as s;
    let alg: &dyn s::VerificationAlgorithm = match cert.signature_algorithm.oid.to_string().as_str()
    {
        "1.2.840.113549.1.1.11" => &s::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" => &s::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" => &s::RSA_PKCS1_2048_8192_SHA512,
        "1.2.840.10045.4.3.2" => &s::ECDSA_P256_SHA256_ASN1,
        "1.2.840.10045.4.3.3" => &s::ECDSA_P384_SHA384_ASN1,
        _ => return false,
    };
    s::UnparsedPublicKey::new(alg, key)
        .verify(&tbs, sig)
        .is_ok()
}

fn valid_at(cert: &Certificate, t: OffsetDateTime) -> bool {
    let v = &cert.tbs_certificate.validity;
    let nb = v.not_before.to_unix_duration().as_secs();
    let na = v.not_after.to_unix_duration().as_secs();
    let t = u64::try_from(t.unix_timestamp()).unwrap_or(0);
    nb <= t && t <= na
}

/// Verifies the municipality's seal on `pdf` against the trust anchors `anchors` (DER CA or
/// seal certificates). The seal must cover the whole file: anything appended or changed after
/// sealing is an error.
pub fn verify(pdf: &[u8], anchors: &[Vec<u8>]) -> Result<Sealed, DocumentError> {
    let [a, b, c, d] = parse_range(pdf)?;
    if a != 0 || b >= c || c.checked_add(d) != Some(pdf.len()) {
        return Err(invalid(
            "the signature does not cover the whole document (modified after sealing)",
        ));
    }
    let contents = &pdf[b..c];
    if contents.first() != Some(&b'<') || contents.last() != Some(&b'>') {
        return Err(invalid("the signature contents are not a hex string"));
    }
    let hex = &contents[1..contents.len() - 1];
    if !hex.len().is_multiple_of(2) {
        return Err(invalid("odd hex contents"));
    }
    let bytes: Vec<u8> = hex
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| invalid("bad hex in the signature contents"))?;
    let mut reader = SliceReader::new(&bytes).map_err(|e| invalid(e.to_string()))?;
    let ci: ContentInfo = reader.decode().map_err(|e| invalid(format!("CMS: {e}")))?;
    if ci.content_type != oid::SIGNED_DATA {
        return Err(invalid("the CMS is not SignedData"));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| invalid(format!("SignedData: {e}")))?;
    let signer = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| invalid("no signer"))?;
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer.sid else {
        return Err(invalid(
            "the signer is not named by issuer and serial number",
        ));
    };
    let certs: Vec<Certificate> = sd
        .certificates
        .as_ref()
        .map(|s| {
            s.0.iter()
                .filter_map(|c| match c {
                    cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let cert = certs
        .iter()
        .find(|c| {
            c.tbs_certificate.issuer == sid.issuer
                && c.tbs_certificate.serial_number == sid.serial_number
        })
        .ok_or_else(|| invalid("the signer's certificate is not in the CMS"))?;
    let cert_der = cert.to_der().map_err(|e| invalid(e.to_string()))?;
    if signer.digest_alg.oid != oid::SHA256 {
        return Err(invalid("the digest is not SHA-256"));
    }
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| invalid("no signed attributes"))?;
    let attr = |o| {
        attrs
            .iter()
            .find(|a| a.oid == o)
            .and_then(|a| a.values.iter().next())
    };
    let content_type = attr(oid::CONTENT_TYPE).ok_or_else(|| invalid("no content-type"))?;
    if content_type.decode_as::<der::asn1::ObjectIdentifier>().ok() != Some(oid::DATA) {
        return Err(invalid("content-type is not id-data"));
    }
    let md = attr(oid::MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or_else(|| invalid("no message-digest"))?;
    let mut h = Sha256::new();
    h.update(&pdf[..b]);
    h.update(&pdf[c..]);
    if md.as_bytes() != h.finalize().as_slice() {
        return Err(invalid(
            "the document was modified after sealing (digest mismatch)",
        ));
    }
    let scv2 = attr(oid::SIGNING_CERTIFICATE_V2)
        .and_then(|v| v.decode_as::<SigningCertificateV2>().ok())
        .ok_or_else(|| invalid("no signing-certificate-v2"))?;
    let named = scv2
        .certs
        .first()
        .is_some_and(|id| id.cert_hash.as_bytes() == Sha256::digest(&cert_der).as_slice());
    if !named {
        return Err(invalid(
            "signing-certificate-v2 does not name the signer's certificate",
        ));
    }
    let signed = attrs.to_der().map_err(|e| invalid(e.to_string()))?;
    if !verify_rsa_sha256(cert, &signed, signer.signature.as_bytes()) {
        return Err(invalid("the RSA signature does not verify"));
    }
    // The signature dictionary: from the last `/Type /Sig` before the contents.
    let dict_start = rfind(&pdf[..b], b"/Type /Sig").ok_or_else(|| invalid("no /Type /Sig"))?;
    let dict = &pdf[dict_start..b];
    let signed_at = dict_string(dict, "/M")
        .as_deref()
        .and_then(parse_pdf_date)
        .ok_or_else(|| invalid("no signing time /M"))?;
    let reason = dict_string(dict, "/Reason").unwrap_or_default();
    let certificate_id = reason
        .split("Certificato n. ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|s| s.trim_end_matches([',', '.', ';']).to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("the seal names no certificate id"))?;
    // The chain, up to an anchor.
    let anchors: Vec<Certificate> = anchors
        .iter()
        .filter_map(|a| Certificate::from_der(a).ok())
        .collect();
    if !valid_at(cert, signed_at) {
        return Err(invalid(
            "the seal certificate was not valid at the signing time",
        ));
    }
    let mut current = cert.clone();
    let mut trusted = false;
    for _ in 0..6 {
        if anchors.contains(&current) || anchors.iter().any(|a| issued_by(&current, a)) {
            trusted = true;
            break;
        }
        match certs
            .iter()
            .find(|i| **i != current && issued_by(&current, i))
        {
            Some(i) => current = i.clone(),
            None => break,
        }
    }
    if !trusted {
        return Err(invalid(
            "the seal certificate does not chain to a trusted anchor",
        ));
    }
    Ok(Sealed {
        signer: cert.tbs_certificate.subject.to_string(),
        signer_certificate: cert_der,
        signed_at,
        certificate_id,
    })
}
