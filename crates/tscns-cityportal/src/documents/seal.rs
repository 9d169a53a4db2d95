//! The municipality's electronic seal: PAdES-B-B (ETSI EN 319 142-1) in an incremental update.
//!
//! The update adds a signature dictionary (`/SubFilter /ETSI.CAdES.detached`), an invisible
//! signature widget on the first page, and the catalog's `/AcroForm`; the CMS SignedData
//! (RFC 5652, built with the `cms` crate) signs SHA-256 over the byte range with the signed
//! attributes content-type, message-digest and signing-certificate-v2 (RFC 5035). The signing
//! time is the dictionary's `/M`, as PAdES wants (no signing-time attribute).

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::{Attribute, AttributeValue};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

// The one place this crate names the signing-key trait (see the crate docs).
pub use tscns_cert::sign::SigningKey as SealKey;
use tscns_cert::sign::{SignError, SignatureScheme};

use super::syntax::{self, Value};
use super::DocumentError;

/// The most bytes reserved for the CMS in `/Contents` (hex doubles it in the file). A seal
/// reserves what its CMS takes (measured on a CMS with the same chain and a signature of the
/// key's length) and 64 bytes more, at most this.
pub const CONTENTS_RESERVED: usize = 16 * 1024;

/// Bytes reserved beyond the measured CMS.
const RESERVE_SLACK: usize = 64;

/// What a seal needs of its key's chain, parsed once: the certificates, and the bytes to
/// reserve for the CMS.
struct Prepared {
    chain_der: Vec<Vec<u8>>,
    key_bits: usize,
    cert: Certificate,
    chain: Vec<Certificate>,
    reserved: usize,
    /// The DER of the signed attributes and of the CMS with placeholders, when each
    /// placeholder occurs once: a seal patches in its digest and signature.
    template: Option<Template>,
}

/// A CMS made with placeholder digest and signature, and where they are.
struct Template {
    attrs: Vec<u8>,
    attrs_digest: usize,
    cms: Vec<u8>,
    cms_digest: usize,
    cms_signature: usize,
    signature_len: usize,
}

/// Placeholder bytes: the SHA-256 of a label, repeated to `n` bytes (found once, or the
/// template is not used).
fn placeholder(label: &[u8], n: usize) -> Vec<u8> {
    let block = Sha256::digest(label);
    block.iter().copied().cycle().take(n).collect()
}

/// Where `needle` occurs in `hay`, if exactly once.
fn only_at(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut found = memchr::memmem::find_iter(hay, needle);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

impl Template {
    /// The template of a CMS made with `digest` and `signature` as placeholders, if each is
    /// found once.
    fn locate(attrs: Vec<u8>, cms: Vec<u8>, digest: &[u8], signature: &[u8]) -> Option<Template> {
        Some(Template {
            attrs_digest: only_at(&attrs, digest)?,
            cms_digest: only_at(&cms, digest)?,
            cms_signature: only_at(&cms, signature)?,
            signature_len: signature.len(),
            attrs,
            cms,
        })
    }
}

/// The chain parsed and the reservation measured (the last chain prepared is kept: a portal
/// seals with one key).
fn prepared(
    chain_der: &[Vec<u8>],
    key_bits: usize,
) -> Result<std::sync::Arc<Prepared>, DocumentError> {
    use std::sync::{Arc, Mutex, PoisonError};
    static LAST: Mutex<Option<Arc<Prepared>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = last.as_ref() {
        if p.key_bits == key_bits && p.chain_der[..] == chain_der[..] {
            return Ok(Arc::clone(p));
        }
    }
    let cert_der = chain_der
        .first()
        .ok_or_else(|| DocumentError::Key("the seal key has no certificate".into()))?;
    let cert = Certificate::from_der(cert_der)
        .map_err(|e| DocumentError::Key(format!("seal certificate: {e}")))?;
    let chain = chain_der
        .iter()
        .map(|c| Certificate::from_der(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DocumentError::Key(format!("seal certificate chain: {e}")))?;
    // The CMS's length depends on the chain and on the signature's length only: one made with
    // placeholders measures it, and is the template seals patch.
    let e = |e: der::Error| DocumentError::Sign(e.to_string());
    let digest = placeholder(b"tscns seal digest placeholder", 32);
    let signature = placeholder(
        b"tscns seal signature placeholder",
        key_bits.div_ceil(8).max(1),
    );
    let attrs = signed_attributes(&cert, cert_der, &digest)?;
    let attrs_der = attrs.to_der().map_err(e)?;
    let cms_der = cms(&cert, &chain, attrs, signature.clone())?;
    let measured = cms_der.len();
    let reserved = measured + RESERVE_SLACK;
    if reserved > CONTENTS_RESERVED {
        return Err(DocumentError::Key(format!(
            "the seal's CMS would take {measured} bytes, more than the {CONTENTS_RESERVED} a seal reserves: a certificate chain that long cannot seal"
        )));
    }
    let p = Arc::new(Prepared {
        template: Template::locate(attrs_der, cms_der, &digest, &signature),
        chain_der: chain_der.to_vec(),
        key_bits,
        cert,
        chain,
        reserved,
    });
    *last = Some(Arc::clone(&p));
    Ok(p)
}

/// Object identifiers (RFC 5652, RFC 5035, RFC 8017, NIST).
pub(crate) mod oid {
    use der::asn1::ObjectIdentifier as Oid;
    /// id-data.
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    /// id-signedData.
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    /// id-contentType.
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    /// id-messageDigest.
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    /// id-aa-signingCertificateV2.
    pub const SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// id-sha256.
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// rsaEncryption.
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
}

/// RFC 5035 `IssuerSerial`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

/// RFC 5035 `ESSCertIDv2` (hash algorithm: the default, SHA-256, so absent).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EssCertIdV2 {
    pub cert_hash: OctetString,
    pub issuer_serial: Option<IssuerSerial>,
}

/// RFC 5035 `SigningCertificateV2` (no policies).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

/// What the signature dictionary says.
#[derive(Debug, Clone)]
pub struct SealInfo {
    /// `/Name`: who seals, e.g. "Comune di San Benedetto del Tronto".
    pub name: String,
    /// `/Location`.
    pub location: String,
    /// `/Reason`; [`verify`](super::verify) reads the certificate id from `Certificato n. <id>`.
    pub reason: String,
    /// `/M`: the signing time.
    pub signing_time: OffsetDateTime,
}

/// An RSA seal key in a PKCS#8 file (DER or PEM), with its certificate chain.
pub struct Pkcs8Key {
    key: ring::signature::RsaKeyPair,
    chain: Vec<Vec<u8>>,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Pkcs8Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs8Key")
            .field("bits", &(self.key.public().modulus_len() * 8))
            .finish_non_exhaustive()
    }
}

fn pem_or_der(bytes: &[u8], label: &str) -> Result<Vec<Vec<u8>>, DocumentError> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN"));
    let Some(text) = text else {
        return Ok(vec![bytes.to_vec()]);
    };
    let mut out = Vec::new();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let stop = after
            .find(&end)
            .ok_or_else(|| DocumentError::Key(format!("unterminated PEM {label}")))?;
        let b64: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                .map_err(|e| DocumentError::Key(format!("PEM {label}: {e}")))?,
        );
        rest = &after[stop + end.len()..];
    }
    if out.is_empty() {
        return Err(DocumentError::Key(format!("no PEM {label} found")));
    }
    Ok(out)
}

impl Pkcs8Key {
    /// A key from PKCS#8 (DER or PEM `PRIVATE KEY`) and its chain (DER, or PEM with one or more
    /// `CERTIFICATE`s, the seal's own first).
    pub fn new(pkcs8: &[u8], chain: &[u8]) -> Result<Self, DocumentError> {
        let der = pem_or_der(pkcs8, "PRIVATE KEY")?
            .into_iter()
            .next()
            .ok_or_else(|| DocumentError::Key("empty key".into()))?;
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| DocumentError::Key(format!("not an RSA PKCS#8 key: {e}")))?;
        let chain = pem_or_der(chain, "CERTIFICATE")?;
        for c in &chain {
            Certificate::from_der(c)
                .map_err(|e| DocumentError::Key(format!("bad certificate: {e}")))?;
        }
        Ok(Pkcs8Key {
            key,
            chain,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// Reads the key and chain files.
    pub fn from_files(
        key: &std::path::Path,
        chain: &std::path::Path,
    ) -> Result<Self, DocumentError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| DocumentError::Key(format!("{}: {e}", p.display())))
        };
        Pkcs8Key::new(&read(key)?, &read(chain)?)
    }
}

impl tscns_cert::sign::SigningKey for Pkcs8Key {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.chain.clone()
    }
    fn key_bits(&self) -> usize {
        self.key.public().modulus_len() * 8
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        SignatureScheme::ALL.to_vec()
    }
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use ring::signature as s;
        let alg: &'static dyn s::RsaEncoding = match scheme {
            SignatureScheme::Pkcs1Sha256 => &s::RSA_PKCS1_SHA256,
            SignatureScheme::Pkcs1Sha384 => &s::RSA_PKCS1_SHA384,
            SignatureScheme::Pkcs1Sha512 => &s::RSA_PKCS1_SHA512,
            SignatureScheme::PssSha256 => &s::RSA_PSS_SHA256,
            SignatureScheme::PssSha384 => &s::RSA_PSS_SHA384,
            SignatureScheme::PssSha512 => &s::RSA_PSS_SHA512,
        };
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(alg, &self.rng, message, &mut sig)
            .map_err(|e| -> SignError { format!("RSA signing failed: {e}").into() })?;
        Ok(sig)
    }
}

/// A PDF string literal with `(`, `)` and `\` escaped; non-ASCII becomes `?` (PDFDocEncoding
/// would need a table; the seal's strings are ASCII in practice).
fn pdf_string(s: &str) -> String {
    let mut out = String::from("(");
    for c in s.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

fn pdf_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+00'00'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A dictionary object of the original file: its value and its text `<< ... >>`.
fn dictionary(
    pdf: &[u8],
    xref: &[(u32, usize, u16)],
    id: (u32, u16),
) -> Result<(Value, String), DocumentError> {
    let offset = xref
        .iter()
        .find(|(n, _, _)| *n == id.0)
        .map(|(_, offset, _)| *offset)
        .ok_or_else(|| DocumentError::Unsealable(format!("object {} is not in the xref", id.0)))?;
    let (value, raw) =
        syntax::object_at(pdf, offset, id.0, id.1).map_err(DocumentError::Unsealable)?;
    if !matches!(value, Value::Dict(_)) {
        return Err(DocumentError::Unsealable(format!(
            "object {} is not a dictionary",
            id.0
        )));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| DocumentError::Unsealable(format!("object {} is not text", id.0)))?;
    Ok((value, text.to_string()))
}

/// The first page of the page tree under the catalog.
fn first_page(
    pdf: &[u8],
    xref: &[(u32, usize, u16)],
    catalog: &Value,
) -> Result<((u32, u16), Value, String), DocumentError> {
    let no_page = || DocumentError::Unsealable("no page".into());
    let mut node = catalog
        .get(b"Pages")
        .and_then(Value::as_ref)
        .ok_or_else(no_page)?;
    // A page tree deeper than this is not one this crate writes.
    for _ in 0..16 {
        let (dict, raw) = dictionary(pdf, xref, node)?;
        if dict.get(b"Type").is_some_and(|t| t.is_name(b"Page")) {
            return Ok((node, dict, raw));
        }
        node = match dict.get(b"Kids") {
            Some(Value::Array(kids)) => kids.first().and_then(Value::as_ref).ok_or_else(no_page)?,
            _ => return Err(no_page()),
        };
    }
    Err(DocumentError::Unsealable(
        "the page tree is too deep".into(),
    ))
}

/// Adds `entry` to a raw dictionary `<< ... >>`.
fn with_entry(dict: &str, entry: &str) -> String {
    let inner = &dict[..dict.len() - 2];
    format!("{inner} {entry}>>")
}

/// Seals `pdf` (a PDF this crate produced) with `key`: PAdES-B-B in an incremental update.
pub fn seal(pdf: &[u8], key: &dyn SealKey, info: &SealInfo) -> Result<Vec<u8>, DocumentError> {
    seal_with_digest(pdf, key, info).map(|s| s.pdf)
}

/// A sealed PDF and the SHA-256 of the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPdf {
    /// The sealed PDF.
    pub pdf: Vec<u8>,
    /// SHA-256 of `pdf`.
    pub sha256: [u8; 32],
}

/// As [`seal`], and the SHA-256 of the sealed file, computed in the same pass as the digest
/// the seal signs (what a store keeps beside the file).
pub fn seal_with_digest(
    pdf: &[u8],
    key: &dyn SealKey,
    info: &SealInfo,
) -> Result<SealedPdf, DocumentError> {
    let mut owned = Vec::with_capacity(pdf.len() + UPDATE_ROOM);
    owned.extend_from_slice(pdf);
    seal_vec(owned, key, info)
}

/// Room for the update a seal appends with a usual chain (more is allocated when needed).
pub(crate) const UPDATE_ROOM: usize = 16 * 1024;

/// As [`seal_with_digest`], appending the update to `pdf` itself (no copy of the document).
pub fn seal_vec(
    pdf: Vec<u8>,
    key: &dyn SealKey,
    info: &SealInfo,
) -> Result<SealedPdf, DocumentError> {
    let prepared = prepared(&key.certificate_chain(), key.key_bits())?;
    if !key.schemes().contains(&SignatureScheme::Pkcs1Sha256) {
        return Err(DocumentError::Key(
            "the seal key cannot make RSA PKCS#1 v1.5 SHA-256 signatures".into(),
        ));
    }

    let prev = find_startxref(&pdf)?;
    let (xref, trailer) =
        syntax::xref_and_trailer(&pdf, prev).map_err(DocumentError::Unsealable)?;
    if trailer.get(b"Prev").is_some() || trailer.get(b"Encrypt").is_some() {
        return Err(DocumentError::Unsealable(
            "the document was already updated or is encrypted".into(),
        ));
    }
    let root_id = trailer
        .get(b"Root")
        .and_then(Value::as_ref)
        .ok_or_else(|| DocumentError::Unsealable("no /Root".into()))?;
    let (catalog_value, catalog) = dictionary(&pdf, &xref, root_id)?;
    let (page_id, page_value, page) = first_page(&pdf, &xref, &catalog_value)?;
    if page_id.0 == root_id.0 {
        return Err(DocumentError::Unsealable(
            "the catalog is also the page".into(),
        ));
    }
    if catalog_value.get(b"AcroForm").is_some() || page_value.get(b"Annots").is_some() {
        return Err(DocumentError::Unsealable(
            "the document already has a form or annotations".into(),
        ));
    }
    let id_entry = match trailer.get(b"ID") {
        Some(Value::Array(ids)) if ids.len() == 2 => {
            let hexs: Vec<String> = ids
                .iter()
                .filter_map(|o| match o {
                    Value::Str(b) => Some(format!("<{}>", hex::encode(b))),
                    _ => None,
                })
                .collect();
            if hexs.len() != 2 {
                return Err(DocumentError::Unsealable("a bad /ID in the trailer".into()));
            }
            format!("/ID [{}]", hexs.join(" "))
        }
        _ => return Err(DocumentError::Unsealable("no /ID in the trailer".into())),
    };
    let info_entry = match trailer.get(b"Info").and_then(Value::as_ref) {
        Some((n, g)) => format!("/Info {n} {g} R "),
        None => String::new(),
    };
    let size = match trailer.get(b"Size") {
        Some(Value::Int(n)) => u32::try_from(*n)
            .ok()
            .filter(|n| *n < u32::MAX - 4 && xref.iter().all(|(id, _, _)| id < n))
            .ok_or_else(|| DocumentError::Unsealable("a bad /Size".into()))?,
        _ => return Err(DocumentError::Unsealable("no /Size in the trailer".into())),
    };
    let (sig_id, field_id, ap_id) = (size, size + 1, size + 2);

    // The update.
    let reserved = prepared.reserved;
    let mut out = pdf;
    out.reserve(2 * reserved + 4096);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets: Vec<(u32, usize)> = Vec::new();
    let placeholder_range = "/ByteRange [0 0000000000 0000000000 0000000000]";
    let sig_at = out.len();
    offsets.push((sig_id, sig_at));
    let sig_head = format!(
        "{sig_id} 0 obj\n<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached {placeholder_range} /M {} /Name {} /Location {} /Reason {} /Contents <",
        pdf_string(&pdf_date(info.signing_time)),
        pdf_string(&info.name),
        pdf_string(&info.location),
        pdf_string(&info.reason),
    );
    out.extend_from_slice(sig_head.as_bytes());
    let contents_start = out.len() - 1; // the '<'

    out.extend(std::iter::repeat_n(b'0', reserved * 2));
    out.extend_from_slice(b">");
    let contents_end = out.len(); // after the '>'
    out.extend_from_slice(b" >>\nendobj\n");
    offsets.push((field_id, out.len()));
    out.extend_from_slice(
        format!(
            "{field_id} 0 obj\n<< /Type /Annot /Subtype /Widget /FT /Sig /T {} /V {sig_id} 0 R /F 132 /Rect [0 0 0 0] /P {} {} R /AP << /N {ap_id} 0 R >> >>\nendobj\n",
            pdf_string("Sigillo del Comune"),
            page_id.0,
            page_id.1
        )
        .as_bytes(),
    );
    offsets.push((ap_id, out.len()));
    out.extend_from_slice(
        format!("{ap_id} 0 obj\n<< /Type /XObject /Subtype /Form /BBox [0 0 0 0] /Length 0 >>\nstream\n\nendstream\nendobj\n").as_bytes(),
    );
    offsets.push((root_id.0, out.len()));
    out.extend_from_slice(
        format!(
            "{} {} obj\n{}\nendobj\n",
            root_id.0,
            root_id.1,
            with_entry(
                &catalog,
                &format!("/AcroForm << /Fields [{field_id} 0 R] /SigFlags 3 >> ")
            )
        )
        .as_bytes(),
    );
    offsets.push((page_id.0, out.len()));
    out.extend_from_slice(
        format!(
            "{} {} obj\n{}\nendobj\n",
            page_id.0,
            page_id.1,
            with_entry(&page, &format!("/Annots [{field_id} 0 R] "))
        )
        .as_bytes(),
    );
    let xref_at = out.len();
    offsets.sort_by_key(|(id, _)| *id);
    let mut xref = String::from("xref\n");
    for (id, off) in &offsets {
        let gen = if *id == root_id.0 {
            root_id.1
        } else if *id == page_id.0 {
            page_id.1
        } else {
            0
        };
        xref.push_str(&format!("{id} 1\n{off:010} {gen:05} n \n"));
    }
    xref.push_str(&format!(
        "trailer\n<< /Size {} /Root {} {} R {info_entry}{id_entry} /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n",
        ap_id + 1,
        root_id.0,
        root_id.1
    ));
    out.extend_from_slice(xref.as_bytes());

    // The byte range, written into its placeholder (same width).
    let range = format!(
        "/ByteRange [0 {:010} {:010} {:010}]",
        contents_start,
        contents_end,
        out.len() - contents_end
    );
    // Searched from the signature object, so nothing of the original document can match.
    let at = find(&out, placeholder_range.as_bytes(), sig_at)
        .ok_or_else(|| DocumentError::Unsealable("byte range placeholder lost".into()))?;
    out[at..at + range.len()].copy_from_slice(range.as_bytes());

    // The CMS over the two ranges; the whole file's digest goes on from the first one. A
    // document that starts with the writer's shared head is hashed from the state after it.
    let mut h = match super::pdf::shared_head() {
        Some(head) if head.bytes.len() <= contents_start && out.starts_with(&head.bytes) => {
            let mut h = head.sha256.clone();
            h.update(&out[head.bytes.len()..contents_start]);
            h
        }
        _ => {
            let mut h = Sha256::new();
            h.update(&out[..contents_start]);
            h
        }
    };
    let mut whole = h.clone();
    h.update(&out[contents_end..]);
    let digest = h.finalize();
    let cms = signed_data(key, &prepared, &digest)?;
    if cms.len() > reserved {
        return Err(DocumentError::Sign(format!(
            "the CMS ({} bytes) does not fit the {reserved} reserved (a certificate chain longer than {CONTENTS_RESERVED} bytes?)",
            cms.len()
        )));
    }
    let hexed = hex::encode(&cms);
    out[contents_start + 1..contents_start + 1 + hexed.len()].copy_from_slice(hexed.as_bytes());
    whole.update(&out[contents_start..]);
    Ok(SealedPdf {
        pdf: out,
        sha256: whole.finalize().into(),
    })
}

pub(crate) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

pub(crate) fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn find_startxref(pdf: &[u8]) -> Result<usize, DocumentError> {
    let at =
        rfind(pdf, b"startxref").ok_or_else(|| DocumentError::Unsealable("no startxref".into()))?;
    let tail = String::from_utf8_lossy(&pdf[at + 9..]);
    let n: usize = tail
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DocumentError::Unsealable("bad startxref".into()))?;
    if n.checked_add(4).and_then(|end| pdf.get(n..end)) != Some(b"xref") {
        return Err(DocumentError::Unsealable(
            "the PDF has no classic cross-reference table".into(),
        ));
    }
    Ok(n)
}

fn any_of<T: Encode>(v: &T) -> Result<AttributeValue, DocumentError> {
    let der = v.to_der().map_err(|e| DocumentError::Sign(e.to_string()))?;
    Any::from_der(&der).map_err(|e| DocumentError::Sign(e.to_string()))
}

fn attribute<T: Encode>(
    oid: der::asn1::ObjectIdentifier,
    v: &T,
) -> Result<Attribute, DocumentError> {
    let mut values = SetOfVec::new();
    values
        .insert(any_of(v)?)
        .map_err(|e| DocumentError::Sign(e.to_string()))?;
    Ok(Attribute { oid, values })
}

/// The signed attributes: content-type, message-digest, signing-certificate-v2.
pub(crate) fn signed_attributes(
    cert: &Certificate,
    cert_der: &[u8],
    digest: &[u8],
) -> Result<SetOfVec<Attribute>, DocumentError> {
    let e = |e: der::Error| DocumentError::Sign(e.to_string());
    let signing_cert = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(cert_der).to_vec()).map_err(e)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    cert.tbs_certificate.issuer.clone(),
                )],
                serial_number: cert.tbs_certificate.serial_number.clone(),
            }),
        }],
    };
    let mut attrs = SetOfVec::new();
    attrs
        .insert(attribute(oid::CONTENT_TYPE, &oid::DATA)?)
        .map_err(e)?;
    attrs
        .insert(attribute(
            oid::MESSAGE_DIGEST,
            &OctetString::new(digest.to_vec()).map_err(e)?,
        )?)
        .map_err(e)?;
    attrs
        .insert(attribute(oid::SIGNING_CERTIFICATE_V2, &signing_cert)?)
        .map_err(e)?;
    Ok(attrs)
}

/// CMS ContentInfo(SignedData), detached, DER, signed by `key`.
fn signed_data(key: &dyn SealKey, p: &Prepared, digest: &[u8]) -> Result<Vec<u8>, DocumentError> {
    let e = |e: der::Error| DocumentError::Sign(e.to_string());
    // DER of the same values with another digest and a signature of the same length differs
    // only in those bytes (the attributes' order in their SET is fixed by their lengths).
    if let (Some(t), 32) = (&p.template, digest.len()) {
        let mut to_sign = t.attrs.clone();
        to_sign[t.attrs_digest..t.attrs_digest + 32].copy_from_slice(digest);
        let signature = key
            .sign(SignatureScheme::Pkcs1Sha256, &to_sign)
            .map_err(|err| DocumentError::Sign(err.to_string()))?;
        if signature.len() == t.signature_len {
            let mut out = t.cms.clone();
            out[t.cms_digest..t.cms_digest + 32].copy_from_slice(digest);
            out[t.cms_signature..t.cms_signature + t.signature_len].copy_from_slice(&signature);
            return Ok(out);
        }
        let cert_der = p.chain_der.first().map(Vec::as_slice).unwrap_or_default();
        let attrs = signed_attributes(&p.cert, cert_der, digest)?;
        return cms(&p.cert, &p.chain, attrs, signature);
    }
    let cert_der = p.chain_der.first().map(Vec::as_slice).unwrap_or_default();
    let attrs = signed_attributes(&p.cert, cert_der, digest)?;
    let to_sign = attrs.to_der().map_err(e)?;
    let signature = key
        .sign(SignatureScheme::Pkcs1Sha256, &to_sign)
        .map_err(|err| DocumentError::Sign(err.to_string()))?;
    cms(&p.cert, &p.chain, attrs, signature)
}

/// The CMS of `attrs` and their `signature`, with `chain`.
fn cms(
    cert: &Certificate,
    chain: &[Certificate],
    attrs: SetOfVec<Attribute>,
    signature: Vec<u8>,
) -> Result<Vec<u8>, DocumentError> {
    let e = |e: der::Error| DocumentError::Sign(e.to_string());
    let sha256 = AlgorithmIdentifierOwned {
        oid: oid::SHA256,
        parameters: None,
    };
    let mut certs = SetOfVec::new();
    for c in chain {
        certs
            .insert(CertificateChoices::Certificate(c.clone()))
            .map_err(e)?;
    }
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(e)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(sha256).map_err(e)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer).map_err(e)?;
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(certs)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let ci = ContentInfo {
        content_type: oid::SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(e)?,
    };
    ci.to_der().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key whose signature is a pattern of the signed bytes' digest (RSA is not what is
    /// tested).
    #[derive(Debug)]
    struct PatternKey(usize);

    static CERT: &[u8] = include_bytes!("../../../../fuzz/fixtures/seal-cert.der");

    impl SealKey for PatternKey {
        fn certificate_chain(&self) -> Vec<Vec<u8>> {
            vec![CERT.to_vec()]
        }
        fn key_bits(&self) -> usize {
            2048
        }
        fn schemes(&self) -> Vec<SignatureScheme> {
            SignatureScheme::ALL.to_vec()
        }
        fn sign(&self, _: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
            Ok(Sha256::digest(message)
                .iter()
                .copied()
                .cycle()
                .take(self.0)
                .collect())
        }
    }

    proptest::proptest! {
        /// The patched template is, byte for byte, the CMS built from the values.
        #[test]
        fn the_template_gives_the_cms_the_values_give(digest in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let key = PatternKey(256);
            let p = prepared(&key.certificate_chain(), 2048).unwrap();
            proptest::prop_assert!(p.template.is_some());
            let fast = signed_data(&key, &p, &digest).unwrap();
            let attrs = signed_attributes(&p.cert, CERT, &digest).unwrap();
            let signature = key.sign(SignatureScheme::Pkcs1Sha256, &attrs.to_der().unwrap()).unwrap();
            let slow = cms(&p.cert, &p.chain, attrs, signature).unwrap();
            proptest::prop_assert_eq!(&fast, &slow);
            proptest::prop_assert!(fast.len() + RESERVE_SLACK == p.reserved);
        }
    }

    #[test]
    fn a_signature_of_another_length_is_built_from_the_values() {
        // The key says 2048 bits and gives 255 bytes: the CMS is built, not patched.
        let key = PatternKey(255);
        let p = prepared(&key.certificate_chain(), 2048).unwrap();
        let digest = [7u8; 32];
        let cms_der = signed_data(&key, &p, &digest).unwrap();
        let attrs = signed_attributes(&p.cert, CERT, &digest).unwrap();
        let signature = key
            .sign(SignatureScheme::Pkcs1Sha256, &attrs.to_der().unwrap())
            .unwrap();
        assert_eq!(cms_der, cms(&p.cert, &p.chain, attrs, signature).unwrap());
    }
}
