//! The driver through the middleware a citizen has: PC/SC (pcscd) with the vpcd reader driver and
//! a tscns-sim card in reader `Virtual PCD 00 00`. Feature `system-tests` (scripts/test).
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rsa::{Pkcs1v15Sign, Pss};
use sha2::Sha256;
use tscns_apdu::pcsc::{wait_for_card, Disposition, PcscTransport};
use tscns_apdu::testing::{ReaderLock, PCSCD_HOWTO};
use tscns_card::{CnsCard, Error, HashAlg, Pin, Puk, SecretKind};
use tscns_sim::{serve_vpcd, Profile, SimCard, VpcdServer, DEFAULT_VPCD_PORT};

const PORT: u16 = DEFAULT_VPCD_PORT;

fn serve(name: &str) -> (VpcdServer, Profile, String) {
    assert!(
        std::path::Path::new("/run/pcscd/pcscd.comm").exists(),
        "{PCSCD_HOWTO}"
    );
    let profile = Profile::builtin(name).unwrap();
    let server = serve_vpcd(SimCard::new(&profile).unwrap(), PORT)
        .unwrap_or_else(|e| panic!("{e}\n{PCSCD_HOWTO}"));
    assert!(
        server.wait_ready(Duration::from_secs(10)),
        "vpcd card not ready"
    );
    let reader = server.reader_name();
    wait_for_card(&reader, true, Duration::from_secs(10)).unwrap();
    (server, profile, reader)
}

fn pin(p: &Profile) -> Pin {
    Pin::new(p.pin.expose()).unwrap()
}

#[test]
fn through_pcscd_identity_pin_lifecycle_and_signatures() {
    let _lock = ReaderLock::acquire(PORT, Duration::from_secs(180)).unwrap();
    for name in [
        "stincard-1024",
        "athena-1024",
        "idemia-v2-2048",
        "idemia2021-2048",
        "nfc-bare-2048",
    ] {
        let (server, profile, reader) = serve(name);
        let handle = server.handle();
        let key = handle.pki().card_public_key();
        // Identity: every file, cross-checks, APDUs counted by the card itself (the probe of
        // an ATR without the CNS marker included).
        handle.reset_counters();
        let mut card = CnsCard::open(PcscTransport::connect(&reader).unwrap()).unwrap();
        let id = card.identity().unwrap().clone();
        assert_eq!(id.card_id.as_str(), profile.card_id, "{name}");
        assert_eq!(id.certificate.der(), handle.pki().card_cert_der(), "{name}");
        assert_eq!(
            id.personal_data.codice_fiscale.as_deref(),
            Some(profile.personal_data.codice_fiscale.as_str())
        );
        assert_eq!(id.checks.cf_matches_certificate, Some(true));
        assert_eq!(id.checks.data_hash_matches, Some(true));
        assert_eq!(
            handle.counters().apdus,
            id.apdus,
            "{name}: APDU count reported"
        );

        // Wrong PIN counts down, then blocks.
        let wrong = Pin::new("99999").unwrap();
        for left in (1..profile.pin_tries).rev() {
            match card.verify_pin(&wrong) {
                Err(Error::WrongSecret {
                    kind: SecretKind::Pin,
                    tries_left,
                }) => {
                    assert_eq!(tries_left, Some(left), "{name}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(
            matches!(card.verify_pin(&wrong), Err(Error::Blocked { .. })),
            "{name}"
        );
        assert!(matches!(
            card.verify_pin(&pin(&profile)),
            Err(Error::Blocked { .. })
        ));
        assert_eq!(handle.pin_tries_left(), 0);

        // Unblock with the PUK, change, verify.
        let temp = Pin::new("13572468").unwrap();
        card.unblock_pin(&Puk::new(profile.puk.expose()).unwrap(), &temp)
            .unwrap();
        card.change_pin(&temp, &pin(&profile)).unwrap();
        assert!(matches!(
            card.verify_pin(&temp),
            Err(Error::WrongSecret { .. })
        ));
        card.verify_pin(&pin(&profile)).unwrap();

        // PKCS#1 v1.5 and PSS, checked by the driver and here with the rsa crate.
        let digest = HashAlg::Sha256.digest(name.as_bytes());
        let sig = card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
            .unwrap();
        let sig = card.sign_pss(HashAlg::Sha256, &digest).unwrap();
        key.verify(Pss::new_with_salt::<Sha256>(32), &digest, &sig)
            .unwrap();

        drop(card);
        server.stop();
        wait_for_card(&reader, false, Duration::from_secs(10)).unwrap();
    }
}

#[test]
fn through_pcscd_reset_and_removal_mid_operation() {
    let _lock = ReaderLock::acquire(PORT, Duration::from_secs(180)).unwrap();
    let (server, profile, reader) = serve("stincard-1024");
    let mut card = CnsCard::open(PcscTransport::connect(&reader).unwrap()).unwrap();
    card.identity().unwrap();
    card.verify_pin(&pin(&profile)).unwrap();

    // Another application resets the card: our verified PIN is gone and we are told so.
    let mut other = PcscTransport::connect(&reader).unwrap();
    other.reconnect_with(Disposition::ResetCard).unwrap();
    other.disconnect(Disposition::LeaveCard).unwrap();
    let digest = HashAlg::Sha256.digest(b"reset");
    assert!(matches!(
        card.sign_pkcs1(HashAlg::Sha256, &digest),
        Err(Error::PinStateLost)
    ));
    card.verify_pin(&pin(&profile)).unwrap();
    card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();

    // A reset during the identity read of a fresh connection is invisible to the caller.
    let mut card2 = CnsCard::open(PcscTransport::connect(&reader).unwrap()).unwrap();
    let mut other = PcscTransport::connect(&reader).unwrap();
    other.reconnect_with(Disposition::ResetCard).unwrap();
    other.disconnect(Disposition::LeaveCard).unwrap();
    assert_eq!(card2.identity().unwrap().card_id.as_str(), profile.card_id);

    // The card leaves the reader in the middle of a read.
    let mut card3 = CnsCard::open(PcscTransport::connect(&reader).unwrap()).unwrap();
    server.stop();
    wait_for_card(&reader, false, Duration::from_secs(10)).unwrap();
    let r = card3.identity().map(|_| ());
    assert!(matches!(r, Err(Error::CardRemoved)), "removal: {r:?}");
    drop((card, card2, card3));
}

#[test]
fn through_pcscd_removal_in_the_middle_of_an_identity_read() {
    let _lock = ReaderLock::acquire(PORT, Duration::from_secs(180)).unwrap();
    let (server, _profile, reader) = serve("stincard-1024");
    let mut card = CnsCard::open(PcscTransport::connect(&reader).unwrap()).unwrap();
    // The card hangs up after answering two more APDUs: the identity read (9 APDUs) is cut
    // short while a command is on its way, not between operations.
    server.handle().set_faults(tscns_sim::Faults {
        remove_after: Some(2),
        ..Default::default()
    });
    let r = card.identity().map(|_| ());
    assert!(matches!(r, Err(Error::CardRemoved)), "removal: {r:?}");
    drop(card);
    server.stop();
    wait_for_card(&reader, false, Duration::from_secs(10)).unwrap();
}
