//! Answer to reset: ISO 7816-3 structure, the CNS historical bytes, and the quirks per maker.
//!
//! Historical-byte layout of a CNS (cns-card spec "Protocol and ATR"; OpenSC `card-itacns.c` names
//! them H1..H15): `00 6B <chip> <mask> <fw-hi> <fw-lo> 01 xx xx 'C' 'N' 'S' <version> 31 80`.

use std::fmt;

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

/// The card operating-system ("mask") maker, historical byte H4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OsMaker(pub u8);

impl OsMaker {
    /// STIncard (cns-card spec: mask maker 9).
    pub const STINCARD: OsMaker = OsMaker(9);
    /// IDEMIA / Oberthur (cns-card spec: mask maker 5).
    pub const IDEMIA: OsMaker = OsMaker(5);

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

impl fmt::Display for OsMaker {
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
    /// Card-OS maker (H4).
    pub os_maker: OsMaker,
    /// Firmware version (H5, H6).
    pub firmware: (u8, u8),
    /// CNS version (H13).
    pub cns_version: CnsVersion,
}

impl CnsAtrInfo {
    /// Reads the CNS fields from historical bytes; `None` when the CNS marker is absent.
    pub fn from_historical(h: &[u8]) -> Option<Self> {
        // H1 H2 = 00 6B, H7 = 01, H10..H12 = "CNS", H14 H15 = 31 80 (OpenSC card-itacns.c).
        if h.len() != 15
            || h[0] != 0x00
            || h[1] != 0x6B
            || h[6] != 0x01
            || &h[9..12] != b"CNS"
            || h[13] != 0x31
            || h[14] != 0x80
        {
            return None;
        }
        Some(CnsAtrInfo {
            chip_maker: ChipMaker(h[2]),
            os_maker: OsMaker(h[3]),
            firmware: (h[4], h[5]),
            cns_version: CnsVersion(h[12]),
        })
    }

    /// Chip 5 (Infineon) + mask 5 (IDEMIA) + firmware major >= 32: the 2021 IDEMIA card with
    /// its own key set (cns-card spec "Protocol and ATR"). The ID-One CNS v2, whose firmware
    /// `91 20` the same spec lists as a card of its own, is excluded. Either way the driver falls
    /// back to the other certificate path when the first one is missing.
    pub fn is_idemia_2021(&self) -> bool {
        self.chip_maker.0 == 0x05
            && self.os_maker == OsMaker::IDEMIA
            && self.firmware.0 >= 32
            && self.firmware != IDEMIA_ID_ONE_V2_FIRMWARE
    }

    /// Whether the card is an IDEMIA (Oberthur) mask: these take extended-length APDUs.
    pub fn is_idemia(&self) -> bool {
        self.os_maker == OsMaker::IDEMIA
    }
}

/// Firmware bytes of the IDEMIA ID-One CNS v2 ATR (cns-card spec "Protocol and ATR").
pub const IDEMIA_ID_ONE_V2_FIRMWARE: (u8, u8) = (0x91, 0x20);

/// The quirk set chosen for a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// A CNS card with an STIncard mask: PIN reference OR 0x80.
    StIncard,
    /// The IDEMIA 2021 card: key reference 0x02, certificate under 3F00/1400/9001, 2048-bit key,
    /// command chaining for the signature block.
    Idemia2021,
    /// The IDEMIA ID-One CNS v2 (and other IDEMIA masks): classic layout, extended length.
    IdemiaV2,
    /// A card with the Athena mask.
    Athena,
    /// Any other card with the CNS marker in its ATR.
    Standard,
    /// No CNS marker (bare NFC ATR, CardOS/Siemens cards...): recognised by probing the files.
    Probed,
}

impl Profile {
    /// A short stable name: `stincard`, `idemia2021`, `idemia-v2`, `athena`, `standard`,
    /// `probed` (the maker names of the tscns-sim profiles where they exist).
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::StIncard => "stincard",
            Profile::Idemia2021 => "idemia2021",
            Profile::IdemiaV2 => "idemia-v2",
            Profile::Athena => "athena",
            Profile::Standard => "standard",
            Profile::Probed => "probed",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a card keeps its authentication certificate and which key signs with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySet {
    /// Path of the certificate file below 3F00, as FIDs.
    pub cert_path: &'static [[u8; 2]],
    /// Key reference for MSE SET (`83 01 <ref>`).
    pub key_reference: u8,
}

impl KeySet {
    /// EF_C_Carta 3F00/1100/1101, key 0x01 ("CNS0").
    pub const CNS0: KeySet = KeySet {
        cert_path: &[[0x11, 0x00], [0x11, 0x01]],
        key_reference: 0x01,
    };
    /// IDEMIA 2021: 3F00/1400/9001/2002, key 0x02 (cns-card spec "File system").
    pub const IDEMIA_2021: KeySet = KeySet {
        cert_path: &[[0x14, 0x00], [0x90, 0x01], [0x20, 0x02]],
        key_reference: 0x02,
    };
}

/// How to talk to one card: everything that differs between makers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quirks {
    /// The profile these quirks come from.
    pub profile: Profile,
    /// P2 of VERIFY / CHANGE REFERENCE DATA for the PIN (0x10, or 0x90 on STIncard masks).
    pub pin_reference: u8,
    /// Key sets to try, in order: the first whose certificate file exists is used.
    pub key_sets: &'static [KeySet],
    /// Largest Le of one READ BINARY (0xFF on CNS 1.0 cards, cns-card spec "File system").
    pub max_read: usize,
    /// Whether the card takes extended-length APDUs.
    pub extended_length: bool,
}

/// PIN reference of the CNS PIN (cns-card spec "PIN": `00 20 00 10`).
pub const PIN_REFERENCE: u8 = 0x10;
/// Backtracking bit STIncard masks need on the PIN reference (OpenSC card-itacns.c).
pub const STINCARD_BACKTRACK: u8 = 0x80;

const STANDARD_KEYS: &[KeySet] = &[KeySet::CNS0, KeySet::IDEMIA_2021];
const IDEMIA_2021_KEYS: &[KeySet] = &[KeySet::IDEMIA_2021, KeySet::CNS0];

impl Quirks {
    /// The quirks for an ATR's CNS information (`None`: an unknown card, to be probed).
    pub fn for_info(info: Option<&CnsAtrInfo>) -> Quirks {
        let base = Quirks {
            profile: Profile::Probed,
            pin_reference: PIN_REFERENCE,
            key_sets: STANDARD_KEYS,
            max_read: 0xFF,
            extended_length: false,
        };
        let Some(info) = info else { return base };
        if info.is_idemia_2021() {
            return Quirks {
                profile: Profile::Idemia2021,
                key_sets: IDEMIA_2021_KEYS,
                extended_length: true,
                ..base
            };
        }
        if info.is_idemia() {
            return Quirks {
                profile: Profile::IdemiaV2,
                extended_length: true,
                ..base
            };
        }
        if info.os_maker == OsMaker::STINCARD {
            return Quirks {
                profile: Profile::StIncard,
                pin_reference: PIN_REFERENCE | STINCARD_BACKTRACK,
                ..base
            };
        }
        Quirks {
            profile: if info.os_maker == OsMaker(12) {
                Profile::Athena
            } else {
                Profile::Standard
            },
            // CNS 1.1 and later cards carry 2048-bit keys and take extended-length APDUs.
            extended_length: info.cns_version.0 >= 0x11,
            ..base
        }
    }

    /// The PUK reference: PIN reference + 1 (cns-card spec "PIN").
    pub fn puk_reference(&self) -> u8 {
        self.pin_reference.wrapping_add(1)
    }
}

/// What recognition found: the ATR, its CNS information (if any) and the quirks to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognition {
    /// The parsed ATR (`None` if the ATR was malformed; the card was then probed).
    pub atr: Option<Atr>,
    /// The raw ATR bytes.
    pub atr_bytes: Vec<u8>,
    /// CNS fields of the historical bytes.
    pub info: Option<CnsAtrInfo>,
    /// The quirks in force.
    pub quirks: Quirks,
}

impl Recognition {
    /// Recognises a card from its ATR alone. `needs_probe()` says whether the file system must
    /// confirm it is a CNS.
    pub fn from_atr(raw: &[u8]) -> Recognition {
        let atr = Atr::parse(raw).ok();
        let info = atr.as_ref().and_then(Atr::cns_info);
        Recognition {
            quirks: Quirks::for_info(info.as_ref()),
            atr,
            atr_bytes: raw.to_vec(),
            info,
        }
    }

    /// True when the ATR carried no CNS marker.
    pub fn needs_probe(&self) -> bool {
        self.info.is_none()
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
        assert_eq!(info.os_maker.name(), Some("STIncard"));
        assert_eq!(info.firmware, (3, 3));
        assert_eq!(info.cns_version.to_string(), "1.0");
        assert_eq!(r.quirks.profile, Profile::StIncard);
        assert_eq!(r.quirks.pin_reference, 0x90);
        assert_eq!(r.quirks.puk_reference(), 0x91);
        assert_eq!(r.quirks.key_sets[0], KeySet::CNS0);
        assert_eq!(r.quirks.max_read, 0xFF);
    }

    #[test]
    fn idemia_2021_card() {
        let r = Recognition::from_atr(&hex(IDEMIA21));
        let info = r.info.unwrap();
        assert!(info.is_idemia_2021());
        assert_eq!(info.chip_maker.name(), Some("Infineon"));
        assert_eq!(r.quirks.profile, Profile::Idemia2021);
        assert_eq!(r.quirks.pin_reference, 0x10);
        assert_eq!(r.quirks.key_sets[0].key_reference, 0x02);
        assert_eq!(
            r.quirks.key_sets[0].cert_path,
            &[[0x14, 0x00], [0x90, 0x01], [0x20, 0x02]]
        );
    }

    #[test]
    fn athena_card() {
        let r = Recognition::from_atr(&hex(ATHENA));
        let info = r.info.unwrap();
        assert_eq!(info.chip_maker.name(), Some("Atmel"));
        assert_eq!(info.os_maker.name(), Some("Athena"));
        assert_eq!(r.quirks.profile, Profile::Athena);
        assert_eq!(r.quirks.pin_reference, 0x10);
        assert!(!r.quirks.extended_length);
    }

    #[test]
    fn idemia_v2_card_keeps_the_classic_layout() {
        let r = Recognition::from_atr(&hex(IDEMIA_V2));
        assert!(!r.info.unwrap().is_idemia_2021());
        assert_eq!(r.quirks.profile, Profile::IdemiaV2);
        assert_eq!(r.quirks.key_sets[0], KeySet::CNS0);
        assert!(r.quirks.extended_length);
    }

    #[test]
    fn bare_nfc_atr_needs_probe() {
        let r = Recognition::from_atr(&hex("3B 80 80 01 01"));
        assert!(r.atr.is_some());
        assert!(r.needs_probe());
        assert_eq!(r.quirks.profile, Profile::Probed);
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
    }

    #[test]
    fn unknown_maker_codes_display() {
        assert_eq!(ChipMaker(0x77).to_string(), "unknown (0x77)");
        assert_eq!(OsMaker(0x42).name(), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let _ = Atr::parse(&bytes);
            let _ = Recognition::from_atr(&bytes);
        }
    }
}
