//! The driver fed card answers that break the protocol: a real session with the simulated card
//! is recorded, one or two answers are damaged, and the session is replayed. Whatever the
//! damage, identity read, PIN and signing end in a result or in one of the typed errors that
//! say "the card answered wrongly" (never a panic, never an error that blames the caller), a
//! damaged answer never yields a wrong identity unless the driver's own cross-checks flag it,
//! and a signature returned always verifies, with the card's real key, over the digest asked for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::Sha256;
use tscns_apdu::{Error as ApduError, Transport};
use tscns_card::{CnsCard, Error, HashAlg, Identity, Pin};
use tscns_sim::{Profile, SimCard, BUILTIN_PROFILES};

/// Passes commands to the card and records its raw answers.
struct Recorder {
    inner: SimCard,
    answers: Vec<Vec<u8>>,
}

impl Transport for Recorder {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, ApduError> {
        let r = self.inner.transmit_raw(command)?;
        self.answers.push(r.clone());
        Ok(r)
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
}

/// Answers every command with the next recorded answer; the card is gone when they run out.
/// An empty answer stands for "the card was reset".
struct Replay {
    atr: Vec<u8>,
    answers: std::vec::IntoIter<Vec<u8>>,
}

impl Transport for Replay {
    fn transmit_raw(&mut self, _command: &[u8]) -> Result<Vec<u8>, ApduError> {
        match self.answers.next() {
            Some(a) if a.is_empty() => Err(ApduError::CardReset),
            Some(a) => Ok(a),
            None => Err(ApduError::CardRemoved),
        }
    }
    fn atr(&self) -> &[u8] {
        &self.atr
    }
    fn reconnect(&mut self) -> Result<(), ApduError> {
        Ok(())
    }
}

/// Errors that say the card (or the link) answered something the driver cannot go on from.
/// Anything else (an invalid PIN, a wrong digest length, a cancelled prompt...) would blame the
/// caller for the card's fault.
fn is_card_fault(e: &Error) -> bool {
    matches!(
        e,
        Error::Apdu(_)
            | Error::CardRemoved
            | Error::NotCns { .. }
            | Error::FileNotFound { .. }
            | Error::Status { .. }
            | Error::PersonalData { .. }
            | Error::CardId { .. }
            | Error::Certificate { .. }
    )
}

/// What the identity read may fail with.
fn identity_error(e: &Error) -> bool {
    is_card_fault(e)
}

/// What VERIFY may fail with: a card fault, or what the (damaged) status word says.
fn verify_error(e: &Error) -> bool {
    is_card_fault(e)
        || matches!(
            e,
            Error::WrongSecret { .. }
                | Error::Blocked { .. }
                | Error::NotUsable { .. }
                | Error::PinStateLost
        )
}

/// What signing may fail with: an identity error (signing reads it when it is missing), the
/// card refusing, or the driver's own check of the signature.
fn sign_error(e: &Error) -> bool {
    identity_error(e)
        || matches!(
            e,
            Error::PinRequired | Error::PinStateLost | Error::BadSignature
        )
}

/// The holder as the undamaged session read it, the card's real public key, the CA that issued
/// its certificate and a time when that certificate is valid.
struct Truth {
    identity: Identity,
    key: RsaPublicKey,
    ca: Vec<u8>,
    at: tscns_cert::time::OffsetDateTime,
}

/// Whether two identity reads name the same holder with the same files.
fn same_identity(a: &Identity, b: &Identity) -> bool {
    a.card_id == b.card_id
        && a.personal_data == b.personal_data
        && a.personal_data_bytes == b.personal_data_bytes
        && a.certificate.der() == b.certificate.der()
        && a.key_set == b.key_set
}

const DIGEST: [u8; 32] = [0x11; 32];

/// The operations every session runs, each outcome checked against the truth.
fn session<T: Transport>(transport: T, pin: &Pin, truth: &Truth) -> Result<(), TestCaseError> {
    let mut card = match CnsCard::open(transport) {
        Ok(c) => c,
        Err(e) => {
            prop_assert!(is_card_fault(&e), "open: {e:?}");
            return Ok(());
        }
    };
    match card.identity() {
        Ok(id) => {
            // A damaged answer that still parses is a wrong identity unless the cross-checks
            // between the files say so.
            let flagged = id.checks.cf_matches_certificate == Some(false)
                || id.checks.data_hash_matches == Some(false);
            // A certificate damaged where no cross-check looks (its validity, its key, the CA's
            // signature) no longer verifies against the CA that issued it, which every relying
            // party checks before it believes the certificate.
            let unverifiable = id.certificate.der() != truth.identity.certificate.der()
                && id
                    .certificate
                    .verify_chain(&[&truth.ca], &[] as &[&[u8]], truth.at)
                    .is_err();
            let t = &truth.identity;
            prop_assert!(
                same_identity(id, t) || flagged || unverifiable,
                "a damaged answer gave another identity, unflagged: card id {} personal data \
                 {} bytes {} certificate {} key set {}",
                id.card_id == t.card_id,
                id.personal_data == t.personal_data,
                id.personal_data_bytes == t.personal_data_bytes,
                id.certificate.der() == t.certificate.der(),
                id.key_set == t.key_set,
            );
        }
        Err(e) => prop_assert!(identity_error(&e), "identity: {e:?}"),
    }
    if let Err(e) = card.verify_pin(pin) {
        prop_assert!(verify_error(&e), "verify: {e:?}");
    }
    match card.sign_pkcs1(HashAlg::Sha256, &DIGEST) {
        Ok(sig) => prop_assert!(
            truth
                .key
                .verify(Pkcs1v15Sign::new::<Sha256>(), &DIGEST, &sig)
                .is_ok(),
            "a PKCS#1 signature was returned that does not verify over the digest"
        ),
        Err(e) => prop_assert!(sign_error(&e), "sign_pkcs1: {e:?}"),
    }
    // The recorded PSS signature is over a block with another salt: never a valid answer.
    match card.sign_pss(HashAlg::Sha256, &[0x22; 32]) {
        Ok(_) => prop_assert!(false, "a replayed PSS signature was accepted"),
        Err(e) => prop_assert!(sign_error(&e), "sign_pss: {e:?}"),
    }
    Ok(())
}

/// A good session: the card's ATR, its PIN, the answers it gave, and the truth.
type Recording = (Vec<u8>, String, Vec<Vec<u8>>, Truth);

/// One recorded session per built-in profile.
fn recordings() -> &'static Vec<Recording> {
    static R: OnceLock<Vec<Recording>> = OnceLock::new();
    R.get_or_init(|| {
        BUILTIN_PROFILES
            .iter()
            .map(|(name, _)| {
                let profile = Profile::builtin(name).unwrap();
                let sim = SimCard::new(&profile).unwrap();
                let atr = sim.atr().to_vec();
                let mut rec = Recorder {
                    inner: sim,
                    answers: Vec::new(),
                };
                let pin = Pin::new(profile.pin.expose()).unwrap();
                let key = rec.inner.pki().card_public_key();
                let mut card = CnsCard::open(&mut rec).unwrap();
                let identity = card.identity().unwrap().clone();
                card.verify_pin(&pin).unwrap();
                card.sign_pkcs1(HashAlg::Sha256, &DIGEST).unwrap();
                card.sign_pss(HashAlg::Sha256, &[0x22; 32]).unwrap();
                drop(card);
                let ca = rec.inner.pki().ca_cert_der().to_vec();
                let at = identity.certificate.not_before().unwrap()
                    + tscns_cert::time::Duration::days(1);
                identity
                    .certificate
                    .verify_chain(&[&ca], &[] as &[&[u8]], at)
                    .unwrap();
                let truth = Truth {
                    identity,
                    key,
                    ca,
                    at,
                };
                (atr, profile.pin.expose().to_owned(), rec.answers, truth)
            })
            .collect()
    })
}

/// One way to damage an answer.
#[derive(Debug, Clone)]
enum Damage {
    /// Keep only the first n bytes (0: the card was reset).
    Truncate(usize),
    /// Replace the status word.
    Status(u8, u8),
    /// Flip the bits of one byte.
    Flip(usize, u8),
    /// Replace the whole answer.
    Replace(Vec<u8>),
    /// Drop the answer (every later one arrives one command early).
    Drop,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0usize..300).prop_map(Damage::Truncate),
        (
            prop_oneof![
                Just(0x61u8),
                Just(0x6C),
                Just(0x62),
                Just(0x63),
                any::<u8>()
            ],
            any::<u8>()
        )
            .prop_map(|(a, b)| Damage::Status(a, b)),
        (any::<usize>(), 1u8..).prop_map(|(i, m)| Damage::Flip(i, m)),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Damage::Replace),
        Just(Damage::Drop),
    ]
}

fn apply(answers: &mut Vec<Vec<u8>>, at: usize, d: &Damage) {
    let a = &mut answers[at];
    match d {
        Damage::Truncate(n) => a.truncate(*n),
        Damage::Status(sw1, sw2) => {
            let n = a.len();
            if n >= 2 {
                a[n - 2] = *sw1;
                a[n - 1] = *sw2;
            }
        }
        Damage::Flip(i, m) => {
            if !a.is_empty() {
                let i = i % a.len();
                a[i] ^= m;
            }
        }
        Damage::Replace(v) => *a = v.clone(),
        Damage::Drop => {
            answers.remove(at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn damaged_answers_give_typed_errors_never_a_wrong_identity_or_signature(
        profile in 0..BUILTIN_PROFILES.len(),
        at in any::<usize>(),
        d in damage(),
        d2 in proptest::option::of((any::<usize>(), damage())),
    ) {
        let (atr, pin, answers, truth) = &recordings()[profile];
        let mut answers = answers.clone();
        let i = at % answers.len();
        apply(&mut answers, i, &d);
        if let Some((at2, d2)) = d2 {
            if !answers.is_empty() {
                let i = at2 % answers.len();
                apply(&mut answers, i, &d2);
            }
        }
        session(
            Replay { atr: atr.clone(), answers: answers.into_iter() },
            &Pin::new(pin).unwrap(),
            truth,
        )?;
    }
}

#[test]
fn the_undamaged_replay_succeeds() {
    // The replay is faithful: without damage the operations succeed, so the property above
    // really runs the driver's normal paths with an answer or two broken.
    for (atr, pin, answers, truth) in recordings() {
        let mut card = CnsCard::open(Replay {
            atr: atr.clone(),
            answers: answers.clone().into_iter(),
        })
        .unwrap();
        assert!(same_identity(card.identity().unwrap(), &truth.identity));
        card.verify_pin(&Pin::new(pin).unwrap()).unwrap();
        let sig = card.sign_pkcs1(HashAlg::Sha256, &DIGEST).unwrap();
        truth
            .key
            .verify(Pkcs1v15Sign::new::<Sha256>(), &DIGEST, &sig)
            .unwrap();
        // PSS blocks carry a fresh random salt: the recorded signature is over another block,
        // and the driver's own check catches it.
        assert!(matches!(
            card.sign_pss(HashAlg::Sha256, &[0x22; 32]),
            Err(tscns_card::Error::BadSignature)
        ));
    }
}
