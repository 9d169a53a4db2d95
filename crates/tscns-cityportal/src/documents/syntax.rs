//! Just enough PDF syntax (ISO 32000-1 §7.2–7.5) to seal a document: objects without streams,
//! the classic cross-reference table and the trailer. Sealing reads three dictionaries of a
//! file it is handed; parsing the whole file would cost more than the signature.
//!
//! Everything is bounded: nesting depth, lengths, and the bytes looked at.

/// A PDF object, as far as sealing needs one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`, `true`, `false` or a real number: present, not needed.
    Other,
    /// An integer.
    Int(i64),
    /// A name, without the `/` (escapes `#xx` kept as written).
    Name(Vec<u8>),
    /// A literal or hexadecimal string, decoded.
    Str(Vec<u8>),
    /// `n g R`.
    Ref(u32, u16),
    /// An array.
    Array(Vec<Value>),
    /// A dictionary, in file order.
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// The value of `key` in a dictionary.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_ref(&self) -> Option<(u32, u16)> {
        match self {
            Value::Ref(n, g) => Some((*n, *g)),
            _ => None,
        }
    }

    pub(crate) fn is_name(&self, name: &[u8]) -> bool {
        matches!(self, Value::Name(n) if n == name)
    }
}

/// A name's bytes with its `#xx` escapes decoded (ISO 32000-1 §7.3.5).
fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'#' {
            if let Some(b) = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// Deepest nesting of arrays and dictionaries accepted.
const MAX_DEPTH: usize = 32;

/// A cursor over PDF bytes.
pub(crate) struct Parser<'a> {
    bytes: &'a [u8],
    pub(crate) at: usize,
}

fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

impl<'a> Parser<'a> {
    pub(crate) fn new(bytes: &'a [u8], at: usize) -> Parser<'a> {
        Parser {
            bytes,
            at: at.min(bytes.len()),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips white space and comments.
    pub(crate) fn skip_white(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.at += 1;
            } else if b == b'%' {
                while let Some(b) = self.peek() {
                    if b == b'\r' || b == b'\n' {
                        break;
                    }
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    /// A regular token (keyword or number) at the cursor.
    pub(crate) fn token(&mut self) -> &'a [u8] {
        self.skip_white();
        let start = self.at;
        while let Some(b) = self.peek() {
            if is_white(b) || is_delimiter(b) {
                break;
            }
            self.at += 1;
        }
        self.bytes.get(start..self.at).unwrap_or_default()
    }

    /// Consumes `keyword` if it is next.
    pub(crate) fn keyword(&mut self, keyword: &[u8]) -> bool {
        let save = self.at;
        if self.token() == keyword {
            true
        } else {
            self.at = save;
            false
        }
    }

    /// An unsigned integer token.
    pub(crate) fn unsigned(&mut self) -> Option<u64> {
        let t = self.token();
        if t.is_empty() || t.len() > 18 || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse().ok()
    }

    /// One object.
    pub(crate) fn value(&mut self) -> Result<Value, String> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("objects nested too deeply".into());
        }
        self.skip_white();
        let Some(b) = self.peek() else {
            return Err("the file ends inside an object".into());
        };
        match b {
            b'/' => {
                self.at += 1;
                let start = self.at;
                while let Some(b) = self.peek() {
                    if is_white(b) || is_delimiter(b) {
                        break;
                    }
                    self.at += 1;
                }
                Ok(Value::Name(decode_name(
                    self.bytes.get(start..self.at).unwrap_or_default(),
                )))
            }
            b'<' if self.bytes.get(self.at + 1) == Some(&b'<') => {
                self.at += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip_white();
                    match self.peek() {
                        Some(b'>') if self.bytes.get(self.at + 1) == Some(&b'>') => {
                            self.at += 2;
                            return Ok(Value::Dict(entries));
                        }
                        Some(b'/') => {
                            let Value::Name(key) = self.value_at(depth + 1)? else {
                                return Err("a dictionary key is not a name".into());
                            };
                            let v = self.value_at(depth + 1)?;
                            if entries.iter().any(|(k, _)| *k == key) {
                                return Err(format!(
                                    "the key /{} twice in one dictionary",
                                    String::from_utf8_lossy(&key)
                                ));
                            }
                            entries.push((key, v));
                        }
                        _ => return Err("a dictionary key is not a name".into()),
                    }
                }
            }
            b'<' => {
                self.at += 1;
                let mut digits = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'>') => {
                            self.at += 1;
                            break;
                        }
                        Some(b) if b.is_ascii_hexdigit() => digits.push(b),
                        Some(b) if is_white(b) => {}
                        _ => return Err("a bad hexadecimal string".into()),
                    }
                    self.at += 1;
                }
                if digits.len() % 2 == 1 {
                    digits.push(b'0');
                }
                hex::decode(&digits)
                    .map(Value::Str)
                    .map_err(|e| format!("a bad hexadecimal string: {e}"))
            }
            b'(' => self.literal().map(Value::Str),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_white();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value_at(depth + 1)?);
                }
            }
            _ => {
                let t = self.token();
                if t.is_empty() {
                    return Err(format!("unexpected byte 0x{b:02x}"));
                }
                if let Some(n) = std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    // `n g R`?
                    let save = self.at;
                    if let (Ok(n), Some(g)) = (u32::try_from(n), self.unsigned()) {
                        if let (Ok(g), true) = (u16::try_from(g), self.keyword(b"R")) {
                            return Ok(Value::Ref(n, g));
                        }
                    }
                    self.at = save;
                    return Ok(Value::Int(n));
                }
                match t {
                    b"true" | b"false" | b"null" => Ok(Value::Other),
                    t if t
                        .iter()
                        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')) =>
                    {
                        Ok(Value::Other)
                    }
                    _ => Err(format!(
                        "unexpected keyword {:?}",
                        String::from_utf8_lossy(&t[..t.len().min(20)])
                    )),
                }
            }
        }
    }

    /// A literal string `( … )`, escapes decoded, balanced parentheses kept.
    fn literal(&mut self) -> Result<Vec<u8>, String> {
        self.at += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let Some(b) = self.peek() else {
                return Err("a string is not closed".into());
            };
            self.at += 1;
            match b {
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err("a string is not closed".into());
                    };
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.at += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.at += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                    out.push(b);
                }
                other => out.push(other),
            }
        }
    }
}

/// In-use cross-reference entries: (object number, offset, generation).
pub(crate) type Xref = Vec<(u32, usize, u16)>;

/// The classic cross-reference table at `at` (one section, possibly several subsections) and
/// the trailer dictionary after it: the in-use entries as (object number, offset,
/// generation).
pub(crate) fn xref_and_trailer(pdf: &[u8], at: usize) -> Result<(Xref, Value), String> {
    let mut p = Parser::new(pdf, at);
    if !p.keyword(b"xref") {
        return Err("no cross-reference table where startxref points".into());
    }
    let mut entries = Vec::new();
    loop {
        if p.keyword(b"trailer") {
            break;
        }
        let (Some(first), Some(count)) = (p.unsigned(), p.unsigned()) else {
            return Err("a bad cross-reference subsection".into());
        };
        // Each entry is 20 bytes; the count cannot exceed what the file holds.
        if count > (pdf.len() / 20) as u64 || first > u64::from(u32::MAX) - count {
            return Err("a cross-reference subsection larger than the file".into());
        }
        for i in 0..count {
            let (Some(offset), Some(generation)) = (p.unsigned(), p.unsigned()) else {
                return Err("a bad cross-reference entry".into());
            };
            let kind = p.token();
            if kind == b"n" {
                let n = u32::try_from(first + i).map_err(|_| "an object number too large")?;
                let offset = usize::try_from(offset).map_err(|_| "an offset too large")?;
                let generation = u16::try_from(generation).map_err(|_| "a generation too large")?;
                entries.push((n, offset, generation));
            } else if kind != b"f" {
                return Err("a cross-reference entry is neither n nor f".into());
            }
        }
    }
    let trailer = p.value()?;
    if !matches!(trailer, Value::Dict(_)) {
        return Err("the trailer is not a dictionary".into());
    }
    Ok((entries, trailer))
}

/// The object `n g obj … endobj` at `offset`: its value and the raw bytes of that value.
pub(crate) fn object_at(
    pdf: &[u8],
    offset: usize,
    n: u32,
    g: u16,
) -> Result<(Value, &[u8]), String> {
    let mut p = Parser::new(pdf, offset);
    let (Some(num), Some(gen)) = (p.unsigned(), p.unsigned()) else {
        return Err(format!(
            "object {n} is not where the cross-reference table says"
        ));
    };
    if num != u64::from(n) || gen != u64::from(g) || !p.keyword(b"obj") {
        return Err(format!(
            "object {n} is not where the cross-reference table says"
        ));
    }
    p.skip_white();
    let start = p.at;
    let v = p.value()?;
    let end = p.at;
    if !p.keyword(b"endobj") {
        return Err(format!("object {n} is not a plain object (a stream?)"));
    }
    Ok((v, pdf.get(start..end).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_strings_and_references_parse() {
        let src = b"<< /Type /Catalog /Pages 2 0 R /Lang (it\\(IT\\) \\101) /Id <4142 4> /N [1 2.5 -3 true null] /D << /X 7 >> >>";
        let v = Parser::new(src, 0).value().unwrap();
        assert!(v.get(b"Type").unwrap().is_name(b"Catalog"));
        assert_eq!(v.get(b"Pages").unwrap().as_ref(), Some((2, 0)));
        assert_eq!(v.get(b"Lang"), Some(&Value::Str(b"it(IT) A".to_vec())));
        assert_eq!(v.get(b"Id"), Some(&Value::Str(vec![0x41, 0x42, 0x40])));
        assert_eq!(
            v.get(b"N"),
            Some(&Value::Array(vec![
                Value::Int(1),
                Value::Other,
                Value::Int(-3),
                Value::Other,
                Value::Other
            ]))
        );
        assert_eq!(v.get(b"D").unwrap().get(b"X"), Some(&Value::Int(7)));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for src in [
            &b"<< /A"[..],
            b"(open",
            b"<< 1 2 >>",
            b"<zz>",
            b"[[[[",
            b"",
            b"<< /A >",
        ] {
            assert!(
                Parser::new(src, 0).value().is_err(),
                "{:?}",
                String::from_utf8_lossy(src)
            );
        }
        assert!(
            Parser::new(b"<< /A 1 /A 2 >>", 0).value().is_err(),
            "a key twice"
        );
        let v = Parser::new(b"<< /AcroF#6frm 1 >>", 0).value().unwrap();
        assert_eq!(v.get(b"AcroForm"), Some(&Value::Int(1)));
        assert!(object_at(b"1 0 obj", 99, 1, 0).is_err());
        assert!(Parser::new(b"x", 99).value().is_err());
        let deep = "[".repeat(100);
        assert!(Parser::new(deep.as_bytes(), 0).value().is_err());
    }

    #[test]
    fn a_cross_reference_table_and_trailer_parse() {
        let pdf = b"xref\n0 3\n0000000000 65535 f\r\n0000000017 00000 n\r\n0000000081 00000 n\r\ntrailer\n<< /Size 3 /Root 1 0 R >>\n";
        let (entries, trailer) = xref_and_trailer(pdf, 0).unwrap();
        assert_eq!(entries, vec![(1, 17, 0), (2, 81, 0)]);
        assert_eq!(trailer.get(b"Root").unwrap().as_ref(), Some((1, 0)));
        assert!(xref_and_trailer(b"xref\n0 99999999\n", 0).is_err());
    }
}
