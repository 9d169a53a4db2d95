//! `tscns portal`: the municipal portal's services from a terminal, with the card.
//!
//! Each subcommand logs in at the portal's base URL through Cohesion with the smart card (one
//! PIN, one card signature; the same key-source options as `tscns cohesion login`), then uses
//! the portal's JSON API (`tscns_cityportal::client`). `verify` needs no login.
//!
//! Exit codes (a contract): 0 done; 1 refused by the portal (the reason on stderr), or a
//! certificate that is not valid; 2 usage; 3 login, TLS or network failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};
use tscns_cityportal::client::{
    self, CertificateRequest, CityPortal, ClientError, LoginOptions, StampChoice,
};

use crate::key_source::{signing_key, KeySourceArgs};

/// `tscns portal` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Interrogazione Anagrafe: the card holder's registry record.
    Record(Simple),
    /// The card holder's famiglia anagrafica.
    Family(Simple),
    /// Which certificates are available for a subject, or why not, and their stamp duty.
    Options(OptionsArgs),
    /// Certificazione: ask for a sealed certificate and write its PDF.
    Certificate(CertificateArgs),
    /// Autocertificazione: a self-declaration of the chosen facts, as PDF.
    Declaration(DeclarationArgs),
    /// The certificates issued to or about the card holder.
    List(Simple),
    /// Is a certificate valid? Ask its verification URL (the QR code), or check a PDF's seal.
    Verify(VerifyArgs),
}

/// Options every subcommand takes: the key source, trust and output.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Which card or token signs, and how the PIN is entered.
    #[command(flatten)]
    pub key: KeySourceArgs,
    /// Trust the CA certificates in this PEM file for HTTPS (repeatable; default: the system's),
    /// e.g. the one `cohesion-emulator --write-ca` wrote.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Also show the certificate to this Cohesion host (repeatable), e.g. `localhost` for the
    /// emulator. The documented Cohesion hosts are always allowed.
    #[arg(long, value_name = "HOST")]
    pub cohesion_host: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `record`, `family`, `list`.
#[derive(Debug, clap::Args)]
pub struct Simple {
    /// The portal's base URL.
    pub url: String,
    #[command(flatten)]
    common: Common,
}

/// `options`.
#[derive(Debug, clap::Args)]
pub struct OptionsArgs {
    /// The portal's base URL.
    pub url: String,
    /// Whose certificates (codice fiscale; default: the card holder).
    #[arg(long, value_name = "CF")]
    pub subject: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// `certificate`.
#[derive(Debug, clap::Args)]
pub struct CertificateArgs {
    /// The portal's base URL.
    pub url: String,
    /// The kind: ANPR code (e.g. 8) or slug (e.g. `residenza`, `stato-di-famiglia`).
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// Whom it is about (codice fiscale; default: the card holder).
    #[arg(long, value_name = "CF")]
    pub subject: Option<String>,
    /// Destination (ANPR paEstera: 0 ordinary, 1-3 with exemptions, 4 abroad; default 0).
    #[arg(long, value_name = "N")]
    pub destination: Option<u16>,
    /// Pay the stamp duty with this marca da bollo (14 digits).
    #[arg(long, value_name = "ID", conflicts_with = "exemption")]
    pub marca: Option<String>,
    /// Exemption from the stamp duty (ANPR Tabella 39 code).
    #[arg(long, value_name = "CODE")]
    pub exemption: Option<u16>,
    /// With --exemption 99: the exemption's description.
    #[arg(long, value_name = "TEXT", requires = "exemption")]
    pub reason: Option<String>,
    /// Write the sealed PDF here.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Verify the PDF's seal against this CA (PEM) before writing it.
    #[arg(long, value_name = "FILE")]
    pub seal_ca: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// `declaration`.
#[derive(Debug, clap::Args)]
pub struct DeclarationArgs {
    /// The portal's base URL.
    pub url: String,
    /// A fact to declare (repeatable): nascita, residenza, cittadinanza, stato-civile,
    /// stato-di-famiglia, esistenza-in-vita, codice-fiscale.
    #[arg(long, value_name = "FACT", required = true, num_args = 1..)]
    pub fact: Vec<String>,
    /// Write the PDF here.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The certificate's verification URL (`<portal>/verifica/<id>?codice=<code>`, the QR code).
    #[arg(
        value_name = "VERIFICATION_URL",
        required_unless_present = "pdf",
        conflicts_with = "pdf"
    )]
    pub url: Option<String>,
    /// Check this sealed PDF offline instead (needs --seal-ca).
    #[arg(long, value_name = "FILE", requires = "seal_ca")]
    pub pdf: Option<PathBuf>,
    /// The seal's CA (PEM). With --pdf: check that file. With VERIFICATION_URL: also fetch the
    /// sealed original the page serves and check its SHA-256, its seal and its id (without it,
    /// the answer is only as trustworthy as the server at that URL).
    #[arg(long, value_name = "FILE")]
    pub seal_ca: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// A failure with its exit code.
struct Fail {
    code: u8,
    message: String,
}

const REFUSED: u8 = 1;
const USAGE: u8 = 2;
const LOGIN: u8 = 3;

fn fail(code: u8, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
    }
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Fail {
        let code = match &e {
            ClientError::Refused { .. } | ClientError::Seal(_) => REFUSED,
            ClientError::Config(_) => USAGE,
            _ => LOGIN,
        };
        let message = match &e {
            ClientError::Login(l) if l.to_string().contains("is not trusted") => {
                format!("{e} (pass the CA that issued its certificate with --ca FILE)")
            }
            ClientError::Login(tscns_cohesion::Error::HostNotAllowed { .. }) => format!(
                "{e} (if it is a Cohesion server you trust, add it with --cohesion-host HOST)"
            ),
            _ => e.to_string(),
        };
        Fail { code, message }
    }
}

/// Runs `tscns portal …`.
pub fn run(cmd: Command) -> ExitCode {
    let name = match &cmd {
        Command::Record(_) => "record",
        Command::Family(_) => "family",
        Command::Options(_) => "options",
        Command::Certificate(_) => "certificate",
        Command::Declaration(_) => "declaration",
        Command::List(_) => "list",
        Command::Verify(_) => "verify",
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tscns portal {name}: cannot start the async runtime: {e}");
            return ExitCode::from(LOGIN);
        }
    };
    match rt.block_on(dispatch(cmd)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("tscns portal {name}: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn dispatch(cmd: Command) -> Result<u8, Fail> {
    match cmd {
        Command::Record(a) => record(&a).await,
        Command::Family(a) => family(&a).await,
        Command::Options(a) => options(&a).await,
        Command::Certificate(a) => certificate(&a).await,
        Command::Declaration(a) => declaration(&a).await,
        Command::List(a) => list(&a).await,
        Command::Verify(a) => verify(&a).await,
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Fail> {
    std::fs::read(path)
        .map_err(|e| fail(USAGE, format!("cannot read {what} {}: {e}", path.display())))
}

fn read_cas(common: &Common) -> Result<Vec<Vec<u8>>, Fail> {
    common.ca.iter().map(|p| read(p, "the CA file")).collect()
}

async fn login(url: &str, common: &Common, seal_ca: Option<&Path>) -> Result<CityPortal, Fail> {
    let mut options = LoginOptions {
        cohesion_hosts: common.cohesion_host.clone(),
        ca_pem: read_cas(common)?,
        ..LoginOptions::default()
    };
    if let Some(p) = seal_ca {
        options.seal_ca_pem = Some(read(p, "the seal CA")?);
    }
    // Refuse a bad URL before the PIN is asked.
    let parsed = tscns_cohesion::Url::parse(url)
        .map_err(|e| fail(USAGE, format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(fail(USAGE, format!("{url:?} is not an http(s) URL")));
    }
    let key = signing_key(&common.key).map_err(|e| fail(LOGIN, e))?;
    Ok(CityPortal::login(url, key, options).await?)
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(v).map_err(|e| fail(LOGIN, e.to_string()))?;
    say!("{text}");
    Ok(())
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("-")
}

async fn record(a: &Simple) -> Result<u8, Fail> {
    let portal = login(&a.url, &a.common, None).await?;
    let r = portal.record().await?;
    portal.logout().await?;
    if a.common.json {
        print_json(&r)?;
        return Ok(0);
    }
    say!(
        "Interrogazione Anagrafe — {}",
        s(&r, &["municipality", "name"])
    );
    say!("  {} {}", s(&r, &["given_name"]), s(&r, &["surname"]));
    say!("  codice fiscale:  {}", s(&r, &["codice_fiscale"]));
    say!(
        "  nato/a il:       {} a {}",
        s(&r, &["birth_date"]),
        s(&r, &["birth_place", "municipality"])
    );
    say!(
        "  cittadinanza:    {}",
        s(&r, &["citizenship", "description"])
    );
    say!(
        "  stato civile:    {}",
        s(&r, &["civil_status", "description"])
    );
    say!(
        "  residenza:       {} {}, {}",
        s(&r, &["family", "address", "street"]),
        s(&r, &["family", "address", "number"]),
        s(&r, &["family", "address", "postal_code"])
    );
    if let Some(members) = r["members"].as_array() {
        say!("  famiglia:");
        for m in members {
            say!(
                "    {} {} {} ({})",
                s(m, &["codice_fiscale"]),
                s(m, &["given_name"]),
                s(m, &["surname"]),
                s(m, &["relationship", "description"])
            );
        }
    }
    Ok(0)
}

async fn family(a: &Simple) -> Result<u8, Fail> {
    let portal = login(&a.url, &a.common, None).await?;
    let f = portal.family().await?;
    portal.logout().await?;
    if a.common.json {
        print_json(&f)?;
    } else {
        for m in &f {
            say!(
                "{} {} {} ({})",
                m.codice_fiscale,
                m.given_name,
                m.surname,
                m.relationship
                    .as_ref()
                    .map_or("-", |r| r.description.as_str())
            );
        }
    }
    Ok(0)
}

fn euro(cents: u32) -> String {
    format!("EUR {}.{:02}", cents / 100, cents % 100)
}

async fn options(a: &OptionsArgs) -> Result<u8, Fail> {
    let portal = login(&a.url, &a.common, None).await?;
    let o = portal.certificate_options(a.subject.as_deref()).await?;
    portal.logout().await?;
    if a.common.json {
        print_json(&o)?;
        return Ok(0);
    }
    for k in &o {
        let stamp = if k.stamp == "required" {
            format!("bollo {}", euro(k.stamp_amount_cents))
        } else {
            "esente da bollo".into()
        };
        if k.available {
            say!(
                "{:>2} {:<34} disponibile, {stamp}",
                k.kind.code,
                k.kind.slug
            );
        } else {
            say!(
                "{:>2} {:<34} non disponibile: {}",
                k.kind.code,
                k.kind.slug,
                k.reason.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(0)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a failure never
/// leaves half a PDF.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(|e| fail(REFUSED, format!("cannot write {}: {e}", path.display())))
}

async fn certificate(a: &CertificateArgs) -> Result<u8, Fail> {
    let mut req = CertificateRequest::new(&a.kind);
    req.subject.clone_from(&a.subject);
    req.destination = a.destination;
    req.stamp = match (&a.marca, a.exemption) {
        (Some(m), _) => Some(StampChoice::Marca(m.clone())),
        (None, Some(code)) => Some(StampChoice::Exemption {
            code,
            description: a.reason.clone(),
        }),
        (None, None) => None,
    };
    let portal = login(&a.url, &a.common, a.seal_ca.as_deref()).await?;
    let issued = portal.request_certificate(&req).await;
    let _ = portal.logout().await;
    let issued = issued?;
    write_file(&a.out, &issued.pdf)?;
    let seal = match &issued.seal {
        Some(s) => json!({"valid": true, "signer": s.signer}),
        None => json!({"valid": null, "signer": null}),
    };
    if a.common.json {
        print_json(&json!({
            "id": issued.id,
            "verification_code": issued.code,
            "verification_url": issued.url,
            "sha256": issued.sha256,
            "out": a.out.display().to_string(),
            "seal": seal,
        }))?;
    } else {
        say!("certificate:  {} written to {}", issued.id, a.out.display());
        say!("verification: {}", issued.url);
        say!("sha256:       {}", issued.sha256);
        match &issued.seal {
            Some(s) => say!("seal:         valid, by {}", s.signer),
            None => say!("seal:         not checked (give --seal-ca FILE to check it)"),
        }
    }
    Ok(0)
}

async fn declaration(a: &DeclarationArgs) -> Result<u8, Fail> {
    let portal = login(&a.url, &a.common, None).await?;
    let facts: Vec<&str> = a.fact.iter().map(String::as_str).collect();
    let pdf = portal.declaration(&facts).await;
    let _ = portal.logout().await;
    let pdf = pdf?;
    write_file(&a.out, &pdf)?;
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&pdf))
    };
    if a.common.json {
        print_json(&json!({
            "out": a.out.display().to_string(),
            "facts": a.fact,
            "bytes": pdf.len(),
            "sha256": sha,
        }))?;
    } else {
        say!(
            "self-declaration ({}) written to {}",
            a.fact.join(", "),
            a.out.display()
        );
    }
    Ok(0)
}

async fn list(a: &Simple) -> Result<u8, Fail> {
    let portal = login(&a.url, &a.common, None).await?;
    let l = portal.certificates().await?;
    portal.logout().await?;
    if a.common.json {
        print_json(&l)?;
    } else if l.is_empty() {
        say!("no certificates");
    } else {
        for c in &l {
            say!(
                "{}  {}  {}  about {}  asked by {}",
                c.id,
                c.issued_at,
                c.kind.slug,
                c.subject,
                c.requester
            );
        }
    }
    Ok(0)
}

async fn verify(a: &VerifyArgs) -> Result<u8, Fail> {
    if let (Some(pdf), Some(ca)) = (&a.pdf, &a.seal_ca) {
        return verify_pdf(pdf, ca, a.common.json);
    }
    let url = a.url.as_deref().ok_or_else(|| {
        fail(
            USAGE,
            "give a VERIFICATION_URL, or --pdf FILE --seal-ca FILE",
        )
    })?;
    let v = match &a.seal_ca {
        Some(ca) => {
            let ca = read(ca, "the seal CA")?;
            client::verify_with_seal(url, &read_cas(&a.common)?, &ca).await?
        }
        None => client::verify(url, &read_cas(&a.common)?).await?,
    };
    if a.common.json {
        print_json(&v)?;
    } else if v.valid {
        say!(
            "valid: {} issued {}, sha256 {}",
            v.kind.as_ref().map_or("-", |k| k.description.as_str()),
            v.issued_at.as_deref().unwrap_or("-"),
            v.sha256.as_deref().unwrap_or("-")
        );
    } else {
        say!(
            "NOT valid: {}",
            if a.seal_ca.is_some() {
                "the portal knows no certificate with this id and code, or its sealed original does not match (hash, seal or id)"
            } else {
                "the portal knows no certificate with this id and code"
            }
        );
    }
    Ok(if v.valid { 0 } else { REFUSED })
}

fn verify_pdf(pdf_path: &Path, ca: &Path, as_json: bool) -> Result<u8, Fail> {
    let pdf = read(pdf_path, "the PDF")?;
    let ca = read(ca, "the seal CA")?;
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&pdf))
    };
    match client::verify_pdf(&pdf, &ca) {
        Ok(sealed) => {
            let description = client::sealed_kind_description(&pdf);
            let kind = description.as_deref().and_then(|d| {
                tscns_cityportal::domain::CertificateKind::ALL
                    .iter()
                    .find(|k| k.description() == d)
                    .map(|k| json!({"code": k.code(), "slug": k.slug(), "description": k.description()}))
            });
            let kind = kind.or_else(|| description.map(|d| json!({"description": d})));
            let issued_at = sealed
                .signed_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            if as_json {
                print_json(&json!({
                    "valid": true,
                    "kind": kind,
                    "issued_at": issued_at,
                    "sha256": sha,
                    "signer": sealed.signer,
                    "id": sealed.certificate_id,
                }))?;
            } else {
                say!(
                    "valid: certificate {} sealed {} by {}",
                    sealed.certificate_id,
                    issued_at,
                    sealed.signer
                );
            }
            Ok(0)
        }
        Err(ClientError::Config(m)) => Err(fail(USAGE, m)),
        Err(e) => {
            if as_json {
                print_json(&json!({
                    "valid": false,
                    "kind": null,
                    "issued_at": null,
                    "sha256": sha,
                    "signer": null,
                    "error": e.to_string(),
                }))?;
            } else {
                say!("NOT valid: {e}");
            }
            Ok(REFUSED)
        }
    }
}
