//! `tscns demo` end to end: the real binary, the in-process simulated card, the Cohesion emulator
//! and the demo site on loopback, one process. The facts in its JSON are checked against the
//! simulator's profile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use tscns_sim::Profile;

mod common;
use common::{Run, Tscns};

fn tscns(args: &[&str]) -> Run {
    tscns_with_stdin(args, "")
}

/// Runs `tscns` with `args`; a `demo` gets a directory of its own (`--dir`), so that demos run
/// by parallel tests never share a store.
fn tscns_with_stdin(args: &[&str], stdin: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().join("tscns-demo").display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    if args.first() == Some(&"demo") {
        all.extend(["--dir", dir_arg.as_str()]);
    }
    Tscns::new(&all).stdin(stdin).run()
}

/// Runs `tscns demo --simulated [PROFILE] --json` and checks every fact against the profile.
fn demo_matches_profile(profile_arg: Option<&str>) {
    let name = profile_arg.unwrap_or("default");
    let profile = Profile::builtin(name).unwrap();
    let pd = &profile.personal_data;
    let mut args = vec!["demo", "--simulated"];
    args.extend(profile_arg);
    args.push("--json");
    let run = tscns(&args);
    assert_eq!(
        run.code,
        Some(0),
        "tscns {args:?} failed: {}{}",
        run.stdout,
        run.stderr
    );
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", run.stdout));

    let card = &v["card"];
    assert_eq!(card["source"], "simulated");
    assert_eq!(card["reader"], format!("simulated ({name})"));
    assert_eq!(card["card_id"], profile.card_id.as_str());
    assert_eq!(card["codice_fiscale"], pd.codice_fiscale.as_str());
    assert_eq!(card["surname"], pd.surname.as_str());
    assert_eq!(card["given_name"], pd.given_name.as_str());
    assert_eq!(
        card["certificate"]["codice_fiscale"],
        pd.codice_fiscale.as_str()
    );
    assert_eq!(card["certificate"]["chain"]["valid"], true, "{card}");

    let login = &v["login"];
    assert_eq!(login["codice_fiscale"], pd.codice_fiscale.as_str());
    assert_eq!(login["tipo_autenticazione"], "CF");
    assert_eq!(login["given_name"], pd.given_name.as_str());
    assert_eq!(login["surname"], pd.surname.as_str());
    assert_eq!(login["signatures"], 1, "one card signature for the login");

    assert_eq!(v["logout"], true);
    let apdus = v["apdus"].as_u64().unwrap();
    assert!(
        apdus >= 5,
        "identity, PIN and signature take several APDUs, got {apdus}"
    );
}

#[test]
fn demo_with_the_default_simulated_card() {
    demo_matches_profile(None);
}

#[test]
fn demo_with_an_idemia_profile() {
    demo_matches_profile(Some("idemia-v2-2048"));
}

#[test]
fn demo_text_output_tells_which_card_and_what_the_site_saw() {
    let run = tscns(&["demo", "--simulated", "idemia2021-2048"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let pd = Profile::builtin("idemia2021-2048").unwrap().personal_data;
    for needle in [
        "the simulated TS-CNS card, profile \"idemia2021-2048\"".to_owned(),
        "PIN:             the simulated card's, known from its profile".to_owned(),
        format!(
            "codice fiscale {}, tipo_autenticazione CF",
            pd.codice_fiscale
        ),
        "card signatures: 1 for the login (counted by the simulator)".to_owned(),
        "logout:          done".to_owned(),
    ] {
        assert!(
            run.stdout.contains(&needle),
            "{needle:?} missing in:\n{}",
            run.stdout
        );
    }
}

#[test]
fn demo_with_a_1024_bit_card_logs_in_with_one_signature() {
    // CNS 1.0 cards (1024-bit RSA): the emulator verifies their handshake signatures too.
    demo_matches_profile(Some("athena-1024"));
    demo_matches_profile(Some("stincard-1024"));
}

#[test]
fn demo_with_an_unknown_profile_names_the_known_ones() {
    let run = tscns(&["demo", "--simulated", "no-such-profile"]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("idemia-v2-2048"), "{}", run.stderr);
}

/// A tscns-sim card in a vpcd reader, through pcscd: `tscns demo` takes it as a real card.
#[cfg(feature = "system-tests")]
mod system {
    use super::*;
    use std::time::Duration;
    use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
    use tscns_sim::{serve_vpcd, SimCard, DEFAULT_VPCD_PORT};

    #[test]
    fn demo_with_a_card_in_a_reader() {
        assert!(
            std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
            "{PCSCD_HOWTO}"
        );
        let port = DEFAULT_VPCD_PORT;
        let _lock = ReaderLock::acquire(port, Duration::from_secs(120)).unwrap();
        let profile = Profile::builtin("idemia-v2-2048").unwrap();
        let pd = &profile.personal_data;
        let card = SimCard::new(&profile).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, card.pki().ca_cert_pem()).unwrap();
        let ca = ca.to_str().unwrap();
        let not_ca = dir.path().join("card.pem");
        std::fs::write(&not_ca, card.pki().card_cert_pem()).unwrap();
        let not_ca = not_ca.to_str().unwrap();
        let server = serve_vpcd(card, port).unwrap();
        assert!(
            server.wait_ready(Duration::from_secs(10)),
            "vpcd card not ready"
        );
        let reader = server.reader_name();
        tscns_apdu::pcsc::wait_for_card(&reader, true, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("pcscd does not see the card: {e}"));

        // Without the CA that issued the card: refused before the PIN is asked or used.
        let run = tscns_with_stdin(&["demo", "--reader", &reader, "--pin-stdin"], "");
        assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("--cns-ca"), "{}", run.stderr);
        assert_eq!(server.handle().pin_tries_left(), 3);

        // A --cns-ca that did not issue the card: refused before the PIN too.
        let run = tscns_with_stdin(
            &[
                "demo",
                "--reader",
                &reader,
                "--cns-ca",
                not_ca,
                "--pin-stdin",
            ],
            "",
        );
        assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("does not chain"), "{}", run.stderr);
        assert_eq!(server.handle().pin_tries_left(), 3);

        // A wrong PIN: one try used, never retried, exit 1.
        let run = tscns_with_stdin(
            &[
                "demo",
                "--reader",
                &reader,
                "--cns-ca",
                ca,
                "--pin-stdin",
                "--json",
            ],
            "99999\n",
        );
        assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert_eq!(server.handle().pin_tries_left(), 2, "{}", run.stderr);

        // The PIN typed once: the whole journey.
        let before = server.handle().counters().signatures;
        let run = tscns_with_stdin(
            &[
                "demo",
                "--reader",
                &reader,
                "--cns-ca",
                ca,
                "--pin-stdin",
                "--json",
            ],
            &format!("{}\n", profile.pin.expose()),
        );
        assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(v["card"]["source"], "pcsc");
        assert_eq!(v["card"]["reader"], reader.as_str());
        assert_eq!(v["card"]["codice_fiscale"], pd.codice_fiscale.as_str());
        assert_eq!(v["login"]["codice_fiscale"], pd.codice_fiscale.as_str());
        assert_eq!(v["login"]["tipo_autenticazione"], "CF");
        assert_eq!(v["login"]["signatures"], 1);
        assert_eq!(server.handle().counters().signatures - before, 1);
        assert_eq!(v["logout"], true);
        assert_eq!(server.handle().pin_tries_left(), 3);
        server.stop();
    }
}

/// Two demos never share a directory (they would share one store): while one runs with
/// `--serve`, a second on the same `--dir` is refused at once and says what to do.
#[test]
fn a_second_demo_on_the_same_directory_is_refused() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("tscns-demo").display().to_string();
    let mut first = Command::new(env!("CARGO_BIN_EXE_tscns"))
        .args(["demo", "--simulated", "--serve", "--dir", &d])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = first.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Ctrl-C") {
                let _ = tx.send(());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(120));
    let second = if ready.is_ok() {
        Some(tscns_with_stdin_in(&["demo", "--simulated", "--dir", &d]))
    } else {
        None
    };
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        ready.is_ok(),
        "the first demo did not reach --serve in 120 s"
    );
    let second = second.unwrap();
    assert_eq!(second.code, Some(1), "{}{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("another tscns demo is using"),
        "{}",
        second.stderr
    );
}

/// Runs `tscns` with exactly `args` (no `--dir` added).
fn tscns_with_stdin_in(args: &[&str]) -> Run {
    Tscns::new(args).run()
}
