//! Without a reachable pcscd every entry point says so, with how to start it.
//!
//! pcsc-lite's client finds pcscd's socket through PCSCLITE_CSOCK_NAME; this binary (one test,
//! so nothing else in the process uses PC/SC) points it at a socket that does not exist, leaving
//! the shared pcscd alone.
#![cfg(feature = "pcsc")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tscns_apdu::pcsc::{list_readers, wait_for_card, PcscTransport};
use tscns_apdu::Error;

#[test]
fn every_entry_point_reports_no_service() {
    std::env::set_var("PCSCLITE_CSOCK_NAME", "/nonexistent/tscns-test/pcscd.comm");
    let check = |e: Error| {
        assert!(matches!(e, Error::NoService), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("pcscd is not running"), "{msg}");
        assert!(msg.contains("pcscd -f"), "{msg}");
    };
    check(list_readers().unwrap_err());
    check(PcscTransport::connect("Virtual PCD 00 00").unwrap_err());
    check(PcscTransport::connect_first().unwrap_err());
    check(wait_for_card("Virtual PCD 00 00", true, Duration::from_millis(100)).unwrap_err());
}
