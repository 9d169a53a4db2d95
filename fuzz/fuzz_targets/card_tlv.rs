//! BER-TLV of card answers (FCIs, GET DATA; `tscns_card::tlv`, read by the driver's application
//! probe and by `tscns card report`): arbitrary bytes give elements inside the input or stop,
//! never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut seen = 0usize;
    for e in tscns_card::tlv::elements(data) {
        seen += e.value.len();
        assert!(seen <= data.len());
        if e.constructed {
            let _ = tscns_card::tlv::find(e.value, 0x84);
            let _ = tscns_card::tlv::is_well_formed(e.value);
        }
    }
    let _ = tscns_card::tlv::is_well_formed(data);
});
