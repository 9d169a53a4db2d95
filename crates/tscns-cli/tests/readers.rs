//! `tscns readers` as a user runs it: the built binary against the real pcscd + vpcd (with a
//! `tscns-sim` card in the reader), and against a PC/SC socket that does not exist.
#![cfg(feature = "pcsc")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

mod common;
use common::{Run, Tscns};

/// Bound on one run of the binary.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `tscns ARGS` with `envs`, waiting at most [`RUN_TIMEOUT`] before killing it.
fn tscns(args: &[&str], envs: &[(&str, &str)]) -> Run {
    Tscns::new(args).envs(envs).timeout(RUN_TIMEOUT).run()
}

/// With no pcscd to talk to (pcsc-lite's client reads PCSCLITE_CSOCK_NAME; pointing it at a
/// missing socket leaves the shared pcscd alone), the command says so and how to start it.
#[cfg(feature = "pcsc")]
#[test]
fn readers_without_pcscd_says_how_to_start_it() {
    for args in [&["readers"][..], &["readers", "--json"][..]] {
        let out = tscns(
            args,
            &[
                ("PCSCLITE_CSOCK_NAME", "/nonexistent/tscns-test/pcscd.comm"),
                ("RUST_BACKTRACE", "1"),
            ],
        );
        let stderr = &out.stderr;
        assert_eq!(out.code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("pcscd is not running"), "{stderr}");
        assert!(stderr.contains("pcscd -f"), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert!(out.stdout_bytes.is_empty());
    }
}

/// A `tscns-sim` card (the default profile, an STIncard) served into `Virtual PCD 00 00`.
#[cfg(feature = "system-tests")]
mod system {
    use std::time::Duration;

    use serde_json::Value;
    use tscns_apdu::pcsc::wait_for_card;
    use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO, VPCD_PORT_0, VPCD_READER_0};
    use tscns_sim::{serve_vpcd, Profile, SimCard};

    use super::tscns;

    const WAIT: Duration = Duration::from_secs(15);

    fn readers_json() -> Vec<Value> {
        let out = tscns(&["readers", "--json"], &[]);
        assert_eq!(
            out.code,
            Some(0),
            "tscns readers --json failed: {}\n{PCSCD_HOWTO}",
            out.stderr
        );
        let v: Value = serde_json::from_slice(&out.stdout_bytes).unwrap();
        v.as_array().expect("a JSON array").clone()
    }

    fn reader0(list: &[Value]) -> Value {
        list.iter()
            .find(|r| r["name"] == VPCD_READER_0)
            .unwrap_or_else(|| panic!("{VPCD_READER_0} not listed in {list:?}: {PCSCD_HOWTO}"))
            .clone()
    }

    #[test]
    fn readers_json_shows_the_simulated_card() {
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

        let profile = Profile::default_profile().unwrap();
        let atr = profile.maker.atr().to_vec();
        let card = SimCard::new(&profile).unwrap();
        assert_eq!(card.handle().atr(), atr, "the card answers its maker's ATR");
        let server = serve_vpcd(card, VPCD_PORT_0)
            .unwrap_or_else(|e| panic!("cannot serve the card on vpcd: {e}. {PCSCD_HOWTO}"));
        assert_eq!(server.reader_name(), VPCD_READER_0);
        assert!(
            server.wait_ready(WAIT),
            "pcscd never asked the card for its ATR: {PCSCD_HOWTO}"
        );
        wait_for_card(VPCD_READER_0, true, WAIT).unwrap();
        let expected: String = atr.iter().map(|b| format!("{b:02X}")).collect();
        let with_card = reader0(&readers_json());
        assert_eq!(with_card["card_present"], true);
        assert_eq!(with_card["atr"], Value::String(expected.clone()));

        // The human form shows the same.
        let out = tscns(&["readers"], &[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let text = &out.stdout;
        assert!(
            text.contains(&format!("{VPCD_READER_0}: card present, ATR {expected}")),
            "{text}"
        );
        // Listing readers does not talk to the card.
        assert_eq!(server.handle().counters().apdus, 0);

        server.stop();
        wait_for_card(VPCD_READER_0, false, WAIT).unwrap();
        let gone = reader0(&readers_json());
        assert_eq!(gone["card_present"], false);
        assert!(gone["atr"].is_null());
    }
}
