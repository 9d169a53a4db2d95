//! The `return` parameter of the Cohesion login (where the browser goes after the login): whatever
//! is accepted must stay on this origin and hold no control character. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(p) = tscns_cohesion::same_origin_path(s) {
        assert!(p.starts_with('/') && !p.starts_with("//"));
        assert!(!p.bytes().any(|b| b.is_ascii_control() || b == b'\\'));
        let base = tscns_cohesion::Url::parse("https://origin.invalid/").unwrap();
        assert_eq!(base.join(p).unwrap().host_str(), Some("origin.invalid"));
    }
});
