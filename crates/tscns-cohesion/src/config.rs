//! The service provider's configuration: which Cohesion, which site, which logins are acceptable.
//!
//! Built with [`SpConfig::builder`]; every inconsistency is an error from [`SpConfigBuilder::build`],
//! never a surprise at login time.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::replay::{MemoryReplayStore, ReplayStore};

/// Which Cohesion installation (Regione Marche's CohesionID-Docs, Hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Environment {
    /// `https://cohesion2.regione.marche.it`.
    Production,
    /// `https://cohesioncollaudo.regione.marche.it` (test; SPID/CIE do not work there).
    Collaudo,
    /// `https://cohesion2sviluppo.regione.marche.it` (development).
    Development,
    /// Any other base URL, e.g. the emulator (`https://127.0.0.1:8443`).
    Custom(Url),
}

impl Environment {
    /// The base URL (scheme, host, port; no path).
    pub fn base_url(&self) -> Result<Url> {
        let s = match self {
            Environment::Production => "https://cohesion2.regione.marche.it/",
            Environment::Collaudo => "https://cohesioncollaudo.regione.marche.it/",
            Environment::Development => "https://cohesion2sviluppo.regione.marche.it/",
            Environment::Custom(u) => return Ok(u.clone()),
        };
        Url::parse(s).map_err(|e| Error::Config(format!("{s}: {e}")))
    }

    /// The entityID of Cohesion's own IdP in this environment (to skip the WAYF chooser).
    ///
    /// Source: CohesionID-Docs, Rinnovo-del-Token.md (development uses `cohesion.regione.marche.it:idp`).
    pub fn cohesion_idp_entity_id(&self) -> &'static str {
        match self {
            Environment::Development => "cohesion.regione.marche.it:idp",
            _ => "cohesion2.regione.marche.it:idp",
        }
    }
}

/// Classic SSO or the SAML2 / federated "SPManager" front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// `sso/Check.aspx` (or `SA/AccediCohesion.aspx` with SSO off); profile from `SSO/webCheckSessionSSO.aspx`.
    Classic,
    /// `SPManager/WAYF.aspx`; profile from `SPManager/webCheckSessionSSO.aspx`, XML-signed.
    Saml {
        /// Add `entityID=<Cohesion IdP>` so the citizen goes straight to Cohesion's own login page
        /// (password, password+PIN, smart card) instead of the SPID/CIE/eIDAS chooser.
        direct_to_cohesion_idp: bool,
    },
}

/// One of the `AuthRestriction` values (Regione Marche's CohesionID-Docs, Request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AuthRestriction {
    /// 0: user and password (SPID level 1).
    Password = 0,
    /// 1: password and PIN or OTP (SPID level 2).
    PasswordPin = 1,
    /// 2: smart card, i.e. TS-CNS / CIE (SPID level 3).
    SmartCard = 2,
    /// 3: Windows domain of the Regione (internal users only).
    Domain = 3,
}

impl AuthRestriction {
    /// The digit used in `AuthRestriction=…`.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// Parses one digit.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Self::Password),
            1 => Some(Self::PasswordPin),
            2 => Some(Self::SmartCard),
            3 => Some(Self::Domain),
            _ => None,
        }
    }
    /// Parses a `0,1,2,3` list (any order; empty items refused).
    pub fn parse_list(s: &str) -> Option<BTreeSet<Self>> {
        let mut set = BTreeSet::new();
        for item in s.split(',') {
            let item = item.trim();
            let b = item.as_bytes();
            if b.len() != 1 || !b[0].is_ascii_digit() {
                return None;
            }
            set.insert(Self::from_code(b[0] - b'0')?);
        }
        Some(set)
    }
}

/// `UType`: which kinds of user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserType {
    /// `c`: citizens only; Cohesion's own credentials disabled.
    Citizens,
    /// `d`: public employees only.
    Employees,
    /// `cd`: both (Cohesion's default).
    Both,
}

impl UserType {
    fn code(self) -> &'static str {
        match self {
            UserType::Citizens => "c",
            UserType::Employees => "d",
            UserType::Both => "cd",
        }
    }
}

/// `purpose`: SPID identity kinds accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Purpose {
    /// `PF`: natural person.
    PersonaFisica,
    /// `PG`: legal person.
    PersonaGiuridica,
    /// `LP`: professional.
    LiberoProfessionista,
}

impl Purpose {
    fn code(self) -> &'static str {
        match self {
            Purpose::PersonaFisica => "PF",
            Purpose::PersonaGiuridica => "PG",
            Purpose::LiberoProfessionista => "LP",
        }
    }
}

/// `eidas`: eIDAS login and the codice fiscale check that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eidas {
    /// `eidas=1`: eIDAS enabled, no codice fiscale check.
    NoCheck = 1,
    /// `eidas=2`: simple codice fiscale check.
    SimpleCheck = 2,
    /// `eidas=3`: codice fiscale check with a physical document.
    PhysicalCheck = 3,
}

/// Protocol Cohesion uses towards SPID or CIE (`SpidMode` / `CieMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FederationProtocol {
    /// SAML (Cohesion's default; nothing is sent).
    #[default]
    Saml,
    /// OpenID Connect (`=OIDC`).
    Oidc,
}

/// Which algorithms the profile's XML signature may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignaturePolicy {
    /// RSA with SHA-1 or SHA-256. Cohesion signs with RSA-SHA1 (Regione Marche's CohesionID-Docs, Profile),
    /// so this is the default.
    #[default]
    AllowSha1,
    /// RSA with SHA-256 only (refuses today's Cohesion; for a future one).
    Sha256Only,
}

/// The relying-party checks, all on by default.
///
/// `#[non_exhaustive]`, so that a new check can be added without breaking callers: start from
/// [`Checks::default()`] and change the fields you need (`let mut c = Checks::default();
/// c.replay = false;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checks {
    /// The profile's codice fiscale (or login) equals the callback's `user`.
    pub identity_matches_callback: bool,
    /// `tipo_autenticazione` meets the configured `AuthRestriction`.
    pub level: bool,
    /// Maximum token age (Cohesion tokens live 60 minutes); `None` disables the check.
    pub max_token_age: Option<Duration>,
    /// Tolerated clock skew for timestamps in the future.
    pub max_clock_skew: Duration,
    /// A callback's session id is redeemed at most once.
    pub replay: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            identity_matches_callback: true,
            level: true,
            max_token_age: Some(Duration::from_secs(60 * 60)),
            max_clock_skew: Duration::from_secs(5 * 60),
            replay: true,
        }
    }
}

/// A complete, validated service-provider configuration.
#[derive(Clone)]
pub struct SpConfig {
    pub(crate) environment: Environment,
    pub(crate) base_url: Url,
    pub(crate) site_id: String,
    pub(crate) mode: Mode,
    pub(crate) sso: bool,
    pub(crate) restrictions: BTreeSet<AuthRestriction>,
    pub(crate) user_type: Option<UserType>,
    pub(crate) purposes: BTreeSet<Purpose>,
    pub(crate) eidas: Option<Eidas>,
    pub(crate) spid_mode: FederationProtocol,
    pub(crate) cie_mode: FederationProtocol,
    pub(crate) ipa: Option<String>,
    pub(crate) logout_url: Option<Url>,
    pub(crate) url_validate: Url,
    pub(crate) url_richiesta: Url,
    pub(crate) cohesion_certs: Vec<CertificateDer<'static>>,
    pub(crate) signature_policy: SignaturePolicy,
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) native_roots: bool,
    pub(crate) timeout: Duration,
    pub(crate) checks: Checks,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) replay: Arc<dyn ReplayStore>,
    /// (burst, per second) of unconfirmed callbacks.
    pub(crate) callback_rate: (u32, u32),
    /// How many clients' buckets are kept.
    pub(crate) callback_clients: usize,
}

/// Default burst of unconfirmed callbacks [`crate::ServiceProvider::redeem`] lets through.
pub const DEFAULT_CALLBACK_BURST: u32 = 64;
/// Default refill rate (per second) of unconfirmed callbacks.
pub const DEFAULT_CALLBACK_PER_SECOND: u32 = 16;
/// Default bound on the clients whose rate-limit buckets are kept at once.
pub const DEFAULT_CALLBACK_CLIENTS: usize = 10_000;

impl fmt::Debug for SpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpConfig")
            .field("environment", &self.environment)
            .field("site_id", &self.site_id)
            .field("mode", &self.mode)
            .field("sso", &self.sso)
            .field("restrictions", &self.restrictions)
            .field("url_validate", &self.url_validate.as_str())
            .field("cohesion_certs", &self.cohesion_certs.len())
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

impl SpConfig {
    /// Starts a builder.
    pub fn builder() -> SpConfigBuilder {
        SpConfigBuilder::default()
    }

    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The configured site id (`id_sito`).
    pub fn site_id(&self) -> &str {
        &self.site_id
    }
    /// The accepted `AuthRestriction` values.
    pub fn restrictions(&self) -> &BTreeSet<AuthRestriction> {
        &self.restrictions
    }
    /// The Cohesion base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }
    /// The URL Cohesion posts the callback to.
    pub fn url_validate(&self) -> &Url {
        &self.url_validate
    }

    /// The `stilesheet` value: `;`-separated options (Regione Marche's CohesionID-Docs, Request;
    /// CohesionID-Docs, Parametri-della-Richiesta-di-Autenticazione.md).
    pub fn stilesheet(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let codes: Vec<String> = self
            .restrictions
            .iter()
            .map(|r| r.code().to_string())
            .collect();
        parts.push(format!("AuthRestriction={}", codes.join(",")));
        if let Some(u) = &self.logout_url {
            parts.push(u.to_string());
        }
        if let Some(t) = self.user_type {
            parts.push(format!("UType={}", t.code()));
        }
        if !self.purposes.is_empty() {
            let p: Vec<&str> = self.purposes.iter().map(|p| p.code()).collect();
            parts.push(format!("purpose={}", p.join("|")));
        }
        if let Some(e) = self.eidas {
            parts.push(format!("eidas={}", e as u8));
        }
        if self.spid_mode == FederationProtocol::Oidc {
            parts.push("SpidMode=OIDC".into());
        }
        if self.cie_mode == FederationProtocol::Oidc {
            parts.push("CieMode=OIDC".into());
        }
        if let Some(ipa) = &self.ipa {
            parts.push(format!("IPA={ipa}"));
        }
        if matches!(self.mode, Mode::Saml { .. }) {
            parts.push(format!("SSO={}", u8::from(self.sso)));
        }
        parts.join(";")
    }
}

/// Builder of [`SpConfig`].
#[derive(Default)]
pub struct SpConfigBuilder {
    environment: Option<Environment>,
    site_id: Option<String>,
    mode: Option<Mode>,
    sso: Option<bool>,
    restrictions: BTreeSet<AuthRestriction>,
    user_type: Option<UserType>,
    purposes: BTreeSet<Purpose>,
    eidas: Option<Eidas>,
    spid_mode: FederationProtocol,
    cie_mode: FederationProtocol,
    ipa: Option<String>,
    logout_url: Option<String>,
    url_validate: Option<String>,
    url_richiesta: Option<String>,
    cohesion_certs: Vec<CertificateDer<'static>>,
    cert_errors: Vec<String>,
    signature_policy: SignaturePolicy,
    extra_roots: Vec<CertificateDer<'static>>,
    native_roots: Option<bool>,
    timeout: Option<Duration>,
    checks: Checks,
    clock: Option<Arc<dyn Clock>>,
    replay: Option<Arc<dyn ReplayStore>>,
    callback_rate: Option<(u32, u32)>,
    callback_clients: Option<usize>,
}

impl SpConfigBuilder {
    /// Which Cohesion (required).
    pub fn environment(mut self, env: Environment) -> Self {
        self.environment = Some(env);
        self
    }
    /// The site id Cohesion assigned (`id_sito`, required).
    pub fn site_id(mut self, id: impl Into<String>) -> Self {
        self.site_id = Some(id.into());
        self
    }
    /// Classic or SAML mode (required).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }
    /// Single sign-on on or off (default on).
    pub fn sso(mut self, on: bool) -> Self {
        self.sso = Some(on);
        self
    }
    /// Adds an accepted login kind. At least one is required.
    pub fn allow(mut self, r: AuthRestriction) -> Self {
        self.restrictions.insert(r);
        self
    }
    /// Accepts exactly these login kinds.
    pub fn restrictions(mut self, rs: impl IntoIterator<Item = AuthRestriction>) -> Self {
        self.restrictions = rs.into_iter().collect();
        self
    }
    /// `UType`.
    pub fn user_type(mut self, t: UserType) -> Self {
        self.user_type = Some(t);
        self
    }
    /// Adds a SPID `purpose` (SAML mode only).
    pub fn purpose(mut self, p: Purpose) -> Self {
        self.purposes.insert(p);
        self
    }
    /// Enables eIDAS login (SAML mode only).
    pub fn eidas(mut self, e: Eidas) -> Self {
        self.eidas = Some(e);
        self
    }
    /// `SpidMode` (SAML mode only when OIDC).
    pub fn spid_mode(mut self, p: FederationProtocol) -> Self {
        self.spid_mode = p;
        self
    }
    /// `CieMode` (SAML mode only when OIDC).
    pub fn cie_mode(mut self, p: FederationProtocol) -> Self {
        self.cie_mode = p;
        self
    }
    /// The IPA code of an aggregated administration (SAML mode only).
    pub fn ipa(mut self, code: impl Into<String>) -> Self {
        self.ipa = Some(code.into());
        self
    }
    /// Where Cohesion sends the browser after a logout.
    pub fn logout_url(mut self, url: impl Into<String>) -> Self {
        self.logout_url = Some(url.into());
        self
    }
    /// The site's URL that receives the callback POST (required).
    pub fn url_validate(mut self, url: impl Into<String>) -> Self {
        self.url_validate = Some(url.into());
        self
    }
    /// The site's page Cohesion returns to on error (defaults to `url_validate`).
    pub fn url_richiesta(mut self, url: impl Into<String>) -> Self {
        self.url_richiesta = Some(url.into());
        self
    }
    /// Adds a certificate (PEM or DER) whose key signs the SAML-mode profile. Several may be given
    /// for a rollover. Required in SAML mode.
    pub fn cohesion_certificate(mut self, pem_or_der: &[u8]) -> Self {
        match crate::pem::certificates(pem_or_der) {
            Ok(certs) if !certs.is_empty() => self.cohesion_certs.extend(certs),
            Ok(_) => self
                .cert_errors
                .push("the Cohesion certificate file holds no certificate".into()),
            Err(e) => self.cert_errors.push(e),
        }
        self
    }
    /// Which signature algorithms are accepted.
    pub fn signature_policy(mut self, p: SignaturePolicy) -> Self {
        self.signature_policy = p;
        self
    }
    /// Adds a CA (PEM or DER) to trust for the server-to-server HTTPS calls (e.g. the emulator's).
    pub fn trust_ca(mut self, pem_or_der: &[u8]) -> Self {
        match crate::pem::certificates(pem_or_der) {
            Ok(certs) if !certs.is_empty() => self.extra_roots.extend(certs),
            Ok(_) => self
                .cert_errors
                .push("the CA file holds no certificate".into()),
            Err(e) => self.cert_errors.push(e),
        }
        self
    }
    /// Whether to trust the system's CA store too (default: yes unless a CA was added with
    /// [`trust_ca`](Self::trust_ca)).
    pub fn native_roots(mut self, on: bool) -> Self {
        self.native_roots = Some(on);
        self
    }
    /// Timeout of each server-to-server call (default 15 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Replaces the relying-party checks (all on by default).
    pub fn checks(mut self, c: Checks) -> Self {
        self.checks = c;
        self
    }
    /// The clock used for token age (tests inject one).
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = Some(c);
        self
    }
    /// Where redeemed session ids are remembered (default: in memory, this process only).
    pub fn replay_store(mut self, r: Arc<dyn ReplayStore>) -> Self {
        self.replay = Some(r);
        self
    }

    /// Bounds the callbacks that Cohesion does not confirm, **per client**: each client (IPv4
    /// address, IPv6 /64) may have at most `burst` at once, refilled at `per_second` a second
    /// (defaults [`DEFAULT_CALLBACK_BURST`] and [`DEFAULT_CALLBACK_PER_SECOND`]). A confirmed
    /// login gives its token back, so only forged or stale callbacks count; beyond the limit
    /// `redeem` answers [`Error::RateLimited`] without calling Cohesion. A flood from one client
    /// therefore refuses that client only, when the client's address is passed to
    /// [`ServiceProvider::redeem_from`](crate::ServiceProvider::redeem_from) (the `web` routes do);
    /// callers of plain `redeem` share one bucket. An attacker holding many addresses gets a
    /// bucket for each: that is for a limit in front of the site (reverse proxy, firewall).
    pub fn callback_rate_limit(mut self, burst: u32, per_second: u32) -> Self {
        self.callback_rate = Some((burst, per_second));
        self
    }

    /// How many clients' rate-limit buckets are kept at once (default
    /// [`DEFAULT_CALLBACK_CLIENTS`], at least 1). When the bound is reached, buckets that have
    /// refilled completely are forgotten first, then the least recently used; a forgotten client
    /// starts again with a full bucket.
    pub fn callback_rate_clients(mut self, max: usize) -> Self {
        self.callback_clients = Some(max);
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<SpConfig> {
        let cfg = |m: &str| Error::Config(m.to_owned());
        if let Some(e) = self.cert_errors.first() {
            return Err(Error::Config(e.clone()));
        }
        let environment = self
            .environment
            .ok_or_else(|| cfg("environment is required"))?;
        let base = environment.base_url()?;
        if base.scheme() != "https" {
            return Err(cfg("the Cohesion base URL must use https"));
        }
        if base.host_str().is_none() || base.cannot_be_a_base() {
            return Err(cfg("the Cohesion base URL has no host"));
        }
        let site_id = self.site_id.ok_or_else(|| cfg("site_id is required"))?;
        if site_id.is_empty()
            || site_id.len() > 64
            || !site_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(cfg(
                "site_id must be 1-64 characters of letters, digits, '_', '-' or '.'",
            ));
        }
        let mode = self
            .mode
            .ok_or_else(|| cfg("mode (classic or SAML) is required"))?;
        let saml = matches!(mode, Mode::Saml { .. });
        if self.restrictions.is_empty() {
            return Err(cfg(
                "at least one AuthRestriction (password, password+PIN, smart card, domain) is required",
            ));
        }
        let sso = self.sso.unwrap_or(true);
        if !saml {
            let saml_only = [
                (!self.purposes.is_empty(), "purpose"),
                (self.eidas.is_some(), "eidas"),
                (self.spid_mode == FederationProtocol::Oidc, "SpidMode"),
                (self.cie_mode == FederationProtocol::Oidc, "CieMode"),
                (self.ipa.is_some(), "IPA"),
            ];
            for (set, name) in saml_only {
                if set {
                    return Err(Error::Config(format!(
                        "{name} only works in SAML mode (SPManager): choose Mode::Saml"
                    )));
                }
            }
        }
        if let Mode::Saml {
            direct_to_cohesion_idp: true,
        } = mode
        {
            if self.eidas.is_some() || !self.purposes.is_empty() {
                return Err(cfg(
                    "going straight to the Cohesion IdP skips SPID and eIDAS: purpose/eidas make no sense with it",
                ));
            }
        }
        if self.eidas == Some(Eidas::PhysicalCheck)
            && !self.restrictions.contains(&AuthRestriction::SmartCard)
        {
            return Err(cfg(
                "eidas=3 (codice fiscale checked on a physical support) needs smart-card login allowed",
            ));
        }
        if self.user_type == Some(UserType::Citizens)
            && self
                .restrictions
                .iter()
                .all(|r| *r == AuthRestriction::Domain)
        {
            return Err(cfg(
                "UType=c (citizens only) with only domain login allowed lets nobody in",
            ));
        }
        if let Some(ipa) = &self.ipa {
            if ipa.is_empty() || !ipa.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(cfg("IPA code must be letters, digits or '_'"));
            }
        }
        let parse_site_url = |name: &str, s: &str| -> Result<Url> {
            let u = Url::parse(s).map_err(|e| Error::Config(format!("{name} {s:?}: {e}")))?;
            if u.scheme() != "https" && u.scheme() != "http" {
                return Err(Error::Config(format!("{name} must be an http(s) URL")));
            }
            if u.as_str().contains(';') {
                return Err(Error::Config(format!(
                    "{name} must not contain ';' (it separates stilesheet options)"
                )));
            }
            Ok(u)
        };
        let url_validate = parse_site_url(
            "url_validate",
            self.url_validate
                .as_deref()
                .ok_or_else(|| cfg("url_validate is required"))?,
        )?;
        let url_richiesta = match &self.url_richiesta {
            Some(s) => parse_site_url("url_richiesta", s)?,
            None => url_validate.clone(),
        };
        let logout_url = match &self.logout_url {
            Some(s) => Some(parse_site_url("logout_url", s)?),
            None => None,
        };
        for cert in &self.cohesion_certs {
            crate::dsig::TrustedKey::from_certificate(cert)?;
        }
        let callback_rate = self
            .callback_rate
            .unwrap_or((DEFAULT_CALLBACK_BURST, DEFAULT_CALLBACK_PER_SECOND));
        if callback_rate.0 == 0 || callback_rate.1 == 0 {
            return Err(cfg("callback_rate_limit: burst and rate must be positive"));
        }
        if saml && self.cohesion_certs.is_empty() {
            return Err(cfg(
                "SAML mode needs the Cohesion signing certificate (cohesion_certificate) to verify profiles",
            ));
        }
        if let Some(max) = self.checks.max_token_age {
            if max.is_zero() {
                return Err(cfg("max_token_age must be positive"));
            }
        }
        let timeout = self.timeout.unwrap_or(Duration::from_secs(15));
        if timeout.is_zero() {
            return Err(cfg("timeout must be positive"));
        }
        let native_roots = self.native_roots.unwrap_or(self.extra_roots.is_empty());
        if !native_roots && self.extra_roots.is_empty() {
            return Err(cfg(
                "no CA to trust: enable native roots or add one with trust_ca",
            ));
        }
        Ok(SpConfig {
            environment,
            base_url: base,
            site_id,
            mode,
            sso,
            restrictions: self.restrictions,
            user_type: self.user_type,
            purposes: self.purposes,
            eidas: self.eidas,
            spid_mode: self.spid_mode,
            cie_mode: self.cie_mode,
            ipa: self.ipa,
            logout_url,
            url_validate,
            url_richiesta,
            cohesion_certs: self.cohesion_certs,
            signature_policy: self.signature_policy,
            extra_roots: self.extra_roots,
            native_roots,
            timeout,
            checks: self.checks,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            replay: self
                .replay
                .unwrap_or_else(|| Arc::new(MemoryReplayStore::default())),
            callback_rate,
            callback_clients: self
                .callback_clients
                .unwrap_or(DEFAULT_CALLBACK_CLIENTS)
                .max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SpConfigBuilder {
        SpConfig::builder()
            .environment(Environment::Collaudo)
            .site_id("TEST")
            .mode(Mode::Classic)
            .allow(AuthRestriction::SmartCard)
            .url_validate("https://comune.example/cohesion/callback")
    }

    #[test]
    fn minimal_classic_builds() {
        let c = base().build().unwrap();
        assert_eq!(c.stilesheet(), "AuthRestriction=2");
    }

    #[test]
    fn saml_only_options_rejected_in_classic() {
        assert!(matches!(
            base().eidas(Eidas::NoCheck).build(),
            Err(Error::Config(m)) if m.contains("eidas")
        ));
        assert!(base().purpose(Purpose::PersonaFisica).build().is_err());
        assert!(base().ipa("c_a271").build().is_err());
        assert!(base().spid_mode(FederationProtocol::Oidc).build().is_err());
    }

    #[test]
    fn saml_needs_certificate() {
        let e = base()
            .mode(Mode::Saml {
                direct_to_cohesion_idp: false,
            })
            .build();
        assert!(matches!(e, Err(Error::Config(m)) if m.contains("certificate")));
    }

    #[test]
    fn missing_and_bad_fields() {
        assert!(SpConfig::builder().build().is_err());
        assert!(base().site_id("a b").build().is_err());
        assert!(base().url_validate("ftp://x").build().is_err());
        assert!(base().url_validate("https://x/a;b").build().is_err());
        assert!(base().restrictions([]).build().is_err());
        assert!(base()
            .environment(Environment::Custom(
                Url::parse("http://127.0.0.1:1").unwrap()
            ))
            .build()
            .is_err());
        assert!(base()
            .restrictions([AuthRestriction::Domain])
            .user_type(UserType::Citizens)
            .build()
            .is_err());
    }

    proptest::proptest! {
        /// Any combination of options either builds a config whose login URL parses back into
        /// the same site and restrictions, or is refused with a Config error; never a panic.
        #[test]
        fn any_combination_builds_or_is_refused(
            saml in proptest::bool::ANY,
            direct in proptest::bool::ANY,
            codes in proptest::collection::btree_set(0u8..4, 0..4),
            eidas in proptest::option::of(1u8..4),
            purpose in proptest::bool::ANY,
            ipa in proptest::option::of("[a-z_0-9;]{0,6}"),
            site in "[A-Za-z0-9_ ;]{0,10}",
        ) {
            let mut b = SpConfig::builder()
                .environment(Environment::Development)
                .site_id(site.clone())
                .mode(if saml { Mode::Saml { direct_to_cohesion_idp: direct } } else { Mode::Classic })
                .restrictions(codes.iter().filter_map(|c| AuthRestriction::from_code(*c)))
                .url_validate("https://c.example/cb");
            if saml {
                b = b.cohesion_certificate(include_bytes!("../tests/fixtures/xmlsec1-signer.pem"));
            }
            if let Some(e) = eidas {
                b = b.eidas(match e { 1 => Eidas::NoCheck, 2 => Eidas::SimpleCheck, _ => Eidas::PhysicalCheck });
            }
            if purpose {
                b = b.purpose(Purpose::PersonaFisica);
            }
            if let Some(i) = ipa {
                b = b.ipa(i);
            }
            match b.build() {
                Ok(c) => {
                    let sp = crate::ServiceProvider::new(c).unwrap();
                    let url = sp.login_url().unwrap();
                    let auth = url.query_pairs().find(|(k, _)| k == "auth").unwrap().1.into_owned();
                    let doc = crate::DsAuth::parse_base64("t", &auth).unwrap();
                    proptest::prop_assert_eq!(doc.get("id_sito"), site.as_str());
                    let st = doc.get("stilesheet");
                    let list = st.split(';').next().unwrap().strip_prefix("AuthRestriction=").unwrap();
                    let parsed = AuthRestriction::parse_list(list).unwrap();
                    proptest::prop_assert_eq!(&parsed, sp.config().restrictions());
                }
                Err(e) => proptest::prop_assert!(matches!(e, Error::Config(_))),
            }
        }
    }

    #[test]
    fn restriction_list_parses() {
        let s = AuthRestriction::parse_list("3,2,1").unwrap();
        assert_eq!(s.len(), 3);
        assert!(AuthRestriction::parse_list("4").is_none());
        assert!(AuthRestriction::parse_list("1,,2").is_none());
        assert!(AuthRestriction::parse_list("12").is_none());
    }
}
