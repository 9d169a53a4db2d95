//! The CNS card number (EF_ID_Carta, and the part after `/` in the certificate CN).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The 16-digit card number of a CNS card, as stored in EF_ID_Carta (3F00/1000/1003) and written
/// in the authentication certificate's CN. The last digit is a Luhn check digit; the first digit
/// is the card type (CNS functional specification; OpenSC's `card-itacns.c`).
///
/// ```
/// use tscns_cert::CardId;
/// let id = CardId::parse("8038000000000009")?;
/// assert_eq!(id.card_type(), 8);
/// assert!(CardId::parse("8038000000000008").is_err());
/// assert_eq!(CardId::with_check_digit("803800000000000")?, id);
/// # Ok::<(), tscns_cert::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardId {
    digits: [u8; 16],
}

/// The ASCII digits of `s` (at most 16, checked by the caller) at the front of a 16-byte array;
/// any other character is an error naming its position.
fn ascii_digits(s: &str) -> Result<[u8; 16], Error> {
    let mut digits = [0u8; 16];
    for (i, (slot, c)) in digits.iter_mut().zip(s.chars()).enumerate() {
        if !c.is_ascii_digit() {
            return Err(Error::CardIdCharacter {
                character: c,
                position: i + 1,
            });
        }
        *slot = c as u8;
    }
    Ok(digits)
}

impl CardId {
    /// Parses 16 ASCII digits (surrounding white space ignored) and checks the Luhn digit.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if count != 16 {
            return Err(Error::CardIdLength { found: count });
        }
        let digits = ascii_digits(trimmed)?;
        let expected = luhn_check_digit(&digits[..15]);
        if expected != digits[15] {
            return Err(Error::CardIdLuhn {
                expected: expected as char,
                found: digits[15] as char,
            });
        }
        Ok(CardId { digits })
    }

    /// Builds a card id from its first 15 digits by appending the Luhn check digit.
    pub fn with_check_digit(first15: &str) -> Result<Self, Error> {
        let trimmed = first15.trim();
        let count = trimmed.chars().count();
        if count != 15 {
            return Err(Error::CardIdLength { found: count + 1 });
        }
        let mut digits = ascii_digits(trimmed)?;
        digits[15] = luhn_check_digit(&digits[..15]);
        Ok(CardId { digits })
    }

    /// The 16 digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are stored.
        std::str::from_utf8(&self.digits).unwrap_or("")
    }

    /// The card type: the first digit.
    pub fn card_type(&self) -> u8 {
        self.digits[0] - b'0'
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CardId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        CardId::parse(s)
    }
}

impl CardId {
    /// Whether ASCII `digits` end in a right Luhn check digit (the rule of EF_ID_Carta's last
    /// digit), whatever their number; `false` for anything but 2 or more ASCII digits.
    pub fn luhn_is_valid(digits: &[u8]) -> bool {
        match digits.split_last() {
            Some((last, payload))
                if !payload.is_empty() && digits.iter().all(u8::is_ascii_digit) =>
            {
                luhn_check_digit(payload) == *last
            }
            _ => false,
        }
    }
}

/// The Luhn check digit (ASCII) for a string of ASCII digits.
pub(crate) fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b.wrapping_sub(b'0') % 10);
            if i % 2 == 0 {
                let dd = d * 2;
                if dd > 9 {
                    dd - 9
                } else {
                    dd
                }
            } else {
                d
            }
        })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_vectors() {
        // Classic Luhn examples (ISO/IEC 7812-1 Annex B style): 7992739871 -> check 3.
        assert_eq!(luhn_check_digit(b"7992739871"), b'3');
        assert_eq!(luhn_check_digit(b"000000000000000"), b'0');
        assert!(CardId::luhn_is_valid(b"79927398713"));
        assert!(!CardId::luhn_is_valid(b"79927398710"));
        assert!(!CardId::luhn_is_valid(b"7") && !CardId::luhn_is_valid(b"12a4"));
        assert!(CardId::parse("4111111111111111").is_ok());
        assert!(CardId::parse(" 8038000000000009\n").is_ok());
    }

    #[test]
    fn errors() {
        assert_eq!(
            CardId::parse("123").unwrap_err().to_string(),
            "card id: length is 3, expected 16 digits"
        );
        assert_eq!(
            CardId::parse("80380000000000a9").unwrap_err().to_string(),
            "card id: character 'a' at position 15 is not a digit"
        );
        assert_eq!(
            CardId::parse("8038000000000001").unwrap_err().to_string(),
            "card id: check digit should be 9, found 1 (Luhn)"
        );
    }
}
