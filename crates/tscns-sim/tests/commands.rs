//! Every command of the simulated card and every error answer, in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::pkcs1_block;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use tscns_apdu::{parse_hex, Card, CardOptions, Command, LengthForm, Transport};
use tscns_sim::{Faults, Maker, SimCard, SimHandle, SimProfile};

fn card(name: &str) -> (SimCard, SimHandle) {
    let card = SimCard::new(&SimProfile::builtin(name).unwrap()).unwrap();
    let handle = card.handle();
    (card, handle)
}

/// Sends hex, returns (data, SW).
fn tx(card: &mut SimCard, hex: &str) -> (Vec<u8>, u16) {
    tx_raw(card, &parse_hex(hex).unwrap())
}

fn tx_raw(card: &mut SimCard, bytes: &[u8]) -> (Vec<u8>, u16) {
    let mut r = card.transmit_raw(bytes).unwrap();
    assert!(r.len() >= 2, "answer too short: {r:02X?}");
    let sw = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
    r.truncate(r.len() - 2);
    (r, sw)
}

fn sw(card: &mut SimCard, hex: &str) -> u16 {
    tx(card, hex).1
}

/// VERIFY with the PIN block for `pin`.
fn verify_hex(p2: u8, pin: &str) -> String {
    let mut block = [0xFFu8; 8];
    block[..pin.len()].copy_from_slice(pin.as_bytes());
    format!("00 20 00 {p2:02X} 08 {}", hex(&block))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn block(pin: &str) -> String {
    let mut b = [0xFFu8; 8];
    b[..pin.len()].copy_from_slice(pin.as_bytes());
    hex(&b)
}

// ---- ATR ----------------------------------------------------------------------------------------

#[test]
fn atrs_are_byte_exact_with_valid_check_bytes() {
    let expected = [
        (
            Maker::STINCARD,
            "3BFF1800FF8131FE55006B02090303010101434E53103180 9D",
        ),
        (
            Maker::ATHENA,
            "3BDF18008131FE7D006B150C0181011101434E53103180 E8",
        ),
        (
            Maker::IDEMIA_V2,
            "3BFF1800008131FE45006B05059120 01F101434E53103180 38",
        ),
        (
            Maker::IDEMIA_2021,
            "3BFF1800008131FE45006B05052000012101434E53103180 79",
        ),
        (Maker::NFC_BARE, "3B80800101"),
    ];
    for (maker, atr) in expected {
        let atr = parse_hex(atr).unwrap();
        assert_eq!(maker.atr(), atr.as_slice(), "{maker}");
        // T=1 ATRs carry TCK: XOR of T0..TCK is zero (ISO 7816-3 §8.2.5).
        let x = atr[1..].iter().fold(0u8, |a, b| a ^ b);
        assert_eq!(x, 0, "{maker} TCK");
    }
    let (c, _) = card("idemia2021-2048");
    assert_eq!(c.atr(), Maker::IDEMIA_2021.atr());
}

// ---- SELECT -------------------------------------------------------------------------------------

#[test]
fn select_by_fid_step_by_step_answers_fci_with_size() {
    let (mut c, _) = card("stincard-1024");
    let (fci, s) = tx(&mut c, "00 A4 00 00 02 3F00 00");
    assert_eq!(s, 0x9000);
    assert_eq!(fci, parse_hex("6F 07 82 01 38 83 02 3F00").unwrap());
    assert_eq!(sw(&mut c, "00 A4 00 00 02 1000 00"), 0x9000);
    let (fci, s) = tx(&mut c, "00 A4 00 00 02 1003 00");
    assert_eq!(s, 0x9000);
    assert_eq!(
        fci,
        parse_hex("6F 0B 80 02 0010 82 01 01 83 02 1003").unwrap()
    );
    // Sibling of the current EF's DF, then the parent, then the MF again.
    assert_eq!(sw(&mut c, "00 A4 00 00 02 1002 00"), 0x9000);
    assert_eq!(sw(&mut c, "00 A4 00 00 02 1100 00"), 0x9000);
    assert_eq!(sw(&mut c, "00 A4 00 00 02 1102 00"), 0x9000);
    // Empty data selects the MF.
    let (fci, s) = tx(&mut c, "00 A4 00 00 00");
    assert_eq!((fci[0], s), (0x6F, 0x9000));
    // Not reachable from the MF by FID: a grandchild.
    assert_eq!(sw(&mut c, "00 A4 00 00 02 1101 00"), 0x6A82);
}

#[test]
fn select_variants_and_their_errors() {
    let (mut c, _) = card("athena-1024");
    // By path from the MF (without 3F00), FCP template, no answer data.
    let (fcp, s) = tx(&mut c, "00 A4 08 04 04 1100 1102 00");
    assert_eq!((fcp[0], s), (0x62, 0x9000));
    assert_eq!(&fcp[2..6], &[0x80, 0x02, 0x01, 0x90]); // 400 bytes allocated
    let (none, s) = tx(&mut c, "00 A4 08 0C 04 1000 1003");
    assert_eq!((none.len(), s), (0, 0x9000));
    // Path from the current DF (1000).
    assert_eq!(sw(&mut c, "00 A4 09 0C 02 1002"), 0x9000);
    // Child DF / child EF / parent.
    assert_eq!(sw(&mut c, "00 A4 00 0C 02 3F00"), 0x9000);
    assert_eq!(sw(&mut c, "00 A4 01 0C 02 1100"), 0x9000);
    assert_eq!(sw(&mut c, "00 A4 02 0C 02 1101"), 0x9000);
    assert_eq!(sw(&mut c, "00 A4 01 0C 02 1102"), 0x6A82); // an EF is not a DF
    assert_eq!(sw(&mut c, "00 A4 03 0C"), 0x9000);
    assert_eq!(sw(&mut c, "00 A4 03 0C"), 0x6A82); // the MF has no parent
                                                   // By name: no applications.
    assert_eq!(sw(&mut c, "00 A4 04 00 07 A0000000030000 00"), 0x6A82);
    // Errors.
    assert_eq!(sw(&mut c, "00 A4 08 00 04 1100 9999 00"), 0x6A82);
    assert_eq!(sw(&mut c, "00 A4 08 00 03 110011 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 A4 00 00 03 3F0000 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 A4 01 00 01 11 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 A4 03 00 02 1100"), 0x6700);
    assert_eq!(sw(&mut c, "00 A4 04 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 A4 07 00 02 1100 00"), 0x6A86);
    assert_eq!(sw(&mut c, "00 A4 00 08 02 1100 00"), 0x6A86);
    // A path through an EF does not exist.
    assert_eq!(sw(&mut c, "00 A4 08 00 06 1000 1003 1003 00"), 0x6A82);
    // Short Le: FCI cut with 6282.
    let (fci, s) = tx(&mut c, "00 A4 08 00 04 1000 1003 04");
    assert_eq!((fci.len(), s), (4, 0x6282));
}

#[test]
fn idemia2021_has_its_own_certificate_path_and_no_ef_c_carta() {
    let (mut c, h) = card("idemia2021-2048");
    assert_eq!(sw(&mut c, "00 A4 08 0C 04 1100 1101"), 0x6A82);
    assert_eq!(sw(&mut c, "00 A4 08 0C 06 1400 9001 2002"), 0x9000);
    let (data, s) = tx(&mut c, "00 B0 00 00 00 08 00");
    assert_eq!(s, 0x9000);
    let der = h.pki().card_cert_der();
    assert_eq!(data.len(), 2048);
    assert_eq!(&data[..der.len()], der);
    // The key file is there but unreadable.
    assert_eq!(sw(&mut c, "00 A4 08 0C 04 1400 9002"), 0x9000);
    assert_eq!(sw(&mut c, "00 B0 00 00 10"), 0x6982);
}

// ---- READ BINARY --------------------------------------------------------------------------------

#[test]
fn read_binary_on_a_cns_1_0_card() {
    let (mut c, h) = card("stincard-1024");
    // No EF selected.
    assert_eq!(sw(&mut c, "00 B0 00 00 10"), 0x6986);
    assert_eq!(sw(&mut c, "00 A4 08 0C 04 1000 1003"), 0x9000);
    let (data, s) = tx(&mut c, "00 B0 00 00 10");
    assert_eq!((data.as_slice(), s), (&b"6120000000000002"[..], 0x9000));
    // Le beyond the end: what there is, then 6282.
    let (data, s) = tx(&mut c, "00 B0 00 0A 20");
    assert_eq!((data.as_slice(), s), (&b"000002"[..], 0x6282));
    // Offset at or beyond the end.
    assert_eq!(sw(&mut c, "00 B0 00 10 01"), 0x6B00);
    assert_eq!(sw(&mut c, "00 B0 01 00 01"), 0x6B00);
    // Le = 256 (00) is more than 0xFF: 6Cxx with what can be read.
    assert_eq!(sw(&mut c, "00 B0 00 00 00"), 0x6C10);
    // Extended length is not supported by CNS 1.0 cards.
    assert_eq!(sw(&mut c, "00 B0 00 00 00 01 00"), 0x6700);
    // No Le, data, short EF identifier.
    assert_eq!(sw(&mut c, "00 B0 00 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 B0 00 00 01 00 10"), 0x6700);
    assert_eq!(sw(&mut c, "00 B0 83 00 10"), 0x6A86);
    // The certificate file: 2048 bytes allocated, DER first, then zero padding.
    assert_eq!(sw(&mut c, "00 A4 08 0C 04 1100 1101"), 0x9000);
    assert_eq!(sw(&mut c, "00 B0 00 00 00"), 0x6CFF);
    let mut apdu_card = Card::new(&mut c);
    let file = apdu_card.read_binary_all(None).unwrap();
    let der = h.pki().card_cert_der();
    assert_eq!(file.len(), 2048);
    assert_eq!(&file[..der.len()], der);
    assert!(file[der.len()..].iter().all(|b| *b == 0));
    // A DF cannot be read.
    assert_eq!(sw(&mut c, "00 A4 00 0C 02 3F00"), 0x9000);
    assert_eq!(sw(&mut c, "00 B0 00 00 10"), 0x6986);
}

#[test]
fn read_binary_with_extended_length_on_a_cns_1_1_card() {
    let (mut c, h) = card("idemia-v2-2048");
    assert_eq!(sw(&mut c, "00 A4 08 0C 04 1100 1101"), 0x9000);
    let (data, s) = tx(&mut c, "00 B0 00 00 00 08 00");
    assert_eq!((data.len(), s), (2048, 0x9000));
    assert_eq!(
        &data[..h.pki().card_cert_der().len()],
        h.pki().card_cert_der()
    );
    let (data, s) = tx(&mut c, "00 B0 00 00 00"); // short Le 256 is fine here
    assert_eq!((data.len(), s), (256, 0x9000));
    let (data, s) = tx(&mut c, "00 B0 07 00 00 01 00");
    assert_eq!((data.len(), s), (256, 0x9000));
    let (data, s) = tx(&mut c, "00 B0 07 00 00 02 00");
    assert_eq!((data.len(), s), (256, 0x6282));
    let (data, s) = tx(&mut c, "00 B0 07 F0 00 02 00");
    assert_eq!((data.len(), s), (16, 0x6282));
}

#[test]
fn personal_data_file_holds_the_profile_encoding() {
    let profile = SimProfile::builtin("athena-1024").unwrap();
    let mut c = SimCard::new(&profile).unwrap();
    assert_eq!(sw(&mut c, "00 A4 08 0C 04 1100 1102"), 0x9000);
    let mut file = Vec::new();
    for off in [0u16, 0xFF] {
        let (d, _) = tx(&mut c, &format!("00 B0 {:04X} FF", off));
        file.extend(d);
    }
    let expected = tscns_sim::personal::encode(&profile.personal_data);
    assert_eq!(&file[..expected.len()], expected.as_slice());
    let text = String::from_utf8(expected).unwrap();
    assert!(text.contains("07BIANCHI05LAURA081208197501F"), "{text}");
    // The certificate CN carries the base64 SHA-1 of exactly these bytes.
    let cn_hash = tscns_sim::cn_hash(text.as_bytes());
    let pem = c.pki().card_cert_pem().to_owned();
    let der = c.pki().card_cert_der();
    assert!(
        der.windows(cn_hash.len()).any(|w| w == cn_hash.as_bytes()),
        "{pem}"
    );
    assert!(der.windows(16).any(|w| w == b"BNCLRA75M52B202U"));
}

// ---- PIN ----------------------------------------------------------------------------------------

#[test]
fn verify_counts_down_blocks_and_resets_on_success() {
    let (mut c, h) = card("athena-1024"); // PIN 24680, plain reference 0x10
    assert_eq!(sw(&mut c, "00 20 00 10"), 0x63C3); // tries left, nothing consumed
    assert_eq!(sw(&mut c, &verify_hex(0x10, "11111")), 0x63C2);
    assert_eq!(h.pin_tries_left(), 2);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "24680")), 0x9000);
    assert_eq!(h.pin_tries_left(), 3);
    assert!(h.pin_verified());
    assert_eq!(sw(&mut c, "00 20 00 10"), 0x9000);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "11111")), 0x63C2);
    assert!(!h.pin_verified());
    assert_eq!(sw(&mut c, &verify_hex(0x10, "11111")), 0x63C1);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "11111")), 0x63C0);
    assert_eq!(h.pin_tries_left(), 0);
    // Blocked: even the right PIN is refused.
    assert_eq!(sw(&mut c, &verify_hex(0x10, "24680")), 0x6983);
    assert_eq!(sw(&mut c, "00 20 00 10"), 0x6983);
}

#[test]
fn verify_errors_and_the_stincard_reference_bit() {
    let (mut c, h) = card("stincard-1024"); // PIN 12345678, reference 0x90
    assert_eq!(sw(&mut c, &verify_hex(0x10, "12345678")), 0x6A88);
    assert_eq!(h.pin_tries_left(), 3);
    assert_eq!(sw(&mut c, &verify_hex(0x90, "12345678")), 0x9000);
    assert_eq!(sw(&mut c, &verify_hex(0x91, "87654321")), 0x9000); // PUK
    assert_eq!(sw(&mut c, &verify_hex(0x92, "12345678")), 0x6A88);
    assert_eq!(sw(&mut c, "00 20 01 90 08 3132333435363738"), 0x6A86);
    assert_eq!(sw(&mut c, "00 20 00 90 05 3132333435"), 0x6700);
    assert_eq!(sw(&mut c, "00 20 00 90 08 3132333435363738 00"), 0x6700);
    let (mut a, _) = card("athena-1024");
    assert_eq!(sw(&mut a, &verify_hex(0x90, "24680")), 0x6A88);
}

#[test]
fn change_reference_data() {
    let (mut c, h) = card("athena-1024");
    let change = |old: &str, new: &str| format!("00 24 00 10 10 {}{}", block(old), block(new));
    assert_eq!(sw(&mut c, &change("24680", "1234")), 0x6A80); // too short
    assert_eq!(sw(&mut c, &change("24680", "12a45")), 0x6A80);
    assert_eq!(sw(&mut c, &change("99999", "55555")), 0x63C2);
    assert_eq!(sw(&mut c, &change("24680", "55555")), 0x9000);
    assert_eq!(h.pin_tries_left(), 3);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "24680")), 0x63C2);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "55555")), 0x9000);
    // New value only, after VERIFY in this session.
    assert_eq!(
        sw(&mut c, &format!("00 24 01 10 08 {}", block("66666"))),
        0x9000
    );
    c.handle().reset_by_other_application();
    c.reconnect().unwrap();
    assert_eq!(
        sw(&mut c, &format!("00 24 01 10 08 {}", block("77777"))),
        0x6982
    );
    // Errors.
    assert_eq!(
        sw(&mut c, &format!("00 24 00 10 08 {}", block("66666"))),
        0x6700
    );
    assert_eq!(
        sw(&mut c, &format!("00 24 02 10 08 {}", block("66666"))),
        0x6A86
    );
    assert_eq!(
        sw(
            &mut c,
            &format!("00 24 00 12 10 {}{}", block("66666"), block("77777"))
        ),
        0x6A88
    );
    // The PUK can be changed too.
    assert_eq!(
        sw(
            &mut c,
            &format!("00 24 00 11 10 {}{}", block("13579135"), block("24682468"))
        ),
        0x9000
    );
    assert_eq!(sw(&mut c, &verify_hex(0x11, "24682468")), 0x9000);
    // A blocked PIN cannot be changed.
    for _ in 0..3 {
        sw(&mut c, &verify_hex(0x10, "00000"));
    }
    assert_eq!(sw(&mut c, &change("66666", "88888")), 0x6983);
}

#[test]
fn reset_retry_counter_unblocks_with_the_puk() {
    let (mut c, h) = card("stincard-1024"); // PIN 12345678, PUK 87654321, refs 0x90/0x91
    for _ in 0..3 {
        sw(&mut c, &verify_hex(0x90, "00000"));
    }
    assert_eq!(h.pin_tries_left(), 0);
    // Wrong PUK counts down the PUK.
    let rrc = |puk: &str, pin: &str| format!("00 2C 00 90 10 {}{}", block(puk), block(pin));
    assert_eq!(sw(&mut c, &rrc("11111111", "24681357")), 0x63C9);
    assert_eq!(h.puk_tries_left(), 9);
    assert_eq!(sw(&mut c, &rrc("87654321", "123")), 0x6A80);
    assert_eq!(sw(&mut c, &rrc("87654321", "24681357")), 0x9000);
    assert_eq!((h.pin_tries_left(), h.puk_tries_left()), (3, 10));
    assert_eq!(sw(&mut c, &verify_hex(0x90, "24681357")), 0x9000);
    // P1 01: PUK only, counter reset, PIN kept.
    sw(&mut c, &verify_hex(0x90, "00000"));
    assert_eq!(
        sw(&mut c, &format!("00 2C 01 90 08 {}", block("87654321"))),
        0x9000
    );
    assert_eq!(h.pin_tries_left(), 3);
    // P1 02 / 03 need the PUK verified first.
    assert_eq!(
        sw(&mut c, &format!("00 2C 02 90 08 {}", block("55555"))),
        0x6982
    );
    assert_eq!(sw(&mut c, "00 2C 03 90"), 0x6982);
    assert_eq!(sw(&mut c, &verify_hex(0x91, "87654321")), 0x9000);
    assert_eq!(
        sw(&mut c, &format!("00 2C 02 90 08 {}", block("55555"))),
        0x9000
    );
    assert_eq!(sw(&mut c, "00 2C 03 90"), 0x9000);
    assert_eq!(sw(&mut c, &verify_hex(0x90, "55555")), 0x9000);
    // Errors.
    assert_eq!(
        sw(&mut c, "00 2C 00 91 10 3131313131313131 3131313131313131"),
        0x6A86
    );
    assert_eq!(
        sw(&mut c, "00 2C 00 10 10 3131313131313131 3131313131313131"),
        0x6A88
    );
    assert_eq!(sw(&mut c, "00 2C 00 90 08 3131313131313131"), 0x6700);
    assert_eq!(sw(&mut c, "00 2C 04 90"), 0x6A86);
    assert_eq!(sw(&mut c, "00 2C 03 90 00"), 0x6700);
    // A blocked PUK ends it.
    for _ in 0..10 {
        sw(&mut c, &rrc("00000000", "24681357"));
    }
    assert_eq!(h.puk_tries_left(), 0);
    assert_eq!(sw(&mut c, &rrc("87654321", "24681357")), 0x6983);
    assert_eq!(
        sw(&mut c, &format!("00 2C 02 90 08 {}", block("55555"))),
        0x6983
    );
}

// ---- MSE / PSO ----------------------------------------------------------------------------------

#[test]
fn signing_needs_mse_and_the_pin_and_verifies() {
    let (mut c, h) = card("athena-1024");
    let public = h.pki().card_public_key();
    let k = public.size();
    assert_eq!(k, 128);
    let block_hex = hex(&pkcs1_block(b"hello", k));
    let pso = format!("00 2A 9E 9A 80 {block_hex} 80");
    // No MSE SET yet.
    assert_eq!(sw(&mut c, &pso), 0x6985);
    assert_eq!(sw(&mut c, "00 22 F3 03 00"), 0x9000);
    assert_eq!(sw(&mut c, "00 22 F1 B6 03 830101"), 0x9000);
    // No PIN yet.
    assert_eq!(sw(&mut c, &pso), 0x6982);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "24680")), 0x9000);
    let (sig, s) = tx(&mut c, &pso);
    assert_eq!((sig.len(), s), (128, 0x9000));
    public
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"hello"),
            &sig,
        )
        .unwrap();
    assert_eq!(h.counters().signatures, 1);
    // Errors: wrong block size, block >= modulus, Le too small, unknown P1/P2.
    assert_eq!(
        sw(&mut c, &format!("00 2A 9E 9A 7F {} 00", &block_hex[2..])),
        0x6700
    );
    assert_eq!(
        sw(&mut c, &format!("00 2A 9E 9A 80 {} 00", "FF".repeat(128))),
        0x6A80
    );
    assert_eq!(
        sw(&mut c, &format!("00 2A 9E 9A 80 {block_hex} 40")),
        0x6700
    );
    assert_eq!(
        sw(&mut c, &format!("00 2A 9E 9B 80 {block_hex} 00")),
        0x6A86
    );
    // A reset loses PIN and environment.
    h.reset_by_other_application();
    assert!(matches!(
        c.transmit_raw(&parse_hex(&pso).unwrap()),
        Err(tscns_apdu::Error::CardReset)
    ));
    c.reconnect().unwrap();
    assert_eq!(sw(&mut c, &pso), 0x6985);
    assert_eq!(sw(&mut c, "00 22 F1 B6 03 830101"), 0x9000);
    assert_eq!(sw(&mut c, &pso), 0x6982);
    assert_eq!(h.counters().signatures, 1);
}

#[test]
fn mse_errors() {
    let (mut c, _) = card("athena-1024");
    assert_eq!(sw(&mut c, "00 22 F3 03"), 0x6700); // the CNS wants the trailing 00
    assert_eq!(sw(&mut c, "00 22 F3 01 00"), 0x6A88);
    assert_eq!(sw(&mut c, "00 22 F3 03 01 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 22 F1 B6 03 830102"), 0x6A88); // key 02 is the IDEMIA 2021 one
    assert_eq!(sw(&mut c, "00 22 F1 B6 03 800101"), 0x6A80);
    assert_eq!(sw(&mut c, "00 22 F1 B6"), 0x6700);
    assert_eq!(sw(&mut c, "00 22 F1 B6 03 830101 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 22 41 B6 03 830101"), 0x6A86);
    assert_eq!(sw(&mut c, "00 22 F1 A4 03 830101"), 0x6A86);
    let (mut i, _) = card("idemia2021-2048");
    assert_eq!(sw(&mut i, "00 22 F1 B6 03 830101"), 0x6A88);
    assert_eq!(sw(&mut i, "00 22 F1 B6 03 830102"), 0x9000);
}

#[test]
fn decipher_path_does_raw_rsa_too() {
    let (mut c, h) = card("athena-1024");
    let public = h.pki().card_public_key();
    let block = pkcs1_block(b"mocca", 128);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "24680")), 0x9000);
    let pso = format!("00 2A 80 86 81 00{} 00", hex(&block));
    assert_eq!(sw(&mut c, &pso), 0x6985);
    assert_eq!(sw(&mut c, "00 22 F1 B8 03 830101"), 0x9000);
    let (sig, s) = tx(&mut c, &pso);
    assert_eq!(s, 0x9000);
    public
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"mocca"),
            &sig,
        )
        .unwrap();
    assert_eq!(
        sw(&mut c, &format!("00 2A 80 86 81 01{} 00", hex(&block))),
        0x6A80
    );
    assert_eq!(sw(&mut c, "00 2A 80 86 00 00 00"), 0x6700);
}

#[test]
fn rsa_2048_through_extended_length_and_through_chaining() {
    let (mut c, h) = card("idemia2021-2048");
    let public = h.pki().card_public_key();
    let block = pkcs1_block(b"two thousand", 256);
    assert_eq!(sw(&mut c, &verify_hex(0x10, "86420864")), 0x9000);
    assert_eq!(sw(&mut c, "00 22 F3 03 00"), 0x9000);
    assert_eq!(sw(&mut c, "00 22 F1 B6 03 830102"), 0x9000);
    let ext = Command::new(0, 0x2A, 0x9E, 0x9A)
        .with_data(block.clone())
        .with_le(256);
    assert!(ext.is_extended());
    let (sig, s) = tx_raw(&mut c, &ext.encode().unwrap());
    assert_eq!(s, 0x9000);
    public
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"two thousand"),
            &sig,
        )
        .unwrap();
    // Chained: 10 2A ... first 200 bytes, then 00 2A ... the rest.
    let first = format!("10 2A 9E 9A C8 {}", hex(&block[..200]));
    assert_eq!(sw(&mut c, &first), 0x9000);
    let (sig2, s) = tx(&mut c, &format!("00 2A 9E 9A 38 {} 00", hex(&block[200..])));
    assert_eq!((s, &sig2), (0x9000, &sig));
    assert_eq!(h.counters().signatures, 2);
    // The response loop of tscns-apdu can chain by itself when told the card lacks extended length.
    let mut apdu_card = Card::with_options(
        &mut c,
        CardOptions {
            extended_length: false,
            ..CardOptions::default()
        },
    );
    let cmd = Command::new(0, 0x2A, 0x9E, 0x9A)
        .with_data(block)
        .with_le(256);
    let r = apdu_card.transmit(&cmd).unwrap();
    assert_eq!(r.data(), sig.as_slice());
    // A chain abandoned by another command is forgotten.
    assert_eq!(sw(&mut c, &first), 0x9000);
    assert_eq!(sw(&mut c, "00 84 00 00 08"), 0x9000);
    assert_eq!(
        sw(&mut c, &format!("00 2A 9E 9A 38 {} 00", hex(&[1u8; 56]))),
        0x6700
    );
}

#[test]
fn chaining_and_extended_length_where_unsupported() {
    let (mut c, _) = card("athena-1024");
    assert_eq!(sw(&mut c, "10 2A 9E 9A 02 0102"), 0x6884);
    let (mut v2, _) = card("idemia-v2-2048");
    assert_eq!(sw(&mut v2, "10 2A 9E 9A 02 0102"), 0x6884);
    let (mut i, _) = card("idemia2021-2048");
    assert_eq!(sw(&mut i, "10 B0 00 00 02"), 0x6884);
    let big = Command::new(0, 0x84, 0, 0)
        .with_le(8)
        .with_length_form(LengthForm::Extended);
    assert_eq!(sw(&mut c, &hex(&big.encode().unwrap())), 0x6700);
}

// ---- GET CHALLENGE and the rest ----------------------------------------------------------------

#[test]
fn get_challenge_is_deterministic_and_bounded() {
    let (mut a, _) = card("athena-1024");
    let (mut b, _) = card("athena-1024");
    let (r1, s) = tx(&mut a, "00 84 00 00 08");
    assert_eq!((r1.len(), s), (8, 0x9000));
    assert_eq!(tx(&mut b, "00 84 00 00 08").0, r1);
    assert_ne!(tx(&mut a, "00 84 00 00 08").0, r1);
    assert_eq!(tx(&mut a, "00 84 00 00 00").0.len(), 256);
    assert_eq!(sw(&mut a, "00 84 00 01 08"), 0x6A86);
    assert_eq!(sw(&mut a, "00 84 00 00"), 0x6700);
    assert_eq!(sw(&mut a, "00 84 00 00 01 00 08"), 0x6700);
    let (mut i, _) = card("idemia2021-2048");
    assert_eq!(tx(&mut i, "00 84 00 00 20").0.len(), 32);
    assert_eq!(sw(&mut i, "00 84 00 00 21"), 0x6700);
}

#[test]
fn unknown_instructions_classes_and_malformed_apdus() {
    let (mut c, _) = card("athena-1024");
    assert_eq!(sw(&mut c, "00 CA 01 00 00"), 0x6D00);
    assert_eq!(sw(&mut c, "00 70 00 00 01"), 0x6D00);
    assert_eq!(sw(&mut c, "80 CA 9F 7F 00"), 0x6E00);
    assert_eq!(sw(&mut c, "0C A4 00 00 02 3F00"), 0x6E00);
    assert_eq!(sw(&mut c, "01 A4 00 00 02 3F00"), 0x6E00);
    assert_eq!(sw(&mut c, "00 C0 00 00 10"), 0x6985);
    // Malformed length fields.
    assert_eq!(sw(&mut c, "00 A4 00"), 0x6700);
    assert_eq!(sw(&mut c, "00 A4 00 00 05 3F00"), 0x6700);
    assert_eq!(sw(&mut c, ""), 0x6700);
}

#[test]
fn opensc_style_session_on_every_maker() {
    // What OpenSC's itacns driver sends, per maker: select by path, read, verify, MSE, PSO.
    for name in [
        "stincard-1024",
        "athena-1024",
        "idemia-v2-1024",
        "nfc-bare-2048",
    ] {
        let profile = SimProfile::builtin(name).unwrap();
        let mut c = SimCard::new(&profile).unwrap();
        let h = c.handle();
        assert_eq!(sw(&mut c, "00 A4 08 00 04 1000 1003 00"), 0x9000, "{name}");
        assert_eq!(
            tx(&mut c, "00 B0 00 00 10").0,
            profile.card_id.as_bytes(),
            "{name}"
        );
        assert_eq!(sw(&mut c, "00 A4 08 00 04 1100 1101 00"), 0x9000, "{name}");
        let p2 = if profile.maker == Maker::STINCARD {
            0x90
        } else {
            0x10
        };
        assert_eq!(
            sw(&mut c, &verify_hex(p2, profile.pin.expose())),
            0x9000,
            "{name}"
        );
        assert_eq!(sw(&mut c, "00 22 F3 03 00"), 0x9000, "{name}");
        assert_eq!(sw(&mut c, "00 22 F1 B6 03 830101"), 0x9000, "{name}");
        let k = profile.key_bits.bytes();
        let cmd = Command::new(0, 0x2A, 0x9E, 0x9A)
            .with_data(pkcs1_block(b"x", k))
            .with_le(k);
        let (sig, s) = tx_raw(&mut c, &cmd.encode().unwrap());
        assert_eq!(s, 0x9000, "{name}");
        h.pki()
            .card_public_key()
            .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(b"x"), &sig)
            .unwrap();
    }
}

// ---- counters, log, faults ---------------------------------------------------------------------

#[test]
fn counters_and_log_record_headers_only() {
    let (mut c, h) = card("athena-1024");
    sw(&mut c, "00 A4 00 0C 02 3F00");
    sw(&mut c, &verify_hex(0x10, "99999"));
    let n = h.counters();
    assert_eq!(
        (n.apdus, n.bytes_received, n.bytes_sent, n.signatures),
        (2, 7 + 13, 4, 0)
    );
    let log = h.apdu_log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].ins, log[1].p2, log[1].len, log[1].sw),
        (0x20, 0x10, 13, 0x63C2)
    );
    h.reset_counters();
    assert_eq!(h.counters(), Default::default());
    assert!(h.apdu_log().is_empty());
    // Debug output of profile and card never shows the PIN.
    let p = SimProfile::builtin("athena-1024").unwrap();
    assert!(!format!("{p:?}").contains("24680"));
}

#[test]
fn removal_fault_and_reinsertion() {
    let (mut c, h) = card("athena-1024");
    h.set_faults(Faults {
        remove_after: Some(2),
        ..Faults::none()
    });
    sw(&mut c, &verify_hex(0x10, "24680"));
    sw(&mut c, "00 84 00 00 08");
    assert!(matches!(
        c.transmit_raw(&[0, 0x84, 0, 0, 8]),
        Err(tscns_apdu::Error::CardRemoved)
    ));
    assert!(h.is_removed());
    assert!(matches!(c.reconnect(), Err(tscns_apdu::Error::CardRemoved)));
    h.insert();
    c.reconnect().unwrap();
    assert!(
        !h.pin_verified(),
        "a reinserted card starts without a verified PIN"
    );
    assert_eq!(sw(&mut c, "00 84 00 00 08"), 0x9000);
    h.remove();
    assert!(matches!(
        c.transmit_raw(&[0, 0x84, 0, 0, 8]),
        Err(tscns_apdu::Error::CardRemoved)
    ));
}

#[test]
fn reset_fault_fires_once_and_needs_reconnect() {
    let (mut c, h) = card("athena-1024");
    h.set_faults(Faults {
        reset_after: Some(1),
        ..Faults::none()
    });
    sw(&mut c, &verify_hex(0x10, "24680"));
    assert!(h.pin_verified());
    assert!(matches!(
        c.transmit_raw(&[0, 0x84, 0, 0, 8]),
        Err(tscns_apdu::Error::CardReset)
    ));
    assert!(matches!(
        c.transmit_raw(&[0, 0x84, 0, 0, 8]),
        Err(tscns_apdu::Error::CardReset)
    ));
    assert!(!h.pin_verified());
    c.reconnect().unwrap();
    assert_eq!(sw(&mut c, "00 84 00 00 08"), 0x9000);
    assert_eq!(sw(&mut c, "00 20 00 10"), 0x63C3);
}

#[test]
fn corrupt_and_truncate_faults_hit_one_answer() {
    let (mut c, h) = card("athena-1024");
    h.set_faults(Faults {
        corrupt_after: Some(1),
        truncate_after: Some(2),
        ..Faults::none()
    });
    assert_eq!(
        c.transmit_raw(&parse_hex("00 A4 00 0C 02 3F00").unwrap())
            .unwrap(),
        [0x90, 0x00]
    );
    assert_eq!(
        c.transmit_raw(&parse_hex("00 A4 00 0C 02 3F00").unwrap())
            .unwrap(),
        [0x6F, 0x00]
    );
    assert_eq!(
        c.transmit_raw(&parse_hex("00 A4 00 0C 02 3F00").unwrap())
            .unwrap(),
        [0x90]
    );
    assert_eq!(
        c.transmit_raw(&parse_hex("00 A4 00 0C 02 3F00").unwrap())
            .unwrap(),
        [0x90, 0x00]
    );
}

#[test]
fn mute_card_times_out_within_its_bound() {
    let (mut c, h) = card("athena-1024");
    h.set_faults(Faults {
        mute_after: Some(0),
        mute_timeout: Duration::from_millis(50),
        ..Faults::none()
    });
    let t = Instant::now();
    assert!(matches!(
        c.transmit_raw(&[0, 0x84, 0, 0, 8]),
        Err(tscns_apdu::Error::Timeout)
    ));
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(h.counters().apdus, 0);
    h.set_faults(Faults::none());
    assert_eq!(sw(&mut c, "00 84 00 00 08"), 0x9000);
}

#[test]
fn latency_is_fixed_plus_per_byte() {
    let (mut c, h) = card("athena-1024");
    h.set_faults(Faults {
        latency: Duration::from_millis(20),
        bit_rate: Some(9600),
        ..Faults::none()
    });
    // 5 bytes out, 258 back: 263 * 8 / 9600 s = 219 ms, plus 20 ms.
    let t = Instant::now();
    assert_eq!(tx(&mut c, "00 84 00 00 00").0.len(), 256);
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(239), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn faults_from_the_profile() {
    let toml = format!(
        "{}\n[faults]\nremove_after = 1\n",
        tscns_sim::BUILTIN_PROFILES
            .iter()
            .find(|(n, _)| *n == "athena-1024")
            .unwrap()
            .1
    );
    let profile = SimProfile::from_toml(&toml).unwrap();
    assert_eq!(profile.faults.remove_after, Some(1));
    let mut c = SimCard::new(&profile).unwrap();
    assert_eq!(sw(&mut c, "00 84 00 00 08"), 0x9000);
    assert!(matches!(
        c.transmit_raw(&[0, 0x84, 0, 0, 8]),
        Err(tscns_apdu::Error::CardRemoved)
    ));
}
