//! PIN and PUK: validated before anything is sent, zeroized on drop, never shown.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::SecretKind;
use crate::Error;

use tscns_generations::PinRules;
pub use tscns_generations::{PIN_BLOCK_LEN, PIN_PAD};

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct Secret {
    digits: [u8; PIN_BLOCK_LEN],
    len: u8,
}

impl Secret {
    fn new(kind: SecretKind, input: &str) -> Result<Self, Error> {
        let bytes = input.as_bytes();
        let invalid = |reason| Error::InvalidSecret { kind, reason };
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(invalid("it must contain digits only"));
        }
        if bytes.len() < 5 {
            return Err(invalid("it is too short: 5 to 8 digits"));
        }
        if bytes.len() > PIN_BLOCK_LEN {
            return Err(invalid("it is too long: 5 to 8 digits"));
        }
        let mut digits = [PIN_PAD; PIN_BLOCK_LEN];
        digits[..bytes.len()].copy_from_slice(bytes);
        Ok(Secret {
            digits,
            // bytes.len() <= 8 checked above.
            len: bytes.len() as u8,
        })
    }

    fn padded(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            tscns_generations::pin_block(&self.digits[..usize::from(self.len)], PIN_PAD).to_vec(),
        )
    }

    /// The block a generation wants (its padding byte after the digits).
    fn block_for(&self, rules: &PinRules) -> Zeroizing<Vec<u8>> {
        let digits = &self.digits[..usize::from(self.len)];
        Zeroizing::new(rules.block(digits).to_vec())
    }
}

macro_rules! secret_type {
    ($(#[$m:meta])* $name:ident, $kind:expr) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $name(Secret);

        impl $name {
            /// Validates 5 to 8 ASCII digits. Nothing is sent to any card here.
            pub fn new(digits: &str) -> Result<Self, Error> {
                Secret::new($kind, digits).map($name)
            }

            /// Like [`Self::new`], taking (and zeroizing) an owned string, e.g. from a prompt.
            /// Surrounding whitespace (a trailing newline) is ignored.
            pub fn from_string(mut digits: String) -> Result<Self, Error> {
                let r = Self::new(digits.trim());
                digits.zeroize();
                r
            }

            /// Number of digits.
            pub fn len(&self) -> usize {
                usize::from(self.0.len)
            }

            /// Always false: a valid secret has at least 5 digits.
            pub fn is_empty(&self) -> bool {
                self.0.len == 0
            }

            /// The 8-byte block sent to the card: the digits in ASCII padded with 0xFF.
            pub fn padded_block(&self) -> Zeroizing<Vec<u8>> {
                self.0.padded()
            }

            /// The block sent to a card of a generation: the digits padded with its pad byte.
            pub(crate) fn block_for(&self, rules: &PinRules) -> Zeroizing<Vec<u8>> {
                self.0.block_for(rules)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_type!(
    /// The citizen's PIN: 5 to 8 digits, zeroized on drop, redacted in `Debug`.
    Pin,
    SecretKind::Pin
);
secret_type!(
    /// The PUK that unblocks the PIN: 5 to 8 digits, zeroized on drop, redacted in `Debug`.
    Puk,
    SecretKind::Puk
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_before_sending() {
        assert!(Pin::new("12345").is_ok());
        assert!(Pin::new("12345678").is_ok());
        for bad in ["", "1234", "123456789", "12a45", "12 345", "١٢٣٤٥"] {
            assert!(
                matches!(
                    Pin::new(bad),
                    Err(Error::InvalidSecret {
                        kind: SecretKind::Pin,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Puk::new("12"),
            Err(Error::InvalidSecret {
                kind: SecretKind::Puk,
                ..
            })
        ));
    }

    #[test]
    fn pads_with_ff() {
        let p = Pin::new("12345").unwrap();
        assert_eq!(
            &p.padded_block()[..],
            &[b'1', b'2', b'3', b'4', b'5', 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(p.len(), 5);
        assert!(!p.is_empty());
        assert_eq!(Pin::from_string("87654321\n".into()).unwrap().len(), 8);
    }

    #[test]
    fn debug_shows_nothing() {
        let p = Pin::new("13579").unwrap();
        let s = format!("{p:?}");
        assert_eq!(s, "Pin(<redacted>)");
        assert!(!s.contains("13579"));
        let e = Pin::new("1357").unwrap_err().to_string();
        assert!(!e.contains("1357"), "{e}");
    }
}
