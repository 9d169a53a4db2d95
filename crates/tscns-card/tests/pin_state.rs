//! `query_pin_tries` (data-less VERIFY) and `reset_with` on the simulated card.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tscns_card::{CnsCard, Error, HashAlg, Pin};
use tscns_sim::{Profile, SimCard};

#[test]
fn tries_left_are_queried_without_using_one() {
    let profile = Profile::builtin("athena-1024").unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let h = sim.handle();
    let mut card = CnsCard::open(sim).unwrap();
    assert_eq!(card.query_pin_tries().unwrap(), Some(3));
    assert!(matches!(
        card.verify_pin(&Pin::new("99999").unwrap()),
        Err(Error::WrongSecret {
            tries_left: Some(2),
            ..
        })
    ));
    assert_eq!(card.query_pin_tries().unwrap(), Some(2));
    assert_eq!(h.pin_tries_left(), 2, "the query used no try");
    card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    // Verified: the card says 9000, no count.
    assert_eq!(card.query_pin_tries().unwrap(), None);
}

#[test]
fn reset_with_forgets_the_pin_and_keeps_the_identity() {
    let profile = Profile::builtin("athena-1024").unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let h = sim.handle();
    let mut card = CnsCard::open(sim).unwrap();
    card.identity().unwrap();
    card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    let digest = HashAlg::Sha256.digest(b"x");
    card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
    let h2 = h.clone();
    card.reset_with(move |_| {
        // What a PC/SC warm reset does to the card.
        h2.reset_by_other_application();
        h2.insert();
        Ok(())
    })
    .unwrap();
    assert!(!card.is_pin_verified());
    assert!(!h.pin_verified());
    let before = h.counters().apdus;
    // Signing now needs the PIN again; the identity is not read again.
    assert!(matches!(
        card.sign_pkcs1(HashAlg::Sha256, &digest),
        Err(Error::PinRequired)
    ));
    card.verify_pin(&Pin::new(profile.pin.expose()).unwrap())
        .unwrap();
    card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
    // MSE RESTORE, MSE SET, PSO refused; VERIFY; MSE RESTORE, MSE SET, PSO: no file read.
    assert_eq!(h.counters().apdus - before, 7, "no identity re-read");
}
