//! Cohesion SSO, the single sign-on of Regione Marche's municipalities: the service provider's side
//! (a site that logs citizens in), the citizen's side (a program that logs in with a TS-CNS smart
//! card, feature `citizen`) and an emulator of Cohesion itself (feature `emulator`).
//!
//! The protocol, as the public Cohesion libraries and docs describe it:
//! 1. the site sends the browser to Cohesion with a `dsAuth` document ([`ServiceProvider::login_url`]);
//! 2. after the login Cohesion's page auto-posts `auth` to the site's `url_validate`: this callback is
//!    **not signed**, so it parses into an [`UntrustedCallback`] that cannot log anybody in;
//! 3. the site asks Cohesion server-to-server (GetCredential) for the profile
//!    ([`ServiceProvider::redeem`]); in SAML mode the profile is XML-signed and verified against the
//!    Cohesion certificate the site configured; then the relying-party checks run (codice fiscale
//!    equals the callback's user, authentication level, token age, single use);
//! 4. LogoutSito ends the site session ([`ServiceProvider::logout_sito`]).
//!
//! ```
//! use tscns_cohesion::{AuthRestriction, Environment, Mode, ServiceProvider, SpConfig};
//!
//! let config = SpConfig::builder()
//!     .environment(Environment::Production)
//!     .site_id("COMUNE_DI_ESEMPIO")
//!     .mode(Mode::Classic)
//!     .allow(AuthRestriction::PasswordPin)
//!     .allow(AuthRestriction::SmartCard)
//!     .url_validate("https://comune.example/cohesion/callback")
//!     .build()?;
//! let sp = ServiceProvider::new(config)?;
//! let url = sp.login_url()?;
//! assert!(url.as_str().starts_with("https://cohesion2.regione.marche.it/sso/Check.aspx?auth="));
//!
//! // Whatever arrives at url_validate is untrusted until GetCredential confirms it:
//! assert!(tscns_cohesion::UntrustedCallback::parse("bm90IHhtbA==").is_err());
//! # Ok::<(), tscns_cohesion::Error>(())
//! ```
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

mod auth_doc;
#[cfg(feature = "citizen")]
pub mod citizen;
mod clock;
mod config;
// Private: the verifier accepts only Cohesion's one enveloping shape, which is no general
// XML-DSig API; users get its result through `ServiceProvider::redeem`.
mod dsig;
#[cfg(feature = "emulator")]
pub mod emulator;
mod error;
mod pem;
mod profile;
mod ratelimit;
pub use ratelimit::client_prefix;
mod redirect;
mod replay;
#[cfg(any(test, feature = "emulator"))]
mod signer;
mod sp;
#[cfg(feature = "axum")]
pub mod web;
mod xml;

pub use auth_doc::{DsAuth, AUTH_ELEMENTS, AUTH_NS, CALLBACK_EXTRAS};
pub use clock::{format_timestamp, parse_timestamp, Clock, ManualClock, SystemClock};
pub use config::{
    AuthRestriction, Checks, Eidas, Environment, FederationProtocol, Mode, Purpose,
    SignaturePolicy, SpConfig, SpConfigBuilder, UserType, DEFAULT_CALLBACK_BURST,
    DEFAULT_CALLBACK_CLIENTS, DEFAULT_CALLBACK_PER_SECOND,
};
pub use error::{Error, Result};
pub use profile::{
    AuthLevel, AuthenticationType, Profile, UserProfile, CLASSIC_FIELDS, SAML_FIELDS,
};
pub use redirect::same_origin_path;
pub use replay::{Claim, MemoryReplayStore, ReplayStore, DEFAULT_CAPACITY};
#[cfg(feature = "emulator")]
pub use signer::ProfileSigner;
pub use sp::{
    check_level, CohesionSession, LoggedIn, ServiceProvider, UntrustedCallback,
    MAX_ASPNET_SESSION_ID_LEN, MAX_SSO_SESSION_ID_LEN,
};
pub use xml::{MAX_CALLBACK_BYTES, MAX_PROFILE_BYTES};

/// Re-exported for callers that configure URLs.
pub use url::Url;
