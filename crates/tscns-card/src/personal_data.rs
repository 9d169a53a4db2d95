//! EF_Dati_personali (3F00/1100/1102): the holder's data as the card stores it.
//!
//! Format (cns-card spec "EF_Dati_personali"): 6 hex characters giving the length of the rest,
//! then 16 fields, each 2 hex characters of length followed by that many characters; an empty
//! field is `00`. Dates are `ddmmyyyy`. The bytes are ASCII; bytes above 0x7F are read as
//! Latin-1 so that a card with an accented letter still reads.

use time::{Date, Month};

use crate::Error;

/// Largest EF_Dati_personali this crate accepts (OpenSC caps the file at 400 bytes; the header
/// could announce up to 0xFFFFFF).
pub const MAX_LEN: usize = 0x1000;

/// Field names in file order, as used in error messages and JSON.
pub const FIELD_NAMES: [&str; 16] = [
    "issuer_code",
    "issue_date",
    "expiry_date",
    "surname",
    "given_name",
    "birth_date",
    "sex",
    "height",
    "codice_fiscale",
    "citizenship",
    "birth_municipality",
    "birth_country",
    "birth_act",
    "residence_municipality",
    "residence_address",
    "expatriation_notes",
];

/// The holder's personal data (EF_Dati_personali). Empty fields are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonalData {
    /// 1. Issuer code (codice emettitore).
    pub issuer_code: Option<String>,
    /// 2. Issue date (data rilascio).
    pub issue_date: Option<Date>,
    /// 3. Expiry date (data scadenza).
    pub expiry_date: Option<Date>,
    /// 4. Surname (cognome).
    pub surname: Option<String>,
    /// 5. Given name (nome).
    pub given_name: Option<String>,
    /// 6. Birth date (data di nascita).
    pub birth_date: Option<Date>,
    /// 7. Sex (sesso), `M` or `F`.
    pub sex: Option<String>,
    /// 8. Height in cm (statura).
    pub height: Option<String>,
    /// 9. Codice fiscale.
    pub codice_fiscale: Option<String>,
    /// 10. Citizenship code (cittadinanza).
    pub citizenship: Option<String>,
    /// 11. Birth municipality, Belfiore code (comune di nascita), e.g. `B202`.
    pub birth_municipality: Option<String>,
    /// 12. Birth country (stato di nascita).
    pub birth_country: Option<String>,
    /// 13. Birth-act reference (estremi atto di nascita).
    pub birth_act: Option<String>,
    /// 14. Residence municipality code (comune di residenza).
    pub residence_municipality: Option<String>,
    /// 15. Residence address (indirizzo di residenza).
    pub residence_address: Option<String>,
    /// 16. Expatriation notes (annotazioni espatrio).
    pub expatriation_notes: Option<String>,
}

fn err(field: &'static str, reason: impl Into<String>) -> Error {
    Error::PersonalData {
        field,
        reason: reason.into(),
    }
}

fn hex_value(field: &'static str, bytes: &[u8]) -> Result<usize, Error> {
    let mut v = 0usize;
    for &b in bytes {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'F' => b - b'A' + 10,
            b'a'..=b'f' => b - b'a' + 10,
            _ => {
                return Err(err(
                    field,
                    format!("length {:?} is not hexadecimal", latin1(bytes)),
                ))
            }
        };
        v = v * 16 + usize::from(d);
    }
    Ok(v)
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn parse_date(field: &'static str, s: &str) -> Result<Date, Error> {
    let b = s.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return Err(err(field, format!("{s:?} is not a date ddmmyyyy")));
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    let (day, month, year) = (num(0..2), num(2..4), num(4..8));
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| err(field, format!("{s:?} has month {month}")))?;
    let year = i32::try_from(year).map_err(|_| err(field, "year out of range"))?;
    let day = u8::try_from(day).map_err(|_| err(field, "day out of range"))?;
    Date::from_calendar_date(year, month, day)
        .map_err(|_| err(field, format!("{s:?} is not a calendar date")))
}

fn format_date(d: Date) -> String {
    format!("{:02}{:02}{:04}", d.day(), u8::from(d.month()), d.year())
}

impl PersonalData {
    /// Parses the file's bytes. Bytes after the length the header announces (file padding) are
    /// ignored; fields missing at the end of the announced length read as empty.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let header = bytes
            .get(..6)
            .ok_or_else(|| err("header", "the file is shorter than its 6-character header"))?;
        let len = hex_value("header", header)?;
        if len > MAX_LEN {
            return Err(err(
                "header",
                format!("announces {len} bytes, more than {MAX_LEN}"),
            ));
        }
        let body = bytes.get(6..6 + len).ok_or_else(|| {
            err(
                "header",
                format!(
                    "announces {len} bytes but the file holds {}",
                    bytes.len() - 6
                ),
            )
        })?;
        let mut fields: [Option<String>; 16] = Default::default();
        let mut pos = 0usize;
        for (i, name) in FIELD_NAMES.iter().enumerate() {
            if pos == body.len() {
                break;
            }
            let lh = body
                .get(pos..pos + 2)
                .ok_or_else(|| err(name, "the length is cut short by the end of the data"))?;
            let flen = hex_value(name, lh)?;
            pos += 2;
            let value = body.get(pos..pos + flen).ok_or_else(|| {
                err(
                    name,
                    format!(
                        "announces {flen} characters but only {} remain",
                        body.len() - pos
                    ),
                )
            })?;
            pos += flen;
            if value.iter().any(|&b| b < 0x20 || b == 0x7F) {
                return Err(err(name, "contains control characters"));
            }
            if flen > 0 {
                fields[i] = Some(latin1(value));
            }
        }
        if pos != body.len() {
            return Err(err(
                "file",
                format!("{} bytes left after the 16 fields", body.len() - pos),
            ));
        }
        let [issuer_code, issue_date, expiry_date, surname, given_name, birth_date, sex, height, codice_fiscale, citizenship, birth_municipality, birth_country, birth_act, residence_municipality, residence_address, expatriation_notes] =
            fields;
        let date = |field: &'static str, v: Option<String>| -> Result<Option<Date>, Error> {
            v.map(|s| parse_date(field, &s)).transpose()
        };
        Ok(PersonalData {
            issuer_code,
            issue_date: date("issue_date", issue_date)?,
            expiry_date: date("expiry_date", expiry_date)?,
            surname,
            given_name,
            birth_date: date("birth_date", birth_date)?,
            sex,
            height,
            codice_fiscale,
            citizenship,
            birth_municipality,
            birth_country,
            birth_act,
            residence_municipality,
            residence_address,
            expatriation_notes,
        })
    }

    /// The 16 fields in file order as they are written to the file (dates as `ddmmyyyy`).
    pub fn fields(&self) -> [Option<String>; 16] {
        let d = |v: &Option<Date>| v.map(format_date);
        [
            self.issuer_code.clone(),
            d(&self.issue_date),
            d(&self.expiry_date),
            self.surname.clone(),
            self.given_name.clone(),
            d(&self.birth_date),
            self.sex.clone(),
            self.height.clone(),
            self.codice_fiscale.clone(),
            self.citizenship.clone(),
            self.birth_municipality.clone(),
            self.birth_country.clone(),
            self.birth_act.clone(),
            self.residence_municipality.clone(),
            self.residence_address.clone(),
            self.expatriation_notes.clone(),
        ]
    }

    /// Serialises to the file format: upper-case hex lengths, every field present (`00` when
    /// empty). `PersonalData::parse(&pd.to_bytes()?) == pd`, and for a canonical file `x`
    /// (upper-case hex, all 16 fields, no padding) `parse(x)?.to_bytes()? == x`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        for (name, value) in FIELD_NAMES.iter().zip(self.fields()) {
            let value = value.unwrap_or_default();
            let mut bytes = Vec::with_capacity(value.len());
            for c in value.chars() {
                let b = u8::try_from(u32::from(c))
                    .map_err(|_| err(name, format!("{c:?} cannot be written to the card")))?;
                if b < 0x20 || b == 0x7F {
                    return Err(err(name, "contains control characters"));
                }
                bytes.push(b);
            }
            if bytes.len() > 0xFF {
                return Err(err(name, "longer than 255 characters"));
            }
            body.extend_from_slice(format!("{:02X}", bytes.len()).as_bytes());
            body.extend_from_slice(&bytes);
        }
        if body.len() > MAX_LEN {
            return Err(err("file", format!("longer than {MAX_LEN} bytes")));
        }
        let mut out = format!("{:06X}", body.len()).into_bytes();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The length of the file's meaningful bytes (header included) as its header announces, or
    /// `None` when fewer than 6 bytes or a non-hex header are given.
    pub fn announced_len(prefix: &[u8]) -> Option<usize> {
        let h = prefix.get(..6)?;
        hex_value("header", h).ok().map(|l| l + 6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canonical() -> Vec<u8> {
        let fields = [
            "0012345678",
            "01012020",
            "01012026",
            "ROSSI",
            "MARIO",
            "15061977",
            "M",
            "180",
            "RSSMRA77H15H501W",
            "",
            "H501",
            "",
            "",
            "H501",
            "VIA ROMA 1",
            "",
        ];
        let mut body = String::new();
        for f in fields {
            body.push_str(&format!("{:02X}{f}", f.len()));
        }
        format!("{:06X}{body}", body.len()).into_bytes()
    }

    #[test]
    fn parses_a_canonical_file_and_round_trips() {
        let bytes = canonical();
        let pd = PersonalData::parse(&bytes).unwrap();
        assert_eq!(pd.surname.as_deref(), Some("ROSSI"));
        assert_eq!(pd.given_name.as_deref(), Some("MARIO"));
        assert_eq!(
            pd.birth_date,
            Some(Date::from_calendar_date(1977, Month::June, 15).unwrap())
        );
        assert_eq!(pd.citizenship, None);
        assert_eq!(pd.expatriation_notes, None);
        assert_eq!(pd.codice_fiscale.as_deref(), Some("RSSMRA77H15H501W"));
        assert_eq!(pd.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn padding_after_the_announced_length_is_ignored() {
        let mut bytes = canonical();
        bytes.extend_from_slice(&[0xFF; 20]);
        assert_eq!(
            PersonalData::parse(&bytes).unwrap(),
            PersonalData::parse(&canonical()).unwrap()
        );
        assert_eq!(PersonalData::announced_len(&bytes), Some(canonical().len()));
    }

    #[test]
    fn errors_name_the_field() {
        let good = String::from_utf8(canonical()).unwrap();
        // Break the birth date (field 6): 15061977 -> 15131977.
        let bad = good.replace("15061977", "15131977");
        match PersonalData::parse(bad.as_bytes()) {
            Err(Error::PersonalData { field, .. }) => assert_eq!(field, "birth_date"),
            other => panic!("{other:?}"),
        }
        // Surname length says 0x20 characters: it swallows the rest and then runs out.
        let bad = good.replace("05ROSSI", "7FROSSI");
        match PersonalData::parse(bad.as_bytes()) {
            Err(Error::PersonalData { field, .. }) => assert_eq!(field, "surname"),
            other => panic!("{other:?}"),
        }
        match PersonalData::parse(b"00001") {
            Err(Error::PersonalData { field, .. }) => assert_eq!(field, "header"),
            other => panic!("{other:?}"),
        }
        match PersonalData::parse(b"0000ZZ") {
            Err(Error::PersonalData { field, .. }) => assert_eq!(field, "header"),
            other => panic!("{other:?}"),
        }
        match PersonalData::parse(b"000010") {
            Err(Error::PersonalData { field, .. }) => assert_eq!(field, "header"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trailing_fields_may_be_missing() {
        // A length digit cut off by the announced end names the field it belongs to.
        let e = PersonalData::parse(b"00000B0412340000000000").unwrap_err();
        assert!(
            matches!(
                e,
                Error::PersonalData {
                    field: "surname",
                    ..
                }
            ),
            "{e:?}"
        );
        let pd = PersonalData::parse(b"000006041234").unwrap();
        assert_eq!(pd.issuer_code.as_deref(), Some("1234"));
        assert_eq!(pd.issue_date, None);
    }

    fn text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[ -~]{1,40}")
    }

    fn date() -> impl Strategy<Value = Option<Date>> {
        proptest::option::of((1900i32..2100, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| {
            Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap()
        }))
    }

    prop_compose! {
        fn personal_data()(
            a in text(), b in date(), c in date(), d in text(), e in text(), f in date(),
            g in text(), h in text(), i in text(), j in text(), k in text(), l in text(),
            m in text(), n in text(), o in text(), p in text(),
        ) -> PersonalData {
            PersonalData {
                issuer_code: a, issue_date: b, expiry_date: c, surname: d, given_name: e,
                birth_date: f, sex: g, height: h, codice_fiscale: i, citizenship: j,
                birth_municipality: k, birth_country: l, birth_act: m,
                residence_municipality: n, residence_address: o, expatriation_notes: p,
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip(pd in personal_data()) {
            let bytes = pd.to_bytes().unwrap();
            let back = PersonalData::parse(&bytes).unwrap();
            prop_assert_eq!(&back, &pd);
            prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = PersonalData::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_near_valid(prefix in "[0-9A-F]{6}", rest in "[0-9A-Fa-z ]{0,200}") {
            let mut b = prefix.into_bytes();
            b.extend_from_slice(rest.as_bytes());
            let _ = PersonalData::parse(&b);
        }
    }
}
