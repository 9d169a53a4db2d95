//! The one error type of tscns-pkcs11.

use std::path::PathBuf;

use cryptoki::error::RvError;

fn tries(t: &Option<u8>) -> String {
    match t {
        Some(1) => "1 try left".to_owned(),
        Some(n) => format!("{n} tries left"),
        None => "the token does not say how many tries are left".to_owned(),
    }
}

/// Everything that can go wrong signing through a PKCS#11 module.
///
/// PIN messages use the same words as the card driver (`tscns-card`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No module path was given and none of the usual install paths holds one.
    #[error(
        "no PKCS#11 module found: install OpenSC (package opensc-pkcs11) or your region's card \
         software, or set TSCNS_PKCS11_MODULE to the module's path (looked in: {looked_in})"
    )]
    NoModule {
        /// The paths tried, comma separated.
        looked_in: String,
    },
    /// The module file could not be loaded.
    #[error("cannot load the PKCS#11 module {path}: {reason}")]
    Load {
        /// The module path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No token (card) is present in any slot of the module.
    #[error("no card or token found through {module}: insert the card in the reader")]
    NoToken {
        /// The module path.
        module: String,
    },
    /// No certificate matched what was asked for.
    #[error("no certificate {wanted} on the tokens of {module}")]
    NoCertificate {
        /// What was asked (e.g. `for codice fiscale RSSMRA80A01H501U`).
        wanted: String,
        /// The module path.
        module: String,
    },
    /// A certificate was found but no private key with the same CKA_ID.
    #[error("the token has the certificate {label:?} but no private key for it")]
    NoPrivateKey {
        /// The certificate's label.
        label: String,
    },
    /// The PIN has the wrong shape; nothing was sent to the token.
    #[error("invalid PIN: {reason} (nothing was sent to the card)")]
    InvalidPin {
        /// What is wrong.
        reason: String,
    },
    /// The token rejected the PIN.
    #[error("wrong PIN: {}", tries(tries_left))]
    WrongPin {
        /// Tries left, when the token says (PKCS#11 only tells "final try").
        tries_left: Option<u8>,
    },
    /// The PIN is blocked.
    #[error("the PIN is blocked: unblock it with the PUK")]
    PinBlocked,
    /// The key needs a login and none was done.
    #[error("the card wants the PIN before it signs: verify the PIN first")]
    NotLoggedIn,
    /// The token was removed (or the session it held is gone).
    #[error("the card was removed from the reader: insert it again and retry")]
    TokenRemoved,
    /// The token cannot produce this signature with any mechanism it lists.
    #[error("the token cannot sign {what}: it lists none of the mechanisms needed ({mechanisms})")]
    Unsupported {
        /// The signature asked for.
        what: String,
        /// The token's signing mechanisms.
        mechanisms: String,
    },
    /// The token lists a mechanism but refuses it when asked to sign (OpenSC lists PSS for cards
    /// that cannot do it). Signing falls back to the next mechanism; this error means none was left.
    #[error("the token refused the {mechanism} mechanism it lists")]
    MechanismRefused {
        /// The mechanism.
        mechanism: String,
    },
    /// Every signing mechanism the token lists was refused for this key (OpenSC 0.23 signs only with
    /// 1024-bit TS-CNS keys, for example).
    #[error(
        "the token lists signing mechanisms ({mechanisms}) but refuses all of them for this key: \
         use the card directly, without PKCS#11, or another PKCS#11 module"
    )]
    NoWorkingMechanism {
        /// The mechanisms the token lists.
        mechanisms: String,
    },
    /// A certificate on the token could not be parsed.
    #[error("the certificate {label:?} on the token is unusable: {reason}")]
    BadCertificate {
        /// The certificate's label.
        label: String,
        /// Why.
        reason: String,
    },
    /// Any other PKCS#11 failure.
    #[error("the PKCS#11 module failed in {operation}: {rv}")]
    Pkcs11 {
        /// What we were doing.
        operation: &'static str,
        /// The module's return value.
        rv: String,
    },
    /// Building a host-side signature block failed.
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Padding(#[from] tscns_tls::padding::PaddingError),
}

impl Error {
    /// Maps a cryptoki error from `operation` to a citizen-readable error. PIN errors are mapped at
    /// login, where the token's flags tell how many tries are left.
    pub(crate) fn from_cryptoki(operation: &'static str, e: cryptoki::error::Error) -> Self {
        match e {
            cryptoki::error::Error::Pkcs11(rv, _) => Self::from_rv(operation, rv),
            other => Self::Pkcs11 {
                operation,
                rv: other.to_string(),
            },
        }
    }

    pub(crate) fn from_rv(operation: &'static str, rv: RvError) -> Self {
        match rv {
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::TokenNotRecognized => Self::TokenRemoved,
            RvError::PinLocked => Self::PinBlocked,
            RvError::PinIncorrect => Self::WrongPin { tries_left: None },
            RvError::PinLenRange => Self::InvalidPin {
                reason: "its length is not one the token accepts".into(),
            },
            RvError::UserNotLoggedIn => Self::NotLoggedIn,
            other => Self::Pkcs11 {
                operation,
                rv: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rv_mapping_says_what_to_do() {
        assert!(matches!(
            Error::from_rv("login", RvError::PinLocked),
            Error::PinBlocked
        ));
        assert!(matches!(
            Error::from_rv("sign", RvError::DeviceRemoved),
            Error::TokenRemoved
        ));
        assert!(matches!(
            Error::from_rv("sign", RvError::SessionHandleInvalid),
            Error::TokenRemoved
        ));
        assert_eq!(
            Error::WrongPin {
                tries_left: Some(1)
            }
            .to_string(),
            "wrong PIN: 1 try left"
        );
        assert_eq!(
            Error::from_rv("login", RvError::PinLocked).to_string(),
            "the PIN is blocked: unblock it with the PUK"
        );
    }
}
