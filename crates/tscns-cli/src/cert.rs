//! `tscns cert` (owned by the tscns-cert work; placeholder until it lands).

use std::process::ExitCode;

/// Subcommands of `tscns cert`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `tscns cert`.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {}
}
