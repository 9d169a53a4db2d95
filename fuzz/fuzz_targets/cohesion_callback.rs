//! The Cohesion callback parser: the posted `auth` value (base64 of a dsAuth document) and the raw
//! XML. Must never panic; every input is accepted or refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = tscns_cohesion::UntrustedCallback::parse(s);
        let _ = tscns_cohesion::DsAuth::parse_xml("fuzz", s);
    }
    let _ = tscns_cohesion::UntrustedCallback::from_form_body(data);
});
