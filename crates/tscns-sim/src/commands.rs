//! The card application: one C-APDU in, one R-APDU out. No faults, no timing: see
//! [`crate::SimCard`] for those.
//!
//! Byte values follow ISO/IEC 7816-4 and the CNS functional specification (CNIPA/AgID) and OpenSC's itacns driver; where OpenSC's
//! `card-itacns.c` decided the detail (the MSE RESTORE trailing byte, PIN padding, the STIncard
//! reference bit) the comment says so.

use std::sync::Arc;

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha20Rng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use tscns_apdu::{
    Command, Response, StatusWord, CLA_CHAINING as CLA_CHAIN, INS_CHANGE_REFERENCE_DATA,
    INS_GET_RESPONSE, INS_READ_BINARY, INS_RESET_RETRY_COUNTER, INS_VERIFY,
};
use zeroize::Zeroizing;

use tscns_generations::{SignPath, PIN_BLOCK_LEN};

use crate::fs::{FileSystem, Kind};
use crate::pki::{rng, Stream, TestPki};
use crate::profile::{DatalessVerify, Guesses, Maker, SimProfile};

// Instructions (ISO/IEC 7816-4 §11, §12.6; PSO from ISO/IEC 7816-8) that tscns-apdu does not
// name; VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, READ BINARY, GET RESPONSE and the
// chaining CLA bit come from there.
const INS_SELECT: u8 = 0xA4;
const INS_MSE: u8 = 0x22;
const INS_PSO: u8 = 0x2A;
const INS_GET_CHALLENGE: u8 = 0x84;
const INS_GET_DATA: u8 = 0xCA;

// The PIN and PUK references, the PIN padding, the key reference, the security environment and
// the PSO parameters come from the card's generation (`tscns_generations`), as the driver's do.
/// Stored PIN length: PINs are padded to 8 bytes (OpenSC pkcs15-itacns.c).
const PIN_BLOCK: usize = PIN_BLOCK_LEN;
/// Largest chained PSO input the card buffers.
const MAX_CHAIN: usize = 1024;

fn status(s: StatusWord) -> Response {
    Response::new(Vec::new(), s)
}

/// A PIN or PUK with its retry counter.
#[derive(Clone)]
struct Credential {
    block: Zeroizing<[u8; PIN_BLOCK]>,
    max: u8,
    left: u8,
    verified: bool,
}

/// A well-formed new PIN block: 5-8 ASCII digits then the generation's padding.
fn valid_block(block: &[u8], pad: u8) -> bool {
    let digits = block.iter().take_while(|b| b.is_ascii_digit()).count();
    block.len() == PIN_BLOCK
        && (5..=8).contains(&digits)
        && block[digits..].iter().all(|b| *b == pad)
}

impl Credential {
    fn new(digits: &str, max: u8, pad: u8) -> Self {
        Credential {
            block: tscns_generations::pin_block(digits.as_bytes(), pad),
            max,
            left: max,
            verified: false,
        }
    }

    fn blocked(&self) -> bool {
        self.left == 0
    }

    /// Compares a presented block; counts a failure. Answers 9000, 63Cx or 6983.
    fn check(&mut self, presented: &[u8]) -> Result<(), StatusWord> {
        if self.blocked() {
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        // Constant-time enough for a simulator; the point is the counter.
        if presented.len() == PIN_BLOCK && presented == &self.block[..] {
            self.left = self.max;
            self.verified = true;
            Ok(())
        } else {
            self.left -= 1;
            self.verified = false;
            Err(StatusWord::new(0x63, 0xC0 | self.left))
        }
    }

    /// The answer to a data-less VERIFY: the state without consuming a try.
    fn state(&self) -> StatusWord {
        if self.blocked() {
            StatusWord::AUTH_METHOD_BLOCKED
        } else if self.verified {
            StatusWord::SUCCESS
        } else {
            StatusWord::new(0x63, 0xC0 | self.left)
        }
    }
}

/// The current security environment: which key MSE SET chose, for what.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct SecurityEnv {
    /// Key reference chosen for signing (MSE SET, DST template B6).
    sign: Option<u8>,
    /// Key reference chosen for deciphering (MSE SET, CT template B8).
    decipher: Option<u8>,
}

/// A PSO command whose data arrives in a chain.
#[derive(Clone)]
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Zeroizing<Vec<u8>>,
}

/// The state of the card application.
#[derive(Clone)]
pub(crate) struct Engine {
    maker: Maker,
    extended_length: bool,
    command_chaining: bool,
    fs: FileSystem,
    current_df: usize,
    current_ef: Option<usize>,
    pin: Credential,
    puk: Credential,
    env: SecurityEnv,
    chain: Option<Chain>,
    key: Arc<RsaPrivateKey>,
    key_len: usize,
    challenge: ChaCha20Rng,
    signatures: u64,
    guesses: Guesses,
    /// The generation's application (AID) is selected: its files are visible.
    app_selected: bool,
}

impl Engine {
    pub(crate) fn new(profile: &SimProfile, pki: &TestPki) -> Engine {
        let key = pki.card_private_key();
        let generation = profile.maker.generation();
        Engine {
            maker: profile.maker,
            extended_length: profile.extended_length,
            command_chaining: profile.command_chaining,
            fs: FileSystem::build(profile, pki),
            current_df: 0,
            current_ef: None,
            pin: Credential::new(profile.pin.expose(), profile.pin_tries, generation.pin.pad),
            puk: Credential::new(profile.puk.expose(), profile.puk_tries, generation.pin.pad),
            env: SecurityEnv::default(),
            chain: None,
            key_len: key.size(),
            key,
            challenge: rng(profile.seed, Stream::Challenge),
            signatures: 0,
            guesses: profile.guesses,
            app_selected: false,
        }
    }

    /// Power off, power on or reset: the security state and the selection are lost; PINs and
    /// counters stay (they live in EEPROM).
    pub(crate) fn reset(&mut self) {
        self.current_df = 0;
        self.current_ef = None;
        self.pin.verified = false;
        self.puk.verified = false;
        self.env = SecurityEnv::default();
        self.chain = None;
        self.app_selected = false;
    }

    pub(crate) fn signatures(&self) -> u64 {
        self.signatures
    }

    pub(crate) fn pin_tries_left(&self) -> u8 {
        self.pin.left
    }

    pub(crate) fn puk_tries_left(&self) -> u8 {
        self.puk.left
    }

    pub(crate) fn pin_verified(&self) -> bool {
        self.pin.verified
    }

    /// Processes one raw C-APDU and returns the raw R-APDU.
    pub(crate) fn process_raw(&mut self, raw: &[u8]) -> Vec<u8> {
        let response = match Command::decode(raw) {
            Ok(cmd) => self.process(&cmd),
            // A malformed length field: ISO "wrong length".
            Err(_) => status(StatusWord::WRONG_LENGTH),
        };
        response.to_bytes()
    }

    fn process(&mut self, cmd: &Command) -> Response {
        let chained = cmd.cla() & CLA_CHAIN != 0;
        if cmd.cla() & !CLA_CHAIN != 0 {
            // Proprietary classes, logical channels, secure messaging: not on this card.
            self.chain = None;
            return status(StatusWord::CLA_NOT_SUPPORTED);
        }
        if cmd.is_extended() && !self.extended_length {
            self.chain = None;
            return status(StatusWord::WRONG_LENGTH);
        }
        if chained {
            return self.chain_part(cmd);
        }
        // A command that does not finish the pending chain abandons it.
        let chain = self
            .chain
            .take()
            .filter(|c| (c.ins, c.p1, c.p2) == (cmd.ins(), cmd.p1(), cmd.p2()));
        // The PIN and the key of a card with an application live in it: outside it, they are
        // not found.
        let in_app = self.app_selected || self.maker.generation().layout.aid.is_none();
        if !in_app
            && matches!(
                cmd.ins(),
                INS_VERIFY
                    | INS_CHANGE_REFERENCE_DATA
                    | INS_RESET_RETRY_COUNTER
                    | INS_MSE
                    | INS_PSO
            )
        {
            return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        match cmd.ins() {
            INS_SELECT => self.select(cmd),
            INS_READ_BINARY => self.read_binary(cmd),
            INS_VERIFY => self.verify(cmd),
            INS_CHANGE_REFERENCE_DATA => self.change_reference_data(cmd),
            INS_RESET_RETRY_COUNTER => self.reset_retry_counter(cmd),
            INS_MSE => self.mse(cmd),
            INS_PSO => {
                let data: Zeroizing<Vec<u8>> = match chain {
                    Some(mut c) => {
                        c.data.extend_from_slice(cmd.data());
                        c.data
                    }
                    None => Zeroizing::new(cmd.data().to_vec()),
                };
                self.pso(cmd, &data)
            }
            INS_GET_CHALLENGE => self.get_challenge(cmd),
            INS_GET_DATA => self.get_data(cmd),
            // Answers never leave data pending (no 61xx), so there is nothing to get.
            INS_GET_RESPONSE => status(StatusWord::CONDITIONS_NOT_SATISFIED),
            _ => status(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn chain_part(&mut self, cmd: &Command) -> Response {
        if self.maker.generation().lengths.never_chain {
            // ST2021 answers a chained 257-byte block with 6E00 (cns-card spec "Card
            // generations since 2021").
            self.chain = None;
            return status(StatusWord::CLA_NOT_SUPPORTED);
        }
        if !self.command_chaining {
            return status(StatusWord::CHAINING_NOT_SUPPORTED);
        }
        if cmd.ins() != INS_PSO {
            self.chain = None;
            return status(StatusWord::CHAINING_NOT_SUPPORTED);
        }
        let mut chain = match self.chain.take() {
            Some(c) if (c.ins, c.p1, c.p2) == (cmd.ins(), cmd.p1(), cmd.p2()) => c,
            _ => Chain {
                ins: cmd.ins(),
                p1: cmd.p1(),
                p2: cmd.p2(),
                data: Zeroizing::new(Vec::new()),
            },
        };
        if chain.data.len() + cmd.data().len() > MAX_CHAIN {
            return status(StatusWord::WRONG_LENGTH);
        }
        chain.data.extend_from_slice(cmd.data());
        self.chain = Some(chain);
        status(StatusWord::SUCCESS)
    }

    // ---- SELECT ------------------------------------------------------------------------------

    fn select(&mut self, cmd: &Command) -> Response {
        let data = cmd.data();
        let p2_template = match cmd.p2() {
            0x00 => Some(0x6F), // FCI
            0x04 => Some(0x62), // FCP
            0x0C => None,       // no answer data
            _ => return status(StatusWord::INCORRECT_P1P2),
        };
        let even_path = !data.is_empty() && data.len().is_multiple_of(2);
        let layout = self.maker.generation().layout;
        if cmd.p1() != 0x04 {
            // The files of a card with an application are visible only while it is selected;
            // ACe 2025 refuses step-by-step selects (the public trace: 6A82).
            let hidden = layout.aid.is_some() && !self.app_selected;
            let by_fid = matches!(cmd.p1(), 0x00..=0x02);
            if hidden || (by_fid && !layout.select_by_fid) {
                return status(StatusWord::FILE_NOT_FOUND);
            }
        }
        let target = match cmd.p1() {
            // By FID; no data = the MF.
            0x00 => match data.len() {
                0 => Some(0),
                2 => self
                    .fs
                    .find_fid(self.current_df, u16::from_be_bytes([data[0], data[1]])),
                _ => return status(StatusWord::WRONG_LENGTH),
            },
            // Child DF / EF under the current DF.
            0x01 | 0x02 => {
                if data.len() != 2 {
                    return status(StatusWord::WRONG_LENGTH);
                }
                let fid = u16::from_be_bytes([data[0], data[1]]);
                self.fs
                    .child(self.current_df, fid)
                    .filter(|id| self.fs.is_df(*id) == (cmd.p1() == 0x01))
            }
            // Parent DF.
            0x03 => {
                if !data.is_empty() {
                    return status(StatusWord::WRONG_LENGTH);
                }
                self.fs.node(self.current_df).parent
            }
            // By DF name: the application of a generation with an AID (its files hang below the
            // MF, which it selects); the classic CNS has no AIDs.
            0x04 => {
                if data.is_empty() {
                    return status(StatusWord::WRONG_LENGTH);
                }
                if layout.aid != Some(data) {
                    return status(StatusWord::FILE_NOT_FOUND);
                }
                self.app_selected = true;
                self.current_df = 0;
                self.current_ef = None;
                if !layout.aid_fci.is_empty() && p2_template == Some(0x6F) {
                    // The FCI of the public trace, byte for byte.
                    let fci = layout.aid_fci.to_vec();
                    return match cmd.le() {
                        Some(le) if le < fci.len() => {
                            Response::new(fci[..le].to_vec(), StatusWord::END_OF_FILE)
                        }
                        _ => Response::new(fci, StatusWord::SUCCESS),
                    };
                }
                Some(0)
            }
            // Path from the MF (without 3F00) or from the current DF.
            0x08 | 0x09 => {
                if !even_path {
                    return status(StatusWord::WRONG_LENGTH);
                }
                let start = if cmd.p1() == 0x08 { 0 } else { self.current_df };
                self.fs.follow(start, data)
            }
            _ => return status(StatusWord::INCORRECT_P1P2),
        };
        let Some(id) = target else {
            return status(StatusWord::FILE_NOT_FOUND);
        };
        self.current_df = self.fs.df_of(id);
        self.current_ef = if self.fs.is_df(id) { None } else { Some(id) };
        match p2_template {
            Some(tag) => {
                let fci = self.fs.fci(id, tag);
                match cmd.le() {
                    // Case 3 with FCI asked: the host forgot Le; short answer anyway (T=1).
                    None => Response::new(fci, StatusWord::SUCCESS),
                    Some(le) if le < fci.len() => {
                        Response::new(fci[..le].to_vec(), StatusWord::END_OF_FILE)
                    }
                    Some(_) => Response::new(fci, StatusWord::SUCCESS),
                }
            }
            None => status(StatusWord::SUCCESS),
        }
    }

    // ---- READ BINARY ---------------------------------------------------------------------------

    fn read_binary(&mut self, cmd: &Command) -> Response {
        if cmd.p1() & 0x80 != 0 {
            // Short EF identifiers are not supported by this card.
            return status(StatusWord::INCORRECT_P1P2);
        }
        if !cmd.data().is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        let Some(le) = cmd.le() else {
            return status(StatusWord::WRONG_LENGTH);
        };
        let Some(ef) = self.current_ef else {
            return status(StatusWord::COMMAND_NOT_ALLOWED);
        };
        let data = match &self.fs.node(ef).kind {
            Kind::Ef(data) => data,
            Kind::InternalEf => return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
            Kind::Df => return status(StatusWord::COMMAND_NOT_ALLOWED),
        };
        let offset = usize::from(cmd.p1()) << 8 | usize::from(cmd.p2());
        if offset >= data.len() {
            return status(StatusWord::WRONG_P1P2);
        }
        let remaining = data.len() - offset;
        if !self.extended_length && le > 0xFF {
            // CNS 1.0 cards give at most 0xFF bytes per READ BINARY (spec "File system"):
            // a short Le of 00 (256) is answered with the exact length to ask for.
            return status(StatusWord::new(0x6C, remaining.min(0xFF) as u8));
        }
        if le <= remaining {
            Response::new(data[offset..offset + le].to_vec(), StatusWord::SUCCESS)
        } else {
            Response::new(data[offset..].to_vec(), StatusWord::END_OF_FILE)
        }
    }

    // ---- PIN commands --------------------------------------------------------------------------

    /// Maps P2 to the PIN (false) or PUK (true), with the generation's references: STIncard
    /// finds the PIN only with the 0x80 bit (0x90/0x91), the others only without it (OpenSC
    /// card-itacns.c: "to be avoided for others").
    fn credential_for(&self, p2: u8) -> Option<bool> {
        let pin = self.maker.generation().pin;
        if p2 == pin.pin_reference {
            Some(false)
        } else if p2 == pin.puk_reference {
            Some(true)
        } else {
            None
        }
    }

    fn credential(&mut self, puk: bool) -> &mut Credential {
        if puk {
            &mut self.puk
        } else {
            &mut self.pin
        }
    }

    fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p1() != 0x00 {
            return status(StatusWord::INCORRECT_P1P2);
        }
        let Some(which) = self.credential_for(cmd.p2()) else {
            return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
        };
        if cmd.le().is_some() {
            return status(StatusWord::WRONG_LENGTH);
        }
        let data = cmd.data();
        let dataless = self.guesses.dataless_verify;
        let cred = self.credential(which);
        if data.is_empty() {
            return match dataless {
                DatalessVerify::State => status(cred.state()),
                DatalessVerify::Refused => status(StatusWord::WRONG_LENGTH),
                // The worst guess: taken for a wrong PIN.
                DatalessVerify::Consumes => match cred.check(&[]) {
                    Ok(()) => status(StatusWord::SUCCESS),
                    Err(s) => status(s),
                },
            };
        }
        if data.len() != PIN_BLOCK {
            return status(StatusWord::WRONG_LENGTH);
        }
        match cred.check(data) {
            Ok(()) => status(StatusWord::SUCCESS),
            Err(s) => status(s),
        }
    }

    fn change_reference_data(&mut self, cmd: &Command) -> Response {
        let Some(which) = self.credential_for(cmd.p2()) else {
            return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
        };
        let data = cmd.data();
        let new = match cmd.p1() {
            // Old and new value.
            0x00 => {
                if data.len() != 2 * PIN_BLOCK || cmd.le().is_some() {
                    return status(StatusWord::WRONG_LENGTH);
                }
                let (old, new) = data.split_at(PIN_BLOCK);
                if !valid_block(new, self.maker.generation().pin.pad) {
                    return status(StatusWord::INCORRECT_DATA);
                }
                if let Err(s) = self.credential(which).check(old) {
                    return status(s);
                }
                new
            }
            // New value only, after a successful VERIFY in this session.
            0x01 => {
                if data.len() != PIN_BLOCK || cmd.le().is_some() {
                    return status(StatusWord::WRONG_LENGTH);
                }
                let cred = self.credential(which);
                if cred.blocked() {
                    return status(StatusWord::AUTH_METHOD_BLOCKED);
                }
                if !cred.verified {
                    return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                if !valid_block(data, self.maker.generation().pin.pad) {
                    return status(StatusWord::INCORRECT_DATA);
                }
                data
            }
            _ => return status(StatusWord::INCORRECT_P1P2),
        };
        let cred = self.credential(which);
        cred.block.copy_from_slice(new);
        cred.left = cred.max;
        cred.verified = true;
        status(StatusWord::SUCCESS)
    }

    fn reset_retry_counter(&mut self, cmd: &Command) -> Response {
        // The reference names the PIN to unblock; the PUK is checked (spec "PIN").
        match self.credential_for(cmd.p2()) {
            Some(false) => {}
            Some(true) => return status(StatusWord::INCORRECT_P1P2),
            None => return status(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
        if cmd.le().is_some() {
            return status(StatusWord::WRONG_LENGTH);
        }
        let data = cmd.data();
        // P1 00: PUK + new PIN; 01: PUK only; 02: new PIN only (PUK verified before); 03: none.
        let (puk, new_pin): (Option<&[u8]>, Option<&[u8]>) = match (cmd.p1(), data.len()) {
            (0x00, 16) => (Some(&data[..PIN_BLOCK]), Some(&data[PIN_BLOCK..])),
            (0x01, 8) => (Some(data), None),
            (0x02, 8) => (None, Some(data)),
            (0x03, 0) => (None, None),
            (0x00..=0x03, _) => return status(StatusWord::WRONG_LENGTH),
            _ => return status(StatusWord::INCORRECT_P1P2),
        };
        if new_pin.is_some_and(|p| !valid_block(p, self.maker.generation().pin.pad)) {
            return status(StatusWord::INCORRECT_DATA);
        }
        match puk {
            Some(p) => {
                if let Err(s) = self.puk.check(p) {
                    return status(s);
                }
                // The PUK presented inside the command authorises this command only.
                self.puk.verified = false;
            }
            None => {
                if self.puk.blocked() {
                    return status(StatusWord::AUTH_METHOD_BLOCKED);
                }
                if !self.puk.verified {
                    return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
            }
        }
        if let Some(p) = new_pin {
            self.pin.block.copy_from_slice(p);
        }
        self.pin.left = self.pin.max;
        self.pin.verified = false;
        status(StatusWord::SUCCESS)
    }

    // ---- MSE / PSO -----------------------------------------------------------------------------

    fn mse(&mut self, cmd: &Command) -> Response {
        // The one signing sequence this card takes (`[guesses] signing`); the others are
        // refused the way a card that does not know them answers.
        let signing = self.guesses.signing;
        let generation = self.maker.generation();
        match (cmd.p1(), cmd.p2()) {
            // RESTORE: the CNS wants a trailing 00 byte (Functional Specification 1.1.5 §13.14,
            // as OpenSC card-itacns.c sends it), which decodes as a short Le.
            (0xF3, se) => {
                if !cmd.data().is_empty() || cmd.le().is_none() {
                    return status(StatusWord::WRONG_LENGTH);
                }
                if signing != SignPath::Cns || generation.signing.restore != Some([0xF3, se]) {
                    return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
                }
                self.env = SecurityEnv::default();
                status(StatusWord::SUCCESS)
            }
            // SET for computation (B6: digital signature template, B8: confidentiality).
            (p1 @ (0xF1 | 0x41), template @ (0xB6 | 0xB8)) => {
                if signing == SignPath::Cns && p1 != 0xF1 {
                    return status(StatusWord::INCORRECT_P1P2);
                }
                if cmd.le().is_some() {
                    return status(StatusWord::WRONG_LENGTH);
                }
                let (tag, key_ref) = match cmd.data() {
                    [t @ (0x83 | 0x84), 0x01, r] => (*t, *r),
                    [] => return status(StatusWord::WRONG_LENGTH),
                    _ => return status(StatusWord::INCORRECT_DATA),
                };
                let accepted = match signing {
                    SignPath::Cns => template == 0xB8 || [p1, template] == generation.signing.set,
                    SignPath::Mse84 => {
                        ([p1, template], tag) == SignPath::Mse84.mse_set(&generation.signing)
                    }
                    SignPath::Decipher => template == 0xB8,
                };
                if !accepted {
                    return status(StatusWord::INCORRECT_DATA);
                }
                if key_ref != self.maker.key_reference() {
                    return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
                }
                if template == 0xB6 {
                    self.env.sign = Some(key_ref);
                } else {
                    self.env.decipher = Some(key_ref);
                }
                status(StatusWord::SUCCESS)
            }
            _ => status(StatusWord::INCORRECT_P1P2),
        }
    }

    fn pso(&mut self, cmd: &Command, data: &[u8]) -> Response {
        let input = match (cmd.p1(), cmd.p2()) {
            // COMPUTE DIGITAL SIGNATURE: the block is the whole modulus-sized input.
            (p1, p2) if [p1, p2] == self.maker.generation().signing.pso => {
                if self.env.sign.is_none() {
                    return status(StatusWord::CONDITIONS_NOT_SATISFIED);
                }
                data
            }
            // DECIPHER: padding indicator 00 then the cryptogram (MOCCA signs this way).
            (0x80, 0x86) => {
                if self.env.decipher.is_none() {
                    return status(StatusWord::CONDITIONS_NOT_SATISFIED);
                }
                match data.split_first() {
                    Some((0x00, rest)) => rest,
                    Some(_) => return status(StatusWord::INCORRECT_DATA),
                    None => return status(StatusWord::WRONG_LENGTH),
                }
            }
            _ => return status(StatusWord::INCORRECT_P1P2),
        };
        if !self.pin.verified {
            return status(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        if input.len() != self.key_len {
            return status(StatusWord::WRONG_LENGTH);
        }
        if let Some(le) = cmd.le() {
            if le < self.key_len {
                return status(StatusWord::WRONG_LENGTH);
            }
        }
        let m = BigUint::from_bytes_be(input);
        if &m >= self.key.n() {
            return status(StatusWord::INCORRECT_DATA);
        }
        match rsa::hazmat::rsa_decrypt_and_check(&*self.key, None::<&mut ChaCha20Rng>, &m) {
            Ok(s) => {
                let bytes = s.to_bytes_be();
                let mut out = vec![0u8; self.key_len - bytes.len()];
                out.extend(bytes);
                self.signatures += 1;
                Response::new(out, StatusWord::SUCCESS)
            }
            // Cannot happen for m < n; a real card would report a memory/processing failure.
            Err(_) => status(StatusWord::NO_PRECISE_DIAGNOSIS),
        }
    }

    // ---- GET DATA ------------------------------------------------------------------------------

    /// GET DATA `00 CA P1 P2 Le`: the generation's confirmation data (ST2022 over NFC answers
    /// `01 80` with "JSign4" while its application is selected); other cards know no GET DATA.
    fn get_data(&mut self, cmd: &Command) -> Response {
        let Some(check) = self.maker.generation().confirm else {
            return status(StatusWord::INS_NOT_SUPPORTED);
        };
        if !cmd.data().is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        if [cmd.p1(), cmd.p2()] != check.p1p2 || !self.app_selected {
            return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        match cmd.le() {
            Some(le) if le < check.expect.len() => {
                Response::new(check.expect[..le].to_vec(), StatusWord::END_OF_FILE)
            }
            _ => Response::new(check.expect.to_vec(), StatusWord::SUCCESS),
        }
    }

    // ---- GET CHALLENGE -------------------------------------------------------------------------

    fn get_challenge(&mut self, cmd: &Command) -> Response {
        if cmd.p1() != 0 || cmd.p2() != 0 {
            return status(StatusWord::INCORRECT_P1P2);
        }
        if !cmd.data().is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        match cmd.le() {
            Some(le) if le <= self.maker.max_challenge() => {
                let mut out = vec![0u8; le];
                self.challenge.fill_bytes(&mut out);
                Response::new(out, StatusWord::SUCCESS)
            }
            _ => status(StatusWord::WRONG_LENGTH),
        }
    }
}
