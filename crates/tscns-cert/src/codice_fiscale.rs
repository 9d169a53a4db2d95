//! The Italian tax code (codice fiscale) of a natural person.
//!
//! Layout (DM 23 December 1976, the decree that defines the codice fiscale):
//!
//! | positions (1-based) | content |
//! |---|---|
//! | 1-3 | surname consonants/vowels |
//! | 4-6 | given-name consonants/vowels |
//! | 7-8 | year of birth, two digits |
//! | 9 | month letter `A B C D E H L M P R S T` |
//! | 10-11 | day of birth, + 40 for women |
//! | 12-15 | Belfiore code of the birthplace (`Z` + 3 digits for a foreign country) |
//! | 16 | check letter |
//!
//! Omocodia: when two people would get the same code, the digits at positions 7, 8, 10, 11, 13, 14
//! and 15 are replaced, right to left, by the letters `L M N P Q R S T U V` (for 0-9) and the check
//! letter is recomputed. This module accepts any such substitution and gives the canonical form back.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month};

use crate::Error;

/// Month letters for January..December (DM 23 December 1976).
const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";

/// Letters that replace the digits 0..9 in an omocodic code (DM 23 December 1976; omocodia as the Agenzia delle Entrate applies it).
const OMOCODIA_LETTERS: &[u8; 10] = b"LMNPQRSTUV";

/// 0-based positions that hold digits, or their omocodia letters.
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// Check-letter values of characters at odd (1-based) positions, indexed by letter A..Z; a digit
/// d counts as the d-th letter (DM 23 December 1976, check-letter table).
const ODD_VALUES: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Sex as encoded in the codice fiscale (women have 40 added to the day of birth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Male (`M`).
    Male,
    /// Female (`F`).
    Female,
}

impl Sex {
    /// The one-letter form, `"M"` or `"F"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sex {
    type Err = Error;

    /// Accepts `M`/`F` in either case.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "M" | "m" => Ok(Sex::Male),
            "F" | "f" => Ok(Sex::Female),
            other => Err(Error::CodiceFiscaleCompute(format!(
                "sex {other:?} must be M or F"
            ))),
        }
    }
}

/// A validated codice fiscale (the tax code of a natural person), kept as written (upper-cased).
///
/// ```
/// use tscns_cert::{CodiceFiscale, Sex};
/// let cf = CodiceFiscale::parse(" rssmra85t10a562s ")?;
/// assert_eq!(cf.as_str(), "RSSMRA85T10A562S");
/// assert_eq!(cf.sex(), Sex::Male);
/// assert_eq!(cf.birthplace_code(), "A562");
/// let today = time::Date::from_calendar_date(2024, time::Month::January, 1).unwrap();
/// assert_eq!(cf.birth_date(today).unwrap().to_string(), "1985-12-10");
/// # Ok::<(), tscns_cert::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodiceFiscale {
    /// 16 upper-case ASCII characters.
    code: [u8; 16],
}

impl CodiceFiscale {
    /// Parses and validates a codice fiscale: case-insensitive, surrounding white space ignored.
    ///
    /// Checks the length, the character class at every position, the month letter, the day
    /// (1-31 for men, 41-71 for women, and within the month) and the check letter.
    /// Omocodic codes are accepted.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if count != 16 {
            return Err(Error::CodiceFiscaleLength { found: count });
        }
        let mut code = [0u8; 16];
        for (i, c) in trimmed.chars().enumerate() {
            let u = c.to_ascii_uppercase();
            let ok = if DIGIT_POSITIONS.contains(&i) {
                u.is_ascii_digit() || (u.is_ascii() && OMOCODIA_LETTERS.contains(&(u as u8)))
            } else {
                u.is_ascii_uppercase()
            };
            if !ok {
                return Err(Error::CodiceFiscaleCharacter {
                    character: u,
                    position: i + 1,
                    expected: expected_at(i),
                });
            }
            // `ok` implies ASCII.
            code[i] = u as u8;
        }
        let month_letter = code[8];
        let month_index = MONTH_LETTERS
            .iter()
            .position(|&m| m == month_letter)
            .ok_or(Error::CodiceFiscaleMonth {
                letter: month_letter as char,
            })?;
        let day_field = digit_value(code[9]) * 10 + digit_value(code[10]);
        let day = match day_field {
            1..=31 => day_field,
            41..=71 => day_field - 40,
            _ => {
                return Err(Error::CodiceFiscaleDay {
                    day: day_field,
                    detail: "1-31 for men, 41-71 for women",
                })
            }
        };
        let year2 = digit_value(code[6]) * 10 + digit_value(code[7]);
        let max_day = match month_index {
            1 if year2.is_multiple_of(4) => 29,
            1 => 28,
            3 | 5 | 8 | 10 => 30,
            _ => 31,
        };
        if day > max_day {
            return Err(Error::CodiceFiscaleDay {
                day: day_field,
                detail: match (month_index, max_day) {
                    (1, 28) => "February 29 needs a leap year, and no year ending in these two digits is one",
                    (1, _) => "February has at most 29 days",
                    _ => "that month has 30 days",
                },
            });
        }
        let expected = check_letter(&code[..15]);
        if expected != code[15] {
            return Err(Error::CodiceFiscaleCheckLetter {
                expected: expected as char,
                found: code[15] as char,
            });
        }
        Ok(CodiceFiscale { code })
    }

    /// The code as written (upper-cased, possibly omocodic).
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this never fails; fall back to "" defensively.
        std::str::from_utf8(&self.code).unwrap_or("")
    }

    /// Whether any digit was replaced by an omocodia letter.
    pub fn is_omocodic(&self) -> bool {
        DIGIT_POSITIONS
            .iter()
            .any(|&i| !self.code[i].is_ascii_digit())
    }

    /// The canonical (de-omocodified) code: every omocodia letter turned back into its digit and
    /// the check letter recomputed. Equal to `self` when the code is not omocodic.
    pub fn canonical(&self) -> CodiceFiscale {
        let mut code = self.code;
        for &i in &DIGIT_POSITIONS {
            code[i] = b'0' + digit_value(code[i]);
        }
        code[15] = check_letter(&code[..15]);
        CodiceFiscale { code }
    }

    /// All omocodic variants of this code (including the canonical one), each of the 2^7 subsets of
    /// digit positions replaced by letters, with their check letters.
    pub fn omocodic_variants(&self) -> Vec<CodiceFiscale> {
        let base = self.canonical().code;
        (0u32..128)
            .map(|mask| {
                let mut code = base;
                for (bit, &i) in DIGIT_POSITIONS.iter().enumerate() {
                    if mask & (1 << bit) != 0 {
                        code[i] = OMOCODIA_LETTERS[usize::from(digit_value(code[i]))];
                    }
                }
                code[15] = check_letter(&code[..15]);
                CodiceFiscale { code }
            })
            .collect()
    }

    /// Sex of the holder (day of birth above 40 means female).
    pub fn sex(&self) -> Sex {
        if digit_value(self.code[9]) >= 4 {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// The month of birth.
    pub fn birth_month(&self) -> Month {
        let index = MONTH_LETTERS
            .iter()
            .position(|&m| m == self.code[8])
            .unwrap_or(0);
        month_from_index(index)
    }

    /// Day of birth in the month (women's +40 removed).
    pub fn birth_day(&self) -> u8 {
        let d = digit_value(self.code[9]) * 10 + digit_value(self.code[10]);
        if d > 40 {
            d - 40
        } else {
            d
        }
    }

    /// The two-digit year of birth (0-99).
    pub fn birth_year_two_digits(&self) -> u8 {
        digit_value(self.code[6]) * 10 + digit_value(self.code[7])
    }

    /// The date of birth, its two-digit year resolved in a 100-year window: the latest date not
    /// after `reference` (usually today) whose year ends in those two digits.
    ///
    /// `None` only if no such date exists within the range of [`time::Date`].
    pub fn birth_date(&self, reference: Date) -> Option<Date> {
        let yy = i32::from(self.birth_year_two_digits());
        let mut year = reference.year() - (reference.year() - yy).rem_euclid(100);
        // At most a few centuries back: February 29 of a `00` year needs a year divisible by 400.
        for _ in 0..5 {
            if let Ok(date) = Date::from_calendar_date(year, self.birth_month(), self.birth_day()) {
                if date <= reference {
                    return Some(date);
                }
            }
            year -= 100;
        }
        None
    }

    /// The Belfiore code of the birthplace (positions 12-15), in canonical digits, e.g. `"H501"`.
    /// Starts with `Z` for people born abroad.
    pub fn birthplace_code(&self) -> String {
        let mut out = String::with_capacity(4);
        out.push(self.code[11] as char);
        for &b in &self.code[12..15] {
            out.push((b'0' + digit_value(b)) as char);
        }
        out
    }

    /// Whether the holder was born abroad (Belfiore code starting with `Z`).
    pub fn born_abroad(&self) -> bool {
        self.code[11] == b'Z'
    }

    /// Computes the codice fiscale with the standard rules: surname and given name consonants
    /// then vowels (a given name with four or more consonants takes the 1st, 3rd and 4th),
    /// padded with `X`; accents and non-letters ignored; year, month letter, day (+40 for women),
    /// the Belfiore code (e.g. `"H501"` for Rome, `Z` + 3 digits for a foreign country) and the
    /// check letter.
    ///
    /// ```
    /// use tscns_cert::{CodiceFiscale, Sex};
    /// let born = time::Date::from_calendar_date(1985, time::Month::December, 10).unwrap();
    /// let cf = CodiceFiscale::compute("Rossi", "Mario", born, Sex::Male, "A562")?;
    /// assert_eq!(cf.as_str(), "RSSMRA85T10A562S");
    /// # Ok::<(), tscns_cert::Error>(())
    /// ```
    pub fn compute(
        surname: &str,
        given_name: &str,
        birth_date: Date,
        sex: Sex,
        belfiore: &str,
    ) -> Result<CodiceFiscale, Error> {
        let surname_part = name_part(surname, false)
            .ok_or_else(|| Error::CodiceFiscaleCompute("the surname has no letters".into()))?;
        let given_part = name_part(given_name, true)
            .ok_or_else(|| Error::CodiceFiscaleCompute("the given name has no letters".into()))?;
        let place = belfiore.trim().to_ascii_uppercase();
        let pb = place.as_bytes();
        if pb.len() != 4 || !pb[0].is_ascii_uppercase() || !pb[1..].iter().all(u8::is_ascii_digit) {
            return Err(Error::CodiceFiscaleCompute(format!(
                "birthplace code {belfiore:?} must be a letter and three digits, e.g. H501"
            )));
        }
        let mut code = [0u8; 16];
        code[..3].copy_from_slice(&surname_part);
        code[3..6].copy_from_slice(&given_part);
        let yy = birth_date.year().rem_euclid(100) as u8;
        code[6] = b'0' + yy / 10;
        code[7] = b'0' + yy % 10;
        code[8] = MONTH_LETTERS[usize::from(u8::from(birth_date.month())) - 1];
        let day = birth_date.day() + if sex == Sex::Female { 40 } else { 0 };
        code[9] = b'0' + day / 10;
        code[10] = b'0' + day % 10;
        code[11..15].copy_from_slice(pb);
        code[15] = check_letter(&code[..15]);
        Ok(CodiceFiscale { code })
    }
}

impl fmt::Display for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CodiceFiscale {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        CodiceFiscale::parse(s)
    }
}

/// What is allowed at a 0-based position, in words.
fn expected_at(i: usize) -> &'static str {
    match i {
        0..=5 => "a letter (surname and given-name part)",
        6 | 7 => "a digit or an omocodia letter L-V (year of birth)",
        8 => "a month letter (A B C D E H L M P R S T)",
        9 | 10 => "a digit or an omocodia letter L-V (day of birth)",
        11 => "a letter (first character of the birthplace code)",
        12..=14 => "a digit or an omocodia letter L-V (birthplace code)",
        _ => "a letter (check letter)",
    }
}

/// Value of a digit or of its omocodia letter; 0 for anything else (never stored).
fn digit_value(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b - b'0'
    } else {
        OMOCODIA_LETTERS
            .iter()
            .position(|&l| l == b)
            .map_or(0, |p| p as u8)
    }
}

/// The check letter of the first 15 characters (upper-case letters and digits).
pub(crate) fn check_letter(first15: &[u8]) -> u8 {
    let mut sum: u32 = 0;
    for (i, &b) in first15.iter().enumerate() {
        let index = if b.is_ascii_digit() {
            b - b'0'
        } else {
            b.wrapping_sub(b'A') % 26
        };
        // 1-based odd positions are 0-based even indices.
        sum += if i % 2 == 0 {
            u32::from(ODD_VALUES[usize::from(index)])
        } else {
            u32::from(index)
        };
    }
    b'A' + (sum % 26) as u8
}

fn month_from_index(index: usize) -> Month {
    const MONTHS: [Month; 12] = [
        Month::January,
        Month::February,
        Month::March,
        Month::April,
        Month::May,
        Month::June,
        Month::July,
        Month::August,
        Month::September,
        Month::October,
        Month::November,
        Month::December,
    ];
    MONTHS.get(index).copied().unwrap_or(Month::January)
}

/// Upper-case ASCII letter for a character, stripping common accents; `None` for non-letters.
fn base_letter(c: char) -> Option<u8> {
    let u = match c {
        'a'..='z' | 'A'..='Z' => c.to_ascii_uppercase(),
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' | 'Ç' | 'ć' | 'č' | 'Ć' | 'Č' => 'C',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' | 'Ñ' | 'ń' | 'Ń' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' | 'Ý' => 'Y',
        'š' | 'Š' | 'ś' | 'Ś' => 'S',
        'ž' | 'Ž' | 'ź' | 'ż' | 'Ź' | 'Ż' => 'Z',
        _ => return None,
    };
    Some(u as u8)
}

/// The first six characters of the codice fiscale for these names, `None` if one has no letters.
pub(crate) fn name_code(surname: &str, given_name: &str) -> Option<[u8; 6]> {
    let s = name_part(surname, false)?;
    let g = name_part(given_name, true)?;
    Some([s[0], s[1], s[2], g[0], g[1], g[2]])
}

impl CodiceFiscale {
    /// Whether the first six characters match what `surname` and `given_name` give by the
    /// standard rules (a mismatch may be a typo in either, or a name changed after the code was
    /// issued).
    pub fn matches_names(&self, surname: &str, given_name: &str) -> bool {
        name_code(surname, given_name).is_some_and(|c| c[..] == self.code[..6])
    }
}

/// Three letters from a surname (`given == false`) or given name, or `None` if it has no letters.
fn name_part(name: &str, given: bool) -> Option<[u8; 3]> {
    let letters: Vec<u8> = name.chars().filter_map(base_letter).collect();
    if letters.is_empty() {
        return None;
    }
    let is_vowel = |b: &u8| matches!(b, b'A' | b'E' | b'I' | b'O' | b'U');
    let consonants: Vec<u8> = letters.iter().copied().filter(|b| !is_vowel(b)).collect();
    let vowels = letters.iter().copied().filter(is_vowel);
    let picked: Vec<u8> = if given && consonants.len() >= 4 {
        vec![consonants[0], consonants[2], consonants[3]]
    } else {
        consonants
            .iter()
            .copied()
            .chain(vowels)
            .chain(std::iter::repeat(b'X'))
            .take(3)
            .collect()
    };
    let mut out = [b'X'; 3];
    for (o, p) in out.iter_mut().zip(picked) {
        *o = p;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn known_vectors() {
        // Synthetic people; check letters verified by hand with the spec's table.
        let cases = [
            (
                "Rossi",
                "Mario",
                date!(1985 - 12 - 10),
                Sex::Male,
                "A562",
                "RSSMRA85T10A562S",
            ),
            (
                "Bianchi",
                "Giuseppe",
                date!(1970 - 01 - 01),
                Sex::Male,
                "H501",
                "BNCGPP70A01H501C",
            ),
            (
                "Verdi",
                "Anna",
                date!(2001 - 02 - 28),
                Sex::Female,
                "F205",
                "VRDNNA01B68F205N",
            ),
            (
                "Fo",
                "Ugo",
                date!(1950 - 06 - 15),
                Sex::Male,
                "Z404",
                "FOXGUO50H15Z404T",
            ),
        ];
        for (s, g, d, sex, place, expected) in cases {
            let cf = CodiceFiscale::compute(s, g, d, sex, place).unwrap();
            assert_eq!(cf.as_str(), expected, "{s} {g}");
            let parsed = CodiceFiscale::parse(expected).unwrap();
            assert_eq!(parsed, cf);
            assert_eq!(parsed.sex(), sex);
            assert_eq!(parsed.birthplace_code(), place);
            assert_eq!(parsed.birth_date(date!(2025 - 01 - 01)), Some(d));
        }
    }

    #[test]
    fn given_name_with_four_consonants_takes_first_third_fourth() {
        // "Gianfranco": consonants G N F R N C -> G F R.
        let cf = CodiceFiscale::compute(
            "Neri",
            "Gianfranco",
            date!(1980 - 03 - 05),
            Sex::Male,
            "H501",
        )
        .unwrap();
        assert_eq!(&cf.as_str()[3..6], "GFR");
        // Accents and apostrophes ignored: "D'Àngelo" -> D N G.
        let cf = CodiceFiscale::compute("D'Àngelo", "Lù", date!(1980 - 03 - 05), Sex::Male, "H501")
            .unwrap();
        assert_eq!(&cf.as_str()[..6], "DNGLUX");
    }

    #[test]
    fn check_letter_table() {
        // Every character at odd and even positions against the spec's table: a code of 15 equal
        // characters c has 8 odd positions and 7 even ones.
        for (i, c) in (b'A'..=b'Z').enumerate() {
            let sum = 8 * u32::from(ODD_VALUES[i]) + 7 * i as u32;
            assert_eq!(check_letter(&[c; 15]), b'A' + (sum % 26) as u8);
        }
        for d in 0..10u8 {
            let sum = 8 * u32::from(ODD_VALUES[usize::from(d)]) + 7 * u32::from(d);
            assert_eq!(check_letter(&[b'0' + d; 15]), b'A' + (sum % 26) as u8);
        }
        // Spot values straight from the table: odd A=1, Z=23, 9=21; even Z=25.
        assert_eq!(check_letter(b"A"), b'B');
        assert_eq!(check_letter(b"Z"), b'X');
        assert_eq!(check_letter(b"9"), b'V');
        // odd A = 1, even Z = 25: 26 mod 26 = 0.
        assert_eq!(check_letter(b"AZ"), b'A');
    }

    #[test]
    fn omocodic_codes() {
        // RSSMRA85T10A562S with the last digit (2 -> N) substituted: check letter recomputed.
        let omo = CodiceFiscale::parse("RSSMRA85T10A56NH").unwrap();
        assert!(omo.is_omocodic());
        assert_eq!(omo.canonical().as_str(), "RSSMRA85T10A562S");
        assert_eq!(omo.birthplace_code(), "A562");
        // Fully omocodic: 8->U 5->R 1->M 0->L 5->R 6->S 2->N.
        let full = CodiceFiscale::parse("rssmraurtmlarsnl").unwrap();
        assert_eq!(full.canonical().as_str(), "RSSMRA85T10A562S");
        assert_eq!(
            full.birth_date(date!(2024 - 01 - 01)),
            Some(date!(1985 - 12 - 10))
        );
        let variants = full.omocodic_variants();
        assert_eq!(variants.len(), 128);
        assert!(variants.iter().any(|v| v == &full));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = |s: &str| CodiceFiscale::parse(s).unwrap_err().to_string();
        assert_eq!(
            e("RSSMRA85T10A562"),
            "codice fiscale: length is 15, expected 16"
        );
        assert!(e("RSSMR485T10A562S").contains("character '4' at position 6"));
        assert!(e("RSSMRA85Z10A562S").contains("month letter 'Z'"));
        assert!(e("RSSMRA85T32A562S").contains("day 32 out of range"));
        assert!(e("RSSMRA85T00A562S").contains("day 0 out of range"));
        assert!(e("RSSMRA85B30A562S").contains("day 30 out of range"));
        assert!(e("RSSMRA85B29A562S").contains("leap year"));
        assert_eq!(
            e("RSSMRA85T10A562X"),
            "codice fiscale: check letter should be S, found X"
        );
        assert!(e("RSSMRA85T10A562É").contains("character 'É' at position 16"));
    }

    #[test]
    fn century_window() {
        let cf = CodiceFiscale::parse("RSSMRA85T10A562S").unwrap();
        assert_eq!(
            cf.birth_date(date!(2085 - 12 - 10)),
            Some(date!(2085 - 12 - 10))
        );
        assert_eq!(
            cf.birth_date(date!(2085 - 12 - 09)),
            Some(date!(1985 - 12 - 10))
        );
        // February 29 in a 00 year: 2100 is not leap, 2000 is.
        let leap =
            CodiceFiscale::compute("Rossi", "Mario", date!(2000 - 02 - 29), Sex::Male, "A562")
                .unwrap();
        assert_eq!(
            leap.birth_date(date!(2150 - 01 - 01)),
            Some(date!(2000 - 02 - 29))
        );
    }
}
