//! XML-DSig verification for the one shape Cohesion uses: an **enveloping** signature.
//!
//! # Why our own, and why so narrow
//! The pure-Rust XML-security crates available today either bind the C library libxmlsec1
//! (`samael`), or announce themselves as early pre-releases not to be used in production
//! (`xml-sec`), or are young forks (`bergshamra` and its descendants). A general XML-DSig engine is
//! also exactly where signature-wrapping bugs live. Cohesion's SAML-mode answer has one fixed shape
//! (CohesionID-Docs, Flusso-di-Autenticazione.md):
//!
//! ```text
//! <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
//!   <SignedInfo> C14N 1.0 · RSA-SHA1 · one <Reference URI="#SignedXmlId"> with SHA-1 </SignedInfo>
//!   <SignatureValue/> <KeyInfo/>
//!   <Object Id="SignedXmlId"><profile xmlns="">…</profile></Object>
//! </Signature>
//! ```
//!
//! so this module verifies that shape and nothing else, on top of a strict parser (`roxmltree`,
//! no DTD) and `ring`'s RSA verification:
//! - the document element is `ds:Signature`; its element children are exactly `SignedInfo`,
//!   `SignatureValue`, optionally `KeyInfo`, then exactly one `Object`;
//! - `SignedInfo` has one `Reference` whose URI is `#id` of **that** `Object`, and no other element
//!   in the document carries that id; transforms may only be a canonicalization;
//! - canonicalization: inclusive C14N 1.0 or exclusive C14N 1.0, both without comments
//!   (no `InclusiveNamespaces` prefix list);
//! - RSA PKCS#1 v1.5 with SHA-1 (what Cohesion uses) or SHA-256, digests SHA-1 or SHA-256, according
//!   to [`SignaturePolicy`];
//! - the key is **only** a configured Cohesion certificate: `KeyInfo` is ignored, so a document
//!   signed by anyone else fails;
//! - the caller reads the profile from the very `Object` node that was digested, so nothing outside
//!   the signed part can be mistaken for it.

use base64::Engine as _;
use roxmltree::{Document, Node};
use rustls_pki_types::CertificateDer;

use crate::config::SignaturePolicy;
use crate::error::{Error, Result};

/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Inclusive C14N 1.0 without comments (W3C REC-xml-c14n-20010315).
pub const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
/// Exclusive C14N 1.0 without comments (W3C xml-exc-c14n).
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// RSA PKCS#1 v1.5 with SHA-1 (XML-DSig core, the one Cohesion uses).
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
/// RSA PKCS#1 v1.5 with SHA-256 (RFC 6931).
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// SHA-1 digest.
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// SHA-256 digest.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Canonicalization flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C14nMode {
    /// Inclusive C14N 1.0.
    Inclusive,
    /// Exclusive C14N 1.0.
    Exclusive,
}

impl C14nMode {
    fn from_uri(uri: &str) -> Result<Self> {
        match uri {
            C14N10 => Ok(C14nMode::Inclusive),
            EXC_C14N => Ok(C14nMode::Exclusive),
            other => Err(Error::Signature(format!(
                "unsupported canonicalization or transform {other:?}"
            ))),
        }
    }
}

/// An RSA public key taken from a configured Cohesion certificate.
#[derive(Debug, Clone)]
pub(crate) struct TrustedKey {
    rsa_public_key: Vec<u8>,
}

/// rsaEncryption (RFC 8017 appendix A.1).
const RSA_ENCRYPTION: x509_cert::spki::ObjectIdentifier =
    x509_cert::spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The smallest RSA modulus `ring` verifies signatures with (`RSA_PKCS1_2048_8192_*`).
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The largest one.
pub(crate) const MAX_RSA_BITS: usize = 8192;

impl TrustedKey {
    /// Takes the RSA key of a Cohesion certificate, refusing keys `ring` would never verify with
    /// (not RSA, or a modulus outside 2048-8192 bits) so the mistake shows when the configuration
    /// is built, not at the first login.
    pub(crate) fn from_certificate(cert: &CertificateDer<'_>) -> Result<Self> {
        use x509_cert::der::Decode as _;
        let c = x509_cert::Certificate::from_der(cert.as_ref())
            .map_err(|e| Error::Config(format!("Cohesion certificate does not parse: {e}")))?;
        let spki = &c.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(Error::Config(
                "the Cohesion certificate's key is not RSA (Cohesion signs with RSA)".into(),
            ));
        }
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::Config("Cohesion certificate key has unused bits".into()))?;
        let bits = rsa_modulus_bits(key).ok_or_else(|| {
            Error::Config("the Cohesion certificate's RSA key does not parse".into())
        })?;
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(Error::Config(format!(
                "the Cohesion certificate's RSA key has {bits} bits; profile signatures are \
                 verified only with {MIN_RSA_BITS}-{MAX_RSA_BITS}-bit keys"
            )));
        }
        Ok(TrustedKey {
            rsa_public_key: key.to_vec(),
        })
    }
}

/// The bit length of the modulus of a PKCS#1 `RSAPublicKey` (RFC 8017 appendix A.1.1).
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    use x509_cert::der::{asn1::UintRef, Decode as _, Reader as _, SliceReader};
    let mut r = SliceReader::new(der).ok()?;
    let n = r
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            let _e = UintRef::decode(r)?;
            Ok(n)
        })
        .ok()?;
    r.finish(()).ok()?;
    let b = n.as_bytes();
    let first = *b.first()?;
    Some((b.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

fn is_ds(n: Node<'_, '_>, local: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(DSIG_NS) && n.tag_name().name() == local
}

fn element_children<'a, 'i>(n: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>> {
    let mut out = Vec::new();
    for c in n.children() {
        if c.is_element() {
            out.push(c);
        } else if c.is_text() && !c.text().unwrap_or("").trim().is_empty() {
            return Err(Error::Signature(format!(
                "unexpected text inside <{}>",
                n.tag_name().name()
            )));
        }
    }
    Ok(out)
}

fn algorithm<'a>(n: Node<'a, '_>) -> Result<&'a str> {
    if n.children().any(|c| c.is_element()) {
        return Err(Error::Signature(format!(
            "<{}> parameters are not supported",
            n.tag_name().name()
        )));
    }
    n.attribute("Algorithm")
        .ok_or_else(|| Error::Signature(format!("<{}> without Algorithm", n.tag_name().name())))
}

fn b64(what: &str, s: &str) -> Result<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|e| Error::Signature(format!("{what} is not base64: {e}")))
}

/// The text of an element that must hold only text: its text nodes, concatenated. Comments are not
/// text (C14N without comments drops them, so they must not count here either) and processing
/// instructions are refused.
fn text(n: Node<'_, '_>) -> Result<String> {
    if n.children().any(|c| c.is_element() || c.is_pi()) {
        return Err(Error::Signature(format!(
            "<{}> must hold text only",
            n.tag_name().name()
        )));
    }
    Ok(n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect())
}

fn ids_equal_to(doc: &Document<'_>, id: &str) -> usize {
    doc.descendants()
        .filter(|n| n.is_element())
        .flat_map(|n| n.attributes())
        .filter(|a| {
            a.namespace().is_none() && matches!(a.name(), "Id" | "ID" | "id") && a.value() == id
        })
        .count()
}

/// Verifies Cohesion's enveloping signature and returns the signed `Object` element.
pub(crate) fn verify_enveloping<'a, 'i>(
    doc: &'a Document<'i>,
    src: &'i str,
    keys: &[TrustedKey],
    policy: SignaturePolicy,
) -> Result<Node<'a, 'i>> {
    let root = doc.root_element();
    if !is_ds(root, "Signature") {
        return Err(Error::Signature(
            "the profile is not signed (no <Signature> document element)".into(),
        ));
    }
    let kids = element_children(root)?;
    let mut it = kids.iter().copied().peekable();
    let signed_info = it
        .next()
        .filter(|n| is_ds(*n, "SignedInfo"))
        .ok_or_else(|| {
            Error::Signature("first child of <Signature> must be <SignedInfo>".into())
        })?;
    let signature_value = it
        .next()
        .filter(|n| is_ds(*n, "SignatureValue"))
        .ok_or_else(|| Error::Signature("<SignatureValue> must follow <SignedInfo>".into()))?;
    if it.peek().is_some_and(|n| is_ds(*n, "KeyInfo")) {
        it.next();
    }
    let object = it
        .next()
        .filter(|n| is_ds(*n, "Object"))
        .ok_or_else(|| Error::Signature("the signed <Object> is missing".into()))?;
    if let Some(extra) = it.next() {
        return Err(Error::Signature(format!(
            "unexpected <{}> after the signed <Object>",
            extra.tag_name().name()
        )));
    }

    // SignedInfo: CanonicalizationMethod, SignatureMethod, exactly one Reference.
    let si = element_children(signed_info)?;
    if si.len() != 3
        || !is_ds(si[0], "CanonicalizationMethod")
        || !is_ds(si[1], "SignatureMethod")
        || !is_ds(si[2], "Reference")
    {
        return Err(Error::Signature(
            "<SignedInfo> must hold CanonicalizationMethod, SignatureMethod and exactly one Reference"
                .into(),
        ));
    }
    let si_c14n = C14nMode::from_uri(algorithm(si[0])?)?;
    let sig_alg: &'static dyn ring::signature::VerificationAlgorithm =
        match (algorithm(si[1])?, policy) {
            (RSA_SHA1, SignaturePolicy::AllowSha1) => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (RSA_SHA256, _) => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            (other, _) => {
                return Err(Error::Signature(format!(
                    "signature algorithm {other:?} is not accepted"
                )))
            }
        };
    let reference = si[2];
    let uri = reference
        .attribute("URI")
        .ok_or_else(|| Error::Signature("<Reference> without URI".into()))?;
    let id = uri
        .strip_prefix('#')
        .filter(|id| !id.is_empty() && !id.contains('(') && !id.contains('#'))
        .ok_or_else(|| {
            Error::Signature(format!(
                "<Reference URI={uri:?}> must point at the signed <Object> by id"
            ))
        })?;
    if object.attribute("Id") != Some(id) {
        return Err(Error::Signature(
            "the <Reference> does not point at the <Object> inside this <Signature>".into(),
        ));
    }
    if ids_equal_to(doc, id) != 1 {
        return Err(Error::Signature(format!(
            "the id {id:?} is not unique in the document"
        )));
    }
    let rk = element_children(reference)?;
    let mut ri = rk.iter().copied().peekable();
    let mut ref_c14n = C14nMode::Inclusive;
    if ri.peek().is_some_and(|n| is_ds(*n, "Transforms")) {
        let transforms = ri
            .next()
            .map(element_children)
            .transpose()?
            .unwrap_or_default();
        if transforms.len() != 1 || !is_ds(transforms[0], "Transform") {
            return Err(Error::Signature(
                "only a single canonicalization transform is supported".into(),
            ));
        }
        ref_c14n = C14nMode::from_uri(algorithm(transforms[0])?)?;
    }
    let digest_method = ri
        .next()
        .filter(|n| is_ds(*n, "DigestMethod"))
        .ok_or_else(|| Error::Signature("<Reference> without <DigestMethod>".into()))?;
    let digest_value = ri
        .next()
        .filter(|n| is_ds(*n, "DigestValue"))
        .ok_or_else(|| Error::Signature("<Reference> without <DigestValue>".into()))?;
    if ri.next().is_some() {
        return Err(Error::Signature("unexpected element in <Reference>".into()));
    }
    let digest_alg = match (algorithm(digest_method)?, policy) {
        (SHA1, SignaturePolicy::AllowSha1) => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        (SHA256, _) => &ring::digest::SHA256,
        (other, _) => {
            return Err(Error::Signature(format!(
                "digest algorithm {other:?} is not accepted"
            )))
        }
    };
    let expected = b64("DigestValue", &text(digest_value)?)?;
    let octets = canonicalize(object, src, ref_c14n)?;
    let actual = ring::digest::digest(digest_alg, &octets);
    if actual.as_ref() != expected.as_slice() {
        return Err(Error::Signature(
            "the digest of the signed <Object> does not match: the profile was altered".into(),
        ));
    }

    let signature = b64("SignatureValue", &text(signature_value)?)?;
    let si_octets = canonicalize(signed_info, src, si_c14n)?;
    if keys.is_empty() {
        return Err(Error::Signature(
            "no Cohesion certificate configured".into(),
        ));
    }
    let ok = keys.iter().any(|k| {
        ring::signature::UnparsedPublicKey::new(sig_alg, &k.rsa_public_key)
            .verify(&si_octets, &signature)
            .is_ok()
    });
    if !ok {
        return Err(Error::Signature(
            "the signature does not verify with the configured Cohesion certificate".into(),
        ));
    }
    Ok(object)
}

/// The qualified name of an element as written in the source (`ds:Signature`, `profile`).
fn element_qname<'s>(n: Node<'_, '_>, src: &'s str) -> Result<&'s str> {
    let start = n.range().start + 1;
    let rest = src
        .get(start..)
        .ok_or_else(|| Error::Signature("element position out of range".into()))?;
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    let q = &rest[..end];
    if q.is_empty() {
        return Err(Error::Signature("empty element name".into()));
    }
    Ok(q)
}

fn prefix_of(qname: &str) -> Option<&str> {
    qname.split_once(':').map(|(p, _)| p)
}

/// One level of the output namespace context: prefix ("" = default) -> URI.
type NsMap<'i> = Vec<(&'i str, &'i str)>;

fn ns_get<'i>(m: &NsMap<'i>, prefix: &str) -> Option<&'i str> {
    m.iter().rev().find(|(p, _)| *p == prefix).map(|(_, u)| *u)
}

fn consider<'a>(
    parent_ctx: &NsMap<'a>,
    prefix: &'a str,
    uri: &'a str,
    decls: &mut Vec<(&'a str, &'a str)>,
) {
    let current = ns_get(parent_ctx, prefix).unwrap_or("");
    if current != uri && !decls.iter().any(|(p, _)| *p == prefix) {
        decls.push((prefix, uri));
    }
}

enum Edge<'a, 'i> {
    Open(Node<'a, 'i>),
    Close(Node<'a, 'i>),
}

fn in_scope<'a, 'i: 'a>(n: Node<'a, 'i>) -> Vec<(&'a str, &'a str)> {
    n.namespaces()
        .filter(|ns| ns.name() != Some("xml"))
        .map(|ns| (ns.name().unwrap_or(""), ns.uri()))
        .collect()
}

fn push_escaped_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

fn push_escaped_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

/// Canonicalizes the subtree rooted at `apex` (a document subset holding the element and all its
/// descendants except comments), per W3C C14N 1.0 or Exclusive C14N 1.0. Iterative: no recursion,
/// whatever the depth.
pub fn canonicalize<'a, 'i: 'a>(
    apex: Node<'a, 'i>,
    src: &'a str,
    mode: C14nMode,
) -> Result<Vec<u8>> {
    let mut out = String::new();
    // Stack of rendered-namespace contexts, one entry per open element.
    let mut rendered: Vec<NsMap<'a>> = vec![Vec::new()];
    // Explicit stack of (node, already opened): no recursion.
    let mut stack: Vec<(Node<'a, 'i>, bool)> = vec![(apex, false)];
    while let Some((node, opened)) = stack.pop() {
        if !opened && node.is_element() {
            stack.push((node, true));
            let kids: Vec<_> = node.children().collect();
            stack.extend(kids.into_iter().rev().map(|k| (k, false)));
        }
        let edge = if opened {
            Edge::Close(node)
        } else {
            Edge::Open(node)
        };
        match edge {
            Edge::Open(n) if n.is_element() => {
                let qname = element_qname(n, src)?;
                let parent_ctx = rendered.last().cloned().unwrap_or_default();
                let mut ctx = parent_ctx.clone();
                let scope = in_scope(n);
                let default_uri = scope
                    .iter()
                    .find(|(p, _)| p.is_empty())
                    .map(|(_, u)| *u)
                    .unwrap_or("");
                // Namespace declarations to emit, as (prefix, uri).
                let mut decls: Vec<(&'a str, &'a str)> = Vec::new();
                match mode {
                    C14nMode::Inclusive => {
                        for (p, u) in &scope {
                            if p.is_empty() {
                                continue;
                            }
                            let u: &str = u;
                            let p: &str = p;
                            consider(&parent_ctx, p, u, &mut decls);
                        }
                        consider(&parent_ctx, "", default_uri, &mut decls);
                    }
                    C14nMode::Exclusive => {
                        let el_prefix = prefix_of(qname).unwrap_or("");
                        let el_uri = if el_prefix.is_empty() {
                            default_uri
                        } else {
                            scope
                                .iter()
                                .find(|(p, _)| *p == el_prefix)
                                .map(|(_, u)| *u)
                                .ok_or_else(|| {
                                    Error::Signature(format!("undeclared prefix {el_prefix:?}"))
                                })?
                        };
                        consider(&parent_ctx, el_prefix, el_uri, &mut decls);
                        for a in n.attributes() {
                            let aq = &src[a.range_qname()];
                            if let Some(p) = prefix_of(aq) {
                                if p == "xml" {
                                    continue;
                                }
                                let u = scope.iter().find(|(sp, _)| *sp == p).map(|(_, u)| *u);
                                let u = u.ok_or_else(|| {
                                    Error::Signature(format!("undeclared prefix {p:?}"))
                                })?;
                                consider(&parent_ctx, p, u, &mut decls);
                            }
                        }
                    }
                }
                // The default namespace sorts first (it has no local name), then by prefix.
                decls.sort_by(|a, b| a.0.cmp(b.0));
                out.push('<');
                out.push_str(qname);
                for (p, u) in &decls {
                    if p.is_empty() {
                        out.push_str(" xmlns=\"");
                    } else {
                        out.push_str(" xmlns:");
                        out.push_str(p);
                        out.push_str("=\"");
                    }
                    push_escaped_attr(&mut out, u);
                    out.push('"');
                    ctx.push((p, u));
                }
                // Attributes: by namespace URI (none first), then local name.
                let mut attrs: Vec<(&str, &str, &str, &str)> = n
                    .attributes()
                    .map(|a| {
                        (
                            a.namespace().unwrap_or(""),
                            a.name(),
                            &src[a.range_qname()],
                            a.value(),
                        )
                    })
                    .collect();
                if mode == C14nMode::Inclusive && n == apex {
                    // Inclusive C14N: xml:* attributes of ancestors are inherited by the apex.
                    for anc in n.ancestors().skip(1).filter(|a| a.is_element()) {
                        for a in anc.attributes() {
                            if a.namespace() == Some("http://www.w3.org/XML/1998/namespace")
                                && !attrs
                                    .iter()
                                    .any(|x| x.0 == a.namespace().unwrap_or("") && x.1 == a.name())
                            {
                                attrs.push((
                                    "http://www.w3.org/XML/1998/namespace",
                                    a.name(),
                                    &src[a.range_qname()],
                                    a.value(),
                                ));
                            }
                        }
                    }
                }
                attrs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
                for (_, _, q, v) in attrs {
                    out.push(' ');
                    out.push_str(q);
                    out.push_str("=\"");
                    push_escaped_attr(&mut out, v);
                    out.push('"');
                }
                out.push('>');
                rendered.push(ctx);
            }
            Edge::Close(n) if n.is_element() => {
                out.push_str("</");
                out.push_str(element_qname(n, src)?);
                out.push('>');
                rendered.pop();
            }
            Edge::Open(n) if n.is_text() => push_escaped_text(&mut out, n.text().unwrap_or("")),
            Edge::Open(n) if n.is_pi() => {
                if let Some(pi) = n.pi() {
                    out.push_str("<?");
                    out.push_str(pi.target);
                    if let Some(v) = pi.value {
                        out.push(' ');
                        out.push_str(v);
                    }
                    out.push_str("?>");
                }
            }
            _ => {}
        }
    }
    Ok(out.into_bytes())
}

/// Produces Cohesion's enveloping signature over `profile_xml` (a `<profile xmlns="">` element):
/// C14N 1.0, RSA-SHA1 and SHA-1 as Cohesion does, or SHA-256 variants. `sign` gets the canonical
/// SignedInfo and returns the PKCS#1 v1.5 signature. Used by the emulator and by tests.
#[cfg(any(test, feature = "emulator"))]
pub(crate) fn sign_enveloping(
    profile_xml: &str,
    sha256: bool,
    cert_der: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (sig_uri, dig_uri, dig_alg) = if sha256 {
        (RSA_SHA256, SHA256, &ring::digest::SHA256)
    } else {
        (RSA_SHA1, SHA1, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY)
    };
    let build = |digest: &str, sig: &str| {
        format!(
            "<Signature xmlns=\"{DSIG_NS}\"><SignedInfo><CanonicalizationMethod Algorithm=\"{C14N10}\" />\
<SignatureMethod Algorithm=\"{sig_uri}\" /><Reference URI=\"#SignedXmlId\"><DigestMethod Algorithm=\"{dig_uri}\" />\
<DigestValue>{digest}</DigestValue></Reference></SignedInfo><SignatureValue>{sig}</SignatureValue>\
<KeyInfo><X509Data><X509Certificate>{cert}</X509Certificate></X509Data></KeyInfo>\
<Object Id=\"SignedXmlId\">{profile_xml}</Object></Signature>",
            cert = b64(cert_der)
        )
    };
    let draft = build("", "");
    let doc = crate::xml::parse("signed profile", &draft, usize::MAX)?;
    let object = doc
        .root_element()
        .children()
        .find(|n| is_ds(*n, "Object"))
        .ok_or_else(|| Error::Signature("draft without Object".into()))?;
    let digest = ring::digest::digest(dig_alg, &canonicalize(object, &draft, C14nMode::Inclusive)?);
    let with_digest = build(&b64(digest.as_ref()), "");
    let doc = crate::xml::parse("signed profile", &with_digest, usize::MAX)?;
    let si = doc
        .root_element()
        .children()
        .find(|n| is_ds(*n, "SignedInfo"))
        .ok_or_else(|| Error::Signature("draft without SignedInfo".into()))?;
    let sig = sign(&canonicalize(si, &with_digest, C14nMode::Inclusive)?)?;
    Ok(build(&b64(digest.as_ref()), &b64(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, path: &[&str], mode: C14nMode) -> String {
        let doc = Document::parse(xml).unwrap();
        let mut n = doc.root_element();
        for p in path {
            n = n.children().find(|c| c.tag_name().name() == *p).unwrap();
        }
        String::from_utf8(canonicalize(n, xml, mode).unwrap()).unwrap()
    }

    #[test]
    fn inclusive_renders_inherited_namespaces_and_sorts() {
        let xml = r#"<a:r xmlns:a="urn:a" xmlns="urn:d" xmlns:z="urn:z"><b y="2" x="1" z:q="3"   a:p='&lt;"'><c/></b></a:r>"#;
        assert_eq!(
            c14n(xml, &["b"], C14nMode::Inclusive),
            r#"<b xmlns="urn:d" xmlns:a="urn:a" xmlns:z="urn:z" x="1" y="2" a:p="&lt;&quot;" z:q="3"><c></c></b>"#
        );
        assert_eq!(
            c14n(xml, &["b"], C14nMode::Exclusive),
            r#"<b xmlns="urn:d" xmlns:a="urn:a" xmlns:z="urn:z" x="1" y="2" a:p="&lt;&quot;" z:q="3"><c></c></b>"#
        );
    }

    #[test]
    fn exclusive_omits_unused_namespaces() {
        let xml = r#"<r xmlns:u="urn:unused" xmlns:a="urn:a"><a:b><c>t&amp;&gt;</c></a:b></r>"#;
        assert_eq!(
            c14n(xml, &["b"], C14nMode::Exclusive),
            r#"<a:b xmlns:a="urn:a"><c>t&amp;&gt;</c></a:b>"#
        );
        assert_eq!(
            c14n(xml, &["b"], C14nMode::Inclusive),
            r#"<a:b xmlns:a="urn:a" xmlns:u="urn:unused"><c>t&amp;&gt;</c></a:b>"#
        );
    }

    #[test]
    fn default_namespace_undeclaration() {
        // The Cohesion shape: <profile xmlns=""> inside the dsig default namespace.
        let xml = r#"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><Object Id="X"><profile xmlns="" timestamp="t"><base><nome>M</nome></base></profile></Object></Signature>"#;
        assert_eq!(
            c14n(xml, &["Object"], C14nMode::Inclusive),
            r#"<Object xmlns="http://www.w3.org/2000/09/xmldsig#" Id="X"><profile xmlns="" timestamp="t"><base><nome>M</nome></base></profile></Object>"#
        );
    }

    #[test]
    fn comments_dropped_pi_kept_cdata_expanded() {
        let xml = "<r><!-- c --><?pi  data?><![CDATA[<x>]]>\r\n</r>";
        assert_eq!(
            c14n(xml, &[], C14nMode::Inclusive),
            "<r><?pi data?>&lt;x&gt;\n</r>"
        );
    }

    #[test]
    fn xml_attributes_inherited_in_inclusive_only() {
        let xml = r#"<r xml:lang="it"><e a="1"/></r>"#;
        assert_eq!(
            c14n(xml, &["e"], C14nMode::Inclusive),
            r#"<e a="1" xml:lang="it"></e>"#
        );
        assert_eq!(c14n(xml, &["e"], C14nMode::Exclusive), r#"<e a="1"></e>"#);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 15_000;
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let doc = crate::xml::parse("t", &xml, 1 << 20).unwrap();
        let out = canonicalize(doc.root_element(), &xml, C14nMode::Inclusive).unwrap();
        assert_eq!(out.len(), xml.len());
    }
}

#[cfg(test)]
mod signed_tests {
    use super::*;
    use crate::signer::ProfileSigner;
    use std::sync::OnceLock;

    fn signer() -> &'static ProfileSigner {
        static S: OnceLock<ProfileSigner> = OnceLock::new();
        S.get_or_init(|| ProfileSigner::generate("ClientCohesion").unwrap())
    }
    fn other_signer() -> &'static ProfileSigner {
        static S: OnceLock<ProfileSigner> = OnceLock::new();
        S.get_or_init(|| ProfileSigner::generate("Mallory").unwrap())
    }
    fn key(s: &ProfileSigner) -> TrustedKey {
        TrustedKey::from_certificate(&CertificateDer::from(s.certificate_der().to_vec())).unwrap()
    }

    const PROFILE: &str = "<profile timestamp=\"Tue, 25 Jan 2022 22:02:49 GMT\" xmlns=\"\"><base>\
<nome>MARIO</nome><login>RSSMRA85T10A562S</login><tipo_autenticazione>CF</tipo_autenticazione></base></profile>";

    fn verify(xml: &str, keys: &[TrustedKey], policy: SignaturePolicy) -> Result<String> {
        let doc = crate::xml::parse("t", xml, 1 << 20)?;
        let obj = verify_enveloping(&doc, xml, keys, policy)?;
        let login = obj
            .descendants()
            .find(|n| n.tag_name().name() == "login")
            .map(crate::xml::text_of)
            .unwrap_or_default();
        Ok(login)
    }

    #[test]
    fn valid_signature_verifies() {
        let xml = signer().sign_profile(PROFILE).unwrap();
        assert_eq!(
            verify(&xml, &[key(signer())], SignaturePolicy::AllowSha1).unwrap(),
            "RSSMRA85T10A562S"
        );
        // Pretty-printing inside SignatureValue (base64 line breaks) is harmless.
        let wrapped = xml.replace("<SignatureValue>", "<SignatureValue>\n  ");
        assert!(verify(&wrapped, &[key(signer())], SignaturePolicy::AllowSha1).is_ok());
        // A rollover list with the right key anywhere verifies.
        assert!(verify(
            &xml,
            &[key(other_signer()), key(signer())],
            SignaturePolicy::AllowSha1
        )
        .is_ok());
    }

    #[test]
    fn sha256_variant_and_policy() {
        let s = signer().clone().with_sha256(true);
        let xml = s.sign_profile(PROFILE).unwrap();
        assert!(verify(&xml, &[key(signer())], SignaturePolicy::Sha256Only).is_ok());
        let sha1 = signer().sign_profile(PROFILE).unwrap();
        assert!(matches!(
            verify(&sha1, &[key(signer())], SignaturePolicy::Sha256Only),
            Err(Error::Signature(_))
        ));
    }

    #[test]
    fn tampered_value_refused() {
        let xml = signer().sign_profile(PROFILE).unwrap();
        let bad = xml.replace("MARIO", "LUIGI");
        let e = verify(&bad, &[key(signer())], SignaturePolicy::AllowSha1).unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
        let bad = xml.replace(">CF<", ">PW<");
        assert!(verify(&bad, &[key(signer())], SignaturePolicy::AllowSha1).is_err());
    }

    #[test]
    fn tampered_signed_info_refused() {
        // The attacker edits the profile and recomputes the digest: SignedInfo changes, the
        // signature no longer matches.
        let evil_profile = PROFILE.replace("MARIO", "LUIGI");
        let evil = other_signer().sign_profile(&evil_profile).unwrap();
        let good = signer().sign_profile(PROFILE).unwrap();
        let digest = |x: &str| {
            let a = x.find("<DigestValue>").unwrap() + 13;
            let b = x.find("</DigestValue>").unwrap();
            x[a..b].to_owned()
        };
        let forged = good
            .replace(&digest(&good), &digest(&evil))
            .replace("MARIO", "LUIGI");
        let e = verify(&forged, &[key(signer())], SignaturePolicy::AllowSha1).unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        // Changing an algorithm attribute is also caught (or refused outright).
        let alg = good.replace(C14N10, EXC_C14N);
        assert!(verify(&alg, &[key(signer())], SignaturePolicy::AllowSha1).is_err());
    }

    #[test]
    fn wrong_certificate_refused() {
        let xml = other_signer().sign_profile(PROFILE).unwrap();
        assert!(verify(&xml, &[key(signer())], SignaturePolicy::AllowSha1).is_err());
        assert!(verify(&xml, &[], SignaturePolicy::AllowSha1).is_err());
    }

    #[test]
    fn unsigned_refused() {
        assert!(matches!(
            verify(PROFILE, &[key(signer())], SignaturePolicy::AllowSha1),
            Err(Error::Signature(_))
        ));
    }

    #[test]
    fn wrapping_attacks_refused() {
        let good = signer().sign_profile(PROFILE).unwrap();
        let evil_profile = PROFILE.replace("RSSMRA85T10A562S", "BNCLRA80A41H501X");
        let k = [key(signer())];
        // 1. A second Object after the signed one.
        let two = good.replace(
            "</Signature>",
            &format!("<Object Id=\"Evil\">{evil_profile}</Object></Signature>"),
        );
        assert!(verify(&two, &k, SignaturePolicy::AllowSha1).is_err());
        // 2. The signed Object hidden inside KeyInfo, an evil Object in its place.
        let obj_start = good.find("<Object").unwrap();
        let obj_end = good.find("</Signature>").unwrap();
        let signed_obj = &good[obj_start..obj_end];
        let moved = format!(
            "{}<KeyInfo>{signed_obj}</KeyInfo><Object Id=\"SignedXmlId2\">{evil_profile}</Object></Signature>",
            &good[..good.find("<KeyInfo>").unwrap()]
        );
        assert!(verify(&moved, &k, SignaturePolicy::AllowSha1).is_err());
        // 3. Duplicate id: the evil element carries the same Id elsewhere.
        let dup = good.replace(
            "<KeyInfo>",
            &format!("<KeyInfo><X Id=\"SignedXmlId\">{evil_profile}</X>"),
        );
        assert!(verify(&dup, &k, SignaturePolicy::AllowSha1).is_err());
        // 4. The whole signature wrapped in another document with an evil profile first.
        let wrapped = format!("<r>{evil_profile}{good}</r>");
        assert!(verify(&wrapped, &k, SignaturePolicy::AllowSha1).is_err());
        // 5. Extra profile inside the signed Object is caught by the digest.
        let inside = good.replace("</Object>", &format!("{evil_profile}</Object>"));
        assert!(verify(&inside, &k, SignaturePolicy::AllowSha1).is_err());
        // 6. Reference by XPointer or to another document.
        let xp = good.replace("URI=\"#SignedXmlId\"", "URI=\"#xpointer(/)\"");
        assert!(verify(&xp, &k, SignaturePolicy::AllowSha1).is_err());
        let ext = good.replace("URI=\"#SignedXmlId\"", "URI=\"https://evil/\"");
        assert!(verify(&ext, &k, SignaturePolicy::AllowSha1).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any profile text (escaping-relevant characters included) signs and verifies, and any
        /// change of one character in it breaks the signature.
        #[test]
        fn sign_verify_and_any_change_breaks(
            name in "[A-Za-z0-9 &<>\"'\t\r\nàèé]{1,40}",
            attr in "[A-Za-z0-9 &<>\"'\t]{0,20}",
        ) {
            let esc_attr = crate::xml::escape_attr(&attr);
            let profile = format!(
                "<profile timestamp=\"Tue, 25 Jan 2022 22:02:49 GMT\" x=\"{esc_attr}\" xmlns=\"\"><base><nome>{}</nome><login>L</login></base></profile>",
                crate::xml::escape_text(&name)
            );
            let xml = signer().sign_profile(&profile).unwrap();
            proptest::prop_assert!(verify(&xml, &[key(signer())], SignaturePolicy::AllowSha1).is_ok());
            let tampered = xml.replace("<login>L</login>", "<login>M</login>");
            proptest::prop_assert!(verify(&tampered, &[key(signer())], SignaturePolicy::AllowSha1).is_err());
        }

        /// Garbage never panics the verifier.
        #[test]
        fn verify_never_panics(s in "\\PC{0,400}") {
            let _ = verify(&s, &[key(signer())], SignaturePolicy::AllowSha1);
        }
    }

    #[test]
    fn digest_value_reads_text_nodes_only() {
        let good = signer().sign_profile(PROFILE).unwrap();
        let a = good.find("<DigestValue>").unwrap() + 13;
        let b = good.find("</DigestValue>").unwrap();
        let digest = &good[a..b];
        let (d1, d2) = digest.split_at(8);
        // C14N drops the comment, so SignedInfo still signs `d1 d2`: the value compared must be
        // the same text, not `d1 BBBB d2`.
        let commented = format!("{}{d1}<!--BBBB-->{d2}{}", &good[..a], &good[b..]);
        assert_eq!(
            verify(&commented, &[key(signer())], SignaturePolicy::AllowSha1).unwrap(),
            "RSSMRA85T10A562S"
        );
        // A comment holding the rest of the digest is not part of it.
        let hidden = format!("{}{d1}<!--{d2}-->{}", &good[..a], &good[b..]);
        assert!(verify(&hidden, &[key(signer())], SignaturePolicy::AllowSha1).is_err());
        // The same for SignatureValue.
        let a = good.find("<SignatureValue>").unwrap() + 16;
        let (s1, _) = good[a..].split_at(10);
        let sig_commented = format!("{}{s1}<!--x-->{}", &good[..a], &good[a + 10..]);
        assert!(verify(&sig_commented, &[key(signer())], SignaturePolicy::AllowSha1).is_ok());
        // Processing instructions are not text.
        let pi = format!(
            "{}{d1}<?x y?>{d2}{}",
            &good[..good.find("<DigestValue>").unwrap() + 13],
            &good[good.find("</DigestValue>").unwrap()..]
        );
        assert!(verify(&pi, &[key(signer())], SignaturePolicy::AllowSha1).is_err());
    }

    #[test]
    fn non_rsa_keys_refused_and_oids_compared_as_oids() {
        let ec = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&ec)
            .unwrap();
        let e = TrustedKey::from_certificate(cert.der()).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("not RSA")),
            "{e}"
        );
        assert!(TrustedKey::from_certificate(&CertificateDer::from(
            signer().certificate_der().to_vec()
        ))
        .is_ok());
        assert_eq!(
            RSA_ENCRYPTION.as_bytes(),
            &[42, 134, 72, 134, 247, 13, 1, 1, 1]
        );
        assert_eq!(rsa_modulus_bits(&[0x30, 0x00]), None);
        assert_eq!(rsa_modulus_bits(b""), None);
    }

    #[test]
    fn comment_injection_does_not_truncate() {
        let good = signer().sign_profile(PROFILE).unwrap();
        // Comments are outside the canonical form: still valid, and the value reads whole.
        let commented = good.replace("RSSMRA85T10A562S", "RSSMRA85<!-- x -->T10A562S");
        assert_eq!(
            verify(&commented, &[key(signer())], SignaturePolicy::AllowSha1).unwrap(),
            "RSSMRA85T10A562S"
        );
    }
}
#[cfg(test)]
mod interop_tests {
    //! Documents signed by libxmlsec1's `xmlsec1 --sign` (an independent implementation), with
    //! prefixed `ds:` names, comments, tabs and CRs in values, nested namespaces: our C14N must
    //! reproduce its octets exactly.
    use super::*;

    fn check(xml: &str) -> Result<()> {
        let pem = include_bytes!("../tests/fixtures/xmlsec1-signer.pem");
        let certs = crate::pem::certificates(pem).map_err(Error::Config)?;
        let k = TrustedKey::from_certificate(&certs[0])?;
        let doc = crate::xml::parse("t", xml, 1 << 20)?;
        verify_enveloping(&doc, xml, &[k], SignaturePolicy::AllowSha1).map(|_| ())
    }

    #[test]
    fn xmlsec1_inclusive_and_exclusive_verify() {
        check(include_str!("../tests/fixtures/xmlsec1-inclusive.xml")).unwrap();
        check(include_str!("../tests/fixtures/xmlsec1-exclusive.xml")).unwrap();
    }

    #[test]
    fn xmlsec1_tampered_refused() {
        let x = include_str!("../tests/fixtures/xmlsec1-exclusive.xml");
        assert!(check(&x.replace("RSSMRA85T10A562S", "RSSMRA85T10A562T")).is_err());
        assert!(check(&x.replace("x:z=\"1\"", "x:z=\"2\"")).is_err());
    }
}
