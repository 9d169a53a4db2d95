//! `tscns cohesion login URL`: log in to a site protected by Cohesion (Regione Marche's SSO) with
//! the smart card, as a browser would, and keep the site's session.
//!
//! From the protected URL the command follows the redirects to Cohesion, chooses the smart card,
//! completes the TLS client-authenticated step (one PIN entry, one card signature; the certificate
//! is shown only to the Cohesion hosts: the documented ones plus `--cohesion-host`), posts the
//! callback to the site and follows it back to the protected page, which it writes to `--out` (or
//! standard output); `--cookie-jar` saves the cookies (Netscape format, usable with `curl -b`).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tscns_cohesion::citizen::CitizenLogin;
use tscns_tls::SigningKey;
use zeroize::Zeroizing;

/// `tscns cohesion` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Log in with the smart card to a site protected by Cohesion, starting at a protected URL.
    Login(LoginArgs),
}

/// Arguments of `tscns cohesion login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// A protected page of the site (http or https).
    pub url: String,
    /// Use the in-process simulated card; PROFILE is a tscns-sim built-in profile or a profile file
    /// (default: `default`).
    #[arg(long, value_name = "PROFILE", num_args = 0..=1, default_missing_value = "default",
          conflicts_with_all = ["reader", "pkcs11"])]
    pub simulated: Option<String>,
    /// PC/SC reader with the card (default: the first reader with a card).
    #[arg(long, value_name = "READER", conflicts_with = "pkcs11")]
    pub reader: Option<String>,
    /// Sign through this PKCS#11 module (without a value: $TSCNS_PKCS11_MODULE, then the usual
    /// OpenSC and vendor install paths).
    #[arg(long, value_name = "MODULE", num_args = 0..=1, default_missing_value = "auto")]
    pub pkcs11: Option<String>,
    /// With --pkcs11: the certificate for this codice fiscale (default: the CNS one).
    #[arg(long, value_name = "CF")]
    pub cf: Option<String>,
    /// Trust the CA certificates in this PEM file (repeatable; default: the system's CAs), e.g. the
    /// one `cohesion-emulator --write-ca` wrote.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Also show the certificate to this Cohesion host (repeatable), e.g. `localhost` for the
    /// emulator. The documented Cohesion hosts are always allowed.
    #[arg(long, value_name = "HOST")]
    pub cohesion_host: Vec<String>,
    /// Read the PIN from the first line of standard input instead of prompting on the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
    /// Save the cookies (the site's session) to this file, Netscape format.
    #[arg(long, value_name = "FILE")]
    pub cookie_jar: Option<PathBuf>,
    /// Write the final page to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

type Fail = String;

/// Runs `tscns cohesion …`.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Login(args) => match login(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tscns cohesion login: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn read_pin(args: &LoginArgs) -> Result<Zeroizing<String>, Fail> {
    if args.pin_stdin {
        let mut s = Zeroizing::new(String::new());
        std::io::stdin()
            .take(1024)
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
        return Ok(Zeroizing::new(
            s.lines().next().unwrap_or_default().trim_end().to_string(),
        ));
    }
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return Err(
            "no terminal to ask for the PIN on: pass --pin-stdin and write it to standard input"
                .into(),
        );
    }
    rpassword::prompt_password("PIN: ")
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot read the PIN from the terminal: {e}"))
}

fn card_key<T: tscns_apdu::Transport + Send + 'static>(
    card: tscns_card::CnsCard<T>,
    args: &LoginArgs,
) -> Result<Arc<dyn SigningKey>, Fail> {
    let key = tscns_card::tls::CardKey::new(card).map_err(|e| e.to_string())?;
    let pin = read_pin(args)?;
    let pin = tscns_card::Pin::new(&pin).map_err(|e| e.to_string())?;
    key.card().verify_pin(&pin).map_err(|e| e.to_string())?;
    Ok(Arc::new(key))
}

fn key(args: &LoginArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    if let Some(profile) = &args.simulated {
        let profile = tscns_sim::Profile::builtin_or_file(profile).map_err(|e| e.to_string())?;
        let sim = tscns_sim::SimCard::new(&profile).map_err(|e| e.to_string())?;
        let card = tscns_card::CnsCard::open(sim).map_err(|e| e.to_string())?;
        return card_key(card, args);
    }
    if let Some(module) = &args.pkcs11 {
        use tscns_pkcs11::{KeySelector, Module, Pin, Pkcs11Key};
        let module = if module == "auto" {
            Module::discover()
        } else {
            Module::open(std::path::Path::new(module))
        }
        .map_err(|e| e.to_string())?;
        let selector = match &args.cf {
            Some(cf) => KeySelector::CodiceFiscale(cf.clone()),
            None => KeySelector::Cns,
        };
        let key = Pkcs11Key::open(&module, &selector).map_err(|e| e.to_string())?;
        let pin = read_pin(args)?;
        key.login(&Pin::new(&pin).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        return Ok(Arc::new(key));
    }
    reader_key(args)
}

#[cfg(feature = "pcsc")]
fn reader_key(args: &LoginArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    use tscns_apdu::pcsc::PcscTransport;
    let t = match &args.reader {
        Some(r) => PcscTransport::connect(r),
        None => PcscTransport::connect_first(),
    }
    .map_err(|e| e.to_string())?;
    let card = tscns_card::CnsCard::open(t).map_err(|e| e.to_string())?;
    card_key(card, args)
}

#[cfg(not(feature = "pcsc"))]
fn reader_key(_args: &LoginArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    Err("this tscns was built without PC/SC support: use --simulated or --pkcs11".into())
}

/// The cookies the jar would send to `url`, as Netscape cookies.txt lines.
fn netscape_lines(jar: &tscns_tls::reqwest::cookie::Jar, url: &tscns_tls::reqwest::Url) -> String {
    use tscns_tls::reqwest::cookie::CookieStore as _;
    let host = url.host_str().unwrap_or_default();
    let secure = if url.scheme() == "https" {
        "TRUE"
    } else {
        "FALSE"
    };
    let mut out = String::new();
    if let Some(v) = jar.cookies(url) {
        for kv in v.to_str().unwrap_or_default().split(';') {
            if let Some((k, v)) = kv.trim().split_once('=') {
                out.push_str(&format!("{host}\tFALSE\t/\t{secure}\t0\t{k}\t{v}\n"));
            }
        }
    }
    out
}

fn login(args: &LoginArgs) -> Result<(), Fail> {
    let start = tscns_tls::reqwest::Url::parse(&args.url)
        .map_err(|e| format!("{:?} is not a URL: {e}", args.url))?;
    let key = key(args)?;
    let mut builder = CitizenLogin::builder(key);
    for h in &args.cohesion_host {
        builder = builder.cohesion_host(h);
    }
    for ca in &args.ca {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        builder = builder.trust_ca_pem(&pem);
    }
    let login = builder.build().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let out = rt
        .block_on(login.login(start.as_str()))
        .map_err(|e| e.to_string())?;
    match &args.out {
        Some(path) => std::fs::write(path, &out.body)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => std::io::stdout()
            .write_all(out.body.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}"))?,
    }
    if let Some(path) = &args.cookie_jar {
        let mut text = String::from("# Netscape HTTP Cookie File\n");
        text.push_str(&netscape_lines(&out.cookies, &out.url));
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "logged in: {} {} ({} card signature{})",
        out.status,
        out.url,
        out.signatures,
        if out.signatures == 1 { "" } else { "s" }
    );
    Ok(())
}
