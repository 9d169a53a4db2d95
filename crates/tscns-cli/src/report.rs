//! `tscns card report`: a diagnostic of any card that a citizen can post publicly.
//!
//! A fixed, read-only sequence (SELECT, GET DATA and READ BINARY only: never a VERIFY, never an
//! MSE or PSO): the ATR and its decoding; every recognition probe of the driver (the known
//! applications by AID with their checks, the classic path) with command, status word and FCI;
//! the SELECT of every file of the known layouts (cns-card spec "File system" and "Card
//! generations since 2021"); the sizes and structure of the identity files read. Every byte of
//! personal data is left out: EF_ID_Carta and EF_Dati_personali become their lengths and field
//! lengths, the certificate its issuer, key size, policy OIDs and validity; FCI values of
//! proprietary tags are shown only when they carry no information (all 00 or all FF). At the
//! end, what tscns concluded: a known card generation, or unknown with the nearest match.

use serde::Serialize;
use tscns_apdu::{Card, Command, Response, Transport};
use tscns_card::generations::{
    path_text, AtrTest, CardGeneration, FilePath, SelectMode, FALLBACKS, GENERATIONS,
};
use tscns_card::tlv::{self, Element};
use tscns_card::{select_aid, Atr, CnsCard, Error};

/// Largest file the report reads, per kind (a certificate is below 2 KiB on every known card).
const MAX_CERT: usize = 0x2000;
const MAX_PERSONAL: usize = 0x400;
const MAX_ID: usize = 0x40;

/// FCI tags whose values describe the file, not the holder (ISO 7816-4 §7.4.3, table 12): size
/// (80, 81), descriptor (82), FID (83), DF name (84), security attributes (86, 8B, 8C, 8D, 8E),
/// short EF identifier (88), life cycle (8A).
const DESCRIPTIVE_TAGS: &[u32] = &[
    0x80, 0x81, 0x82, 0x83, 0x84, 0x86, 0x88, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E,
];

/// The whole report, as `--json` prints it (field names are a contract: add, never rename).
#[derive(Debug, Serialize)]
pub struct CardReport {
    /// What this is, for whoever reads the file later.
    pub about: &'static str,
    /// The tscns version that made it.
    pub tscns_version: &'static str,
    /// The reader the card was in (`simulated (...)` for the simulator).
    pub reader: String,
    /// The answer to reset.
    pub atr: AtrPart,
    /// The recognition probes, in the driver's order.
    pub probes: Vec<Step>,
    /// The SELECT of every file of the known layouts.
    pub files: Vec<FileStep>,
    /// Sizes and structure of the identity files read.
    pub contents: Contents,
    /// What tscns concluded.
    pub conclusion: Conclusion,
    /// APDUs the report sent (its own sequence plus the driver's recognition).
    pub apdus: u64,
    /// The commands the report may send: SELECT, GET DATA and READ BINARY only.
    pub commands_sent: Vec<String>,
}

/// The ATR and its decoding.
#[derive(Debug, Serialize)]
pub struct AtrPart {
    /// The bytes, in spaced hex.
    pub bytes: String,
    /// Why it does not parse (ISO 7816-3), if it does not.
    pub error: Option<String>,
    /// Protocols announced (TDi), e.g. `[1, 1]` for T=1.
    pub protocols: Vec<u8>,
    /// The historical bytes, in spaced hex.
    pub historical_bytes: String,
    /// The CNS fields of the historical bytes, when they carry the CNS marker.
    pub cns: Option<CnsPart>,
    /// The generation the ATR alone matches (a fallback name when none).
    pub atr_match: &'static str,
}

/// The CNS fields of the historical bytes.
#[derive(Debug, Serialize)]
pub struct CnsPart {
    /// Chip maker byte and name.
    pub chip_maker: String,
    /// Mask (card operating system) maker byte and name.
    pub mask_maker: String,
    /// Firmware version bytes.
    pub firmware: String,
    /// CNS version (major.minor).
    pub cns_version: String,
}

/// One probe: a command and what the card said.
#[derive(Debug, Serialize)]
pub struct Step {
    /// What it looks for.
    pub purpose: String,
    /// The command, in spaced hex (it never carries a PIN).
    pub command: String,
    /// Status word and meaning, e.g. `6A82 (file not found)`.
    pub status: String,
    /// The FCI (or other answer) as TLV, with proprietary values left out.
    pub answer: Vec<Tlv>,
    /// Bytes of answer data.
    pub answer_length: usize,
    /// A note on the answer, e.g. whether GET DATA gave the expected model id.
    pub note: Option<String>,
}

/// One element of an FCI.
#[derive(Debug, Serialize)]
pub struct Tlv {
    /// The tag in hex.
    pub tag: String,
    /// The value's length.
    pub length: usize,
    /// The value in spaced hex: descriptive tags, and values that are all 00 or all FF;
    /// `None` (left out) otherwise.
    pub value: Option<String>,
    /// The elements of a constructed tag.
    pub children: Vec<Tlv>,
    /// Bytes that do not parse as TLV (their length only).
    pub unparsed: Option<usize>,
}

/// The SELECT of one file of a known layout.
#[derive(Debug, Serialize)]
pub struct FileStep {
    /// The file's name, e.g. `EF_Dati_personali`.
    pub name: String,
    /// Its path as text, e.g. `3F00/1100/1102`.
    pub path: String,
    /// Which generations keep it there.
    pub layouts: Vec<&'static str>,
    /// How it was selected (the application first, and P1).
    pub selection: String,
    /// The SELECT command in spaced hex.
    pub command: String,
    /// Status word and meaning.
    pub status: String,
    /// The FCI, as for the probes.
    pub fci: Vec<Tlv>,
    /// The size the FCI gives (tag 80 or 81), if any; rounded up to 64 for a certificate file.
    pub size: Option<usize>,
}

/// The shapes of the identity files.
#[derive(Debug, Serialize, Default)]
pub struct Contents {
    /// EF_ID_Carta.
    pub ef_id_carta: Option<IdShape>,
    /// EF_Dati_personali.
    pub ef_dati_personali: Option<PersonalShape>,
    /// The authentication certificate.
    pub certificate: Option<CertShape>,
}

/// EF_ID_Carta without its digits.
#[derive(Debug, Serialize)]
pub struct IdShape {
    /// The path read.
    pub path: String,
    /// Bytes read.
    pub length: usize,
    /// Whether they are all ASCII digits (padding after them excluded).
    pub digits_only: bool,
    /// How many digits.
    pub digits: usize,
    /// Whether the Luhn check digit is right.
    pub luhn_valid: bool,
}

/// EF_Dati_personali without its values.
#[derive(Debug, Serialize)]
pub struct PersonalShape {
    /// The path read.
    pub path: String,
    /// Bytes read.
    pub file_bytes: usize,
    /// The length its 6-character header announces.
    pub announced_length: Option<usize>,
    /// The length of each field in file order (issuer code, issue date, ..., 16 in all).
    pub field_lengths: Vec<usize>,
    /// Where the structure breaks, if it does.
    pub problem: Option<String>,
}

/// The certificate without its subject, serial number or key.
#[derive(Debug, Serialize)]
pub struct CertShape {
    /// The path read.
    pub path: String,
    /// Bytes of DER (as its header announces), rounded up to 64.
    pub der_length: Option<usize>,
    /// Bytes of the file read, rounded up to 64.
    pub file_bytes: usize,
    /// The issuer (a certification authority, not the holder).
    pub issuer: Option<String>,
    /// Key algorithm.
    pub key_algorithm: Option<String>,
    /// Key size in bits.
    pub key_bits: Option<u32>,
    /// certificatePolicies OIDs.
    pub policies: Vec<String>,
    /// Start of validity, year and month (`2025-10`).
    pub not_before: Option<String>,
    /// End of validity, year and month.
    pub not_after: Option<String>,
    /// Why it does not parse, if it does not.
    pub problem: Option<String>,
}

/// What tscns concluded.
#[derive(Debug, Serialize)]
pub struct Conclusion {
    /// Whether the card is a known generation.
    pub known: bool,
    /// The generation the driver recognised (a fallback name for an unknown card), or `None`
    /// when it is not taken for a CNS at all.
    pub generation: Option<&'static str>,
    /// How it was recognised (`atr`, `application`, `cns-marker`, `path`).
    pub recognised_by: Option<&'static str>,
    /// For an unknown card: the known generation it resembles most.
    pub nearest: Option<&'static str>,
    /// One sentence for people.
    pub summary: String,
}

fn spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_text(r: &Response) -> String {
    r.status().to_string()
}

/// Parses BER-TLV (ISO 7816-4 §5.2) for the report, leaving proprietary values out.
fn tlvs(bytes: &[u8], depth: u8) -> Vec<Tlv> {
    tlvs_in(bytes, depth, None)
}

/// The AIDs a DF name (tag 84) may show: the known applications'.
fn known_aid(value: &[u8]) -> bool {
    GENERATIONS.iter().any(|g| g.layout.aid == Some(value))
}

/// Like [`tlvs`] inside the template `parent`: a descriptive tag's value is shown only as a
/// direct element of an FCP / FCI / FMD template (62, 6F, 64), a DF name only when it is a
/// known application's AID; anything else only when it is all 00 or all FF.
fn tlvs_in(mut bytes: &[u8], depth: u8, parent: Option<u32>) -> Vec<Tlv> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((
            Element {
                tag,
                constructed,
                value,
            },
            rest,
        )) = tlv::first(bytes)
        else {
            out.push(Tlv {
                tag: String::new(),
                length: 0,
                value: None,
                children: Vec::new(),
                unparsed: Some(bytes.len()),
            });
            break;
        };
        let in_template = matches!(parent, Some(0x62 | 0x64 | 0x6F));
        let descriptive =
            in_template && DESCRIPTIVE_TAGS.contains(&tag) && (tag != 0x84 || known_aid(value));
        let shown =
            descriptive || value.iter().all(|b| *b == 0xFF) || value.iter().all(|b| *b == 0x00);
        let children = if constructed && depth < 4 {
            tlvs_in(value, depth + 1, Some(tag))
        } else {
            Vec::new()
        };
        out.push(Tlv {
            tag: format!("{tag:02X}"),
            length: value.len(),
            value: (!constructed && shown).then(|| spaced(value)),
            children,
            unparsed: None,
        });
        bytes = rest;
    }
    out
}

/// Leaves the size tags (80, 81) out of an FCI.
fn hide_sizes(items: &mut [Tlv]) {
    for t in items {
        if t.tag == "80" || t.tag == "81" {
            t.value = None;
        }
        hide_sizes(&mut t.children);
    }
}

/// The size an FCI gives (tag 80 or 81 at any depth).
fn fci_size(raw: &[u8]) -> Option<usize> {
    fn find(mut b: &[u8], depth: u8) -> Option<usize> {
        while let Some((
            Element {
                tag,
                constructed,
                value,
            },
            rest,
        )) = tlv::first(b)
        {
            if (tag == 0x80 || tag == 0x81) && !value.is_empty() && value.len() <= 4 {
                return Some(value.iter().fold(0usize, |a, x| (a << 8) | usize::from(*x)));
            }
            if constructed && depth < 4 {
                if let Some(s) = find(value, depth + 1) {
                    return Some(s);
                }
            }
            b = rest;
        }
        None
    }
    find(raw, 0)
}

fn select_path(p1: u8, path: FilePath) -> Command {
    Command::new(0x00, 0xA4, p1, 0x00)
        .with_data(path.iter().flatten().copied().collect::<Vec<u8>>())
        .with_le(256)
}

/// A file place of the known layouts: application, select mode and path.
#[derive(Clone, PartialEq, Eq)]
struct Place {
    name: &'static str,
    aid: Option<&'static [u8]>,
    mode: SelectMode,
    path: FilePath,
}

fn places() -> Vec<(Place, Vec<&'static str>)> {
    let mut out: Vec<(Place, Vec<&'static str>)> = Vec::new();
    let table = GENERATIONS.iter().chain(FALLBACKS.iter().take(1));
    for g in table {
        let l = g.layout;
        let mut files: Vec<(&'static str, FilePath)> = vec![
            ("EF_ID_Carta", l.id_carta),
            ("EF_Dati_personali", l.dati_personali),
            ("authentication certificate", l.key_set.cert_path),
        ];
        if let Some(k) = l.key_file {
            files.push(("key file", k));
        }
        for (path, _) in l.other_files {
            files.push(("other EF", path));
        }
        for (name, path) in files {
            let place = Place {
                name,
                aid: l.aid,
                mode: l.select,
                path,
            };
            let label = if g.is_fallback() { "classic" } else { g.name };
            match out.iter_mut().find(|(p, _)| *p == place) {
                Some((_, names)) => {
                    if !names.contains(&label) {
                        names.push(label)
                    }
                }
                None => out.push((place, vec![label])),
            }
        }
    }
    out
}

/// Collects the report over `transport`. Never sends a PIN: every command is a SELECT, a GET
/// DATA or a READ BINARY (the driver's recognition, run last for the conclusion, is too).
pub fn collect<T: Transport>(transport: T, reader: String) -> CardReport {
    let mut gate = ReadOnly {
        inner: transport,
        apdus: 0,
        sent: Vec::new(),
    };
    let atr_bytes = gate.atr().to_vec();
    let parsed = Atr::parse(&atr_bytes);
    let info = parsed.as_ref().ok().and_then(Atr::cns_info);
    let atr_match =
        tscns_card::generations::recognise(&atr_bytes, info.map(|i| i.fields()).as_ref()).name;
    let atr = AtrPart {
        bytes: spaced(&atr_bytes),
        error: parsed.as_ref().err().map(ToString::to_string),
        protocols: parsed
            .as_ref()
            .map(|a| a.protocols().to_vec())
            .unwrap_or_default(),
        historical_bytes: parsed
            .as_ref()
            .map(|a| spaced(a.historical_bytes()))
            .unwrap_or_default(),
        cns: info.map(|i| CnsPart {
            chip_maker: format!("{:02X} {}", i.chip_maker.0, i.chip_maker),
            mask_maker: format!("{:02X} {}", i.mask_maker.0, i.mask_maker),
            firmware: format!("{:02X} {:02X}", i.firmware.0, i.firmware.1),
            cns_version: i.cns_version.to_string(),
        }),
        atr_match,
    };

    // The whole sequence in one PC/SC transaction: no other program's command comes in between.
    let found_all = {
        let mut card = Card::new(&mut gate);
        match card.transaction(|c| Ok(steps(c))) {
            Ok(v) => v,
            Err(_) => steps(&mut card),
        }
    };
    let (probes, files, contents, answered_aids, found) = found_all;

    // 4. What the driver concludes (its recognition only: read-only probes, through the same
    //    gate).
    let conclusion = conclude(&mut gate, &atr_bytes, &answered_aids, &found);
    CardReport {
        about: "tscns card report: a read-only diagnostic of a smart card, without personal data \
                (no PIN was asked for or sent)",
        tscns_version: env!("CARGO_PKG_VERSION"),
        reader: public_reader_name(&reader),
        atr,
        probes,
        files,
        contents,
        conclusion,
        apdus: gate.apdus,
        commands_sent: gate.sent.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// What the report's own sequence found.
type Found = (
    Vec<Step>,
    Vec<FileStep>,
    Contents,
    Vec<&'static [u8]>,
    Vec<(Place, Option<usize>)>,
);

/// The report's own sequence: probes, file selects, shapes.
fn steps<U: Transport>(card: &mut Card<U>) -> Found {
    let send = |card: &mut Card<U>, cmd: &Command| card.transmit(cmd).ok();

    // 1. The recognition probes, as the driver sends them: each known application by AID
    //    (with its GET DATA check), then the classic path.
    let mut probes = Vec::new();
    let mut answered_aids: Vec<&'static [u8]> = Vec::new();
    for g in GENERATIONS.iter().filter(|g| g.layout.aid.is_some()) {
        let Some(aid) = g.layout.aid else { continue };
        let cmd = select_aid(aid);
        let r = send(card, &cmd);
        let ok = r.as_ref().is_some_and(Response::is_success);
        probes.push(step(
            format!("application of {}", g.name),
            &cmd,
            r.as_ref(),
            None,
        ));
        if !ok {
            continue;
        }
        answered_aids.push(aid);
        if let Some(check) = g.confirm {
            let [p1, p2] = check.p1p2;
            let cmd = Command::new(0x00, 0xCA, p1, p2).with_le(256);
            let r = send(card, &cmd);
            let matches = r
                .as_ref()
                .is_some_and(|r| r.is_success() && r.data() == check.expect);
            let note = if matches {
                format!(
                    "the model id {} expects: {:?}",
                    g.name,
                    String::from_utf8_lossy(check.expect)
                )
            } else {
                format!("not the model id {} expects (value not shown)", g.name)
            };
            // The answer of GET DATA is shown only when it is the known model id.
            let mut s = step(
                format!("GET DATA of {}", g.name),
                &cmd,
                r.as_ref(),
                Some(note),
            );
            if !matches {
                s.answer = Vec::new();
            }
            probes.push(s);
        }
    }
    let classic = tscns_card::EF_ID_CARTA;
    let cmd = select_path(0x08, classic);
    let r = send(card, &cmd);
    probes.push(step(
        format!("EF_ID_Carta {} (classic path)", path_text(classic)),
        &cmd,
        r.as_ref(),
        None,
    ));

    // 2. Every file of the known layouts.
    let mut files = Vec::new();
    let mut found: Vec<(Place, Option<usize>)> = Vec::new();
    for (place, layouts) in places() {
        let mut selection = String::new();
        if let Some(aid) = place.aid {
            let r = send(card, &select_aid(aid));
            selection.push_str(&format!(
                "after SELECT of the application {} ({}), ",
                spaced(aid),
                r.as_ref().map_or("no answer".into(), status_text)
            ));
        }
        let p1 = place.mode.p1();
        selection.push_str(match place.mode {
            SelectMode::FromMf => "by path from the MF (P1 = 08)",
            SelectMode::FromCurrentDf => "by path from the current DF (P1 = 09)",
        });
        let cmd = select_path(p1, place.path);
        let r = send(card, &cmd);
        let data = r.as_ref().map(|r| r.data().to_vec()).unwrap_or_default();
        let mut fci = tlvs(&data, 0);
        let size = fci_size(&data);
        if place.name == "authentication certificate" {
            // The exact size of an unpadded certificate file is the certificate's length.
            hide_sizes(&mut fci);
        }
        if r.as_ref().is_some_and(Response::is_success) {
            found.push((place.clone(), size));
        }
        files.push(FileStep {
            name: place.name.to_owned(),
            path: path_text(place.path),
            layouts,
            selection,
            command: spaced(&cmd.encode().unwrap_or_default()),
            status: r.as_ref().map_or("no answer".into(), status_text),
            fci,
            size: if place.name == "authentication certificate" {
                size.map(round_up)
            } else {
                size
            },
        });
    }

    // 3. The identity files' sizes and structure.
    let mut contents = Contents::default();
    let read = |card: &mut Card<U>, place: &Place, size: Option<usize>, max: usize| {
        if let Some(aid) = place.aid {
            send(card, &select_aid(aid))?;
        }
        let r = send(card, &select_path(place.mode.p1(), place.path))?;
        if !r.is_success() {
            return None;
        }
        card.read_binary_all(Some(size.unwrap_or(max).min(max)))
            .ok()
    };
    for (place, size) in &found {
        match place.name {
            "EF_ID_Carta" if contents.ef_id_carta.is_none() => {
                if let Some(bytes) = read(card, place, *size, MAX_ID) {
                    contents.ef_id_carta = Some(id_shape(place, &bytes));
                }
            }
            "EF_Dati_personali" if contents.ef_dati_personali.is_none() => {
                if let Some(bytes) = read(card, place, *size, MAX_PERSONAL) {
                    contents.ef_dati_personali = Some(personal_shape(place, &bytes));
                }
            }
            "authentication certificate" if contents.certificate.is_none() => {
                if let Some(bytes) = read(card, place, *size, MAX_CERT) {
                    contents.certificate = Some(cert_shape(place, &bytes));
                }
            }
            _ => {}
        }
    }

    (probes, files, contents, answered_aids, found)
}

/// The transport the report talks through: it lets SELECT, READ BINARY, GET DATA and GET
/// RESPONSE reach the card and refuses every other instruction (VERIFY, MSE, PSO, ...), so no
/// change to the report or to the driver's recognition can send one. It counts the APDUs and
/// notes which instructions went.
struct ReadOnly<T> {
    inner: T,
    apdus: u64,
    sent: Vec<&'static str>,
}

impl<T: Transport> Transport for ReadOnly<T> {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, tscns_apdu::Error> {
        let name = match command.get(1) {
            Some(0xA4) => "SELECT",
            Some(0xB0) => "READ BINARY",
            Some(0xCA) => "GET DATA",
            Some(0xC0) => "GET RESPONSE",
            _ => {
                return Err(tscns_apdu::Error::NotSupported {
                    what: "tscns card report sends only SELECT, READ BINARY, GET DATA and GET \
                           RESPONSE"
                        .into(),
                })
            }
        };
        if !self.sent.contains(&name) {
            self.sent.push(name);
        }
        self.apdus += 1;
        self.inner.transmit_raw(command)
    }
    fn atr(&self) -> &[u8] {
        self.inner.atr()
    }
    fn begin_transaction(&mut self) -> Result<(), tscns_apdu::Error> {
        self.inner.begin_transaction()
    }
    fn end_transaction(&mut self) -> Result<(), tscns_apdu::Error> {
        self.inner.end_transaction()
    }
    fn reconnect(&mut self) -> Result<(), tscns_apdu::Error> {
        self.inner.reconnect()
    }
}

/// A reader name without what identifies the device: pcsc-lite puts the USB serial number in
/// parentheses (`... [CCID Interface] (21120706200136) 00 00`); a simulated profile given as a
/// file keeps only its file name.
pub fn public_reader_name(reader: &str) -> String {
    if let Some(profile) = reader
        .strip_prefix("simulated (")
        .and_then(|r| r.strip_suffix(')'))
    {
        let name = std::path::Path::new(profile)
            .file_name()
            .map_or_else(|| profile.to_owned(), |n| n.to_string_lossy().into_owned());
        return format!("simulated ({name})");
    }
    let mut out = String::new();
    let mut depth = 0u32;
    for c in reader.chars() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("(...)");
                }
            }
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    // Any long run of digits or hex digits left is a serial too.
    out.split(' ')
        .map(|w| {
            if w.len() >= 6 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                "..."
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn step(purpose: String, cmd: &Command, r: Option<&Response>, note: Option<String>) -> Step {
    let data = r.map(|r| r.data().to_vec()).unwrap_or_default();
    Step {
        purpose,
        command: spaced(&cmd.encode().unwrap_or_default()),
        status: r.map_or("no answer".into(), status_text),
        answer: tlvs(&data, 0),
        answer_length: data.len(),
        note,
    }
}

fn id_shape(place: &Place, bytes: &[u8]) -> IdShape {
    let trimmed: &[u8] = {
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, 0x00 | 0xFF | b' '))
            .map_or(0, |i| i + 1);
        &bytes[..end]
    };
    let digits_only = !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_digit);
    IdShape {
        path: path_text(place.path),
        length: bytes.len(),
        digits_only,
        digits: trimmed.iter().filter(|b| b.is_ascii_digit()).count(),
        luhn_valid: digits_only && tscns_cert::CardId::luhn_is_valid(trimmed),
    }
}

/// The lengths of EF_Dati_personali (cns-card spec "EF_Dati_personali": a 6-hex-digit length,
/// then 16 fields of 2 hex digits of length and that many characters), never their values.
fn personal_shape(place: &Place, bytes: &[u8]) -> PersonalShape {
    let hex_len = |b: &[u8]| -> Option<usize> {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
    };
    let mut shape = PersonalShape {
        path: path_text(place.path),
        file_bytes: bytes.len(),
        announced_length: bytes.get(..6).and_then(hex_len),
        field_lengths: Vec::new(),
        problem: None,
    };
    let Some(announced) = shape.announced_length else {
        shape.problem = Some("the file does not start with a 6-digit hexadecimal length".into());
        return shape;
    };
    let end = (6 + announced).min(bytes.len());
    let mut at = 6;
    for field in 1..=16 {
        if at >= end {
            break;
        }
        let Some(len) = bytes.get(at..at + 2).and_then(hex_len) else {
            shape.problem = Some(format!("field {field}: no 2-digit hexadecimal length"));
            return shape;
        };
        if at + 2 + len > end {
            shape.problem = Some(format!("field {field} runs past the announced length"));
            return shape;
        }
        shape.field_lengths.push(len);
        at += 2 + len;
    }
    shape
}

/// A length rounded up to 64 bytes: the exact length of a certificate (unpadded on ACe 2025)
/// would link the report to the certificate the holder shows every site.
fn round_up(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// The issuer as text, unless it repeats the holder (a self-issued or test certificate): then
/// "not shown".
fn public_issuer(c: &tscns_cert::CnsCertificate) -> String {
    let issuer = c.issuer();
    let subject = c.subject();
    if issuer == subject {
        return "not shown: the certificate is self-issued".into();
    }
    // The holder's own attributes (not O / OU / C, which name the CA company and the region
    // on every CNS).
    let mut holder: Vec<String> = [c.common_name(), c.surname(), c.given_name()]
        .into_iter()
        .flatten()
        .collect();
    if let Ok(parts) = c.cn_parts() {
        holder.push(parts.codice_fiscale);
        holder.push(parts.card_id);
    }
    let repeats = holder
        .iter()
        .any(|v| v.len() >= 3 && issuer.to_uppercase().contains(&v.to_uppercase()));
    if repeats {
        return "not shown: the issuer repeats the holder's data".into();
    }
    issuer
}

fn cert_shape(place: &Place, bytes: &[u8]) -> CertShape {
    let der_length = tscns_card::der_length(bytes);
    let mut shape = CertShape {
        path: path_text(place.path),
        der_length: der_length.map(round_up),
        file_bytes: round_up(bytes.len()),
        issuer: None,
        key_algorithm: None,
        key_bits: None,
        policies: Vec::new(),
        not_before: None,
        not_after: None,
        problem: None,
    };
    let der = match der_length {
        Some(n) if n <= bytes.len() => &bytes[..n],
        _ => {
            shape.problem = Some("the file does not hold a whole DER SEQUENCE".into());
            return shape;
        }
    };
    match tscns_cert::CnsCertificate::from_der(der) {
        Ok(c) => {
            // The month only: to the second, the validity nearly names one certificate.
            let month = |t: Option<tscns_cert::time::OffsetDateTime>| {
                t.map(|t| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
            };
            shape.issuer = Some(public_issuer(&c));
            let key = c.key();
            shape.key_algorithm = Some(key.algorithm);
            shape.key_bits = key.bits;
            shape.policies = c
                .policies()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect();
            shape.not_before = month(c.not_before());
            shape.not_after = month(c.not_after());
        }
        Err(_) => shape.problem = Some("the DER does not parse as an X.509 certificate".into()),
    }
    shape
}

/// Runs the driver's recognition (read-only) and says what it found; for an unknown card, the
/// nearest known generation by what answered.
fn conclude<T: Transport>(
    transport: T,
    atr: &[u8],
    answered_aids: &[&[u8]],
    found: &[(Place, Option<usize>)],
) -> Conclusion {
    let recognised = CnsCard::open(transport);
    let nearest = nearest(atr, answered_aids, found);
    let conclusion = match recognised {
        Ok(cns) => {
            let r = cns.recognition();
            let g = r.generation;
            if g.is_fallback() {
                Conclusion {
                    known: false,
                    generation: Some(g.name),
                    recognised_by: Some(r.method.name()),
                    nearest,
                    summary: format!(
                        "an unknown card that looks like a TS-CNS ({}); the nearest known \
                         generation is {}: please attach this report to an issue",
                        g.summary,
                        nearest.unwrap_or("none")
                    ),
                }
            } else {
                Conclusion {
                    known: true,
                    generation: Some(g.name),
                    recognised_by: Some(r.method.name()),
                    nearest: None,
                    summary: format!("a known card: {} ({})", g.name, g.summary),
                }
            }
        }
        Err(e) => Conclusion {
            known: false,
            generation: None,
            recognised_by: None,
            nearest,
            summary: match e {
                Error::NotCns { reason } => format!(
                    "not recognised as a TS-CNS ({reason}); the nearest known generation is {}",
                    nearest.unwrap_or("none")
                ),
                _ => "the card could not be examined to the end (it was removed or stopped \
                      answering)"
                    .to_owned(),
            },
        },
    };
    conclusion
}

/// The known generation a card resembles most: its ATR test, its application answering, its
/// files found where it keeps them.
fn nearest(atr: &[u8], aids: &[&[u8]], found: &[(Place, Option<usize>)]) -> Option<&'static str> {
    let parsed = Atr::parse(atr).ok();
    let fields = parsed.as_ref().and_then(Atr::cns_info).map(|i| i.fields());
    let has = |g: &CardGeneration, path: FilePath| {
        found
            .iter()
            .any(|(p, _)| p.path == path && p.aid == g.layout.aid && p.mode == g.layout.select)
    };
    GENERATIONS
        .iter()
        .map(|g| {
            let mut score = 0;
            if g.atr_test != AtrTest::Any && g.atr_test.matches(atr, fields.as_ref()) {
                score += 3;
            }
            if g.layout.aid.is_some_and(|a| aids.contains(&a)) {
                score += 3;
            }
            if has(g, g.layout.key_set.cert_path) {
                score += 2;
            }
            if has(g, g.layout.dati_personali) {
                score += 1;
            }
            if has(g, g.layout.id_carta) != g.layout.card_id_from_certificate {
                score += 1;
            }
            (score, g.name)
        })
        .filter(|(s, _)| *s > 0)
        .fold(None, |best: Option<(i32, &'static str)>, x| match best {
            Some(b) if b.0 >= x.0 => Some(b),
            _ => Some(x),
        })
        .map(|(_, n)| n)
}

fn tlv_text(items: &[Tlv]) -> String {
    items
        .iter()
        .map(|t| {
            if let Some(n) = t.unparsed {
                return format!("[{n} bytes not TLV]");
            }
            if !t.children.is_empty() {
                return format!("{} {{ {} }}", t.tag, tlv_text(&t.children));
            }
            match &t.value {
                Some(v) if v.is_empty() => t.tag.clone(),
                Some(v) => format!("{}: {v}", t.tag),
                None => format!("{}: <{} bytes left out>", t.tag, t.length),
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The report as text for people.
pub fn text(r: &CardReport) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line("tscns card report".into());
    line(format!("{} (tscns {})", r.about, r.tscns_version));
    line(format!("reader: {}", r.reader));
    line(String::new());
    line("ATR".into());
    line(format!("  bytes:       {}", r.atr.bytes));
    if let Some(e) = &r.atr.error {
        line(format!("  malformed:   {e}"));
    }
    line(format!(
        "  protocols:   {}",
        r.atr
            .protocols
            .iter()
            .map(|p| format!("T={p}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    line(format!("  historical:  {}", r.atr.historical_bytes));
    match &r.atr.cns {
        Some(c) => line(format!(
            "  CNS marker:  chip {}, mask {}, firmware {}, CNS {}",
            c.chip_maker, c.mask_maker, c.firmware, c.cns_version
        )),
        None => line("  CNS marker:  none".into()),
    }
    line(format!("  ATR alone:   {}", r.atr.atr_match));
    line(String::new());
    line("Recognition probes".into());
    for (i, p) in r.probes.iter().enumerate() {
        line(format!("  {}. {}", i + 1, p.purpose));
        line(format!("     > {}", p.command));
        line(format!("     < {}", p.status));
        if !p.answer.is_empty() {
            line(format!("       {}", tlv_text(&p.answer)));
        }
        if let Some(n) = &p.note {
            line(format!("       {n}"));
        }
    }
    line(String::new());
    line("Files of the known layouts".into());
    for f in &r.files {
        line(format!(
            "  {} {} ({}): {}",
            f.name,
            f.path,
            f.layouts.join(", "),
            f.status
        ));
        line(format!("     {}", f.selection));
        if !f.fci.is_empty() {
            line(format!("     FCI {}", tlv_text(&f.fci)));
        }
    }
    line(String::new());
    line("Contents (sizes and structure only)".into());
    match &r.contents.ef_id_carta {
        Some(s) => line(format!(
            "  EF_ID_Carta {}: {} bytes, {} digits, digits only: {}, Luhn check: {}",
            s.path,
            s.length,
            s.digits,
            yes(s.digits_only),
            if s.luhn_valid { "valid" } else { "not valid" }
        )),
        None => line("  EF_ID_Carta: not read (not found)".into()),
    }
    match &r.contents.ef_dati_personali {
        Some(s) => line(format!(
            "  EF_Dati_personali {}: {} bytes, header announces {}, field lengths {:?}{}",
            s.path,
            s.file_bytes,
            s.announced_length
                .map_or("nothing".into(), |n| n.to_string()),
            s.field_lengths,
            s.problem
                .as_ref()
                .map_or(String::new(), |p| format!(" ({p})"))
        )),
        None => line("  EF_Dati_personali: not read (not found)".into()),
    }
    match &r.contents.certificate {
        Some(c) => line(format!(
            "  certificate {}: about {} bytes of DER, about {} read; issuer {}; {} {} bits; \
             policies {}; valid {} to {}{}",
            c.path,
            c.der_length.map_or("?".into(), |n| n.to_string()),
            c.file_bytes,
            c.issuer.as_deref().unwrap_or("?"),
            c.key_algorithm.as_deref().unwrap_or("?"),
            c.key_bits.map_or("?".into(), |b| b.to_string()),
            if c.policies.is_empty() {
                "none".into()
            } else {
                c.policies.join(", ")
            },
            c.not_before.as_deref().unwrap_or("?"),
            c.not_after.as_deref().unwrap_or("?"),
            c.problem
                .as_ref()
                .map_or(String::new(), |p| format!(" ({p})"))
        )),
        None => line("  certificate: not read (not found)".into()),
    }
    line(String::new());
    line("Conclusion".into());
    line(format!("  {}", r.conclusion.summary));
    line(format!(
        "  APDUs: {} (commands: {})",
        r.apdus,
        r.commands_sent.join(", ")
    ));
    o
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proprietary_fci_values_are_left_out() {
        // 6F { 84: AID, 85: one byte, C0: four bytes of something, CB: FF.. }
        let fci = [
            0x6F, 0x12, 0x84, 0x02, 0xA0, 0x01, 0x85, 0x01, 0x01, 0xC0, 0x04, 0x12, 0x34, 0x56,
            0x78, 0xCB, 0x03, 0xFF, 0xFF, 0xFF,
        ];
        let items = tlvs(&fci, 0);
        let t = tlv_text(&items);
        // A DF name that is no known AID is left out too (a partial-name SELECT may answer a
        // longer name with a card-specific suffix).
        assert_eq!(
            t,
            "6F { 84: <2 bytes left out> | 85: <1 bytes left out> | C0: <4 bytes left out> | \
             CB: FF FF FF }"
        );
        // Descriptive tags only directly in an FCI / FCP template: not at the top level, not in
        // a proprietary template.
        assert_eq!(
            tlv_text(&tlvs(&[0x80, 0x02, 0x12, 0x34], 0)),
            "80: <2 bytes left out>"
        );
        assert_eq!(
            tlv_text(&tlvs(&[0x62, 0x06, 0xA5, 0x04, 0x83, 0x02, 0x12, 0x34], 0)),
            "62 { A5 { 83: <2 bytes left out> } }"
        );
        assert_eq!(
            tlv_text(&tlvs(&[0x62, 0x04, 0x83, 0x02, 0x11, 0x02], 0)),
            "62 { 83: 11 02 }"
        );
        assert!(!t.contains("12 34"));
        // Garbage is counted, never shown.
        assert_eq!(tlv_text(&tlvs(&[0x6F, 0x09, 0x01], 0)), "[3 bytes not TLV]");
    }

    /// The report never sends anything but SELECT, GET DATA and READ BINARY, to any card,
    /// and leaves the PIN's tries as they were (the simulator's worst guess would count a
    /// data-less VERIFY as a wrong PIN).
    #[test]
    fn the_card_sees_only_read_only_commands() {
        for (name, _) in tscns_sim::BUILTIN_PROFILES {
            let mut profile = tscns_sim::SimProfile::builtin(name).unwrap();
            profile.guesses.dataless_verify = tscns_sim::DatalessVerify::Consumes;
            let card = tscns_sim::SimCard::new(&profile).unwrap();
            let handle = card.handle();
            let report = collect(card, (*name).to_owned());
            assert!(report.conclusion.known, "{name}");
            let log = handle.apdu_log();
            assert!(!log.is_empty());
            for r in &log {
                assert!(matches!(r.ins, 0xA4 | 0xCA | 0xB0), "{name}: {r:?}");
            }
            assert_eq!(handle.pin_tries_left(), profile.pin_tries, "{name}");
            assert_eq!(report.apdus, log.len() as u64, "{name}");
        }
    }

    proptest::proptest! {
        /// Whatever a card answers, the shapes and the FCI rendering end without a panic, and
        /// a proprietary value is never shown unless it is all 00 or all FF.
        #[test]
        fn hostile_answers_give_shapes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let place = Place {
                name: "x",
                aid: None,
                mode: SelectMode::FromMf,
                path: tscns_card::EF_DATI_PERSONALI,
            };
            let _ = personal_shape(&place, &bytes);
            let _ = id_shape(&place, &bytes);
            let _ = cert_shape(&place, &bytes);
            let items = tlvs(&bytes, 0);
            let _ = tlv_text(&items);
            let _ = fci_size(&bytes);
            fn check(items: &[Tlv]) -> bool {
                items.iter().all(|t| {
                    check(&t.children)
                        && match (&t.value, u32::from_str_radix(&t.tag, 16)) {
                            (Some(v), Ok(tag)) if !DESCRIPTIVE_TAGS.contains(&tag) => {
                                v.split(' ').all(|b| b == "FF") || v.split(' ').all(|b| b == "00") || v.is_empty()
                            }
                            _ => true,
                        }
                })
            }
            proptest::prop_assert!(check(&items));
        }
    }

    #[test]
    fn the_gate_refuses_everything_but_reads() {
        let profile = tscns_sim::SimProfile::builtin("actalis-ace2025-2048").unwrap();
        let card = tscns_sim::SimCard::new(&profile).unwrap();
        let handle = card.handle();
        let mut gate = ReadOnly {
            inner: card,
            apdus: 0,
            sent: Vec::new(),
        };
        for cmd in [
            &[0x00, 0x20, 0x00, 0x10][..],
            &[0x00, 0x22, 0xF3, 0x03, 0x00],
            &[0x00, 0x2A, 0x9E, 0x9A, 0x01, 0x00],
            &[0x00, 0x24, 0x00, 0x10],
            &[0x00],
        ] {
            assert!(gate.transmit_raw(cmd).is_err(), "{cmd:02X?}");
        }
        assert_eq!((gate.apdus, handle.counters().apdus), (0, 0));
        assert!(gate
            .transmit_raw(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])
            .is_ok());
        assert_eq!(gate.sent, ["SELECT"]);
    }

    #[test]
    fn reader_names_lose_their_serial_numbers() {
        assert_eq!(
            public_reader_name(
                "SCM Microsystems Inc. SCR 3310 [CCID Interface] (21120706200136) 00 00"
            ),
            "SCM Microsystems Inc. SCR 3310 [CCID Interface] (...) 00 00"
        );
        assert_eq!(
            public_reader_name("ACS ACR39U 0A1B2C3D4E 00 00"),
            "ACS ACR39U ... 00 00"
        );
        assert_eq!(public_reader_name("Virtual PCD 00 00"), "Virtual PCD 00 00");
        assert_eq!(
            public_reader_name("simulated (/home/mario/cards/mine.toml)"),
            "simulated (mine.toml)"
        );
    }

    #[test]
    fn personal_data_becomes_lengths() {
        let place = Place {
            name: "EF_Dati_personali",
            aid: None,
            mode: SelectMode::FromMf,
            path: tscns_card::EF_DATI_PERSONALI,
        };
        let s = personal_shape(&place, b"00000F04612005ROSSI00\0\0");
        assert_eq!(s.announced_length, Some(15));
        assert_eq!(s.field_lengths, [4, 5, 0]);
        assert_eq!(s.problem, None);
        let s = personal_shape(&place, b"zz");
        assert!(s.problem.is_some());
        let id = id_shape(&place, b"6120000000000234\xFF\xFF");
        assert!(id.digits_only && id.luhn_valid && id.digits == 16 && id.length == 18);
        assert!(!id_shape(&place, b"6120000000000235").luhn_valid);
    }
}
