//! `tscns readers` as a user runs it: the built binary against the real pcscd + vpcd, and against
//! a PC/SC socket that does not exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn tscns() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tscns"))
}

/// With no pcscd to talk to (pcsc-lite's client reads PCSCLITE_CSOCK_NAME; pointing it at a
/// missing socket leaves the shared pcscd alone), the command says so and how to start it.
#[cfg(feature = "pcsc")]
#[test]
fn readers_without_pcscd_says_how_to_start_it() {
    for args in [&["readers"][..], &["readers", "--json"][..]] {
        let out = tscns()
            .args(args)
            .env("PCSCLITE_CSOCK_NAME", "/nonexistent/tscns-test/pcscd.comm")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("pcscd is not running"), "{stderr}");
        assert!(stderr.contains("pcscd -f"), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[cfg(feature = "system-tests")]
mod system {
    use std::time::Duration;

    use serde_json::Value;
    use tscns_apdu::pcsc::wait_for_card;
    use tscns_apdu::testing::{
        atr_with_historical_bytes, ReaderLock, VpcdCard, PCSCD_HOWTO, VPCD_PORT_0, VPCD_READER_0,
    };

    use super::tscns;

    const WAIT: Duration = Duration::from_secs(15);

    fn readers_json() -> Vec<Value> {
        let out = tscns().args(["readers", "--json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tscns readers --json failed: {stderr}\n{PCSCD_HOWTO}"
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().expect("a JSON array").clone()
    }

    fn reader0(list: &[Value]) -> Value {
        list.iter()
            .find(|r| r["name"] == VPCD_READER_0)
            .unwrap_or_else(|| panic!("{VPCD_READER_0} not listed in {list:?}: {PCSCD_HOWTO}"))
            .clone()
    }

    #[test]
    fn readers_json_shows_the_test_card() {
        let _lock = ReaderLock::acquire(VPCD_PORT_0, Duration::from_secs(300)).unwrap();
        wait_for_card(VPCD_READER_0, false, WAIT)
            .unwrap_or_else(|e| panic!("{VPCD_READER_0} did not become empty: {e}. {PCSCD_HOWTO}"));

        // Every entry has exactly the documented shape.
        let list = readers_json();
        for r in &list {
            let o = r.as_object().unwrap();
            assert_eq!(o.len(), 3, "{r}");
            assert!(o["name"].is_string() && o["card_present"].is_boolean());
            assert!(o["atr"].is_null() || o["atr"].is_string());
        }
        let empty = reader0(&list);
        assert_eq!(empty["card_present"], false);
        assert!(empty["atr"].is_null());

        let atr = atr_with_historical_bytes(b"tscns readers");
        let card = VpcdCard::insert(VPCD_PORT_0, atr.clone(), |_| vec![0x6D, 0x00], WAIT).unwrap();
        wait_for_card(VPCD_READER_0, true, WAIT).unwrap();
        let expected: String = atr.iter().map(|b| format!("{b:02X}")).collect();
        let with_card = reader0(&readers_json());
        assert_eq!(with_card["card_present"], true);
        assert_eq!(with_card["atr"], Value::String(expected.clone()));

        // The human form shows the same.
        let out = tscns().arg("readers").output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("{VPCD_READER_0}: card present, ATR {expected}")),
            "{text}"
        );

        card.remove();
        wait_for_card(VPCD_READER_0, false, WAIT).unwrap();
        let gone = reader0(&readers_json());
        assert_eq!(gone["card_present"], false);
        assert!(gone["atr"].is_null());
    }
}
