//! Where the card's signing key comes from, for the commands that sign a TLS handshake
//! (`tscns fetch`, `tscns cohesion login`): one set of arguments and one way to open the key.
//!
//! The key comes from the card in a PC/SC reader (`--reader`, the default), from the in-process
//! simulated card (`--simulated [PROFILE]`) or from a PKCS#11 module (`--pkcs11 [MODULE]`). The PIN
//! is asked once, after the card or token was found and before anything is signed: with
//! `--pin-stdin` the first line of standard input, read without leaving copies behind
//! ([`crate::card::read_stdin_secrets`]), else a no-echo prompt on the terminal
//! ([`SecretReader`]).

use std::sync::Arc;

use tscns_tls::SigningKey;
use zeroize::Zeroizing;

use crate::card::SecretReader;

type Fail = String;

fn fail(e: impl std::fmt::Display) -> Fail {
    e.to_string()
}

/// Which card or token signs, and how the PIN is entered (flattened into the command's arguments).
#[derive(Debug, clap::Args)]
pub struct KeySourceArgs {
    /// Use the in-process simulated card; PROFILE is a tscns-sim built-in profile or a profile
    /// file (default: `default`).
    #[arg(long, value_name = "PROFILE", num_args = 0..=1, default_missing_value = "default",
          conflicts_with_all = ["reader", "pkcs11"])]
    pub simulated: Option<String>,
    /// PC/SC reader with the card (default: the first reader with a card).
    #[arg(long, value_name = "READER", conflicts_with = "pkcs11")]
    pub reader: Option<String>,
    /// Sign through this PKCS#11 module (without a value: $TSCNS_PKCS11_MODULE, then the usual
    /// OpenSC and vendor install paths).
    #[arg(long, value_name = "MODULE", num_args = 0..=1, default_missing_value = "auto")]
    pub pkcs11: Option<String>,
    /// With --pkcs11: the certificate for this codice fiscale (default: the CNS one).
    #[arg(long, value_name = "CF")]
    pub cf: Option<String>,
    /// Read the PIN from the first line of standard input instead of prompting on the terminal.
    #[arg(long)]
    pub pin_stdin: bool,
}

/// Opens the key the arguments name and logs in with the PIN (asked once, never retried): the
/// simulated card, else the PKCS#11 module, else the card in a PC/SC reader.
pub fn signing_key(args: &KeySourceArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    if let Some(profile) = &args.simulated {
        simulated_key(profile, args)
    } else if let Some(module) = &args.pkcs11 {
        pkcs11_key(module, args)
    } else {
        reader_key(args)
    }
}

/// The PIN: with `--pin-stdin` the first line of standard input without its trailing whitespace
/// (no input is an empty PIN, which the PIN check then refuses), else a no-echo prompt.
fn read_pin(args: &KeySourceArgs) -> Result<Zeroizing<String>, Fail> {
    if args.pin_stdin {
        let all = crate::card::read_stdin_secrets()
            .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
        let first = all.lines().next().unwrap_or_default().trim_end();
        return Ok(Zeroizing::new(first.to_owned()));
    }
    SecretReader::prompting().read("PIN")
}

fn card_key<T: tscns_apdu::Transport + Send + 'static>(
    card: tscns_card::CnsCard<T>,
    args: &KeySourceArgs,
) -> Result<Arc<dyn SigningKey>, Fail> {
    let key = tscns_card::tls::CardKey::new(card).map_err(fail)?;
    let pin = read_pin(args)?;
    let pin = tscns_card::Pin::new(&pin).map_err(fail)?;
    key.card().verify_pin(&pin).map_err(fail)?;
    Ok(Arc::new(key))
}

fn simulated_key(profile: &str, args: &KeySourceArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    let card = tscns_card::CnsCard::open(crate::simulated::transport(profile)?).map_err(fail)?;
    card_key(card, args)
}

fn pkcs11_key(module: &str, args: &KeySourceArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    use tscns_pkcs11::{KeySelector, Module, Pin, Pkcs11Key};
    let module = if module == "auto" {
        Module::discover()
    } else {
        Module::open(std::path::Path::new(module))
    }
    .map_err(fail)?;
    let selector = match &args.cf {
        Some(cf) => KeySelector::CodiceFiscale(cf.clone()),
        None => KeySelector::Cns,
    };
    let key = Arc::new(Pkcs11Key::open(&module, &selector).map_err(fail)?);
    // Ours resets the card at logout; another module may not (OpenSC's TS-CNS driver does not).
    let ours = module
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("libtscns_pkcs11_module"));
    // Registered before the login, so that every way out of the program logs out.
    PKCS11_KEYS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((
            Arc::clone(&key),
            (!ours).then(|| module.path().display().to_string()),
        ));
    let pin = read_pin(args)?;
    key.login(&Pin::new(&pin).map_err(fail)?).map_err(fail)?;
    Ok(key)
}

/// The PKCS#11 keys this process opened, for [`logout_pkcs11_keys`], each with the path of its
/// module when that is not tscns' own.
type OpenedKey = (Arc<tscns_pkcs11::Pkcs11Key>, Option<String>);
static PKCS11_KEYS: std::sync::Mutex<Vec<OpenedKey>> = std::sync::Mutex::new(Vec::new());

/// Logs out of every PKCS#11 key the program opened (`--pkcs11`), explicitly, at the end of the
/// program and on a signal: the token forgets the PIN before the process exits, whoever still
/// holds the key. (A third-party module may still leave the card unlocked afterwards: see
/// `tscns_pkcs11::Pkcs11Key`.)
pub fn logout_pkcs11_keys() {
    let keys = std::mem::take(
        &mut *PKCS11_KEYS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for (key, third_party) in keys {
        let was_logged_in = key.is_logged_in().unwrap_or(true);
        if let Err(e) = key.logout() {
            eprintln!("tscns: logging out of the PKCS#11 token: {e}");
        }
        if let (true, Some(path)) = (was_logged_in, third_party) {
            eprintln!(
                "tscns: note: logged out of the token, but the module {path} may keep the card \
                 unlocked for other programs (OpenSC does): remove the card when you are done"
            );
        }
    }
}

#[cfg(feature = "pcsc")]
fn reader_key(args: &KeySourceArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    use tscns_apdu::pcsc::PcscTransport;
    let t = match &args.reader {
        Some(r) => PcscTransport::connect(r),
        None => PcscTransport::connect_first(),
    }
    .map_err(fail)?;
    let card = tscns_card::CnsCard::open(t).map_err(fail)?;
    card_key(card, args)
}

#[cfg(not(feature = "pcsc"))]
fn reader_key(_args: &KeySourceArgs) -> Result<Arc<dyn SigningKey>, Fail> {
    Err("this tscns was built without PC/SC support: use --simulated or --pkcs11".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        key: KeySourceArgs,
    }

    fn parse(args: &[&str]) -> Result<KeySourceArgs, clap::error::ErrorKind> {
        Cli::try_parse_from(std::iter::once("tscns").chain(args.iter().copied()))
            .map(|c| c.key)
            .map_err(|e| e.kind())
    }

    #[test]
    fn values_left_out_take_the_documented_defaults() {
        let a = parse(&["--simulated"]).unwrap();
        assert_eq!(a.simulated.as_deref(), Some("default"));
        assert!(a.reader.is_none() && a.pkcs11.is_none() && !a.pin_stdin);
        let a = parse(&["--pkcs11", "--cf", "RSSMRA80A01H501U", "--pin-stdin"]).unwrap();
        assert_eq!(a.pkcs11.as_deref(), Some("auto"));
        assert_eq!(a.cf.as_deref(), Some("RSSMRA80A01H501U"));
        assert!(a.pin_stdin);
    }

    #[test]
    fn one_source_at_a_time() {
        use clap::error::ErrorKind::ArgumentConflict;
        assert_eq!(
            parse(&["--simulated", "--pkcs11"]).unwrap_err(),
            ArgumentConflict
        );
        assert_eq!(
            parse(&["--simulated", "p.toml", "--reader", "R"]).unwrap_err(),
            ArgumentConflict
        );
        assert_eq!(
            parse(&["--reader", "R", "--pkcs11"]).unwrap_err(),
            ArgumentConflict
        );
        assert_eq!(
            parse(&["--pkcs11", "m.so", "--reader", "R"]).unwrap_err(),
            ArgumentConflict
        );
        assert!(parse(&["--reader", "R"]).is_ok());
        assert!(parse(&[]).is_ok());
    }
}
