//! `tscns card`: read the identity on the card, manage the PIN, export the certificate, sign.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use tscns_apdu::Transport;
use tscns_card::{CnsCard, HashAlg, Identity, PersonalData, Pin, Puk};
use zeroize::Zeroizing;

/// Subcommands of `tscns card`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read the card: ATR, maker, card id, personal data, certificate, cross-checks.
    Info(InfoArgs),
    /// Verify, change or unblock the PIN.
    #[command(subcommand)]
    Pin(PinCommand),
    /// Write the authentication certificate as PEM (to stdout or --out).
    Cert(CertArgs),
    /// Sign a file's hash with the card's authentication key (raw RSA signature out).
    Sign(SignArgs),
    /// A diagnostic of the card to attach to a bug report: read-only (no PIN), without any
    /// personal data (lengths and structure only), with what tscns concluded.
    Report(ReportArgs),
}

/// Arguments of `tscns card report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    source: Source,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Which card to talk to.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// PC/SC reader name (default: the first reader with a card).
    #[arg(long, value_name = "READER")]
    pub reader: Option<String>,
    /// Use the in-process simulated card instead of a reader; PROFILE is a tscns-sim built-in
    /// profile or a profile file (TOML) (default: `default`).
    #[arg(
        long,
        value_name = "PROFILE",
        num_args = 0..=1,
        default_missing_value = "default",
        conflicts_with = "reader"
    )]
    pub simulated: Option<String>,
}

/// Arguments of `tscns card info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    source: Source,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// How the PIN is entered.
#[derive(Debug, clap::Args)]
pub struct PinInput {
    /// Read the PIN (and the new PIN / PUK, one per line) from standard input instead of
    /// prompting on the terminal.
    #[arg(long)]
    pin_stdin: bool,
}

/// Arguments shared by the PIN subcommands.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    input: PinInput,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `tscns card pin ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PinCommand {
    /// Check the PIN (one try is used only if it is wrong).
    Verify(PinArgs),
    /// Change the PIN (old PIN, then new PIN, asked twice at the prompt).
    Change(PinArgs),
    /// Unblock the PIN with the PUK and set a new PIN (PUK, then new PIN, asked twice at the
    /// prompt).
    Unblock(PinArgs),
}

/// Arguments of `tscns card cert`.
#[derive(Debug, clap::Args)]
pub struct CertArgs {
    #[command(flatten)]
    source: Source,
    /// Write the PEM to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Arguments of `tscns card sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    input: PinInput,
    /// The file whose hash is signed.
    #[arg(long = "in", value_name = "FILE")]
    input_file: PathBuf,
    /// Hash algorithm: sha1, sha256, sha384, sha512.
    #[arg(long, default_value = "sha256")]
    hash: HashAlg,
    /// RSASSA-PSS (salt length = hash length) instead of PKCS#1 v1.5.
    #[arg(long)]
    pss: bool,
    /// Where the raw signature (modulus-sized bytes) goes.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Runs `tscns card`.
pub fn run(cmd: Command) -> ExitCode {
    let result = match cmd {
        Command::Info(a) => info(a),
        Command::Pin(p) => pin(p),
        Command::Cert(a) => cert(a),
        Command::Sign(a) => sign(a),
        Command::Report(a) => report(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tscns card: {msg}");
            ExitCode::from(1)
        }
    }
}

type Fail = String;

fn fail(e: impl std::fmt::Display) -> Fail {
    e.to_string()
}

/// The card behind a box so real readers and the simulator share one path.
struct Opened {
    card: CnsCard<Box<dyn Transport>>,
    reader: String,
}

/// The card's transport without the driver (for the report's own sequence).
fn open_transport(source: &Source) -> Result<(Box<dyn Transport>, String), Fail> {
    if let Some(profile_name) = &source.simulated {
        let transport: Box<dyn Transport> = crate::simulated::transport(profile_name)?;
        return Ok((transport, format!("simulated ({profile_name})")));
    }
    open_pcsc_transport(source.reader.as_deref())
}

#[cfg(feature = "pcsc")]
fn open_pcsc_transport(reader: Option<&str>) -> Result<(Box<dyn Transport>, String), Fail> {
    use tscns_apdu::pcsc::PcscTransport;
    let t = match reader {
        Some(r) => PcscTransport::connect(r),
        None => PcscTransport::connect_first(),
    }
    .map_err(fail)?;
    let name = t.reader().to_owned();
    Ok((Box::new(t), name))
}

#[cfg(not(feature = "pcsc"))]
fn open_pcsc_transport(_reader: Option<&str>) -> Result<(Box<dyn Transport>, String), Fail> {
    Err("this tscns was built without PC/SC support: use --simulated".into())
}

fn report(args: ReportArgs) -> Result<(), Fail> {
    let (transport, reader) = open_transport(&args.source)?;
    let spinner = Spinner::start("examining the card (read-only)...");
    let report = crate::report::collect(transport, reader);
    drop(spinner);
    let out = if args.json {
        let mut s = serde_json::to_string_pretty(&report).map_err(fail)?;
        s.push('\n');
        s
    } else {
        crate::report::text(&report)
    };
    match &args.out {
        Some(path) => std::fs::write(path, out)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => {
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
        }
    }
    Ok(())
}

fn open(source: &Source) -> Result<Opened, Fail> {
    if let Some(profile_name) = &source.simulated {
        let transport: Box<dyn Transport> = crate::simulated::transport(profile_name)?;
        return Ok(Opened {
            card: CnsCard::open(transport).map_err(fail)?,
            reader: format!("simulated ({profile_name})"),
        });
    }
    open_pcsc(source.reader.as_deref())
}

#[cfg(feature = "pcsc")]
fn open_pcsc(reader: Option<&str>) -> Result<Opened, Fail> {
    use tscns_apdu::pcsc::PcscTransport;
    let t = match reader {
        Some(r) => PcscTransport::connect(r),
        None => PcscTransport::connect_first(),
    }
    .map_err(fail)?;
    let name = t.reader().to_owned();
    let transport: Box<dyn Transport> = Box::new(t);
    Ok(Opened {
        card: CnsCard::open(transport).map_err(fail)?,
        reader: name,
    })
}

#[cfg(not(feature = "pcsc"))]
fn open_pcsc(_reader: Option<&str>) -> Result<Opened, Fail> {
    Err("this tscns was built without PC/SC support: use --simulated".into())
}

/// A spinner on stderr while slow card work runs, only when stderr is a terminal.
pub(crate) struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub(crate) fn start(msg: &'static str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(msg);
        pb.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(pb))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
        }
    }
}

fn date(d: Option<tscns_cert::time::Date>) -> Value {
    match d {
        Some(d) => Value::String(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )),
        None => Value::Null,
    }
}

fn personal_data_json(pd: &PersonalData) -> Value {
    json!({
        "issuer_code": pd.issuer_code,
        "issue_date": date(pd.issue_date),
        "expiry_date": date(pd.expiry_date),
        "surname": pd.surname,
        "given_name": pd.given_name,
        "birth_date": date(pd.birth_date),
        "sex": pd.sex,
        "height": pd.height,
        "codice_fiscale": pd.codice_fiscale,
        "citizenship": pd.citizenship,
        "birth_municipality": pd.birth_municipality,
        "birth_country": pd.birth_country,
        "birth_act": pd.birth_act,
        "residence_municipality": pd.residence_municipality,
        "residence_address": pd.residence_address,
        "expatriation_notes": pd.expatriation_notes,
    })
}

fn certificate_json(id: &Identity) -> Result<Value, Fail> {
    // The same object `tscns cert inspect --json` prints.
    let report = crate::cert::certificate_report(
        &id.certificate,
        tscns_cert::time::OffsetDateTime::now_utc(),
        &[],
        &[],
    );
    serde_json::to_value(report).map_err(fail)
}

fn info(args: InfoArgs) -> Result<(), Fail> {
    let mut opened = open(&args.source)?;
    let spinner = Spinner::start("reading the card...");
    let recognition = opened.card.recognition().clone();
    let atr = crate::readers::hex(opened.card.atr());
    let id = opened.card.identity().map_err(fail)?.clone();
    drop(spinner);
    let info = recognition.info;
    let card = json!({
        "cns_version": info.map(|i| i.cns_version.to_string()),
        "chip_maker": info.map(|i| i.chip_maker.to_string()),
        "os_maker": info.map(|i| i.mask_maker.to_string()),
        "profile": recognition.generation.name,
        "recognised_by": recognition.method.name(),
        "application": id.origins.application,
    });
    if args.json {
        let out = json!({
            "reader": opened.reader,
            "atr": atr,
            "card": card,
            "card_id": id.card_id.as_str(),
            "personal_data": personal_data_json(&id.personal_data),
            "certificate": certificate_json(&id)?,
            "checks": {
                "cf_matches_certificate": id.checks.cf_matches_certificate,
                "data_hash_matches": id.checks.data_hash_matches,
            },
            "apdus": id.apdus,
            "origins": {
                "card_id": id.origins.card_id.name(),
                "card_id_file": id.origins.card_id_file,
                "personal_data_file": id.origins.personal_data_file,
                "certificate_file": id.origins.certificate_file,
            },
        });
        say!("{}", serde_json::to_string_pretty(&out).map_err(fail)?);
        return Ok(());
    }
    let pd = &id.personal_data;
    let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let d = |v| match date(v) {
        Value::String(s) => s,
        _ => "-".into(),
    };
    let check = |v: Option<bool>| match v {
        Some(true) => "match",
        Some(false) => "MISMATCH",
        None => "not available",
    };
    say!("reader:            {}", opened.reader);
    say!("ATR:               {atr}");
    match info {
        Some(i) => say!(
            "card:              CNS {}, chip {}, OS {}, firmware {:02X}.{:02X} (profile {})",
            i.cns_version,
            i.chip_maker,
            i.mask_maker,
            i.firmware.0,
            i.firmware.1,
            recognition.generation
        ),
        None => say!("card:              recognised by its files (no CNS marker in the ATR)"),
    }
    say!("card id:           {}", id.card_id.as_str());
    let card_id_from = match &id.origins.card_id_file {
        Some(f) => format!("{} {f}", id.origins.card_id.name()),
        None => id.origins.card_id.name().to_owned(),
    };
    say!(
        "read from:         recognised by {}{}; card id from {card_id_from}; personal data {}; \
         certificate {}",
        recognition.method.name(),
        id.origins
            .application
            .as_ref()
            .map_or_else(String::new, |aid| format!(", application {aid}")),
        id.origins.personal_data_file,
        id.origins.certificate_file
    );
    say!(
        "holder:            {} {}",
        s(&pd.given_name),
        s(&pd.surname)
    );
    say!("codice fiscale:    {}", s(&pd.codice_fiscale));
    say!(
        "born:              {} in {}",
        d(pd.birth_date),
        s(&pd.birth_municipality)
    );
    say!("sex:               {}", s(&pd.sex));
    say!(
        "residence:         {} ({})",
        s(&pd.residence_address),
        s(&pd.residence_municipality)
    );
    say!(
        "issued / expires:  {} / {}",
        d(pd.issue_date),
        d(pd.expiry_date)
    );
    say!("certificate:       {}", id.certificate.subject());
    say!("issuer:            {}", id.certificate.issuer());
    say!(
        "checks:            codice fiscale vs certificate: {}; CN hash vs personal data: {}",
        check(id.checks.cf_matches_certificate),
        check(id.checks.data_hash_matches)
    );
    say!("APDUs:             {}", id.apdus);
    Ok(())
}

/// Asks the person at the terminal for one secret, given the prompt's words.
type Prompt = Box<dyn FnMut(&str) -> Result<Zeroizing<String>, Fail>>;

/// Reads secrets for one command: from stdin lines (`--pin-stdin`) or no-echo prompts.
pub(crate) struct SecretReader {
    lines: Option<Vec<Zeroizing<String>>>,
    next: usize,
    prompt: Prompt,
}

impl SecretReader {
    pub(crate) fn new(input: &PinInput) -> Result<Self, Fail> {
        if !input.pin_stdin {
            return Ok(Self::prompting());
        }
        let all = read_stdin_secrets()
            .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
        let lines = all
            .lines()
            .map(|l| Zeroizing::new(l.trim().to_owned()))
            .collect();
        Ok(SecretReader {
            lines: Some(lines),
            next: 0,
            prompt: Box::new(terminal_prompt),
        })
    }

    /// A reader that asks on the terminal (no echo) for every secret.
    pub(crate) fn prompting() -> Self {
        Self::prompting_with(terminal_prompt)
    }

    /// A reader that asks `prompt` for every secret, as [`SecretReader::prompting`] asks the
    /// terminal.
    pub(crate) fn prompting_with(
        prompt: impl FnMut(&str) -> Result<Zeroizing<String>, Fail> + 'static,
    ) -> Self {
        SecretReader {
            lines: None,
            next: 0,
            prompt: Box::new(prompt),
        }
    }

    /// The next secret: the next stdin line, or the answer to a `{prompt}: ` prompt.
    pub(crate) fn read(&mut self, prompt: &str) -> Result<Zeroizing<String>, Fail> {
        match &self.lines {
            Some(lines) => {
                let l = lines
                    .get(self.next)
                    .cloned()
                    .ok_or_else(|| format!("--pin-stdin: no line for the {prompt}"))?;
                self.next += 1;
                Ok(l)
            }
            None => (self.prompt)(prompt),
        }
    }

    pub(crate) fn pin(&mut self, prompt: &str) -> Result<Pin, Fail> {
        let s = self.read(prompt)?;
        Pin::new(&s).map_err(fail)
    }

    /// A new PIN: at a prompt asked twice, and two answers that differ are refused (nothing has
    /// been sent to the card then); from `--pin-stdin` one line, like every other secret.
    fn new_pin(&mut self, prompt: &str) -> Result<Pin, Fail> {
        let first = self.pin(prompt)?;
        if self.lines.is_some() {
            return Ok(first);
        }
        let again = self.read(&format!("{prompt} again"))?;
        let again = Pin::new(&again).map_err(|_| NEW_PINS_DIFFER.to_owned())?;
        if first.padded_block() != again.padded_block() {
            return Err(NEW_PINS_DIFFER.into());
        }
        Ok(first)
    }

    fn puk(&mut self, prompt: &str) -> Result<Puk, Fail> {
        let s = self.read(prompt)?;
        Puk::new(&s).map_err(fail)
    }
}

/// What a person who typed two different new PINs is told.
const NEW_PINS_DIFFER: &str =
    "the two new PINs differ: nothing was sent to the card, run the command again";

/// The no-echo terminal prompt `{prompt}: `.
fn terminal_prompt(prompt: &str) -> Result<Zeroizing<String>, Fail> {
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return Err(
            "no terminal to ask for the PIN on: pass --pin-stdin and write it to standard input"
                .into(),
        );
    }
    rpassword::prompt_password(format!("{prompt}: "))
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read the PIN from the terminal: {e}"))
}

/// Most bytes `--pin-stdin` reads.
const MAX_SECRET_INPUT: usize = 4096;

/// Reads `--pin-stdin` input without leaving copies of the secrets behind: into one buffer
/// allocated up front (no reallocation strands a copy) that is wiped on drop, and on Unix straight
/// from the file descriptor, since std's stdin buffer is never wiped.
pub(crate) fn read_stdin_secrets() -> std::io::Result<Zeroizing<String>> {
    let mut all = Zeroizing::new(String::with_capacity(MAX_SECRET_INPUT + 1));
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = std::io::stdin().as_fd().try_clone_to_owned()?;
        std::fs::File::from(fd)
            .take(MAX_SECRET_INPUT as u64)
            .read_to_string(&mut all)?;
    }
    #[cfg(not(unix))]
    std::io::stdin()
        .take(MAX_SECRET_INPUT as u64)
        .read_to_string(&mut all)?;
    Ok(all)
}

fn report_pin_error(e: tscns_card::Error, json_out: bool) -> Fail {
    if json_out {
        let (tries, blocked) = match &e {
            tscns_card::Error::WrongSecret { tries_left, .. } => (*tries_left, false),
            tscns_card::Error::Blocked { .. } => (Some(0), true),
            _ => (None, false),
        };
        say!(
            "{}",
            json!({ "ok": false, "error": e.to_string(), "tries_left": tries, "blocked": blocked })
        );
    }
    e.to_string()
}

fn pin(cmd: PinCommand) -> Result<(), Fail> {
    let args = match &cmd {
        PinCommand::Verify(a) | PinCommand::Change(a) | PinCommand::Unblock(a) => a,
    };
    let secrets = SecretReader::new(&args.input)?;
    pin_with(&cmd, secrets, open)
}

/// `tscns card pin ...` with the secrets from `secrets` and the card from `open`.
fn pin_with(
    cmd: &PinCommand,
    mut secrets: SecretReader,
    open: impl FnOnce(&Source) -> Result<Opened, Fail>,
) -> Result<(), Fail> {
    let (args, what) = match cmd {
        PinCommand::Verify(a) => (a, "verify"),
        PinCommand::Change(a) => (a, "change"),
        PinCommand::Unblock(a) => (a, "unblock"),
    };
    // Ask for everything before touching the card: a mistyped new PIN sends nothing.
    let (first_pin, puk, new_pin) = match what {
        "verify" => (Some(secrets.pin("PIN")?), None, None),
        "change" => {
            let old = secrets.pin("current PIN")?;
            let new = secrets.new_pin("new PIN")?;
            (Some(old), None, Some(new))
        }
        _ => {
            let puk = secrets.puk("PUK")?;
            let new = secrets.new_pin("new PIN")?;
            (None, Some(puk), Some(new))
        }
    };
    let mut opened = open(&args.source)?;
    let spinner = Spinner::start("talking to the card...");
    let r = match (first_pin, puk, new_pin) {
        (Some(p), None, None) => opened.card.verify_pin(&p),
        (Some(old), None, Some(new)) => opened.card.change_pin(&old, &new),
        (None, Some(puk), Some(new)) => opened.card.unblock_pin(&puk, &new),
        _ => return Err("internal error: unexpected PIN arguments".into()),
    };
    drop(spinner);
    r.map_err(|e| report_pin_error(e, args.json))?;
    let msg = match what {
        "verify" => "PIN correct",
        "change" => "PIN changed",
        _ => "PIN unblocked and set",
    };
    if args.json {
        say!("{}", json!({ "ok": true, "result": msg }));
    } else {
        say!("{msg}");
    }
    Ok(())
}

fn cert(args: CertArgs) -> Result<(), Fail> {
    let mut opened = open(&args.source)?;
    let spinner = Spinner::start("reading the certificate...");
    let text = opened
        .card
        .identity()
        .map_err(fail)?
        .certificate
        .to_pem()
        .map_err(fail)?;
    drop(spinner);
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => {
            std::io::stdout().write_all(text.as_bytes()).map_err(fail)?;
        }
    }
    Ok(())
}

fn sign(args: SignArgs) -> Result<(), Fail> {
    let data = std::fs::read(&args.input_file)
        .map_err(|e| format!("cannot read {}: {e}", args.input_file.display()))?;
    let digest = args.hash.digest(&data);
    let mut secrets = SecretReader::new(&args.input)?;
    let pin = secrets.pin("PIN")?;
    let mut opened = open(&args.source)?;
    let spinner = Spinner::start("signing on the card...");
    opened.card.identity().map_err(fail)?;
    opened.card.verify_pin(&pin).map_err(fail)?;
    let sig = if args.pss {
        opened.card.sign_pss(args.hash, &digest)
    } else {
        opened.card.sign_pkcs1(args.hash, &digest)
    }
    .map_err(fail)?;
    drop(spinner);
    std::fs::write(&args.out, &sig)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    eprintln!(
        "signed {} ({} {}, {} bytes, verified with the card's certificate) -> {}",
        args.input_file.display(),
        if args.pss {
            "RSASSA-PSS"
        } else {
            "PKCS#1 v1.5"
        },
        args.hash,
        sig.len(),
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use tscns_sim::{Profile, SimCard, SimHandle};

    /// A prompting reader that answers `answers` in turn and records what it was asked.
    fn prompts(answers: &[&str]) -> (SecretReader, Rc<RefCell<Vec<String>>>) {
        let asked = Rc::new(RefCell::new(Vec::new()));
        let mut answers: Vec<String> = answers.iter().rev().map(|a| a.to_string()).collect();
        let log = Rc::clone(&asked);
        let reader = SecretReader::prompting_with(move |p| {
            log.borrow_mut().push(p.to_owned());
            answers
                .pop()
                .map(Zeroizing::new)
                .ok_or_else(|| format!("no answer for the {p}"))
        });
        (reader, asked)
    }

    /// Set when the command opened the card.
    type WasOpened = Rc<RefCell<bool>>;

    /// `--pin-stdin` with these lines.
    fn stdin_lines(lines: &[&str]) -> SecretReader {
        SecretReader {
            lines: Some(
                lines
                    .iter()
                    .map(|l| Zeroizing::new(l.to_string()))
                    .collect(),
            ),
            next: 0,
            prompt: Box::new(|p| Err(format!("asked the terminal for the {p}"))),
        }
    }

    fn args() -> PinArgs {
        PinArgs {
            source: Source {
                reader: None,
                simulated: Some("athena-1024".into()),
            },
            input: PinInput { pin_stdin: false },
            json: false,
        }
    }

    /// The simulated card of the athena-1024 profile (PIN 24680, PUK 13579135), a handle on it,
    /// and an opener that hands it to the command.
    fn card() -> (
        SimHandle,
        impl FnOnce(&Source) -> Result<Opened, Fail>,
        WasOpened,
    ) {
        let sim = SimCard::new(&Profile::builtin("athena-1024").unwrap()).unwrap();
        let handle = sim.handle();
        let opened = Rc::new(RefCell::new(false));
        let flag = Rc::clone(&opened);
        let open = move |_: &Source| {
            *flag.borrow_mut() = true;
            let transport: Box<dyn Transport> = Box::new(sim);
            Ok(Opened {
                card: CnsCard::open(transport).map_err(fail)?,
                reader: "simulated".into(),
            })
        };
        (handle, open, opened)
    }

    #[test]
    fn change_asks_the_new_pin_twice_and_a_mismatch_sends_nothing() {
        for second in ["1122335", "12a", ""] {
            let (handle, open, opened) = card();
            let (secrets, asked) = prompts(&["24680", "1122334", second]);
            let e = pin_with(&PinCommand::Change(args()), secrets, open).unwrap_err();
            assert_eq!(e, NEW_PINS_DIFFER, "{second:?}");
            assert_eq!(
                *asked.borrow(),
                ["current PIN", "new PIN", "new PIN again"],
                "{second:?}"
            );
            assert!(!*opened.borrow(), "the card was opened: {second:?}");
            assert_eq!(handle.counters().apdus, 0, "{second:?}");
            assert_eq!(handle.pin_tries_left(), 3);
        }
    }

    #[test]
    fn unblock_asks_the_new_pin_twice_and_a_mismatch_sends_nothing() {
        let (handle, open, opened) = card();
        let (secrets, asked) = prompts(&["13579135", "55555", "55556"]);
        let e = pin_with(&PinCommand::Unblock(args()), secrets, open).unwrap_err();
        assert_eq!(e, NEW_PINS_DIFFER);
        assert_eq!(*asked.borrow(), ["PUK", "new PIN", "new PIN again"]);
        assert!(!*opened.borrow());
        assert_eq!(handle.counters().apdus, 0);
        assert_eq!(handle.puk_tries_left(), 10);
    }

    #[test]
    fn matching_new_pins_reach_the_card_once() {
        let (handle, open, _) = card();
        let (secrets, asked) = prompts(&["24680", "1122334", "1122334"]);
        pin_with(&PinCommand::Change(args()), secrets, open).unwrap();
        assert_eq!(asked.borrow().len(), 3);
        let changes: Vec<_> = handle
            .apdu_log()
            .into_iter()
            .filter(|r| r.ins == 0x24)
            .collect();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].sw, 0x9000);

        let (handle, open, _) = card();
        let (secrets, _) = prompts(&["13579135", "55555", "55555"]);
        pin_with(&PinCommand::Unblock(args()), secrets, open).unwrap();
        let unblocks: Vec<_> = handle
            .apdu_log()
            .into_iter()
            .filter(|r| r.ins == 0x2C)
            .collect();
        assert_eq!(unblocks.len(), 1);
        assert_eq!(unblocks[0].sw, 0x9000);
    }

    #[test]
    fn pin_stdin_keeps_one_line_per_secret() {
        // No confirmation line: the second line is the new PIN, a third line is never read.
        let (handle, open, _) = card();
        let secrets = stdin_lines(&["24680", "1122334", "not read"]);
        pin_with(&PinCommand::Change(args()), secrets, open).unwrap();
        assert!(handle
            .apdu_log()
            .iter()
            .any(|r| r.ins == 0x24 && r.sw == 0x9000));
        let (handle, open, _) = card();
        let secrets = stdin_lines(&["13579135", "55555"]);
        pin_with(&PinCommand::Unblock(args()), secrets, open).unwrap();
        assert!(handle
            .apdu_log()
            .iter()
            .any(|r| r.ins == 0x2C && r.sw == 0x9000));
    }

    #[test]
    fn verify_resets_the_simulated_card_when_done() {
        // In-process the simulated card closes like a PC/SC connection: the PIN verified by
        // `tscns card pin verify` does not outlive the command.
        let (handle, open, _) = card();
        let (secrets, _) = prompts(&["24680"]);
        pin_with(&PinCommand::Verify(args()), secrets, open).unwrap();
        assert!(handle
            .apdu_log()
            .iter()
            .any(|r| r.ins == 0x20 && r.sw == 0x9000));
        assert!(!handle.pin_verified(), "the card was left unlocked");
    }
}
