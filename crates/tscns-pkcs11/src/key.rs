//! A private key on a token, its certificate, the PIN login and signing.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::module::{CertificateEntry, KeySelector, Module};

/// A PIN: zeroized on drop, never shown by `Debug`.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps the PIN the user typed. Shape checks against the token's limits happen at login,
    /// before anything is sent.
    pub fn new(pin: &str) -> Result<Self, Error> {
        if pin.is_empty() {
            return Err(Error::InvalidPin {
                reason: "it is empty".into(),
            });
        }
        Ok(Self(Zeroizing::new(pin.to_string())))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

struct State {
    session: Session,
    key: Option<ObjectHandle>,
    /// Whether this key logged in (and counts in [`LOGINS`]).
    logged_in: bool,
}

/// How many [`Pkcs11Key`]s of this process are logged in, per (module path, slot). A PKCS#11
/// login belongs to the whole application (every session of the token), so a key dropped while
/// another key on the same token still needs the login leaves it; the last one logs out.
static LOGINS: Mutex<Vec<((String, u64), usize)>> = Mutex::new(Vec::new());

/// Counts a login of `who` in; returns the new count.
fn count_login(who: &(String, u64)) -> usize {
    let mut l = LOGINS.lock().unwrap_or_else(PoisonError::into_inner);
    match l.iter_mut().find(|(k, _)| k == who) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            l.push((who.clone(), 1));
            1
        }
    }
}

/// Counts a login of `who` out; returns how many remain.
fn count_logout(who: &(String, u64)) -> usize {
    let mut l = LOGINS.lock().unwrap_or_else(PoisonError::into_inner);
    let left = match l.iter_mut().find(|(k, _)| k == who) {
        Some((_, n)) => {
            *n = n.saturating_sub(1);
            *n
        }
        None => 0,
    };
    l.retain(|(_, n)| *n > 0);
    left
}

/// A CNS (or any RSA) key on a PKCS#11 token, with its certificate.
///
/// One session, behind a mutex: PKCS#11 sessions must not be used from two threads at once.
///
/// Dropping a key that [logged in](Self::login) logs out (`C_Logout`, unless another key of this
/// process is still logged in to the same token) and closes its session, so the card forgets the
/// PIN for this program. What the **module** then does with the card is up to it: a third-party
/// module may keep its own connection to the card with the PIN verified after `C_Logout` or even
/// after `C_Finalize` (some cache the PIN, or never reset the card), and then any local PC/SC
/// client can sign without the PIN until the card is pulled. tscns' own module
/// (`tscns-pkcs11-module`) resets the card on logout.
pub struct Pkcs11Key {
    pub(crate) module: String,
    pub(crate) pkcs11: Pkcs11,
    pub(crate) slot: Slot,
    pub(crate) certificate: CertificateEntry,
    pub(crate) key_bits: usize,
    pub(crate) mechanisms: Vec<MechanismType>,
    refused: Mutex<Vec<MechanismType>>,
    state: Mutex<State>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("module", &self.module)
            .field("slot", &self.slot.id())
            .field("certificate", &self.certificate.label)
            .field("key_bits", &self.key_bits)
            .field("mechanisms", &self.mechanisms)
            .finish()
    }
}

impl Pkcs11Key {
    /// Opens the key whose certificate `selector` picks, on any token of `module`. No PIN yet.
    pub fn open(module: &Module, selector: &KeySelector) -> Result<Self, Error> {
        Self::open_certificate(module, module.find_certificate(selector)?)
    }

    /// Like [`open`](Self::open), looking only at the token in `slot_id`.
    pub fn open_in_slot(
        module: &Module,
        slot_id: u64,
        selector: &KeySelector,
    ) -> Result<Self, Error> {
        Self::open_certificate(module, module.find_certificate_in(Some(slot_id), selector)?)
    }

    /// Opens the key that belongs to `certificate` (found with [`Module::certificates`]).
    pub fn open_certificate(module: &Module, certificate: CertificateEntry) -> Result<Self, Error> {
        let slot = module.slot(certificate.slot_id)?;
        let parsed = tscns_cert::CnsCertificate::from_der(&certificate.der).map_err(|e| {
            Error::BadCertificate {
                label: certificate.label.clone(),
                reason: e.to_string(),
            }
        })?;
        let info = parsed.key();
        if info.algorithm != "RSA" {
            return Err(Error::BadCertificate {
                label: certificate.label.clone(),
                reason: format!("its key is {}, not RSA", info.algorithm),
            });
        }
        let key_bits = info.bits.ok_or_else(|| Error::BadCertificate {
            label: certificate.label.clone(),
            reason: "the RSA key size cannot be read".into(),
        })? as usize;
        let pkcs11 = module.pkcs11.clone();
        let all = pkcs11
            .get_mechanism_list(slot)
            .map_err(|e| Error::from_cryptoki("listing mechanisms", e))?;
        // Keep the mechanisms the token says can sign.
        let mechanisms = all
            .into_iter()
            .filter(|m| {
                pkcs11
                    .get_mechanism_info(slot, *m)
                    .map(|i| i.sign())
                    .unwrap_or(false)
            })
            .collect();
        let session = pkcs11
            .open_ro_session(slot)
            .map_err(|e| Error::from_cryptoki("opening a session", e))?;
        Ok(Self {
            module: module.path.display().to_string(),
            pkcs11,
            slot,
            certificate,
            key_bits,
            mechanisms,
            refused: Mutex::new(Vec::new()),
            state: Mutex::new(State {
                session,
                key: None,
                logged_in: false,
            }),
        })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate.der
    }

    /// The certificate entry (label, id, codice fiscale).
    pub fn certificate(&self) -> &CertificateEntry {
        &self.certificate
    }

    /// The RSA modulus size in bits.
    pub fn key_bits(&self) -> usize {
        self.key_bits
    }

    /// The signing mechanisms the token lists.
    pub fn mechanisms(&self) -> &[MechanismType] {
        &self.mechanisms
    }

    /// Whether the token lists `m` as a signing mechanism and has not refused it.
    pub fn has_mechanism(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
            && !self
                .refused
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&m)
    }

    /// Logs in with `pin`, sent once and never retried: a wrong PIN returns [`Error::WrongPin`] with
    /// what the token says about the tries left, a blocked one [`Error::PinBlocked`]. With feature
    /// `tls`, one probe signature then checks that PSS really works (see `probe_pss`).
    pub fn login(&self, pin: &Pin) -> Result<(), Error> {
        let info = self
            .pkcs11
            .get_token_info(self.slot)
            .map_err(|e| Error::from_cryptoki("reading the token", e))?;
        // The token's "PIN locked" flag is not trusted before trying: OpenSC reports it for cards
        // whose PIN state it cannot query (the TS-CNS through itacns). The card's own answer
        // (CKR_PIN_LOCKED) is what says the PIN is blocked.
        let len = pin.0.chars().count();
        let (min, max) = (info.min_pin_length(), info.max_pin_length());
        if len < min || (max > 0 && len > max) {
            return Err(Error::InvalidPin {
                reason: format!("the token accepts {min} to {max} characters"),
            });
        }
        let mut state = self.lock();
        let secret = cryptoki::types::AuthPin::new(pin.0.as_str().into());
        match state.session.login(UserType::User, Some(&secret)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::PinIncorrect, _)) => {
                let after = self.pkcs11.get_token_info(self.slot).ok();
                return Err(match after {
                    Some(i) if i.user_pin_final_try() && !i.user_pin_locked() => Error::WrongPin {
                        tries_left: Some(1),
                    },
                    _ => Error::WrongPin { tries_left: None },
                });
            }
            Err(e) => return Err(Error::from_cryptoki("logging in", e)),
        }
        if !state.logged_in {
            state.logged_in = true;
            count_login(&self.login_key());
        }
        state.key = Some(self.find_private_key(&state.session)?);
        drop(state);
        #[cfg(feature = "tls")]
        self.probe_pss()?;
        Ok(())
    }

    /// Logs out (the token forgets the PIN for this application: every key of this process on
    /// the same token, since a PKCS#11 login is per application).
    pub fn logout(&self) -> Result<(), Error> {
        let mut state = self.lock();
        state.key = None;
        if state.logged_in {
            state.logged_in = false;
            count_logout(&self.login_key());
        }
        match state.session.logout() {
            Ok(()) => Ok(()),
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserNotLoggedIn, _)) => {
                Ok(())
            }
            Err(e) => Err(Error::from_cryptoki("logging out", e)),
        }
    }

    /// Whether the token is logged in for this application (the session's state is a user
    /// state): after [`login`](Self::login), until [`logout`](Self::logout) or the drop of the
    /// last logged-in key on the token.
    pub fn is_logged_in(&self) -> Result<bool, Error> {
        let info = self
            .lock()
            .session
            .get_session_info()
            .map_err(|e| Error::from_cryptoki("reading the session", e))?;
        Ok(matches!(
            info.session_state(),
            cryptoki::session::SessionState::RoUser | cryptoki::session::SessionState::RwUser
        ))
    }

    fn login_key(&self) -> (String, u64) {
        (self.module.clone(), self.slot.id())
    }

    /// Uses only the listed mechanisms from now on (for a token that lists a mechanism it does not
    /// really perform, or to test a route).
    pub fn limit_mechanisms(mut self, allowed: &[MechanismType]) -> Self {
        self.mechanisms.retain(|m| allowed.contains(m));
        self
    }

    fn find_private_key(&self, session: &Session) -> Result<ObjectHandle, Error> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(self.certificate.id.clone()),
            ])
            .map_err(|e| Error::from_cryptoki("finding the private key", e))?;
        found.first().copied().ok_or_else(|| Error::NoPrivateKey {
            label: self.certificate.label.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signs `data` with `mechanism` (the caller builds the input the mechanism expects).
    /// Needs [`login`](Self::login) first; a removed token gives [`Error::TokenRemoved`].
    pub fn sign_with_mechanism(
        &self,
        mechanism: &Mechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut state = self.lock();
        let key = match state.key {
            Some(k) => k,
            None => {
                // Keys that need no login (rare) are usable at once; otherwise ask for the PIN.
                let k = self
                    .find_private_key(&state.session)
                    .map_err(|_| Error::NotLoggedIn)?;
                state.key = Some(k);
                k
            }
        };
        match state.session.sign(mechanism, key, data) {
            Ok(sig) => Ok(sig),
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::FunctionNotSupported
                | cryptoki::error::RvError::MechanismInvalid
                | cryptoki::error::RvError::MechanismParamInvalid,
                _,
            )) => {
                let m = mechanism.mechanism_type();
                tracing::warn!(mechanism = %m, "the token lists a mechanism but refuses it");
                self.refused
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(m);
                Err(Error::MechanismRefused {
                    mechanism: m.to_string(),
                })
            }
            Err(e) => Err(Error::from_cryptoki("signing", e)),
        }
    }
}

impl Drop for Pkcs11Key {
    /// Logs out if this key logged in and no other key of this process on the same token still
    /// is; the session is closed right after (its own drop).
    fn drop(&mut self) {
        let who = self.login_key();
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        state.key = None;
        if state.logged_in {
            state.logged_in = false;
            if count_logout(&who) == 0 {
                if let Err(e) = state.session.logout() {
                    tracing::debug!("logging out of {} on drop: {e}", who.0);
                }
            }
        }
    }
}
