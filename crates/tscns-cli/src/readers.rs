//! `tscns readers` (owned by the tscns-apdu work; placeholder until it lands).

use std::process::ExitCode;

/// Arguments of `tscns readers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tscns readers`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("tscns readers: not implemented yet");
    ExitCode::from(1)
}
