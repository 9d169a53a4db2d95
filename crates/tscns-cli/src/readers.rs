//! `tscns readers`: list the PC/SC readers, whether a card is present, and its ATR.

#[cfg(feature = "pcsc")]
use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

/// Arguments of `tscns readers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: an array of {"name", "card_present", "atr"} (ATR in uppercase hex, or null).
    #[arg(long)]
    pub json: bool,
}

/// One reader in `--json` output.
#[cfg_attr(not(feature = "pcsc"), allow(dead_code))]
#[derive(Debug, Serialize)]
struct ReaderJson<'a> {
    name: &'a str,
    card_present: bool,
    atr: Option<String>,
}

/// Uppercase hex without spaces, e.g. `3B8A80` (the ATR in `tscns readers` and `tscns card info`).
pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// Runs `tscns readers`.
#[cfg(feature = "pcsc")]
pub fn run(args: Args) -> ExitCode {
    let readers = match tscns_apdu::pcsc::list_readers() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tscns readers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`tscns readers | head`) is not an error worth a message.
    let _ = if args.json {
        let list: Vec<ReaderJson<'_>> = readers
            .iter()
            .map(|r| ReaderJson {
                name: &r.name,
                card_present: r.card_present,
                atr: r.atr.as_deref().map(hex),
            })
            .collect();
        match serde_json::to_string_pretty(&list) {
            Ok(s) => writeln!(out, "{s}"),
            Err(e) => {
                eprintln!("tscns readers: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else if readers.is_empty() {
        writeln!(
            out,
            "No smart-card reader found: connect a reader (PC/SC is running)."
        )
    } else {
        readers
            .iter()
            .try_for_each(|r| match (&r.atr, r.card_present) {
                (Some(atr), _) => writeln!(out, "{}: card present, ATR {}", r.name, hex(atr)),
                (None, true) => writeln!(out, "{}: card present (no ATR: mute card?)", r.name),
                (None, false) => writeln!(out, "{}: no card", r.name),
            })
    };
    ExitCode::SUCCESS
}

/// Runs `tscns readers` (this build has no PC/SC support).
#[cfg(not(feature = "pcsc"))]
pub fn run(_args: Args) -> ExitCode {
    eprintln!("tscns readers: this tscns was built without PC/SC support (feature `pcsc`)");
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_uppercase_without_spaces() {
        assert_eq!(hex(&[0x3B, 0x8a, 0x00]), "3B8A00");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn json_shape() {
        let v = vec![
            ReaderJson {
                name: "Virtual PCD 00 00",
                card_present: true,
                atr: Some("3B00".into()),
            },
            ReaderJson {
                name: "Virtual PCD 00 01",
                card_present: false,
                atr: None,
            },
        ];
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"[{"name":"Virtual PCD 00 00","card_present":true,"atr":"3B00"},{"name":"Virtual PCD 00 01","card_present":false,"atr":null}]"#
        );
    }
}
