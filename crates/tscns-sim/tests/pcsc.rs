//! The simulated card through pcscd + vpcd and `tscns-apdu`'s PC/SC backend: the same answers
//! as in-process, extended-length signing with a 2048-bit key, a reset by another application
//! and a removal seen as PC/SC reports them.
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{pkcs1_block, Plugged, READER};
use rsa::pkcs1v15::Pkcs1v15Sign;
use sha2::{Digest, Sha256};
use tscns_apdu::pcsc::{Disposition, PcscTransport};
use tscns_apdu::{Card, CardOptions, Command, StatusWord, Transport};
use tscns_sim::{Maker, SimProfile};

fn status(card: &mut Card<PcscTransport>, cmd: Command) -> StatusWord {
    card.transmit(&cmd).unwrap().status()
}

/// Reads the certificate, verifies the PIN and signs, through PC/SC.
fn read_verify_sign(profile_name: &str, options: CardOptions) {
    let plugged = Plugged::new(SimProfile::builtin(profile_name).unwrap());
    let h = plugged.handle.clone();
    let profile = &plugged.profile;
    let transport = PcscTransport::connect(READER).unwrap();
    assert_eq!(transport.atr(), profile.maker.atr());
    let mut card = Card::with_options(transport, options);

    let cert_path: &[u8] = if profile.maker == Maker::IDEMIA_2021 {
        &[0x14, 0x00, 0x90, 0x01, 0x20, 0x02]
    } else {
        &[0x11, 0x00, 0x11, 0x01]
    };
    let select = Command::new(0, 0xA4, 0x08, 0x0C).with_data(cert_path.to_vec());
    assert_eq!(status(&mut card, select), StatusWord::SUCCESS);
    let der = h.pki().card_cert_der().to_vec();
    let file = card.read_binary_all(Some(der.len())).unwrap();
    assert_eq!(file, der);

    let p2 = if profile.maker.pin_reference_needs_0x80() {
        0x90
    } else {
        0x10
    };
    let mut pin = [0xFFu8; 8];
    pin[..profile.pin.expose().len()].copy_from_slice(profile.pin.expose().as_bytes());
    let verify = Command::new(0, 0x20, 0x00, p2).with_data(pin.to_vec());
    assert_eq!(status(&mut card, verify), StatusWord::SUCCESS);
    let restore = Command::new(0, 0x22, 0xF3, 0x03).with_le(256);
    assert_eq!(status(&mut card, restore), StatusWord::SUCCESS);
    let set =
        Command::new(0, 0x22, 0xF1, 0xB6).with_data([0x83, 0x01, profile.maker.key_reference()]);
    assert_eq!(status(&mut card, set), StatusWord::SUCCESS);
    let k = profile.key_bits.bytes();
    let pso = Command::new(0, 0x2A, 0x9E, 0x9A)
        .with_data(pkcs1_block(b"over pcsc", k))
        .with_le(k);
    let r = card.transmit(&pso).unwrap();
    assert_eq!(r.status(), StatusWord::SUCCESS);
    h.pki()
        .card_public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"over pcsc"),
            r.data(),
        )
        .unwrap();
    assert_eq!(h.counters().signatures, 1);
}

#[test]
fn pcsc_reads_verifies_and_signs_on_a_cns_1_0_card() {
    read_verify_sign("athena-1024", CardOptions::default());
}

#[test]
fn pcsc_signs_with_2048_bits_by_extended_length() {
    read_verify_sign(
        "default",
        CardOptions {
            extended_length: true,
            ..CardOptions::default()
        },
    );
}

#[test]
fn pcsc_signs_with_2048_bits_by_command_chaining() {
    read_verify_sign("idemia2021-2048", CardOptions::default());
}

#[test]
fn pcsc_reports_a_reset_by_another_application_and_the_card_forgets_the_pin() {
    let plugged = Plugged::new(SimProfile::builtin("athena-1024").unwrap());
    let h = plugged.handle.clone();
    let mut ours = PcscTransport::connect(READER).unwrap();
    let verify = tscns_apdu::parse_hex("00 20 00 10 08 3234363830FFFFFF").unwrap();
    assert_eq!(ours.transmit_raw(&verify).unwrap(), [0x90, 0x00]);
    assert!(h.pin_verified());
    // Another application resets the card.
    let mut other = PcscTransport::connect(READER).unwrap();
    other.reconnect_with(Disposition::ResetCard).unwrap();
    drop(other);
    assert!(!h.pin_verified(), "the reset reached the card");
    let status_query = [0x00, 0x20, 0x00, 0x10];
    assert!(matches!(
        ours.transmit_raw(&status_query),
        Err(tscns_apdu::Error::CardReset)
    ));
    ours.reconnect().unwrap();
    assert_eq!(ours.transmit_raw(&status_query).unwrap(), [0x63, 0xC3]);
}

#[test]
fn pcsc_sees_the_card_removed_and_inserted_again() {
    let plugged = Plugged::new(SimProfile::builtin("athena-1024").unwrap());
    let h = plugged.handle.clone();
    let mut transport = PcscTransport::connect(READER).unwrap();
    let challenge = [0x00, 0x84, 0x00, 0x00, 0x08];
    assert_eq!(transport.transmit_raw(&challenge).unwrap().len(), 10);
    h.remove();
    tscns_apdu::pcsc::wait_for_card(READER, false, Duration::from_secs(10)).unwrap();
    let err = transport.transmit_raw(&challenge).unwrap_err();
    assert!(
        matches!(
            err,
            tscns_apdu::Error::CardRemoved | tscns_apdu::Error::NoCard { .. }
        ),
        "{err:?}"
    );
    h.insert();
    tscns_apdu::pcsc::wait_for_card(READER, true, Duration::from_secs(10)).unwrap();
    let mut again = PcscTransport::connect(READER).unwrap();
    assert_eq!(again.transmit_raw(&challenge).unwrap().len(), 10);
}
