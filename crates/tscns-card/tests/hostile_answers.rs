//! The driver fed card answers that break the protocol: a real session with the simulated card
//! is recorded, one answer is damaged, and the session is replayed. Identity read, PIN and
//! signing must end in an error or a result, never a panic, whatever the damage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use tscns_apdu::{Error as ApduError, Transport};
use tscns_card::{CnsCard, HashAlg, Pin};
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

/// The operations every session runs.
fn session<T: Transport>(transport: T, pin: &Pin) {
    let Ok(mut card) = CnsCard::open(transport) else {
        return;
    };
    let _ = card.identity();
    let _ = card.verify_pin(pin);
    let _ = card.sign_pkcs1(HashAlg::Sha256, &[0x11; 32]);
    let _ = card.sign_pss(HashAlg::Sha256, &[0x22; 32]);
}

/// A good session: the card's ATR, its PIN and the answers it gave.
type Recording = (Vec<u8>, String, Vec<Vec<u8>>);

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
                let mut card = CnsCard::open(&mut rec).unwrap();
                card.identity().unwrap();
                card.verify_pin(&pin).unwrap();
                card.sign_pkcs1(HashAlg::Sha256, &[0x11; 32]).unwrap();
                card.sign_pss(HashAlg::Sha256, &[0x22; 32]).unwrap();
                drop(card);
                (atr, profile.pin.expose().to_owned(), rec.answers)
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
    fn damaged_answers_never_panic(
        profile in 0..BUILTIN_PROFILES.len(),
        at in any::<usize>(),
        d in damage(),
        d2 in proptest::option::of((any::<usize>(), damage())),
    ) {
        let (atr, pin, answers) = &recordings()[profile];
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
        );
    }
}

#[test]
fn the_undamaged_replay_succeeds() {
    // The replay is faithful: without damage the operations succeed, so the property above
    // really runs the driver's normal paths with an answer or two broken.
    for (atr, pin, answers) in recordings() {
        let mut card = CnsCard::open(Replay {
            atr: atr.clone(),
            answers: answers.clone().into_iter(),
        })
        .unwrap();
        card.identity().unwrap();
        card.verify_pin(&Pin::new(pin).unwrap()).unwrap();
        card.sign_pkcs1(HashAlg::Sha256, &[0x11; 32]).unwrap();
        // PSS blocks carry a fresh random salt: the recorded signature is over another block,
        // and the driver's own check catches it.
        assert!(matches!(
            card.sign_pss(HashAlg::Sha256, &[0x22; 32]),
            Err(tscns_card::Error::BadSignature)
        ));
    }
}
