//! Page layout over the PDF writer: wrapped paragraphs, label/value rows, rules, a QR code.
//! Coordinates are PDF points from the top-left corner.

use std::borrow::Cow;

use super::pdf::{Font, Fonts, Page, Rgb, PAGE_WIDTH};
use super::qr;

pub(crate) use super::pdf::PAGE_HEIGHT;

/// Left and right margin, in points.
pub(crate) const MARGIN: f32 = 56.0;

/// Text alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
}

/// Keeps only what the embedded font can draw (no control characters); the rest becomes `?`.
/// Borrows `s` when it is all drawable, as nearly every line is.
pub(crate) fn printable<'s>(face: &Font, s: &'s str) -> Cow<'s, str> {
    let shown = |c: char| {
        if c.is_control() {
            ' '
        } else if face.has(c) {
            c
        } else {
            '?'
        }
    };
    if s.chars().all(|c| shown(c) == c) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().map(shown).collect())
    }
}

/// Breaks `text` into lines no wider than `width` at `size` (long words are cut).
pub(crate) fn wrap(face: &Font, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0.0;
    let space = face.width(" ", size);
    for word in text.split_whitespace() {
        let w = face.width(word, size);
        if line.is_empty() && w <= width {
            line.push_str(word);
            used = w;
            continue;
        }
        if !line.is_empty() && used + space + w <= width {
            line.push(' ');
            line.push_str(word);
            used += space + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // A word longer than the line: cut it.
        let mut piece = String::new();
        let mut piece_width = 0.0;
        for c in word.chars() {
            let cw = face.char_width(c, size);
            if piece_width + cw > width && !piece.is_empty() {
                lines.push(std::mem::take(&mut piece));
                piece_width = 0.0;
            }
            piece.push(c);
            piece_width += cw;
        }
        line = piece;
        used = piece_width;
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
    /// The lines the block wraps into (none for space), and its height.
    fn measure(&self, fonts: &Fonts) -> (Vec<String>, f32) {
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        match self {
            Block::Para {
                text, size, bold, ..
            } => {
                let face = if *bold { &fonts.bold } else { &fonts.regular };
                let lines = wrap(face, &printable(face, text), *size, width);
                let h = lines.len() as f32 * size * 1.3;
                (lines, h)
            }
            Block::Row(_, value) => {
                let face = &fonts.bold;
                let lines = wrap(face, &printable(face, value), ROW_SIZE, width - LABEL_WIDTH);
                let h = lines.len().max(1) as f32 * ROW_SIZE * 1.3;
                (lines, h)
            }
            Block::Space(h) => (Vec::new(), *h),
        }
    }
}

/// A block and the lines it was measured to wrap into (wrapped once, for its height and for
/// drawing).
pub(crate) struct Measured {
    block: Block,
    lines: Vec<String>,
}

/// Splits `blocks` into pages of at most `room` points each, breaking only between blocks (a
/// block taller than a page gets a page of its own).
pub(crate) fn paginate(fonts: &Fonts, blocks: Vec<Block>, room: f32) -> Vec<Vec<Measured>> {
    let mut pages = vec![Vec::new()];
    let mut used = 0.0;
    for block in blocks {
        let (lines, h) = block.measure(fonts);
        if used + h > room && used > 0.0 {
            pages.push(Vec::new());
            used = 0.0;
            if matches!(block, Block::Space(_)) {
                continue;
            }
        }
        used += h;
        if let Some(page) = pages.last_mut() {
            page.push(Measured { block, lines });
        }
    }
    pages
}

/// A cursor on one page.
pub(crate) struct Writer<'a> {
    pub(crate) page: &'a mut Page,
    pub(crate) fonts: &'static Fonts,
    pub(crate) y: f32,
}

impl Writer<'_> {
    /// Usable width.
    pub(crate) fn width(&self) -> f32 {
        PAGE_WIDTH - 2.0 * MARGIN
    }

    fn face(&self, bold: bool) -> &'static Font {
        if bold {
            &self.fonts.bold
        } else {
            &self.fonts.regular
        }
    }

    /// Draws one line with its baseline at (`x`, `y`).
    pub(crate) fn text_at(&mut self, x: f32, y: f32, text: &str, size: f32, bold: bool) {
        let face = self.face(bold);
        let text = printable(face, text);
        self.page.text(face, x, y, size, &text);
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
        let lines = wrap(face, &printable(face, text), size, width);
        self.lines_in(x, width, &lines, size, bold, align);
    }

    /// Lines already wrapped to a column; moves the cursor below them.
    fn lines_in(
        &mut self,
        x: f32,
        width: f32,
        lines: &[String],
        size: f32,
        bold: bool,
        align: Align,
    ) {
        let face = self.face(bold);
        for line in lines {
            self.y += size * 1.3;
            let lx = match align {
                Align::Left => x,
                Align::Center => x + (width - face.width(line, size)) / 2.0,
            };
            self.page.text(face, lx, self.y, size, line);
        }
    }

    /// Draws one measured block.
    pub(crate) fn draw(&mut self, m: &Measured) {
        match &m.block {
            Block::Para {
                size, bold, align, ..
            } => self.lines_in(MARGIN, self.width(), &m.lines, *size, *bold, *align),
            Block::Row(label, _) => {
                let top = self.y;
                self.y += ROW_SIZE * 1.3;
                let y = self.y;
                self.text_at(MARGIN, y, label, ROW_SIZE, false);
                self.y = top;
                self.lines_in(
                    MARGIN + LABEL_WIDTH,
                    self.width() - LABEL_WIDTH,
                    &m.lines,
                    ROW_SIZE,
                    true,
                    Align::Left,
                );
                if m.lines.is_empty() {
                    self.y += ROW_SIZE * 1.3;
                }
            }
            Block::Space(h) => self.space(*h),
        }
    }

    /// Vertical space.
    pub(crate) fn space(&mut self, points: f32) {
        self.y += points;
    }

    /// A horizontal rule across the text width.
    pub(crate) fn rule(&mut self) {
        self.y += 6.0;
        self.page.line(
            (MARGIN, self.y),
            (PAGE_WIDTH - MARGIN, self.y),
            0.8,
            Rgb(
                f32::from(0x1fu8) / 255.0,
                f32::from(0x3au8) / 255.0,
                f32::from(0x68u8) / 255.0,
            ),
        );
        self.y += 6.0;
    }

    /// A QR code of `data`, `side` points wide, top-left at (`x`, `y`).
    pub(crate) fn qr(&mut self, x: f32, y: f32, side: f32, data: &str) -> bool {
        let Some(code) = qr::encode(data.as_bytes()) else {
            return false;
        };
        let n = code.width;
        // 4 modules of quiet zone on each side.
        let module = side / (n as f32 + 8.0);
        // One rectangle per horizontal run of dark modules: the same picture as one square per
        // module, with fewer path operators to write, compress, hash and store.
        let mut cells = Vec::new();
        for (cy, row) in code.dark.chunks(n.max(1)).enumerate() {
            let mut cx = 0;
            for run in row.chunk_by(|a, b| a == b) {
                if run.first() == Some(&true) {
                    // Offsets include the quiet zone; a symbol is at most 177 modules wide.
                    if let (Ok(col), Ok(line), Ok(len)) = (
                        u16::try_from(cx + 4),
                        u16::try_from(cy + 4),
                        u16::try_from(run.len()),
                    ) {
                        cells.push((col, line, len, 1));
                    }
                }
                cx += run.len();
            }
        }
        self.page.fill_cells((x, y), module, cells);
        true
    }
}
