//! BER-TLV data objects of card answers (ISO/IEC 7816-4 §5.2): the FCI of a SELECT and the
//! answers of GET DATA. The bytes come from the card and are never trusted: every function
//! returns `None` (or stops) at the first malformed element, never panics.
//!
//! ```
//! use tscns_card::tlv;
//! // 6F { 84: A0 01, 83: 3F 00 }
//! let fci = [0x6F, 0x08, 0x84, 0x02, 0xA0, 0x01, 0x83, 0x02, 0x3F, 0x00];
//! let body = tlv::find(&fci, 0x6F).unwrap();
//! assert_eq!(tlv::find(body, 0x84), Some(&[0xA0, 0x01][..]));
//! assert_eq!(tlv::elements(body).count(), 2);
//! assert_eq!(tlv::find(&[0x6F, 0x09, 0x01], 0x6F), None);
//! ```

/// One data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'a> {
    /// The tag, its bytes big-endian (`0x6F`, `0x5F20`, ...; at most 3 bytes).
    pub tag: u32,
    /// Whether the tag is constructed (bit 6 of its first byte): the value holds elements.
    pub constructed: bool,
    /// The value.
    pub value: &'a [u8],
}

/// The first element of `bytes` and the bytes after it; `None` when it is malformed (a tag of
/// more than 3 bytes, a length of more than 2 bytes after `82`, a value past the end).
pub fn first(bytes: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let lead = *bytes.first()?;
    let mut i = 1;
    let mut tag = u32::from(lead);
    if lead & 0x1F == 0x1F {
        loop {
            let next = *bytes.get(i)?;
            tag = (tag << 8) | u32::from(next);
            i += 1;
            if next & 0x80 == 0 {
                break;
            }
            if i >= 3 {
                return None;
            }
        }
    }
    let l0 = *bytes.get(i)?;
    i += 1;
    let len = match l0 {
        l if l < 0x80 => usize::from(l),
        0x81 => {
            let l = usize::from(*bytes.get(i)?);
            i += 1;
            l
        }
        0x82 => {
            let l = usize::from(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
            i += 2;
            l
        }
        _ => return None,
    };
    let end = i.checked_add(len)?;
    let value = bytes.get(i..end)?;
    Some((
        Element {
            tag,
            constructed: lead & 0x20 != 0,
            value,
        },
        bytes.get(end..)?,
    ))
}

/// The elements of `bytes` in order, up to the first malformed one.
pub fn elements(bytes: &[u8]) -> impl Iterator<Item = Element<'_>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (element, after) = first(rest)?;
        rest = after;
        Some(element)
    })
}

/// Whether `bytes` is a whole sequence of well-formed elements.
pub fn is_well_formed(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        match first(rest) {
            Some((_, after)) => rest = after,
            None => return false,
        }
    }
    true
}

/// The value of the first element of `bytes` with this tag (top level only).
pub fn find(bytes: &[u8], tag: u32) -> Option<&[u8]> {
    elements(bytes).find(|e| e.tag == tag).map(|e| e.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_tags() {
        let long = [&[0x5F, 0x20, 0x81, 0x80][..], &[0x41; 0x80]].concat();
        let (e, rest) = first(&long).unwrap();
        assert_eq!((e.tag, e.value.len(), rest.len()), (0x5F20, 0x80, 0));
        assert_eq!(
            first(&[0x82, 0x82, 0x00, 0x01, 0x07]).map(|e| e.0.value),
            Some(&[7][..])
        );
        assert!(first(&[0x1F, 0x81, 0x81, 0x81, 0x01, 0x00]).is_none());
        assert!(first(&[0x80, 0x83, 0, 0, 1, 0]).is_none());
        assert!(is_well_formed(&[]));
        assert!(!is_well_formed(&[0x80, 0x02, 0x01]));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_values_lie_inside(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut total = 0usize;
            for e in elements(&bytes) {
                total += e.value.len();
                let _ = find(e.value, 0x84);
            }
            proptest::prop_assert!(total <= bytes.len());
            let _ = is_well_formed(&bytes);
        }

        #[test]
        fn encoded_elements_read_back(tag in 0x80u32..0x9F, value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut b = vec![tag as u8];
            match value.len() {
                n if n < 0x80 => b.push(n as u8),
                n if n < 0x100 => b.extend([0x81, n as u8]),
                n => b.extend([0x82, (n >> 8) as u8, n as u8]),
            }
            b.extend(&value);
            let (e, rest) = first(&b).unwrap();
            proptest::prop_assert_eq!(e.tag, tag);
            proptest::prop_assert_eq!(e.value, &value[..]);
            proptest::prop_assert!(rest.is_empty());
        }
    }
}
