//! The card's authentication key as a [`SigningKey`] (feature `tls`; the trait of
//! [`tscns_cert::sign`], which `tscns-tls` re-exports as `tscns_tls::SigningKey`): TLS client
//! authentication, or any other RSA signature, with the TS-CNS card. Needs no TLS or HTTP stack.
//!
//! The card does raw RSA, so the host builds the whole block: EMSA-PSS makes TLS 1.3 possible,
//! EMSA-PKCS1-v1_5 serves TLS 1.2. Every scheme whose block fits the modulus is offered.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tscns_apdu::Transport;
use tscns_cert::sign::{raw_rsa_schemes, SignError, SignatureScheme, SigningKey};

use crate::{CnsCard, Error};

/// A TS-CNS card whose authentication key signs TLS handshakes.
///
/// Verify the PIN first (on the card before wrapping it, or through [`CardKey::card`]): the key
/// never asks for it, and a signature without it fails with [`Error::PinRequired`].
pub struct CardKey<T: Transport> {
    card: Mutex<CnsCard<T>>,
    chain: Vec<Vec<u8>>,
    bits: usize,
}

impl<T: Transport> fmt::Debug for CardKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> CardKey<T> {
    /// Reads the authentication certificate and the key size from `card`.
    pub fn new(mut card: CnsCard<T>) -> Result<Self, Error> {
        let chain = vec![card.certificate_der()?];
        let bits = card.key_bits()?;
        Ok(Self {
            card: Mutex::new(card),
            chain,
            bits,
        })
    }

    /// The card, locked (to verify the PIN, read the identity...).
    pub fn card(&self) -> MutexGuard<'_, CnsCard<T>> {
        self.card.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the card back.
    pub fn into_card(self) -> CnsCard<T> {
        self.card
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Transport + Send> SigningKey for CardKey<T> {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.chain.clone()
    }

    fn key_bits(&self) -> usize {
        self.bits
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        raw_rsa_schemes(self.bits)
    }

    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let h = scheme.hash();
        let digest = h.digest(message);
        let mut card = self.card();
        let r = if scheme.is_pss() {
            card.sign_pss(h, &digest)
        } else {
            card.sign_pkcs1(h, &digest)
        };
        r.map_err(|e| Box::new(e) as SignError)
    }
}
