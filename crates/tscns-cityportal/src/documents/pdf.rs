//! The PDF/A-2b writer behind this crate's documents, on `pdf-writer` and `subsetter`.
//!
//! What a certificate needs is small: text in two embedded fonts, straight lines and filled
//! rectangles, on A4 pages. Everything that does not depend on the document is done once per
//! process: each font is subset to a Latin repertoire (every letter of an Italian registry
//! record, and the punctuation of the documents) and its PDF objects (compressed program,
//! widths, ToUnicode, CIDToGIDMap, descriptor) are written once. A document then writes its
//! content streams, metadata and cross-reference table, and copies the font objects.
//!
//! A character outside the repertoire (a Greek or Cyrillic letter in a foreign name, say) is
//! still drawn: the document gets a font subset with those glyphs added, made on first use and
//! kept in a small cache.
//!
//! The PDF/A-2b rules the writer relies on, each checked by [`super::pdfa::check`] in the tests:
//! - `%PDF-1.7` and a binary comment; a trailer `/ID`; no encryption;
//! - an XMP packet (`pdfaid:part` 2, `pdfaid:conformance` B) that agrees with the Info dictionary;
//! - an sRGB `GTS_PDFA1` output intent (so DeviceRGB is allowed);
//! - every font embedded, its `/W` widths those of the font program, every glyph a content
//!   stream uses present in the program.
//!
//! In the content streams a character code (CID) is the glyph id in the full font; the
//! `/CIDToGIDMap` stream maps it to the subset's glyph id.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use pdf_writer::types::{CidFontType, FontFlags, OutputIntentSubtype, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::DocumentError;

/// A4 in points.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
pub(crate) const PAGE_HEIGHT: f32 = 841.89;

/// DejaVu Sans (Bitstream Vera license, see `assets/fonts/LICENSE-DejaVu.txt`).
static REGULAR_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
/// sRGB IEC 61966-2.1, the compact v2 profile of saucecontrol/Compact-ICC-Profiles (CC0).
static SRGB_ICC: &[u8] = include_bytes!("../../assets/icc/sRGB-v2-magic.icc");

/// What the documents say they were made with (Info `/Creator`, `/Producer`; XMP the same).
const PRODUCER: &str = concat!("tscns-cityportal ", env!("CARGO_PKG_VERSION"));

/// Characters whose glyph and advance are looked up once (Latin-1 and Latin Extended-A).
const CACHED_CHARS: usize = 0x180;

/// The repertoire subset once per process: ASCII, Latin-1, Latin Extended-A and the
/// punctuation the documents print.
fn base_repertoire() -> impl Iterator<Item = char> {
    let ranges = [
        (0x20u32, 0x7e),
        (0xa0, 0x17f),
        (0x2010, 0x2027),
        (0x20ac, 0x20ac),
    ];
    ranges
        .into_iter()
        .flat_map(|(a, b)| a..=b)
        .filter_map(char::from_u32)
}

// Fixed object numbers: every document has the same skeleton.
const CATALOG: Ref = Ref::new(1);
const PAGE_TREE: Ref = Ref::new(2);
const INFO: Ref = Ref::new(3);
const METADATA: Ref = Ref::new(4);
const ICC: Ref = Ref::new(5);
/// Objects of font slot `s` start at `FONTS_AT + 6 * s` (Type0, CIDFont, descriptor, program,
/// ToUnicode, CIDToGIDMap).
const FONTS_AT: i32 = 6;
const OBJECTS_PER_FONT: i32 = 6;
/// The first page object; each page is followed by its content stream.
const PAGES_AT: i32 = FONTS_AT + 2 * OBJECTS_PER_FONT;

/// Deflate: the best compression for what is made once, the fastest for each document's
/// content streams.
fn deflate(data: &[u8], once: bool) -> Vec<u8> {
    if once {
        let mut e = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(data.len() / 2 + 64),
            flate2::Compression::best(),
        );
        // Writing into a Vec cannot fail.
        let _ = e.write_all(data);
        return e.finish().unwrap_or_default();
    }
    thread_local! {
        // Setting up an encoder clears some 300 KiB of tables: each thread keeps one and resets
        // it for the next stream.
        static FAST: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), true));
    }
    FAST.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(c.total_in()).unwrap_or(data.len());
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            let rest = data.get(consumed..).unwrap_or_default();
            match c.compress_vec(rest, &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return out,
                Ok(_) => {}
                // Not reachable with a valid state; a fresh encoder does the same work.
                Err(_) => return deflate_fresh(data),
            }
        }
    })
}

/// [`deflate`]'s fast level with an encoder of its own.
fn deflate_fresh(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::fast(),
    );
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// The PDF objects of one subset of a font, at the font slot's fixed object numbers.
struct Embedded {
    chunk: Chunk,
}

/// Font-level values of the descriptor, in PDF glyph space (1/1000 em).
struct Descriptor {
    bbox: Rect,
    ascent: f32,
    descent: f32,
    cap_height: f32,
    italic_angle: f32,
}

/// Extended subsets, by their sorted extra (glyph, character) pairs.
type Variants = crate::kept::Kept<Vec<(u16, char)>, Arc<Embedded>>;

/// One embedded font: metrics for layout, the glyph lookup, and its PDF objects.
pub(crate) struct Font {
    face: ttf_parser::Face<'static>,
    program: &'static [u8],
    ps_name: &'static str,
    slot: i32,
    units_per_em: f32,
    /// Glyph id (0: none) and advance (font units) of U+0000..U+017F.
    cached: Box<[(u16, f32)]>,
    /// The glyph `?` stands in for a character the font lacks.
    question: u16,
    /// Whether a glyph id is in the base subset.
    in_base: Vec<bool>,
    base: Vec<(u16, char)>,
    base_embedded: Embedded,
    descriptor: Descriptor,
    /// Subsets with extra glyphs, by the sorted extra (glyph, character) pairs.
    variants: Variants,
}

/// At most this many extended subsets are kept per font (the cache is emptied when full).
const MAX_VARIANTS: usize = 64;

impl Font {
    fn load(program: &'static [u8], ps_name: &'static str, slot: i32) -> Option<Font> {
        let face = ttf_parser::Face::parse(program, 0).ok()?;
        let units_per_em = f32::from(face.units_per_em());
        let advance = |g: ttf_parser::GlyphId| face.glyph_hor_advance(g).map_or(0.0, f32::from);
        let mut cached = vec![(0u16, 0.0f32); CACHED_CHARS].into_boxed_slice();
        for (i, slot) in cached.iter_mut().enumerate() {
            if let Some(g) = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .and_then(|c| face.glyph_index(c))
            {
                *slot = (g.0, advance(g));
            }
        }
        let question = face.glyph_index('?')?.0;
        let mut in_base = vec![false; usize::from(face.number_of_glyphs())];
        let mut base: BTreeMap<u16, char> = BTreeMap::new();
        base.insert(0, '\u{fffd}');
        for c in base_repertoire() {
            if let Some(g) = face.glyph_index(c) {
                base.entry(g.0).or_insert(c);
            }
        }
        for g in base.keys() {
            if let Some(b) = in_base.get_mut(usize::from(*g)) {
                *b = true;
            }
        }
        let scale = 1000.0 / units_per_em;
        let bb = face.global_bounding_box();
        let descriptor = Descriptor {
            bbox: Rect::new(
                f32::from(bb.x_min) * scale,
                f32::from(bb.y_min) * scale,
                f32::from(bb.x_max) * scale,
                f32::from(bb.y_max) * scale,
            ),
            ascent: f32::from(face.ascender()) * scale,
            descent: f32::from(face.descender()) * scale,
            // OS/2 version 1 (DejaVu) has no cap height: the top of `H` is.
            cap_height: f32::from(
                face.capital_height()
                    .or_else(|| {
                        face.glyph_index('H')
                            .and_then(|g| face.glyph_bounding_box(g))
                            .map(|b| b.y_max)
                    })
                    .unwrap_or(face.ascender()),
            ) * scale,
            italic_angle: face.italic_angle(),
        };
        let base: Vec<(u16, char)> = base.into_iter().collect();
        let mut font = Font {
            face,
            program,
            ps_name,
            slot,
            units_per_em,
            cached,
            question,
            in_base,
            base_embedded: Embedded {
                chunk: Chunk::new(),
            },
            base: Vec::new(),
            descriptor,
            variants: Variants::new(MAX_VARIANTS),
        };
        font.base_embedded = font.embed(&base)?;
        font.base = base;
        Some(font)
    }

    /// The glyph of `c`, if the font has one.
    pub(crate) fn glyph(&self, c: char) -> Option<u16> {
        let g = match self.cached.get(c as usize) {
            Some((g, _)) => *g,
            None => self.face.glyph_index(c).map_or(0, |g| g.0),
        };
        (g != 0).then_some(g)
    }

    /// Whether the font can draw `c`.
    pub(crate) fn has(&self, c: char) -> bool {
        self.glyph(c).is_some()
    }

    fn advance_units(&self, c: char) -> f32 {
        match self.cached.get(c as usize) {
            Some((g, a)) if *g != 0 => *a,
            Some(_) => self.advance_of_glyph(self.question),
            None => self
                .face
                .glyph_index(c)
                .map_or(self.advance_of_glyph(self.question), |g| {
                    self.advance_of_glyph(g.0)
                }),
        }
    }

    fn advance_of_glyph(&self, g: u16) -> f32 {
        self.face
            .glyph_hor_advance(ttf_parser::GlyphId(g))
            .map_or(0.0, f32::from)
    }

    /// Width of `text` at `size` points (a character the font lacks counts as `?`).
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let units: f32 = text.chars().map(|c| self.advance_units(c)).sum();
        units * size / self.units_per_em
    }

    /// Width of one character at `size` points.
    pub(crate) fn char_width(&self, c: char, size: f32) -> f32 {
        self.advance_units(c) * size / self.units_per_em
    }

    fn first_ref(&self) -> i32 {
        FONTS_AT + OBJECTS_PER_FONT * self.slot
    }

    /// The resource name of the font in content streams.
    fn resource(&self) -> &'static [u8] {
        if self.slot == 0 {
            b"F0"
        } else {
            b"F1"
        }
    }

    /// Subsets the font to `glyphs` (sorted by glyph id, `.notdef` first) and writes its
    /// objects.
    fn embed(&self, glyphs: &[(u16, char)]) -> Option<Embedded> {
        let ids: Vec<u16> = glyphs.iter().map(|(g, _)| *g).collect();
        let remapper = subsetter::GlyphRemapper::new_from_glyphs_sorted(&ids);
        let subset = subsetter::subset(self.program, 0, &remapper).ok()?;
        let scale = 1000.0 / self.units_per_em;
        let r = self.first_ref();
        let (type0, cid, desc, file, to_unicode, cid_to_gid) = (
            Ref::new(r),
            Ref::new(r + 1),
            Ref::new(r + 2),
            Ref::new(r + 3),
            Ref::new(r + 4),
            Ref::new(r + 5),
        );
        // A subset's name starts with a six-letter tag naming the glyph set.
        let mut digest = Sha256::new();
        digest.update(self.ps_name.as_bytes());
        for g in &ids {
            digest.update(g.to_be_bytes());
        }
        let digest = digest.finalize();
        let tag: String = digest
            .iter()
            .take(6)
            .map(|b| char::from(b'A' + b % 26))
            .collect();
        let name = format!("{tag}+{}", self.ps_name);
        let system = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        let mut chunk = Chunk::new();
        chunk
            .type0_font(type0)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(to_unicode);
        {
            let mut f = chunk.cid_font(cid);
            f.subtype(CidFontType::Type2)
                .base_font(Name(name.as_bytes()))
                .system_info(system)
                .font_descriptor(desc)
                .default_width(0.0)
                .cid_to_gid_map_stream(cid_to_gid);
            let mut w = f.widths();
            for (g, _) in glyphs {
                w.consecutive(*g, [self.advance_of_glyph(*g) * scale]);
            }
        }
        let d = &self.descriptor;
        chunk
            .font_descriptor(desc)
            .name(Name(name.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(d.bbox)
            .italic_angle(d.italic_angle)
            .ascent(d.ascent)
            .descent(d.descent)
            .cap_height(d.cap_height)
            .stem_v(80.0)
            .font_file2(file);
        let packed = deflate(&subset, true);
        chunk
            .stream(file, &packed)
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), i32::try_from(subset.len()).ok()?);
        let mut cmap = UnicodeCmap::new(Name(b"Custom"), system);
        for (g, c) in glyphs.iter().skip(1) {
            cmap.pair(*g, *c);
        }
        let cmap = deflate(&cmap.finish(), true);
        {
            let mut c = chunk.cmap(to_unicode, &cmap);
            c.name(Name(b"Custom")).system_info(system);
            c.filter(Filter::FlateDecode);
        }
        let max = ids.last().copied().unwrap_or(0);
        let mut map = vec![0u8; 2 * (usize::from(max) + 1)];
        for g in &ids {
            let new = remapper.get(*g)?;
            let at = 2 * usize::from(*g);
            map.get_mut(at..at + 2)?.copy_from_slice(&new.to_be_bytes());
        }
        let map = deflate(&map, true);
        chunk.stream(cid_to_gid, &map).filter(Filter::FlateDecode);
        Some(Embedded { chunk })
    }

    /// The subset for a document whose text needed `extra` glyphs beyond the base.
    fn embedded_with(&self, extra: &BTreeMap<u16, char>) -> Result<Arc<Embedded>, DocumentError> {
        let key: Vec<(u16, char)> = extra.iter().map(|(g, c)| (*g, *c)).collect();
        if let Some(e) = self.variants.get(&key) {
            return Ok(e);
        }
        let mut glyphs: BTreeMap<u16, char> = self.base.iter().copied().collect();
        for (g, c) in &key {
            glyphs.entry(*g).or_insert(*c);
        }
        let glyphs: Vec<(u16, char)> = glyphs.into_iter().collect();
        let embedded = Arc::new(self.embed(&glyphs).ok_or(DocumentError::Font)?);
        self.variants.insert(key, Arc::clone(&embedded));
        Ok(embedded)
    }
}

/// The objects a document starts with, after the header: the ICC profile, then each font's
/// subset (the base one, or the extended one of `variants`).
fn write_head(pdf: &mut Pdf, fonts: &Fonts, variants: &[Option<Arc<Embedded>>]) {
    pdf.icc_profile(ICC, SRGB_ICC)
        .n(3)
        .range([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    for (i, font) in [&fonts.regular, &fonts.bold].into_iter().enumerate() {
        match variants.get(i).and_then(Option::as_ref) {
            Some(v) => pdf.extend(&v.chunk),
            None => pdf.extend(&font.base_embedded.chunk),
        }
    }
}

/// The first bytes of every document of the base repertoire (header, ICC profile, both base
/// subsets), and the SHA-256 state after them: the seal hashes only what follows.
pub(crate) struct SharedHead {
    /// The bytes.
    pub(crate) bytes: Vec<u8>,
    /// SHA-256 after `bytes`.
    pub(crate) sha256: Sha256,
}

/// The [`SharedHead`] (made once).
pub(crate) fn shared_head() -> Option<&'static SharedHead> {
    static HEAD: OnceLock<Option<SharedHead>> = OnceLock::new();
    HEAD.get_or_init(|| {
        let fonts = fonts()?;
        let mut pdf = Pdf::new();
        write_head(&mut pdf, fonts, &[None, None]);
        let bytes = pdf.as_bytes().to_vec();
        let mut sha256 = Sha256::new();
        sha256.update(&bytes);
        Some(SharedHead { bytes, sha256 })
    })
    .as_ref()
}

/// The runs of bytes that every document of the base repertoire contains as they are: the
/// objects of both fonts' base subsets (the store keeps them once, see `store::parts`).
pub(crate) fn shared_runs() -> Vec<&'static [u8]> {
    fonts().map_or_else(Vec::new, |f| {
        vec![
            f.regular.base_embedded.chunk.as_bytes(),
            f.bold.base_embedded.chunk.as_bytes(),
        ]
    })
}

/// The embedded fonts, loaded (and their base subsets made) once.
pub(crate) struct Fonts {
    pub(crate) regular: Font,
    pub(crate) bold: Font,
}

pub(crate) fn fonts() -> Option<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: Font::load(REGULAR_BYTES, "DejaVuSans", 0)?,
                bold: Font::load(BOLD_BYTES, "DejaVuSans-Bold", 1)?,
            })
        })
        .as_ref()
}

/// An RGB colour, each component 0–1.
#[derive(Clone, Copy, PartialEq)]
pub(crate) struct Rgb(pub f32, pub f32, pub f32);

/// A content stream, written directly: the few operators these documents use, numbers to at
/// most four decimals, and text as literal strings of raw two-byte codes (about half the bytes
/// of octal escapes or hex, so less to compress, hash and store). Consecutive lines of text
/// share one text object.
pub(crate) struct Ops {
    buf: Vec<u8>,
    in_text: bool,
}

impl Ops {
    fn with_capacity(n: usize) -> Ops {
        Ops {
            buf: Vec::with_capacity(n),
            in_text: false,
        }
    }

    /// Writes `v` rounded to four decimals, without trailing zeros. Layout never makes a value
    /// outside ±32767 (the page is 842 points tall) nor a non-finite one: such a value is
    /// clamped to that range, and written as 0 if not finite.
    fn num(&mut self, v: f32) {
        let scaled = if v.is_finite() {
            (f64::from(v.clamp(-32_767.0, 32_767.0)) * 10_000.0).round()
        } else {
            0.0
        };
        // Page coordinates are far inside i64; `as` saturates anyway.
        #[allow(clippy::cast_possible_truncation)]
        let scaled = scaled as i64;
        if scaled < 0 {
            self.buf.push(b'-');
        }
        let magnitude = scaled.unsigned_abs();
        self.int(magnitude / 10_000);
        let mut frac = magnitude % 10_000;
        if frac != 0 {
            let mut digits = 4;
            while frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
            self.buf.push(b'.');
            let mut out = [b'0'; 4];
            for d in out[..digits].iter_mut().rev() {
                // A digit: `frac % 10` < 10.
                *d = b'0' + u8::try_from(frac % 10).unwrap_or(0);
                frac /= 10;
            }
            self.buf.extend_from_slice(&out[..digits]);
        }
    }

    fn int(&mut self, mut v: u64) {
        let mut out = [0u8; 20];
        let mut at = out.len();
        loop {
            at -= 1;
            out[at] = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&out[at..]);
    }

    /// Numbers then an operator: `1 2 3 op\n`.
    fn op(&mut self, nums: &[f32], op: &[u8]) {
        for n in nums {
            self.num(*n);
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(op);
        self.buf.push(b'\n');
    }

    fn end_text(&mut self) {
        if self.in_text {
            self.buf.extend_from_slice(b"ET\n");
            self.in_text = false;
        }
    }

    fn begin_text(&mut self) {
        if !self.in_text {
            self.buf.extend_from_slice(b"BT\n");
            self.in_text = true;
        }
    }

    /// `/name size Tf`.
    fn font(&mut self, name: &[u8], size: f32) {
        self.buf.push(b'/');
        self.buf.extend_from_slice(name);
        self.buf.push(b' ');
        self.op(&[size], b"Tf");
    }

    /// `(codes) Tj`: a literal string; only the delimiters, the backslash and line ends (which
    /// a reader would normalise) are escaped.
    fn show(&mut self, codes: &[u8]) {
        self.buf.push(b'(');
        for &b in codes {
            match b {
                b'(' | b')' | b'\\' => {
                    self.buf.push(b'\\');
                    self.buf.push(b);
                }
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                _ => self.buf.push(b),
            }
        }
        self.buf.extend_from_slice(b") Tj\n");
    }

    fn finish(mut self) -> Vec<u8> {
        self.end_text();
        self.buf
    }
}

/// One page being drawn. Coordinates are points from the top-left corner.
pub(crate) struct Page {
    content: Ops,
    /// Glyphs outside the base subsets, per font slot.
    extra: [BTreeMap<u16, char>; 2],
    /// The font and size last set, to skip repeating `Tf`.
    font: Option<(i32, f32)>,
    /// Glyph codes of the line being drawn (reused).
    codes: Vec<u8>,
}

impl Page {
    fn new() -> Page {
        let mut content = Ops::with_capacity(12 * 1024);
        content.op(&[0.0, 0.0, 0.0], b"rg");
        Page {
            content,
            extra: [BTreeMap::new(), BTreeMap::new()],
            font: None,
            codes: Vec::with_capacity(256),
        }
    }

    /// Draws one line of text with its baseline at (`x`, `y`). A character the font lacks is
    /// drawn as `?`.
    pub(crate) fn text(&mut self, font: &Font, x: f32, y: f32, size: f32, text: &str) {
        self.codes.clear();
        let extra = &mut self.extra[usize::from(font.slot != 0)];
        for c in text.chars() {
            let (g, c) = match font.glyph(c) {
                Some(g) => (g, c),
                None => (font.question, '?'),
            };
            if !font.in_base.get(usize::from(g)).copied().unwrap_or(false) {
                extra.entry(g).or_insert(c);
            }
            self.codes.extend_from_slice(&g.to_be_bytes());
        }
        self.content.begin_text();
        if self.font != Some((font.slot, size)) {
            self.content.font(font.resource(), size);
            self.font = Some((font.slot, size));
        }
        self.content
            .op(&[1.0, 0.0, 0.0, 1.0, x, PAGE_HEIGHT - y], b"Tm");
        self.content.show(&self.codes);
    }

    /// A straight line from (`x1`, `y1`) to (`x2`, `y2`).
    pub(crate) fn line(&mut self, from: (f32, f32), to: (f32, f32), width: f32, color: Rgb) {
        let c = &mut self.content;
        c.end_text();
        c.op(&[], b"q");
        c.op(&[color.0, color.1, color.2], b"RG");
        c.op(&[width], b"w");
        c.op(&[from.0, PAGE_HEIGHT - from.1], b"m");
        c.op(&[to.0, PAGE_HEIGHT - to.1], b"l");
        c.op(&[], b"S");
        c.op(&[], b"Q");
    }

    /// Black rectangles on a grid of `unit`-point cells whose top-left corner is at (`x`, `y`):
    /// each (column, row, width, height) in cells, filled as one path.
    pub(crate) fn fill_cells(
        &mut self,
        (x, y): (f32, f32),
        unit: f32,
        cells: impl IntoIterator<Item = (u16, u16, u16, u16)>,
    ) {
        // Cell coordinates are small integers: scaling and flipping once keeps the numbers
        // short.
        let c = &mut self.content;
        c.end_text();
        c.op(&[], b"q");
        c.op(&[unit, 0.0, 0.0, -unit, x, PAGE_HEIGHT - y], b"cm");
        let mut any = false;
        for (cx, cy, w, h) in cells {
            for v in [cx, cy, w, h] {
                c.int(u64::from(v));
                c.buf.push(b' ');
            }
            c.buf.extend_from_slice(b"re\n");
            any = true;
        }
        if any {
            c.op(&[], b"f");
        }
        c.op(&[], b"Q");
    }
}

/// A PDF/A-2b document being written.
pub(crate) struct Document {
    title: String,
    author: String,
    at: OffsetDateTime,
    pages: Vec<Page>,
}

fn pdf_date(t: OffsetDateTime) -> Date {
    let t = t.to_offset(time::UtcOffset::UTC);
    Date::new(u16::try_from(t.year()).unwrap_or(2000))
        .month(u8::from(t.month()))
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

fn xmp_date(t: OffsetDateTime) -> xmp_writer::DateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    xmp_writer::DateTime::new(
        u16::try_from(t.year()).unwrap_or(2000),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        xmp_writer::Timezone::Utc,
    )
}

impl Document {
    /// A document with this title and author, made at `at` (Info and XMP).
    pub(crate) fn new(title: &str, author: &str, at: OffsetDateTime) -> Document {
        // Control characters would make the XMP ill-formed XML (or differ from the Info
        // dictionary once XML normalises line ends).
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        Document {
            title: clean(title),
            author: clean(author),
            at,
            pages: Vec::new(),
        }
    }

    /// Starts a new A4 page and returns it.
    pub(crate) fn page(&mut self) -> &mut Page {
        self.pages.push(Page::new());
        let at = self.pages.len() - 1;
        &mut self.pages[at]
    }

    /// The PDF bytes.
    pub(crate) fn finish(self, fonts: &Fonts) -> Result<Vec<u8>, DocumentError> {
        if self.pages.is_empty() {
            return Err(DocumentError::Export("a document needs a page".into()));
        }
        let mut extra: [BTreeMap<u16, char>; 2] = [BTreeMap::new(), BTreeMap::new()];
        let mut contents = Vec::with_capacity(self.pages.len());
        for page in self.pages {
            for (all, mine) in extra.iter_mut().zip(page.extra) {
                for (g, c) in mine {
                    all.entry(g).or_insert(c);
                }
            }
            contents.push(deflate(&page.content.finish(), false));
        }
        let mut variants = Vec::new();
        for (font, extra) in [&fonts.regular, &fonts.bold].into_iter().zip(&extra) {
            variants.push(if extra.is_empty() {
                None
            } else {
                Some(font.embedded_with(extra)?)
            });
        }

        let size: usize = contents.iter().map(Vec::len).sum::<usize>()
            + fonts.regular.base_embedded.chunk.len()
            + fonts.bold.base_embedded.chunk.len()
            + 8 * 1024
            + super::seal::UPDATE_ROOM;
        let mut pdf = Pdf::with_capacity(size);
        // First what documents share: with the base subsets, every document starts with the
        // same bytes (see `shared_head`).
        write_head(&mut pdf, fonts, &variants);
        // The file id: a digest of what makes this document itself.
        let mut id = Sha256::new();
        id.update(self.title.as_bytes());
        id.update(self.author.as_bytes());
        id.update(self.at.unix_timestamp().to_be_bytes());
        for c in &contents {
            id.update(c);
        }
        let id = id.finalize()[..16].to_vec();
        pdf.set_file_id((id.clone(), id));

        let page_refs: Vec<Ref> = (0..contents.len())
            .map(|i| Ref::new(PAGES_AT + 2 * i32::try_from(i).unwrap_or(0)))
            .collect();
        {
            let mut catalog = pdf.catalog(CATALOG);
            catalog
                .pages(PAGE_TREE)
                .metadata(METADATA)
                .lang(TextStr("it-IT"));
            catalog
                .output_intents()
                .push()
                .subtype(OutputIntentSubtype::PDFA)
                .output_condition_identifier(TextStr("sRGB IEC61966-2.1"))
                .info(TextStr("sRGB IEC61966-2.1"))
                .dest_output_profile(ICC);
        }
        pdf.pages(PAGE_TREE)
            .kids(page_refs.iter().copied())
            .count(i32::try_from(page_refs.len()).unwrap_or(0));
        let created = pdf_date(self.at);
        pdf.document_info(INFO)
            .title(TextStr(&self.title))
            .author(TextStr(&self.author))
            .creator(TextStr(PRODUCER))
            .producer(TextStr(PRODUCER))
            .creation_date(created)
            .modified_date(created);
        let mut xmp = xmp_writer::XmpWriter::new();
        xmp.title([(None, self.title.as_str())])
            .creator([self.author.as_str()])
            .language([xmp_writer::LangId("it-IT")])
            .format("application/pdf")
            .creator_tool(PRODUCER)
            .producer(PRODUCER)
            .create_date(xmp_date(self.at))
            .modify_date(xmp_date(self.at))
            .metadata_date(xmp_date(self.at))
            .pdfa_part(2)
            .pdfa_conformance("B");
        let xmp = xmp.finish(None);
        pdf.metadata(METADATA, xmp.as_bytes());
        for (page_ref, content) in page_refs.iter().zip(&contents) {
            let content_ref = Ref::new(page_ref.get() + 1);
            let mut page = pdf.page(*page_ref);
            page.parent(PAGE_TREE)
                .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .contents(content_ref);
            let mut resources = page.resources();
            let mut f = resources.fonts();
            f.pair(
                Name(fonts.regular.resource()),
                Ref::new(fonts.regular.first_ref()),
            );
            f.pair(
                Name(fonts.bold.resource()),
                Ref::new(fonts.bold.first_ref()),
            );
            f.finish();
            resources.finish();
            page.finish();
            pdf.stream(content_ref, content).filter(Filter::FlateDecode);
        }
        Ok(pdf.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(data: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    proptest::proptest! {
        /// The reused encoder gives, stream after stream, streams that inflate to their input,
        /// each the same whatever came before it.
        #[test]
        fn the_reused_encoder_starts_afresh_each_time(
            streams in proptest::collection::vec(proptest::collection::vec(0u8..8, 0..20_000), 1..5),
        ) {
            let first: Vec<Vec<u8>> = streams.iter().map(|d| deflate(d, false)).collect();
            for (data, packed) in streams.iter().zip(&first).rev() {
                proptest::prop_assert_eq!(&inflate(packed), data);
                proptest::prop_assert_eq!(&deflate(data, false), packed);
                proptest::prop_assert_eq!(&inflate(&deflate_fresh(data)), data);
            }
        }

        /// What the content writer writes is read back as written: each line of codes, in
        /// any bytes, is one string of exactly those bytes, and each number is the value to
        /// four decimals, read by a PDF parser.
        #[test]
        fn the_content_writer_reads_back_as_written(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 1..8),
            numbers in proptest::collection::vec(-32_767.0f32..32_767.0, 1..8),
        ) {
            let mut ops = Ops::with_capacity(0);
            for (codes, n) in lines.iter().zip(numbers.iter().cycle()) {
                ops.begin_text();
                ops.font(b"F0", 10.0);
                ops.op(&[1.0, 0.0, 0.0, 1.0, *n, -*n], b"Tm");
                ops.show(codes);
                ops.end_text();
                ops.op(&[*n], b"w");
            }
            let decoded = lopdf::content::Content::decode(&ops.finish()).unwrap();
            let shown: Vec<Vec<u8>> = decoded
                .operations
                .iter()
                .filter(|o| o.operator == "Tj")
                .map(|o| o.operands[0].as_str().unwrap().to_vec())
                .collect();
            proptest::prop_assert_eq!(&shown, &lines);
            let widths: Vec<f32> = decoded
                .operations
                .iter()
                .filter(|o| o.operator == "w")
                .map(|o| o.operands[0].as_float().unwrap())
                .collect();
            for (w, n) in widths.iter().zip(numbers.iter().cycle()) {
                proptest::prop_assert!((f64::from(*w) - f64::from(*n)).abs() <= 0.0001 + f64::from(n.abs()) * 1e-6, "{} for {}", w, n);
            }
        }
    }

    #[test]
    fn numbers_are_short_and_exact_to_four_decimals() {
        let mut ops = Ops::with_capacity(0);
        for v in [
            0.0,
            1.0,
            -1.0,
            108.04236,
            595.28,
            -2.0754716,
            0.00004,
            -0.00004,
            16.5,
            f32::NAN,
            3.0e9,
            -f32::MAX,
            f32::INFINITY,
        ] {
            ops.num(v);
            ops.buf.push(b' ');
        }
        assert_eq!(
            String::from_utf8(ops.finish()).unwrap(),
            "0 1 -1 108.0424 595.28 -2.0755 0 0 16.5 0 32767 -32767 0 "
        );
    }
}
