//! `tscns cohesion login URL`: log in to a site protected by Cohesion (Regione Marche's SSO) with
//! the smart card, as a browser would, and keep the site's session.
//!
//! From the protected URL the command follows the redirects to Cohesion, chooses the smart card,
//! completes the TLS client-authenticated step (one PIN entry, one card signature; the certificate
//! is shown only to the Cohesion hosts: the documented ones plus `--cohesion-host`), posts the
//! callback to the site and follows it back to the protected page, which it writes to `--out` (or
//! standard output); `--cookie-jar` saves the cookies (Netscape format, usable with `curl -b`;
//! readable by the owner only, with each cookie's domain, path, `Secure` and `HttpOnly`). The site
//! (`id_sito`) being logged in to is printed on standard error as soon as it is known.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tscns_cohesion::citizen::CitizenLogin;

use crate::key_source::{signing_key, KeySourceArgs};

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
    /// Which card or token signs, and how the PIN is entered.
    #[command(flatten)]
    pub key: KeySourceArgs,
    /// Trust the CA certificates in this PEM file (repeatable; default: the system's CAs), e.g. the
    /// one `cohesion-emulator --write-ca` wrote.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Also show the certificate to this Cohesion host (repeatable), e.g. `localhost` for the
    /// emulator. The documented Cohesion hosts are always allowed.
    #[arg(long, value_name = "HOST")]
    pub cohesion_host: Vec<String>,
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
                eprintln!("tscns cohesion login: {}", crate::hint::with_flag_hint(e));
                ExitCode::from(1)
            }
        },
    }
}

/// Writes the cookie file readable by its owner only (mode 0600 on Unix), replacing any file
/// there (whose old permissions are tightened first).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        opts.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn login(args: &LoginArgs) -> Result<(), Fail> {
    let start = tscns_tls::reqwest::Url::parse(&args.url)
        .map_err(|e| format!("{:?} is not a URL: {e}", args.url))?;
    let key = signing_key(&args.key)?;
    let mut builder = CitizenLogin::builder(key)
        .on_site_id(|id| {
            eprintln!("logging in to the site with Cohesion id_sito {id:?}");
        })
        .on_site_id_mismatch(|shown, callback| {
            eprintln!(
                "tscns cohesion login: warning: Cohesion's callback is for the site {callback:?}, \
                 not {shown:?} as shown above"
            );
        });
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
    let result = rt.block_on(login.login(start.as_str()));
    // Also when the login then failed: the certificate may already have crossed the network.
    if login
        .client()
        .certificate_sent_over()
        .contains(&tscns_tls::TlsVersion::Tls12)
    {
        eprintln!(
            "tscns cohesion login: warning: the certificate was sent over TLS 1.2, in clear: your \
             name and codice fiscale were visible to anyone on the network path (the server or the key \
             cannot do TLS 1.3)"
        );
    }
    let out = result.map_err(|e| e.to_string())?;
    match &args.out {
        Some(path) => std::fs::write(path, &out.body)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => std::io::stdout()
            .write_all(out.body.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}"))?,
    }
    if let Some(path) = &args.cookie_jar {
        write_private(path, &out.netscape_cookie_file())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "logged in{}: {} {} ({} card signature{})",
        out.site_id
            .as_deref()
            .map(|id| format!(" to {id:?}"))
            .unwrap_or_default(),
        out.status,
        out.url,
        out.signatures,
        if out.signatures == 1 { "" } else { "s" }
    );
    Ok(())
}
