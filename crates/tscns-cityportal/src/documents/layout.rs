//! Page layout over the PDF writer: wrapped paragraphs, label/value rows, rules, a QR code.
//! Coordinates are PDF points from the top-left corner.

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
pub(crate) fn printable(face: &Font, s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if face.has(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
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
