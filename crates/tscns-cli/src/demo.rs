//! `tscns demo`: the citizen's whole journey in one process, on loopback only.
//!
//! 1. The card: a real one through PC/SC when a reader holds one (`--reader` to choose), else the
//!    built-in simulated card (`--simulated [PROFILE]` forces it).
//! 2. Its identity: card id, holder, codice fiscale, certificate and its CNS-profile findings.
//! 3. The Cohesion emulator (its smart-card listener trusting the simulator's test CA, or the CAs
//!    of `--cns-ca` for a real card), on 127.0.0.1 on a free port.
//! 4. The reference portal (`tscns_cityportal::server`) on the embedded SQLite store under
//!    `--dir` (default `./tscns-demo`), with the San Benedetto del Tronto fixture and a fresh test
//!    seal, a Cohesion service provider of the emulator.
//! 5. The smart-card login to the portal (`tscns_cityportal::client`): one PIN entry (the
//!    simulated card's PIN is known from its profile), one card signature; what the portal saw
//!    (its audit log's login line) is printed.
//! 6. The Interrogazione Anagrafe, printed. A holder who lives elsewhere is told so by the portal,
//!    and the journey goes on to the logout.
//! 7. A certificato di residenza (with an exemption) and a stato di famiglia (with a demo marca
//!    da bollo), 8. an autocertificazione.
//! 9. Every PDF written under `--dir`; each certificate's seal verified against the test seal's
//!    CA and its verification URL (the one in its QR code) asked at the portal's public
//!    verification page, which must say valid with the same SHA-256.
//! 10. Logout (LogoutSito to Cohesion through the portal; the session no longer answers), then
//!     everything started here stops — unless `--serve`, which keeps the emulator and the portal
//!     running until Ctrl-C, with password logins for every resident of the fixture.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tscns_apdu::Transport;
use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_cityportal::client::{
    CertificateRequest, CityPortal, ClientError, LoginOptions, StampChoice,
};
use tscns_cityportal::registry::Registry;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig, TestUser};
use tscns_tls::rustls::pki_types::CertificateDer;

/// Arguments of `tscns demo`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("pin_stdin", |a| a.help(
    "With a real card: read the PIN from the first line of standard input instead of prompting \
     on the terminal"
)))]
pub struct Args {
    /// Use the in-process simulated card even when a reader holds a card; PROFILE is a tscns-sim
    /// built-in profile or a profile file (default: `default`).
    #[arg(long, value_name = "PROFILE", num_args = 0..=1, default_missing_value = "default",
          conflicts_with = "reader")]
    simulated: Option<String>,
    /// PC/SC reader with the card (default: the first reader with a card, else the simulated card).
    #[arg(long, value_name = "READER")]
    reader: Option<String>,
    /// With a real card: the CA certificate(s) (PEM or DER, repeatable) that issued the card's
    /// certificate, for the emulator's smart-card listener to trust.
    #[arg(long, value_name = "FILE", conflicts_with = "simulated")]
    cns_ca: Vec<PathBuf>,
    #[command(flatten)]
    pin: crate::card::PinInput,
    /// Print one JSON object with the facts instead of text.
    #[arg(long)]
    json: bool,
    /// Where the PDFs, the seal's CA and the portal's SQLite database go.
    #[arg(long, value_name = "DIR", default_value = "tscns-demo")]
    dir: PathBuf,
    /// After the journey, keep the emulator and the portal running (until Ctrl-C) for a person
    /// to try in a browser, with password logins for every resident of the fixture.
    #[arg(long)]
    serve: bool,
}

type Fail = String;

fn fail(e: impl std::fmt::Display) -> Fail {
    e.to_string()
}

/// Bound on the whole login (each request is also bounded by the client's own timeout).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on the logout and on the check that the site forgot the session.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the portal's services (record, two certificates, a self-declaration).
const SERVICES_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `tscns demo`.
pub fn run(args: Args) -> ExitCode {
    match demo(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tscns demo: {e}");
            ExitCode::from(1)
        }
    }
}

/// Which card the journey uses and what comes with it.
struct Source {
    /// `"simulated"` or `"pcsc"`.
    kind: &'static str,
    /// Reader name (or `simulated (PROFILE)`).
    reader: String,
    /// CAs the emulator's smart-card listener trusts (DER).
    cns_cas: Vec<Vec<u8>>,
    /// What the CAs are, for the text output.
    cas_label: String,
    /// The simulated card's PIN and signature counter.
    sim: Option<(Pin, tscns_sim::SimHandle)>,
}

fn load_profile(name: &str) -> Result<tscns_sim::Profile, Fail> {
    tscns_sim::Profile::builtin_or_file(name).map_err(fail)
}

fn simulated(name: &str, why: Option<String>, args: &Args) -> Result<(), Fail> {
    let profile = load_profile(name)?;
    let sim = tscns_sim::SimCard::new(&profile).map_err(fail)?;
    let pin = Pin::new(profile.pin.expose()).map_err(fail)?;
    if !args.json {
        if let Some(why) = why {
            say!("{why}");
        }
        say!("card:            the simulated TS-CNS card, profile {name:?} (tscns-sim, in this process)");
    }
    let source = Source {
        kind: "simulated",
        reader: format!("simulated ({name})"),
        cns_cas: vec![sim.pki().ca_cert_der().to_vec()],
        cas_label: "the simulator's test CA".into(),
        sim: Some((pin, sim.handle())),
    };
    let card = CnsCard::open(sim).map_err(fail)?;
    journey(card, source, args)
}

fn demo(args: &Args) -> Result<(), Fail> {
    if let Some(name) = &args.simulated {
        return simulated(name, None, args);
    }
    real_or_simulated(args)
}

#[cfg(feature = "pcsc")]
fn real_or_simulated(args: &Args) -> Result<(), Fail> {
    use tscns_apdu::pcsc::PcscTransport;
    let t = match &args.reader {
        Some(r) => PcscTransport::connect(r).map_err(|e| {
            format!("{e} (`tscns readers` lists the readers; `tscns demo --simulated` needs none)")
        })?,
        None => match PcscTransport::connect_first() {
            Ok(t) => t,
            Err(e) => {
                let why = format!("no card in a PC/SC reader (PC/SC says: {e}), so the built-in simulated card is used");
                return simulated("default", Some(why), args);
            }
        },
    };
    let reader = t.reader().to_owned();
    if !args.json {
        say!("card:            the card in reader {reader:?} (PC/SC)");
    }
    let cns_cas = crate::cert::load_all(&args.cns_ca)?;
    let cas_label = format!("the CA certificates from {}", paths(&args.cns_ca));
    let card = CnsCard::open(t).map_err(|e| {
        format!(
            "the card in {reader:?} cannot be used as a TS-CNS: {e} (take it out, or run \
             `tscns demo --simulated`)"
        )
    })?;
    let source = Source {
        kind: "pcsc",
        reader,
        cns_cas,
        cas_label,
        sim: None,
    };
    journey(card, source, args)
}

#[cfg(not(feature = "pcsc"))]
fn real_or_simulated(args: &Args) -> Result<(), Fail> {
    if args.reader.is_some() {
        return Err("this tscns was built without PC/SC support: use --simulated".into());
    }
    simulated(
        "default",
        Some("no PC/SC support in this build: using the simulated card".into()),
        args,
    )
}

#[cfg(feature = "pcsc")]
fn paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn journey<T: Transport + Send + 'static>(
    mut card: CnsCard<T>,
    source: Source,
    args: &Args,
) -> Result<(), Fail> {
    // 2. The identity.
    let spinner = (!args.json).then(|| crate::card::Spinner::start("reading the card..."));
    let id = card.identity().map_err(fail)?.clone();
    drop(spinner);
    let report = crate::cert::certificate_report(
        &id.certificate,
        time::OffsetDateTime::now_utc(),
        &source.cns_cas,
        &[],
    );
    let pd = &id.personal_data;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    if !args.json {
        say!("card id:         {}", id.card_id.as_str());
        say!(
            "holder:          {} {}",
            dash(&pd.given_name),
            dash(&pd.surname)
        );
        say!("codice fiscale:  {}", dash(&pd.codice_fiscale));
        say!("certificate:     {}", report.subject);
        say!(
            "                 issued by {}, valid until {}",
            report.issuer,
            dash(&report.not_after)
        );
        if report.findings.is_empty() {
            say!("conformance:     CNS authentication profile: no findings");
        } else {
            say!(
                "conformance:     CNS authentication profile: {} finding(s)",
                report.findings.len()
            );
            for f in &report.findings {
                say!(
                    "                 - {} {}: {}",
                    f.severity,
                    f.code,
                    f.message
                );
            }
        }
        match &report.chain {
            Some(c) if c.valid => say!("chain:           valid against {}", source.cas_label),
            Some(c) => say!(
                "chain:           NOT valid against {} ({})",
                source.cas_label,
                c.error.as_deref().unwrap_or("no reason given")
            ),
            None => {}
        }
    }
    if source.cns_cas.is_empty() {
        return Err(format!(
            "the emulator's smart-card listener must trust the CA that issued this card's \
             certificate ({}): pass it with --cns-ca FILE (PEM or DER), or run `tscns demo \
             --simulated`",
            report.issuer
        ));
    }
    if let Some(c) = report.chain.as_ref().filter(|c| !c.valid) {
        return Err(format!(
            "the card's certificate does not chain to {} ({}), so the emulator would refuse it: \
             give the CA that issued it ({}) with --cns-ca FILE",
            source.cas_label,
            c.error.as_deref().unwrap_or("no reason given"),
            report.issuer
        ));
    }
    let card_json = json!({
        "source": source.kind,
        "reader": source.reader,
        "card_id": id.card_id.as_str(),
        "codice_fiscale": pd.codice_fiscale,
        "surname": pd.surname,
        "given_name": pd.given_name,
        "certificate": serde_json::to_value(&report).map_err(fail)?,
    });
    let card_cf = pd.codice_fiscale.clone();

    // 4 (first half). The PIN, once, before any server is involved.
    let key = CardKey::new(card).map_err(fail)?;
    let sim_handle = match &source.sim {
        Some((pin, handle)) => {
            if !args.json {
                say!("PIN:             the simulated card's, known from its profile (not asked)");
            }
            key.card().verify_pin(pin).map_err(fail)?;
            Some(handle.clone())
        }
        None => {
            let pin = crate::card::SecretReader::new(&args.pin)?.pin("PIN")?;
            key.card().verify_pin(&pin).map_err(fail)?;
            None
        }
    };
    let key = Arc::new(key);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let registry = Registry::from_json(tscns_cityportal::SAN_BENEDETTO_FIXTURE.as_bytes())
        .map_err(|e| format!("the shipped registry fixture: {e}"))?;
    let dir = args.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // One demo at a time per directory: two would share one store (and read each other's logins).
    let lock_path = dir.join(".tscns-demo.lock");
    let dir_lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    if let Err(e) = dir_lock.try_lock() {
        return Err(match e {
            std::fs::TryLockError::WouldBlock => format!(
                "another tscns demo is using {}: wait for it to end, or give this one --dir OTHER",
                dir.display()
            ),
            std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", lock_path.display()),
        });
    }
    let cns_cas: Vec<CertificateDer<'static>> = source
        .cns_cas
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let outcome = rt.block_on(async {
        // 3. The emulator and 4. the reference portal, on loopback.
        let spinner = (!args.json)
            .then(|| crate::card::Spinner::start("starting Cohesion and the portal..."));
        let mut config = EmulatorConfig::loopback(cns_cas);
        if args.serve {
            config.users.extend(resident_logins(&registry));
        }
        let emu = Emulator::start(config)
            .await
            .map_err(|e| format!("cannot start the Cohesion emulator: {e}"))?;
        let portal =
            crate::demo_portal::DemoPortal::start(&emu, &registry, &dir, args.serve).await?;
        drop(spinner);
        if !args.json {
            say!(
                "Cohesion:        emulator at {} (smart-card login on {}, trusting {})",
                emu.base_url().map_err(fail)?,
                emu.cns_addr(),
                source.cas_label
            );
            say!(
                "portal:          {} (Comune di {}, SQLite in {}, test seal CA in {})",
                portal.base_url(),
                registry.municipality().name,
                dir.display(),
                portal.seal_ca_path().display()
            );
        }
        // 5. The login: one card signature.
        let spinner =
            (!args.json).then(|| crate::card::Spinner::start("logging in with the card..."));
        let before = sim_handle.as_ref().map(|h| h.counters().signatures);
        let options = LoginOptions::default()
            .cohesion_host("localhost")
            .trust_ca_pem(emu.ca_pem().as_bytes())
            .seal_ca_pem(portal.seal_ca_pem().as_bytes());
        let city = tokio::time::timeout(
            LOGIN_TIMEOUT,
            CityPortal::login(&portal.base_url(), key.clone(), options),
        )
        .await
        .map_err(|_| format!("the login took longer than {LOGIN_TIMEOUT:?}"))?
        .map_err(|e| format!("the smart-card login to the portal failed: {e}"))?;
        let signatures = match (&sim_handle, before) {
            (Some(h), Some(b)) => h.counters().signatures - b,
            _ => city.login_signatures(),
        };
        drop(spinner);
        // 6-9. The services, then 10. the logout.
        let services = tokio::time::timeout(SERVICES_TIMEOUT, services(&city, &dir, args))
            .await
            .map_err(|_| format!("the portal's services took longer than {SERVICES_TIMEOUT:?}"))?;
        let seen = portal.last_login().await?;
        let logged_out = tokio::time::timeout(LOGOUT_TIMEOUT, async {
            city.logout().await.map_err(fail)?;
            let after = city.record().await;
            let refused = matches!(&after, Err(ClientError::Refused { status: 401, .. }));
            Ok::<_, Fail>(emu.tokens_logged_out() >= 1 && refused)
        })
        .await
        .map_err(|_| format!("the logout took longer than {LOGOUT_TIMEOUT:?}"))??;
        if args.serve && services.is_ok() {
            serve_until_ctrl_c(&emu, &portal, &registry, args).await;
        }
        portal.shutdown().await;
        emu.shutdown();
        Ok::<_, Fail>((seen, signatures, services, logged_out))
    });
    // Everything the runtime still runs (listeners, connections) stops here, bounded.
    rt.shutdown_timeout(Duration::from_secs(5));
    let (seen, signatures, services, logged_out) = outcome?;
    let services = services?;
    let apdus = key.card().apdu_count();

    let seen_cf = seen.as_ref().map(|s| s.codice_fiscale.clone());
    let tipo = seen.as_ref().and_then(|s| s.tipo_autenticazione.clone());
    // The names: the portal's record of the holder; a holder who is not a resident has none
    // there, and the card's own are shown.
    let (given, surname) = match &services.record {
        Some(r) => (
            r["given_name"].as_str().map(str::to_owned),
            r["surname"].as_str().map(str::to_owned),
        ),
        None => (pd.given_name.clone(), pd.surname.clone()),
    };
    if !args.json {
        say!(
            "the site saw:    {} {}, codice fiscale {}, tipo_autenticazione {}",
            given.as_deref().unwrap_or("-"),
            surname.as_deref().unwrap_or("-"),
            seen_cf.as_deref().unwrap_or("-"),
            tipo.as_deref().unwrap_or("-")
        );
        say!(
            "card signatures: {signatures} for the login{}",
            if sim_handle.is_some() {
                " (counted by the simulator)"
            } else {
                ""
            }
        );
        say!("APDUs:           {apdus} exchanged with the card");
        say!(
            "logout:          {}",
            if logged_out {
                "done (LogoutSito acknowledged by Cohesion; the portal no longer serves the session); \
                 emulator and portal stopped"
            } else {
                "FAILED"
            }
        );
    } else {
        let out = json!({
            "card": card_json,
            "login": {
                "codice_fiscale": seen_cf,
                "tipo_autenticazione": tipo,
                "given_name": given,
                "surname": surname,
                "signatures": signatures,
            },
            "portal": services.json,
            "logout": logged_out,
            "apdus": apdus,
        });
        say!("{}", serde_json::to_string_pretty(&out).map_err(fail)?);
    }
    if seen_cf != card_cf {
        return Err(format!(
            "the portal saw codice fiscale {} but the card holds {}",
            seen_cf.as_deref().unwrap_or("none"),
            card_cf.as_deref().unwrap_or("none")
        ));
    }
    if signatures != 1 {
        return Err(format!(
            "the login used {signatures} card signatures instead of exactly 1"
        ));
    }
    if !logged_out {
        return Err(
            "the logout did not end the session (LogoutSito not acknowledged by Cohesion, \
                    or the portal still serves the session)"
                .into(),
        );
    }
    if let Some(e) = services.failure {
        return Err(e);
    }
    Ok(())
}

/// The services' results: the JSON for `--json`, the holder's record when a resident, and the
/// first check that failed (reported after the logout).
struct Services {
    json: serde_json::Value,
    record: Option<serde_json::Value>,
    failure: Option<String>,
}

/// A demo marca da bollo: 14 digits from the clock, a new one each run (the store refuses a
/// marca used before, also in an earlier run on the same `--dir`).
fn demo_marca() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:014}", nanos % 100_000_000_000_000)
}

fn text<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("-")
}

fn print_record(r: &serde_json::Value) {
    say!("Interrogazione Anagrafe:");
    say!(
        "                 {} {}, codice fiscale {}",
        text(r, &["given_name"]),
        text(r, &["surname"]),
        text(r, &["codice_fiscale"])
    );
    say!(
        "                 nato/a il {} a {}; cittadinanza {}; stato civile {}",
        text(r, &["birth_date"]),
        text(r, &["birth_place", "municipality"]),
        text(r, &["citizenship", "description"]),
        text(r, &["civil_status", "description"])
    );
    say!(
        "                 residenza {} {}, {} {}",
        text(r, &["family", "address", "street"]),
        text(r, &["family", "address", "number"]),
        text(r, &["family", "address", "postal_code"]),
        text(r, &["municipality", "name"])
    );
    if let Some(members) = r["members"].as_array() {
        for m in members {
            let death = m["death_date"]
                .as_str()
                .map(|d| format!(", deceduto/a il {d}"))
                .unwrap_or_default();
            say!(
                "                 famiglia: {} {} ({}, {}{death})",
                text(m, &["given_name"]),
                text(m, &["surname"]),
                text(m, &["codice_fiscale"]),
                text(m, &["relationship", "description"])
            );
        }
    }
}

/// One certificate: issued (its seal verified by the client against the test seal's CA),
/// written under `dir`, and its verification URL (the QR code's) asked at the portal.
async fn one_certificate(
    city: &CityPortal,
    dir: &std::path::Path,
    request: &CertificateRequest,
    file: &str,
    args: &Args,
) -> Result<(serde_json::Value, Option<String>), Fail> {
    let spinner =
        (!args.json).then(|| crate::card::Spinner::start("issuing a sealed certificate..."));
    let issued = city.request_certificate(request).await.map_err(|e| {
        format!(
            "the portal did not issue the certificate {:?}: {e}",
            request.kind
        )
    })?;
    let out = dir.join(file);
    std::fs::write(&out, &issued.pdf)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let verified = city
        .verify(&issued.url)
        .await
        .map_err(|e| format!("the verification page {}: {e}", issued.url))?;
    drop(spinner);
    let signer = issued.seal.as_ref().map(|s| s.signer.clone());
    let mut failure = None;
    if signer.is_none() {
        failure = Some(format!("{}: the seal was not checked", out.display()));
    } else if !verified.valid || verified.sha256.as_deref() != Some(issued.sha256.as_str()) {
        failure = Some(format!(
            "{}: the verification page does not confirm it (valid {}, sha256 {:?})",
            out.display(),
            verified.valid,
            verified.sha256
        ));
    }
    let stamp = match &request.stamp {
        Some(StampChoice::Marca(m)) => json!({"marca": m}),
        Some(StampChoice::Exemption { code, .. }) => json!({"exemption": code}),
        None => serde_json::Value::Null,
    };
    if !args.json {
        say!(
            "certificate:     {} {} ({}) -> {}",
            verified
                .kind
                .as_ref()
                .map_or(request.kind.as_str(), |k| k.description.as_str()),
            issued.id,
            match &request.stamp {
                Some(StampChoice::Marca(m)) => format!("marca da bollo {m}"),
                Some(StampChoice::Exemption { code, .. }) => format!("esenzione {code}"),
                None => "esente per legge".into(),
            },
            out.display()
        );
        say!(
            "                 seal {}; verification page {}: {}",
            signer
                .as_deref()
                .map_or("NOT checked".to_owned(), |s| format!("valid ({s})")),
            issued.url,
            if failure.is_none() {
                "valid, same SHA-256"
            } else {
                "NOT confirmed"
            }
        );
    }
    Ok((
        json!({
            "kind": request.kind,
            "id": issued.id,
            "verification_code": issued.code,
            "verification_url": issued.url,
            "sha256": issued.sha256,
            "out": out.display().to_string(),
            "stamp": stamp,
            "seal": {"valid": signer.is_some(), "signer": signer},
            "verification": verified,
        }),
        failure,
    ))
}

/// Steps 6-9: the record, two certificates, a self-declaration; every PDF under `dir`.
async fn services(city: &CityPortal, dir: &std::path::Path, args: &Args) -> Result<Services, Fail> {
    let record = match city.record().await {
        Ok(r) => r,
        Err(ClientError::Refused {
            status: 403,
            message,
            error,
        }) => {
            // A holder who lives elsewhere: the portal says so (as it must), nothing to issue.
            if !args.json {
                say!("portal:          {message}");
            }
            return Ok(Services {
                json: json!({"url": city.base_url(), "resident": false, "error": error, "message": message}),
                record: None,
                failure: None,
            });
        }
        Err(e) => return Err(format!("the Interrogazione Anagrafe failed: {e}")),
    };
    if !args.json {
        print_record(&record);
    }
    let mut failures = Vec::new();
    let mut certificates = Vec::new();
    let residenza = CertificateRequest::new("residenza").stamp(StampChoice::Exemption {
        code: DEMO_EXEMPTION,
        description: None,
    });
    let famiglia =
        CertificateRequest::new("stato-di-famiglia").stamp(StampChoice::Marca(demo_marca()));
    for (req, file) in [
        (&residenza, "certificato-residenza.pdf"),
        (&famiglia, "certificato-stato-di-famiglia.pdf"),
    ] {
        let (j, f) = one_certificate(city, dir, req, file, args).await?;
        certificates.push(j);
        failures.extend(f);
    }
    let facts = ["nascita", "residenza", "cittadinanza", "stato-di-famiglia"];
    let spinner =
        (!args.json).then(|| crate::card::Spinner::start("making the self-declaration..."));
    let pdf = city
        .declaration(&facts)
        .await
        .map_err(|e| format!("the portal did not make the self-declaration: {e}"))?;
    drop(spinner);
    let out = dir.join("autocertificazione.pdf");
    std::fs::write(&out, &pdf).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    if !args.json {
        say!(
            "autocertificazione: {} ({}) -> {} (no seal: the citizen signs it)",
            facts.join(", "),
            pdf.len(),
            out.display()
        );
    }
    let json = json!({
        "url": city.base_url(),
        "resident": true,
        "dir": dir.display().to_string(),
        "record": record,
        "certificates": certificates,
        "declaration": {"facts": facts, "out": out.display().to_string(), "bytes": pdf.len()},
    });
    Ok(Services {
        json,
        record: Some(record),
        failure: (!failures.is_empty()).then(|| failures.join("; ")),
    })
}

/// The exemption the demo's certificato di residenza uses (Tabella 39: 3, uso processuale).
const DEMO_EXEMPTION: u16 = 3;
/// The password of every fixture resident at the emulator in `--serve` mode.
const DEMO_PASSWORD: &str = "password";

/// Password logins at the emulator for every living person of the fixture (`--serve`).
fn resident_logins(registry: &Registry) -> Vec<TestUser> {
    registry
        .people()
        .iter()
        .filter(|p| p.death_date.is_none())
        .map(|p| TestUser {
            login: p.codice_fiscale.as_str().to_owned(),
            password: DEMO_PASSWORD.to_owned(),
            pin: None,
            first_name: p.given_name.clone(),
            last_name: p.surname.clone(),
            email: String::new(),
        })
        .collect()
}

/// `--serve`: prints where to go and who can log in, then waits for Ctrl-C.
async fn serve_until_ctrl_c(
    emu: &Emulator,
    portal: &crate::demo_portal::DemoPortal,
    registry: &Registry,
    args: &Args,
) {
    let logins: Vec<_> = resident_logins(registry)
        .into_iter()
        .map(|u| json!({"codice_fiscale": u.login, "password": u.password, "name": format!("{} {}", u.first_name, u.last_name)}))
        .collect();
    if args.json {
        say!(
            "{}",
            json!({"serve": {"url": format!("{}/", portal.base_url()), "cohesion": emu.base_url().map(|u| u.to_string()).ok(), "logins": logins}})
        );
    } else {
        say!("");
        say!(
            "The portal keeps running: open {}/ in a browser.",
            portal.base_url()
        );
        say!("Log in at the Cohesion emulator by password as any resident of the fixture:");
        for l in &logins {
            say!(
                "  {}  password {:?}  ({})",
                text(l, &["codice_fiscale"]),
                DEMO_PASSWORD,
                text(l, &["name"])
            );
        }
        say!("Ctrl-C stops the emulator and the portal.");
    }
    let _ = tokio::signal::ctrl_c().await;
}
