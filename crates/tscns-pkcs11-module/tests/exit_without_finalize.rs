//! A program that logs in through the module and exits without `C_Finalize` (as browsers often
//! do) leaves no verified card behind: the module's exit hook resets it, even while another PC/SC
//! client is connected (pcscd alone would leave the card as it is for that client). The program
//! is this test binary run again as a child (cryptoki loads the module, `C_Login`, then
//! `std::process::exit` with no destructor, hence no `C_Finalize`). pcscd + vpcd with a
//! tscns-sim card (feature `system-tests`).
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{module_in_process, Plugged, READER};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use tscns_apdu::pcsc::PcscTransport;

const CHILD: &str = "TSCNS_P11_EXIT_CHILD_PIN";

/// The child: logs in and exits at once, skipping every destructor.
#[test]
#[ignore = "child process of a_login_without_finalize_is_reset_at_exit; does nothing without its environment"]
fn child_logs_in_and_exits() {
    let Ok(pin) = std::env::var(CHILD) else {
        return;
    };
    let (pkcs11, slot) = module_in_process();
    let slot = slot.expect("no token in the vpcd reader");
    let session = pkcs11.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(pin.into())))
        .unwrap();
    println!("logged in");
    std::process::exit(0);
}

#[test]
fn a_login_without_finalize_is_reset_at_exit() {
    let plugged = Plugged::new("default");
    // Another PC/SC client, connected all along: with it, pcscd would keep the card as it is.
    let _bystander = PcscTransport::connect(READER).unwrap();
    assert!(!plugged.handle.pin_verified());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_logs_in_and_exits",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, plugged.profile.pin.expose())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("logged in"),
        "child: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The child is gone; give pcscd a moment to process its disconnection.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !plugged.handle.pin_verified(),
        "the card is still verified after a program exited without C_Finalize"
    );
}
