//! `tscns cert`: inspect a CNS authentication certificate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tscns_cert::{parse_certificates, CertificateReport, CnsCertificate};

/// Subcommands of `tscns cert`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read a certificate (DER or PEM): CNS identity, profile findings, optional chain check.
    ///
    /// Exit status 0 when the file is a certificate (whatever the findings), 1 when it is not or
    /// cannot be read.
    Inspect(InspectArgs),
}

/// Arguments of `tscns cert inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The certificate file, DER or PEM.
    pub file: PathBuf,
    /// Print JSON (the fields of `CertificateReport`).
    #[arg(long)]
    pub json: bool,
    /// Check validity at this time (RFC 3339, e.g. 2026-01-31T12:00:00Z) instead of now.
    #[arg(long, value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
    /// A trusted CA certificate file (DER or PEM, may hold several); repeat for more.
    /// With at least one, the chain is verified for TLS client authentication.
    #[arg(long = "anchor")]
    pub anchors: Vec<PathBuf>,
    /// An intermediate CA certificate file (DER or PEM, may hold several); repeat for more.
    #[arg(long = "intermediate")]
    pub intermediates: Vec<PathBuf>,
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"))
}

/// Runs `tscns cert`.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Inspect(args) => match inspect(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("tscns cert inspect: {message}");
                ExitCode::from(1)
            }
        },
    }
}

/// Every certificate (DER) in the PEM or DER files at `paths`.
pub(crate) fn load_all(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for p in paths {
        let bytes = read(p)?;
        out.extend(parse_certificates(&bytes).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The report `tscns cert inspect` prints: findings at `at`, chain verified when `anchors` is not
/// empty. `tscns card info --json` embeds the same object.
pub fn certificate_report(
    cert: &CnsCertificate,
    at: OffsetDateTime,
    anchors: &[Vec<u8>],
    intermediates: &[Vec<u8>],
) -> CertificateReport {
    let chain = if anchors.is_empty() {
        None
    } else {
        Some(cert.verify_chain(anchors, intermediates, at))
    };
    CertificateReport::new(cert, at, chain.as_ref())
}

fn inspect(args: &InspectArgs) -> Result<(), String> {
    let bytes = read(&args.file)?;
    let cert =
        CnsCertificate::from_bytes(&bytes).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let anchors = load_all(&args.anchors)?;
    let intermediates = load_all(&args.intermediates)?;
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let report = certificate_report(&cert, at, &anchors, &intermediates);
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        say!("{text}");
    } else {
        print_human(&report);
    }
    Ok(())
}

fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(none)")
}

fn print_human(r: &CertificateReport) {
    say!("subject:                {}", r.subject);
    say!("codice fiscale:         {}", or_none(&r.codice_fiscale));
    say!("card id:                {}", or_none(&r.card_id));
    say!("data hash:              {}", or_none(&r.data_hash));
    say!("surname:                {}", or_none(&r.surname));
    say!("given name:             {}", or_none(&r.given_name));
    say!(
        "issuing administration: {}",
        or_none(&r.issuing_administration)
    );
    say!("issuer:                 {}", r.issuer);
    say!("serial:                 {}", r.serial);
    say!("valid from:             {}", or_none(&r.not_before));
    say!("valid until:            {}", or_none(&r.not_after));
    let bits = r.key.bits.map_or("?".to_owned(), |b| b.to_string());
    match &r.key.curve {
        Some(c) => say!(
            "key:                    {} {bits} bits ({c})",
            r.key.algorithm
        ),
        None => say!("key:                    {} {bits} bits", r.key.algorithm),
    }
    say!(
        "key usage:              {}",
        r.key_usage
            .as_ref()
            .map_or("(none)".to_owned(), |k| k.join(", "))
    );
    say!(
        "extended key usage:     {}",
        r.extended_key_usage.join(", ")
    );
    say!("policies:               {}", r.policies.join(", "));
    if r.findings.is_empty() {
        say!("findings:               none: conforms to the CNS authentication profile");
    } else {
        say!("findings:");
        for f in &r.findings {
            say!("  {:7} {}: {}", f.severity, f.code, f.message);
        }
    }
    match &r.chain {
        None => say!("chain:                  not checked (give --anchor FILE)"),
        Some(c) if c.valid => say!("chain:                  valid for client authentication"),
        Some(c) => say!(
            "chain:                  INVALID: {}",
            c.error.as_deref().unwrap_or("unknown reason")
        ),
    }
}
