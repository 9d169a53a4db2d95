//! `tscns demo`: the citizen's whole journey in one process, on loopback only.
//!
//! 1. The card: a real one through PC/SC when a reader holds one (`--reader` to choose), else the
//!    built-in simulated card (`--simulated [PROFILE]` forces it).
//! 2. Its identity: card id, holder, codice fiscale, certificate and its CNS-profile findings.
//! 3. The Cohesion emulator (its smart-card listener trusting the simulator's test CA, or the CAs
//!    of `--cns-ca` for a real card) and a small municipal site protected by Cohesion
//!    (`tscns_cohesion::emulator::DemoSite`), both on 127.0.0.1 on free ports.
//! 4. The smart-card login to the site's protected page: one PIN entry (the simulated card's PIN is
//!    known from its profile), one card signature; what the site saw is printed.
//! 5. Logout (LogoutSito to Cohesion through the site), then everything started here stops.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tscns_apdu::Transport;
use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_cohesion::citizen::CitizenLogin;
use tscns_cohesion::emulator::{DemoSite, Emulator, EmulatorConfig};
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
}

type Fail = String;

fn fail(e: impl std::fmt::Display) -> Fail {
    e.to_string()
}

/// Bound on the whole login (each request is also bounded by the client's own timeout).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on the logout and on the check that the site forgot the session.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(30);

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
    let cns_cas: Vec<CertificateDer<'static>> = source
        .cns_cas
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let outcome = rt.block_on(async {
        // 3. The emulator and the site, on loopback.
        let emu = Emulator::start(EmulatorConfig::loopback(cns_cas))
            .await
            .map_err(|e| format!("cannot start the Cohesion emulator: {e}"))?;
        let site = DemoSite::start(&emu, 0)
            .await
            .map_err(|e| format!("cannot start the demo site: {e}"))?;
        if !args.json {
            say!(
                "Cohesion:        emulator at {} (smart-card login on {}, trusting {})",
                emu.base_url().map_err(fail)?,
                emu.cns_addr(),
                source.cas_label
            );
            say!(
                "municipal site:  {} (protected by Cohesion)",
                site.protected_url()
            );
        }
        // 4. The login.
        let login = CitizenLogin::builder(key.clone())
            .cohesion_host("localhost")
            .trust_ca_pem(emu.ca_pem().as_bytes())
            .build()
            .map_err(fail)?;
        let before = sim_handle.as_ref().map(|h| h.counters().signatures);
        let out = tokio::time::timeout(LOGIN_TIMEOUT, login.login(&site.protected_url()))
            .await
            .map_err(|_| format!("the login took longer than {LOGIN_TIMEOUT:?}"))?
            .map_err(|e| format!("the smart-card login failed: {e}"))?;
        let signatures = match (&sim_handle, before) {
            (Some(h), Some(b)) => h.counters().signatures - b,
            _ => out.signatures,
        };
        let seen = site.last_login().ok_or_else(|| {
            format!(
                "the login ended at {} (HTTP {}) but the site never served its protected page",
                out.url, out.status
            )
        })?;
        // 5. The logout: the site sends LogoutSito and forgets the session.
        let logged_out = tokio::time::timeout(LOGOUT_TIMEOUT, async {
            let r = login.client().get(&site.logout_url()).await.map_err(fail)?;
            drop(r);
            let again = login
                .client()
                .get(&site.protected_url())
                .await
                .map_err(fail)?;
            let still_in =
                again.url().as_str() == site.protected_url() && again.status().is_success();
            Ok::<_, Fail>(emu.tokens_logged_out() >= 1 && !still_in)
        })
        .await
        .map_err(|_| format!("the logout took longer than {LOGOUT_TIMEOUT:?}"))??;
        site.shutdown();
        emu.shutdown();
        Ok::<_, Fail>((seen, signatures, logged_out))
    });
    // Everything the runtime still runs (listeners, connections) stops here, bounded.
    rt.shutdown_timeout(Duration::from_secs(5));
    let (seen, signatures, logged_out) = outcome?;
    let apdus = key.card().apdu_count();

    let p = &seen.profile;
    let seen_cf = p.codice_fiscale().map(|c| c.as_str().to_owned());
    let tipo = p.authentication().map(|a| a.code().to_owned());
    if !args.json {
        say!(
            "the site saw:    {} {}, codice fiscale {}, tipo_autenticazione {}",
            p.first_name().unwrap_or("-"),
            p.last_name().unwrap_or("-"),
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
                "done (LogoutSito acknowledged by Cohesion; the site no longer serves the page); \
                 emulator and site stopped"
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
                "given_name": p.first_name(),
                "surname": p.last_name(),
                "signatures": signatures,
            },
            "logout": logged_out,
            "apdus": apdus,
        });
        say!("{}", serde_json::to_string_pretty(&out).map_err(fail)?);
    }
    if seen_cf != card_cf {
        return Err(format!(
            "the site saw codice fiscale {} but the card holds {}",
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
                    or the site still serves the protected page)"
                .into(),
        );
    }
    Ok(())
}
