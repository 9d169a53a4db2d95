//! The driver: [`CnsCard`] over a [`tscns_apdu::Card`].

use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use sha1::{Digest, Sha1};
use tscns_apdu::{Card, CardOptions, Command, LengthForm, Response, StatusWord, Transport};
use tscns_cert::{CardId, CnsCertificate, CodiceFiscale};
use x509_cert::der::Encode;
use zeroize::Zeroizing;

use crate::atr::{KeySet, Recognition};
use crate::emsa::{self, HashAlg};
use crate::error::SecretKind;
use crate::personal_data::PersonalData;
use crate::pin::{Pin, Puk};
use crate::Error;

use tscns_generations::{path_text, CardGeneration, SelectMode, SignPath, TriesQuery, GENERATIONS};
pub use tscns_generations::{FilePath, EF_DATI_PERSONALI, EF_ID_CARTA};

/// How many times an identity read is started again after the card was reset under it.
const MAX_RESET_RETRIES: usize = 3;
/// Largest certificate accepted (the IDEMIA 2021 file is 2048 bytes; leave room).
const MAX_CERT_LEN: usize = 0x2000;

/// Status words that say "this length form / chaining is not supported": 6700 wrong length,
/// 6883 last command of the chain expected, 6884 chaining not supported (ISO 7816-4 §5.6).
fn is_length_refusal(sw: StatusWord) -> bool {
    matches!(sw.to_u16(), 0x6700 | 0x6883 | 0x6884 | 0x6E00 | 0x6D00)
}

/// Like [`is_length_refusal`] for a long PSO: 6700 refuses the extended form; a chained one is
/// refused with 6883 / 6884 or, on ST2021, 6E00 (the class with the chaining bit). 6D00 and an
/// unchained 6E00 say "not this signing path" ([`SignPath::is_refusal`]) and must not mark a
/// length form refused for the rest of the connection.
fn is_pso_length_refusal(sw: StatusWord, chained: bool) -> bool {
    match sw.to_u16() {
        0x6700 => true,
        0x6883 | 0x6884 | 0x6E00 => chained,
        _ => false,
    }
}

/// The old name of [`IdentityChecks`] (tscns-cohesion has a `Checks` of its own).
#[deprecated(since = "0.1.0", note = "renamed to IdentityChecks")]
pub type Checks = IdentityChecks;

/// The outcome of the identity cross-checks (`#[non_exhaustive]`: more may come).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityChecks {
    /// Codice fiscale in EF_Dati_personali equals the one in the certificate CN (omocodic
    /// variants compare equal); `None` when either is missing.
    pub cf_matches_certificate: Option<bool>,
    /// The CN's base64 hash equals SHA-1 of EF_Dati_personali (the bytes the header announces).
    /// Which bytes real cards hash is unverified: a mismatch is reported, never an error.
    /// `None` when the CN carries no 28-character hash.
    pub data_hash_matches: Option<bool>,
}

/// Everything that identifies the holder, read once per connection.
#[derive(Clone, Debug)]
pub struct Identity {
    /// EF_ID_Carta.
    pub card_id: CardId,
    /// EF_Dati_personali, parsed.
    pub personal_data: PersonalData,
    /// EF_Dati_personali as read (trimmed to the length its header announces).
    pub personal_data_bytes: Vec<u8>,
    /// The authentication certificate.
    pub certificate: CnsCertificate,
    /// Where the certificate was found and the key that goes with it.
    pub key_set: KeySet,
    /// Cross-checks between the files.
    pub checks: IdentityChecks,
    /// Where each part was read.
    pub origins: IdentityOrigins,
    /// APDUs the identity read took (recognition probe and re-reads after a reset included).
    pub apdus: u64,
}

/// Where the card id of an [`Identity`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardIdOrigin {
    /// EF_ID_Carta.
    EfIdCarta,
    /// The certificate's CN (`<CF>/<card id>.<hash>`): the card has no EF_ID_Carta (ACe 2025).
    CertificateCn,
}

impl CardIdOrigin {
    /// A short name (`EF_ID_Carta`, `certificate CN`) for people and JSON.
    pub fn name(self) -> &'static str {
        match self {
            CardIdOrigin::EfIdCarta => "EF_ID_Carta",
            CardIdOrigin::CertificateCn => "certificate CN",
        }
    }
}

/// Where each part of an [`Identity`] was read (paths as text from the MF or the application).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityOrigins {
    /// The card id's source.
    pub card_id: CardIdOrigin,
    /// The path of EF_ID_Carta when the card id came from it.
    pub card_id_file: Option<String>,
    /// The path of EF_Dati_personali.
    pub personal_data_file: String,
    /// The path of the certificate file.
    pub certificate_file: String,
    /// The AID of the application the files were read under, in hex, if any.
    pub application: Option<String>,
}

/// What a PIN callback is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinPrompt {
    /// PIN or PUK.
    pub kind: SecretKind,
    /// Tries left as the card last reported them in this session, if it did.
    pub tries_left: Option<u8>,
}

/// A TS-CNS card: recognition, identity, PIN and signing over any [`Transport`].
///
/// Reads are cached for the life of the value (one connection). A PIN is sent only when the
/// caller gives one, and only once per call.
#[derive(Debug)]
pub struct CnsCard<T: Transport> {
    card: Card<T>,
    st: State,
    identity: Option<Identity>,
    public_key: Option<RsaPublicKey>,
    probe_apdus: u64,
}

/// Connection state beside the APDU layer.
#[derive(Debug)]
struct State {
    recognition: Recognition,
    selected: Option<FilePath>,
    pin_verified: bool,
    pin_state_lost: bool,
    /// The signing path whose MSE commands the card holds now (cleared by a reset, an
    /// application select and any failed signing attempt).
    security_env: Option<SignPath>,
    tries_left: Option<u8>,
    chaining_refused: bool,
    extended_refused: bool,
    /// The card application (AID) is the current one (cleared by a reset or a failed command).
    app_selected: bool,
    /// The signing path that worked on this card (kept across resets: it is the card's).
    sign_path: Option<SignPath>,
}

/// The card and the state, borrowed together for the length of one operation.
struct Link<'a, T: Transport> {
    card: &'a mut Card<T>,
    st: &'a mut State,
}

impl<T: Transport> CnsCard<T> {
    /// Recognises the card on `transport` among [`tscns_generations::GENERATIONS`]: from the
    /// ATR when it carries the CNS marker, otherwise by probing EF_ID_Carta (3F00/1000/1003).
    /// Not a CNS -> [`Error::NotCns`].
    pub fn open(transport: T) -> Result<Self, Error> {
        Self::from_card(Card::new(transport))
    }

    /// The known generations as a table (what [`CnsCard::open`] recognises among).
    fn known_table() -> Vec<&'static CardGeneration> {
        GENERATIONS.iter().collect()
    }

    /// Like [`CnsCard::open`] among another table of generations (a test's, with a generation
    /// not yet in [`tscns_generations::GENERATIONS`]).
    pub fn open_among(transport: T, table: &[&'static CardGeneration]) -> Result<Self, Error> {
        let card = Card::new(transport);
        let recognition = Recognition::from_atr_among(card.atr(), table);
        Self::from_recognised_card(card, recognition, table)
    }

    /// Like [`CnsCard::open`] over an existing [`Card`] (its options are replaced by the
    /// generation's).
    pub fn from_card(card: Card<T>) -> Result<Self, Error> {
        let table = Self::known_table();
        let recognition = Recognition::from_atr_among(card.atr(), &table);
        Self::from_recognised_card(card, recognition, &table)
    }

    /// Recognition in the order of the issue of card generations: the CNS marker of the ATR
    /// (done by the caller); when it names no known generation, the known applications by
    /// AID with their checks; without a marker, the classic path; else [`Error::NotCns`] with
    /// what was tried. Every probe is a read-only SELECT or GET DATA, at most two per
    /// application and one path.
    fn from_recognised_card(
        mut card: Card<T>,
        recognition: Recognition,
        table: &[&'static CardGeneration],
    ) -> Result<Self, Error> {
        card.set_options(CardOptions {
            max_read_chunk: recognition.generation.lengths.max_read,
            // Commands choose their length form themselves (see `transmit_long`).
            extended_length: false,
            ..*card.options()
        });
        let mut this = CnsCard {
            card,
            st: State {
                recognition,
                selected: None,
                pin_verified: false,
                pin_state_lost: false,
                security_env: None,
                tries_left: None,
                chaining_refused: false,
                extended_refused: false,
                app_selected: false,
                sign_path: None,
            },
            identity: None,
            public_key: None,
            probe_apdus: 0,
        };
        if this.st.recognition.needs_application_probe() {
            let before = this.card.apdu_count();
            let found = this.with_reset_retry(|c| c.in_transaction(|l| l.probe(table)));
            this.probe_apdus = this.card.apdu_count() - before;
            match found? {
                Probed::Application(generation) => {
                    this.st.recognition.found_application(generation, table);
                    this.card.set_options(CardOptions {
                        max_read_chunk: generation.lengths.max_read,
                        ..*this.card.options()
                    });
                }
                // A CNS marker (an unknown generation) or the classic files: a CNS.
                Probed::ClassicPath => {}
                Probed::Nothing if this.st.recognition.info.is_some() => {}
                Probed::Nothing => {
                    return Err(Error::NotCns {
                        reason: format!(
                            "tried {}",
                            this.st
                                .recognition
                                .probes
                                .iter()
                                .map(|p| format!("{} ({:04X})", p.purpose, p.sw))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                }
            }
        }
        Ok(this)
    }

    /// What recognition found (ATR fields and the card generation).
    pub fn recognition(&self) -> &Recognition {
        &self.st.recognition
    }

    /// The card's ATR.
    pub fn atr(&self) -> &[u8] {
        self.card.atr()
    }

    /// APDUs exchanged on this connection so far.
    pub fn apdu_count(&self) -> u64 {
        self.card.apdu_count()
    }

    /// The underlying APDU layer.
    pub fn card_mut(&mut self) -> &mut Card<T> {
        &mut self.card
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.card.into_inner()
    }

    /// Whether a PIN was verified on this connection and not lost since.
    pub fn is_pin_verified(&self) -> bool {
        self.st.pin_verified
    }

    // ---- transport helpers -------------------------------------------------------------------

    fn note_reset(&mut self) -> Result<(), Error> {
        let st = &mut self.st;
        st.selected = None;
        st.app_selected = false;
        st.security_env = None;
        if st.pin_verified {
            st.pin_verified = false;
            st.pin_state_lost = true;
        }
        self.card.reconnect().map_err(Error::from)
    }

    /// Runs an idempotent read, reconnecting and starting again when the card was reset.
    fn with_reset_retry<R>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut attempt = 0;
        loop {
            match f(self) {
                Err(e) if e.is_reset() && attempt < MAX_RESET_RETRIES => {
                    attempt += 1;
                    self.note_reset()?;
                }
                Err(e) if e.is_reset() => {
                    // Give up but leave the link usable.
                    let _ = self.note_reset();
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    fn link(&mut self) -> Link<'_, T> {
        Link {
            card: &mut self.card,
            st: &mut self.st,
        }
    }

    /// Runs `f` inside one exclusive transaction of the APDU layer.
    fn in_transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Link<'_, T>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let st = &mut self.st;
        let mut inner = None;
        let outer = self.card.transaction(|card| {
            inner = Some(f(&mut Link { card, st }));
            Ok(())
        });
        match (inner, outer) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(e.into()),
            (None, Ok(())) => Err(Error::Apdu(tscns_apdu::Error::Transport {
                reason: "transaction ended without running".into(),
            })),
        }
    }

    // ---- identity ----------------------------------------------------------------------------

    /// Reads (once per connection) card id, personal data and certificate in one transaction,
    /// with the fewest APDUs; a reset in the middle starts the read again transparently.
    pub fn identity(&mut self) -> Result<&Identity, Error> {
        if self.identity.is_none() {
            let before = self.card.apdu_count();
            let mut id = self.with_reset_retry(|c| c.in_transaction(|l| l.read_identity()))?;
            id.apdus = self.card.apdu_count() - before + self.probe_apdus;
            self.public_key = Some(public_key(&id.certificate)?);
            self.identity = Some(id);
        }
        match &self.identity {
            Some(id) => Ok(id),
            None => Err(Error::Certificate {
                reason: "identity not read".into(),
            }),
        }
    }

    /// The card id (reads the identity if not yet read).
    pub fn card_id(&mut self) -> Result<CardId, Error> {
        Ok(self.identity()?.card_id.clone())
    }

    /// The personal data (reads the identity if not yet read).
    pub fn personal_data(&mut self) -> Result<PersonalData, Error> {
        Ok(self.identity()?.personal_data.clone())
    }

    /// The authentication certificate (reads the identity if not yet read).
    pub fn certificate(&mut self) -> Result<CnsCertificate, Error> {
        Ok(self.identity()?.certificate.clone())
    }

    /// The authentication certificate as DER.
    pub fn certificate_der(&mut self) -> Result<Vec<u8>, Error> {
        Ok(self.identity()?.certificate.der().to_vec())
    }

    /// The RSA public key of the authentication certificate.
    pub fn public_key(&mut self) -> Result<RsaPublicKey, Error> {
        self.identity()?;
        self.public_key.clone().ok_or_else(|| Error::Certificate {
            reason: "no RSA public key".into(),
        })
    }

    /// Size of the authentication key in bits.
    pub fn key_bits(&mut self) -> Result<usize, Error> {
        Ok(self.public_key()?.n().bits())
    }

    // ---- PIN ---------------------------------------------------------------------------------

    /// Sends a PIN-bearing command once; a reset during it is reported, never retried.
    fn transmit_secret(&mut self, cmd: &Command) -> Result<Response, Error> {
        match self.in_transaction(|l| {
            // The PIN goes to the card's own application: selected again in this transaction,
            // whatever another PC/SC client selected in between.
            l.st.app_selected = false;
            l.ensure_application()?;
            l.transmit(cmd)
        }) {
            Err(e) if e.is_reset() => {
                let lost = self.st.pin_verified;
                self.note_reset()?;
                self.st.pin_state_lost = false;
                Err(if lost { Error::PinStateLost } else { e })
            }
            other => other,
        }
    }

    /// VERIFY the PIN (`00 20 00 <ref> 08 <PIN padded with FF>`, cns-card spec "PIN"). Sent
    /// exactly once; a wrong PIN gives [`Error::WrongSecret`] with the tries left.
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<(), Error> {
        let mut block = pin.block_for(&self.st.recognition.generation.pin);
        let cmd = Command::new(0x00, 0x20, 0x00, self.st.recognition.pin_reference())
            .with_data(std::mem::take(&mut *block));
        let r = self.transmit_secret(&cmd)?;
        if r.status() == StatusWord::SUCCESS {
            self.st.pin_verified = true;
            self.st.pin_state_lost = false;
            self.st.tries_left = None;
            return Ok(());
        }
        self.st.pin_verified = false;
        Err(self
            .link()
            .secret_status(SecretKind::Pin, r.status(), "VERIFY"))
    }

    /// Asks `callback` for the PIN (once) and verifies it. `None` from the callback gives
    /// [`Error::Cancelled`]. The callback learns the tries left when the card said them.
    pub fn verify_pin_with(
        &mut self,
        callback: impl FnOnce(&PinPrompt) -> Option<Pin>,
    ) -> Result<(), Error> {
        let prompt = PinPrompt {
            kind: SecretKind::Pin,
            tries_left: self.st.tries_left,
        };
        let pin = callback(&prompt).ok_or(Error::Cancelled)?;
        self.verify_pin(&pin)
    }

    /// CHANGE REFERENCE DATA (`00 24 00 <ref> 10 <old><new>`, ISO 7816-4 §11.5.7).
    pub fn change_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), Error> {
        let mut data = Zeroizing::new(Vec::with_capacity(16));
        data.extend_from_slice(&old.block_for(&self.st.recognition.generation.pin));
        data.extend_from_slice(&new.block_for(&self.st.recognition.generation.pin));
        let cmd = Command::new(0x00, 0x24, 0x00, self.st.recognition.pin_reference())
            .with_data(std::mem::take(&mut *data));
        let r = self.transmit_secret(&cmd)?;
        if r.status() == StatusWord::SUCCESS {
            self.st.tries_left = None;
            return Ok(());
        }
        Err(self
            .link()
            .secret_status(SecretKind::Pin, r.status(), "CHANGE REFERENCE DATA"))
    }

    /// RESET RETRY COUNTER with the PUK and a new PIN (`00 2C 00 <PIN ref> 10 <PUK><new PIN>`,
    /// ISO 7816-4 §11.5.10). Wrong PUK gives [`Error::WrongSecret`] of kind PUK.
    pub fn unblock_pin(&mut self, puk: &Puk, new: &Pin) -> Result<(), Error> {
        let mut data = Zeroizing::new(Vec::with_capacity(16));
        data.extend_from_slice(&puk.block_for(&self.st.recognition.generation.pin));
        data.extend_from_slice(&new.block_for(&self.st.recognition.generation.pin));
        let cmd = Command::new(0x00, 0x2C, 0x00, self.st.recognition.pin_reference())
            .with_data(std::mem::take(&mut *data));
        let r = self.transmit_secret(&cmd)?;
        if r.status() == StatusWord::SUCCESS {
            self.st.tries_left = None;
            self.st.pin_verified = false;
            return Ok(());
        }
        Err(self
            .link()
            .secret_status(SecretKind::Puk, r.status(), "RESET RETRY COUNTER"))
    }

    // ---- signing -----------------------------------------------------------------------------

    /// Signs a raw block the size of the modulus with the authentication key (the card does
    /// raw RSA) and checks the result with the certificate's public key before returning it.
    pub fn sign_raw_block(&mut self, block: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.public_key()?;
        let k = key.size();
        if block.len() != k || BigUint::from_bytes_be(block) >= *key.n() {
            return Err(Error::BadBlock {
                expected: k,
                got: block.len(),
            });
        }
        if self.st.pin_state_lost {
            self.st.pin_state_lost = false;
            return Err(Error::PinStateLost);
        }
        let key_ref = match &self.identity {
            Some(id) => id.key_set.key_reference,
            None => self.st.recognition.key_sets[0].key_reference,
        };
        let sig = match self.in_transaction(|c| c.pso_sign(key_ref, block)) {
            Err(e) if e.is_reset() => {
                let lost = self.st.pin_verified;
                self.note_reset()?;
                self.st.pin_state_lost = false;
                return Err(if lost {
                    Error::PinStateLost
                } else {
                    Error::PinRequired
                });
            }
            other => other?,
        };
        // Check: sig^e mod n must give back the block exactly.
        let m = rsa::hazmat::rsa_encrypt(&key, &BigUint::from_bytes_be(&sig))
            .map_err(|_| Error::BadSignature)?;
        if sig.len() != k || m != BigUint::from_bytes_be(block) {
            return Err(Error::BadSignature);
        }
        Ok(sig)
    }

    /// Signs `digest` (already hashed with `hash`) with EMSA-PKCS1-v1_5 built on the host.
    pub fn sign_pkcs1(&mut self, hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>, Error> {
        let k = self.public_key()?.size();
        let block = emsa::pkcs1_v1_5_block(hash, digest, k)?;
        self.sign_raw_block(&block)
    }

    /// Signs `digest` with EMSA-PSS (MGF1 with `hash`, salt length = hash length) built on
    /// the host.
    pub fn sign_pss(&mut self, hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>, Error> {
        let bits = self.key_bits()?;
        let block = emsa::pss_block(hash, digest, bits)?;
        self.sign_raw_block(&block)
    }

    // ---- connection state --------------------------------------------------------------------

    /// Asks the card for the PIN's tries left with a data-less VERIFY (`00 20 00 <ref>`,
    /// ISO 7816-4 §11.5.6: "no data field" asks for the verification state). Returns the tries
    /// left when the card says them (`Some(0)`: blocked), `None` when it does not (e.g. `9000`
    /// because the PIN is verified in this card session).
    ///
    /// Whether every CNS card answers this without consuming a try is not confirmed publicly:
    /// call it only where the user asked for it (the PKCS#11 module's `query_pin_tries`).
    ///
    /// A generation whose answer is not known ([`TriesQuery::Never`]: ACe 2025, ST2022 over
    /// NFC, any unknown card) gets nothing: [`Error::TriesQueryUnconfirmed`].
    pub fn query_pin_tries(&mut self) -> Result<Option<u8>, Error> {
        let generation = self.st.recognition.generation;
        if generation.tries_query == TriesQuery::Never {
            return Err(Error::TriesQueryUnconfirmed {
                generation: generation.name,
            });
        }
        let cmd = Command::new(0x00, 0x20, 0x00, self.st.recognition.pin_reference());
        let r = self.transmit_secret(&cmd)?;
        let sw = r.status().to_u16();
        let tries = match sw {
            0x63C0..=0x63CF => Some((sw & 0x0F) as u8),
            0x6983 => Some(0),
            _ => None,
        };
        if tries.is_some() {
            self.st.tries_left = tries;
        }
        Ok(tries)
    }

    /// Resets the card through `reset` (e.g. a PC/SC warm reset with
    /// `PcscTransport::reconnect_with(Disposition::ResetCard)`) so that it forgets a verified
    /// PIN, and forgets the connection state that went with it (selected file, security
    /// environment). The identity read stays cached: it is the same card.
    pub fn reset_with(
        &mut self,
        reset: impl FnOnce(&mut T) -> Result<(), tscns_apdu::Error>,
    ) -> Result<(), Error> {
        self.st.selected = None;
        self.st.app_selected = false;
        self.st.security_env = None;
        self.st.pin_verified = false;
        self.st.pin_state_lost = false;
        reset(self.card.transport_mut()).map_err(Error::from)
    }
}

/// Operations inside one transaction.
impl<T: Transport> Link<'_, T> {
    fn transmit(&mut self, cmd: &Command) -> Result<Response, Error> {
        match self.card.transmit(cmd) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.st.selected = None;
                self.st.app_selected = false;
                Err(e.into())
            }
        }
    }

    /// The probes of recognition (see [`CnsCard::from_recognised_card`]): each application of
    /// `table` with an AID, then (without a CNS marker) the classic path. Returns the
    /// generation an application answered for; the probes are kept in the recognition.
    fn probe(&mut self, table: &[&'static CardGeneration]) -> Result<Probed, Error> {
        self.st.recognition.probes.clear();
        for generation in tscns_generations::by_application(table.iter().copied()) {
            let Some(aid) = generation.layout.aid else {
                continue;
            };
            let cmd = select_aid(aid);
            let r = self.probe_one(format!("application of {}", generation.name), &cmd)?;
            if !r.is_success() || !fci_names(r.data(), aid, generation.confirm.is_none()) {
                continue;
            }
            if let Some(check) = generation.confirm {
                let [p1, p2] = check.p1p2;
                let cmd = Command::new(0x00, 0xCA, p1, p2).with_le(256);
                let r = self.probe_one(format!("GET DATA of {}", generation.name), &cmd)?;
                if !r.is_success() || r.data() != check.expect {
                    self.st.app_selected = false;
                    continue;
                }
            }
            self.st.app_selected = true;
            self.st.selected = None;
            return Ok(Probed::Application(generation));
        }
        if self.st.recognition.probes.iter().any(|p| p.sw == 0x9000) {
            // An application answered but is not a known one: leave it for the MF (the classic
            // files live outside any application).
            let mf = Command::new(0x00, 0xA4, 0x00, 0x0C).with_data(vec![0x3F, 0x00]);
            self.probe_one("MF 3F00".to_owned(), &mf)?;
        }
        self.st.app_selected = false;
        if self.st.recognition.info.is_none() {
            // The classic path from the MF, as every CNS without an application has it.
            let id_carta = self.st.recognition.generation.layout.id_carta;
            let data: Vec<u8> = id_carta.iter().flatten().copied().collect();
            let cmd = Command::new(0x00, 0xA4, 0x08, 0x00).with_data(data);
            let r = self.probe_one(format!("EF_ID_Carta {}", path_text(id_carta)), &cmd)?;
            if r.is_success() {
                self.st.selected = Some(id_carta);
                return Ok(Probed::ClassicPath);
            }
            self.st.selected = None;
        }
        Ok(Probed::Nothing)
    }

    /// Selects the generation's application (AID) unless it is the current one: the PIN and
    /// the key live in it, and a reset by another application makes the card forget it.
    fn ensure_application(&mut self) -> Result<(), Error> {
        let Some(aid) = self.st.recognition.generation.layout.aid else {
            return Ok(());
        };
        if self.st.app_selected {
            return Ok(());
        }
        let r = self.transmit(&select_aid(aid))?;
        self.st.selected = None;
        // Selecting an application may reset its security environment.
        self.st.security_env = None;
        match r.status() {
            StatusWord::SUCCESS => {
                self.st.app_selected = true;
                Ok(())
            }
            StatusWord::FILE_NOT_FOUND => Err(Error::FileNotFound {
                file: format!("card application {}", hex::encode_upper(aid)),
            }),
            sw => Err(Error::Status {
                operation: "SELECT",
                sw,
            }),
        }
    }

    /// Sends one probe and records it.
    fn probe_one(&mut self, purpose: String, cmd: &Command) -> Result<Response, Error> {
        let r = self.transmit(cmd)?;
        self.st.recognition.probes.push(crate::atr::Probe {
            purpose,
            command: cmd.encode().unwrap_or_default(),
            sw: r.status().to_u16(),
            data: r.data().to_vec(),
        });
        Ok(r)
    }

    /// SELECT by path as the generation's layout says (`00 A4 08 00 Lc path` from the MF,
    /// cns-card spec "File system"; or the application, then `00 A4 09 00 Lc path` from it),
    /// skipped when the file is already selected.
    fn select(&mut self, path: FilePath, name: &str) -> Result<(), Error> {
        if self.st.selected == Some(path) {
            return Ok(());
        }
        let layout = self.st.recognition.generation.layout;
        let not_found = || Error::FileNotFound {
            file: format!("{name} ({})", path_text(path)),
        };
        // An application selected by AID stays the current one: it is selected again before a
        // path from the current DF (the EF selected last moved the current DF), and after a
        // reset. Without an AID, paths from the current DF start at the MF.
        match (layout.aid, layout.select) {
            (Some(_), SelectMode::FromCurrentDf) => {
                self.st.app_selected = false;
                self.ensure_application()?;
            }
            (Some(_), SelectMode::FromMf) => self.ensure_application()?,
            (None, SelectMode::FromCurrentDf) => {
                let mf = Command::new(0x00, 0xA4, 0x00, 0x0C).with_data(vec![0x3F, 0x00]);
                let r = self.transmit(&mf)?;
                if !r.is_success() {
                    self.st.selected = None;
                    return Err(match r.status() {
                        StatusWord::FILE_NOT_FOUND => Error::FileNotFound {
                            file: "master file 3F00".into(),
                        },
                        sw => Error::Status {
                            operation: "SELECT",
                            sw,
                        },
                    });
                }
            }
            (None, SelectMode::FromMf) => {}
        }
        let data: Vec<u8> = path.iter().flatten().copied().collect();
        let r =
            self.transmit(&Command::new(0x00, 0xA4, layout.select.p1(), 0x00).with_data(data))?;
        match r.status() {
            StatusWord::SUCCESS => {
                self.st.selected = Some(path);
                Ok(())
            }
            StatusWord::FILE_NOT_FOUND => {
                self.st.selected = None;
                Err(not_found())
            }
            sw => {
                self.st.selected = None;
                Err(Error::Status {
                    operation: "SELECT",
                    sw,
                })
            }
        }
    }

    /// One READ BINARY at `offset` of up to `le` bytes of the selected file. Returns the bytes
    /// and whether the end of the file was reached.
    fn read_chunk(
        &mut self,
        offset: usize,
        le: usize,
        extended: bool,
    ) -> Result<(Vec<u8>, bool), Error> {
        let off = u16::try_from(offset)
            .ok()
            .filter(|o| *o <= 0x7FFF)
            .ok_or(Error::Status {
                operation: "READ BINARY",
                sw: StatusWord::WRONG_P1P2,
            })?;
        let [p1, p2] = off.to_be_bytes();
        let mut cmd = Command::new(0x00, 0xB0, p1, p2).with_le(le);
        if extended {
            cmd = cmd.with_length_form(LengthForm::Extended);
        }
        let r = self.transmit(&cmd)?;
        match r.status() {
            StatusWord::SUCCESS => {
                let eof = r.data().is_empty();
                Ok((r.into_data(), eof))
            }
            StatusWord::END_OF_FILE => Ok((r.into_data(), true)),
            StatusWord::WRONG_P1P2 => Ok((Vec::new(), true)),
            sw => Err(Error::Status {
                operation: "READ BINARY",
                sw,
            }),
        }
    }

    /// Reads the selected file from `start` (with `have` already read) up to `total` bytes:
    /// one extended READ BINARY when the card takes it, else chunks of the read cap.
    fn read_rest(&mut self, mut have: Vec<u8>, total: usize) -> Result<Vec<u8>, Error> {
        let cap = self.st.recognition.generation.lengths.max_read;
        while have.len() < total {
            let want = total - have.len();
            let use_ext = self.st.recognition.generation.lengths.extended_reads
                && !self.st.extended_refused
                && want > cap;
            let le = if use_ext { want } else { want.min(cap) };
            let (data, eof) = match self.read_chunk(have.len(), le, use_ext) {
                Err(Error::Status { sw, .. }) if use_ext && is_length_refusal(sw) => {
                    self.st.extended_refused = true;
                    continue;
                }
                other => other?,
            };
            if data.len() > le {
                return Err(Error::Apdu(tscns_apdu::Error::BadResponse {
                    reason: format!(
                        "READ BINARY returned {} bytes, {le} were asked for",
                        data.len()
                    ),
                }));
            }
            have.extend_from_slice(&data);
            if eof || data.is_empty() {
                break;
            }
        }
        Ok(have)
    }

    fn read_identity(&mut self) -> Result<Identity, Error> {
        let layout = self.st.recognition.generation.layout;
        // EF_ID_Carta: 16 ASCII digits, read exactly. A card that may lack it (ACe 2025) gives
        // its card id in the certificate's CN instead.
        let card_id = match self.select(layout.id_carta, "EF_ID_Carta") {
            Ok(()) => {
                let (raw_id, _) = self.read_chunk(0, 16, false)?;
                let id_text = std::str::from_utf8(&raw_id).map_err(|_| Error::CardId {
                    reason: "not ASCII digits".into(),
                })?;
                Some(
                    CardId::parse(id_text.trim_end_matches(['\0', ' ', '\u{FF}'])).map_err(
                        |e| Error::CardId {
                            reason: e.to_string(),
                        },
                    )?,
                )
            }
            Err(Error::FileNotFound { .. }) if layout.card_id_from_certificate => None,
            Err(e) => return Err(e),
        };

        // EF_Dati_personali: one READ of the cap usually holds it all; the header says how much.
        self.select(layout.dati_personali, "EF_Dati_personali")?;
        let cap = self.st.recognition.generation.lengths.max_read;
        let (first, eof) = self.read_chunk(0, cap, false)?;
        let announced = PersonalData::announced_len(&first).ok_or_else(|| Error::PersonalData {
            field: "header",
            reason: "the file does not start with a 6-character hexadecimal length".into(),
        })?;
        if announced > crate::personal_data::MAX_LEN + 6 {
            return Err(Error::PersonalData {
                field: "header",
                reason: format!("announces {announced} bytes"),
            });
        }
        let mut pd_bytes = if first.len() < announced && !eof {
            self.read_rest(first, announced)?
        } else {
            first
        };
        pd_bytes.truncate(announced);
        let personal_data = PersonalData::parse(&pd_bytes)?;

        // The certificate: first chunk, then exactly the length its DER header announces.
        let mut found = None;
        let key_sets = self.st.recognition.key_sets.clone();
        for key_set in &key_sets {
            match self.select(key_set.cert_path, "authentication certificate") {
                Ok(()) => {
                    found = Some(*key_set);
                    break;
                }
                Err(Error::FileNotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        let key_set = found.ok_or_else(|| Error::FileNotFound {
            file: format!(
                "authentication certificate ({})",
                key_sets
                    .iter()
                    .map(KeySet::path_text)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        })?;
        let (first, eof) = self.read_chunk(0, cap, false)?;
        let total = der_length(&first).ok_or_else(|| Error::Certificate {
            reason: "the certificate file does not start with a DER SEQUENCE".into(),
        })?;
        if total > MAX_CERT_LEN {
            return Err(Error::Certificate {
                reason: format!("announces {total} bytes"),
            });
        }
        let mut der = if first.len() < total && !eof {
            self.read_rest(first, total)?
        } else {
            first
        };
        if der.len() < total {
            return Err(Error::Certificate {
                reason: format!("the file ends after {} of {total} bytes", der.len()),
            });
        }
        der.truncate(total);
        let certificate = CnsCertificate::from_der(&der).map_err(|e| Error::Certificate {
            reason: e.to_string(),
        })?;
        let (card_id, card_id_origin) = match card_id {
            Some(id) => (id, CardIdOrigin::EfIdCarta),
            None => {
                let parts = certificate.cn_parts().map_err(|e| Error::CardId {
                    reason: format!("the card has no EF_ID_Carta and its certificate CN: {e}"),
                })?;
                let id = CardId::parse(&parts.card_id).map_err(|e| Error::CardId {
                    reason: format!(
                        "the card has no EF_ID_Carta and the card id in its certificate CN is \
                         invalid: {e}"
                    ),
                })?;
                (id, CardIdOrigin::CertificateCn)
            }
        };
        let checks = cross_check(&personal_data, &pd_bytes, &certificate);
        let origins = IdentityOrigins {
            card_id: card_id_origin,
            card_id_file: (card_id_origin == CardIdOrigin::EfIdCarta)
                .then(|| path_text(layout.id_carta)),
            personal_data_file: path_text(layout.dati_personali),
            certificate_file: key_set.path_text(),
            application: layout.aid.map(hex::encode_upper),
        };
        Ok(Identity {
            origins,
            card_id,
            personal_data,
            personal_data_bytes: pd_bytes,
            certificate,
            key_set,
            checks,
            apdus: 0,
        })
    }

    fn secret_status(&mut self, kind: SecretKind, sw: StatusWord, op: &'static str) -> Error {
        match sw.to_u16() {
            // 63C0: no tries left: the secret is now blocked.
            0x63C0 => {
                self.record_tries(kind, Some(0));
                Error::Blocked { kind }
            }
            // 63Cx: wrong, x tries left (cns-card spec "PIN").
            v if v & 0xFFF0 == 0x63C0 => {
                let t = Some((v & 0x0F) as u8);
                self.record_tries(kind, t);
                Error::WrongSecret {
                    kind,
                    tries_left: t,
                }
            }
            // 6300: wrong, count unknown.
            0x6300 => Error::WrongSecret {
                kind,
                tries_left: None,
            },
            // 6983: authentication method blocked.
            0x6983 => {
                self.record_tries(kind, Some(0));
                Error::Blocked { kind }
            }
            // 6984 / 6985: reference data not usable / conditions not satisfied.
            0x6984 | 0x6985 => Error::NotUsable { kind, sw },
            _ => Error::Status { operation: op, sw },
        }
    }

    fn record_tries(&mut self, kind: SecretKind, t: Option<u8>) {
        if kind == SecretKind::Pin {
            self.st.tries_left = t;
        }
    }

    /// Signs `block` with the key: along the path that worked before on this connection, else
    /// along the generation's [`CardGeneration::sign_paths`] in order, each once (no PIN is
    /// sent: the caller verified it once before). A path the card refuses
    /// ([`SignPath::is_refusal`]) gives way to the next; any other answer ends the attempt.
    fn pso_sign(&mut self, key_ref: u8, block: &[u8]) -> Result<Vec<u8>, Error> {
        self.ensure_application()?;
        if let Some(path) = self.st.sign_path {
            let cached = self.st.security_env == Some(path);
            return match self.sign_along(path, key_ref, block) {
                // 6985 with a security environment set in an earlier call: another application
                // may have changed it. Set it again and try once more (no PIN is sent).
                Err(SignFailure::Other(Error::Status {
                    sw: StatusWord::CONDITIONS_NOT_SATISFIED,
                    ..
                })) if cached => self.sign_along(path, key_ref, block),
                other => other,
            }
            .map_err(SignFailure::into_error);
        }
        let paths = self.st.recognition.generation.sign_paths;
        let mut tried = Vec::new();
        for &path in paths {
            match self.sign_along(path, key_ref, block) {
                Ok(signature) => {
                    self.st.sign_path = Some(path);
                    return Ok(signature);
                }
                Err(SignFailure::Refused { operation, sw }) if paths.len() > 1 => {
                    tried.push(format!("{path}: {operation} {sw}"));
                }
                Err(e) => return Err(e.into_error()),
            }
        }
        Err(Error::SigningUnsupported {
            tried: tried.join("; "),
        })
    }

    /// One signing path: its MSE commands (unless the card holds this path's environment
    /// already), then PSO. Any failure forgets the environment.
    fn sign_along(
        &mut self,
        path: SignPath,
        key_ref: u8,
        block: &[u8],
    ) -> Result<Vec<u8>, SignFailure> {
        let r = self.sign_along_once(path, key_ref, block);
        if r.is_err() {
            self.st.security_env = None;
        }
        r
    }

    fn sign_along_once(
        &mut self,
        path: SignPath,
        key_ref: u8,
        block: &[u8],
    ) -> Result<Vec<u8>, SignFailure> {
        let signing = self.st.recognition.generation.signing;
        if self.st.security_env != Some(path) {
            self.st.security_env = None;
            if path == SignPath::Cns {
                // MSE RESTORE SE 03 with the trailing 00 the CNS wants (Functional
                // Specification 1.1.5 §13.14, cns-card spec "Signing" step 1): a short Le of 00.
                if let Some([p1, p2]) = signing.restore {
                    let r = self.transmit(&Command::new(0x00, 0x22, p1, p2).with_le(256))?;
                    check_step("MSE RESTORE", &r)?;
                }
            }
            // MSE SET: the CNS digital signature template `F1 B6 83 01 <key>` (cns-card spec
            // "Signing" 2); ISO 7816-8 with the private-key tag 84 (`41 B6 84 01 <key>`, as
            // OpenSC's ISO layer); the confidentiality template for DECIPHER (MOCCA,
            // `F1 B8 83 01 <key>`).
            let (p1p2, tag) = path.mse_set(&signing);
            let cmd =
                Command::new(0x00, 0x22, p1p2[0], p1p2[1]).with_data(vec![tag, 0x01, key_ref]);
            let r = self.transmit(&cmd)?;
            check_step("MSE SET", &r)?;
            self.st.security_env = Some(path);
        }
        // PSO COMPUTE DIGITAL SIGNATURE `00 2A 9E 9A Lc block 00` (cns-card spec "Signing" 3),
        // or PSO DECIPHER `00 2A 80 86 Lc 00||block 00` (the padding indicator 00 first).
        let [p1, p2] = path.pso(&signing);
        let (r, operation) = if path == SignPath::Decipher {
            let mut data = Vec::with_capacity(block.len() + 1);
            data.push(0x00);
            data.extend_from_slice(block);
            (
                self.transmit_long(0x2A, p1, p2, &data, block.len())?,
                "PSO DECIPHER",
            )
        } else {
            (
                self.transmit_long(0x2A, p1, p2, block, block.len())?,
                "PSO COMPUTE DIGITAL SIGNATURE",
            )
        };
        check_step(operation, &r)?;
        Ok(r.into_data())
    }

    /// Sends a command whose data may exceed 255 bytes: short when it fits, else command
    /// chaining or extended length as the maker prefers, falling back once to the other form
    /// when the card refuses the first.
    fn transmit_long(
        &mut self,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        le: usize,
    ) -> Result<Response, Error> {
        let base = Command::new(0x00, ins, p1, p2)
            .with_data(data.to_vec())
            .with_le(le);
        if data.len() <= 255 && le <= 256 {
            return self.transmit(&base);
        }
        let lengths = self.st.recognition.generation.lengths;
        let mut order = if lengths.extended {
            [true, false]
        } else {
            [false, true]
        };
        if lengths.never_chain {
            // ST2021: a chained block gets 6E00; extended length only.
            order = [true, true];
        } else if self.st.extended_refused {
            order = [false, false];
        } else if self.st.chaining_refused {
            order = [true, true];
        }
        let mut last = None;
        for (i, ext) in order.into_iter().enumerate() {
            if i == 1 && order[0] == order[1] {
                break;
            }
            let cmd = if ext {
                base.clone().with_length_form(LengthForm::Extended)
            } else {
                // Card options keep extended_length off: the APDU layer chains.
                base.clone()
            };
            let r = self.transmit(&cmd)?;
            if is_pso_length_refusal(r.status(), !ext) {
                if ext {
                    self.st.extended_refused = true;
                } else {
                    self.st.chaining_refused = true;
                }
                last = Some(r);
                continue;
            }
            return Ok(r);
        }
        last.ok_or(Error::Status {
            operation: "PSO COMPUTE DIGITAL SIGNATURE",
            sw: StatusWord::WRONG_LENGTH,
        })
    }
}

/// What the probes of recognition found.
enum Probed {
    /// A known application answered (and its check).
    Application(&'static CardGeneration),
    /// The classic path 3F00/1000/1003 answered.
    ClassicPath,
    /// Neither.
    Nothing,
}

/// Why one signing path did not give a signature.
enum SignFailure {
    /// The card does not sign this way ([`SignPath::is_refusal`]): the next path may.
    Refused {
        operation: &'static str,
        sw: StatusWord,
    },
    /// Anything else: no other path is tried.
    Other(Error),
}

impl SignFailure {
    fn into_error(self) -> Error {
        match self {
            SignFailure::Refused { operation, sw } => Error::Status { operation, sw },
            SignFailure::Other(e) => e,
        }
    }
}

impl From<Error> for SignFailure {
    fn from(e: Error) -> Self {
        SignFailure::Other(e)
    }
}

/// The outcome of one command of a signing path (MSE or PSO).
fn check_step(operation: &'static str, r: &Response) -> Result<(), SignFailure> {
    match r.status() {
        StatusWord::SUCCESS => Ok(()),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => Err(SignFailure::Other(Error::PinRequired)),
        sw if SignPath::is_refusal(sw.to_u16()) => Err(SignFailure::Refused { operation, sw }),
        sw => Err(SignFailure::Other(Error::Status { operation, sw })),
    }
}

/// SELECT of an application by AID, asking for its FCI (`00 A4 04 00 Lc AID 00`, as ISO
/// 7816-4 §12.2.5.2 and ACe 2025's own middleware send it).
pub fn select_aid(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid.to_vec())
        .with_le(256)
}

/// Whether the answer to a SELECT by AID is the application asked for. `strict` (a generation
/// with no other check, ACe 2025): an FCI template (6F) whose DF name (tag 84) is the AID, as
/// the public trace shows. Otherwise (a GET DATA check follows) also no FCI at all, or a 6F
/// without tag 84. Either way a card answering 9000 with another name is not taken for it.
fn fci_names(fci: &[u8], aid: &[u8], strict: bool) -> bool {
    if fci.is_empty() {
        return !strict;
    }
    let Some(body) = crate::tlv::find(fci, 0x6F) else {
        return false;
    };
    match crate::tlv::find(body, 0x84) {
        Some(name) => name == aid,
        None => !strict,
    }
}

/// Total length (header included) of the DER element starting `bytes`, for a SEQUENCE.
pub fn der_length(bytes: &[u8]) -> Option<usize> {
    if *bytes.first()? != 0x30 {
        return None;
    }
    let l0 = *bytes.get(1)?;
    if l0 < 0x80 {
        return Some(2 + usize::from(l0));
    }
    let n = usize::from(l0 & 0x7F);
    if n == 0 || n > 3 {
        return None;
    }
    let len = bytes
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |a, &b| (a << 8) | usize::from(b));
    Some(2 + n + len)
}

fn public_key(cert: &CnsCertificate) -> Result<RsaPublicKey, Error> {
    let spki = cert
        .x509()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| Error::Certificate {
            reason: e.to_string(),
        })?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| Error::Certificate {
        reason: format!("the key is not an RSA key: {e}"),
    })
}

/// The two cross-checks between EF_Dati_personali and the certificate.
pub fn cross_check(pd: &PersonalData, pd_bytes: &[u8], cert: &CnsCertificate) -> IdentityChecks {
    let parts = cert.cn_parts().ok();
    let cf_matches_certificate = match (&pd.codice_fiscale, &parts) {
        (Some(a), Some(p)) => Some(
            match (
                CodiceFiscale::parse(a),
                CodiceFiscale::parse(&p.codice_fiscale),
            ) {
                (Ok(x), Ok(y)) => x.canonical() == y.canonical(),
                _ => a.eq_ignore_ascii_case(&p.codice_fiscale),
            },
        ),
        _ => None,
    };
    let data_hash_matches = parts
        .as_ref()
        .and_then(|p| p.data_hash_bytes())
        .map(|h| h[..] == Sha1::digest(pd_bytes)[..]);
    IdentityChecks {
        cf_matches_certificate,
        data_hash_matches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_length_answers_mark_a_length_form_refused() {
        let sw = |v: u16| StatusWord::new((v >> 8) as u8, v as u8);
        assert!(is_pso_length_refusal(sw(0x6700), false));
        assert!(is_pso_length_refusal(sw(0x6E00), true));
        assert!(!is_pso_length_refusal(sw(0x6E00), false));
        assert!(!is_pso_length_refusal(sw(0x6D00), true));
        assert!(!is_pso_length_refusal(sw(0x6A80), false));
        // "Not this way" is a signing-path refusal instead.
        assert!(SignPath::is_refusal(0x6D00) && SignPath::is_refusal(0x6E00));
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_length(&[0x30, 0x82, 0x04, 0x10]), Some(0x414));
        assert_eq!(der_length(&[0x30, 0x81, 0x90]), Some(0x93));
        assert_eq!(der_length(&[0x30, 0x05]), Some(7));
        assert_eq!(der_length(&[0x31, 0x05]), None);
        assert_eq!(der_length(&[0x30, 0x80]), None);
        assert_eq!(der_length(&[0x30, 0x82, 0x04]), None);
        assert_eq!(der_length(&[]), None);
    }
}
