//! Shared by the tests: host-built signature blocks and, for the system tests, a simulated card
//! plugged into vpcd reader 1 under the reader lock and external commands run with a timeout.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};

/// EMSA-PKCS1-v1_5 block (RFC 8017 §9.2) for SHA-256 of `msg`, `k` bytes long: what a host
/// sends to the card's raw RSA.
pub fn pkcs1_block(msg: &[u8], k: usize) -> Vec<u8> {
    // DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
    let mut t = tscns_apdu::parse_hex("3031300d060960864801650304020105000420").unwrap();
    t.extend(Sha256::digest(msg));
    let mut out = vec![0x00, 0x01];
    out.extend(std::iter::repeat_n(0xFF, k - t.len() - 3));
    out.push(0x00);
    out.extend(t);
    out
}

#[cfg(feature = "system-tests")]
mod system;
#[cfg(feature = "system-tests")]
#[allow(unused_imports)] // not every test file uses every helper
pub use system::*;
