//! What reaches tscns-pkcs11-module from outside besides the C ABI (covered by its harness):
//! a pinentry program's `D` lines, the configuration file, and data to sign of any length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tscns_pkcs11_module::mechanism::{Mechanism, SignOp};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tscns_pkcs11_module::pinentry::unescape(text);
        let _ = tscns_pkcs11_module::config::Config::from_toml(text);
    }
    let kind = data.first().map_or(0, |b| u64::from(b % 0x48));
    let m = Mechanism {
        kind,
        pss: None,
        param_len: 0,
    };
    if let Ok(mut op) = SignOp::new(&m, 1024) {
        if op.update(data).is_ok() {
            let _ = op.block();
        }
    }
});
