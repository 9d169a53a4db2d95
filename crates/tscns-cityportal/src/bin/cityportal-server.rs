//! `cityportal-server`: the reference portal of the municipal registry services. See
//! `cityportal-server --help`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tscns_cityportal::documents::{Pkcs8Key, SealKey};
use tscns_cityportal::registry::Registry;
use tscns_cityportal::server::{self, Portal, PortalConfig};
use tscns_cityportal::store::Store;
use tscns_cohesion::{ServiceProvider, Url};
use zeroize::Zeroizing;

/// The environment variable holding the seal token's PIN (`--seal-pkcs11`).
const SEAL_PIN_VAR: &str = "CITYPORTAL_SEAL_PIN";

/// Reads the seal token's PIN from [`SEAL_PIN_VAR`] into memory wiped on drop and removes the
/// variable from the environment, so nothing that reads the environment later (a panic report,
/// a child process, a debugger's `environ` dump of the live process) finds it. It runs first in
/// `main`, before any other thread exists: changing the environment is sound only then. (The
/// copy the kernel placed at exec, `/proc/PID/environ`, cannot be wiped from inside; keep the
/// variable's scope to this process.)
fn take_seal_pin() -> Option<Zeroizing<String>> {
    let value = std::env::var_os(SEAL_PIN_VAR)?;
    std::env::remove_var(SEAL_PIN_VAR);
    // A valid UTF-8 OsString becomes a String without a copy.
    Some(Zeroizing::new(value.into_string().unwrap_or_default()))
}

/// The reference portal of a municipality's registry services (Interrogazione Anagrafe,
/// Certificazione, Autocertificazione), a Cohesion service provider.
#[derive(Debug, Parser)]
#[command(name = "cityportal-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the portal.
    Serve(Box<ServeArgs>),
    /// Loads a registry fixture into the store, replacing the municipality's data.
    Import {
        /// Registry file (JSON, see registry.schema.json).
        #[arg(long)]
        registry: PathBuf,
        /// Store URL: sqlite://PATH or postgres://USER@HOST:PORT/DB.
        #[arg(long)]
        database: String,
    },
    /// Prints the audit log.
    Audit {
        /// Store URL.
        #[arg(long)]
        database: String,
        /// Only the lines by or about this codice fiscale.
        #[arg(long)]
        subject: Option<String>,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
        /// At most this many lines (newest).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Writes a test seal CA, certificate and key (seal-ca.pem, seal-cert.pem, seal-key.pem).
    SealKeygen {
        /// Directory to write to (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
        /// Municipality named in the seal certificate.
        #[arg(long, default_value = "San Benedetto del Tronto")]
        municipality: String,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Registry file (JSON): imported at start.
    #[arg(long)]
    registry: PathBuf,
    /// Store URL (sqlite://PATH or postgres://...); several instances share one PostgreSQL.
    #[arg(long, conflicts_with = "data_dir")]
    database: Option<String>,
    /// Without --database: the SQLite store goes here.
    #[arg(long, default_value = "./cityportal-data")]
    data_dir: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port).
    #[arg(long)]
    listen: SocketAddr,
    /// The portal's public base URL, as browsers see it (QR codes point there).
    #[arg(long)]
    public_url: Url,
    /// Cohesion base URL, e.g. `https://cohesion2.regione.marche.it/` or the emulator's.
    #[arg(long)]
    cohesion: Url,
    /// CA of Cohesion's HTTPS certificate (PEM).
    #[arg(long)]
    cohesion_ca: PathBuf,
    /// Certificate that signs Cohesion's SAML-mode profiles (PEM).
    #[arg(long)]
    cohesion_signing_cert: PathBuf,
    /// The portal's id_sito at Cohesion.
    #[arg(long)]
    site_id: String,
    /// The seal's PKCS#8 private key (PEM or DER).
    #[arg(
        long,
        required_unless_present = "seal_pkcs11",
        conflicts_with = "seal_pkcs11"
    )]
    seal_key: Option<PathBuf>,
    /// A PKCS#11 module holding the seal key (PIN in CITYPORTAL_SEAL_PIN, read at start and
    /// removed from the environment).
    #[arg(long)]
    seal_pkcs11: Option<PathBuf>,
    /// Label of the seal key in the PKCS#11 token.
    #[arg(long, default_value = "SEAL")]
    seal_key_label: String,
    /// The seal's certificate chain (PEM, the seal's own first).
    #[arg(long)]
    seal_cert: PathBuf,
    /// Minimum login level: 0 password, 1 password+PIN/OTP, 2 smart card.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    min_level: u8,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// A PKCS#11 seal key whose chain comes from --seal-cert.
#[derive(Debug)]
struct TokenSeal {
    key: tscns_pkcs11::Pkcs11Key,
    chain: Vec<Vec<u8>>,
}

impl tscns_cert::sign::SigningKey for TokenSeal {
    fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.chain.clone()
    }
    fn key_bits(&self) -> usize {
        tscns_cert::sign::SigningKey::key_bits(&self.key)
    }
    fn schemes(&self) -> Vec<tscns_cert::sign::SignatureScheme> {
        tscns_cert::sign::SigningKey::schemes(&self.key)
    }
    fn sign(
        &self,
        scheme: tscns_cert::sign::SignatureScheme,
        message: &[u8],
    ) -> Result<Vec<u8>, tscns_cert::sign::SignError> {
        tscns_cert::sign::SigningKey::sign(&self.key, scheme, message)
    }
}

fn pem_chain(bytes: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    let v = rustls_pki_types::CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if v.is_empty() {
        return Err(format!("{} holds no PEM CERTIFICATE", path.display()));
    }
    Ok(v)
}

fn seal_key(a: &ServeArgs, pin: Option<&Zeroizing<String>>) -> Result<Arc<dyn SealKey>, String> {
    if let Some(k) = &a.seal_key {
        let key = Pkcs8Key::new(&read(k)?, &read(&a.seal_cert)?)
            .map_err(|e| format!("{} / {}: {e}", k.display(), a.seal_cert.display()))?;
        return Ok(Arc::new(key));
    }
    let Some(module) = &a.seal_pkcs11 else {
        return Err("give --seal-key FILE or --seal-pkcs11 MODULE".into());
    };
    let pin = pin.filter(|p| !p.is_empty()).ok_or_else(|| {
        format!("the seal token's PIN goes in the environment variable {SEAL_PIN_VAR}")
    })?;
    let module = tscns_pkcs11::Module::open(module).map_err(|e| e.to_string())?;
    let key = tscns_pkcs11::Pkcs11Key::open(
        &module,
        &tscns_pkcs11::KeySelector::Label(a.seal_key_label.clone()),
    )
    .map_err(|e| e.to_string())?;
    let pin = tscns_pkcs11::Pin::new(pin).map_err(|e| e.to_string())?;
    key.login(&pin).map_err(|e| e.to_string())?;
    let chain = pem_chain(&read(&a.seal_cert)?, &a.seal_cert)?;
    Ok(Arc::new(TokenSeal { key, chain }))
}

async fn serve(a: ServeArgs, seal_pin: Option<Zeroizing<String>>) -> Result<(), String> {
    let registry = Registry::from_json(&read(&a.registry)?)
        .map_err(|e| format!("{}: {e}", a.registry.display()))?;
    let url = match &a.database {
        Some(u) => u.clone(),
        None => {
            std::fs::create_dir_all(&a.data_dir)
                .map_err(|e| format!("cannot create {}: {e}", a.data_dir.display()))?;
            format!("sqlite://{}/cityportal.db", a.data_dir.display())
        }
    };
    let store = Store::open_portal(&url).await.map_err(|e| e.to_string())?;
    store.import(&registry).await.map_err(|e| e.to_string())?;
    let sp = ServiceProvider::new(
        server::sp_config(
            a.cohesion.clone(),
            &read(&a.cohesion_ca)?,
            &read(&a.cohesion_signing_cert)?,
            &a.site_id,
            &a.public_url,
            a.min_level,
        )
        .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let seal = seal_key(&a, seal_pin.as_ref())?;
    drop(seal_pin);
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => {
            Some(server::tls_config(&read(c)?, &read(k)?).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let mut config = PortalConfig::new(
        a.public_url.clone(),
        &registry.municipality().cadastral_code,
    );
    config.min_level = a.min_level;
    // Behind a TLS-terminating proxy the listener is plain but the browser speaks HTTPS.
    config.set_listener_tls(tls.is_some());
    let portal = Portal::new(store.clone(), sp, seal, config)
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "cityportal-server: listening on {}://{addr} (public URL {}, municipality {}, minimum level {})",
        if tls.is_some() { "https" } else { "http" },
        a.public_url,
        registry.municipality().cadastral_code,
        a.min_level
    );
    // Expired sessions, windows and callbacks go away every 10 minutes.
    let purge = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            let now = time::OffsetDateTime::now_utc();
            let _ = purge.purge_sessions(now).await;
            let _ = purge.purge_portal(now).await;
        }
    });
    server::serve(listener, portal.router(), tls, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    store.close().await;
    Ok(())
}

async fn run(cli: Cli, seal_pin: Option<Zeroizing<String>>) -> Result<(), String> {
    match cli.command {
        Command::Serve(a) => serve(*a, seal_pin).await,
        Command::Import { registry, database } => {
            let r = Registry::from_json(&read(&registry)?)
                .map_err(|e| format!("{}: {e}", registry.display()))?;
            let store = Store::open_portal(&database)
                .await
                .map_err(|e| e.to_string())?;
            store.import(&r).await.map_err(|e| e.to_string())?;
            println!(
                "imported {} people in {} families of {} ({})",
                r.people().len(),
                r.families().len(),
                r.municipality().name,
                r.municipality().cadastral_code
            );
            store.close().await;
            Ok(())
        }
        Command::Audit {
            database,
            subject,
            json,
            limit,
        } => {
            let store = Store::open_portal(&database)
                .await
                .map_err(|e| e.to_string())?;
            let subject = match subject {
                Some(s) => Some(
                    tscns_cert::CodiceFiscale::parse(&s.trim().to_ascii_uppercase())
                        .map_err(|e| format!("--subject {s:?}: {e}"))?
                        .as_str()
                        .to_string(),
                ),
                None => None,
            };
            let lines = store
                .audit_about(subject.as_deref(), limit.max(1))
                .await
                .map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&lines).map_err(|e| e.to_string())?
                );
            } else {
                for l in &lines {
                    println!(
                        "{} {} level={} {} subject={} from={} {}",
                        l.at.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        l.actor,
                        l.auth_level,
                        l.action,
                        l.subject.as_deref().unwrap_or("-"),
                        l.remote_addr,
                        l.outcome
                    );
                }
            }
            store.close().await;
            Ok(())
        }
        Command::SealKeygen {
            out_dir,
            municipality,
        } => {
            let seal = server::test_seal(&municipality).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
            for (name, text) in [
                ("seal-ca.pem", &seal.ca_pem),
                ("seal-cert.pem", &seal.cert_pem),
                ("seal-key.pem", &seal.key_pem),
            ] {
                let p = out_dir.join(name);
                std::fs::write(&p, text)
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let p = out_dir.join("seal-key.pem");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| format!("cannot protect {}: {e}", p.display()))?;
            }
            println!(
                "wrote seal-ca.pem, seal-cert.pem and seal-key.pem in {} (a test seal: not for real certificates)",
                out_dir.display()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // First, while this is the only thread.
    let seal_pin = take_seal_pin();
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cityportal-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, seal_pin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cityportal-server: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_seal_pin_is_taken_out_of_the_environment() {
        std::env::set_var(SEAL_PIN_VAR, "12345678");
        let pin = take_seal_pin().unwrap();
        assert_eq!(pin.as_str(), "12345678");
        assert!(std::env::var_os(SEAL_PIN_VAR).is_none());
        assert!(take_seal_pin().is_none());
    }
}
