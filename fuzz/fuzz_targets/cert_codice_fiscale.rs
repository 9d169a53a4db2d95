//! Codice fiscale and card id parsing on arbitrary strings: errors, never panics; anything
//! accepted round-trips through its canonical form.
#![no_main]

use tscns_cert::time::{Date, Month};
use tscns_cert::{CardId, CodiceFiscale};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(cf) = CodiceFiscale::parse(&s) {
        let canonical = cf.canonical();
        assert!(!canonical.is_omocodic());
        assert_eq!(
            CodiceFiscale::parse(canonical.as_str()).ok(),
            Some(canonical.clone())
        );
        assert_eq!(canonical.birthplace_code(), cf.birthplace_code());
        let _ = cf.birth_date(Date::MIN);
        let _ = cf.birth_date(Date::MAX);
        if let Ok(d) = Date::from_calendar_date(2026, Month::June, 1) {
            let _ = cf.birth_date(d);
        }
    }
    if let Ok(id) = CardId::parse(&s) {
        assert_eq!(CardId::parse(id.as_str()).ok(), Some(id));
    }
});
