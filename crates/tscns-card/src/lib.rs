//! # tscns-card: the TS-CNS card application over any transport
//!
//! Speaks to the Italian health-and-services card (Tessera Sanitaria – Carta Nazionale dei
//! Servizi) directly through [`tscns_apdu`], with no vendor middleware:
//!
//! - **Recognition** ([`atr`]): the ATR's historical bytes give the CNS version, chip maker,
//!   card-OS ("mask") maker and firmware, and from them the card's [`CardGeneration`] in the
//!   one table the simulator reads too ([`tscns_generations::GENERATIONS`]: STIncard PIN
//!   reference `0x90`, the IDEMIA 2021 key set under 3F00/1400/9001, extended length or
//!   chaining, the file layout and select mode). When the ATR names no known generation (the
//!   bare NFC ATR, an unknown CNS), a short, ordered, read-only probe follows: the known
//!   applications by AID with their checks (ACTALIS ACe 2025, ST2022's JSign with GET DATA
//!   "JSign4"), then the classic path 3F00/1000/1003; every probe is kept in the
//!   [`Recognition`]. A card found by its AID keeps its application selected.
//! - **Identity** ([`CnsCard::identity`]): card id, [`PersonalData`] (EF_Dati_personali, parsed
//!   and serialised exactly) and the authentication certificate, read in one transaction with
//!   the fewest APDUs (no needless SELECT, the certificate length taken from its DER header),
//!   cached for the connection, with the count of APDUs and two cross-checks ([`IdentityChecks`]).
//! - **PIN** ([`Pin`], [`Puk`]): validated before anything is sent, zeroized, never in `Debug`;
//!   verify with tries left, change, unblock; never sent twice on the caller's behalf. No
//!   verified PIN outlives the connection: the PC/SC transport of [`tscns_apdu`] (and the
//!   simulator) resets the card when it closes after a PIN or PUK was presented, unless the
//!   caller opted in to keeping it unlocked.
//! - **Signing**: MSE RESTORE / SET and PSO COMPUTE DIGITAL SIGNATURE of host-built
//!   EMSA-PKCS1-v1_5 or EMSA-PSS blocks ([`emsa`]); each signature is checked with the
//!   certificate's public key before it is returned. On a card whose signing bytes are not
//!   public (ACe 2025, unknown cards) the [`generations::SignPath`]s are tried once each, in
//!   order, after the one VERIFY: a refusal moves on, anything else stops, and none working
//!   gives [`Error::SigningUnsupported`] with the card's answers.
//! - **Resets and removal**: a reset during a read re-reads transparently; a reset after the PIN
//!   was verified gives [`Error::PinStateLost`]; removal gives [`Error::CardRemoved`].
//!
//! ```
//! use tscns_card::{CnsCard, HashAlg, Pin};
//! use tscns_sim::{Profile, SimCard};
//!
//! // The simulated card of tscns-sim stands in for a reader here; with a real reader use the
//! // PC/SC transport of tscns-apdu.
//! let mut card = CnsCard::open(SimCard::new(&Profile::builtin("athena-1024")?)?)?;
//! let id = card.identity()?;
//! assert_eq!(id.personal_data.surname.as_deref(), Some("BIANCHI"));
//! assert_eq!(id.checks.cf_matches_certificate, Some(true));
//! println!("card {} read in {} APDUs", id.card_id.as_str(), id.apdus);
//!
//! card.verify_pin(&Pin::new("24680")?)?;
//! let digest = HashAlg::Sha256.digest(b"hello");
//! let signature = card.sign_pkcs1(HashAlg::Sha256, &digest)?; // verified before it is returned
//! assert_eq!(signature.len(), 128);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

pub mod atr;
mod cns_card;
pub mod emsa;
mod error;
pub mod personal_data;
pub mod pin;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tlv;

pub use atr::{Atr, CnsAtrInfo, KeySet, MaskMaker, Probe, Recognition, RecognitionMethod};
#[allow(deprecated)]
pub use atr::{Profile, Quirks};
#[allow(deprecated)]
pub use cns_card::Checks;
pub use cns_card::{
    cross_check, der_length, select_aid, CardIdOrigin, CnsCard, FilePath, Identity, IdentityChecks,
    IdentityOrigins, PinPrompt, EF_DATI_PERSONALI, EF_ID_CARTA,
};
pub use emsa::HashAlg;
pub use error::{Error, SecretKind};
pub use personal_data::PersonalData;
pub use pin::{Pin, Puk};
pub use tscns_generations::{self as generations, CardGeneration, GENERATIONS};
