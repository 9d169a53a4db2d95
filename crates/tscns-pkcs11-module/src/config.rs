//! The module's settings: environment variables first, then `~/.config/tscns/pkcs11.toml`, then
//! `/etc/tscns/pkcs11.toml`.
//!
//! ```toml
//! # Ask for the PIN through this pinentry program (Assuan, as gpg-agent does): the token then
//! # has a protected authentication path and needs no login before use.
//! pinentry = "/usr/bin/pinentry-gnome3"
//! # Trace the calls and their return codes here (never a PIN, never the data signed).
//! log = "/tmp/tscns-pkcs11.log"
//! # Only readers whose name contains this text become slots.
//! reader = "Virtual PCD"
//! # Ask the card for the PIN tries left with a data-less VERIFY when a card is inserted. Not
//! # confirmed for every CNS card to be harmless, so off by default; without it the tries left
//! # are known after the first wrong PIN.
//! query_pin_tries = true
//! ```
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variable naming the pinentry program.
pub const ENV_PINENTRY: &str = "TSCNS_PKCS11_PINENTRY";
/// Environment variable naming the trace file.
pub const ENV_LOG: &str = "TSCNS_PKCS11_LOG";
/// Environment variable: only readers whose name contains it are slots.
pub const ENV_READER: &str = "TSCNS_PKCS11_READER";
/// Environment variable: `1` turns `query_pin_tries` on, `0` off.
pub const ENV_QUERY_PIN_TRIES: &str = "TSCNS_PKCS11_QUERY_PIN_TRIES";

/// The settings in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The pinentry program (protected authentication path mode when set).
    pub pinentry: Option<PathBuf>,
    /// The trace file.
    pub log: Option<PathBuf>,
    /// Reader name filter.
    pub reader: Option<String>,
    /// Whether to ask the card for the PIN tries left with a data-less VERIFY.
    #[serde(default)]
    pub query_pin_tries: bool,
}

impl Config {
    /// Parses a configuration file's text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The settings from the environment and the first configuration file that exists. A file
    /// that does not parse is ignored (a module cannot print; the trace says why).
    pub fn load() -> (Config, Option<String>) {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let files = [
            home.map(|h| h.join(".config/tscns/pkcs11.toml")),
            Some(PathBuf::from("/etc/tscns/pkcs11.toml")),
        ];
        let mut warning = None;
        let mut config = Config::default();
        for f in files.iter().flatten() {
            match read(f) {
                Some(Ok(c)) => {
                    config = c;
                    break;
                }
                Some(Err(e)) => {
                    warning = Some(format!("{} ignored: {e}", f.display()));
                    break;
                }
                None => {}
            }
        }
        config.apply_env(|k| std::env::var(k).ok());
        (config, warning)
    }

    /// Environment variables override the file.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let set = |v: Option<String>| v.filter(|s| !s.is_empty());
        if let Some(p) = set(get(ENV_PINENTRY)) {
            self.pinentry = Some(PathBuf::from(p));
        }
        if let Some(p) = set(get(ENV_LOG)) {
            self.log = Some(PathBuf::from(p));
        }
        if let Some(r) = set(get(ENV_READER)) {
            self.reader = Some(r);
        }
        match set(get(ENV_QUERY_PIN_TRIES)).as_deref() {
            Some("1" | "true" | "yes") => self.query_pin_tries = true,
            Some("0" | "false" | "no") => self.query_pin_tries = false,
            _ => {}
        }
    }

    /// Whether the token asks for the PIN itself (protected authentication path).
    pub fn pinentry_mode(&self) -> bool {
        self.pinentry.is_some()
    }
}

fn read(path: &Path) -> Option<Result<Config, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(Config::from_toml(&text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut c = Config::from_toml("pinentry = \"/usr/bin/pinentry\"\nquery_pin_tries = true\n")
            .unwrap();
        assert!(c.pinentry_mode());
        c.apply_env(|k| match k {
            ENV_READER => Some("Virtual PCD 00 01".into()),
            ENV_QUERY_PIN_TRIES => Some("0".into()),
            ENV_PINENTRY => Some(String::new()),
            _ => None,
        });
        assert_eq!(c.reader.as_deref(), Some("Virtual PCD 00 01"));
        assert!(!c.query_pin_tries);
        assert_eq!(c.pinentry.as_deref(), Some(Path::new("/usr/bin/pinentry")));
        assert!(Config::from_toml("pin = \"12345\"").is_err());
    }
}
