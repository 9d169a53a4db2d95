//! The `dsAuth` document: the login request a site sends and the callback Cohesion posts back.
//!
//! Element order, namespaces and encoding follow Regione Marche's CohesionID-Docs, Request / § Callback
//! (CohesionID-Docs, Flusso-di-Autenticazione.md): `<dsAuth xmlns="http://tempuri.org/Auth.xsd">
//! <auth>` with `user`, `id_sa`, `id_sito`, `esito_auth_sa`, `id_sessione_sa`, `id_sessione_aspnet_sa`,
//! `url_validate`, `url_richiesta`, `esito_auth_sso`, `id_sessione_sso`, `id_sessione_aspnet_sso`,
//! `stilesheet`, in this order; the callback adds `ip`, `AuthRestriction`, `UType`, `purpose`,
//! `url_logout`, `cittad` in no namespace. The document travels as base64, URL-encoded in a query.

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::xml;

/// The `dsAuth` namespace.
pub const AUTH_NS: &str = "http://tempuri.org/Auth.xsd";

/// The twelve elements of `<auth>`, in the documented order.
pub const AUTH_ELEMENTS: [&str; 12] = [
    "user",
    "id_sa",
    "id_sito",
    "esito_auth_sa",
    "id_sessione_sa",
    "id_sessione_aspnet_sa",
    "url_validate",
    "url_richiesta",
    "esito_auth_sso",
    "id_sessione_sso",
    "id_sessione_aspnet_sso",
    "stilesheet",
];

/// Extra elements of the callback (no namespace).
pub const CALLBACK_EXTRAS: [&str; 6] = [
    "ip",
    "AuthRestriction",
    "UType",
    "purpose",
    "url_logout",
    "cittad",
];

/// A `dsAuth` document's fields; empty string = empty element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsAuth {
    /// Values of [`AUTH_ELEMENTS`], same order.
    pub fields: [String; 12],
    /// Values of [`CALLBACK_EXTRAS`] present in the document.
    pub extras: Vec<(String, String)>,
}

impl DsAuth {
    /// A request with the site's values.
    pub fn request(
        id_sito: &str,
        url_validate: &str,
        url_richiesta: &str,
        stilesheet: &str,
    ) -> Self {
        let mut d = DsAuth::default();
        d.set("id_sito", id_sito);
        d.set("url_validate", url_validate);
        d.set("url_richiesta", url_richiesta);
        d.set("stilesheet", stilesheet);
        d
    }

    fn index(name: &str) -> Option<usize> {
        AUTH_ELEMENTS.iter().position(|e| *e == name)
    }

    /// The value of one of the twelve elements ("" if empty or unknown).
    pub fn get(&self, name: &str) -> &str {
        Self::index(name)
            .map(|i| self.fields[i].as_str())
            .unwrap_or("")
    }

    /// Sets one of the twelve elements (unknown names ignored).
    pub fn set(&mut self, name: &str, value: &str) {
        if let Some(i) = Self::index(name) {
            self.fields[i] = value.to_owned();
        }
    }

    /// The value of a callback extra, if present.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extras
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Serialises to XML, elements in the documented order.
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\"?>");
        s.push_str("<dsAuth xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"");
        s.push_str(AUTH_NS);
        s.push_str("\"><auth>");
        for (name, value) in AUTH_ELEMENTS.iter().zip(self.fields.iter()) {
            push_element(&mut s, name, value, "");
        }
        for (name, value) in &self.extras {
            push_element(&mut s, name, value, " xmlns=\"\"");
        }
        s.push_str("</auth></dsAuth>");
        s
    }

    /// base64 of the XML (what goes into `auth`, before URL-encoding).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_xml())
    }

    /// Parses a `dsAuth` document strictly (no DTD, size-limited, duplicates refused).
    pub fn parse_xml(what: &'static str, text: &str) -> Result<Self> {
        let doc = xml::parse(what, text, xml::MAX_CALLBACK_BYTES)?;
        let root = doc.root_element();
        if root.tag_name().name() != "dsAuth" || root.tag_name().namespace() != Some(AUTH_NS) {
            return Err(Error::malformed(
                what,
                "the document element is not dsAuth in http://tempuri.org/Auth.xsd",
            ));
        }
        let auths: Vec<_> = root.children().filter(|c| c.is_element()).collect();
        if auths.len() != 1
            || auths[0].tag_name().name() != "auth"
            || auths[0].tag_name().namespace() != Some(AUTH_NS)
        {
            return Err(Error::malformed(
                what,
                "dsAuth must contain exactly one <auth>",
            ));
        }
        let mut d = DsAuth::default();
        let mut seen = [false; 12];
        for el in auths[0].children().filter(|c| c.is_element()) {
            let name = el.tag_name().name();
            if let Some(i) = Self::index(name) {
                if el.tag_name().namespace() != Some(AUTH_NS) {
                    return Err(Error::malformed(
                        what,
                        format!("<{name}> is not in the dsAuth namespace"),
                    ));
                }
                if seen[i] {
                    return Err(Error::malformed(what, format!("<{name}> appears twice")));
                }
                seen[i] = true;
                d.fields[i] = xml::text_only(what, el)?;
            } else if CALLBACK_EXTRAS.contains(&name) {
                if d.extras.iter().any(|(n, _)| n == name) {
                    return Err(Error::malformed(what, format!("<{name}> appears twice")));
                }
                d.extras.push((name.to_owned(), xml::text_only(what, el)?));
            }
            // Other elements: ignored (Cohesion may add fields); never interpreted.
        }
        Ok(d)
    }

    /// Decodes the `auth` value (base64; whitespace ignored, a space taken as a `+` that a form
    /// decoder turned into a space) and parses it.
    pub fn parse_base64(what: &'static str, auth: &str) -> Result<Self> {
        if auth.len() > xml::MAX_CALLBACK_BYTES * 2 {
            return Err(Error::TooLarge {
                what,
                size: auth.len(),
                limit: xml::MAX_CALLBACK_BYTES * 2,
            });
        }
        let cleaned: String = auth
            .trim()
            .chars()
            .filter(|c| *c != '\r' && *c != '\n' && *c != '\t')
            .map(|c| if c == ' ' { '+' } else { c })
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.as_bytes())
            })
            .map_err(|e| Error::malformed(what, format!("not base64: {e}")))?;
        let text = decode_text(what, &bytes)?;
        Self::parse_xml(what, &text)
    }
}

/// Bytes to text: UTF-8 (BOM allowed) or UTF-16 with a BOM (.NET writes `encoding="utf-16"`).
fn decode_text(what: &'static str, bytes: &[u8]) -> Result<String> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8(rest.to_vec()).map_err(|_| Error::malformed(what, "not UTF-8"));
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<String> {
        if !rest.len().is_multiple_of(2) {
            return Err(Error::malformed(what, "odd-length UTF-16"));
        }
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| Error::malformed(what, "invalid UTF-16"))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::malformed(what, "not UTF-8"))
}

fn push_element(s: &mut String, name: &str, value: &str, attrs: &str) {
    s.push('<');
    s.push_str(name);
    s.push_str(attrs);
    if value.is_empty() {
        s.push_str(" />");
    } else {
        s.push('>');
        s.push_str(&xml::escape_text(value));
        s.push_str("</");
        s.push_str(name);
        s.push('>');
    }
}

/// URL-encodes a query value (`application/x-www-form-urlencoded` byte serialisation).
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_round_trip() {
        let mut d = DsAuth::request(
            "SITO",
            "https://a/cb?x=1&y=2",
            "https://a/",
            "AuthRestriction=2",
        );
        d.extras.push(("ip".into(), "1.2.3.4".into()));
        let xml = d.to_xml();
        let positions: Vec<usize> = AUTH_ELEMENTS
            .iter()
            .map(|e| xml.find(&format!("<{e}")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(xml.contains("x=1&amp;y=2"));
        let back = DsAuth::parse_base64("t", &d.to_base64()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn duplicates_and_wrong_roots_refused() {
        let dup = format!(
            "<dsAuth xmlns=\"{AUTH_NS}\"><auth><user>A</user><user>B</user></auth></dsAuth>"
        );
        assert!(DsAuth::parse_xml("t", &dup).is_err());
        assert!(DsAuth::parse_xml("t", "<dsAuth><auth/></dsAuth>").is_err());
        let nested =
            format!("<dsAuth xmlns=\"{AUTH_NS}\"><auth><user><b/>X</user></auth></dsAuth>");
        assert!(DsAuth::parse_xml("t", &nested).is_err());
    }

    #[test]
    fn utf16_with_bom() {
        let d = DsAuth::request("S", "https://a/", "https://a/", "AuthRestriction=2");
        let mut bytes = vec![0xFF, 0xFE];
        for u in d.to_xml().encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(DsAuth::parse_base64("t", &b64).unwrap(), d);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = DsAuth::parse_base64("t", &s);
            let _ = DsAuth::parse_xml("t", &s);
        }

        #[test]
        fn any_values_round_trip(user in "\\PC{0,40}", url in "[a-z:/?&=.]{0,40}") {
            let mut d = DsAuth::request("S", &url, &url, "AuthRestriction=0,1,2");
            d.set("user", user.trim());
            let back = DsAuth::parse_base64("t", &d.to_base64()).unwrap();
            proptest::prop_assert_eq!(back.get("user"), user.trim());
        }
    }
}
