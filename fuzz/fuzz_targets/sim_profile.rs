//! Fuzzes the simulator's TOML profile reader: any text gives a profile or an error, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(profile) = tscns_sim::Profile::from_toml(text) {
            // A parsed profile validates again without panicking.
            let _ = profile.validate();
        }
    }
});
