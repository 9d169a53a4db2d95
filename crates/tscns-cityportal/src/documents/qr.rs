//! The QR code of a verification URL: the `qrcode` crate's encoding, error correction and
//! placement, with the mask chosen here by the penalty rules of ISO/IEC 18004 (§7.8.3), scored
//! on a plain module grid (the crate's own scoring costs more than the rest of a certificate).

use std::sync::OnceLock;

use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{EcLevel, Version};

/// A QR code: `width` × `width` modules, row by row, `true` for dark.
pub(crate) struct Qr {
    pub(crate) width: usize,
    pub(crate) dark: Vec<bool>,
}

const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// Encodes `data` at error correction level M in the smallest version that holds it, with the
/// mask of lowest penalty. `None` when it does not fit a QR code.
pub(crate) fn encode(data: &[u8]) -> Option<Qr> {
    let (canvas, width, version) = unmasked(data)?;
    if width > FAST_MAX {
        return encode_plain(&canvas, width);
    }
    let template = template(version, width, &canvas)?;
    // The data modules of this symbol, and which of them are dark before masking.
    let mut data_rows = vec![0u128; width];
    let mut dark_rows = vec![0u128; width];
    for (y, (d, k)) in data_rows.iter_mut().zip(dark_rows.iter_mut()).enumerate() {
        for x in 0..width {
            if let Module::Unmasked(c) = canvas.get(coord(x), coord(y)) {
                *d |= 1 << x;
                if c == qrcode::Color::Dark {
                    *k |= 1 << x;
                }
            }
        }
    }
    let mut best: Option<(u32, Vec<u128>)> = None;
    let mut rows = vec![0u128; width];
    for (fixed, mask) in template.fixed.iter().zip(&template.masks) {
        for (y, r) in rows.iter_mut().enumerate() {
            // Function patterns and format information come from the template masked the
            // same way; data modules are flipped where the mask says so.
            *r = (fixed[y] & !data_rows[y]) | ((dark_rows[y] ^ mask[y]) & data_rows[y]);
        }
        let score = penalty_rows(&rows, width);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, rows.clone()));
        }
    }
    let (_, rows) = best?;
    let dark = rows
        .iter()
        .flat_map(|r| (0..width).map(move |x| r >> x & 1 == 1))
        .collect();
    Some(Qr { width, dark })
}

/// The eight masks tried one by one on the crate's canvas, each scored by [`penalty`]: the
/// reference [`encode`] agrees with, and the way for symbols wider than [`FAST_MAX`].
fn encode_plain(canvas: &Canvas, width: usize) -> Option<Qr> {
    let mut best: Option<(u32, Vec<bool>)> = None;
    for mask in MASKS {
        let dark = masked(canvas, mask);
        let score = penalty(&dark, width);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, dark));
        }
    }
    best.map(|(_, dark)| Qr { width, dark })
}

/// A module coordinate for the crate's API (symbols are at most 177 modules wide).
fn coord(i: usize) -> i16 {
    i16::try_from(i).unwrap_or(i16::MAX)
}

/// What every symbol of one version shares, as bit rows (bit `x` of row `y` is module `x, y`):
/// the symbol without data masked by each of the eight masks (function patterns, format
/// information), and which data modules each mask flips.
struct Template {
    fixed: [Vec<u128>; 8],
    masks: [Vec<u128>; 8],
}

/// The template of `version`, made once per version (from `symbol`, the first symbol of that
/// version) and kept.
fn template(version: Version, width: usize, symbol: &Canvas) -> Option<&'static Template> {
    static TEMPLATES: [OnceLock<Option<Template>>; 40] = [const { OnceLock::new() }; 40];
    let Version::Normal(v) = version else {
        return None;
    };
    let slot = TEMPLATES.get(usize::try_from(v).ok()?.checked_sub(1)?)?;
    slot.get_or_init(|| {
        let mut empty = Canvas::new(version, EcLevel::M);
        empty.draw_all_functional_patterns();
        let rows = |dark: &dyn Fn(usize, usize) -> bool| -> Vec<u128> {
            (0..width)
                .map(|y| {
                    (0..width)
                        .filter(|x| dark(*x, y))
                        .fold(0, |r, x| r | 1 << x)
                })
                .collect()
        };
        let fixed = MASKS.map(|mask| {
            let dark = masked(&empty, mask);
            rows(&|x, y| dark[y * width + x])
        });
        // On data modules a mask is what it changes: the symbol masked against the symbol.
        let plain: Vec<bool> = symbol
            .clone()
            .into_colors()
            .into_iter()
            .map(|m| m == qrcode::Color::Dark)
            .collect();
        let masks = MASKS.map(|mask| {
            let dark = masked(symbol, mask);
            rows(&|x, y| dark[y * width + x] != plain[y * width + x])
        });
        Some(Template { fixed, masks })
    })
    .as_ref()
}

/// The symbol of `data` before masking, its width in modules and its version.
fn unmasked(data: &[u8]) -> Option<(Canvas, usize, Version)> {
    let bits = qrcode::bits::encode_auto(data, EcLevel::M).ok()?;
    let version = bits.version();
    let width = usize::try_from(version.width()).ok()?;
    let (codewords, ec) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).ok()?;
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&codewords, &ec);
    Some((canvas, width, version))
}

/// The modules of `canvas` with `mask` applied (and its format information drawn).
fn masked(canvas: &Canvas, mask: MaskPattern) -> Vec<bool> {
    let mut c = canvas.clone();
    c.apply_mask(mask);
    c.into_colors()
        .into_iter()
        .map(|m| m == qrcode::Color::Dark)
        .collect()
}

/// The widest symbol [`penalty_bits`] scores: each line and its 8 modules of quiet zone fit
/// in a `u128` (version 25 and below; a verification URL needs about 7).
const FAST_MAX: usize = 120;

/// [`penalty`] computed on rows and columns as bit sets (bit `x` is module `x`), for symbols
/// up to [`FAST_MAX`] modules wide.
#[cfg(test)]
pub(crate) fn penalty_bits(dark: &[bool], n: usize) -> u32 {
    if !(2..=FAST_MAX).contains(&n) || dark.len() != n * n {
        return penalty(dark, n);
    }
    let rows: Vec<u128> = dark
        .chunks_exact(n)
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, d)| **d)
                .fold(0, |r, (x, _)| r | 1 << x)
        })
        .collect();
    penalty_rows(&rows, n)
}

/// [`penalty`] of the symbol whose row `y` is `rows[y]` (bit `x`: module `x` is dark), `n`
/// modules wide, 2 ≤ `n` ≤ [`FAST_MAX`].
fn penalty_rows(rows: &[u128], n: usize) -> u32 {
    if !(2..=FAST_MAX).contains(&n) || rows.len() != n {
        return u32::MAX;
    }
    let full: u128 = (1u128 << n) - 1;
    let pairs: u128 = (1u128 << (n - 1)) - 1;
    // N3 looks at starts 4..=n-3 of the line shifted by four (the quiet zone).
    let starts: u128 = if n >= 7 {
        ((1u128 << (n - 2)) - 1) & !0xf
    } else {
        0
    };
    let mut score = 0u32;
    for &line in rows {
        // N1: bit x of `same` says modules x and x+1 match; bit x of `five` that x..x+4 do. A
        // run of L ≥ 5 sets L-4 bits of `five`, starting once: its 3 + (L-5) is 2 + (L-4).
        let same = !(line ^ (line >> 1)) & pairs;
        let five = same & (same >> 1) & (same >> 2) & (same >> 3);
        let runs = five & !(five << 1);
        score += 2 * runs.count_ones() + five.count_ones();
        // N3: 1:1:3:1:1 (modules 1011101 from bit s) with four light modules before or after.
        let p = line << 4;
        let finder = p & !(p >> 1) & (p >> 2) & (p >> 3) & (p >> 4) & !(p >> 5) & (p >> 6);
        let light = !(p | (p >> 1) | (p >> 2) | (p >> 3));
        score += 40 * (finder & ((light << 4) | (light >> 7)) & starts).count_ones();
    }
    // The same two rules down the columns, all columns at once: bit x of a row word is
    // column x, and rows outside the symbol are light (the quiet zone).
    let row = |y: isize| -> u128 {
        usize::try_from(y)
            .ok()
            .and_then(|y| rows.get(y))
            .copied()
            .unwrap_or(0)
    };
    let height = isize::try_from(n).unwrap_or(0);
    let same_down = |y: isize| !(row(y) ^ row(y + 1)) & full;
    let five_down = |y: isize| {
        if y < 0 || y + 4 >= height {
            0
        } else {
            same_down(y) & same_down(y + 1) & same_down(y + 2) & same_down(y + 3)
        }
    };
    let mut five_above = 0u128;
    for y in 0..height {
        let five = five_down(y);
        score += 2 * (five & !five_above).count_ones() + five.count_ones();
        five_above = five;
        if y + 7 <= height {
            let r = |k: isize| row(y + k);
            let finder = r(0) & !r(1) & r(2) & r(3) & r(4) & !r(5) & r(6);
            let before = !(row(y - 4) | row(y - 3) | row(y - 2) | row(y - 1));
            let after = !(r(7) | r(8) | r(9) | r(10));
            score += 40 * (finder & (before | after) & full).count_ones();
        }
    }
    // N2: 2×2 blocks of one colour.
    for w in rows.windows(2) {
        let (a, b) = (w[0], w[1]);
        let same = !(a ^ b) & full;
        let across_a = !(a ^ (a >> 1));
        let across_b = !(b ^ (b >> 1));
        score += 3 * (same & across_a & across_b & pairs).count_ones();
    }
    // N4.
    let dark_count: u32 = rows.iter().map(|r| r.count_ones()).sum();
    let percent = dark_count as usize * 100 / (n * n);
    let k = percent.abs_diff(50) / 5;
    score + 10 * u32::try_from(k).unwrap_or(u32::MAX / 20)
}

/// The total penalty of a masked symbol (ISO/IEC 18004:2015 §7.8.3.1, rules N1–N4).
pub(crate) fn penalty(dark: &[bool], n: usize) -> u32 {
    if n == 0 || dark.len() != n * n {
        return u32::MAX;
    }
    // Rows, then columns, each with four light modules of quiet zone on both sides.
    let padded = n + 8;
    let mut lines = vec![0u8; 2 * n * padded];
    for y in 0..n {
        for x in 0..n {
            let d = u8::from(dark[y * n + x]);
            lines[y * padded + 4 + x] = d;
            lines[(n + x) * padded + 4 + y] = d;
        }
    }
    let mut score = 0u32;
    const FINDER: [u8; 7] = [1, 0, 1, 1, 1, 0, 1];
    const LIGHT: [u8; 4] = [0; 4];
    for line in lines.chunks_exact(padded) {
        // N1: runs of five or more modules of one colour, inside the symbol.
        let inner = &line[4..4 + n];
        for run in inner.chunk_by(|a, b| a == b) {
            if run.len() >= 5 {
                score += 3 + u32::try_from(run.len() - 5).unwrap_or(0);
            }
        }
        // N3: 1:1:3:1:1 inside the symbol, with four light modules before or after it.
        for start in 4..4 + n.saturating_sub(6) {
            if line[start..start + 7] == FINDER
                && (line[start - 4..start] == LIGHT
                    || line.get(start + 7..start + 11) == Some(&LIGHT[..]))
            {
                score += 40;
            }
        }
    }
    // N2: 2×2 blocks of one colour.
    for y in 0..n - 1 {
        let (row, next) = (&dark[y * n..(y + 1) * n], &dark[(y + 1) * n..(y + 2) * n]);
        for x in 0..n - 1 {
            let c = row[x];
            if row[x + 1] == c && next[x] == c && next[x + 1] == c {
                score += 3;
            }
        }
    }
    // N4: 10 points per 5% the dark proportion strays from half.
    let dark_count = dark.iter().filter(|d| **d).count();
    let percent = dark_count * 100 / (n * n);
    let k = percent.abs_diff(50) / 5;
    score + 10 * u32::try_from(k).unwrap_or(u32::MAX / 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_encodes_at_level_m_and_keeps_its_finder_patterns() {
        let qr = encode(b"https://comune.example/portale/verifica/H769-ABCDEFGHIJKLMNOP?codice=ABCD-EFGH-IJKL-MNOP").unwrap();
        // 94 bytes at level M: version 6 (41 modules) or smaller.
        assert!(qr.width >= 21 && qr.width <= 41, "{}", qr.width);
        assert_eq!(qr.dark.len(), qr.width * qr.width);
        // The top-left finder: a dark 7-module border around a light ring and a dark centre.
        for i in 0..7 {
            assert!(qr.dark[i]);
            assert!(qr.dark[6 * qr.width + i]);
        }
        assert!(!qr.dark[qr.width + 1]);
        assert!(qr.dark[3 * qr.width + 3]);
    }

    #[test]
    fn the_chosen_mask_is_the_lowest_penalty_of_the_eight() {
        let data = b"https://example.org/verifica/X?codice=1";
        let qr = encode(data).unwrap();
        let chosen = penalty(&qr.dark, qr.width);
        // The finder patterns alone give N3 hits: both scorings see them.
        assert!(chosen >= 3 * 40, "{chosen}");
        assert_eq!(penalty_bits(&qr.dark, qr.width), chosen);
        let (canvas, _, _) = unmasked(data).unwrap();
        for mask in MASKS {
            assert!(chosen <= penalty(&masked(&canvas, mask), qr.width));
        }
    }

    /// The symbol [`encode`] makes is the one the plain way makes: every module, and so the
    /// same mask and format information.
    fn assert_same_as_plain(data: &[u8]) {
        let fast = encode(data).unwrap();
        let (canvas, width, _) = unmasked(data).unwrap();
        let plain = encode_plain(&canvas, width).unwrap();
        assert_eq!(fast.width, plain.width);
        assert!(
            fast.dark == plain.dark,
            "{} bytes, width {width}",
            data.len()
        );
    }

    #[test]
    fn every_fast_version_makes_the_plain_symbol() {
        // Byte-mode capacities at level M run from 14 (version 1) to 1 091 (version 25, 117
        // modules, the widest FAST_MAX allows); 26 and above take the plain way.
        let mut widths = std::collections::BTreeSet::new();
        for len in (1..1300).step_by(9) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            assert_same_as_plain(&data);
            widths.insert(encode(&data).unwrap().width);
        }
        assert!(
            widths.contains(&21) && widths.contains(&117) && widths.contains(&121),
            "{widths:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_data_makes_the_plain_symbol(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            assert_same_as_plain(&data);
        }

        #[test]
        fn the_bit_scoring_agrees_with_the_plain_one(
            n in 2usize..=FAST_MAX,
            seed in proptest::collection::vec(proptest::bool::ANY, 64),
            density in 1u32..9,
        ) {
            // A grid from a small seed: runs, blocks and finder-like patterns all occur.
            let dark: Vec<bool> = (0..n * n)
                .map(|i| seed[i % 64] ^ ((i as u32).wrapping_mul(2_654_435_761) % 10 < density))
                .collect();
            proptest::prop_assert_eq!(penalty_bits(&dark, n), penalty(&dark, n));
        }
    }

    #[test]
    fn penalty_rules_score_known_grids() {
        // All light 21×21: N1 21 runs of 21 per direction (3 + 16 each), N2 400 blocks, N4
        // 0% dark (k = 10).
        let light = vec![false; 21 * 21];
        assert_eq!(penalty(&light, 21), 2 * 21 * 19 + 400 * 3 + 100);
        // A checkerboard: no runs, no blocks, no finder-like pattern, half dark.
        let board: Vec<bool> = (0..21 * 21).map(|i| (i % 21 + i / 21) % 2 == 0).collect();
        assert_eq!(penalty(&board, 21), 0);
        assert_eq!(penalty(&[], 0), u32::MAX);
    }
}
