//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while building or serving a simulated card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The profile is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("the card profile is not valid: {message}")]
    ProfileSyntax {
        /// The TOML parser's message (it names the line, the key and what was expected).
        message: String,
    },
    /// A profile value has the right type but is not acceptable.
    #[error("profile key `{key}`: {reason}")]
    ProfileValue {
        /// The dotted key, e.g. `personal_data.codice_fiscale`.
        key: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// No built-in profile has this name.
    #[error("there is no built-in profile called {name:?} and no profile file at that path: choose one of {known}, or give the path of a TOML profile")]
    UnknownBuiltinProfile {
        /// The name asked for.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// "read" or "write" (and what).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Building a certificate of the test PKI failed.
    #[error("the test PKI could not issue a certificate: {reason}")]
    Pki {
        /// What failed.
        reason: String,
    },
    /// An RSA operation of the simulated card failed.
    #[error("RSA operation failed: {reason}")]
    Rsa {
        /// What failed.
        reason: String,
    },
    /// The vpcd port of pcscd could not be reached or the link broke.
    #[error(
        "cannot reach pcscd's vpcd reader on 127.0.0.1:{port}: {reason} \
         (is pcscd running with the vpcd driver? run scripts/test, or start it with `pcscd -f &`)"
    )]
    Vpcd {
        /// The TCP port of the vpcd reader.
        port: u16,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn value(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::ProfileValue {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn pki(reason: impl std::fmt::Display) -> Self {
        Error::Pki {
            reason: reason.to_string(),
        }
    }
}
