//! `tscns fetch URL`: an HTTPS GET authenticated with the card (TLS client certificate).
//!
//! The key comes from the card in a reader (`--reader`, the default), from the in-process simulated
//! card (`--simulated [PROFILE]`) or from a PKCS#11 module (`--pkcs11 [MODULE]`). The certificate is
//! shown only to the URL's host and to hosts given with `--allow-host`.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tscns_tls::{AuthClientBuilder, SigningKey, TlsVersions};
use zeroize::Zeroizing;

/// Arguments of `tscns fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The https URL to GET.
    pub url: String,
    /// Use the in-process simulated card; PROFILE is a tscns-sim built-in profile or a profile
    /// file (default: `default`).
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
    /// Trust the CA certificates in this PEM file (repeatable; default: the system's CAs).
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Also show the certificate to this host (repeatable; the URL's host is always allowed).
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// TLS version: 1.2 or 1.3 (default: 1.3 when the key can sign RSA-PSS, else 1.2).
    #[arg(long, value_name = "VERSION", value_parser = ["1.2", "1.3"])]
    pub tls: Option<String>,
    /// Write the response body to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Read the PIN from the first line of standard input instead of prompting on the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

type Fail = String;

/// Runs `tscns fetch`.
pub fn run(args: Args) -> ExitCode {
    match fetch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tscns fetch: {e}");
            ExitCode::from(1)
        }
    }
}

fn read_pin(args: &Args) -> Result<Zeroizing<String>, Fail> {
    if args.pin_stdin {
        let mut s = Zeroizing::new(String::new());
        std::io::stdin()
            .take(1024)
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
        let line = s.lines().next().unwrap_or_default().trim_end().to_string();
        return Ok(Zeroizing::new(line));
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
    args: &Args,
) -> Result<Arc<dyn SigningKey>, Fail> {
    let key = tscns_card::tls::CardKey::new(card).map_err(|e| e.to_string())?;
    let pin = read_pin(args)?;
    let pin = tscns_card::Pin::new(&pin).map_err(|e| e.to_string())?;
    key.card().verify_pin(&pin).map_err(|e| e.to_string())?;
    Ok(Arc::new(key))
}

fn pkcs11_key(module: &str, args: &Args) -> Result<Arc<dyn SigningKey>, Fail> {
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
    Ok(Arc::new(key))
}

#[cfg(feature = "pcsc")]
fn reader_key(args: &Args) -> Result<Arc<dyn SigningKey>, Fail> {
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
fn reader_key(_args: &Args) -> Result<Arc<dyn SigningKey>, Fail> {
    Err("this tscns was built without PC/SC support: use --simulated or --pkcs11".into())
}

fn simulated_key(profile: &str, args: &Args) -> Result<Arc<dyn SigningKey>, Fail> {
    let profile = tscns_sim::Profile::builtin_or_file(profile).map_err(|e| e.to_string())?;
    let sim = tscns_sim::SimCard::new(&profile).map_err(|e| e.to_string())?;
    let card = tscns_card::CnsCard::open(sim).map_err(|e| e.to_string())?;
    card_key(card, args)
}

fn fetch(args: &Args) -> Result<(), Fail> {
    let url = tscns_tls::reqwest::Url::parse(&args.url)
        .map_err(|e| format!("{:?} is not a URL: {e}", args.url))?;
    if url.scheme() != "https" {
        return Err(format!(
            "{:?} is not an https URL: the card only signs TLS connections",
            args.url
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("{:?} has no host", args.url))?
        .to_string();
    let key = if let Some(profile) = &args.simulated {
        simulated_key(profile, args)?
    } else if let Some(module) = &args.pkcs11 {
        pkcs11_key(module, args)?
    } else {
        reader_key(args)?
    };
    let versions = match args.tls.as_deref() {
        Some("1.2") => TlsVersions::Tls12,
        Some("1.3") => TlsVersions::Tls13,
        _ => TlsVersions::Auto,
    };
    let mut builder = AuthClientBuilder::new(key)
        .tls_versions(versions)
        .allow_host(&host)
        .map_err(|e| e.to_string())?;
    for h in &args.allow_host {
        builder = builder.allow_host(h).map_err(|e| e.to_string())?;
    }
    for ca in &args.ca {
        builder = builder.add_ca_file(ca).map_err(|e| e.to_string())?;
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let (status, body) = rt.block_on(async {
        let resp = client.get(url.as_str()).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the response from {host} failed: {e}"))?;
        Ok::<_, Fail>((status, body))
    })?;
    match &args.out {
        Some(path) => std::fs::write(path, &body)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => std::io::stdout()
            .write_all(&body)
            .map_err(|e| format!("cannot write to standard output: {e}"))?,
    }
    eprintln!(
        "{} {} ({} card signature{})",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        client.signatures(),
        if client.signatures() == 1 { "" } else { "s" }
    );
    if !status.is_success() {
        return Err(format!("the server answered {status}"));
    }
    Ok(())
}
