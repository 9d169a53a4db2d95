//! Through the real middleware: this crate's PC/SC backend -> pcscd -> vpcd -> a minimal card
//! written here. Needs a running pcscd with the vpcd driver (scripts/test starts one).
#![cfg(feature = "system-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tscns_apdu::pcsc::{list_readers, wait_for_card, Disposition, PcscTransport};
use tscns_apdu::testing::{
    atr_with_historical_bytes, ReaderLock, VpcdCard, PCSCD_HOWTO, VPCD_PORT_0, VPCD_READER_0,
};
use tscns_apdu::{Card, Command, Error, StatusWord, Transport};

const WAIT: Duration = Duration::from_secs(15);

/// Fails (never skips) with a how-to message when pcscd is missing.
fn require_pcscd() {
    match list_readers() {
        Ok(readers) => assert!(
            readers.iter().any(|r| r.name == VPCD_READER_0),
            "reader {VPCD_READER_0:?} missing from {readers:?}: {PCSCD_HOWTO}"
        ),
        Err(Error::NoService) => panic!("{PCSCD_HOWTO}"),
        Err(e) => panic!("PC/SC failed: {e}. {PCSCD_HOWTO}"),
    }
}

/// A 300-byte transparent file read by READ BINARY.
fn file_byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}
const FILE_LEN: usize = 300;

/// The test card: a little state machine exercising each path of the response loop.
fn respond(apdu: &[u8], log: &Mutex<Vec<Vec<u8>>>) -> Vec<u8> {
    log.lock().unwrap().push(apdu.to_vec());
    match apdu {
        // GET DATA: 16 bytes, answers 6C10 to any other Le (the 6Cxx path).
        [0x00, 0xCA, 0x01, 0x00, le] => {
            if *le == 0x10 {
                let mut r: Vec<u8> = (0..16).collect();
                r.extend_from_slice(&[0x90, 0x00]);
                r
            } else {
                vec![0x6C, 0x10]
            }
        }
        // A proprietary command whose answer comes through GET RESPONSE (the 61xx path).
        [0x80, 0x10, 0x00, 0x00, 0x00] => vec![0xA0, 0x61, 0x20],
        [0x00, 0xC0, 0x00, 0x00, 0x20] => {
            let mut r = vec![0xA1; 0x20];
            r.extend_from_slice(&[0x90, 0x00]);
            r
        }
        // READ BINARY of a 300-byte file: 6282 when fewer bytes remain, 6B00 past the end.
        [0x00, 0xB0, p1, p2, le] => {
            let offset = usize::from(u16::from_be_bytes([*p1, *p2]));
            let le = if *le == 0 { 256 } else { usize::from(*le) };
            if offset >= FILE_LEN {
                return vec![0x6B, 0x00];
            }
            let end = (offset + le).min(FILE_LEN);
            let mut r: Vec<u8> = (offset..end).map(file_byte).collect();
            if end - offset < le {
                r.extend_from_slice(&[0x62, 0x82]);
            } else {
                r.extend_from_slice(&[0x90, 0x00]);
            }
            r
        }
        [0x00, 0xA4, ..] => vec![0x90, 0x00],
        // PUT DATA, accepted in chained parts (CLA 10) and as the last part (CLA 00).
        [0x00 | 0x10, 0xDA, ..] => vec![0x90, 0x00],
        _ => vec![0x6D, 0x00],
    }
}

/// Fields drop in order: the card leaves the reader before the lock is released.
struct Setup {
    card: VpcdCard,
    log: Arc<Mutex<Vec<Vec<u8>>>>,
    atr: Vec<u8>,
    _lock: ReaderLock,
}

fn insert_card(historical: &[u8]) -> Setup {
    require_pcscd();
    let lock = ReaderLock::acquire(VPCD_PORT_0, Duration::from_secs(300)).unwrap();
    // The previous user's card may still be listed until pcscd polls vpcd: wait for an empty
    // reader first.
    wait_for_card(VPCD_READER_0, false, WAIT)
        .unwrap_or_else(|e| panic!("{VPCD_READER_0} did not become empty: {e}"));
    let atr = atr_with_historical_bytes(historical);
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    let card = VpcdCard::insert(
        VPCD_PORT_0,
        atr.clone(),
        move |apdu| respond(apdu, &log2),
        WAIT,
    )
    .unwrap();
    let info = wait_for_card(VPCD_READER_0, true, WAIT)
        .unwrap_or_else(|e| panic!("the test card never showed up in {VPCD_READER_0}: {e}"));
    assert_eq!(info.atr.as_deref(), Some(atr.as_slice()));
    Setup {
        _lock: lock,
        card,
        log,
        atr,
    }
}

#[test]
fn atr_and_response_loop_through_pcscd() {
    let s = insert_card(b"tscns-apdu");
    let listed = list_readers().unwrap();
    let r = listed.iter().find(|r| r.name == VPCD_READER_0).unwrap();
    assert!(r.card_present);
    assert_eq!(r.atr.as_deref(), Some(s.atr.as_slice()));

    let transport = PcscTransport::connect(VPCD_READER_0).unwrap();
    assert_eq!(transport.atr(), s.atr.as_slice());
    assert_eq!(transport.reader(), VPCD_READER_0);
    let mut card = Card::new(transport);

    // 6Cxx: asked for 256, the card says 6C10, the loop re-sends with Le 16.
    let r = card
        .transmit(&Command::new(0x00, 0xCA, 0x01, 0x00).with_le(256))
        .unwrap();
    assert_eq!(r.status(), StatusWord::SUCCESS);
    assert_eq!(r.data(), (0..16).collect::<Vec<u8>>());
    assert_eq!(card.apdu_count(), 2);

    // 61xx: one data byte, then 32 more through GET RESPONSE.
    let r = card
        .transmit(&Command::new(0x80, 0x10, 0x00, 0x00).with_le(256))
        .unwrap();
    assert!(r.is_success());
    assert_eq!(r.data().len(), 33);
    assert_eq!(r.data()[0], 0xA0);
    assert!(r.data()[1..].iter().all(|b| *b == 0xA1));
    assert_eq!(card.apdu_count(), 4);

    // A whole file in one transaction: 255 bytes, then 45 and 6282.
    let file = card
        .transaction(|c| {
            let sel = c.transmit(&Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x10, 0x01]))?;
            assert!(sel.is_success());
            c.read_binary_all(None)
        })
        .unwrap();
    assert_eq!(file, (0..FILE_LEN).map(file_byte).collect::<Vec<u8>>());

    // 300 data bytes to a card without extended length: two chained parts through pcscd.
    let put = Command::new(0x00, 0xDA, 0x01, 0x02).with_data(vec![0x42; 300]);
    assert!(card.transmit(&put).unwrap().is_success());

    // What reached the card, byte for byte.
    let log = s.log.lock().unwrap().clone();
    assert_eq!(log[0], [0x00, 0xCA, 0x01, 0x00, 0x00]);
    assert_eq!(log[1], [0x00, 0xCA, 0x01, 0x00, 0x10]);
    assert_eq!(log[2], [0x80, 0x10, 0x00, 0x00, 0x00]);
    assert_eq!(log[3], [0x00, 0xC0, 0x00, 0x00, 0x20]);
    assert_eq!(log[5], [0x00, 0xB0, 0x00, 0x00, 0xFF]);
    assert_eq!(log[6], [0x00, 0xB0, 0x00, 0xFF, 0xFF]);
    assert_eq!(log[7][..5], [0x10, 0xDA, 0x01, 0x02, 0xFF]);
    assert_eq!(log[7].len(), 5 + 255);
    assert_eq!(log[8][..5], [0x00, 0xDA, 0x01, 0x02, 45]);
    assert_eq!(log[8].len(), 5 + 45);
    assert_eq!(log.len(), 9);
    assert_eq!(s.card.apdus(), 9);
}

#[test]
fn transaction_is_exclusive_and_reset_is_reported() {
    let s = insert_card(b"tx");
    let mut a = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    let mut b = PcscTransport::connect(VPCD_READER_0).unwrap();
    b.set_timeout(Duration::from_secs(30));
    let select = Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]);
    let raw_select = select.encode().unwrap();

    // While `a` holds a transaction, `b` waits: pcsc-lite holds its command until the end.
    std::thread::scope(|scope| {
        a.transaction(|a| {
            assert!(a.transmit(&select)?.is_success());
            let seen = s.card.apdus();
            let waiting = scope.spawn(|| b.transmit_raw(&raw_select));
            std::thread::sleep(Duration::from_millis(700));
            assert_eq!(
                s.card.apdus(),
                seen,
                "b's command reached the card inside a's transaction"
            );
            assert!(!waiting.is_finished());
            assert!(a.transmit(&select)?.is_success());
            assert_eq!(s.card.apdus(), seen + 1);
            Ok(waiting)
        })
        .map(|waiting| {
            // The transaction is over: `b`'s command goes through.
            assert_eq!(waiting.join().unwrap().unwrap(), [0x90, 0x00]);
        })
        .unwrap();
    });

    // `b` resets the card: `a` learns it as CardReset, distinct from removal, and recovers.
    let before = s.card.power_events();
    b.reconnect_with(Disposition::ResetCard).unwrap();
    assert!(s.card.power_events() > before, "the card saw no reset");
    let e = a.transmit(&select).unwrap_err();
    assert!(matches!(e, Error::CardReset), "{e}");
    a.reconnect().unwrap();
    assert!(a.transmit(&select).unwrap().is_success());
    assert_eq!(a.atr(), s.atr.as_slice());

    // Disconnecting with LeaveCard (and dropping) does not reset the card.
    let before = s.card.power_events();
    b.disconnect(Disposition::LeaveCard).unwrap();
    drop(a);
    let mut c = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    assert!(c.transmit(&select).unwrap().is_success());
    drop(c);
    assert_eq!(s.card.power_events(), before, "a disconnect reset the card");
}

#[test]
fn card_removed_mid_session() {
    let s = insert_card(b"removed");
    let mut card = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    let select = Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]);
    assert!(card.transmit(&select).unwrap().is_success());
    s.card.remove();
    let e = card.transmit(&select).unwrap_err();
    assert!(
        matches!(e, Error::CardRemoved),
        "expected CardRemoved, got {e:?}: {e}"
    );
    assert!(e.to_string().contains("removed"));
    // The reader reports the card gone (bounded wait).
    let info = wait_for_card(VPCD_READER_0, false, WAIT).unwrap();
    assert!(!info.card_present);
    assert_eq!(info.atr, None);
    // Connecting now says which reader is empty.
    let e = PcscTransport::connect(VPCD_READER_0).unwrap_err();
    assert!(
        matches!(&e, Error::NoCard { reader: Some(r) } if r == VPCD_READER_0),
        "{e:?}"
    );
}

#[test]
fn unknown_reader_is_a_typed_error() {
    require_pcscd();
    let e = PcscTransport::connect("No Such Reader 99").unwrap_err();
    assert!(matches!(e, Error::ReaderNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("tscns readers"));
}

/// Waits (bounded) until the card has seen more than `before` resets; whether it did.
fn reset_after(s: &Setup, before: usize) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if s.card.resets() > before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_connection_that_presented_a_pin_resets_the_card_when_it_closes() {
    let s = insert_card(b"unlocked");
    let select = Command::new(0x00, 0xA4, 0x00, 0x00).with_data([0x3F, 0x00]);
    let verify = Command::new(0x00, 0x20, 0x00, 0x10).with_data(*b"12345\xFF\xFF\xFF");
    let tries = Command::new(0x00, 0x20, 0x00, 0x10);

    // No secret presented (a VERIFY without data only asks for the tries left): left as it is.
    let mut card = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    card.transmit(&select).unwrap();
    card.transmit(&tries).unwrap();
    assert!(!card.transport().secret_presented());
    assert_eq!(
        card.transport().closing_disposition(),
        Disposition::LeaveCard
    );
    let before = s.card.resets();
    drop(card);
    assert!(
        !reset_after(&s, before),
        "a plain connection reset the card"
    );

    // A PIN presented (whatever the card answered): dropping resets the card.
    let mut card = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    card.transmit(&verify).unwrap();
    assert!(card.transport().secret_presented());
    assert_eq!(
        card.transport().closing_disposition(),
        Disposition::ResetCard
    );
    let before = s.card.resets();
    drop(card);
    assert!(reset_after(&s, before), "the drop did not reset the card");

    // Also inside a transaction, and through `close`.
    let mut card = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    card.transaction(|c| c.transmit(&verify)).unwrap();
    let before = s.card.resets();
    card.into_inner().close().unwrap();
    assert!(reset_after(&s, before), "close did not reset the card");

    // The explicit opt-in keeps the card unlocked.
    let mut card = Card::new(PcscTransport::connect(VPCD_READER_0).unwrap());
    card.transmit(&verify).unwrap();
    card.transport_mut().keep_unlocked();
    assert_eq!(
        card.transport().closing_disposition(),
        Disposition::LeaveCard
    );
    let before = s.card.resets();
    drop(card);
    assert!(!reset_after(&s, before), "keep_unlocked was ignored");

    // `close_all` (a signal handler) closes a connection another part of the program still
    // holds, resetting the card; the connection then only answers errors.
    let mut held = PcscTransport::connect(VPCD_READER_0).unwrap();
    held.transmit_raw(&verify.encode().unwrap()).unwrap();
    let plain = PcscTransport::connect(VPCD_READER_0).unwrap();
    let before = s.card.resets();
    assert_eq!(tscns_apdu::pcsc::close_all(Duration::from_secs(10)), 2);
    assert!(reset_after(&s, before), "close_all did not reset the card");
    assert!(held.transmit_raw(&[0x00, 0xA4, 0x00, 0x00]).is_err());
    drop((held, plain));
}

/// A second PC/SC client that waits for the card's lock and then tries to sign (MSE + PSO
/// without VERIFY); the status word of the PSO. A reset card is reconnected and tried again.
fn second_client_signs() -> [u8; 2] {
    let mut b = PcscTransport::connect(VPCD_READER_0).unwrap();
    b.set_timeout(Duration::from_secs(30));
    let mse = [0x00, 0x22, 0x41, 0xB6, 0x03, 0x84, 0x01, 0x01];
    let pso = [0x00, 0x2A, 0x9E, 0x9A, 0x04, 1, 2, 3, 4, 0x00];
    for _ in 0..3 {
        let attempt = (|| {
            b.begin_transaction()?;
            b.transmit_raw(&mse)?;
            let r = b.transmit_raw(&pso)?;
            b.end_transaction()?;
            Ok::<_, Error>(r)
        })();
        match attempt {
            Ok(r) => return [r[r.len() - 2], r[r.len() - 1]],
            Err(Error::CardReset) => {
                // pcscd may still be resetting the card: retry the reconnect (bounded).
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while let Err(e) = b.reconnect() {
                    assert!(std::time::Instant::now() < deadline, "reconnect: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            // CardUnresponsive: the card was reset under a command of this client, which thus
            // held the lock while the verified card was still unreset (the gap).
            Err(e) => panic!("second client: {e:?}"),
        }
    }
    panic!("the second client never got to sign");
}

/// Closing a connection that verified the PIN **inside** a transaction: the card must be reset
/// while this connection still holds the lock. Before, the transaction was ended with LeaveCard
/// and the card reset at the disconnect after it, so a client waiting for the lock got the
/// verified card in between and signed (9000) without the PIN.
#[test]
fn closing_inside_a_transaction_resets_before_another_client_gets_the_lock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    require_pcscd();
    let _lock = ReaderLock::acquire(VPCD_PORT_0, Duration::from_secs(300)).unwrap();
    wait_for_card(VPCD_READER_0, false, WAIT)
        .unwrap_or_else(|e| panic!("{VPCD_READER_0} did not become empty: {e}"));
    let verified = Arc::new(AtomicBool::new(false));
    // What the card saw, in order: the INS of each APDU, 0 for a power event (reset).
    let events = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (v1, v2) = (Arc::clone(&verified), Arc::clone(&verified));
    let (e1, e2) = (Arc::clone(&events), Arc::clone(&events));
    let card = VpcdCard::insert_with_power(
        VPCD_PORT_0,
        atr_with_historical_bytes(b"gap"),
        move |apdu| {
            e1.lock()
                .unwrap()
                .push(apdu.get(1).copied().unwrap_or(0xFF));
            match apdu {
                [0x00, 0x20, 0x00, 0x10, 0x08, ..] => {
                    v1.store(true, Ordering::SeqCst);
                    vec![0x90, 0x00]
                }
                [0x00, 0x2A, 0x9E, 0x9A, ..] if v1.load(Ordering::SeqCst) => {
                    vec![0x5A, 0x5A, 0x90, 0x00]
                }
                [0x00, 0x2A, 0x9E, 0x9A, ..] => vec![0x69, 0x82],
                _ => vec![0x90, 0x00],
            }
        },
        move || {
            v2.store(false, Ordering::SeqCst);
            e2.lock().unwrap().push(0);
        },
        WAIT,
    )
    .unwrap();
    wait_for_card(VPCD_READER_0, true, WAIT).unwrap();
    let verify = Command::new(0x00, 0x20, 0x00, 0x10)
        .with_data(*b"12345\xFF\xFF\xFF")
        .encode()
        .unwrap();
    // The gap was short: try it several times each way.
    for by_drop in [true, false, true, false, true, false, true, false] {
        let mut a = PcscTransport::connect(VPCD_READER_0).unwrap();
        a.begin_transaction().unwrap();
        assert_eq!(a.transmit_raw(&verify).unwrap(), [0x90, 0x00]);
        let at_verify = events.lock().unwrap().len();
        let other = std::thread::spawn(second_client_signs);
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            !other.is_finished(),
            "the second client did not wait for the lock"
        );
        if by_drop {
            drop(a);
        } else {
            a.close().unwrap();
        }
        assert_eq!(
            other.join().unwrap(),
            [0x69, 0x82],
            "the second client signed on the verified card (closed by {})",
            if by_drop { "drop" } else { "close" }
        );
        // And the card was reset before any command of the other client reached it.
        let after: Vec<u8> = events.lock().unwrap()[at_verify..].to_vec();
        assert_eq!(
            after.first(),
            Some(&0),
            "a command reached the verified card before its reset: {after:02X?}"
        );
    }
    drop(card);
}

/// A command that times out leaves the transport broken: dropping it returns at once, and its
/// PC/SC thread resets the card only when the slow command is over. `close_all` at the end of a
/// program waits for that; before, it returned at once (the dropped transport was no longer
/// listed) and the program could exit with the PIN still verified.
#[test]
fn close_all_waits_for_a_dropped_transport_whose_command_timed_out() {
    require_pcscd();
    let _lock = ReaderLock::acquire(VPCD_PORT_0, Duration::from_secs(300)).unwrap();
    wait_for_card(VPCD_READER_0, false, WAIT)
        .unwrap_or_else(|e| panic!("{VPCD_READER_0} did not become empty: {e}"));
    let card = VpcdCard::insert(
        VPCD_PORT_0,
        atr_with_historical_bytes(b"slow"),
        |apdu| {
            if apdu.get(1) == Some(&0xB0) {
                // A slow READ BINARY.
                std::thread::sleep(Duration::from_secs(3));
            }
            vec![0x90, 0x00]
        },
        WAIT,
    )
    .unwrap();
    wait_for_card(VPCD_READER_0, true, WAIT).unwrap();
    let verify = Command::new(0x00, 0x20, 0x00, 0x10)
        .with_data(*b"12345\xFF\xFF\xFF")
        .encode()
        .unwrap();
    let mut t = PcscTransport::connect(VPCD_READER_0).unwrap();
    t.transmit_raw(&verify).unwrap();
    t.set_timeout(Duration::from_millis(300));
    let e = t.transmit_raw(&[0x00, 0xB0, 0x00, 0x00, 0x10]).unwrap_err();
    assert!(matches!(e, Error::Timeout), "{e:?}");
    let before = card.resets();
    let started = std::time::Instant::now();
    drop(t);
    assert!(started.elapsed() < Duration::from_secs(1), "drop waited");
    assert_eq!(card.resets(), before, "the slow command is not over yet");
    tscns_apdu::pcsc::close_all(Duration::from_secs(15));
    assert!(
        card.resets() > before,
        "close_all returned before the card was reset (after {:?})",
        started.elapsed()
    );
}
