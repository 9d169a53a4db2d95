//! Shared parts of certificate PDFs, stored once.
//!
//! Every certificate embeds the same font programs: with the default repertoire, two runs of
//! about 38 KiB each, byte for byte the same in every certificate a program version makes. The
//! store keeps such a run once, in table `pdf_parts` keyed by its SHA-256, and keeps in the
//! certificate's row its own bytes (the PDF with the runs cut out) and where each run goes
//! back (column `pdf_parts`: `OFFSET:SHA256` entries, comma-separated, in file order; `NULL`
//! when the row holds the whole file).
//!
//! Reading a certificate puts the runs back and checks the whole file against the row's
//! SHA-256, so a part that is missing or altered gives [`StoreError::Corrupt`], never other
//! bytes. Parts are never updated or deleted (triggers refuse it), like the audit log.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::StoreError;

/// A run of bytes that certificates share, as the document writer makes it.
#[derive(Clone)]
pub(crate) struct Part {
    /// SHA-256 of `bytes`, lower-case hex (the key in `pdf_parts`).
    pub(crate) sha256: String,
    /// The bytes.
    pub(crate) bytes: Arc<[u8]>,
    /// The first bytes of `bytes`, to find candidates quickly.
    finder: memchr::memmem::Finder<'static>,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("sha256", &self.sha256)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Runs shorter than this are not worth a row of their own.
pub(crate) const MIN_PART: usize = 1024;

/// How many bytes of a part [`split`] searches for before comparing the rest.
const PROBE: usize = 64;

impl Part {
    /// A part of these bytes.
    pub(crate) fn new(bytes: &[u8]) -> Part {
        let probe = bytes[..bytes.len().min(PROBE)].to_vec();
        Part {
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: Arc::from(bytes),
            finder: memchr::memmem::Finder::new(&probe).into_owned(),
        }
    }
}

/// The parts of the document writer, found once per process (the fonts' objects).
pub(crate) fn candidates() -> &'static [Part] {
    static PARTS: std::sync::OnceLock<Vec<Part>> = std::sync::OnceLock::new();
    PARTS.get_or_init(|| {
        crate::documents::shared_runs()
            .into_iter()
            .filter(|r| r.len() >= MIN_PART)
            .map(Part::new)
            .collect()
    })
}

/// A PDF with the parts it contains cut out.
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// The PDF's own bytes.
    pub(crate) own: Vec<u8>,
    /// Where each part goes back, in file order.
    pub(crate) splices: Vec<(usize, Part)>,
}

impl Split {
    /// The `pdf_parts` column: `None` when no part was cut out.
    pub(crate) fn column(&self) -> Option<String> {
        if self.splices.is_empty() {
            return None;
        }
        let entries: Vec<String> = self
            .splices
            .iter()
            .map(|(at, p)| format!("{at}:{}", p.sha256))
            .collect();
        Some(entries.join(","))
    }
}

/// Cuts the first whole occurrence of each of `parts` out of `pdf` (occurrences that overlap
/// an earlier one are left in place).
pub(crate) fn split(pdf: &[u8], parts: &[Part]) -> Split {
    let mut found: Vec<(usize, &Part)> = Vec::new();
    for part in parts {
        let n = part.bytes.len();
        let at = part
            .finder
            .find_iter(pdf)
            .find(|&at| pdf.get(at..at + n) == Some(&part.bytes[..]));
        if let Some(at) = at {
            let overlaps = found
                .iter()
                .any(|(b, q)| at < b + q.bytes.len() && *b < at + n);
            if !overlaps {
                found.push((at, part));
            }
        }
    }
    if found.is_empty() {
        return Split {
            own: pdf.to_vec(),
            splices: Vec::new(),
        };
    }
    found.sort_by_key(|(at, _)| *at);
    let cut: usize = found.iter().map(|(_, p)| p.bytes.len()).sum();
    let mut own = Vec::with_capacity(pdf.len() - cut);
    let mut from = 0;
    for (at, part) in &found {
        own.extend_from_slice(&pdf[from..*at]);
        from = at + part.bytes.len();
    }
    own.extend_from_slice(&pdf[from..]);
    Split {
        own,
        splices: found.into_iter().map(|(at, p)| (at, p.clone())).collect(),
    }
}

/// The most splices one row may name (a certificate has two).
const MAX_SPLICES: usize = 64;

/// Reads a `pdf_parts` column: offsets in the whole file, ascending, and the parts' SHA-256.
pub(crate) fn parse_column(column: &str) -> Result<Vec<(usize, String)>, StoreError> {
    let bad = |reason: String| StoreError::Corrupt {
        table: "certificates",
        reason: format!("column pdf_parts: {reason}"),
    };
    let mut out: Vec<(usize, String)> = Vec::new();
    for entry in column.split(',') {
        if out.len() == MAX_SPLICES {
            return Err(bad(format!("more than {MAX_SPLICES} parts")));
        }
        let (at, sha) = entry
            .split_once(':')
            .ok_or_else(|| bad(format!("{:?} is not OFFSET:SHA256", short(entry))))?;
        let at: usize = at
            .parse()
            .map_err(|_| bad(format!("{:?} is not an offset", short(at))))?;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad(format!("{:?} is not a SHA-256", short(sha))));
        }
        if out.last().is_some_and(|(prev, _)| at < *prev) {
            return Err(bad("offsets out of order".into()));
        }
        out.push((at, sha.to_string()));
    }
    Ok(out)
}

/// At most 80 characters of a bad value, for an error message.
fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Puts `parts` back into `own` at their offsets (in the whole file, ascending).
pub(crate) fn join(own: &[u8], parts: &[(usize, Arc<[u8]>)]) -> Result<Vec<u8>, StoreError> {
    let bad = |reason: &str| StoreError::Corrupt {
        table: "certificates",
        reason: format!("the PDF's parts do not fit its own bytes: {reason}"),
    };
    let total = parts
        .iter()
        .try_fold(own.len(), |n, (_, p)| n.checked_add(p.len()))
        .ok_or_else(|| bad("too long"))?;
    let mut out = Vec::with_capacity(total);
    let mut from: usize = 0;
    for (at, part) in parts {
        let take = at
            .checked_sub(out.len())
            .ok_or_else(|| bad("two parts overlap"))?;
        let until = from
            .checked_add(take)
            .ok_or_else(|| bad("offset past the end"))?;
        out.extend_from_slice(
            own.get(from..until)
                .ok_or_else(|| bad("offset past the end"))?,
        );
        out.extend_from_slice(part);
        from = until;
    }
    out.extend_from_slice(&own[from..]);
    Ok(out)
}

/// The parts known to be committed in one database, with their bytes, by SHA-256 (parts are
/// never deleted, so what is known stays true).
pub(crate) type Known = crate::kept::Kept<String, Arc<[u8]>>;

/// At most this many parts are kept in memory.
pub(crate) const MAX_KNOWN: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> Vec<Part> {
        vec![
            Part::new(&[b'a'; 1500]),
            Part::new(&(0..3000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        ]
    }

    fn joined(s: &Split) -> Vec<u8> {
        let parts: Vec<(usize, Arc<[u8]>)> = s
            .splices
            .iter()
            .map(|(at, p)| (*at, Arc::clone(&p.bytes)))
            .collect();
        join(&s.own, &parts).unwrap()
    }

    #[test]
    fn parts_are_cut_out_and_put_back() {
        let ps = parts();
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend_from_slice(&ps[1].bytes);
        pdf.extend_from_slice(b"between");
        pdf.extend_from_slice(&ps[0].bytes);
        pdf.extend_from_slice(b"%%EOF\n");
        let s = split(&pdf, &ps);
        assert_eq!(s.own, b"%PDF-1.7\nbetween%%EOF\n");
        assert_eq!(s.splices.len(), 2);
        assert_eq!(s.splices[0].0, 9);
        let column = s.column().unwrap();
        let parsed = parse_column(&column).unwrap();
        assert_eq!(parsed[1], (9 + 3000 + 7, ps[0].sha256.clone()));
        assert_eq!(joined(&s), pdf);
        // Without the parts, the whole file stays in the row.
        let plain = split(b"%PDF-1.7\nno parts here", &ps);
        assert_eq!(plain.own, b"%PDF-1.7\nno parts here");
        assert!(plain.column().is_none());
    }

    #[test]
    fn bad_columns_and_offsets_are_corrupt_rows() {
        let sha = "0".repeat(64);
        for column in [
            String::new(),
            "12".into(),
            format!("x:{sha}"),
            format!("-1:{sha}"),
            format!("1:{}", "A".repeat(64)),
            format!("1:{}", "0".repeat(63)),
            format!("9:{sha},3:{sha}"),
            format!("99999999999999999999999:{sha}"),
        ] {
            assert!(
                matches!(parse_column(&column), Err(StoreError::Corrupt { .. })),
                "{column:?}"
            );
        }
        let part: Arc<[u8]> = Arc::from(&b"PART"[..]);
        for bad in [
            vec![(10, Arc::clone(&part))],
            vec![(0, Arc::clone(&part)), (2, Arc::clone(&part))],
        ] {
            assert!(matches!(
                join(b"own", &bad),
                Err(StoreError::Corrupt { .. })
            ));
        }
        assert_eq!(join(b"own", &[(3, part)]).unwrap(), b"ownPART");
    }

    proptest::proptest! {
        #[test]
        fn split_then_join_gives_the_file_back(
            pieces in proptest::collection::vec((proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0usize..3), 0..6),
        ) {
            let ps = parts();
            let mut pdf = Vec::new();
            for (bytes, which) in &pieces {
                pdf.extend_from_slice(bytes);
                if let Some(p) = ps.get(*which) {
                    pdf.extend_from_slice(&p.bytes);
                }
            }
            let s = split(&pdf, &ps);
            proptest::prop_assert_eq!(joined(&s), pdf.clone());
            proptest::prop_assert!(s.own.len() <= pdf.len());
            if let Some(c) = s.column() {
                proptest::prop_assert_eq!(parse_column(&c).unwrap().len(), s.splices.len());
            }
        }

        #[test]
        fn arbitrary_columns_never_panic(column in ".{0,300}", own in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Ok(entries) = parse_column(&column) {
                let parts: Vec<(usize, Arc<[u8]>)> = entries.iter().map(|(at, _)| (*at, Arc::from(&b"xyz"[..]))).collect();
                let _ = join(&own, &parts);
            }
        }
    }
}
