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

/// Writes a file readable by its owner only (mode 0600 on Unix), atomically: the text goes to a
/// new temporary file in the same directory (created with `O_EXCL`, so never through a symbolic
/// link or into a file someone else prepared, and with mode 0600 from the start), which is then
/// renamed over `path`. A symbolic link at `path` is replaced, not followed; a reader never sees a
/// half-written file; an existing file's looser permissions never apply to the new content.
fn write_private(path: &std::path::Path, text: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tscns-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(text)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
        // The page of a logged-in session is personal: private like the cookie jar.
        Some(path) => write_private(path, out.body.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => std::io::stdout()
            .write_all(out.body.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}"))?,
    }
    if let Some(path) = &args.cookie_jar {
        write_private(path, out.netscape_cookie_file().as_bytes())
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

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_are_new_0600_files_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        // A fresh file: 0600.
        let jar = dir.path().join("jar.txt");
        write_private(&jar, b"one").unwrap();
        assert_eq!(std::fs::read(&jar).unwrap(), b"one");
        assert_eq!(mode(&jar), 0o600);
        // A world-readable file there before: replaced by a 0600 one (a reader holding the old
        // file open never sees the new content).
        std::fs::set_permissions(&jar, std::fs::Permissions::from_mode(0o644)).unwrap();
        let held = std::fs::File::open(&jar).unwrap();
        write_private(&jar, b"two").unwrap();
        assert_eq!(std::fs::read(&jar).unwrap(), b"two");
        assert_eq!(mode(&jar), 0o600);
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
        assert_eq!(old, "one");
        // A symbolic link planted at the path (before: followed, writing into its target): the
        // link is replaced, its target untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let out = dir.path().join("out.html");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_private(&out, b"page").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&out)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&out).unwrap(), b"page");
        assert_eq!(mode(&out), 0o600);
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tscns-")), "{names:?}");
    }
}
