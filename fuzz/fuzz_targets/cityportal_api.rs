//! The portal's JSON API bodies (`POST /api/v1/certificates`, `POST /api/v1/declarations`):
//! arbitrary bytes are either a request that survives a serialize/parse round trip unchanged, or
//! a typed error with a message; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tscns_cityportal::server::api::{parse_certificate_request, parse_declaration_request};

fuzz_target!(|data: &[u8]| {
    match parse_certificate_request(data) {
        Ok(request) => {
            let again = serde_json::to_vec(&request).expect("a parsed request serializes");
            let back = parse_certificate_request(&again).expect("its own JSON parses");
            assert_eq!(back, request, "round trip changed the request");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match parse_declaration_request(data) {
        Ok(request) => {
            let again = serde_json::to_vec(&request).expect("a parsed request serializes");
            assert_eq!(parse_declaration_request(&again).expect("parses"), request);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
