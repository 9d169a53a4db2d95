//! `tscns fetch URL`: an HTTPS GET authenticated with the card (TLS client certificate).
//!
//! The key comes from the card in a reader (`--reader`, the default), from the in-process simulated
//! card (`--simulated [PROFILE]`) or from a PKCS#11 module (`--pkcs11 [MODULE]`). The certificate is
//! shown only to the URL's host at the URL's port and to hosts given with `--allow-host` (`HOST`:
//! every port, `HOST:PORT`: that port). When TLS 1.2 carried it, a warning on standard error says
//! that it crossed the network in clear; `--tls 1.3` never sends it over anything older.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tscns_tls::{AuthClientBuilder, TlsVersions};

use crate::key_source::{signing_key, KeySourceArgs};

/// Arguments of `tscns fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The https URL to GET.
    pub url: String,
    /// Which card or token signs, and how the PIN is entered.
    #[command(flatten)]
    pub key: KeySourceArgs,
    /// Trust the CA certificates in this PEM file (repeatable; default: the system's CAs).
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Also show the certificate to this host, at every port, or to HOST:PORT only (repeatable; the
    /// URL's host is always allowed at the URL's port).
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// TLS version: 1.2 or 1.3 (default: 1.3 when the key can sign RSA-PSS and the server speaks
    /// it, else 1.2). With 1.3 the certificate is never sent over TLS 1.2, where it travels in clear.
    #[arg(long, value_name = "VERSION", value_parser = ["1.2", "1.3"])]
    pub tls: Option<String>,
    /// Write the response body to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

type Fail = String;

/// Runs `tscns fetch`.
pub fn run(args: Args) -> ExitCode {
    match fetch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tscns fetch: {}", crate::hint::with_flag_hint(e));
            ExitCode::from(1)
        }
    }
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
    // The URL's own host at its own port only: another service on that machine learns nothing.
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{:?} has no port", args.url))?;
    let key = signing_key(&args.key)?;
    let versions = match args.tls.as_deref() {
        Some("1.2") => TlsVersions::Tls12,
        Some("1.3") => TlsVersions::Tls13,
        _ => TlsVersions::Auto,
    };
    let mut builder = AuthClientBuilder::new(key)
        .tls_versions(versions)
        .allow_host(&format!("{host}:{port}"))
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
    let result = rt.block_on(async {
        let resp = client.get(url.as_str()).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the response from {host} failed: {e}"))?;
        Ok::<_, Fail>((status, body))
    });
    // Also when the request then failed: the certificate may already have crossed the network.
    if client
        .certificate_sent_over()
        .contains(&tscns_tls::TlsVersion::Tls12)
    {
        eprintln!(
            "tscns fetch: warning: the certificate was sent over TLS 1.2, in clear: your name and \
             codice fiscale were visible to anyone on the network path (--tls 1.3 refuses that)"
        );
    }
    let (status, body) = result?;
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
