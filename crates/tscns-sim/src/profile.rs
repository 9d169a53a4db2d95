//! The card profile: who the simulated card belongs to, which maker built it, its PINs and
//! key size, and the faults it shows. Read from TOML; every value is checked and an error names
//! the key.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use zeroize::Zeroizing;

use tscns_generations::{CardGeneration, SignPath, GENERATIONS};

use crate::faults::Faults;
use crate::Error;

/// The certificate policy of a CNS authentication certificate (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver,
/// "Authentication certificate profile").
pub const CNS_AUTHENTICATION_POLICY: &str = "1.3.76.16.2.1";

/// Who built the card: one generation of [`tscns_generations::GENERATIONS`], which decides the
/// ATR, the file layout, the PIN and key references, the lengths and the signing sequence. The
/// profile's `maker = "..."` is the generation's name: `st2021`, `stincard`, `athena`,
/// `idemia2021`, `idemia-v2`, `nfc-bare`, `actalis-ace2025`, `st2022-nfc` (a contract: these
/// names stay).
#[derive(Clone, Copy)]
pub struct Maker(&'static CardGeneration);

impl fmt::Debug for Maker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Maker({:?})", self.0.name)
    }
}

impl PartialEq for Maker {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Maker {}

impl std::hash::Hash for Maker {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

const fn all_makers() -> [Maker; GENERATIONS.len()] {
    let mut out = [Maker(&GENERATIONS[0]); GENERATIONS.len()];
    let mut i = 0;
    while i < GENERATIONS.len() {
        out[i] = Maker(&GENERATIONS[i]);
        i += 1;
    }
    out
}

const fn known(name: &str) -> Maker {
    let mut i = 0;
    while i < GENERATIONS.len() {
        if GENERATIONS[i].name.len() == name.len() {
            let (a, b) = (GENERATIONS[i].name.as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return Maker(&GENERATIONS[i]);
            }
        }
        i += 1;
    }
    panic!("no such generation in tscns_generations::GENERATIONS")
}

#[allow(non_upper_case_globals)]
impl Maker {
    /// Every maker: one per generation of [`tscns_generations::GENERATIONS`], in its order.
    pub const ALL: [Maker; GENERATIONS.len()] = all_makers();

    /// CNS 1.0, ST chip with the STIncard mask: PIN references need bit 0x80 (`stincard`).
    pub const STINCARD: Maker = known("stincard");
    /// CNS 1.0, Atmel chip with the Athena mask (`athena`).
    pub const ATHENA: Maker = known("athena");
    /// IDEMIA ID-One CNS v2, Infineon chip (`idemia-v2`); a CNS 1.1-class card (extended length,
    /// classic file layout, key reference 0x01). Note two facts of its real ATR: the version byte
    /// says 0x10 (so OpenSC 0.23 offers it 1024-bit RSA only), and its firmware byte 0x91 is >= 32,
    /// so the "IDEMIA 2021" rule (chip 5, mask 5, firmware >= 32) alone would misclassify it.
    pub const IDEMIA_V2: Maker = known("idemia-v2");
    /// IDEMIA 2021 card (`idemia2021`): certificate at 3F00/1400/9001/2002, key reference 0x02,
    /// GET CHALLENGE of at most 32 bytes, command chaining and extended length.
    pub const IDEMIA_2021: Maker = known("idemia2021");
    /// A card seen over NFC with the bare ATR `3B 80 80 01 01` and no CNS marker (`nfc-bare`);
    /// inside it is an IDEMIA ID-One CNS v2 (classic file layout, extended length).
    pub const NFC_BARE: Maker = known("nfc-bare");
    /// ST2021, CNS 1.1 on an ST chip with the STIncard mask (`st2021`): RSA-2048, extended
    /// length, never chaining.
    pub const ST2021: Maker = known("st2021");
    /// ST2022 read over NFC (`st2022-nfc`): the bare ATR, the CNS files under the JSign
    /// application, GET DATA `01 80` = "JSign4".
    pub const ST2022_NFC: Maker = known("st2022-nfc");
    /// ACTALIS ACe 2025 (`actalis-ace2025`): the application selected by AID, files by path from
    /// the current DF, no EF_ID_Carta, RSA-2048 under a 1.0 version byte.
    pub const ACTALIS_ACE_2025: Maker = known("actalis-ace2025");

    /// The old enum variant name of [`Maker::STINCARD`].
    #[deprecated(
        since = "0.1.0",
        note = "Maker is one generation now: use Maker::STINCARD"
    )]
    pub const Stincard: Maker = Maker::STINCARD;
    /// The old enum variant name of [`Maker::ATHENA`].
    #[deprecated(
        since = "0.1.0",
        note = "Maker is one generation now: use Maker::ATHENA"
    )]
    pub const Athena: Maker = Maker::ATHENA;
    /// The old enum variant name of [`Maker::IDEMIA_V2`].
    #[deprecated(
        since = "0.1.0",
        note = "Maker is one generation now: use Maker::IDEMIA_V2"
    )]
    pub const IdemiaV2: Maker = Maker::IDEMIA_V2;
    /// The old enum variant name of [`Maker::IDEMIA_2021`].
    #[deprecated(
        since = "0.1.0",
        note = "Maker is one generation now: use Maker::IDEMIA_2021"
    )]
    pub const Idemia2021: Maker = Maker::IDEMIA_2021;
    /// The old enum variant name of [`Maker::NFC_BARE`].
    #[deprecated(
        since = "0.1.0",
        note = "Maker is one generation now: use Maker::NFC_BARE"
    )]
    pub const NfcBare: Maker = Maker::NFC_BARE;

    /// The maker of a generation (a test's own, not yet in [`tscns_generations::GENERATIONS`],
    /// included). Its ATR must not be empty: the fallbacks describe no card.
    pub fn from_generation(generation: &'static CardGeneration) -> Option<Maker> {
        generation.is_simulated().then_some(Maker(generation))
    }

    /// The generation: every fact of the card comes from it.
    pub fn generation(self) -> &'static CardGeneration {
        self.0
    }

    /// The name used in profiles (`maker = "..."`).
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// Parses a profile maker name.
    pub fn from_name(name: &str) -> Option<Maker> {
        tscns_generations::by_name(name).map(Maker)
    }

    /// The answer to reset, byte for byte as real cards send it (CNS functional specification
    /// (CNIPA/AgID); OpenSC's itacns driver, "Protocol and ATR"; the pcsc-tools ATR list).
    pub fn atr(self) -> &'static [u8] {
        self.0.atr
    }

    /// Whether this maker's cards take extended-length APDUs (CNS 1.1 class and later).
    pub fn default_extended_length(self) -> bool {
        self.0.lengths.extended
    }

    /// Whether the PIN references of this maker's cards need bit 0x80 set (OpenSC
    /// `card-itacns.c`: "backtracking" for mask maker STIncard).
    pub fn pin_reference_needs_0x80(self) -> bool {
        self.0.pin.pin_reference & 0x80 != 0
    }

    /// Whether the card has the IDEMIA 2021 layout: certificate at 3F00/1400/9001/2002 and
    /// key reference 0x02 (OpenSC `pkcs15-itacns.c`, 2022 and later).
    pub fn has_idemia2021_layout(self) -> bool {
        self.0.layout.key_set == tscns_generations::KeySet::IDEMIA_2021
    }

    /// The key reference of the authentication key in MSE SET (`83 01 <ref>`).
    pub fn key_reference(self) -> u8 {
        self.0.layout.key_set.key_reference
    }

    /// Largest GET CHALLENGE the card answers (OpenSC: IDEMIA 2021 gives at most 32 bytes).
    pub fn max_challenge(self) -> usize {
        self.0.lengths.max_challenge
    }
}

impl fmt::Display for Maker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the card does with a data-less VERIFY (`00 20 00 <ref>`, no data): not public for the
/// newest cards, so a profile chooses (`[guesses] dataless_verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatalessVerify {
    /// `state`: ISO 7816-4 §11.5.6: 63Cx with the tries left (9000 when verified), nothing
    /// consumed.
    State,
    /// `consumes`: the card takes it for a wrong PIN (one try lost, 63Cx): the worst case the
    /// driver must never trigger on a card whose behaviour is not confirmed.
    Consumes,
    /// `refused`: 6700 (wrong length).
    Refused,
}

impl DatalessVerify {
    /// Every choice.
    pub const ALL: [DatalessVerify; 3] = [
        DatalessVerify::State,
        DatalessVerify::Consumes,
        DatalessVerify::Refused,
    ];

    /// The profile name (`state`, `consumes`, `refused`).
    pub fn name(self) -> &'static str {
        match self {
            DatalessVerify::State => "state",
            DatalessVerify::Consumes => "consumes",
            DatalessVerify::Refused => "refused",
        }
    }
}

/// Where the public record of a card is silent, what the simulated card does: a documented
/// guess per generation, which a profile can switch to each alternative the driver supports
/// (`[guesses]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guesses {
    /// The one signing sequence the card takes (the others are refused with 6A88 / 6A80, as a
    /// card that does not know them would). Default: `cns`, except `actalis-ace2025`, whose
    /// signing bytes are unpublished: `mse-84`, the ISO 7816-8 form OpenSC's ISO layer sends to
    /// NXP cards (so the driver's first try, the CNS sequence, is refused).
    pub signing: SignPath,
    /// The answer to a data-less VERIFY. Default: `state` (ISO 7816-4).
    pub dataless_verify: DatalessVerify,
}

impl Guesses {
    /// The documented guesses for a generation.
    pub fn for_generation(generation: &CardGeneration) -> Guesses {
        Guesses {
            signing: if generation.name == "actalis-ace2025" {
                SignPath::Mse84
            } else {
                SignPath::Cns
            },
            dataless_verify: DatalessVerify::State,
        }
    }
}

/// RSA modulus size of the authentication key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyBits {
    /// 1024 bits (CNS 1.0 cards).
    Rsa1024,
    /// 2048 bits (CNS 1.1, IDEMIA 2021).
    Rsa2048,
}

impl KeyBits {
    /// The number of bits.
    pub fn bits(self) -> usize {
        match self {
            KeyBits::Rsa1024 => 1024,
            KeyBits::Rsa2048 => 2048,
        }
    }

    /// The modulus length in bytes (the size of a PSO block and of a signature).
    pub fn bytes(self) -> usize {
        self.bits() / 8
    }
}

/// A PIN or PUK: ASCII digits, zeroized on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps digits (not checked here: [`SimProfile::validate`] checks them).
    pub fn new(digits: impl Into<String>) -> Self {
        Secret(Zeroizing::new(digits.into()))
    }

    /// The digits. Handle with care: never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The 16 fields of EF_Dati_personali (3F00/1100/1102), in file order. Empty string or `None`
/// = empty field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonalData {
    /// 1. Issuing administration code (`issuer_code`).
    pub issuer_code: String,
    /// 2. Issue date (`issue_date`).
    pub issue_date: Option<Date>,
    /// 3. Expiry date (`expiry_date`).
    pub expiry_date: Option<Date>,
    /// 4. Surname, cognome (`surname`).
    pub surname: String,
    /// 5. Given name, nome (`given_name`).
    pub given_name: String,
    /// 6. Birth date (`birth_date`).
    pub birth_date: Option<Date>,
    /// 7. Sex, `M` or `F` (`sex`).
    pub sex: String,
    /// 8. Height in cm (`height`).
    pub height: String,
    /// 9. Codice fiscale (`codice_fiscale`).
    pub codice_fiscale: String,
    /// 10. Citizenship code (`citizenship`).
    pub citizenship: String,
    /// 11. Birth municipality, Belfiore code (`birth_municipality`).
    pub birth_municipality: String,
    /// 12. Birth country (`birth_country`).
    pub birth_country: String,
    /// 13. Birth act reference (`birth_act`).
    pub birth_act: String,
    /// 14. Residence municipality, Belfiore code (`residence_municipality`).
    pub residence_municipality: String,
    /// 15. Residence address (`residence_address`).
    pub residence_address: String,
    /// 16. Expatriation notes (`expatriation_notes`).
    pub expatriation_notes: String,
}

/// What the test PKI writes into the authentication certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSettings {
    /// OU of the subject: the issuing administration, e.g. "REGIONE MARCHE".
    pub issuing_administration: String,
    /// O of the subject and of the test CA (the CA company).
    pub organization: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// certificatePolicies OIDs (dotted), by default [`CNS_AUTHENTICATION_POLICY`].
    pub policies: Vec<String>,
}

/// A validated card profile. Build one with [`SimProfile::from_toml`], [`SimProfile::from_file`],
/// [`SimProfile::builtin`] or [`SimProfile::default_profile`]; the fields are public so tests can vary
/// one thing ([`crate::SimCard::new`] validates again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimProfile {
    /// Seed of every generated value (keys, serial numbers, challenges).
    pub seed: u64,
    /// Who built the card.
    pub maker: Maker,
    /// Size of the authentication key.
    pub key_bits: KeyBits,
    /// EF_ID_Carta: 16 digits, Luhn check digit last.
    pub card_id: String,
    /// The PIN (5-8 digits).
    pub pin: Secret,
    /// The PUK (5-8 digits).
    pub puk: Secret,
    /// Wrong PINs allowed before the PIN blocks (1-15).
    pub pin_tries: u8,
    /// Wrong PUKs allowed before the PUK blocks (1-15).
    pub puk_tries: u8,
    /// Whether the card takes extended-length APDUs.
    pub extended_length: bool,
    /// Whether the card takes command chaining (CLA bit 0x10) for PSO.
    pub command_chaining: bool,
    /// EF_Dati_personali.
    pub personal_data: PersonalData,
    /// The authentication certificate.
    pub certificate: CertificateSettings,
    /// Faults, all off by default.
    pub faults: Faults,
    /// The card's behaviour where the public record is silent.
    pub guesses: Guesses,
}

/// The old name of [`SimProfile`] (the simulator's card profile; `tscns_card` and
/// `tscns_cohesion` have profiles of their own). Deprecated in the documentation only, so that
/// crates still using it keep building warning-free; it will get `#[deprecated]` once the
/// workspace has moved.
pub type Profile = SimProfile;

/// The built-in profiles: `(name, TOML text)`, `default` first ([`SimProfile::default_profile`])
/// and the others by name: every `profiles/*.toml` file of the crate (the build script lists
/// them, so adding a generation's profile is adding its file).
pub const BUILTIN_PROFILES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

impl SimProfile {
    /// The built-in default profile: an STIncard CNS 1.0 with a 2048-bit key and the holder
    /// MARIO ROSSI (`profiles/default.toml`).
    pub fn default_profile() -> Result<SimProfile, Error> {
        SimProfile::builtin("default")
    }

    /// A built-in profile by name (see [`BUILTIN_PROFILES`]; the files live in
    /// `crates/tscns-sim/profiles/`).
    pub fn builtin(name: &str) -> Result<SimProfile, Error> {
        let text = BUILTIN_PROFILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::UnknownBuiltinProfile {
                name: name.to_owned(),
                known: BUILTIN_PROFILES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        SimProfile::from_toml(text)
    }

    /// A built-in profile when `name_or_path` is the name of one, otherwise the TOML file at that
    /// path: what a command's `--simulated PROFILE` takes. A name that is neither lists the
    /// built-in names.
    pub fn builtin_or_file(name_or_path: &str) -> Result<SimProfile, Error> {
        if BUILTIN_PROFILES.iter().any(|(n, _)| *n == name_or_path) {
            return SimProfile::builtin(name_or_path);
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return SimProfile::from_file(path);
        }
        SimProfile::builtin(name_or_path)
    }

    /// Reads and validates a profile file (TOML).
    pub fn from_file(path: &Path) -> Result<SimProfile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            action: "read the profile",
            path: path.to_owned(),
            source,
        })?;
        SimProfile::from_toml(&text)
    }

    /// Parses and validates a profile. Unknown keys, wrong types and invalid values are errors
    /// that name the key.
    pub fn from_toml(text: &str) -> Result<SimProfile, Error> {
        let table: Vec<&'static CardGeneration> = GENERATIONS.iter().collect();
        SimProfile::from_toml_among(text, &table)
    }

    /// Like [`SimProfile::from_toml`], with `maker` naming a generation of `table` (a test's,
    /// with a generation not yet in [`tscns_generations::GENERATIONS`]).
    pub fn from_toml_among(
        text: &str,
        table: &[&'static CardGeneration],
    ) -> Result<SimProfile, Error> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| Error::ProfileSyntax {
            message: e.to_string().trim_end().to_owned(),
        })?;
        let profile = raw.into_profile(table)?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks every value (the TOML reader calls it; call it again after changing fields).
    pub fn validate(&self) -> Result<(), Error> {
        tscns_cert::CardId::parse(&self.card_id)
            .map_err(|e| Error::value("card_id", e.to_string()))?;
        check_secret("pin", &self.pin)?;
        check_secret("puk", &self.puk)?;
        if !(1..=15).contains(&self.pin_tries) {
            return Err(Error::value("pin_tries", "must be 1 to 15"));
        }
        if !(1..=15).contains(&self.puk_tries) {
            return Err(Error::value("puk_tries", "must be 1 to 15"));
        }
        if self.key_bits == KeyBits::Rsa2048 && !self.extended_length && !self.command_chaining {
            return Err(Error::value(
                "key_bits",
                "a 2048-bit key needs extended_length = true or command_chaining = true \
                 (a 256-byte PSO block does not fit a short APDU)",
            ));
        }
        self.personal_data.validate()?;
        let cert = &self.certificate;
        check_text(
            "certificate.issuing_administration",
            &cert.issuing_administration,
            64,
        )?;
        check_text("certificate.organization", &cert.organization, 64)?;
        if cert.organization.is_empty() {
            return Err(Error::value(
                "certificate.organization",
                "must not be empty",
            ));
        }
        for (key, at) in [
            ("certificate.not_before", cert.not_before),
            ("certificate.not_after", cert.not_after),
        ] {
            if !(1950..=9000).contains(&at.year()) {
                return Err(Error::value(key, "must be in the years 1950 to 9000"));
            }
        }
        if cert.not_after <= cert.not_before {
            return Err(Error::value(
                "certificate.not_after",
                "must be later than certificate.not_before",
            ));
        }
        for policy in &cert.policies {
            crate::pki::encode_oid(policy)
                .map_err(|reason| Error::value("certificate.policies", reason))?;
        }
        self.faults.validate()?;
        Ok(())
    }
}

fn check_secret(key: &str, secret: &Secret) -> Result<(), Error> {
    let s = secret.expose();
    if !(5..=8).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::value(key, "must be 5 to 8 digits"));
    }
    Ok(())
}

/// Card files hold printable ASCII; a field length is two hex digits (at most 255).
fn check_text(key: &str, value: &str, max: usize) -> Result<(), Error> {
    if let Some(c) = value.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(Error::value(
            key,
            format!("{c:?} is not allowed: the card stores printable ASCII only (write accented letters as A', E', ...)"),
        ));
    }
    if value.len() > max {
        return Err(Error::value(
            key,
            format!("is {} characters long, at most {max} fit", value.len()),
        ));
    }
    Ok(())
}

fn check_belfiore(key: &str, value: &str) -> Result<(), Error> {
    let b = value.as_bytes();
    let ok = value.is_empty()
        || (b.len() == 4 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit));
    if ok {
        Ok(())
    } else {
        Err(Error::value(
            key,
            "must be a Belfiore code: one capital letter and three digits, e.g. H501",
        ))
    }
}

impl PersonalData {
    /// Checks every field (printable ASCII, lengths, codice fiscale, Belfiore codes, sex).
    pub fn validate(&self) -> Result<(), Error> {
        let texts = [
            ("issuer_code", &self.issuer_code),
            ("surname", &self.surname),
            ("given_name", &self.given_name),
            ("sex", &self.sex),
            ("height", &self.height),
            ("codice_fiscale", &self.codice_fiscale),
            ("citizenship", &self.citizenship),
            ("birth_municipality", &self.birth_municipality),
            ("birth_country", &self.birth_country),
            ("birth_act", &self.birth_act),
            ("residence_municipality", &self.residence_municipality),
            ("residence_address", &self.residence_address),
            ("expatriation_notes", &self.expatriation_notes),
        ];
        for (key, value) in texts {
            check_text(&format!("personal_data.{key}"), value, 255)?;
        }
        if self.codice_fiscale.is_empty() {
            return Err(Error::value(
                "personal_data.codice_fiscale",
                "is required: the certificate CN starts with it",
            ));
        }
        tscns_cert::CodiceFiscale::parse(&self.codice_fiscale)
            .map_err(|e| Error::value("personal_data.codice_fiscale", e.to_string()))?;
        if !matches!(self.sex.as_str(), "" | "M" | "F") {
            return Err(Error::value("personal_data.sex", "must be \"M\" or \"F\""));
        }
        if !self.height.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::value(
                "personal_data.height",
                "must be digits (centimetres)",
            ));
        }
        check_belfiore("personal_data.birth_municipality", &self.birth_municipality)?;
        check_belfiore(
            "personal_data.residence_municipality",
            &self.residence_municipality,
        )?;
        let len = crate::personal::encode(self).len();
        if len > crate::personal::MAX_FILE_LEN {
            return Err(Error::value(
                "personal_data",
                format!(
                    "the fields make a {len}-byte EF_Dati_personali; real cards (and OpenSC) stop at {}",
                    crate::personal::MAX_FILE_LEN
                ),
            ));
        }
        Ok(())
    }
}

// ---- TOML form -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    seed: Option<i64>,
    maker: Option<String>,
    key_bits: Option<i64>,
    card_id: Option<String>,
    pin: Option<String>,
    puk: Option<String>,
    pin_tries: Option<i64>,
    puk_tries: Option<i64>,
    extended_length: Option<bool>,
    command_chaining: Option<bool>,
    personal_data: Option<RawPersonalData>,
    certificate: Option<RawCertificate>,
    faults: Option<RawFaults>,
    guesses: Option<RawGuesses>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGuesses {
    signing: Option<String>,
    dataless_verify: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPersonalData {
    issuer_code: Option<String>,
    issue_date: Option<String>,
    expiry_date: Option<String>,
    surname: Option<String>,
    given_name: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    height: Option<String>,
    codice_fiscale: Option<String>,
    citizenship: Option<String>,
    birth_municipality: Option<String>,
    birth_country: Option<String>,
    birth_act: Option<String>,
    residence_municipality: Option<String>,
    residence_address: Option<String>,
    expatriation_notes: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    issuing_administration: Option<String>,
    organization: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    policies: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    latency_ms: Option<i64>,
    bit_rate: Option<i64>,
    remove_after: Option<i64>,
    reset_after: Option<i64>,
    corrupt_after: Option<i64>,
    truncate_after: Option<i64>,
    mute_after: Option<i64>,
    mute_timeout_ms: Option<i64>,
}

fn int_in<T: TryFrom<i64>>(key: &str, value: i64, range: &str) -> Result<T, Error> {
    T::try_from(value).map_err(|_| Error::value(key, format!("{value} is out of range ({range})")))
}

fn opt_count(key: &str, value: Option<i64>) -> Result<Option<u64>, Error> {
    value
        .map(|v| int_in::<u64>(key, v, "0 or more"))
        .transpose()
}

fn parse_date(key: &str, value: Option<String>) -> Result<Option<Date>, Error> {
    match value {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Date::parse(&s, format_description!("[year]-[month]-[day]"))
            .map(Some)
            .map_err(|_| Error::value(key, format!("{s:?} is not a date: write YYYY-MM-DD"))),
    }
}

fn parse_instant(key: &str, value: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Error::value(
            key,
            format!("{value:?} is not a date and time: write RFC 3339, e.g. 2021-03-01T00:00:00Z"),
        )
    })
}

/// Midnight UTC of a date.
fn midnight(date: Date) -> OffsetDateTime {
    date.midnight().assume_utc()
}

impl RawPersonalData {
    fn into_personal_data(self) -> Result<PersonalData, Error> {
        let s = |v: Option<String>| v.unwrap_or_default();
        Ok(PersonalData {
            issue_date: parse_date("personal_data.issue_date", self.issue_date)?,
            expiry_date: parse_date("personal_data.expiry_date", self.expiry_date)?,
            birth_date: parse_date("personal_data.birth_date", self.birth_date)?,
            issuer_code: s(self.issuer_code),
            surname: s(self.surname),
            given_name: s(self.given_name),
            sex: s(self.sex),
            height: s(self.height),
            codice_fiscale: s(self.codice_fiscale),
            citizenship: s(self.citizenship),
            birth_municipality: s(self.birth_municipality),
            birth_country: s(self.birth_country),
            birth_act: s(self.birth_act),
            residence_municipality: s(self.residence_municipality),
            residence_address: s(self.residence_address),
            expatriation_notes: s(self.expatriation_notes),
        })
    }
}

/// The holder of a profile that has no `[personal_data]` table.
fn default_personal_data() -> PersonalData {
    PersonalData {
        issuer_code: "6120".into(),
        issue_date: Date::from_calendar_date(2025, time::Month::March, 1).ok(),
        expiry_date: Date::from_calendar_date(2031, time::Month::March, 1).ok(),
        surname: "ROSSI".into(),
        given_name: "MARIO".into(),
        birth_date: Date::from_calendar_date(1980, time::Month::January, 1).ok(),
        sex: "M".into(),
        codice_fiscale: "RSSMRA80A01H501U".into(),
        birth_municipality: "H501".into(),
        residence_municipality: "H501".into(),
        residence_address: "VIA ROMA 1".into(),
        ..PersonalData::default()
    }
}

impl RawProfile {
    fn into_profile(self, table: &[&'static CardGeneration]) -> Result<SimProfile, Error> {
        let maker = match self.maker {
            None => Maker::STINCARD,
            Some(name) => table
                .iter()
                .find(|g| g.name == name)
                .and_then(|g| Maker::from_generation(g))
                .ok_or_else(|| {
                    Error::value(
                        "maker",
                        format!(
                            "{name:?} is not a maker: choose one of {}",
                            table.iter().map(|g| g.name).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?,
        };
        let key_bits = match self.key_bits {
            // CNS 1.0 makers had 1024-bit keys, later cards 2048 (spec "File system").
            None if maker.generation().key_bits >= 2048 => KeyBits::Rsa2048,
            None => KeyBits::Rsa1024,
            Some(1024) => KeyBits::Rsa1024,
            Some(2048) => KeyBits::Rsa2048,
            Some(other) => {
                return Err(Error::value(
                    "key_bits",
                    format!("{other} is not 1024 or 2048"),
                ))
            }
        };
        let command_chaining = self
            .command_chaining
            .unwrap_or(maker.generation().lengths.chaining);
        let extended_length = self
            .extended_length
            .unwrap_or(maker.default_extended_length() || key_bits == KeyBits::Rsa2048);
        let personal_data = match self.personal_data {
            None => default_personal_data(),
            Some(raw) => raw.into_personal_data()?,
        };
        let raw_cert = self.certificate.unwrap_or_default();
        let not_before = match raw_cert.not_before {
            Some(s) => parse_instant("certificate.not_before", &s)?,
            None => midnight(
                personal_data.issue_date.unwrap_or(
                    Date::from_calendar_date(2025, time::Month::January, 1)
                        .map_err(|e| Error::value("certificate.not_before", e.to_string()))?,
                ),
            ),
        };
        let not_after = match raw_cert.not_after {
            Some(s) => parse_instant("certificate.not_after", &s)?,
            None => match personal_data.expiry_date {
                Some(d) => midnight(d),
                // Six years, as TS-CNS cards; saturating so no date can overflow.
                None => not_before
                    .checked_add(time::Duration::days(6 * 366))
                    .unwrap_or(not_before),
            },
        };
        let raw_faults = self.faults.unwrap_or_default();
        let faults = Faults {
            latency: Duration::from_millis(
                raw_faults
                    .latency_ms
                    .map(|v| int_in::<u64>("faults.latency_ms", v, "0 or more"))
                    .transpose()?
                    .unwrap_or(0),
            ),
            bit_rate: raw_faults
                .bit_rate
                .map(|v| int_in::<u64>("faults.bit_rate", v, "bits per second, 1 or more"))
                .transpose()?,
            remove_after: opt_count("faults.remove_after", raw_faults.remove_after)?,
            reset_after: opt_count("faults.reset_after", raw_faults.reset_after)?,
            corrupt_after: opt_count("faults.corrupt_after", raw_faults.corrupt_after)?,
            truncate_after: opt_count("faults.truncate_after", raw_faults.truncate_after)?,
            mute_after: opt_count("faults.mute_after", raw_faults.mute_after)?,
            mute_timeout: match raw_faults.mute_timeout_ms {
                Some(v) => {
                    Duration::from_millis(int_in::<u64>("faults.mute_timeout_ms", v, "0 or more")?)
                }
                None => Faults::default().mute_timeout,
            },
        };
        let raw_guesses = self.guesses.unwrap_or_default();
        let mut guesses = Guesses::for_generation(maker.generation());
        if let Some(name) = raw_guesses.signing {
            guesses.signing = SignPath::from_name(&name).ok_or_else(|| {
                Error::value(
                    "guesses.signing",
                    format!(
                        "{name:?} is not a signing sequence: choose one of {}",
                        SignPath::ALL.map(SignPath::name).join(", ")
                    ),
                )
            })?;
        }
        if let Some(name) = raw_guesses.dataless_verify {
            guesses.dataless_verify = DatalessVerify::ALL
                .into_iter()
                .find(|d| d.name() == name)
                .ok_or_else(|| {
                    Error::value(
                        "guesses.dataless_verify",
                        format!(
                            "{name:?} is not an answer: choose one of {}",
                            DatalessVerify::ALL.map(DatalessVerify::name).join(", ")
                        ),
                    )
                })?;
        }
        Ok(SimProfile {
            guesses,
            seed: int_in("seed", self.seed.unwrap_or(1), "0 or more")?,
            maker,
            key_bits,
            card_id: self
                .card_id
                .unwrap_or_else(|| "6120000000000002".to_owned()),
            pin: Secret::new(self.pin.unwrap_or_else(|| "12345678".to_owned())),
            puk: Secret::new(self.puk.unwrap_or_else(|| "87654321".to_owned())),
            pin_tries: int_in("pin_tries", self.pin_tries.unwrap_or(3), "1 to 15")?,
            puk_tries: int_in("puk_tries", self.puk_tries.unwrap_or(10), "1 to 15")?,
            extended_length,
            command_chaining,
            personal_data,
            certificate: CertificateSettings {
                issuing_administration: raw_cert
                    .issuing_administration
                    .unwrap_or_else(|| "REGIONE MARCHE".to_owned()),
                organization: raw_cert
                    .organization
                    .unwrap_or_else(|| "tscns Test PKI S.p.A.".to_owned()),
                not_before,
                not_after,
                policies: raw_cert
                    .policies
                    .unwrap_or_else(|| vec![CNS_AUTHENTICATION_POLICY.to_owned()]),
            },
            faults,
        })
    }
}
