//! The safe core of the module: slots (PC/SC readers), tokens (TS-CNS cards), sessions, login,
//! objects and signing, with PKCS#11 return codes as errors. It knows nothing of C pointers:
//! The `ffi` module converts those and calls the methods of [`Module`] under one lock.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use cryptoki_sys::*;
use tscns_apdu::pcsc::{self, Disposition, PcscTransport};
use tscns_card::{CnsCard, Error as CardError, Pin, Puk, SecretKind};

use crate::config::Config;
use crate::mechanism::{Mechanism, SignOp, MECHANISMS};
use crate::objects::{self, Attr, TokenFacts, CERTIFICATE, PRIVATE_KEY, PUBLIC_KEY};
use crate::{log, pinentry};

/// A PKCS#11 result: the error is the `CKR_` code the standard names.
pub type Result<T> = std::result::Result<T, CK_RV>;

/// PIN lengths of the CNS (cns-card spec "PIN": 5 to 8 digits).
pub const MIN_PIN_LEN: usize = 5;
/// See [`MIN_PIN_LEN`].
pub const MAX_PIN_LEN: usize = 8;
/// Tries a CNS PIN has before it blocks (CNS cards are issued with 3); used only to decide
/// `CKF_USER_PIN_COUNT_LOW` when the card reports its tries left.
pub const PIN_MAX_TRIES: u8 = 3;

/// What `C_GetSlotInfo` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// The reader's name.
    pub description: String,
    /// Whether a TS-CNS card is in it.
    pub token_present: bool,
}

/// What `C_GetTokenInfo` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenView {
    /// The holder.
    pub label: String,
    /// The maker profile.
    pub model: String,
    /// The card id.
    pub serial: String,
    /// `CKF_` token flags.
    pub flags: CK_FLAGS,
    /// Open sessions.
    pub sessions: usize,
    /// Open read/write sessions.
    pub rw_sessions: usize,
    /// Card-OS firmware from the ATR, when it carries the CNS marker.
    pub firmware: (u8, u8),
}

/// What `C_GetSessionInfo` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The slot.
    pub slot: CK_SLOT_ID,
    /// `CKS_` state.
    pub state: CK_STATE,
    /// `CKF_SERIAL_SESSION` and maybe `CKF_RW_SESSION`.
    pub flags: CK_FLAGS,
}

enum Login {
    Public,
    User,
    /// The PUK given with `CKU_SO`, kept (zeroized) only until `C_InitPIN` sends it once.
    So(Option<Puk>),
    /// The PUK given with `CKU_CONTEXT_SPECIFIC` in a public session (pkcs11-tool
    /// `--unlock-pin --login --login-type context-specific`), kept only until `C_SetPIN` or
    /// `C_InitPIN` sends it once with the new PIN.
    Unblock(Option<Puk>),
}

struct Token {
    generation: u64,
    card: CnsCard<PcscTransport>,
    facts: TokenFacts,
    firmware: (u8, u8),
    tries_left: Option<u8>,
    login: Login,
    /// A PIN or PUK went to the card: reset it when the program is done with it.
    secret_sent: bool,
}

struct Slot {
    reader: String,
    present: bool,
    atr: Option<Vec<u8>>,
    token: Option<Token>,
    /// ATR of a card in this reader that is not a TS-CNS (not probed again while it stays).
    rejected: Option<Vec<u8>>,
}

struct Session {
    slot: usize,
    generation: u64,
    rw: bool,
    find: Option<Vec<CK_OBJECT_HANDLE>>,
    sign: Option<SignOp>,
}

/// The whole state of an initialised module.
pub struct Module {
    config: Config,
    slots: Vec<Slot>,
    sessions: BTreeMap<CK_SESSION_HANDLE, Session>,
    next_session: CK_SESSION_HANDLE,
    next_generation: u64,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("slots", &self.slots.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The `CKR_` code for a card error.
fn card_rv(e: &CardError) -> CK_RV {
    match e {
        CardError::CardRemoved => CKR_DEVICE_REMOVED,
        CardError::WrongSecret { .. } => CKR_PIN_INCORRECT,
        CardError::Blocked { .. } => CKR_PIN_LOCKED,
        CardError::InvalidSecret { .. } => CKR_PIN_INVALID,
        CardError::PinRequired | CardError::PinStateLost => CKR_USER_NOT_LOGGED_IN,
        CardError::Cancelled => CKR_FUNCTION_CANCELED,
        CardError::DigestLength { .. } | CardError::BadBlock { .. } => CKR_DATA_LEN_RANGE,
        CardError::KeyTooSmall { .. } => CKR_KEY_SIZE_RANGE,
        CardError::NotUsable { .. } => CKR_PIN_LOCKED,
        CardError::Apdu(tscns_apdu::Error::NoCard { .. }) => CKR_TOKEN_NOT_PRESENT,
        _ => CKR_DEVICE_ERROR,
    }
}

/// Checks a PIN's shape before anything is sent (`CKR_PIN_INVALID`, `CKR_PIN_LEN_RANGE`).
fn check_secret(bytes: &[u8]) -> Result<&str> {
    let s = std::str::from_utf8(bytes).map_err(|_| CKR_PIN_INVALID)?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CKR_PIN_INVALID);
    }
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&s.len()) {
        return Err(CKR_PIN_LEN_RANGE);
    }
    Ok(s)
}

fn pin(bytes: &[u8]) -> Result<Pin> {
    Pin::new(check_secret(bytes)?).map_err(|e| card_rv(&e))
}

fn puk(bytes: &[u8]) -> Result<Puk> {
    Puk::new(check_secret(bytes)?).map_err(|e| card_rv(&e))
}

impl Token {
    fn flags(&self, pinentry: bool) -> CK_FLAGS {
        let mut f = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
        if pinentry {
            f |= CKF_PROTECTED_AUTHENTICATION_PATH;
        } else {
            f |= CKF_LOGIN_REQUIRED;
        }
        match self.tries_left {
            Some(0) => f |= CKF_USER_PIN_LOCKED,
            Some(1) => f |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW,
            Some(n) if n < PIN_MAX_TRIES => f |= CKF_USER_PIN_COUNT_LOW,
            _ => {}
        }
        f
    }

    fn logged_in_user(&self) -> bool {
        matches!(self.login, Login::User)
    }

    /// Records what a PIN-bearing command told about the tries left.
    fn note(&mut self, r: &std::result::Result<(), CardError>) {
        match r {
            Ok(()) => self.tries_left = None,
            Err(CardError::WrongSecret {
                kind: SecretKind::Pin,
                tries_left,
            }) => self.tries_left = *tries_left,
            Err(CardError::Blocked {
                kind: SecretKind::Pin,
            }) => self.tries_left = Some(0),
            Err(_) => {}
        }
    }

    /// Warm-resets the card if a secret was sent to it, so that it forgets a verified PIN.
    fn reset_if_needed(&mut self) {
        if self.secret_sent || self.card.is_pin_verified() {
            let r = self
                .card
                .reset_with(|t| t.reconnect_with(Disposition::ResetCard));
            log::line(&format!(
                "card in {:?} reset after PIN use: {}",
                self.card.recognition().generation.name,
                if r.is_ok() {
                    "ok"
                } else {
                    "failed (card gone?)"
                }
            ));
            self.secret_sent = false;
        }
        self.login = Login::Public;
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.reset_if_needed();
    }
}

impl Module {
    /// A module with no slot seen yet.
    pub fn new(config: Config) -> Module {
        Module {
            config,
            slots: Vec::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            next_generation: 1,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Looks at the readers again: new readers become new slots, a card that left drops its
    /// token (its sessions then answer `CKR_DEVICE_REMOVED`).
    fn refresh(&mut self) {
        let readers = match pcsc::list_readers() {
            Ok(r) => r,
            Err(e) => {
                log::line(&format!("PC/SC: {e}"));
                Vec::new()
            }
        };
        for s in &mut self.slots {
            s.present = false;
        }
        for r in readers {
            if let Some(filter) = &self.config.reader {
                if !r.name.contains(filter.as_str()) {
                    continue;
                }
            }
            let idx = match self.slots.iter().position(|s| s.reader == r.name) {
                Some(i) => i,
                None => {
                    self.slots.push(Slot {
                        reader: r.name.clone(),
                        present: false,
                        atr: None,
                        token: None,
                        rejected: None,
                    });
                    self.slots.len() - 1
                }
            };
            let s = &mut self.slots[idx];
            s.present = r.card_present && r.atr.is_some();
            if s.atr != r.atr {
                // Another card (or none): the old token is gone.
                s.token = None;
                s.rejected = None;
            }
            s.atr = r.atr;
        }
        for s in &mut self.slots {
            if !s.present {
                s.token = None;
                s.rejected = None;
                s.atr = None;
            }
        }
    }

    /// Connects to the card of a slot and reads its identity when not done yet.
    fn ensure_token(&mut self, idx: usize) -> bool {
        let Some(slot) = self.slots.get_mut(idx) else {
            return false;
        };
        if slot.token.is_some() {
            return true;
        }
        if !slot.present || (slot.rejected.is_some() && slot.rejected == slot.atr) {
            return false;
        }
        let opened = PcscTransport::connect(&slot.reader)
            .map_err(CardError::from)
            .and_then(CnsCard::open)
            .and_then(|mut card| {
                let id = card.identity()?.clone();
                Ok((card, id))
            });
        match opened {
            Ok((mut card, id)) => {
                let rec = card.recognition();
                let model = rec.generation.name.to_owned();
                let firmware = rec.info.map(|i| i.firmware).unwrap_or((0, 0));
                let facts = match TokenFacts::from_identity(&id, &model) {
                    Ok(f) => f,
                    Err(e) => {
                        log::line(&format!("{}: unusable certificate: {e}", slot.reader));
                        slot.rejected = slot.atr.clone();
                        return false;
                    }
                };
                let tries_left = if self.config.query_pin_tries {
                    card.query_pin_tries().ok().flatten()
                } else {
                    None
                };
                let generation = self.next_generation;
                self.next_generation += 1;
                slot.token = Some(Token {
                    generation,
                    card,
                    facts,
                    firmware,
                    tries_left,
                    login: Login::Public,
                    secret_sent: false,
                });
                true
            }
            Err(e) => {
                log::line(&format!("{}: not a usable TS-CNS: {e}", slot.reader));
                if matches!(
                    e,
                    CardError::NotCns { .. }
                        | CardError::Certificate { .. }
                        | CardError::CardId { .. }
                        | CardError::PersonalData { .. }
                        | CardError::FileNotFound { .. }
                ) {
                    slot.rejected = slot.atr.clone();
                }
                false
            }
        }
    }

    fn slot_index(&self, id: CK_SLOT_ID) -> Result<usize> {
        let idx = usize::try_from(id).map_err(|_| CKR_SLOT_ID_INVALID)?;
        if idx < self.slots.len() {
            Ok(idx)
        } else {
            Err(CKR_SLOT_ID_INVALID)
        }
    }

    fn token_of_slot(&mut self, id: CK_SLOT_ID) -> Result<&mut Token> {
        self.refresh();
        let idx = self.slot_index(id)?;
        if !self.ensure_token(idx) {
            let s = &self.slots[idx];
            return Err(if s.present && s.rejected.is_some() {
                CKR_TOKEN_NOT_RECOGNIZED
            } else {
                CKR_TOKEN_NOT_PRESENT
            });
        }
        self.slots[idx].token.as_mut().ok_or(CKR_TOKEN_NOT_PRESENT)
    }

    /// `C_GetSlotList`.
    pub fn slot_list(&mut self, token_present: bool) -> Vec<CK_SLOT_ID> {
        self.refresh();
        let mut out = Vec::new();
        for idx in 0..self.slots.len() {
            if !token_present || self.ensure_token(idx) {
                out.push(idx as CK_SLOT_ID);
            }
        }
        out
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&mut self, id: CK_SLOT_ID) -> Result<SlotView> {
        self.refresh();
        let idx = self.slot_index(id)?;
        let token_present = self.ensure_token(idx);
        Ok(SlotView {
            description: self.slots[idx].reader.clone(),
            token_present,
        })
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&mut self, id: CK_SLOT_ID) -> Result<TokenView> {
        let pinentry = self.config.pinentry_mode();
        let idx = self.slot_index(id).or_else(|_| {
            self.refresh();
            self.slot_index(id)
        })?;
        let t = self.token_of_slot(id)?;
        let (generation, flags) = (t.generation, t.flags(pinentry));
        let (label, model, serial, firmware) = (
            t.facts.holder.clone(),
            t.facts.model.clone(),
            t.facts.card_id.clone(),
            t.firmware,
        );
        let mine = self
            .sessions
            .values()
            .filter(|s| s.slot == idx && s.generation == generation);
        let (sessions, rw_sessions) = mine.fold((0, 0), |(a, b), s| (a + 1, b + usize::from(s.rw)));
        Ok(TokenView {
            label,
            model,
            serial,
            flags,
            sessions,
            rw_sessions,
            firmware,
        })
    }

    /// `C_GetMechanismList`.
    pub fn mechanisms(&mut self, id: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.token_of_slot(id)?;
        Ok(MECHANISMS.to_vec())
    }

    /// `C_GetMechanismInfo`: key sizes and `CKF_` flags.
    pub fn mechanism_info(
        &mut self,
        id: CK_SLOT_ID,
        m: CK_MECHANISM_TYPE,
    ) -> Result<(CK_ULONG, CK_ULONG, CK_FLAGS)> {
        let bits = self.token_of_slot(id)?.facts.bits as CK_ULONG;
        if !MECHANISMS.contains(&m) {
            return Err(CKR_MECHANISM_INVALID);
        }
        Ok((bits, bits, CKF_HW | CKF_SIGN))
    }

    /// `C_OpenSession`.
    pub fn open_session(&mut self, id: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        let idx = self.slot_index(id).or_else(|_| {
            self.refresh();
            self.slot_index(id)
        })?;
        let t = self.token_of_slot(id)?;
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && matches!(t.login, Login::So(_)) {
            return Err(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        let generation = t.generation;
        let h = self.next_session;
        self.next_session += 1;
        self.sessions.insert(
            h,
            Session {
                slot: idx,
                generation,
                rw,
                find: None,
                sign: None,
            },
        );
        Ok(h)
    }

    /// The session and its token; a token that left gives `CKR_DEVICE_REMOVED` (and closes the
    /// session), a stale session of an earlier card `CKR_SESSION_HANDLE_INVALID`.
    fn session(&mut self, h: CK_SESSION_HANDLE) -> Result<(&mut Session, &mut Token)> {
        let s = self.sessions.get(&h).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        let (slot, generation) = (s.slot, s.generation);
        let current = self
            .slots
            .get(slot)
            .and_then(|x| x.token.as_ref())
            .map(|t| t.generation);
        match current {
            Some(g) if g == generation => {}
            Some(_) => {
                self.sessions.remove(&h);
                return Err(CKR_SESSION_HANDLE_INVALID);
            }
            None => {
                self.sessions.remove(&h);
                return Err(CKR_DEVICE_REMOVED);
            }
        }
        let s = self
            .sessions
            .get_mut(&h)
            .ok_or(CKR_SESSION_HANDLE_INVALID)?;
        let t = self.slots[slot].token.as_mut().ok_or(CKR_DEVICE_REMOVED)?;
        Ok((s, t))
    }

    /// Maps a card error, dropping the token when the card left.
    fn card_failed(&mut self, h: CK_SESSION_HANDLE, e: &CardError) -> CK_RV {
        let rv = card_rv(e);
        if rv == CKR_DEVICE_REMOVED {
            if let Some(slot) = self.sessions.get(&h).map(|s| s.slot) {
                if let Some(s) = self.slots.get_mut(slot) {
                    s.token = None;
                }
            }
            self.sessions.remove(&h);
        }
        rv
    }

    /// `C_CloseSession`. Closing the last session of a token logs out (and resets the card if a
    /// PIN was used).
    pub fn close_session(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self.sessions.remove(&h).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        let others = self
            .sessions
            .values()
            .any(|o| o.slot == s.slot && o.generation == s.generation);
        if !others {
            if let Some(t) = self.slots.get_mut(s.slot).and_then(|x| x.token.as_mut()) {
                if t.generation == s.generation {
                    t.reset_if_needed();
                }
            }
        }
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&mut self, id: CK_SLOT_ID) -> Result<()> {
        let idx = self.slot_index(id)?;
        self.sessions.retain(|_, s| s.slot != idx);
        if let Some(t) = self.slots[idx].token.as_mut() {
            t.reset_if_needed();
        }
        Ok(())
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&mut self, h: CK_SESSION_HANDLE) -> Result<SessionView> {
        let (s, t) = self.session(h)?;
        let state = match (&t.login, s.rw) {
            (Login::So(_), _) => CKS_RW_SO_FUNCTIONS,
            (Login::User, true) => CKS_RW_USER_FUNCTIONS,
            (Login::User, false) => CKS_RO_USER_FUNCTIONS,
            (Login::Public | Login::Unblock(_), true) => CKS_RW_PUBLIC_SESSION,
            (Login::Public | Login::Unblock(_), false) => CKS_RO_PUBLIC_SESSION,
        };
        let flags = CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 };
        Ok(SessionView {
            slot: s.slot as CK_SLOT_ID,
            state,
            flags,
        })
    }

    /// The description pinentry shows: the holder and the tries left, in Italian.
    fn prompt(t: &Token) -> String {
        let mut d = format!(
            "Inserire il PIN della Tessera Sanitaria - Carta Nazionale dei Servizi di {} \
             (carta {}).",
            t.facts.holder, t.facts.card_id
        );
        match t.tries_left {
            Some(1) => {
                d.push_str("\nAttenzione: resta un solo tentativo prima del blocco del PIN.")
            }
            Some(n) => d.push_str(&format!("\nTentativi rimasti: {n}.")),
            None => {}
        }
        d
    }

    /// Asks pinentry for the PIN (once) and verifies it on the card (once).
    fn verify_with_pinentry(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        let program = self.config.pinentry.clone().ok_or(CKR_ARGUMENTS_BAD)?;
        let query = self.config.query_pin_tries;
        let (_, t) = self.session(h)?;
        if query && t.tries_left.is_none() {
            t.tries_left = t.card.query_pin_tries().ok().flatten();
        }
        if t.tries_left == Some(0) {
            return Err(CKR_PIN_LOCKED);
        }
        let description = Self::prompt(t);
        let answer = pinentry::ask(&program, "TS-CNS", &description).map_err(|e| {
            log::line(&format!("pinentry: {e}"));
            CKR_FUNCTION_FAILED
        })?;
        let typed = match answer {
            pinentry::Answer::Pin(p) => p,
            pinentry::Answer::Cancelled => return Err(CKR_FUNCTION_CANCELED),
        };
        let p = pin(typed.as_bytes())?;
        self.verify(h, &p)
    }

    fn verify(&mut self, h: CK_SESSION_HANDLE, p: &Pin) -> Result<()> {
        let (_, t) = self.session(h)?;
        t.secret_sent = true;
        let r = t.card.verify_pin(p);
        t.note(&r);
        match r {
            Ok(()) => {
                t.login = Login::User;
                Ok(())
            }
            Err(e) => Err(self.card_failed(h, &e)),
        }
    }

    /// `C_Login`. `secret` is `None` for a NULL PIN (pinentry mode only).
    pub fn login(
        &mut self,
        h: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        secret: Option<&[u8]>,
    ) -> Result<()> {
        let pinentry = self.config.pinentry_mode();
        let slot = self.session(h)?.0.slot;
        let ro_exists = self.sessions.values().any(|s| s.slot == slot && !s.rw);
        let (_, t) = self.session(h)?;
        match (user, &t.login) {
            (CKU_USER, Login::User) | (CKU_SO, Login::So(_)) => {
                return Err(CKR_USER_ALREADY_LOGGED_IN)
            }
            (CKU_USER, Login::So(_)) | (CKU_SO, Login::User) => {
                return Err(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
            }
            (CKU_CONTEXT_SPECIFIC, Login::Public) => {
                // No key needs a context-specific login (CKA_ALWAYS_AUTHENTICATE is false):
                // here it gives the PUK for a following C_SetPIN / C_InitPIN, as OpenSC's
                // "set_pin_in_specific_context" unblock style does.
                let p = puk(secret.ok_or(CKR_ARGUMENTS_BAD)?)?;
                t.login = Login::Unblock(Some(p));
                return Ok(());
            }
            (CKU_CONTEXT_SPECIFIC, _) => return Err(CKR_OPERATION_NOT_INITIALIZED),
            (CKU_USER | CKU_SO, Login::Public | Login::Unblock(_)) => {}
            _ => return Err(CKR_USER_TYPE_INVALID),
        }
        if user == CKU_SO {
            if ro_exists {
                return Err(CKR_SESSION_READ_ONLY_EXISTS);
            }
            // The PUK is checked by the card when C_InitPIN sends it (RESET RETRY COUNTER):
            // the CNS has no way to verify it alone without using it.
            let p = puk(secret.ok_or(CKR_ARGUMENTS_BAD)?)?;
            t.login = Login::So(Some(p));
            return Ok(());
        }
        match secret {
            Some(s) => {
                let p = pin(s)?;
                self.verify(h, &p)
            }
            None if pinentry => self.verify_with_pinentry(h),
            None => Err(CKR_ARGUMENTS_BAD),
        }
    }

    /// `C_Logout`: the card is reset so that it forgets the PIN.
    pub fn logout(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (_, t) = self.session(h)?;
        if matches!(t.login, Login::Public | Login::Unblock(_)) {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        t.reset_if_needed();
        for s in self.sessions.values_mut() {
            s.sign = None;
        }
        Ok(())
    }

    /// `C_InitPIN` in an SO session: RESET RETRY COUNTER with the PUK given at login and the
    /// new PIN. The PUK is sent once and forgotten, whatever the card answers.
    pub fn init_pin(&mut self, h: CK_SESSION_HANDLE, new: Option<&[u8]>) -> Result<()> {
        let (s, t) = self.session(h)?;
        if !s.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        let puk = match &mut t.login {
            Login::So(p) | Login::Unblock(p) => p.take().ok_or(CKR_USER_NOT_LOGGED_IN)?,
            _ => return Err(CKR_USER_NOT_LOGGED_IN),
        };
        let new = pin(new.ok_or(CKR_ARGUMENTS_BAD)?)?;
        self.unblock(h, puk, &new)
    }

    /// RESET RETRY COUNTER, the PUK sent once and dropped.
    fn unblock(&mut self, h: CK_SESSION_HANDLE, puk: Puk, new: &Pin) -> Result<()> {
        let (_, t) = self.session(h)?;
        t.secret_sent = true;
        let r = t.card.unblock_pin(&puk, new);
        drop(puk);
        if matches!(t.login, Login::Unblock(_)) {
            t.login = Login::Public;
        }
        match r {
            Ok(()) => {
                t.tries_left = None;
                Ok(())
            }
            Err(e) => Err(self.card_failed(h, &e)),
        }
    }

    /// `C_SetPIN` (user or public session): CHANGE REFERENCE DATA, each PIN sent once.
    pub fn set_pin(
        &mut self,
        h: CK_SESSION_HANDLE,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        let (s, t) = self.session(h)?;
        if !s.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        if matches!(t.login, Login::So(_)) {
            // Changing the PUK is not offered.
            return Err(CKR_FUNCTION_NOT_SUPPORTED);
        }
        if let Login::Unblock(p) = &mut t.login {
            let puk = p.take().ok_or(CKR_USER_NOT_LOGGED_IN)?;
            let new = pin(new.ok_or(CKR_ARGUMENTS_BAD)?)?;
            return self.unblock(h, puk, &new);
        }
        if t.tries_left == Some(0) && matches!(t.login, Login::Public) {
            // The PIN is blocked, so CHANGE REFERENCE DATA cannot succeed: the "old PIN" of a
            // C_SetPIN in a public session is then the PUK (OpenSC's
            // "set_pin_in_unlogged_session" unblock style, pkcs11-tool --unlock-pin --puk).
            let puk = puk(old.ok_or(CKR_ARGUMENTS_BAD)?)?;
            let new = pin(new.ok_or(CKR_ARGUMENTS_BAD)?)?;
            return self.unblock(h, puk, &new);
        }
        let old = pin(old.ok_or(CKR_ARGUMENTS_BAD)?)?;
        let new = pin(new.ok_or(CKR_ARGUMENTS_BAD)?)?;
        t.secret_sent = true;
        let r = t.card.change_pin(&old, &new);
        t.note(&r);
        r.map_err(|e| self.card_failed(h, &e))
    }

    /// `C_FindObjectsInit`.
    pub fn find_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        let pinentry = self.config.pinentry_mode();
        let (s, t) = self.session(h)?;
        if s.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let show_private = t.logged_in_user() || pinentry;
        let found = [CERTIFICATE, PUBLIC_KEY, PRIVATE_KEY]
            .into_iter()
            .filter(|&o| o != PRIVATE_KEY || show_private)
            .filter(|&o| objects::matches(&t.facts, o, template))
            .rev()
            .collect();
        s.find = Some(found);
        Ok(())
    }

    /// `C_FindObjects`: up to `max` handles.
    pub fn find(&mut self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let (s, _) = self.session(h)?;
        let list = s.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let mut out = Vec::new();
        while out.len() < max {
            match list.pop() {
                Some(o) => out.push(o),
                None => break,
            }
        }
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (s, _) = self.session(h)?;
        s.find
            .take()
            .map(|_| ())
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    /// `C_GetAttributeValue`: one answer per requested type.
    pub fn attributes(
        &mut self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<Attr>> {
        let pinentry = self.config.pinentry_mode();
        let (_, t) = self.session(h)?;
        let visible = match object {
            CERTIFICATE | PUBLIC_KEY => true,
            PRIVATE_KEY => t.logged_in_user() || pinentry,
            _ => false,
        };
        if !visible {
            return Err(CKR_OBJECT_HANDLE_INVALID);
        }
        Ok(types
            .iter()
            .map(|&ty| objects::attribute(&t.facts, object, ty))
            .collect())
    }

    /// `C_GetObjectSize`: the length of the object's value (`CK_UNAVAILABLE_INFORMATION` for the
    /// keys, whose size on the card is not known).
    pub fn object_size(
        &mut self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<CK_ULONG> {
        let pinentry = self.config.pinentry_mode();
        let (_, t) = self.session(h)?;
        let visible = match object {
            CERTIFICATE | PUBLIC_KEY => true,
            PRIVATE_KEY => t.logged_in_user() || pinentry,
            _ => false,
        };
        if !visible {
            return Err(CKR_OBJECT_HANDLE_INVALID);
        }
        Ok(match object {
            CERTIFICATE => t.facts.cert_der.len() as CK_ULONG,
            _ => objects::UNAVAILABLE,
        })
    }

    /// `C_SignInit`.
    pub fn sign_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let pinentry = self.config.pinentry_mode();
        let (s, t) = self.session(h)?;
        if s.sign.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        match key {
            PRIVATE_KEY if t.logged_in_user() || pinentry => {}
            PUBLIC_KEY => return Err(CKR_KEY_FUNCTION_NOT_PERMITTED),
            _ => return Err(CKR_KEY_HANDLE_INVALID),
        }
        s.sign = Some(SignOp::new(mechanism, t.facts.bits)?);
        Ok(())
    }

    /// The signature length of the active operation (`C_Sign` / `C_SignFinal` size queries).
    pub fn sign_len(&mut self, h: CK_SESSION_HANDLE) -> Result<usize> {
        let (s, _) = self.session(h)?;
        s.sign
            .as_ref()
            .map(SignOp::signature_len)
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    /// `C_SignUpdate`.
    pub fn sign_update(&mut self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let (s, _) = self.session(h)?;
        let op = s.sign.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.multipart = true;
        let r = op.update(data);
        if r.is_err() {
            s.sign = None;
        }
        r
    }

    /// `C_Sign` (`data` is `Some`) or `C_SignFinal` (`None`): the operation ends either way.
    pub fn sign(&mut self, h: CK_SESSION_HANDLE, data: Option<&[u8]>) -> Result<Vec<u8>> {
        let pinentry = self.config.pinentry_mode();
        let (s, t) = self.session(h)?;
        let mut op = s.sign.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if let Some(d) = data {
            if op.multipart {
                return Err(CKR_OPERATION_ACTIVE);
            }
            op.update(d)?;
        }
        let block = op.block()?;
        if !t.logged_in_user() {
            if !pinentry {
                return Err(CKR_USER_NOT_LOGGED_IN);
            }
            // Pinentry mode: the first signature that needs the PIN asks for it, once.
            self.verify_with_pinentry(h)?;
        }
        let (_, t) = self.session(h)?;
        match t.card.sign_raw_block(&block) {
            Ok(sig) => Ok(sig),
            Err(e) => {
                if matches!(e, CardError::PinRequired | CardError::PinStateLost) {
                    t.login = Login::Public;
                }
                Err(self.card_failed(h, &e))
            }
        }
    }

    /// Ends the active signing operation without a signature.
    pub fn sign_abort(&mut self, h: CK_SESSION_HANDLE) {
        if let Ok((s, _)) = self.session(h) {
            s.sign = None;
        }
    }

    /// Whether the session exists and its token is still there (argument checks of the C layer
    /// come after this one, as the standard orders them).
    pub fn check_session(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.session(h).map(|_| ())
    }

    /// `C_Finalize`: every session closed, every card that saw a PIN reset.
    pub fn finalize(mut self) {
        self.sessions.clear();
        for s in &mut self.slots {
            if let Some(t) = s.token.as_mut() {
                t.reset_if_needed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_checked_before_sending() {
        assert_eq!(check_secret(b"12345"), Ok("12345"));
        assert_eq!(check_secret(b"1234"), Err(CKR_PIN_LEN_RANGE));
        assert_eq!(check_secret(b"123456789"), Err(CKR_PIN_LEN_RANGE));
        assert_eq!(check_secret(b"12a45"), Err(CKR_PIN_INVALID));
        assert_eq!(
            check_secret(&[0xFF, 0x31, 0x32, 0x33, 0x34]),
            Err(CKR_PIN_INVALID)
        );
    }

    #[test]
    fn errors_of_the_card_map_to_the_standard_codes() {
        assert_eq!(
            card_rv(&CardError::WrongSecret {
                kind: SecretKind::Pin,
                tries_left: Some(2)
            }),
            CKR_PIN_INCORRECT
        );
        assert_eq!(
            card_rv(&CardError::Blocked {
                kind: SecretKind::Pin
            }),
            CKR_PIN_LOCKED
        );
        assert_eq!(card_rv(&CardError::CardRemoved), CKR_DEVICE_REMOVED);
        assert_eq!(card_rv(&CardError::PinStateLost), CKR_USER_NOT_LOGGED_IN);
    }
}
