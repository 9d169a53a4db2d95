//! The card generations since 2021 (`st2021`, `st2022-nfc`, `actalis-ace2025`) through the module,
//! the card in vpcd reader 1 behind pcscd: loaded in this process through `cryptoki` (`C_Login`,
//! then `C_Sign` with PKCS#1 v1.5 and PSS, verified against the card's key), and in another
//! process (OpenSC's `pkcs11-tool`) with `query_pin_tries` on, which must never send a data-less
//! VERIFY to a card whose answer to it is not confirmed (ACe 2025, ST2022): the simulator is told
//! that such a VERIFY costs a try (`[guesses] dataless_verify = "consumes"`). Feature
//! `system-tests`.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{module_in_process, module_path, run_env, Plugged, Scratch, READER};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use rsa::{Pkcs1v15Sign, Pss};
use sha2::{Digest, Sha256};
use tscns_sim::{DatalessVerify, Profile, SimHandle};

/// The card generations since 2021, each with its own built-in profile.
const NEW_PROFILES: [&str; 3] = ["st2021-2048", "st2022-nfc-2048", "actalis-ace2025-2048"];

/// `C_Login` and two `C_Sign`s through the module loaded in this process.
fn login_and_sign_in_process(name: &str, pin: &str, h: &SimHandle) {
    let (pkcs11, slot) = module_in_process();
    let slot = slot.unwrap_or_else(|| panic!("{name}: no token in {READER}"));
    let session = pkcs11.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(pin.into())))
        .unwrap_or_else(|e| panic!("{name}: C_Login: {e}"));
    let key = *session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("{name}: no private key after login"));
    let data = format!("signed by the {name} card through the module in process");
    let digest = Sha256::digest(data.as_bytes());
    let public = h.pki().card_public_key();
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, key, data.as_bytes())
        .unwrap_or_else(|e| panic!("{name}: C_Sign PKCS#1 v1.5: {e}"));
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
        .unwrap_or_else(|e| panic!("{name}: the PKCS#1 v1.5 signature: {e}"));
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32u64.into(),
    };
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcsPss(pss), key, data.as_bytes())
        .unwrap_or_else(|e| panic!("{name}: C_Sign PSS: {e}"));
    public
        .verify(Pss::new_with_salt::<Sha256>(32), &digest, &sig)
        .unwrap_or_else(|e| panic!("{name}: the PSS signature: {e}"));
    assert_eq!(h.counters().signatures, 2, "{name}: two on-card signatures");
    assert_eq!(h.pin_tries_left(), 3, "{name}");
    drop(session);
    pkcs11.finalize().unwrap();
}

#[test]
fn login_and_sign_in_process_with_each_card_generation_since_2021() {
    for name in NEW_PROFILES {
        let card = Plugged::new(name);
        let pin = card.profile.pin.expose().to_owned();
        login_and_sign_in_process(name, &pin, &card.handle);
    }
}

/// Data-less VERIFYs (`00 20 00 <ref>` with no data) in the card's log.
fn dataless_verifies(h: &SimHandle) -> usize {
    h.apdu_log()
        .iter()
        .filter(|r| r.ins == 0x20 && r.len <= 5)
        .count()
}

#[test]
fn pkcs11_tool_with_query_pin_tries_logs_in_signs_and_never_costs_a_try() {
    let module = module_path().to_string_lossy().into_owned();
    let env = [
        ("TSCNS_PKCS11_READER", READER),
        ("TSCNS_PKCS11_QUERY_PIN_TRIES", "1"),
        ("TSCNS_PKCS11_PINENTRY", ""),
    ];
    let t = Duration::from_secs(120);
    for name in NEW_PROFILES {
        let mut profile = Profile::builtin(name).unwrap();
        // ST2021 answers it as ISO says (TriesQuery::OnRequest): the module asks. For the
        // others, whose answer is not confirmed, the worst case: it is taken for a wrong PIN.
        let asks = name == "st2021-2048";
        if !asks {
            profile.guesses.dataless_verify = DatalessVerify::Consumes;
        }
        let card = Plugged::with_profile(profile);
        let h = card.handle.clone();
        let pin = card.profile.pin.expose().to_owned();
        let dir = Scratch::new(&format!("newgen-{name}"));
        let list = run_env("pkcs11-tool", &["--module", &module, "-L"], &env, t);
        assert!(list.ok(), "{name}: {}", list.all());
        assert!(
            list.stdout
                .contains(&format!("serial num         : {}", card.profile.card_id)),
            "{name}: {}",
            list.all()
        );
        assert_eq!(h.pin_tries_left(), 3, "{name}: no try lost at insertion");
        let queried = dataless_verifies(&h);
        assert_eq!(queried > 0, asks, "{name}: {:?}", h.apdu_log());
        let msg = dir.str("msg.txt");
        std::fs::write(&msg, format!("pkcs11-tool and the {name} card\n")).unwrap();
        let sig = dir.str("sig");
        let signed = run_env(
            "pkcs11-tool",
            &[
                "--module",
                &module,
                "--login",
                "--pin",
                &pin,
                "--sign",
                "-m",
                "SHA256-RSA-PKCS-PSS",
                "-i",
                &msg,
                "-o",
                &sig,
            ],
            &env,
            t,
        );
        assert!(signed.ok(), "{name}: {}", signed.all());
        h.pki()
            .card_public_key()
            .verify(
                Pss::new_with_salt::<Sha256>(32),
                &Sha256::digest(std::fs::read(&msg).unwrap()),
                &std::fs::read(&sig).unwrap(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.pin_tries_left(), 3, "{name}: no try lost");
        if !asks {
            assert_eq!(dataless_verifies(&h), 0, "{name}: {:?}", h.apdu_log());
        }
    }
}
