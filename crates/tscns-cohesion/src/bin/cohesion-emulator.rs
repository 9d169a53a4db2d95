//! `cohesion-emulator`: an HTTPS Cohesion on loopback for testing service providers and citizen
//! logins offline. See `cohesion-emulator --help`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig, TestUser};

/// An emulator of Cohesion (Regione Marche's SSO), built from its public documentation.
///
/// Endpoints on --listen: /sso/Check.aspx, /SA/AccediCohesion.aspx, /SPManager/WAYF.aspx (login
/// request, `auth` = urlencode(base64(dsAuth))), /SA/Login.aspx (login page), /SSO/webCheckSessionSSO.aspx
/// (classic) and /SPManager/webCheckSessionSSO.aspx (SAML, signed profile) for
/// Operation=GetCredential|LogoutSito, /SPManager/Logout.aspx. On --cns-listen:
/// /SA/SmartCard.aspx, which requires a TLS client certificate chained to a --cns-ca with a CNS
/// policy; the codice fiscale comes from its subject CN.
///
/// Test users: RSSMRA85T10A562S / password (password login, PW) and VRDGPP80A01H501U / password /
/// PIN 12345678 (password+PIN, PIN); --users FILE adds more. Tokens live 60 minutes.
#[derive(Debug, Parser)]
#[command(name = "cohesion-emulator", version, verbatim_doc_comment)]
struct Args {
    /// Main HTTPS listener, e.g. 127.0.0.1:8443.
    #[arg(long)]
    listen: SocketAddr,
    /// Smart-card HTTPS listener (client certificate required), e.g. 127.0.0.1:8444.
    #[arg(long)]
    cns_listen: SocketAddr,
    /// CA certificate (PEM or DER) that citizen certificates must chain to; repeatable.
    #[arg(long, required = true, num_args = 1..)]
    cns_ca: Vec<PathBuf>,
    /// Server certificate chain (PEM). Without it one is made for localhost/127.0.0.1.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM, PKCS#8/PKCS#1/SEC1).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Write the CA to trust for the HTTPS certificate to this file (PEM).
    #[arg(long)]
    write_ca: Option<PathBuf>,
    /// Write the certificate that signs SAML-mode profiles to this file (PEM); SPs configure it.
    #[arg(long)]
    write_signing_cert: Option<PathBuf>,
    /// Accept only these id_sito values (repeatable); default: any.
    #[arg(long = "site")]
    sites: Vec<String>,
    /// Accept webCheckSessionSSO calls only from these IP addresses (repeatable); default: any.
    #[arg(long = "whitelist")]
    whitelist: Vec<std::net::IpAddr>,
    /// Host name used in links between the two listeners (default: localhost).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// More password users, e.g. a municipality's residents: a TOML file of `[[user]]` tables
    /// with `codice_fiscale`, `password` and optional `pin`, `first_name`, `last_name`, `email`.
    /// The built-in test users stay; a user of the file replaces a built-in one with its login.
    #[arg(long)]
    users: Option<PathBuf>,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn certs(
    data: &[u8],
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    if data.first() == Some(&0x30) {
        return Ok(vec![data.to_vec().into()]);
    }
    let ders =
        tscns_cert::parse_certificates(data).map_err(|e| format!("{}: {e}", path.display()))?;
    if ders.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(ders.into_iter().map(Into::into).collect())
}

async fn run(args: Args) -> Result<(), String> {
    let mut cns_cas = Vec::new();
    for p in &args.cns_ca {
        cns_cas.extend(certs(&read(p)?, p)?);
    }
    if cns_cas.is_empty() {
        return Err(
            "the smart-card listener needs at least one CNS CA: give one with --cns-ca FILE".into(),
        );
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    let mut users = TestUser::defaults();
    if let Some(p) = &args.users {
        let text = String::from_utf8(read(p)?)
            .map_err(|_| format!("{} is not UTF-8 text", p.display()))?;
        let extra = TestUser::from_toml(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        users.retain(|u| !extra.iter().any(|x| x.login.eq_ignore_ascii_case(&u.login)));
        users.extend(extra);
    }
    let mut hosts = vec![args.host.clone()];
    for h in ["localhost", "127.0.0.1"] {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_owned());
        }
    }
    let cfg = EmulatorConfig {
        listen: args.listen,
        cns_listen: args.cns_listen,
        cns_cas,
        tls_cert_and_key: tls,
        hosts,
        sites: args.sites.into_iter().collect(),
        whitelist: args.whitelist,
        users,
        clock: std::sync::Arc::new(tscns_cohesion::SystemClock),
        signer: None,
    };
    let emu = Emulator::start(cfg).await.map_err(|e| match e {
        tscns_cohesion::Error::Tls(m) if args.tls_cert.is_some() => {
            format!("{m} (check --tls-cert and --tls-key)")
        }
        other => other.to_string(),
    })?;
    if let Some(p) = &args.write_ca {
        std::fs::write(p, emu.ca_pem())
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.write_signing_cert {
        std::fs::write(p, emu.signing_certificate_pem())
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    println!(
        "cohesion-emulator: {} (smart card on {}), base URL {}",
        emu.addr(),
        emu.cns_addr(),
        emu.base_url().map(|u| u.to_string()).unwrap_or_default()
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    emu.shutdown();
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cohesion-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cohesion-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
