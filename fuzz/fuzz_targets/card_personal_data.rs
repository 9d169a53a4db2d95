//! EF_Dati_personali parsing: never panics; what parses serialises and parses back the same.
#![no_main]

use tscns_card::PersonalData;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(pd) = PersonalData::parse(data) {
        if let Ok(bytes) = pd.to_bytes() {
            let back = PersonalData::parse(&bytes).expect("serialised personal data parses");
            assert_eq!(back, pd);
        }
    }
    let _ = PersonalData::announced_len(data);
});
