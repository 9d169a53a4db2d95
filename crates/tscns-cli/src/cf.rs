//! `tscns cf`: check or compute a codice fiscale.

use std::process::ExitCode;

use serde_json::json;
use time::OffsetDateTime;
use tscns_cert::time::Date;
use tscns_cert::{CodiceFiscale, Sex};

/// Subcommands of `tscns cf`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a codice fiscale: pattern, month, day, check letter, omocodia; decode it.
    ///
    /// Exit status 0 when valid, 1 when invalid.
    Check(CheckArgs),
    /// Compute a codice fiscale from surname, given name, birth date, sex and birthplace code.
    Make(MakeArgs),
}

/// Arguments of `tscns cf check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The codice fiscale (case and surrounding spaces do not matter).
    pub code: String,
    /// Print JSON: input, valid, canonical, omocodic, birth_date, sex, birthplace_code, error.
    #[arg(long)]
    pub json: bool,
}

/// Sex on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SexArg {
    /// Male.
    #[value(name = "M", alias = "m")]
    M,
    /// Female.
    #[value(name = "F", alias = "f")]
    F,
}

/// Arguments of `tscns cf make`.
#[derive(Debug, clap::Args)]
pub struct MakeArgs {
    /// Surname (accents, spaces and apostrophes are handled).
    #[arg(long)]
    pub surname: String,
    /// Given name(s).
    #[arg(long = "given-name")]
    pub given_name: String,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub birth: Date,
    /// Sex, M or F.
    #[arg(long, value_enum)]
    pub sex: SexArg,
    /// Belfiore code of the birth municipality (e.g. H501 for Rome), or Z + 3 digits for a
    /// foreign country.
    #[arg(long, value_parser = parse_place)]
    pub place: String,
}

fn parse_date(s: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &format).map_err(|e| format!("expected YYYY-MM-DD ({e})"))
}

fn parse_place(s: &str) -> Result<String, String> {
    let u = s.trim().to_ascii_uppercase();
    let b = u.as_bytes();
    if b.len() == 4 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit) {
        Ok(u)
    } else {
        Err("a Belfiore code is a letter and three digits, e.g. H501".into())
    }
}

/// Runs `tscns cf`.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Check(args) => check(args),
        Command::Make(args) => make(args),
    }
}

/// The `tscns cf check --json` object for `input`, dates resolved against `today`.
pub fn check_json(input: &str, today: Date) -> serde_json::Value {
    match CodiceFiscale::parse(input) {
        Ok(cf) => json!({
            "input": input,
            "valid": true,
            "canonical": cf.canonical().as_str(),
            "omocodic": cf.is_omocodic(),
            "birth_date": cf.birth_date(today).map(|d| d.to_string()),
            "sex": cf.sex().as_str(),
            "birthplace_code": cf.birthplace_code(),
            "error": null,
        }),
        Err(e) => json!({
            "input": input,
            "valid": false,
            "canonical": null,
            "omocodic": null,
            "birth_date": null,
            "sex": null,
            "birthplace_code": null,
            "error": e.to_string(),
        }),
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let today = OffsetDateTime::now_utc().date();
    let parsed = CodiceFiscale::parse(&args.code);
    if args.json {
        say!("{:#}", check_json(&args.code, today));
    } else {
        match &parsed {
            Ok(cf) => {
                say!("{}: valid", cf.as_str());
                if cf.is_omocodic() {
                    say!("  omocodic, canonical form {}", cf.canonical());
                }
                if let Some(d) = cf.birth_date(today) {
                    say!("  born {d}");
                }
                let sex = match cf.sex() {
                    Sex::Male => "male",
                    Sex::Female => "female",
                };
                say!("  sex {} ({sex})", cf.sex());
                say!(
                    "  birthplace code {}{}",
                    cf.birthplace_code(),
                    if cf.born_abroad() { " (abroad)" } else { "" }
                );
            }
            Err(e) => eprintln!("{}: invalid: {e}", args.code.trim()),
        }
    }
    if parsed.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn make(args: MakeArgs) -> ExitCode {
    let sex = match args.sex {
        SexArg::M => Sex::Male,
        SexArg::F => Sex::Female,
    };
    match CodiceFiscale::compute(
        &args.surname,
        &args.given_name,
        args.birth,
        sex,
        &args.place,
    ) {
        Ok(cf) => {
            say!("{cf}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tscns cf make: {e}");
            ExitCode::from(1)
        }
    }
}
