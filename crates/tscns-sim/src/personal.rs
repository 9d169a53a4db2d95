//! EF_Dati_personali (3F00/1100/1102) as a card stores it (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver,
//! "EF_Dati_personali"): six hex digits giving the length of the rest, then 16 fields, each two
//! hex digits of length followed by that many ASCII characters; dates as `ddmmyyyy`; an empty
//! field is `00`.

use time::Date;

use crate::profile::PersonalData;

/// Largest EF_Dati_personali real cards carry (OpenSC caps its reads at 400 bytes).
pub const MAX_FILE_LEN: usize = 400;

fn date_field(date: Option<Date>) -> String {
    match date {
        Some(d) => format!("{:02}{:02}{:04}", d.day(), u8::from(d.month()), d.year()),
        None => String::new(),
    }
}

/// The 16 fields in file order.
pub fn fields(data: &PersonalData) -> [String; 16] {
    [
        data.issuer_code.clone(),
        date_field(data.issue_date),
        date_field(data.expiry_date),
        data.surname.clone(),
        data.given_name.clone(),
        date_field(data.birth_date),
        data.sex.clone(),
        data.height.clone(),
        data.codice_fiscale.clone(),
        data.citizenship.clone(),
        data.birth_municipality.clone(),
        data.birth_country.clone(),
        data.birth_act.clone(),
        data.residence_municipality.clone(),
        data.residence_address.clone(),
        data.expatriation_notes.clone(),
    ]
}

/// Serialises the personal data into the bytes of EF_Dati_personali. Fields longer than 255
/// bytes are cut (validation rejects them first).
pub fn encode(data: &PersonalData) -> Vec<u8> {
    let mut body = String::new();
    for field in fields(data) {
        let field: String = field.chars().take(255).collect();
        body.push_str(&format!("{:02X}", field.len()));
        body.push_str(&field);
    }
    let mut out = format!("{:06X}", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Month;

    #[test]
    fn encodes_lengths_dates_and_empty_fields() {
        let data = PersonalData {
            issuer_code: "6120".into(),
            issue_date: Date::from_calendar_date(2021, Month::March, 1).ok(),
            surname: "ROSSI".into(),
            given_name: "MARIO".into(),
            codice_fiscale: "RSSMRA80A01H501U".into(),
            ..PersonalData::default()
        };
        let bytes = encode(&data);
        let text = String::from_utf8(bytes).unwrap();
        let body = "046120".to_owned()
            + "0801032021"
            + "00"
            + "05ROSSI"
            + "05MARIO"
            + "00"
            + "00"
            + "00"
            + "10RSSMRA80A01H501U"
            + "00000000000000";
        assert_eq!(text, format!("{:06X}{body}", body.len()));
        assert_eq!(&text[..6], "000046");
    }

    #[test]
    fn all_empty_is_sixteen_double_zeros() {
        let text = String::from_utf8(encode(&PersonalData::default())).unwrap();
        assert_eq!(text, format!("000020{}", "00".repeat(16)));
    }
}
