//! A check of the PDF/A-2b (ISO 19005-2) rules this crate's documents rely on, read back from
//! the bytes with `lopdf` (an independent parser) and `ttf-parser`.
//!
//! It is not a full validator (veraPDF is; Debian does not package it): it checks what the
//! writer could get wrong for the documents it writes. The tests run it on every certificate
//! and self-declaration they make, before and after the seal.
//!
//! ```
//! use tscns_cityportal::documents::pdfa;
//! assert!(pdfa::check(b"%PDF-1.7\n").is_err());
//! ```

use std::collections::BTreeMap;

use lopdf::{Dictionary, Document, Object, ObjectId};

/// Checks `pdf` and returns every rule it breaks (empty: none found).
///
/// The rules (clause numbers of ISO 19005-2:2011):
/// - 6.1.2: the header `%PDF-1.n` and a comment of four bytes above 127;
/// - 6.1.3: a trailer `/ID`, no `/Encrypt`;
/// - 6.2.2, 6.2.4.3: an output intent `/GTS_PDFA1` with an embedded RGB ICC profile, and only
///   DeviceRGB or DeviceGray colours in the content streams, no images, shadings or extended
///   graphics states (none of the documents has any);
/// - 6.2.11.4: every font embedded (`/FontFile2` of a `/CIDFontType2` under `/Type0`), with a
///   `/CIDToGIDMap`;
/// - 6.2.11.5: the `/W` width of every character shown equal to the font program's advance;
/// - 6.2.11.8: no character shown maps to `.notdef` or a glyph the program lacks;
/// - 6.3.2, 6.3.3: annotations printable (`/F` print flag) with an appearance stream;
/// - 6.6.2: an XMP metadata stream, unfiltered, with `pdfaid:part` 2 and `pdfaid:conformance`
///   B, whose title, creator, tool, producer and dates agree with the Info dictionary.
pub fn check(pdf: &[u8]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    check_header(pdf, &mut problems);
    if nesting(pdf) > MAX_NESTING {
        problems.push(format!("objects nested deeper than {MAX_NESTING} levels"));
        return Err(problems);
    }
    let doc = match Document::load_mem(pdf) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("the file does not parse: {e}"));
            return Err(problems);
        }
    };
    if doc.trailer.get(b"Encrypt").is_ok() {
        problems.push("6.1.3: the file is encrypted".into());
    }
    match doc.trailer.get(b"ID") {
        Ok(Object::Array(a)) if a.len() == 2 => {}
        _ => problems.push("6.1.3: no /ID of two strings in the trailer".into()),
    }
    match doc.catalog() {
        Ok(catalog) => {
            check_output_intent(&doc, catalog, &mut problems);
            check_metadata(&doc, catalog, &mut problems);
        }
        Err(e) => problems.push(format!("no catalog: {e}")),
    }
    let mut fonts = BTreeMap::new();
    for (n, page) in doc.get_pages() {
        check_page(&doc, n, page, &mut fonts, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_header(pdf: &[u8], problems: &mut Vec<String>) {
    if !pdf.starts_with(b"%PDF-1.") {
        problems.push("6.1.2: the file does not start with %PDF-1.n".into());
        return;
    }
    let second = pdf
        .iter()
        .position(|b| *b == b'\n' || *b == b'\r')
        .and_then(|i| pdf.get(i..))
        .map(|rest| {
            let rest = rest.iter().skip_while(|b| **b == b'\n' || **b == b'\r');
            rest.take_while(|b| **b != b'\n' && **b != b'\r')
                .copied()
                .collect::<Vec<u8>>()
        })
        .unwrap_or_default();
    if !(second.first() == Some(&b'%')
        && second.iter().skip(1).take(4).filter(|b| **b > 127).count() == 4)
    {
        problems.push("6.1.2: no binary comment (four bytes above 127) after the header".into());
    }
}

fn resolve<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Object> {
    match o {
        Object::Reference(id) => doc.get_object(*id).ok(),
        other => Some(other),
    }
}

/// The value of `key` in `d`, references followed.
fn entry<'a>(doc: &'a Document, d: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    d.get(key).ok().and_then(|o| resolve(doc, o))
}

/// A number, integer or real.
fn number(o: &Object) -> Option<f32> {
    o.as_float()
        .ok()
        .or_else(|| o.as_i64().ok().map(|i| i as f32))
}

fn dict<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Dictionary> {
    match resolve(doc, o)? {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

/// The most bytes one stream may decode to (a compressed "bomb" is refused, not inflated).
const MAX_STREAM: u64 = 32 * 1024 * 1024;

/// The deepest nesting of arrays and dictionaries handed to lopdf, whose parser recurses.
const MAX_NESTING: usize = 64;

/// A stream's decoded bytes: unfiltered, or FlateDecode up to [`MAX_STREAM`] bytes.
fn stream_bytes(s: &lopdf::Stream) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    match s.dict.get(b"Filter") {
        Err(_) => Ok(s.content.clone()),
        Ok(f)
            if f.as_name().ok() == Some(&b"FlateDecode"[..])
                || matches!(f, Object::Array(a) if a.len() == 1 && a[0].as_name().ok() == Some(&b"FlateDecode"[..])) =>
        {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(s.content.as_slice())
                .take(MAX_STREAM + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("does not inflate: {e}"))?;
            if out.len() as u64 > MAX_STREAM {
                return Err(format!("decodes to more than {MAX_STREAM} bytes"));
            }
            Ok(out)
        }
        Ok(_) => Err("uses a filter other than FlateDecode (these documents use no other)".into()),
    }
}

/// The deepest nesting of `[` and `<<` in PDF syntax, outside strings, comments and stream data.
fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'(' => {
                // A literal string: balanced parentheses, backslash escapes.
                let mut open = 1usize;
                i += 1;
                while i < bytes.len() && open > 0 {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'(' => open += 1,
                        b')' => open -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'%' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' => depth = depth.saturating_sub(1),
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                depth += 1;
                deepest = deepest.max(depth);
                i += 1;
            }
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b's' if bytes[i..].starts_with(b"stream") => {
                // Stream data is not parsed as objects: skip to its end.
                match bytes[i..].windows(9).position(|w| w == b"endstream") {
                    Some(at) => i += at + 8,
                    None => break,
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest
}

fn name_is(d: &Dictionary, key: &[u8], value: &[u8]) -> bool {
    matches!(d.get(key), Ok(Object::Name(n)) if n == value)
}

fn check_output_intent(doc: &Document, catalog: &Dictionary, problems: &mut Vec<String>) {
    let intents = entry(doc, catalog, b"OutputIntents").and_then(|o| o.as_array().ok());
    let Some(intents) = intents else {
        problems.push("6.2.2: no /OutputIntents in the catalog".into());
        return;
    };
    let pdfa = intents
        .iter()
        .filter_map(|o| dict(doc, o))
        .find(|d| name_is(d, b"S", b"GTS_PDFA1"));
    let Some(intent) = pdfa else {
        problems.push("6.2.2: no GTS_PDFA1 output intent".into());
        return;
    };
    let profile = entry(doc, intent, b"DestOutputProfile").and_then(|o| o.as_stream().ok());
    match profile {
        Some(s) => {
            let n = s.dict.get(b"N").and_then(Object::as_i64).unwrap_or(0);
            let bytes = stream_bytes(s).unwrap_or_default();
            // ICC header: the colour space signature at bytes 16..20.
            if n != 3 || bytes.get(16..20) != Some(b"RGB ") {
                problems
                    .push("6.2.2: the output intent's profile is not an RGB ICC profile".into());
            }
        }
        None => problems.push("6.2.2: the output intent has no embedded profile".into()),
    }
}

/// The text of a PDF text string (UTF-16BE with BOM, or PDFDocEncoding's ASCII part).
fn text_string(o: &Object) -> Option<String> {
    let bytes = o.as_str().ok()?;
    if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16(&units).ok();
    }
    Some(bytes.iter().map(|b| char::from(*b)).collect())
}

/// The text of the first `<tag>` element in `xml` (XML entities decoded), or of a `tag="..."`
/// attribute.
fn xmp_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let raw = if let Some(at) = xml.find(&open) {
        let rest = &xml[at + open.len()..];
        let end = rest.find(&format!("</{tag}>"))?;
        let inner = &rest[..end];
        // An rdf:Alt / rdf:Seq: the first rdf:li.
        match inner.find("<rdf:li") {
            Some(li) => {
                let after = &inner[li..];
                let start = after.find('>')? + 1;
                let stop = after.find("</rdf:li>")?;
                after.get(start..stop)?.to_string()
            }
            None => inner.to_string(),
        }
    } else {
        let attr = format!("{tag}=\"");
        let at = xml.find(&attr)?;
        let rest = &xml[at + attr.len()..];
        rest[..rest.find('"')?].to_string()
    };
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// An instant from a PDF date (`D:YYYYMMDDHHmmSS+HH'mm'` or `Z`) as UTC `YYYYMMDDHHmmSS`.
fn pdf_instant(s: &str) -> Option<String> {
    let s = s.strip_prefix("D:")?;
    let digits: String = s.chars().take(14).collect();
    if digits.len() != 14 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let zone = &s[14..];
    if zone.is_empty()
        || zone.starts_with('Z')
        || zone.starts_with("+00'00")
        || zone.starts_with("-00'00")
    {
        Some(digits)
    } else {
        None
    }
}

/// An instant from an XMP date (`YYYY-MM-DDTHH:mm:ssZ` or `+00:00`) as UTC `YYYYMMDDHHmmSS`.
fn xmp_instant(s: &str) -> Option<String> {
    let (body, zone) = match s.find(['Z', '+']) {
        Some(at) if at >= 19 => (&s[..at], &s[at..]),
        _ => (s, ""),
    };
    if !(zone == "Z" || zone == "+00:00" || zone.is_empty()) {
        return None;
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 14).then_some(digits)
}

fn check_metadata(doc: &Document, catalog: &Dictionary, problems: &mut Vec<String>) {
    let stream = entry(doc, catalog, b"Metadata").and_then(|o| o.as_stream().ok());
    let Some(stream) = stream else {
        problems.push("6.6.2.1: no /Metadata stream in the catalog".into());
        return;
    };
    if stream.dict.get(b"Filter").is_ok() {
        problems.push("6.6.2.1: the metadata stream is filtered".into());
    }
    let xml = String::from_utf8_lossy(&stream.content).into_owned();
    if xmp_value(&xml, "pdfaid:part").as_deref() != Some("2") {
        problems.push("6.6.4: pdfaid:part is not 2".into());
    }
    if xmp_value(&xml, "pdfaid:conformance").as_deref() != Some("B") {
        problems.push("6.6.4: pdfaid:conformance is not B".into());
    }
    let info = doc.trailer.get(b"Info").ok().and_then(|o| dict(doc, o));
    let Some(info) = info else {
        return;
    };
    let pairs = [
        ("Title", "dc:title"),
        ("Author", "dc:creator"),
        ("Creator", "xmp:CreatorTool"),
        ("Producer", "pdf:Producer"),
    ];
    for (key, tag) in pairs {
        if let Ok(v) = info.get(key.as_bytes()) {
            let info_text = text_string(v);
            if info_text.is_none() || info_text != xmp_value(&xml, tag) {
                problems.push(format!(
                    "6.6.3: Info /{key} {info_text:?} differs from XMP {tag} {:?}",
                    xmp_value(&xml, tag)
                ));
            }
        }
    }
    for (key, tag) in [
        ("CreationDate", "xmp:CreateDate"),
        ("ModDate", "xmp:ModifyDate"),
    ] {
        if let Ok(v) = info.get(key.as_bytes()) {
            let a = text_string(v).as_deref().and_then(pdf_instant);
            let b = xmp_value(&xml, tag).as_deref().and_then(xmp_instant);
            if a.is_none() || a != b {
                problems.push(format!("6.6.3: Info /{key} differs from XMP {tag}"));
            }
        }
    }
}

/// One font as the checker sees it: widths by CID, the CID → GID map, the program's glyph
/// count and advances.
struct CheckedFont {
    widths: BTreeMap<u32, f32>,
    default_width: f32,
    /// `None`: Identity.
    cid_to_gid: Option<Vec<u8>>,
    glyphs: u16,
    advances: Vec<f32>,
}

fn widths(doc: &Document, cid: &Dictionary) -> BTreeMap<u32, f32> {
    let mut out = BTreeMap::new();
    let Some(w) = entry(doc, cid, b"W").and_then(|o| o.as_array().ok()) else {
        return out;
    };
    // Two-byte codes: CIDs above 0xFFFF cannot be shown, and a font has at most 65,536 widths.
    const LAST_CID: u32 = 0xffff;
    let mut i = 0;
    while i < w.len() && out.len() <= LAST_CID as usize {
        let Some(first) = w[i].as_i64().ok().and_then(|v| u32::try_from(v).ok()) else {
            break;
        };
        match w.get(i + 1) {
            Some(Object::Array(list)) => {
                for (k, v) in list.iter().enumerate() {
                    let cid = u32::try_from(k).ok().and_then(|k| first.checked_add(k));
                    match (cid, number(v)) {
                        (Some(cid), Some(v)) if cid <= LAST_CID => {
                            out.insert(cid, v);
                        }
                        _ => break,
                    }
                }
                i += 2;
            }
            Some(last) => {
                let (Some(last), Some(v)) = (
                    last.as_i64().ok().and_then(|v| u32::try_from(v).ok()),
                    w.get(i + 2).and_then(number),
                ) else {
                    break;
                };
                if first <= LAST_CID {
                    for c in first..=last.min(LAST_CID) {
                        out.insert(c, v);
                    }
                }
                i += 3;
            }
            None => break,
        }
    }
    out
}

fn load_font(
    doc: &Document,
    font: &Dictionary,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<CheckedFont> {
    if !name_is(font, b"Subtype", b"Type0") {
        problems.push(format!(
            "6.2.11: font {name} is not a Type0 font (the writer makes only those)"
        ));
        return None;
    }
    let cid = entry(doc, font, b"DescendantFonts")
        .and_then(|o| o.as_array().ok())
        .and_then(|a| a.first())
        .and_then(|o| dict(doc, o));
    let Some(cid) = cid else {
        problems.push(format!("6.2.11: font {name} has no descendant font"));
        return None;
    };
    if !name_is(cid, b"Subtype", b"CIDFontType2") {
        problems.push(format!("6.2.11: font {name} is not CIDFontType2"));
        return None;
    }
    let cid_to_gid = match entry(doc, cid, b"CIDToGIDMap") {
        Some(Object::Name(n)) if n == b"Identity" => None,
        Some(Object::Stream(s)) => match stream_bytes(s) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push(format!(
                    "6.2.11.4.2: font {name}'s CIDToGIDMap does not decode: {e}"
                ));
                return None;
            }
        },
        _ => {
            problems.push(format!("6.2.11.4.2: font {name} has no CIDToGIDMap"));
            return None;
        }
    };
    let program = cid
        .get(b"FontDescriptor")
        .ok()
        .and_then(|o| dict(doc, o))
        .and_then(|d| entry(doc, d, b"FontFile2"))
        .and_then(|o| o.as_stream().ok())
        .and_then(|s| stream_bytes(s).ok());
    let Some(program) = program else {
        problems.push(format!("6.2.11.4.1: font {name} is not embedded"));
        return None;
    };
    let face = match ttf_parser::Face::parse(&program, 0) {
        Ok(f) => f,
        Err(e) => {
            problems.push(format!(
                "6.2.11.4.1: font {name}'s program does not parse: {e}"
            ));
            return None;
        }
    };
    let scale = 1000.0 / f32::from(face.units_per_em());
    let glyphs = face.number_of_glyphs();
    let advances = (0..glyphs)
        .map(|g| {
            face.glyph_hor_advance(ttf_parser::GlyphId(g))
                .map_or(0.0, |a| f32::from(a) * scale)
        })
        .collect();
    let default_width = cid.get(b"DW").ok().and_then(number).unwrap_or(1000.0);
    Some(CheckedFont {
        widths: widths(doc, cid),
        default_width,
        cid_to_gid,
        glyphs,
        advances,
    })
}

/// Fonts already loaded, by the address of their dictionary in the parsed document (each font
/// object is read once, however many pages use it).
type FontCache = BTreeMap<usize, Option<std::rc::Rc<CheckedFont>>>;

fn check_page(
    doc: &Document,
    n: u32,
    page: ObjectId,
    cache: &mut FontCache,
    problems: &mut Vec<String>,
) {
    let mut fonts: BTreeMap<Vec<u8>, Option<std::rc::Rc<CheckedFont>>> = BTreeMap::new();
    match doc.get_page_fonts(page) {
        Ok(map) => {
            for (name, font) in map {
                let label = String::from_utf8_lossy(&name).into_owned();
                let key = std::ptr::from_ref(font) as usize;
                let loaded = cache
                    .entry(key)
                    .or_insert_with(|| load_font(doc, font, &label, problems).map(std::rc::Rc::new))
                    .clone();
                fonts.insert(name, loaded);
            }
        }
        Err(e) => problems.push(format!("page {n}: fonts unreadable: {e}")),
    }
    if let Ok((Some(res), _)) = doc.get_page_resources(page) {
        for key in [&b"XObject"[..], b"Shading", b"Pattern", b"ExtGState"] {
            if res.get(key).is_ok() {
                problems.push(format!(
                    "page {n}: /{} resources are not expected in these documents",
                    String::from_utf8_lossy(key)
                ));
            }
        }
    }
    check_annotations(doc, n, page, problems);
    let mut content = Vec::new();
    for id in doc.get_page_contents(page) {
        match doc.get_object(id).ok().and_then(|o| o.as_stream().ok()) {
            Some(s) => match stream_bytes(s) {
                Ok(bytes) => {
                    content.extend_from_slice(&bytes);
                    content.push(b'\n');
                }
                Err(e) => {
                    problems.push(format!("page {n}: a content stream {e}"));
                    return;
                }
            },
            None => {
                problems.push(format!("page {n}: a content stream is missing"));
                return;
            }
        }
    }
    if nesting(&content) > MAX_NESTING {
        problems.push(format!(
            "page {n}: content nested deeper than {MAX_NESTING} levels"
        ));
        return;
    }
    let ops = match lopdf::content::Content::decode(&content) {
        Ok(c) => c.operations,
        Err(e) => {
            problems.push(format!("page {n}: content does not parse: {e}"));
            return;
        }
    };
    let mut current: Option<Vec<u8>> = None;
    let mut reported = 0;
    for op in ops {
        match op.operator.as_str() {
            "Tf" => {
                current = op
                    .operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .map(<[u8]>::to_vec)
            }
            "Tj" | "'" | "\"" | "TJ" => {
                let strings: Vec<&[u8]> = op
                    .operands
                    .iter()
                    .flat_map(|o| match o {
                        Object::Array(a) => a.iter().filter_map(|x| x.as_str().ok()).collect(),
                        other => other.as_str().ok().into_iter().collect::<Vec<_>>(),
                    })
                    .collect();
                let font = current.as_ref().and_then(|f| fonts.get(f));
                let Some(Some(font)) = font else {
                    if font.is_none() {
                        problems.push(format!("page {n}: text shown without a known font"));
                    }
                    continue;
                };
                for s in strings {
                    for code in s.chunks(2) {
                        let cid = match code {
                            [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
                            _ => {
                                problems
                                    .push(format!("page {n}: a one-byte code in a two-byte font"));
                                continue;
                            }
                        };
                        if let Some(p) = check_glyph(font, cid) {
                            if reported < 20 {
                                problems.push(format!("page {n}: CID {cid}: {p}"));
                            }
                            reported += 1;
                        }
                    }
                }
            }
            "k" | "K" | "cs" | "CS" | "sc" | "SC" | "scn" | "SCN" | "sh" | "Do" | "gs" | "BI" => {
                problems.push(format!(
                    "page {n}: operator {} is not expected in these documents (6.2.4.3, 6.2.8, 6.2.10)",
                    op.operator
                ));
            }
            _ => {}
        }
    }
}

/// What is wrong with showing `cid` in `font`, if anything.
fn check_glyph(font: &CheckedFont, cid: u32) -> Option<String> {
    let gid = match &font.cid_to_gid {
        None => u16::try_from(cid).ok()?,
        Some(map) => {
            let at = usize::try_from(cid).ok()? * 2;
            match map.get(at..at + 2) {
                Some([a, b]) => u16::from_be_bytes([*a, *b]),
                _ => 0,
            }
        }
    };
    if gid == 0 {
        return Some("6.2.11.8: maps to .notdef".into());
    }
    if gid >= font.glyphs {
        return Some(format!(
            "6.2.11.4.1: glyph {gid} is not in the font program"
        ));
    }
    let declared = font.widths.get(&cid).copied().unwrap_or(font.default_width);
    let actual = font.advances.get(usize::from(gid)).copied().unwrap_or(0.0);
    if (declared - actual).abs() > 1.0 {
        return Some(format!(
            "6.2.11.5: /W says {declared}, the font program {actual}"
        ));
    }
    None
}

fn check_annotations(doc: &Document, n: u32, page: ObjectId, problems: &mut Vec<String>) {
    let Ok(page_dict) = doc.get_dictionary(page) else {
        return;
    };
    let Some(annots) = entry(doc, page_dict, b"Annots").and_then(|o| o.as_array().ok()) else {
        return;
    };
    for a in annots {
        let Some(a) = dict(doc, a) else { continue };
        let flags = a.get(b"F").and_then(Object::as_i64).unwrap_or(0);
        if flags & 4 == 0 || flags & (1 | 2 | 32) != 0 {
            problems.push(format!(
                "page {n}: 6.3.2: an annotation is not printable or is hidden"
            ));
        }
        let has_normal = a
            .get(b"AP")
            .ok()
            .and_then(|o| dict(doc, o))
            .is_some_and(|ap| ap.get(b"N").is_ok());
        if !has_normal {
            problems.push(format!(
                "page {n}: 6.3.3: an annotation has no normal appearance"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_compare_as_instants() {
        assert_eq!(
            pdf_instant("D:20261203113000+00'00'").as_deref(),
            Some("20261203113000")
        );
        assert_eq!(
            pdf_instant("D:20261203113000Z").as_deref(),
            Some("20261203113000")
        );
        assert_eq!(pdf_instant("D:20261203113000+01'00'"), None);
        assert_eq!(
            xmp_instant("2026-12-03T11:30:00Z").as_deref(),
            Some("20261203113000")
        );
        assert_eq!(
            xmp_instant("2026-12-03T11:30:00+00:00").as_deref(),
            Some("20261203113000")
        );
    }

    #[test]
    fn xmp_values_are_read_from_elements_lists_and_attributes() {
        let xml = r#"<x pdfaid:part="2"><dc:title><rdf:Alt><rdf:li xml:lang="x-default">A &amp; B</rdf:li></rdf:Alt></dc:title><pdfaid:conformance>B</pdfaid:conformance></x>"#;
        assert_eq!(xmp_value(xml, "pdfaid:part").as_deref(), Some("2"));
        assert_eq!(xmp_value(xml, "dc:title").as_deref(), Some("A & B"));
        assert_eq!(xmp_value(xml, "pdfaid:conformance").as_deref(), Some("B"));
        assert_eq!(xmp_value(xml, "pdf:Producer"), None);
    }

    #[test]
    fn hostile_input_is_reported_without_recursing_or_inflating() {
        let deep = format!("%PDF-1.7\n1 0 obj\n{}\nendobj\n", "[".repeat(10_000));
        let problems = check(deep.as_bytes()).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("nested")),
            "{problems:?}"
        );
        // Nesting inside strings, comments and stream data does not count.
        assert_eq!(
            nesting(b"[ ([[[[) % [[[[\n << >> stream\n[[[[[[\nendstream ]"),
            2
        );
        // Widths beyond two-byte codes are not expanded.
        let cid = Dictionary::from_iter(vec![(
            "W",
            Object::Array(vec![
                Object::Integer(4_294_967_295),
                Object::Array(vec![Object::Integer(1), Object::Integer(2)]),
                Object::Integer(0),
                Object::Integer(4_294_967_295),
                Object::Integer(5),
            ]),
        )]);
        let w = widths(&Document::new(), &cid);
        assert_eq!(w.len(), 0x10000);
        // A deflate bomb is refused at the limit.
        let zeros = vec![0u8; 40 * 1024 * 1024];
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &zeros).unwrap();
        let mut dict = Dictionary::new();
        dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
        let s = lopdf::Stream::new(dict, e.finish().unwrap());
        assert!(stream_bytes(&s).unwrap_err().contains("more than"));
    }

    #[test]
    fn garbage_is_reported_not_accepted() {
        let problems = check(b"not a pdf").unwrap_err();
        assert!(problems.iter().any(|p| p.contains("6.1.2")), "{problems:?}");
    }
}
