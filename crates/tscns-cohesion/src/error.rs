//! The one error type of this crate.

/// Everything that can go wrong on either side of a Cohesion login.
///
/// Messages say what happened and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service provider's configuration is inconsistent or incomplete.
    #[error("invalid Cohesion configuration: {0}")]
    Config(String),

    /// A document from outside (callback, profile, page) is not well-formed or breaks a limit.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which document (e.g. "callback `auth` parameter").
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A document declared a DTD or entities: never accepted (XML bombs, external entities).
    #[error("{what} contains a DTD or entity declaration, which is never accepted")]
    DtdRejected {
        /// Which document.
        what: &'static str,
    },

    /// A document is larger than the limit for its kind.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Which document.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// Cohesion said the login did not succeed (`esito_auth_sso` not `OK`).
    #[error("Cohesion reports the login did not succeed (esito_auth_sso = {0:?}); the citizen must log in again")]
    LoginNotSuccessful(String),

    /// The callback's session id was already redeemed once: a replayed callback.
    #[error(
        "this Cohesion session id was already used once (replayed callback); start a new login"
    )]
    Replay,

    /// The replay store cannot record one more redeemed callback (it is full of live entries). The
    /// login is refused because it cannot be made single-use, not because it is a replay.
    #[error("the site cannot record one more Cohesion login right now (its replay store is full); try again in a few minutes")]
    ReplayStoreFull,

    /// Too many callbacks that Cohesion did not confirm arrived recently: this one was refused
    /// without asking Cohesion (see `SpConfigBuilder::callback_rate_limit`).
    #[error("too many unconfirmed Cohesion logins arrived in the last seconds; try again shortly")]
    RateLimited,

    /// Cohesion answered GetCredential with `<AUTH>NO</AUTH>` or without a profile.
    #[error("Cohesion refused the credential request ({0}); the session is unknown, expired or logged out: log in again")]
    CredentialRefused(String),

    /// The XML signature over the profile is missing, malformed or does not verify.
    #[error("the profile's XML signature is not valid: {0}")]
    Signature(String),

    /// The profile's codice fiscale is not the one the callback named.
    #[error("the profile belongs to {profile:?} but the callback named {callback:?}")]
    IdentityMismatch {
        /// The user in the callback.
        callback: String,
        /// The identity in the profile.
        profile: String,
    },

    /// The citizen logged in with a weaker method than the site requires.
    #[error("the citizen logged in with {got} but this site requires {required}")]
    InsufficientLevel {
        /// What was received (`tipo_autenticazione`).
        got: String,
        /// What the configuration allows.
        required: String,
    },

    /// The profile's token is older than the allowed age (60 minutes by default).
    #[error(
        "the Cohesion token is {age_secs} s old, more than the {max_secs} s allowed: log in again"
    )]
    Expired {
        /// Age of the token in seconds.
        age_secs: i64,
        /// The limit in seconds.
        max_secs: i64,
    },

    /// The profile's timestamp is in the future beyond the allowed clock skew.
    #[error("the Cohesion token's timestamp is {0} s in the future: check the server clock")]
    FromTheFuture(i64),

    /// A network or HTTP error talking to Cohesion (or to the site, on the citizen's side).
    #[error("HTTP error talking to {host}: {source}")]
    Http {
        /// The host we talked to.
        host: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// An HTTP answer had an unexpected status.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },

    /// TLS setup failed (certificates, keys).
    #[error("TLS setup failed: {0}")]
    Tls(String),

    /// A file could not be read or written.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The citizen-side login could not continue (a page did not contain what Cohesion pages contain).
    #[error("the login could not continue: {0}")]
    Flow(String),

    /// The smart-card login is on a host that may not see the card's certificate (not in the
    /// allowlist of Cohesion hosts).
    #[error("the smart-card login is on {host}, which is not an allowed Cohesion host: the card's certificate is never shown to it")]
    HostNotAllowed {
        /// The host the login page pointed at.
        host: String,
    },

    /// The page that should hand the login back to the site posts it to another origin (scheme,
    /// host or port) than the one the login started from: the callback (the citizen's Cohesion
    /// session ids) is never sent there.
    #[error("the login form posts the Cohesion callback to {got}, not to {expected} where the login started; refused")]
    CallbackElsewhere {
        /// The origin the login started from (`scheme://host:port`).
        expected: String,
        /// The origin the form posts to.
        got: String,
    },

    /// The callback would go over plain `http` to a host that is not loopback: the citizen's
    /// Cohesion session ids (bearer tokens) would cross the network in clear. Start the login from
    /// the site's `https` address.
    #[error("the Cohesion callback would be posted over plain http to {origin}; refused (use the site's https address)")]
    CallbackNotHttps {
        /// The origin the form posts to.
        origin: String,
    },

    /// The signing key or card failed during the TLS client authentication.
    #[error("the card or key could not authenticate: {0}")]
    Key(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }
}
