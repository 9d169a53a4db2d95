//! `tscns-sim`: a simulated TS-CNS card served to pcscd through vpcd, and its test PKI.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};
use tscns_sim::{SimCard, SimProfile, DEFAULT_VPCD_PORT};

const PROFILE_HELP: &str = "\
PROFILE (TOML; every key optional, unknown keys are errors naming the key):
  seed = 7                        every generated value follows it (keys, serials, challenges)
  maker = \"stincard\"              {makers}
  key_bits = 2048                 1024 | 2048
  card_id = \"6120000000000002\"    16 digits, Luhn check digit last
  pin = \"12345678\"                5-8 digits
  puk = \"87654321\"                5-8 digits
  pin_tries = 3                   1-15
  puk_tries = 10                  1-15
  extended_length = true          default: false only for stincard/athena with 1024 bits
  command_chaining = false        default: true for idemia2021
  [personal_data]                 EF_Dati_personali; dates YYYY-MM-DD; missing = empty
    issuer_code issue_date expiry_date surname given_name birth_date sex height
    codice_fiscale (required) citizenship birth_municipality birth_country birth_act
    residence_municipality residence_address expatriation_notes
  [certificate]
    issuing_administration = \"REGIONE MARCHE\"   subject OU
    organization = \"tscns Test PKI S.p.A.\"      subject and CA O
    not_before = \"2021-03-01T00:00:00Z\"         default: issue_date
    not_after = \"2027-03-01T00:00:00Z\"          default: expiry_date
    policies = [\"1.3.76.16.2.1\"]
  [faults]                        all off by default; \"after N\" counts answered APDUs
    latency_ms  bit_rate  remove_after  reset_after  corrupt_after  truncate_after
    mute_after  mute_timeout_ms

Without --profile or --builtin the built-in default profile is used (an STIncard card with a
2048-bit key, holder MARIO ROSSI, PIN 12345678, PUK 87654321). Built-in profiles: {builtins}.";

/// The profile help with the makers (the generations of `tscns_generations`) and the built-in
/// profile names filled in.
fn profile_help() -> String {
    let makers = tscns_sim::Maker::ALL.map(|m| m.name()).join(" | ");
    let builtins = tscns_sim::BUILTIN_PROFILES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ");
    PROFILE_HELP
        .replace("{makers}", &makers)
        .replace("{builtins}", &builtins)
}

/// A simulated Italian TS-CNS smart card for tests: served to pcscd through the vpcd reader
/// driver, with a deterministic test PKI.
#[derive(Parser)]
#[command(name = "tscns-sim", version, after_long_help = profile_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect as the card of a vpcd reader and serve until killed (power off/on/reset handled,
    /// reconnects when pcscd restarts).
    #[command(after_long_help = profile_help())]
    Vpcd {
        #[command(flatten)]
        profile: ProfileArgs,
        /// TCP port of the vpcd reader (35963 = "Virtual PCD 00 00", 35964 = "00 01").
        #[arg(long, default_value_t = DEFAULT_VPCD_PORT)]
        port: u16,
    },
    /// Write the test CA (ca.pem) and the card's authentication certificate (cert.pem, cert.der)
    /// into a directory, without starting anything.
    #[command(after_long_help = profile_help())]
    Issue {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
    },
}

#[derive(Args)]
struct ProfileArgs {
    /// Card profile (TOML file); see below for the format.
    #[arg(long, conflicts_with = "builtin")]
    profile: Option<PathBuf>,
    /// Name of a built-in profile instead of a file.
    #[arg(long)]
    builtin: Option<String>,
}

impl ProfileArgs {
    fn load(&self) -> Result<SimProfile, tscns_sim::Error> {
        match (&self.profile, &self.builtin) {
            (Some(path), _) => SimProfile::from_file(path),
            (None, Some(name)) => SimProfile::builtin(name),
            (None, None) => SimProfile::default_profile(),
        }
    }
}

fn run(cli: Cli) -> Result<(), tscns_sim::Error> {
    match cli.command {
        Command::Vpcd { profile, port } => {
            let profile = profile.load()?;
            let card = SimCard::new(&profile)?;
            eprintln!(
                "tscns-sim: {} card {} in reader \"{}\" (127.0.0.1:{port}); stop with Ctrl-C",
                profile.maker,
                profile.card_id,
                tscns_sim::vpcd_reader_name(port)
            );
            if listening(port) == Some(false) {
                eprintln!(
                    "tscns-sim: nothing listens on 127.0.0.1:{port} yet; waiting for pcscd with the \
                     vpcd driver (start it with `pcscd -f &`, package vsmartcard-vpcd)"
                );
            }
            let never = AtomicBool::new(false);
            tscns_sim::run_vpcd(card, port, &never);
            Ok(())
        }
        Command::Issue { profile, out_dir } => {
            let profile = profile.load()?;
            let pki = tscns_sim::TestPki::issue(&profile)?;
            pki.write_to_dir(&out_dir)?;
            println!(
                "wrote {}, {} and {}",
                out_dir.join("ca.pem").display(),
                out_dir.join("cert.pem").display(),
                out_dir.join("cert.der").display()
            );
            Ok(())
        }
    }
}

/// Whether a TCP port on loopback is in LISTEN state, from /proc/net/tcp (None where that file
/// cannot be read). Looking, not connecting: a probe connection would look like a card to vpcd.
fn listening(port: u16) -> Option<bool> {
    let needle = format!(":{port:04X} ");
    let mut any = false;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        any = true;
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is column 1, st (state) column 3; 0A = LISTEN.
            if cols.len() > 3 && format!("{} ", cols[1]).contains(&needle) && cols[3] == "0A" {
                return Some(true);
            }
        }
    }
    any.then_some(false)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tscns-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_reads_proc_net_tcp() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(listening(port), Some(true));
        drop(l);
        assert_eq!(listening(port), Some(false));
    }
}
