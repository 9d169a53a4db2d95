//! ATR and historical-byte parsing, recognition and quirks: never panic on any bytes.
#![no_main]

use tscns_card::{Atr, CnsAtrInfo, Recognition};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(atr) = Atr::parse(data) {
        assert_eq!(atr.as_bytes(), data);
        let _ = atr.cns_info();
    }
    let r = Recognition::from_atr(data);
    let _ = r.puk_reference();
    let _ =
        CnsAtrInfo::from_historical(data).map(|i| (i.is_idemia_2021(), i.chip_maker.to_string()));
    let _ = tscns_card::der_length(data);
});
