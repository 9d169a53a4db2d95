//! `tscns cf` (owned by the tscns-cert work; placeholder until it lands).

use std::process::ExitCode;

/// Subcommands of `tscns cf`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `tscns cf`.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {}
}
