//! Command::decode on arbitrary bytes: never panics, and whatever it accepts re-encodes to the
//! same bytes. Response parsing and the redacting Display ride along.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tscns_apdu::{Command, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Command::decode(data) {
        let again = c.encode().expect("a decoded command encodes");
        assert_eq!(again, data, "decode/encode is not the identity");
        assert_eq!(c.encoded_len().ok(), Some(data.len()));
        let _ = format!("{c} {c:?}");
    }
    if let Ok(r) = Response::from_bytes(data) {
        assert_eq!(r.to_bytes(), data);
        let _ = r.status().to_string();
    }
});
