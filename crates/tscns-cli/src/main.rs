//! The `tscns` command: use the Italian TS-CNS smart card from a terminal.
//!
//! Thin over the tscns crates: each subcommand lives in its own module with an `Args` type and a
//! `run` function returning the process exit code. Human output by default, `--json` where offered.
//! Exit codes: 0 success, 1 the operation failed (message on stderr), 2 usage error (clap's own).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that never panics: a closed pipe (`tscns cert inspect F | head -1`) or a full disk
/// just ends the output.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod card;
mod cert;
mod cf;
mod cohesion;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod demo_portal;
mod fetch;
mod hint;
mod key_source;
mod middleware;
mod portal;
mod readers;
mod report;
mod simulated;

/// Use the Italian TS-CNS smart card (Tessera Sanitaria – Carta Nazionale dei Servizi).
#[derive(Debug, Parser)]
#[command(name = "tscns", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List PC/SC smart-card readers, whether a card is present, and its ATR.
    Readers(readers::Args),
    /// Codice fiscale: check or compute one.
    #[command(subcommand)]
    Cf(cf::Command),
    /// X.509 certificates: inspect a CNS authentication certificate.
    #[command(subcommand)]
    Cert(cert::Command),
    /// HTTPS GET authenticated with the card's certificate (TLS client authentication).
    Fetch(fetch::Args),
    /// The TS-CNS card: identity, PIN, certificate, signing (`--simulated` for a simulated card).
    #[command(subcommand)]
    Card(card::Command),
    /// Cohesion (Regione Marche SSO): log in to a site with the smart card.
    #[command(subcommand)]
    Cohesion(cohesion::Command),
    /// The municipal portal with the card: record, family, certificates, self-declarations,
    /// verification (exit codes: 0 done, 1 refused or not valid, 2 usage, 3 login/TLS/network).
    #[command(subcommand)]
    Portal(portal::Command),
    #[cfg(feature = "demo")]
    /// The main job: the citizen's whole smart-card login to a municipal site through Cohesion, in
    /// one process on loopback (real card if a reader holds one, else the simulated card).
    Demo(demo::Args),
    /// The browser "middleware": register the TS-CNS PKCS#11 module with p11-kit, Chromium and
    /// Firefox, show where it is registered and which cards it sees, or remove it.
    #[command(subcommand)]
    Middleware(middleware::Cmd),
}

/// SIGINT (Ctrl-C), SIGTERM, SIGHUP and SIGQUIT (Ctrl-\\) end the program the way its normal end does for the card:
/// every PC/SC connection to which a PIN or PUK was presented resets the card
/// ([`tscns_apdu::pcsc::close_all`]), then the process exits with 128 + the signal number. Without
/// this the signal would end the process at once, and pcscd would leave the card as it is for any
/// other client already connected (it resets a dead client's card only if it died inside a
/// transaction).
#[cfg(all(unix, feature = "pcsc"))]
fn reset_cards_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tscns: cannot handle Ctrl-C ({e}); pcscd resets the card if it is used");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("tscns signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                close_cards();
                eprintln!("tscns: interrupted");
                std::process::exit(128 + signal);
            }
        });
    if let Err(e) = spawned {
        eprintln!("tscns: cannot handle Ctrl-C ({e}); pcscd resets the card if it is used");
    }
}

#[cfg(not(all(unix, feature = "pcsc")))]
fn reset_cards_on_signals() {}

/// How long the end of `main` waits for PC/SC connections still closing (a connection whose
/// command timed out resets its card only once that command is over).
#[cfg(feature = "pcsc")]
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Before the process exits: logs out of the PKCS#11 keys it opened (`--pkcs11`), and resets every
/// card a PIN was presented to over PC/SC, connections still open and connections dropped whose
/// PC/SC thread is still busy (bounded by [`CLOSE_WAIT`]).
fn close_cards() {
    key_source::logout_pkcs11_keys();
    #[cfg(feature = "pcsc")]
    tscns_apdu::pcsc::close_all(CLOSE_WAIT);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    reset_cards_on_signals();
    // Every way out of a command (success, error, panic) goes through `close_cards`.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli)));
    close_cards();
    match ran {
        Ok(code) => code,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Readers(args) => readers::run(args),
        Command::Cf(cmd) => cf::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Fetch(args) => fetch::run(args),
        Command::Card(cmd) => card::run(cmd),
        Command::Cohesion(cmd) => cohesion::run(cmd),
        Command::Portal(cmd) => portal::run(cmd),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args),
        Command::Middleware(cmd) => middleware::run(cmd),
    }
}
