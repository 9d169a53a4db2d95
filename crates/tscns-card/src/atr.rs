//! Answer to reset: ISO 7816-3 structure, the CNS historical bytes, and the card generation
//! they select (from the table of [`tscns_generations`]).
//!
//! Historical-byte layout of a CNS (cns-card spec "Protocol and ATR"; OpenSC `card-itacns.c` names
//! them H1..H15): `00 6B <chip> <mask> <fw-hi> <fw-lo> 01 xx xx 'C' 'N' 'S' <version> 31 80`.

use std::fmt;

pub use tscns_generations::KeySet;
use tscns_generations::{CardGeneration, CnsFields, PinRules, GENERATIONS};

use crate::Error;

/// An answer to reset split per ISO 7816-3 §8.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atr {
    raw: Vec<u8>,
    historical: Vec<u8>,
    protocols: Vec<u8>,
}

impl Atr {
    /// Parses an ATR. Never panics; a malformed ATR is an error.
    pub fn parse(raw: &[u8]) -> Result<Self, Error> {
        let bad = |reason: &str| Error::MalformedAtr {
            reason: reason.to_owned(),
        };
        if raw.len() < 2 {
            return Err(bad("shorter than 2 bytes"));
        }
        if raw.len() > 33 {
            return Err(bad("longer than 33 bytes"));
        }
        // TS: 3B direct convention, 3F inverse convention (ISO 7816-3 §8.1).
        if raw[0] != 0x3B && raw[0] != 0x3F {
            return Err(bad("first byte (TS) is neither 3B nor 3F"));
        }
        let t0 = raw[1];
        let k = usize::from(t0 & 0x0F);
        let mut y = t0 >> 4;
        let mut i = 2usize;
        let mut protocols = Vec::new();
        loop {
            // TAi, TBi, TCi present per bits 5..7 of Y.
            i += usize::from((y & 0x07).count_ones() as u8);
            if y & 0x08 == 0 {
                break;
            }
            let td = *raw
                .get(i)
                .ok_or_else(|| bad("interface bytes run past the end"))?;
            protocols.push(td & 0x0F);
            y = td >> 4;
            i += 1;
        }
        if i > raw.len() {
            return Err(bad("interface bytes run past the end"));
        }
        let end = i + k;
        if end > raw.len() {
            return Err(bad("fewer historical bytes than T0 announces"));
        }
        let historical = raw[i..end].to_vec();
        // TCK is present when any protocol other than T=0 is indicated (ISO 7816-3 §8.2.5).
        let needs_tck = protocols.iter().any(|&t| t != 0);
        let expected_len = end + usize::from(needs_tck);
        if raw.len() != expected_len {
            return Err(bad(if raw.len() < expected_len {
                "check byte TCK missing"
            } else {
                "bytes after the end of the ATR"
            }));
        }
        if needs_tck && raw[1..].iter().fold(0u8, |a, b| a ^ b) != 0 {
            return Err(bad("check byte TCK does not match"));
        }
        Ok(Atr {
            raw: raw.to_vec(),
            historical,
            protocols,
        })
    }

    /// The ATR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The historical bytes.
    pub fn historical_bytes(&self) -> &[u8] {
        &self.historical
    }

    /// Protocols announced in the TDi bytes (e.g. `[1, 1]` for T=1).
    pub fn protocols(&self) -> &[u8] {
        &self.protocols
    }

    /// The CNS information in the historical bytes, if they carry the CNS marker.
    pub fn cns_info(&self) -> Option<CnsAtrInfo> {
        CnsAtrInfo::from_historical(&self.historical)
    }
}

/// The chip (IC) maker, historical byte H3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChipMaker(pub u8);

impl ChipMaker {
    /// The maker's name (cns-card spec "Protocol and ATR"), `None` when the code is not known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x02 => "STMicroelectronics",
            0x04 => "NXP",
            0x05 => "Infineon",
            0x15 => "Atmel",
            _ => return None,
        })
    }
}

impl fmt::Display for ChipMaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown (0x{:02X})", self.0),
        }
    }
}

/// The card operating-system maker, historical byte H4: the ATR's "mask maker" (cns-card spec
/// "Protocol and ATR").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaskMaker(pub u8);

/// The old name of [`MaskMaker`].
#[deprecated(since = "0.1.0", note = "renamed to MaskMaker, the ATR's own word")]
pub type OsMaker = MaskMaker;

impl MaskMaker {
    /// STIncard (cns-card spec: mask maker 9).
    pub const STINCARD: MaskMaker = MaskMaker(9);
    /// IDEMIA / Oberthur (cns-card spec: mask maker 5).
    pub const IDEMIA: MaskMaker = MaskMaker(5);

    /// The maker's name (cns-card spec "Protocol and ATR"), `None` when the code is not known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "Kaitech",
            2 => "Gemplus",
            3 => "Ghirlanda",
            4 => "Giesecke & Devrient",
            5 => "IDEMIA (Oberthur)",
            6 => "Orga",
            7 => "Axalto",
            8 => "Siemens",
            9 => "STIncard",
            10 => "GEP",
            11 => "EPS",
            12 => "Athena",
            13 => "Gemalto",
            _ => return None,
        })
    }
}

impl fmt::Display for MaskMaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown (0x{:02X})", self.0),
        }
    }
}

/// The CNS specification version, historical byte H13 (high nibble major, low nibble minor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CnsVersion(pub u8);

impl CnsVersion {
    /// Major version.
    pub fn major(self) -> u8 {
        self.0 >> 4
    }
    /// Minor version.
    pub fn minor(self) -> u8 {
        self.0 & 0x0F
    }
}

impl fmt::Display for CnsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

/// What the historical bytes of a CNS ATR say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CnsAtrInfo {
    /// Chip maker (H3).
    pub chip_maker: ChipMaker,
    /// Card-OS ("mask") maker (H4).
    pub mask_maker: MaskMaker,
    /// Firmware version (H5, H6).
    pub firmware: (u8, u8),
    /// CNS version (H13).
    pub cns_version: CnsVersion,
}

impl CnsAtrInfo {
    /// Reads the CNS fields from historical bytes; `None` when the CNS marker is absent.
    pub fn from_historical(h: &[u8]) -> Option<Self> {
        // H1 H2 = 00 6B, H7 = 01, H10..H12 = "CNS", H14 H15 = 31 80 (OpenSC card-itacns.c).
        CnsFields::from_historical(h).map(|f| CnsAtrInfo {
            chip_maker: ChipMaker(f.chip_maker),
            mask_maker: MaskMaker(f.mask_maker),
            firmware: f.firmware,
            cns_version: CnsVersion(f.cns_version),
        })
    }

    /// The fields as the generation table reads them.
    pub fn fields(&self) -> CnsFields {
        CnsFields {
            chip_maker: self.chip_maker.0,
            mask_maker: self.mask_maker.0,
            firmware: self.firmware,
            cns_version: self.cns_version.0,
        }
    }

    /// Chip 5 (Infineon) + mask 5 (IDEMIA) + firmware major >= 32: the 2021 IDEMIA card with
    /// its own key set (cns-card spec "Protocol and ATR"). The ID-One CNS v2, whose firmware
    /// `91 20` the same spec lists as a card of its own, is excluded. Either way the driver falls
    /// back to the other certificate path when the first one is missing.
    /// The test is the `idemia2021` entry of [`tscns_generations::GENERATIONS`].
    pub fn is_idemia_2021(&self) -> bool {
        tscns_generations::recognise(&[], Some(&self.fields())).name == "idemia2021"
    }

    /// Whether the card is an IDEMIA (Oberthur) mask: these take extended-length APDUs.
    pub fn is_idemia(&self) -> bool {
        self.mask_maker == MaskMaker::IDEMIA
    }
}

/// Firmware bytes of the IDEMIA ID-One CNS v2 ATR (cns-card spec "Protocol and ATR").
pub const IDEMIA_ID_ONE_V2_FIRMWARE: (u8, u8) = (0x91, 0x20);

/// The old name of [`CardGeneration`] as the driver's quirk set.
#[deprecated(
    since = "0.1.0",
    note = "the facts per card are now one CardGeneration of tscns_generations: use Recognition::generation"
)]
pub type Quirks = CardGeneration;

/// The old name of the generation chosen for a card (`Recognition::generation`, whose `name`
/// is the short name `as_str` gave).
#[deprecated(
    since = "0.1.0",
    note = "renamed to CardGeneration (Recognition::generation; its name is the old as_str)"
)]
pub type Profile = CardGeneration;

/// PIN reference of the CNS PIN (cns-card spec "PIN": `00 20 00 10`).
pub const PIN_REFERENCE: u8 = PinRules::STANDARD.pin_reference;
/// Backtracking bit STIncard masks need on the PIN reference (OpenSC card-itacns.c).
pub const STINCARD_BACKTRACK: u8 = PinRules::STINCARD.pin_reference & !PIN_REFERENCE;

/// What recognition found: the ATR, its CNS information (if any), the card's generation and
/// the key sets to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognition {
    /// The parsed ATR (`None` if the ATR was malformed; the card was then probed).
    pub atr: Option<Atr>,
    /// The raw ATR bytes.
    pub atr_bytes: Vec<u8>,
    /// CNS fields of the historical bytes.
    pub info: Option<CnsAtrInfo>,
    /// The generation of [`tscns_generations::GENERATIONS`] (or fallback) the ATR matched: PIN
    /// references, layout, lengths and signing sequence come from it.
    pub generation: &'static CardGeneration,
    /// Key sets to try, in order: the generation's own, then the others of the table; the first
    /// whose certificate file exists is used.
    pub key_sets: Vec<KeySet>,
    /// How the generation was found.
    pub method: RecognitionMethod,
    /// The read-only probes sent to find it, in order (empty when the ATR told).
    pub probes: Vec<Probe>,
}

/// How recognition found a card's generation (the order in which it tries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecognitionMethod {
    /// The CNS marker of the historical bytes matched a known generation.
    Atr,
    /// The SELECT of a known application's AID (and its check) answered.
    Application,
    /// The CNS marker of an unknown generation: the fallback for its CNS version.
    CnsMarker,
    /// The classic path (SELECT 3F00/1000/1003) answered.
    Path,
}

impl RecognitionMethod {
    /// A short name (`atr`, `application`, `cns-marker`, `path`) for reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            RecognitionMethod::Atr => "atr",
            RecognitionMethod::Application => "application",
            RecognitionMethod::CnsMarker => "cns-marker",
            RecognitionMethod::Path => "path",
        }
    }
}

/// One read-only probe recognition sent: what it was for, the command, the status word and
/// the FCI (or other answer data) the card gave. No probe carries a PIN or reads a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// What the probe looks for, e.g. `application of actalis-ace2025`.
    pub purpose: String,
    /// The C-APDU bytes.
    pub command: Vec<u8>,
    /// The status word of the answer (0 when the card gave no answer).
    pub sw: u16,
    /// The answer's data (an FCI for a SELECT).
    pub data: Vec<u8>,
}

impl Recognition {
    /// Recognises a card from its ATR alone, among [`tscns_generations::GENERATIONS`].
    /// `needs_probe()` says whether the file system must confirm it is a CNS.
    pub fn from_atr(raw: &[u8]) -> Recognition {
        let table: Vec<&'static CardGeneration> = GENERATIONS.iter().collect();
        Recognition::from_atr_among(raw, &table)
    }

    /// Like [`Recognition::from_atr`] among another table of generations (a test's, with a
    /// generation not yet in [`tscns_generations::GENERATIONS`]).
    pub fn from_atr_among(raw: &[u8], table: &[&'static CardGeneration]) -> Recognition {
        let atr = Atr::parse(raw).ok();
        let info = atr.as_ref().and_then(Atr::cns_info);
        let generation =
            tscns_generations::recognise_among(table, raw, info.map(|i| i.fields()).as_ref());
        Recognition {
            key_sets: tscns_generations::key_sets_to_try(generation, table.iter().copied()),
            generation,
            atr,
            atr_bytes: raw.to_vec(),
            info,
            method: if info.is_some() && !generation.is_fallback() {
                RecognitionMethod::Atr
            } else if info.is_some() {
                RecognitionMethod::CnsMarker
            } else {
                RecognitionMethod::Path
            },
            probes: Vec::new(),
        }
    }

    /// True when the ATR carried no CNS marker: the file system must confirm it is a CNS.
    pub fn needs_probe(&self) -> bool {
        self.info.is_none()
    }

    /// True when the ATR alone did not name a known generation: recognition probes the known
    /// applications by AID (and, without a CNS marker, the classic path).
    pub fn needs_application_probe(&self) -> bool {
        self.info.is_none() || self.generation.is_fallback()
    }

    /// Takes `generation`, found by the SELECT of its application, with the key sets of
    /// `table` that go with it.
    pub fn found_application(
        &mut self,
        generation: &'static CardGeneration,
        table: &[&'static CardGeneration],
    ) {
        self.generation = generation;
        self.key_sets = tscns_generations::key_sets_to_try(generation, table.iter().copied());
        self.method = RecognitionMethod::Application;
    }

    /// P2 of VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER for the PIN.
    pub fn pin_reference(&self) -> u8 {
        self.generation.pin.pin_reference
    }

    /// The PUK reference.
    pub fn puk_reference(&self) -> u8 {
        self.generation.pin.puk_reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    const ST: &str = "3B FF 18 00 FF 81 31 FE 55 00 6B 02 09 03 03 01 01 01 43 4E 53 10 31 80 9D";
    const IDEMIA21: &str =
        "3B FF 18 00 00 81 31 FE 45 00 6B 05 05 20 00 01 21 01 43 4E 53 10 31 80 79";
    const ATHENA: &str = "3B DF 18 00 81 31 FE 7D 00 6B 15 0C 01 81 01 11 01 43 4E 53 10 31 80 E8";
    const IDEMIA_V2: &str =
        "3B FF 18 00 00 81 31 FE 45 00 6B 05 05 91 20 01 F1 01 43 4E 53 10 31 80 38";

    #[test]
    fn real_atrs_parse_with_valid_tck() {
        for a in [ST, IDEMIA21, ATHENA, IDEMIA_V2] {
            let atr = Atr::parse(&hex(a)).unwrap();
            assert_eq!(atr.historical_bytes().len(), 15, "{a}");
            assert_eq!(atr.protocols(), &[1, 1]);
        }
    }

    #[test]
    fn stincard_card() {
        let r = Recognition::from_atr(&hex(ST));
        let info = r.info.unwrap();
        assert_eq!(info.chip_maker.name(), Some("STMicroelectronics"));
        assert_eq!(info.mask_maker.name(), Some("STIncard"));
        assert_eq!(info.firmware, (3, 3));
        assert_eq!(info.cns_version.to_string(), "1.0");
        assert_eq!(r.generation.name, "stincard");
        assert_eq!(r.pin_reference(), 0x90);
        assert_eq!(r.puk_reference(), 0x91);
        assert_eq!(r.key_sets[0], KeySet::CNS0);
        assert_eq!(r.generation.lengths.max_read, 0xFF);
    }

    #[test]
    fn idemia_2021_card() {
        let r = Recognition::from_atr(&hex(IDEMIA21));
        let info = r.info.unwrap();
        assert!(info.is_idemia_2021());
        assert_eq!(info.chip_maker.name(), Some("Infineon"));
        assert_eq!(r.generation.name, "idemia2021");
        assert_eq!(r.pin_reference(), 0x10);
        assert_eq!(r.key_sets[0].key_reference, 0x02);
        assert_eq!(
            r.key_sets[0].cert_path,
            &[[0x14, 0x00], [0x90, 0x01], [0x20, 0x02]]
        );
    }

    #[test]
    fn athena_card() {
        let r = Recognition::from_atr(&hex(ATHENA));
        let info = r.info.unwrap();
        assert_eq!(info.chip_maker.name(), Some("Atmel"));
        assert_eq!(info.mask_maker.name(), Some("Athena"));
        assert_eq!(r.generation.name, "athena");
        assert_eq!(r.pin_reference(), 0x10);
        assert!(!r.generation.lengths.extended);
    }

    #[test]
    fn idemia_v2_card_keeps_the_classic_layout() {
        let r = Recognition::from_atr(&hex(IDEMIA_V2));
        assert!(!r.info.unwrap().is_idemia_2021());
        assert_eq!(r.generation.name, "idemia-v2");
        assert_eq!(r.key_sets[0], KeySet::CNS0);
        assert!(r.generation.lengths.extended);
    }

    #[test]
    fn bare_nfc_atr_needs_probe() {
        let r = Recognition::from_atr(&hex("3B 80 80 01 01"));
        assert!(r.atr.is_some());
        assert!(r.needs_probe());
        assert_eq!(r.generation.name, "nfc-bare");
    }

    #[test]
    fn malformed_atrs_are_errors() {
        assert!(Atr::parse(&[]).is_err());
        assert!(Atr::parse(&[0x3B]).is_err());
        assert!(Atr::parse(&hex("3B FF 18")).is_err());
        let mut bad_tck = hex(ST);
        *bad_tck.last_mut().unwrap() ^= 1;
        assert!(Atr::parse(&bad_tck).is_err());
        // Unknown but malformed ATR: recognition still works and asks for a probe.
        assert!(Recognition::from_atr(&bad_tck).needs_probe());
        assert_eq!(Recognition::from_atr(&bad_tck).generation.name, "probed");
    }

    #[test]
    fn unknown_maker_codes_display() {
        assert_eq!(ChipMaker(0x77).to_string(), "unknown (0x77)");
        assert_eq!(MaskMaker(0x42).name(), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let _ = Atr::parse(&bytes);
            let _ = Recognition::from_atr(&bytes);
        }
    }
}
