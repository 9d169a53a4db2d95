//! tscns-tls: host names given for the allowlist and CA files given with `--ca` (user and file
//! input) must give an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let mut list = tscns_tls::HostAllowlist::new();
        if list.allow(s).is_ok() {
            assert!(list.allows(s));
        }
    }
    let _ = tscns_tls::AuthClientBuilder::anonymous().add_ca_pem(data, "fuzz");
    let _ = tscns_tls::server::codice_fiscale_of(data);
});
