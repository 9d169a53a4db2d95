//! A small A4 page writer over krilla: wrapped paragraphs, label/value rows, rules, a QR code.
//! Coordinates are PDF points from the top-left corner (krilla's convention).

use std::sync::{Arc, OnceLock};

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};

/// A4 in points.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
pub(crate) const PAGE_HEIGHT: f32 = 841.89;
pub(crate) const MARGIN: f32 = 56.0;

/// DejaVu Sans (Bitstream Vera license, see `assets/fonts/LICENSE-DejaVu.txt`).
static REGULAR_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Characters whose advance widths are looked up once, at load (Latin-1 and Latin Extended-A:
/// every letter of an Italian registry record); others are measured through the font's cmap.
const CACHED_CHARS: usize = 0x180;

/// A font for drawing (krilla) and its metrics for measuring (ttf-parser).
pub(crate) struct Face {
    pub(crate) font: Font,
    metrics: ttf_parser::Face<'static>,
    /// Advance widths in font units of U+0000..U+017F (600 for a character the font lacks).
    advances: Box<[f32; CACHED_CHARS]>,
    units_per_em: f32,
}

impl Face {
    fn load(bytes: &'static [u8]) -> Option<Face> {
        let data: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(bytes);
        let metrics = ttf_parser::Face::parse(bytes, 0).ok()?;
        let mut advances = Box::new([600.0f32; CACHED_CHARS]);
        for (i, slot) in advances.iter_mut().enumerate() {
            if let Some(c) = u32::try_from(i).ok().and_then(char::from_u32) {
                *slot = Self::advance_of(&metrics, c);
            }
        }
        Some(Face {
            font: Font::new(data.into(), 0)?,
            units_per_em: f32::from(metrics.units_per_em()),
            metrics,
            advances,
        })
    }

    fn advance_of(metrics: &ttf_parser::Face<'_>, c: char) -> f32 {
        metrics
            .glyph_index(c)
            .and_then(|g| metrics.glyph_hor_advance(g))
            .map_or(600.0, f32::from)
    }

    /// Width of `text` at `size` points.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let units: f32 = text
            .chars()
            .map(|c| {
                self.advances
                    .get(c as usize)
                    .copied()
                    .unwrap_or_else(|| Self::advance_of(&self.metrics, c))
            })
            .sum();
        units * size / self.units_per_em
    }
}

/// The embedded fonts, loaded once.
pub(crate) struct Fonts {
    pub(crate) regular: Face,
    pub(crate) bold: Face,
}

pub(crate) fn fonts() -> Option<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: Face::load(REGULAR_BYTES)?,
                bold: Face::load(BOLD_BYTES)?,
            })
        })
        .as_ref()
}

/// Text alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
}

/// Keeps only what the embedded font can draw (no control characters); the rest becomes `?`.
pub(crate) fn printable(face: &Face, s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if face.metrics.glyph_index(c).is_some() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Breaks `text` into lines no wider than `width` at `size` (long words are cut).
pub(crate) fn wrap(face: &Face, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if face.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // A word longer than the line: cut it.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if face.width(&piece, size) > width && piece.chars().count() > 1 {
                piece.pop();
                lines.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        line = piece;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// One piece of a document body, measured before it is drawn (so pages can break between
/// blocks).
pub(crate) enum Block {
    /// A wrapped paragraph.
    Para {
        text: String,
        size: f32,
        bold: bool,
        align: Align,
    },
    /// "Label: value" at 10.5 points.
    Row(&'static str, String),
    /// Vertical space.
    Space(f32),
}

const ROW_SIZE: f32 = 10.5;
const LABEL_WIDTH: f32 = 150.0;

impl Block {
    fn height(&self, fonts: &Fonts) -> f32 {
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        match self {
            Block::Para {
                text, size, bold, ..
            } => {
                let face = if *bold { &fonts.bold } else { &fonts.regular };
                wrap(face, &printable(face, text), *size, width).len() as f32 * size * 1.3
            }
            Block::Row(_, value) => {
                let face = &fonts.bold;
                let lines = wrap(face, &printable(face, value), ROW_SIZE, width - LABEL_WIDTH)
                    .len()
                    .max(1);
                lines as f32 * ROW_SIZE * 1.3
            }
            Block::Space(h) => *h,
        }
    }
}

/// Splits `blocks` into pages of at most `room` points each, breaking only between blocks (a
/// block taller than a page gets a page of its own).
pub(crate) fn paginate(fonts: &Fonts, blocks: Vec<Block>, room: f32) -> Vec<Vec<Block>> {
    let mut pages = vec![Vec::new()];
    let mut used = 0.0;
    for b in blocks {
        let h = b.height(fonts);
        if used + h > room && used > 0.0 {
            pages.push(Vec::new());
            used = 0.0;
            if matches!(b, Block::Space(_)) {
                continue;
            }
        }
        used += h;
        if let Some(page) = pages.last_mut() {
            page.push(b);
        }
    }
    pages
}

/// A cursor on one page.
pub(crate) struct Writer<'a, 'b> {
    pub(crate) surface: &'a mut Surface<'b>,
    pub(crate) fonts: &'static Fonts,
    pub(crate) y: f32,
}

impl Writer<'_, '_> {
    /// Usable width.
    pub(crate) fn width(&self) -> f32 {
        PAGE_WIDTH - 2.0 * MARGIN
    }

    fn face(&self, bold: bool) -> &'static Face {
        if bold {
            &self.fonts.bold
        } else {
            &self.fonts.regular
        }
    }

    /// Draws one line at the cursor's baseline, from `x`.
    pub(crate) fn text_at(&mut self, x: f32, y: f32, text: &str, size: f32, bold: bool) {
        let face = self.face(bold);
        let text = printable(face, text);
        self.surface.set_fill(Some(Fill::default()));
        self.surface.draw_text(
            Point::from_xy(x, y),
            face.font.clone(),
            size,
            &text,
            false,
            TextDirection::Auto,
        );
    }

    /// A wrapped paragraph; moves the cursor below it.
    pub(crate) fn paragraph(&mut self, text: &str, size: f32, bold: bool, align: Align) {
        self.paragraph_in(MARGIN, self.width(), text, size, bold, align);
    }

    /// A wrapped paragraph in a column.
    pub(crate) fn paragraph_in(
        &mut self,
        x: f32,
        width: f32,
        text: &str,
        size: f32,
        bold: bool,
        align: Align,
    ) {
        let face = self.face(bold);
        let text = printable(face, text);
        for line in wrap(face, &text, size, width) {
            self.y += size * 1.3;
            let lx = match align {
                Align::Left => x,
                Align::Center => x + (width - face.width(&line, size)) / 2.0,
            };
            let y = self.y;
            self.text_at(lx, y, &line, size, bold);
        }
    }

    /// Draws one block.
    pub(crate) fn draw(&mut self, b: &Block) {
        match b {
            Block::Para {
                text,
                size,
                bold,
                align,
            } => self.paragraph(text, *size, *bold, *align),
            Block::Row(label, value) => self.row(label, value, ROW_SIZE),
            Block::Space(h) => self.space(*h),
        }
    }

    /// "Label: value", the value wrapped in its column.
    pub(crate) fn row(&mut self, label: &str, value: &str, size: f32) {
        let label_width = LABEL_WIDTH;
        let top = self.y;
        self.y += size * 1.3;
        let y = self.y;
        self.text_at(MARGIN, y, label, size, false);
        self.y = top;
        self.paragraph_in(
            MARGIN + label_width,
            self.width() - label_width,
            value,
            size,
            true,
            Align::Left,
        );
    }

    /// Vertical space.
    pub(crate) fn space(&mut self, points: f32) {
        self.y += points;
    }

    /// A horizontal rule across the text width.
    pub(crate) fn rule(&mut self) {
        self.y += 6.0;
        let mut pb = PathBuilder::new();
        pb.move_to(MARGIN, self.y);
        pb.line_to(PAGE_WIDTH - MARGIN, self.y);
        if let Some(path) = pb.finish() {
            self.surface.set_fill(None);
            self.surface.set_stroke(Some(Stroke {
                paint: rgb::Color::new(0x1f, 0x3a, 0x68).into(),
                width: 0.8,
                ..Stroke::default()
            }));
            self.surface.draw_path(&path);
            self.surface.set_stroke(None);
        }
        self.y += 6.0;
    }

    /// A QR code of `data`, `side` points wide, top-left at (`x`, `y`).
    pub(crate) fn qr(&mut self, x: f32, y: f32, side: f32, data: &str) -> bool {
        let Ok(code) = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M) else {
            return false;
        };
        let n = code.width();
        // 4 modules of quiet zone on each side.
        let module = side / (n as f32 + 8.0);
        let colors = code.to_colors();
        // One rectangle per horizontal run of dark modules: the same picture as one square per
        // module, with fewer path operators to write, compress, hash and store.
        let mut pb = PathBuilder::new();
        for (cy, row) in colors.chunks(n.max(1)).enumerate() {
            let mut cx = 0;
            for run in row.chunk_by(|a, b| a == b) {
                if run.first() == Some(&qrcode::Color::Dark) {
                    if let Some(r) = Rect::from_xywh(
                        x + (cx as f32 + 4.0) * module,
                        y + (cy as f32 + 4.0) * module,
                        run.len() as f32 * module,
                        module,
                    ) {
                        pb.push_rect(r);
                    }
                }
                cx += run.len();
            }
        }
        if let Some(path) = pb.finish() {
            self.surface.set_stroke(None);
            self.surface.set_fill(Some(Fill::default()));
            self.surface.draw_path(&path);
        }
        true
    }
}
