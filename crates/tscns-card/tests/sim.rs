//! The driver against the in-process simulated card, for every maker profile of tscns-sim.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use tscns_card::{CnsCard, Error, HashAlg, Pin, Puk, SecretKind};
use tscns_sim::{Faults, Profile, SimCard, SimHandle, BUILTIN_PROFILES};

fn open(name: &str) -> (CnsCard<SimCard>, SimHandle, Profile) {
    let profile = Profile::builtin(name).unwrap();
    let sim = SimCard::new(&profile).unwrap();
    let handle = sim.handle();
    (CnsCard::open(sim).unwrap(), handle, profile)
}

fn names() -> Vec<&'static str> {
    BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect()
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn pin(p: &Profile) -> Pin {
    Pin::new(p.pin.expose()).unwrap()
}

/// A valid PIN that is not the card's.
fn wrong_pin(p: &Profile) -> Pin {
    let w = if p.pin.expose() == "00000" {
        "11111"
    } else {
        "00000"
    };
    Pin::new(w).unwrap()
}

fn verify_pkcs1(key: &RsaPublicKey, hash: HashAlg, digest: &[u8], sig: &[u8]) {
    let scheme = match hash {
        HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
        _ => Pkcs1v15Sign::new::<Sha512>(),
    };
    key.verify(scheme, digest, sig).unwrap();
}

fn verify_pss(key: &RsaPublicKey, hash: HashAlg, digest: &[u8], sig: &[u8]) {
    let n = hash.output_len();
    let scheme = match hash {
        HashAlg::Sha1 => Pss::new_with_salt::<Sha1>(n),
        HashAlg::Sha256 => Pss::new_with_salt::<Sha256>(n),
        HashAlg::Sha384 => Pss::new_with_salt::<Sha384>(n),
        _ => Pss::new_with_salt::<Sha512>(n),
    };
    key.verify(scheme, digest, sig).unwrap();
}

#[test]
fn identity_matches_the_profile_for_every_maker() {
    for name in names() {
        let (mut card, handle, profile) = open(name);
        let id = card.identity().unwrap().clone();
        assert_eq!(id.card_id.as_str(), profile.card_id, "{name}");
        let want = &profile.personal_data;
        let got = &id.personal_data;
        assert_eq!(got.surname, opt(&want.surname), "{name}");
        assert_eq!(got.given_name, opt(&want.given_name), "{name}");
        assert_eq!(got.codice_fiscale, opt(&want.codice_fiscale), "{name}");
        assert_eq!(got.birth_date, want.birth_date, "{name}");
        assert_eq!(got.issue_date, want.issue_date, "{name}");
        assert_eq!(got.expiry_date, want.expiry_date, "{name}");
        assert_eq!(got.sex, opt(&want.sex), "{name}");
        assert_eq!(
            got.birth_municipality,
            opt(&want.birth_municipality),
            "{name}"
        );
        assert_eq!(
            got.residence_address,
            opt(&want.residence_address),
            "{name}"
        );
        assert_eq!(
            got.expatriation_notes,
            opt(&want.expatriation_notes),
            "{name}"
        );
        // The file serialises back byte for byte.
        assert_eq!(got.to_bytes().unwrap(), id.personal_data_bytes, "{name}");
        assert_eq!(id.certificate.der(), handle.pki().card_cert_der(), "{name}");
        assert_eq!(id.checks.cf_matches_certificate, Some(true), "{name}");
        assert_eq!(id.checks.data_hash_matches, Some(true), "{name}");
        // The APDU count reported is what the card saw, and it is small: three SELECTs, one
        // read for the id, one for the personal data, the certificate in as few reads as the
        // card allows (the IDEMIA 2021 card pays one more SELECT only if the path guess fails).
        assert_eq!(id.apdus, handle.counters().apdus, "{name}");
        let log = handle.apdu_log();
        let selects = log.iter().filter(|r| r.ins == 0xA4).count();
        if card.recognition().generation.layout.aid.is_some() {
            // Cards with an application (ACe 2025, ST2022) are recognised by SELECTs of AIDs
            // first and read under it; their exact sequences are in tests/new_generations.rs.
            assert_eq!(log[0].ins, 0xA4, "{name}: {log:?}");
            assert_eq!(log[0].p1, 0x04, "{name}: {log:?}");
        } else {
            // Without a CNS marker in the ATR (nfc-bare), the applications of ACe 2025 and
            // ST2022 are probed (and refused) before the classic path.
            let aid_probes = log.iter().filter(|r| r.ins == 0xA4 && r.p1 == 0x04).count();
            let want_probes = if card.recognition().info.is_none() {
                2
            } else {
                0
            };
            assert_eq!(aid_probes, want_probes, "{name}: {log:?}");
            let selects = selects - aid_probes;
            assert_eq!(selects, 3, "{name}: {log:?}");
            let cert_len = id.certificate.der().len();
            let cert_reads = if card.recognition().generation.lengths.extended {
                2
            } else {
                cert_len.div_ceil(255)
            };
            assert_eq!(
                id.apdus as usize,
                aid_probes + 3 + 2 + cert_reads,
                "{name}: {log:?}"
            );
        }
        // Cached for the connection: no APDU the second time.
        let before = handle.counters().apdus;
        card.identity().unwrap();
        card.certificate_der().unwrap();
        assert_eq!(handle.counters().apdus, before, "{name}");
        let bits = card.key_bits().unwrap();
        assert_eq!(bits, profile.key_bits.bits(), "{name}");
    }
}

#[test]
fn profiles_are_recognised_per_maker() {
    for (name, profile_name) in [
        ("stincard-1024", "stincard"),
        ("athena-1024", "athena"),
        ("idemia-v2-1024", "idemia-v2"),
        ("idemia2021-2048", "idemia2021"),
        ("nfc-bare-2048", "nfc-bare"),
        ("default", "stincard"),
    ] {
        let (card, _, _) = open(name);
        assert_eq!(card.recognition().generation.name, profile_name, "{name}");
    }
    let (card, _, _) = open("stincard-1024");
    assert_eq!(card.recognition().pin_reference(), 0x90);
    let (mut card, _, _) = open("idemia2021-2048");
    assert_eq!(card.identity().unwrap().key_set.key_reference, 0x02);
}

#[test]
fn signatures_verify_for_every_maker() {
    for name in names() {
        let (mut card, handle, profile) = open(name);
        let key = handle.pki().card_public_key();
        assert!(matches!(
            card.sign_pkcs1(HashAlg::Sha256, &HashAlg::Sha256.digest(b"x")),
            Err(Error::PinRequired)
        ));
        card.verify_pin(&pin(&profile)).unwrap();
        for hash in HashAlg::ALL {
            let digest = hash.digest(name.as_bytes());
            let sig = card.sign_pkcs1(hash, &digest).unwrap();
            assert_eq!(sig.len(), key.size());
            verify_pkcs1(&key, hash, &digest, &sig);
            match card.sign_pss(hash, &digest) {
                Ok(sig) => verify_pss(&key, hash, &digest, &sig),
                Err(Error::KeyTooSmall { .. }) => {
                    assert!(
                        key.size() == 128 && hash == HashAlg::Sha512,
                        "{name} {hash}"
                    )
                }
                Err(e) => panic!("{name} {hash}: {e}"),
            }
        }
        // A block the size of the modulus is signed raw and checked.
        let mut block = vec![0u8; key.size()];
        block[key.size() - 1] = 7;
        let sig = card.sign_raw_block(&block).unwrap();
        assert_eq!(sig.len(), key.size());
        assert!(matches!(
            card.sign_raw_block(&block[1..]),
            Err(Error::BadBlock { .. })
        ));
    }
}

#[test]
fn wrong_pin_counts_down_then_blocks_then_unblocks() {
    for name in names() {
        let (mut card, handle, profile) = open(name);
        let wrong = wrong_pin(&profile);
        let tries = profile.pin_tries;
        for left in (1..tries).rev() {
            match card.verify_pin(&wrong) {
                Err(Error::WrongSecret {
                    kind: SecretKind::Pin,
                    tries_left,
                }) => {
                    assert_eq!(tries_left, Some(left), "{name}")
                }
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(handle.pin_tries_left(), left);
        }
        assert!(
            matches!(
                card.verify_pin(&wrong),
                Err(Error::Blocked {
                    kind: SecretKind::Pin
                })
            ),
            "{name}"
        );
        // Blocked: even the right PIN is refused, and nothing is retried behind our back.
        let before = handle.counters().apdus;
        assert!(matches!(
            card.verify_pin(&pin(&profile)),
            Err(Error::Blocked { .. })
        ));
        // One VERIFY (after the SELECT of the card's application, on a card that has one).
        let app_select = u64::from(card.recognition().generation.layout.aid.is_some());
        assert_eq!(handle.counters().apdus, before + 1 + app_select, "{name}");
        // A wrong PUK counts down the PUK.
        let bad_puk = Puk::new("99999999").unwrap();
        let new_pin = Pin::new("424242").unwrap();
        match card.unblock_pin(&bad_puk, &new_pin) {
            Err(Error::WrongSecret {
                kind: SecretKind::Puk,
                tries_left,
            }) => {
                assert_eq!(tries_left, Some(profile.puk_tries - 1), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        card.unblock_pin(&Puk::new(profile.puk.expose()).unwrap(), &new_pin)
            .unwrap();
        assert_eq!(handle.pin_tries_left(), tries);
        card.verify_pin(&new_pin).unwrap();
        assert!(card.is_pin_verified());
    }
}

#[test]
fn change_pin_then_old_pin_is_wrong() {
    for name in names() {
        let (mut card, _, profile) = open(name);
        let old = pin(&profile);
        let new = Pin::new("5551234").unwrap();
        card.change_pin(&old, &new).unwrap();
        assert!(matches!(
            card.verify_pin(&old),
            Err(Error::WrongSecret {
                tries_left: Some(_),
                ..
            })
        ));
        card.verify_pin(&new).unwrap();
        // Wrong old PIN: refused with the tries left.
        assert!(matches!(
            card.change_pin(&old, &new),
            Err(Error::WrongSecret {
                kind: SecretKind::Pin,
                ..
            })
        ));
    }
}

#[test]
fn invalid_pins_send_nothing() {
    let (mut card, handle, _) = open("default");
    let before = handle.counters().apdus;
    assert!(Pin::new("12a4").is_err());
    let r = card.verify_pin_with(|prompt| {
        assert_eq!(prompt.kind, SecretKind::Pin);
        None
    });
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(handle.counters().apdus, before);
}

#[test]
fn pin_callback_learns_tries_left() {
    let (mut card, _, profile) = open("athena-1024");
    let _ = card.verify_pin(&wrong_pin(&profile));
    let mut seen = None;
    card.verify_pin_with(|p| {
        seen = Some(p.tries_left);
        Some(pin(&profile))
    })
    .unwrap();
    assert_eq!(seen, Some(Some(profile.pin_tries - 1)));
}

#[test]
fn reset_during_identity_read_is_transparent() {
    for name in names() {
        for after in [1u64, 3, 5] {
            let (mut card, handle, profile) = open(name);
            handle.set_faults(Faults {
                reset_after: Some(after),
                ..Faults::none()
            });
            let id = card.identity().unwrap();
            assert_eq!(id.card_id.as_str(), profile.card_id, "{name} {after}");
            assert_eq!(id.certificate.der(), handle.pki().card_cert_der());
        }
    }
}

#[test]
fn reset_after_verified_pin_is_pin_state_lost() {
    for name in names() {
        let (mut card, handle, profile) = open(name);
        card.identity().unwrap();
        card.verify_pin(&pin(&profile)).unwrap();
        handle.reset_by_other_application();
        let digest = HashAlg::Sha256.digest(b"after reset");
        assert!(
            matches!(
                card.sign_pkcs1(HashAlg::Sha256, &digest),
                Err(Error::PinStateLost)
            ),
            "{name}"
        );
        assert!(!card.is_pin_verified());
        // The caller asks the citizen again; then it works.
        card.verify_pin(&pin(&profile)).unwrap();
        let sig = card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
        verify_pkcs1(
            &handle.pki().card_public_key(),
            HashAlg::Sha256,
            &digest,
            &sig,
        );
    }
}

#[test]
fn reset_during_signing_is_pin_state_lost() {
    let (mut card, handle, profile) = open("stincard-1024");
    card.identity().unwrap();
    card.verify_pin(&pin(&profile)).unwrap();
    handle.set_faults(Faults {
        reset_after: Some(1),
        ..Faults::none()
    });
    let digest = HashAlg::Sha1.digest(b"x");
    assert!(matches!(
        card.sign_pkcs1(HashAlg::Sha1, &digest),
        Err(Error::PinStateLost)
    ));
}

#[test]
fn removal_mid_operation_is_card_removed() {
    for name in names() {
        let (mut card, handle, profile) = open(name);
        handle.set_faults(Faults {
            remove_after: Some(2),
            ..Faults::none()
        });
        assert!(matches!(card.identity(), Err(Error::CardRemoved)), "{name}");
        handle.insert();
        // Removal during signing.
        let (mut card, handle, _) = open(name);
        card.identity().unwrap();
        card.verify_pin(&pin(&profile)).unwrap();
        handle.remove();
        assert!(matches!(
            card.sign_pkcs1(HashAlg::Sha256, &HashAlg::Sha256.digest(b"y")),
            Err(Error::CardRemoved)
        ));
        assert!(matches!(
            card.verify_pin(&pin(&profile)),
            Err(Error::CardRemoved)
        ));
    }
}

#[test]
fn unknown_card_is_not_cns() {
    // The probe: the applications of ACe 2025 and ST2022, then the classic path.
    let t = tscns_apdu::ScriptedTransport::new([0x3B, 0x80, 0x80, 0x01, 0x01])
        .expect_hex("00 A4 04 00 0C A000000530000B104001021A 00", "6A82")
        .expect_hex("00 A4 04 00 08 A00000009501004D 00", "6A82")
        .expect_hex("00 A4 08 00 04 1000 1003", "6A82");
    assert!(matches!(CnsCard::open(t), Err(Error::NotCns { .. })));
}

#[test]
fn security_environment_is_set_once_per_connection() {
    let (mut card, handle, profile) = open("athena-1024");
    card.identity().unwrap();
    card.verify_pin(&pin(&profile)).unwrap();
    let digest = HashAlg::Sha256.digest(b"a");
    card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
    handle.reset_counters();
    card.sign_pkcs1(HashAlg::Sha256, &digest).unwrap();
    // Only the PSO: MSE RESTORE / SET are not repeated.
    let log = handle.apdu_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].ins, log[0].p1, log[0].p2), (0x2A, 0x9E, 0x9A));
}

/// Raw C-APDU and R-APDU pairs, shared with the test.
type ApduLog = std::rc::Rc<std::cell::RefCell<Vec<(Vec<u8>, Vec<u8>)>>>;

/// Records every raw C-APDU and R-APDU on the way to the card.
struct Recorder<T> {
    inner: T,
    log: ApduLog,
}

impl<T: tscns_apdu::Transport> tscns_apdu::Transport for Recorder<T> {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, tscns_apdu::Error> {
        let r = self.inner.transmit_raw(command)?;
        self.log.borrow_mut().push((command.to_vec(), r.clone()));
        Ok(r)
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
    fn reconnect(&mut self) -> Result<(), tscns_apdu::Error> {
        self.inner.reconnect()
    }
}

#[test]
fn identity_reads_each_file_exactly_once_and_never_past_the_certificate() {
    for name in names() {
        let profile = Profile::builtin(name).unwrap();
        let sim = SimCard::new(&profile).unwrap();
        let cert_len = sim.pki().card_cert_der().len();
        let log = ApduLog::default();
        let mut card = CnsCard::open(Recorder {
            inner: sim,
            log: log.clone(),
        })
        .unwrap();
        card.identity().unwrap();
        let classic = card.recognition().generation.layout.aid.is_none();
        let log = log.borrow();
        // Cards with an application (ACe 2025, ST2022) select AIDs first and read under them:
        // tests/new_generations.rs has their sequences. The others:
        if classic {
            // SELECT by path from the MF, exactly three: ID_Carta, Dati_personali, the
            // certificate.
            // (Refused SELECTs of the newer cards' AIDs aside: probes for a card without a CNS
            // marker.)
            let selects: Vec<&[u8]> = log
                .iter()
                .filter(|(c, _)| c[1] == 0xA4 && c[2] != 0x04)
                .map(|(c, _)| &c[..])
                .collect();
            assert_eq!(selects.len(), 3, "{name}");
            assert!(
                selects.iter().all(|c| c[2] == 0x08 && c[3] == 0x00),
                "{name}"
            );
            assert_eq!(&selects[0][5..], &[0x10, 0x00, 0x10, 0x03]);
            assert_eq!(&selects[1][5..], &[0x11, 0x00, 0x11, 0x02]);
            // EF_ID_Carta is read with Le = 16 exactly.
            let first_read = log.iter().find(|(c, _)| c[1] == 0xB0).unwrap();
            assert_eq!(first_read.0, [0x00, 0xB0, 0x00, 0x00, 0x10]);
        }
        // The certificate reads add up to the DER length exactly, every one answered 9000
        // (nothing read past the end of the DER into the file's padding).
        let cert_select = log.iter().rposition(|(c, _)| c[1] == 0xA4).unwrap();
        let cert_bytes: usize = log[cert_select + 1..]
            .iter()
            .filter(|(c, _)| c[1] == 0xB0)
            .map(|(_, r)| {
                assert_eq!(&r[r.len() - 2..], &[0x90, 0x00], "{name}");
                r.len() - 2
            })
            .sum();
        assert_eq!(cert_bytes, cert_len, "{name}");
    }
}
