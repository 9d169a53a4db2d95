//! # tscns-generations: every known TS-CNS card generation, as data
//!
//! One [`CardGeneration`] value says everything that differs between the cards of the Italian
//! health-and-services card (Tessera Sanitaria – Carta Nazionale dei Servizi):
//!
//! - how it is recognised: the [`AtrTest`] on its answer to reset, the application's AID (if it
//!   has one) with the [`GetDataCheck`] that confirms it and, for an ATR without the CNS marker,
//!   the probe of EF_ID_Carta;
//! - its file [`Layout`]: the paths of EF_ID_Carta, EF_Dati_personali and the authentication
//!   certificate, and the [`SelectMode`] (by path from the MF, `P1 = 08`, or from the current DF,
//!   `P1 = 09`);
//! - the PIN and PUK references and the PIN padding ([`PinRules`]), and the key reference
//!   ([`KeySet`]);
//! - the length handling: short, extended or chaining, the largest read ([`Lengths`]);
//! - the signing sequence ([`Signing`]) and, where the card's own is not public, the
//!   alternatives the driver tries ([`SignPath`]); whether a data-less VERIFY may ask the tries
//!   left ([`TriesQuery`]).
//!
//! Both sides read the same table: the driver (`tscns-card`) recognises a card with
//! [`recognise`] and talks to it with the facts of the generation found; the simulator
//! (`tscns-sim`) builds its card (ATR, files, references, lengths) from the generation its
//! profile names (`maker = "<name>"`). Adding a generation is one entry in [`GENERATIONS`] plus a
//! simulator profile file (`crates/tscns-sim/profiles/<name>-<bits>.toml`); a test of `tscns-card`
//! walks every entry and checks the driver recognises and reads the simulator built from it.
//!
//! ```
//! use tscns_generations::{recognise, CnsFields, GENERATIONS};
//!
//! // The historical bytes of an STIncard CNS 1.0: chip 02, mask 09, firmware 03 03, CNS 1.0.
//! let fields = CnsFields { chip_maker: 0x02, mask_maker: 0x09, firmware: (3, 3), cns_version: 0x10 };
//! let generation = recognise(&[], Some(&fields));
//! assert_eq!(generation.name, "stincard");
//! assert_eq!(generation.pin.pin_reference, 0x90);
//! // Every known generation but the one told by its application alone is recognised from its
//! // own ATR (the driver finds `st2022-nfc` by SELECTing its AID).
//! for g in GENERATIONS.iter().filter(|g| g.atr_test != tscns_generations::AtrTest::Application) {
//!     assert_eq!(recognise(g.atr, g.atr_fields().as_ref()).name, g.name);
//! }
//! ```
#![forbid(unsafe_code)]

use std::fmt;

use zeroize::Zeroizing;

/// A file of the CNS, as a path of FIDs below the MF (or below the current DF, see
/// [`SelectMode`]).
pub type FilePath = &'static [[u8; 2]];

/// EF_ID_Carta, 3F00/1000/1003 (cns-card spec "File system").
pub const EF_ID_CARTA: FilePath = &[[0x10, 0x00], [0x10, 0x03]];
/// EF_Dati_personali, 3F00/1100/1102 (cns-card spec "File system").
pub const EF_DATI_PERSONALI: FilePath = &[[0x11, 0x00], [0x11, 0x02]];

/// Padding byte after the PIN digits (cns-card spec "PIN": VERIFY data is the PIN in ASCII
/// padded with 0xFF to 8 bytes).
pub const PIN_PAD: u8 = 0xFF;
/// Length of the padded PIN block.
pub const PIN_BLOCK_LEN: usize = 8;

/// The PIN block: `digits` (at most [`PIN_BLOCK_LEN`] are used) followed by `pad` up to
/// [`PIN_BLOCK_LEN`] bytes. Zeroized on drop. The one implementation the driver and the
/// simulator share.
pub fn pin_block(digits: &[u8], pad: u8) -> Zeroizing<[u8; PIN_BLOCK_LEN]> {
    let mut block = Zeroizing::new([pad; PIN_BLOCK_LEN]);
    for (dst, src) in block.iter_mut().zip(digits) {
        *dst = *src;
    }
    block
}

/// The CNS fields of an ATR's historical bytes (`00 6B <chip> <mask> <fw-hi> <fw-lo> 01 xx xx
/// 'C' 'N' 'S' <version> 31 80`, OpenSC `card-itacns.c` H1..H15). The driver parses them; the
/// tests here read them with [`CnsFields::from_atr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CnsFields {
    /// Chip (IC) maker, H3.
    pub chip_maker: u8,
    /// Card-operating-system ("mask") maker, H4.
    pub mask_maker: u8,
    /// Firmware version, H5 and H6.
    pub firmware: (u8, u8),
    /// CNS specification version, H13 (high nibble major, low nibble minor).
    pub cns_version: u8,
}

impl CnsFields {
    /// The CNS fields of 15 historical bytes; `None` without the CNS marker.
    pub fn from_historical(h: &[u8]) -> Option<CnsFields> {
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
        Some(CnsFields {
            chip_maker: h[2],
            mask_maker: h[3],
            firmware: (h[4], h[5]),
            cns_version: h[12],
        })
    }

    /// The CNS fields of a whole ATR whose historical bytes are its last 15 bytes before the
    /// check byte (every CNS ATR in this table); `None` otherwise. The driver parses the ATR
    /// properly (ISO 7816-3) instead.
    pub fn from_atr(atr: &[u8]) -> Option<CnsFields> {
        let end = atr.len().checked_sub(1)?;
        CnsFields::from_historical(atr.get(end.checked_sub(15)?..end)?)
    }
}

/// A test on the CNS fields of an ATR; `None` / the full range accept any value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CnsTest {
    /// The chip maker (H3) wanted.
    pub chip_maker: Option<u8>,
    /// The mask maker (H4) wanted.
    pub mask_maker: Option<u8>,
    /// Smallest firmware major version (H5).
    pub firmware_major_min: u8,
    /// A firmware version that does not match (a card of its own).
    pub firmware_not: Option<(u8, u8)>,
    /// The CNS versions (H13) accepted, inclusive.
    pub cns_versions: (u8, u8),
}

impl CnsTest {
    /// Any ATR with the CNS marker.
    pub const ANY: CnsTest = CnsTest {
        chip_maker: None,
        mask_maker: None,
        firmware_major_min: 0,
        firmware_not: None,
        cns_versions: (0x00, 0xFF),
    };

    /// Whether the fields pass the test.
    pub fn matches(&self, f: &CnsFields) -> bool {
        self.chip_maker.is_none_or(|c| c == f.chip_maker)
            && self.mask_maker.is_none_or(|m| m == f.mask_maker)
            && f.firmware.0 >= self.firmware_major_min
            && self.firmware_not != Some(f.firmware)
            && (self.cns_versions.0..=self.cns_versions.1).contains(&f.cns_version)
    }
}

/// How a generation is told from its answer to reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtrTest {
    /// An ATR with the CNS marker whose fields pass the test.
    Cns(CnsTest),
    /// Exactly these ATR bytes, without the CNS marker: the driver confirms the card by probing
    /// EF_ID_Carta.
    Exact(&'static [u8]),
    /// Any ATR (the last fallback): confirmed by probing EF_ID_Carta.
    Any,
    /// Nothing in the ATR tells this generation (the bare NFC ATR `3B 80 80 01 01` is shared):
    /// the driver finds it only by SELECTing its application by AID ([`Layout::aid`]) and the
    /// generation's [`CardGeneration::confirm`] check.
    Application,
}

impl AtrTest {
    /// Whether an ATR (its bytes and, when it carries the CNS marker, its fields) passes.
    pub fn matches(&self, atr: &[u8], fields: Option<&CnsFields>) -> bool {
        match self {
            AtrTest::Cns(t) => fields.is_some_and(|f| t.matches(f)),
            AtrTest::Exact(bytes) => fields.is_none() && atr == *bytes,
            AtrTest::Any => true,
            AtrTest::Application => false,
        }
    }
}

/// How the driver selects the files of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelectMode {
    /// SELECT by path from the MF: `00 A4 08 00 Lc <path without 3F00>`.
    FromMf,
    /// SELECT by path from the current DF, `00 A4 09 00 Lc <path>`, after selecting the
    /// application (by its AID, else the MF) before each file.
    FromCurrentDf,
}

impl SelectMode {
    /// P1 of SELECT for this mode.
    pub const fn p1(self) -> u8 {
        match self {
            SelectMode::FromMf => 0x08,
            SelectMode::FromCurrentDf => 0x09,
        }
    }
}

/// Where a card keeps its authentication certificate and which key signs with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySet {
    /// Path of the certificate file below 3F00, as FIDs.
    pub cert_path: FilePath,
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
    /// ACTALIS ACe 2025: `DA01/C001` below the application (selected from the current DF),
    /// key 0x01, 2048 bits (cns-card spec "Card generations since 2021").
    pub const ACE_2025: KeySet = KeySet {
        cert_path: &[[0xDA, 0x01], [0xC0, 0x01]],
        key_reference: 0x01,
    };

    /// The certificate path as text, e.g. `3F00/1100/1101`.
    pub fn path_text(&self) -> String {
        path_text(self.cert_path)
    }
}

/// A path as text from the MF, e.g. `3F00/1000/1003`.
pub fn path_text(path: FilePath) -> String {
    let mut s = String::from("3F00");
    for [hi, lo] in path {
        s.push_str(&format!("/{hi:02X}{lo:02X}"));
    }
    s
}

/// The files of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The AID of the card application, if it is selected by name (`00 A4 04 0C Lc <AID>`).
    pub aid: Option<&'static [u8]>,
    /// How files are selected.
    pub select: SelectMode,
    /// EF_ID_Carta (16 ASCII digits).
    pub id_carta: FilePath,
    /// EF_Dati_personali.
    pub dati_personali: FilePath,
    /// The authentication certificate and its key.
    pub key_set: KeySet,
    /// The internal EF of the key, if the card shows one (selectable, never readable).
    pub key_file: Option<FilePath>,
    /// Whether the card may lack EF_ID_Carta (ACe 2025: not seen in any public trace); the
    /// driver then takes the card id from the certificate's CN (`<CF>/<card id>.<hash>`).
    pub card_id_from_certificate: bool,
    /// Whether the card selects files step by step by FID (`00 A4 00/01/02 ..`); ACe 2025
    /// answers 6A82 to them and wants paths.
    pub select_by_fid: bool,
    /// The FCI the card answers to the SELECT of its application, byte for byte, when a public
    /// trace shows it (empty: the simulator builds one from the tree).
    pub aid_fci: &'static [u8],
    /// How the card describes an EF in its FCI.
    pub fci: FciStyle,
    /// Whether the certificate file is allocated bigger than the DER and padded (classic cards
    /// reserve 2048 bytes) or exactly as long as the DER (ACe 2025: reading past it gives 6B00).
    pub cert_file_padded: bool,
    /// Other transparent EFs the card shows, with their sizes (read by nobody; the simulator
    /// has them so that a report of the card lists them as the real card does).
    pub other_files: &'static [(FilePath, u16)],
}

/// How a card describes a transparent EF in the FCI of its SELECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FciStyle {
    /// `80 02 <size>`, `82 01 01`, `83 02 <FID>` (what OpenSC's ISO layer reads).
    Classic,
    /// `80 02 <size>`, `82 03 01 00 00`, `83 02 <FID>`: the ACe 2025 trace's descriptor with its
    /// two extra bytes (cns-card spec "Card generations since 2021").
    Descriptor3,
}

impl Layout {
    /// The classic CNS layout: EF_ID_Carta, EF_Dati_personali and EF_C_Carta (key 0x01),
    /// selected by path from the MF.
    pub const CLASSIC: Layout = Layout {
        aid: None,
        select: SelectMode::FromMf,
        id_carta: EF_ID_CARTA,
        dati_personali: EF_DATI_PERSONALI,
        key_set: KeySet::CNS0,
        key_file: None,
        card_id_from_certificate: false,
        select_by_fid: true,
        aid_fci: &[],
        fci: FciStyle::Classic,
        cert_file_padded: true,
        other_files: &[],
    };
}

/// PIN and PUK references and the PIN block padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PinRules {
    /// P2 of VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER for the PIN.
    pub pin_reference: u8,
    /// P2 of VERIFY for the PUK.
    pub puk_reference: u8,
    /// The byte after the digits up to [`PIN_BLOCK_LEN`].
    pub pad: u8,
}

impl PinRules {
    /// PIN 0x10, PUK 0x11, 0xFF padding (cns-card spec "PIN").
    pub const STANDARD: PinRules = PinRules {
        pin_reference: 0x10,
        puk_reference: 0x11,
        pad: PIN_PAD,
    };
    /// STIncard masks: the references with the "backtracking" bit 0x80 (OpenSC card-itacns.c).
    pub const STINCARD: PinRules = PinRules {
        pin_reference: 0x90,
        puk_reference: 0x91,
        pad: PIN_PAD,
    };

    /// The PIN block of `digits` for this generation.
    pub fn block(&self, digits: &[u8]) -> Zeroizing<[u8; PIN_BLOCK_LEN]> {
        pin_block(digits, self.pad)
    }
}

/// Length handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lengths {
    /// Whether the card takes extended-length APDUs (the driver prefers them for long data).
    pub extended: bool,
    /// Whether the card takes command chaining (CLA bit 0x10) for PSO.
    pub chaining: bool,
    /// Largest Le of one short READ BINARY (0xFF on CNS 1.0 cards, cns-card spec "File system").
    pub max_read: usize,
    /// Largest GET CHALLENGE the card answers.
    pub max_challenge: usize,
    /// The card refuses a chained modulus-sized block (ST2021 answers 6E00 to a 257-byte PSO
    /// sent by chaining): the driver never chains on it.
    pub never_chain: bool,
    /// Whether the driver reads long files with one extended-length READ BINARY (else in
    /// blocks of [`Lengths::max_read`], as ACe 2025's own middleware reads its 256-byte blocks).
    pub extended_reads: bool,
}

/// The signing sequence: MSE RESTORE (optional), MSE SET with the key reference, PSO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signing {
    /// P1 P2 of MSE RESTORE (`00 22 F3 <SE>` plus a trailing `00`), or `None` to skip it.
    pub restore: Option<[u8; 2]>,
    /// P1 P2 of MSE SET for signing (`00 22 F1 B6 03 83 01 <key>`).
    pub set: [u8; 2],
    /// P1 P2 of PSO COMPUTE DIGITAL SIGNATURE (`00 2A 9E 9A`).
    pub pso: [u8; 2],
}

impl Signing {
    /// The CNS sequence (Functional Specification 1.1.5 §13.14; cns-card spec "Signing").
    pub const CNS: Signing = Signing {
        restore: Some([0xF3, 0x03]),
        set: [0xF1, 0xB6],
        pso: [0x9E, 0x9A],
    };
}

/// One way of getting a signature out of the card's authentication key. The driver tries a
/// generation's [`CardGeneration::sign_paths`] in order, each once, after one successful
/// VERIFY, and keeps the first that works for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignPath {
    /// The CNS sequence of [`CardGeneration::signing`]: MSE RESTORE, MSE SET
    /// `F1 B6 03 83 01 <key>`, PSO COMPUTE DIGITAL SIGNATURE `9E 9A` (cns-card spec "Signing").
    Cns,
    /// ISO 7816-8 as OpenSC's ISO layer sends it for a private key: MSE SET
    /// `00 22 41 B6 03 84 01 <key>` (tag 84: reference of a private key), then PSO COMPUTE
    /// DIGITAL SIGNATURE `00 2A 9E 9A`.
    Mse84,
    /// PSO DECIPHER of the host-built block: MSE SET `00 22 F1 B8 03 83 01 <key>` then
    /// `00 2A 80 86 <00 || block>` (the MOCCA path of cns-card spec "Signing").
    Decipher,
}

impl SignPath {
    /// Every path, in the order the driver tries them.
    pub const ALL: [SignPath; 3] = [SignPath::Cns, SignPath::Mse84, SignPath::Decipher];

    /// The path's name (`cns`, `mse-84`, `decipher`: the simulator profiles' `signing`).
    pub fn name(self) -> &'static str {
        match self {
            SignPath::Cns => "cns",
            SignPath::Mse84 => "mse-84",
            SignPath::Decipher => "decipher",
        }
    }

    /// The path of a name.
    pub fn from_name(name: &str) -> Option<SignPath> {
        SignPath::ALL.into_iter().find(|p| p.name() == name)
    }

    /// P1 P2 of this path's MSE SET and the tag of its key reference: the generation's CNS
    /// template with tag 83, `41 B6` with tag 84, or the confidentiality template `F1 B8` with
    /// tag 83.
    pub fn mse_set(self, signing: &Signing) -> ([u8; 2], u8) {
        match self {
            SignPath::Cns => (signing.set, 0x83),
            SignPath::Mse84 => ([0x41, 0xB6], 0x84),
            SignPath::Decipher => ([0xF1, 0xB8], 0x83),
        }
    }

    /// P1 P2 of this path's PSO: the generation's COMPUTE DIGITAL SIGNATURE, ISO's `9E 9A`, or
    /// DECIPHER `80 86` (whose data is the padding indicator 00, then the block).
    pub fn pso(self, signing: &Signing) -> [u8; 2] {
        match self {
            SignPath::Cns => signing.pso,
            SignPath::Mse84 => [0x9E, 0x9A],
            SignPath::Decipher => [0x80, 0x86],
        }
    }

    /// Whether a status word means "this card does not do it this way" (the driver then tries
    /// the next path): 6A88 referenced data not found, 6A80 incorrect data, 6A86 incorrect
    /// P1-P2, 6D00 instruction not supported, 6E00 class not supported.
    pub fn is_refusal(sw: u16) -> bool {
        matches!(sw, 0x6A88 | 0x6A80 | 0x6A86 | 0x6D00 | 0x6E00)
    }
}

impl fmt::Display for SignPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the driver may ask the card for the PIN's tries left with a data-less VERIFY
/// (`00 20 00 <ref>`, ISO 7816-4 §11.5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriesQuery {
    /// Only where the user asked for it (the PKCS#11 module's `query_pin_tries`): the classic
    /// CNS cards, whose answer is the ISO one in every report but not confirmed by a
    /// specification (cns-card spec "PIN").
    OnRequest,
    /// Never: nothing public says what the card does with it (it might count a wrong PIN).
    /// The tries left are known only from the `63Cx` of a wrong VERIFY.
    Never,
}

/// A check that confirms the application a SELECT by AID found: GET DATA `00 CA <P1> <P2> 00`
/// must answer exactly `expect` (ST2022 over NFC: `00 CA 01 80` answers "JSign4").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GetDataCheck {
    /// P1 P2 of GET DATA.
    pub p1p2: [u8; 2],
    /// The answer wanted.
    pub expect: &'static [u8],
}

/// One card generation: everything the driver and the simulator need to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CardGeneration {
    /// A short stable name; the simulator profile's `maker` for the known generations
    /// (`stincard`, `athena`, `idemia-v2`, `idemia2021`, `nfc-bare`), `standard` / `probed` for
    /// the fallbacks.
    pub name: &'static str,
    /// One line for people.
    pub summary: &'static str,
    /// The ATR a card of this generation sends, byte for byte (empty for the fallbacks, which
    /// describe no particular card).
    pub atr: &'static [u8],
    /// How the driver tells it from the ATR.
    pub atr_test: AtrTest,
    /// The files.
    pub layout: Layout,
    /// PIN and PUK.
    pub pin: PinRules,
    /// Length handling.
    pub lengths: Lengths,
    /// The signing sequence.
    pub signing: Signing,
    /// The signing paths the driver tries, in order (the first is the card's own; the others
    /// only when it refuses, see [`SignPath::is_refusal`]).
    pub sign_paths: &'static [SignPath],
    /// Whether a data-less VERIFY may be sent to ask the tries left.
    pub tries_query: TriesQuery,
    /// The check after the SELECT by AID that confirms the application is this generation's.
    pub confirm: Option<GetDataCheck>,
    /// The usual size of the authentication key in bits (the simulator's default).
    pub key_bits: u16,
}

impl CardGeneration {
    /// The generation's name.
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// The CNS fields of [`CardGeneration::atr`], if it carries the CNS marker.
    pub fn atr_fields(&self) -> Option<CnsFields> {
        CnsFields::from_atr(self.atr)
    }

    /// Whether a simulator can be built from it (it has an ATR: the known generations).
    pub fn is_simulated(&self) -> bool {
        !self.atr.is_empty()
    }
}

impl fmt::Display for CardGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const CLASSIC_SHORT: Lengths = Lengths {
    extended: false,
    chaining: false,
    max_read: 0xFF,
    max_challenge: 0x100,
    never_chain: false,
    extended_reads: false,
};

const CLASSIC_EXTENDED: Lengths = Lengths {
    extended: true,
    extended_reads: true,
    ..CLASSIC_SHORT
};

/// The CNS sequence only (the confirmed cards).
const CNS_ONLY: &[SignPath] = &[SignPath::Cns];

/// The AID of the ACTALIS ACe 2025 CNS application (cns-card spec "Card generations since 2021").
pub const ACE_2025_AID: &[u8] = &[
    0xA0, 0x00, 0x00, 0x05, 0x30, 0x00, 0x0B, 0x10, 0x40, 0x01, 0x02, 0x1A,
];

/// The AID of the JSign application of the ST2022 card over NFC (OpenSC PR #3806).
pub const ST2022_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x95, 0x01, 0x00, 0x4D];

/// The FCI ACe 2025 answers to the SELECT of its application, as the public trace shows it:
/// `81 02 70 2C`, `82 03 38 00 00` (a DF), `84` the AID, `83 02 3F 00` (it reports FID 3F00),
/// `85 01 01`, `86 09 FF..`, `8A 01 05` (operational, activated), `CB 18 FF..`.
pub const ACE_2025_FCI: &[u8] = &[
    0x6F, 0x46, 0x81, 0x02, 0x70, 0x2C, 0x82, 0x03, 0x38, 0x00, 0x00, 0x84, 0x0C, 0xA0, 0x00, 0x00,
    0x05, 0x30, 0x00, 0x0B, 0x10, 0x40, 0x01, 0x02, 0x1A, 0x83, 0x02, 0x3F, 0x00, 0x85, 0x01, 0x01,
    0x86, 0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x8A, 0x01, 0x05, 0xCB, 0x18,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
];

/// ST2021 (CNS 1.1): an entry of [`GENERATIONS`].
pub const ST2021: CardGeneration = CardGeneration {
    name: "st2021",
    summary: "ST2021, CNS 1.1 on an ST chip with the STIncard mask: RSA-2048 with extended \
              length and never chaining (a chained 257-byte block gets 6E00), PIN \
              references with bit 0x80",
    // ST chip (02), STIncard mask (09), firmware 16 17, CNS 1.1 (cns-card spec "Card
    // generations since 2021"; OpenSC #2370 / PR #2371).
    atr: &[
        0x3B, 0xFF, 0x18, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x55, 0x00, 0x6B, 0x02, 0x09, 0x16, 0x17,
        0x01, 0x11, 0x01, 0x43, 0x4E, 0x53, 0x11, 0x31, 0x80, 0x8D,
    ],
    // Before `stincard`: the same chip and mask, CNS 1.1 and later.
    atr_test: AtrTest::Cns(CnsTest {
        chip_maker: Some(0x02),
        mask_maker: Some(0x09),
        cns_versions: (0x11, 0xFF),
        ..CnsTest::ANY
    }),
    layout: Layout::CLASSIC,
    pin: PinRules::STINCARD,
    lengths: Lengths {
        never_chain: true,
        ..CLASSIC_EXTENDED
    },
    signing: Signing::CNS,
    sign_paths: CNS_ONLY,
    tries_query: TriesQuery::OnRequest,
    confirm: None,
    key_bits: 2048,
};

/// ACTALIS ACe 2025: an entry of [`GENERATIONS`].
pub const ACTALIS_ACE_2025: CardGeneration = CardGeneration {
    name: "actalis-ace2025",
    summary: "ACTALIS ACe 2025 (NXP chip): the CNS application selected by AID, files by \
              path from the current DF (P1 = 09), certificate at DA01/C001, no EF_ID_Carta \
              seen, RSA-2048 although the version byte says 1.0; signing bytes unpublished",
    // NXP chip (04), mask 04, firmware B8 5B, version byte 1.0 (cns-card spec "Card
    // generations since 2021"; OpenSC #3804).
    atr: &[
        0x3B, 0xFF, 0x18, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x4D, 0x00, 0x6B, 0x04, 0x04, 0xB8, 0x5B,
        0x01, 0xF1, 0x01, 0x43, 0x4E, 0x53, 0x10, 0x31, 0x80, 0x9D,
    ],
    atr_test: AtrTest::Cns(CnsTest {
        chip_maker: Some(0x04),
        mask_maker: Some(0x04),
        ..CnsTest::ANY
    }),
    layout: Layout {
        aid: Some(ACE_2025_AID),
        select: SelectMode::FromCurrentDf,
        id_carta: EF_ID_CARTA,
        dati_personali: EF_DATI_PERSONALI,
        key_set: KeySet::ACE_2025,
        key_file: None,
        card_id_from_certificate: true,
        select_by_fid: false,
        aid_fci: ACE_2025_FCI,
        fci: FciStyle::Descriptor3,
        cert_file_padded: false,
        other_files: &[(&[[0xD0, 0x03]], 10)],
    },
    pin: PinRules::STANDARD,
    // Its middleware reads 256-byte blocks (Le 00) and the 2048-bit block needs an
    // extended PSO.
    lengths: Lengths {
        max_read: 0x100,
        extended_reads: false,
        ..CLASSIC_EXTENDED
    },
    signing: Signing::CNS,
    // The signing bytes are not public: the CNS sequence, then the ISO alternatives.
    sign_paths: &SignPath::ALL,
    tries_query: TriesQuery::Never,
    confirm: None,
    key_bits: 2048,
};

/// ST2022 over NFC: an entry of [`GENERATIONS`].
pub const ST2022_NFC: CardGeneration = CardGeneration {
    name: "st2022-nfc",
    summary: "ST2022 read over NFC: the bare ATR 3B 80 80 01 01, the CNS files under the \
              JSign application (AID A0 00 00 00 95 01 00 4D, kept selected; GET DATA 01 80 \
              answers \"JSign4\"), RSA-2048 with extended length",
    atr: &[0x3B, 0x80, 0x80, 0x01, 0x01],
    // The bare ATR is shared with other cards: only the application tells (OpenSC PR #3806).
    atr_test: AtrTest::Application,
    layout: Layout {
        aid: Some(ST2022_AID),
        ..Layout::CLASSIC
    },
    // Over NFC there are no historical bytes, so no STIncard bit (OpenSC PR #3806 changes
    // the PIN with the plain reference).
    pin: PinRules::STANDARD,
    lengths: CLASSIC_EXTENDED,
    signing: Signing::CNS,
    sign_paths: CNS_ONLY,
    tries_query: TriesQuery::Never,
    confirm: Some(GetDataCheck {
        p1p2: [0x01, 0x80],
        expect: b"JSign4",
    }),
    key_bits: 2048,
};

/// The known generations, in the order the driver tries their ATR tests (first match wins:
/// the IDEMIA 2021 card before the other IDEMIA masks).
pub const GENERATIONS: &[CardGeneration] = &[
    ST2021,
    CardGeneration {
        name: "stincard",
        summary: "CNS 1.0, ST chip with the STIncard mask: PIN references with bit 0x80",
        // ST chip (02), STIncard mask (09), CNS 1.0.
        atr: &[
            0x3B, 0xFF, 0x18, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x55, 0x00, 0x6B, 0x02, 0x09, 0x03,
            0x03, 0x01, 0x01, 0x01, 0x43, 0x4E, 0x53, 0x10, 0x31, 0x80, 0x9D,
        ],
        atr_test: AtrTest::Cns(CnsTest {
            mask_maker: Some(0x09),
            ..CnsTest::ANY
        }),
        layout: Layout::CLASSIC,
        pin: PinRules::STINCARD,
        lengths: CLASSIC_SHORT,
        signing: Signing::CNS,
        sign_paths: CNS_ONLY,
        tries_query: TriesQuery::OnRequest,
        confirm: None,
        key_bits: 1024,
    },
    CardGeneration {
        name: "athena",
        summary: "CNS 1.0, Atmel chip with the Athena mask",
        // Atmel chip (0x15), Athena mask (0x0C), CNS 1.0.
        atr: &[
            0x3B, 0xDF, 0x18, 0x00, 0x81, 0x31, 0xFE, 0x7D, 0x00, 0x6B, 0x15, 0x0C, 0x01, 0x81,
            0x01, 0x11, 0x01, 0x43, 0x4E, 0x53, 0x10, 0x31, 0x80, 0xE8,
        ],
        atr_test: AtrTest::Cns(CnsTest {
            mask_maker: Some(0x0C),
            cns_versions: (0x00, 0x10),
            ..CnsTest::ANY
        }),
        layout: Layout::CLASSIC,
        pin: PinRules::STANDARD,
        lengths: CLASSIC_SHORT,
        signing: Signing::CNS,
        sign_paths: CNS_ONLY,
        tries_query: TriesQuery::OnRequest,
        confirm: None,
        key_bits: 1024,
    },
    CardGeneration {
        name: "idemia2021",
        summary: "IDEMIA 2021 card: certificate at 3F00/1400/9001/2002, key 0x02, chaining and \
                  extended length, GET CHALLENGE of at most 32 bytes",
        // Infineon chip (05), IDEMIA mask (05), firmware 0x20 0x00.
        atr: &[
            0x3B, 0xFF, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x00, 0x6B, 0x05, 0x05, 0x20,
            0x00, 0x01, 0x21, 0x01, 0x43, 0x4E, 0x53, 0x10, 0x31, 0x80, 0x79,
        ],
        // Chip 5 + mask 5 + firmware major >= 32, except the ID-One CNS v2 (firmware 91 20),
        // a card of its own (cns-card spec "Protocol and ATR").
        atr_test: AtrTest::Cns(CnsTest {
            chip_maker: Some(0x05),
            mask_maker: Some(0x05),
            firmware_major_min: 32,
            firmware_not: Some((0x91, 0x20)),
            cns_versions: (0x00, 0xFF),
        }),
        layout: Layout {
            key_set: KeySet::IDEMIA_2021,
            key_file: Some(&[[0x14, 0x00], [0x90, 0x02]]),
            ..Layout::CLASSIC
        },
        pin: PinRules::STANDARD,
        lengths: Lengths {
            extended: true,
            chaining: true,
            max_read: 0xFF,
            max_challenge: 0x20,
            never_chain: false,
            extended_reads: true,
        },
        signing: Signing::CNS,
        sign_paths: CNS_ONLY,
        tries_query: TriesQuery::OnRequest,
        confirm: None,
        key_bits: 2048,
    },
    CardGeneration {
        name: "idemia-v2",
        summary: "IDEMIA ID-One CNS v2 (and other IDEMIA masks): classic layout, extended length",
        // Infineon chip (05), IDEMIA mask (05), firmware 0x91 0x20. Its version byte says 0x10
        // (OpenSC 0.23 offers it 1024-bit RSA only) and its firmware major 0x91 is >= 32.
        atr: &[
            0x3B, 0xFF, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x00, 0x6B, 0x05, 0x05, 0x91,
            0x20, 0x01, 0xF1, 0x01, 0x43, 0x4E, 0x53, 0x10, 0x31, 0x80, 0x38,
        ],
        atr_test: AtrTest::Cns(CnsTest {
            mask_maker: Some(0x05),
            ..CnsTest::ANY
        }),
        layout: Layout::CLASSIC,
        pin: PinRules::STANDARD,
        lengths: CLASSIC_EXTENDED,
        signing: Signing::CNS,
        sign_paths: CNS_ONLY,
        tries_query: TriesQuery::OnRequest,
        confirm: None,
        key_bits: 2048,
    },
    CardGeneration {
        name: "nfc-bare",
        summary: "a card seen over NFC with the bare ATR 3B 80 80 01 01 (no CNS marker): an \
                  IDEMIA ID-One CNS v2 inside, confirmed by probing EF_ID_Carta",
        atr: &[0x3B, 0x80, 0x80, 0x01, 0x01],
        atr_test: AtrTest::Exact(&[0x3B, 0x80, 0x80, 0x01, 0x01]),
        layout: Layout::CLASSIC,
        pin: PinRules::STANDARD,
        lengths: CLASSIC_EXTENDED,
        signing: Signing::CNS,
        sign_paths: CNS_ONLY,
        // The bare ATR is shared by other cards (ST2022 among them): no tries query.
        tries_query: TriesQuery::Never,
        confirm: None,
        key_bits: 2048,
    },
    ACTALIS_ACE_2025,
    ST2022_NFC,
];

/// What the driver assumes of a card no known generation matches: `standard` for a CNS
/// marker (CNS 1.1 and later take extended length), `probed` for anything else (confirmed by
/// probing EF_ID_Carta). Tried after [`GENERATIONS`], in this order.
pub const FALLBACKS: &[CardGeneration] = &[
    CardGeneration {
        name: "standard",
        summary:
            "another card with the CNS marker, CNS 1.1 or later: 2048-bit keys, extended length",
        atr: &[],
        atr_test: AtrTest::Cns(CnsTest {
            cns_versions: (0x11, 0xFF),
            ..CnsTest::ANY
        }),
        layout: Layout::CLASSIC,
        pin: PinRules::STANDARD,
        lengths: CLASSIC_EXTENDED,
        signing: Signing::CNS,
        // An unknown card: the CNS sequence, then the ISO alternatives; no tries query.
        sign_paths: &SignPath::ALL,
        tries_query: TriesQuery::Never,
        confirm: None,
        key_bits: 2048,
    },
    CardGeneration {
        name: "standard",
        summary: "another card with the CNS marker",
        atr: &[],
        atr_test: AtrTest::Cns(CnsTest::ANY),
        layout: Layout::CLASSIC,
        pin: PinRules::STANDARD,
        lengths: CLASSIC_SHORT,
        signing: Signing::CNS,
        // An unknown card: the CNS sequence, then the ISO alternatives; no tries query.
        sign_paths: &SignPath::ALL,
        tries_query: TriesQuery::Never,
        confirm: None,
        key_bits: 1024,
    },
    CardGeneration {
        name: "probed",
        summary: "no CNS marker and no known ATR: recognised by probing EF_ID_Carta",
        atr: &[],
        atr_test: AtrTest::Any,
        layout: Layout::CLASSIC,
        pin: PinRules::STANDARD,
        lengths: CLASSIC_SHORT,
        signing: Signing::CNS,
        // An unknown card: the CNS sequence, then the ISO alternatives; no tries query.
        sign_paths: &SignPath::ALL,
        tries_query: TriesQuery::Never,
        confirm: None,
        key_bits: 1024,
    },
];

/// The known generation (or fallback) of a card from its ATR and CNS fields.
pub fn recognise(atr: &[u8], fields: Option<&CnsFields>) -> &'static CardGeneration {
    GENERATIONS
        .iter()
        .find(|g| g.atr_test.matches(atr, fields))
        .unwrap_or_else(|| fallback(atr, fields))
}

/// Like [`recognise`] over another table (a test's, with a generation not yet in
/// [`GENERATIONS`]); the [`FALLBACKS`] come after it.
pub fn recognise_among(
    table: &[&'static CardGeneration],
    atr: &[u8],
    fields: Option<&CnsFields>,
) -> &'static CardGeneration {
    table
        .iter()
        .copied()
        .find(|g| g.atr_test.matches(atr, fields))
        .unwrap_or_else(|| fallback(atr, fields))
}

fn fallback(atr: &[u8], fields: Option<&CnsFields>) -> &'static CardGeneration {
    // The last fallback matches any ATR.
    FALLBACKS
        .iter()
        .find(|g| g.atr_test.matches(atr, fields))
        .unwrap_or(&FALLBACKS[FALLBACKS.len() - 1])
}

/// The generations of `table` found by the SELECT of their application's AID, in the order the
/// driver probes them (table order).
pub fn by_application<'a>(
    table: impl IntoIterator<Item = &'a CardGeneration>,
) -> Vec<&'a CardGeneration> {
    table
        .into_iter()
        .filter(|g| g.layout.aid.is_some())
        .collect()
}

impl CardGeneration {
    /// Whether this is one of the [`FALLBACKS`] (no particular card).
    pub fn is_fallback(&self) -> bool {
        self.atr.is_empty()
    }
}

/// The known generation of a simulator profile's `maker` name.
pub fn by_name(name: &str) -> Option<&'static CardGeneration> {
    GENERATIONS.iter().find(|g| g.name == name)
}

/// The key sets the driver tries on a card of `generation`, in order: its own first, then every
/// other one a generation of `table` with the same application (AID, or none) uses (a card may
/// carry another generation's layout; paths below another application mean nothing here).
pub fn key_sets_to_try<'a>(
    generation: &CardGeneration,
    table: impl IntoIterator<Item = &'a CardGeneration>,
) -> Vec<KeySet> {
    let mut out = vec![generation.layout.key_set];
    for g in table {
        if g.layout.aid == generation.layout.aid && !out.contains(&g.layout.key_set) {
            out.push(g.layout.key_set);
        }
    }
    out
}

/// The names of the known generations, comma-separated (for messages and help texts).
pub fn names() -> String {
    GENERATIONS
        .iter()
        .map(|g| g.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_generation_is_recognised_from_its_own_atr() {
        for g in GENERATIONS {
            assert!(g.is_simulated(), "{g}");
            assert!(!g.is_fallback(), "{g}");
            assert_eq!(by_name(g.name), Some(g));
            if g.atr_test == AtrTest::Application {
                // Only its application tells it: the ATR alone gives the card that shares it.
                assert_ne!(recognise(g.atr, g.atr_fields().as_ref()).name, g.name);
                assert!(g.layout.aid.is_some() && g.confirm.is_some(), "{g}");
            } else {
                assert_eq!(recognise(g.atr, g.atr_fields().as_ref()).name, g.name);
            }
        }
    }

    #[test]
    fn the_new_generations() {
        let st = CnsFields::from_atr(by_name("st2021").map_or(&[][..], |g| g.atr));
        assert_eq!(st.map(|f| f.cns_version), Some(0x11));
        let ace = by_name("actalis-ace2025").map(|g| (g.atr_fields(), g.layout.aid));
        let Some((Some(fields), Some(aid))) = ace else {
            panic!("actalis-ace2025 has a CNS ATR and an AID");
        };
        // Version byte 1.0 and still a 2048-bit card.
        assert_eq!(fields.cns_version, 0x10);
        assert_eq!(recognise(&[], Some(&fields)).key_bits, 2048);
        assert_eq!(aid, ACE_2025_AID);
        // The FCI is a 6F template of the length it announces, with the AID under tag 84.
        assert_eq!(ACE_2025_FCI.len(), 2 + usize::from(ACE_2025_FCI[1]));
        assert_eq!(&ACE_2025_FCI[13..25], ACE_2025_AID);
        let apps: Vec<&str> = by_application(GENERATIONS).iter().map(|g| g.name).collect();
        assert_eq!(apps, ["actalis-ace2025", "st2022-nfc"]);
        assert_eq!(SignPath::from_name("mse-84"), Some(SignPath::Mse84));
        assert!(SignPath::is_refusal(0x6A88) && !SignPath::is_refusal(0x6982));
        for f in FALLBACKS {
            assert!(f.is_fallback());
            assert_eq!(f.tries_query, TriesQuery::Never);
            assert_eq!(f.sign_paths, &SignPath::ALL);
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in GENERATIONS.iter().enumerate() {
            for b in &GENERATIONS[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(
            names(),
            "st2021, stincard, athena, idemia2021, idemia-v2, nfc-bare, actalis-ace2025, \
             st2022-nfc"
        );
    }

    #[test]
    fn the_id_one_v2_is_not_the_2021_card() {
        let fields = CnsFields {
            chip_maker: 5,
            mask_maker: 5,
            firmware: (0x91, 0x20),
            cns_version: 0x10,
        };
        assert_eq!(recognise(&[], Some(&fields)).name, "idemia-v2");
        let fields = CnsFields {
            firmware: (0x20, 0x00),
            ..fields
        };
        assert_eq!(recognise(&[], Some(&fields)).name, "idemia2021");
    }

    #[test]
    fn fallbacks() {
        let cns11 = CnsFields {
            chip_maker: 4,
            mask_maker: 13,
            firmware: (1, 0),
            cns_version: 0x11,
        };
        let g = recognise(&[], Some(&cns11));
        assert_eq!((g.name, g.lengths.extended), ("standard", true));
        let cns10 = CnsFields {
            cns_version: 0x10,
            ..cns11
        };
        let g = recognise(&[], Some(&cns10));
        assert_eq!((g.name, g.lengths.extended), ("standard", false));
        // An Athena mask on a CNS 1.1 card is not the CNS 1.0 Athena generation.
        let athena11 = CnsFields {
            mask_maker: 0x0C,
            ..cns11
        };
        assert_eq!(recognise(&[], Some(&athena11)).name, "standard");
        assert_eq!(recognise(&[0x3B, 0x00], None).name, "probed");
    }

    #[test]
    fn key_sets_own_first_then_the_others() {
        let st = by_name("stincard").map(|g| key_sets_to_try(g, GENERATIONS));
        assert_eq!(st, Some(vec![KeySet::CNS0, KeySet::IDEMIA_2021]));
        let id = by_name("idemia2021").map(|g| key_sets_to_try(g, GENERATIONS));
        assert_eq!(id, Some(vec![KeySet::IDEMIA_2021, KeySet::CNS0]));
        let ace = by_name("actalis-ace2025").map(|g| key_sets_to_try(g, GENERATIONS));
        assert_eq!(ace, Some(vec![KeySet::ACE_2025]));
        assert_eq!(KeySet::IDEMIA_2021.path_text(), "3F00/1400/9001/2002");
    }

    #[test]
    fn pin_block_pads() {
        assert_eq!(*pin_block(b"12345", PIN_PAD), *b"12345\xFF\xFF\xFF");
        assert_eq!(*PinRules::STINCARD.block(b"12345678"), *b"12345678");
    }
}
