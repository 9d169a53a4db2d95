//! Strict XML input and careful XML output.
//!
//! Every XML document this crate reads comes from outside (a browser's POST, Cohesion's answer), so it
//! is parsed with [`roxmltree`] under these rules: a size limit per document kind, a node-count limit,
//! and **no DTD at all** (no internal subset, no entity declarations: no billion-laughs, no external
//! entities). Only the five predefined entities and character references exist.

use crate::error::{Error, Result};

/// Largest callback document accepted (the real one is about 2 KiB).
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;
/// Largest GetCredential answer accepted (the SAML one embeds the IdP's SAMLResponse, tens of KiB).
pub const MAX_PROFILE_BYTES: usize = 512 * 1024;
/// Node-count limit handed to the parser.
const MAX_NODES: u32 = 20_000;

/// Parses `text` strictly. `what` names the document in errors.
pub(crate) fn parse<'a>(
    what: &'static str,
    text: &'a str,
    limit: usize,
) -> Result<roxmltree::Document<'a>> {
    if text.len() > limit {
        return Err(Error::TooLarge {
            what,
            size: text.len(),
            limit,
        });
    }
    // Belt and braces: refuse a DOCTYPE before the parser even sees it.
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(Error::DtdRejected { what });
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Error::DtdRejected { what },
        other => Error::malformed(what, other.to_string()),
    })
}

/// Escapes text content for an XML element.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value (double-quoted) or HTML attribute.
#[cfg_attr(not(feature = "emulator"), allow(dead_code))]
pub(crate) fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
    out
}

/// The text of an element (concatenated text children), trimmed.
pub(crate) fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    let mut s = String::new();
    for c in node.children() {
        if c.is_text() {
            s.push_str(c.text().unwrap_or(""));
        }
    }
    s.trim().to_owned()
}

/// Refuses any element child: the element must hold text only.
pub(crate) fn text_only(what: &'static str, node: roxmltree::Node<'_, '_>) -> Result<String> {
    if node.children().any(|c| c.is_element()) {
        return Err(Error::malformed(
            what,
            format!(
                "element <{}> must contain text only",
                node.tag_name().name()
            ),
        ));
    }
    Ok(text_of(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_dtd_and_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><a>&lol2;</a>"#;
        assert!(matches!(
            parse("t", bomb, 1 << 20),
            Err(Error::DtdRejected { .. })
        ));
        let xxe = r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert!(matches!(
            parse("t", xxe, 1 << 20),
            Err(Error::DtdRejected { .. })
        ));
        // Undeclared entity: malformed, not silently empty.
        assert!(matches!(
            parse("t", "<a>&x;</a>", 1 << 20),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn size_limit() {
        let big = format!("<a>{}</a>", "x".repeat(100));
        assert!(matches!(parse("t", &big, 50), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn node_limit() {
        let many = format!("<a>{}</a>", "<b/>".repeat(30_000));
        assert!(parse("t", &many, 1 << 20).is_err());
    }
}
