//! The service provider: login redirect, callback, GetCredential, checks, logout.

use std::sync::Arc;

use url::Url;

use crate::auth_doc::{urlencode, DsAuth};
use crate::config::{AuthRestriction, Mode, SpConfig};
use crate::dsig::{self, TrustedKey};
use crate::error::{Error, Result};
use crate::profile::{AuthLevel, AuthenticationType, Profile};
use crate::ratelimit::{ClientKey, RateLimiter};
use crate::replay::Claim;
use crate::xml;

/// What Cohesion posted to `url_validate`, decoded and parsed but **not trusted**: the callback is
/// not signed, anybody can post one. The only way forward is [`ServiceProvider::redeem`], which asks
/// Cohesion server-to-server (GetCredential) who really logged in.
///
/// # The session ids are bearer tokens
/// Cohesion's protocol binds a login to nothing but the two session ids in this callback
/// (`id_sessione_sso`, `id_sessione_aspnet_sso`): GetCredential gives the citizen's profile to any
/// whitelisted service provider that presents them, and nothing in the answer names the site the
/// citizen meant to log in to. So whoever holds a citizen's ids (a site that received the callback,
/// a log line, a proxy) can redeem them at **another** whitelisted site until the token expires
/// (60 minutes) or is used once there. This crate narrows the window (single use per site, token
/// age, `id_sito` checked, the SAML compound's logout URL checked against this site's, ids never
/// in `Debug` or logs) but cannot close it: that needs a change of protocol on Cohesion's side.
#[derive(Clone, PartialEq, Eq)]
pub struct UntrustedCallback {
    doc: DsAuth,
}

impl std::fmt::Debug for UntrustedCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntrustedCallback")
            .field("site_id", &self.site_id())
            .field("claimed_user", &self.claimed_user())
            .field("sso_session_id", &"<redacted>")
            .field("aspnet_session_id", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Longest `id_sessione_sso` accepted: Cohesion issues long hexadecimal ids (192 digits in the
/// emulator, which follows the public libraries' examples); anything longer is not Cohesion's.
pub const MAX_SSO_SESSION_ID_LEN: usize = 256;
/// Longest `id_sessione_aspnet_sso` accepted (in SAML mode a `;`-separated compound holding the
/// ASP.NET session id, the IdP entityID, the site's logout URL and two tokens).
pub const MAX_ASPNET_SESSION_ID_LEN: usize = 2048;
/// Longest ASP.NET session id (the first field of `id_sessione_aspnet_sso`); ASP.NET issues 24
/// characters of `[a-z0-5]`.
const MAX_ASPNET_ID_LEN: usize = 64;

impl UntrustedCallback {
    /// Parses the `auth` form field (base64 of the `dsAuth` document). Strict: size-limited, no DTD,
    /// duplicates refused; `esito_auth_sso` must be `OK` and both session ids present.
    pub fn parse(auth: &str) -> Result<Self> {
        const WHAT: &str = "callback `auth` parameter";
        let doc = DsAuth::parse_base64(WHAT, auth)?;
        let esito = doc.get("esito_auth_sso");
        if esito != "OK" {
            return Err(Error::LoginNotSuccessful(esito.to_owned()));
        }
        let sso = doc.get("id_sessione_sso");
        if sso.is_empty()
            || sso.len() > MAX_SSO_SESSION_ID_LEN
            || !sso.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::malformed(
                WHAT,
                format!("id_sessione_sso must be 1-{MAX_SSO_SESSION_ID_LEN} hexadecimal digits"),
            ));
        }
        let aspnet = doc.get("id_sessione_aspnet_sso");
        let first = aspnet.split(';').next().unwrap_or_default();
        if aspnet.len() > MAX_ASPNET_SESSION_ID_LEN
            || !aspnet.bytes().all(|b| b.is_ascii_graphic())
            || first.is_empty()
            || first.len() > MAX_ASPNET_ID_LEN
            || !first.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::malformed(
                WHAT,
                format!(
                    "id_sessione_aspnet_sso must be at most {MAX_ASPNET_SESSION_ID_LEN} printable \
                     ASCII characters without spaces, starting with a session id of \
                     1-{MAX_ASPNET_ID_LEN} letters or digits"
                ),
            ));
        }
        if doc.get("user").is_empty() {
            return Err(Error::malformed(WHAT, "<user> is empty"));
        }
        Ok(UntrustedCallback { doc })
    }

    /// Finds `auth` in an `application/x-www-form-urlencoded` body and parses it.
    pub fn from_form_body(body: &[u8]) -> Result<Self> {
        let auth = form_urlencoded::parse(body)
            .find(|(k, _)| k == "auth")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| Error::malformed("callback form", "the form has no `auth` field"))?;
        Self::parse(&auth)
    }

    /// The user the callback claims (unverified).
    pub fn claimed_user(&self) -> &str {
        self.doc.get("user")
    }
    /// `id_sito` as posted.
    pub fn site_id(&self) -> &str {
        self.doc.get("id_sito")
    }
    /// `id_sessione_sso`.
    pub fn sso_session_id(&self) -> &str {
        self.doc.get("id_sessione_sso")
    }
    /// `id_sessione_aspnet_sso` (in SAML mode a `;`-separated compound).
    pub fn aspnet_session_id(&self) -> &str {
        self.doc.get("id_sessione_aspnet_sso")
    }
    /// `url_richiesta` as posted.
    pub fn url_richiesta(&self) -> &str {
        self.doc.get("url_richiesta")
    }
    /// Any callback extra (`ip`, `AuthRestriction`, `UType`, `purpose`, `url_logout`, `cittad`).
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.doc.extra(name)
    }
    /// In SAML mode, the site logout URL carried in the compound `id_sessione_aspnet_sso` (its third
    /// `;`-separated field), if there is a non-empty one.
    pub fn compound_logout_url(&self) -> Option<&str> {
        self.aspnet_session_id()
            .split(';')
            .nth(2)
            .filter(|u| !u.is_empty())
    }
}

/// The handle needed to end the Cohesion session of a logged-in user (LogoutSito). Its ids are
/// bearer tokens (see [`UntrustedCallback`]): `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct CohesionSession {
    /// `IdSessioneSSO`.
    pub sso_session_id: String,
    /// `IdSessioneASPNET`.
    pub aspnet_session_id: String,
}

impl std::fmt::Debug for CohesionSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CohesionSession")
            .field("sso_session_id", &"<redacted>")
            .field("aspnet_session_id", &"<redacted>")
            .finish()
    }
}

/// A user whose identity Cohesion confirmed server-to-server and who passed every check.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The profile.
    pub profile: Profile,
    /// For [`ServiceProvider::logout_sito`].
    pub session: CohesionSession,
}

/// A Cohesion service provider (a site). Cheap to clone; share one per site.
#[derive(Clone)]
pub struct ServiceProvider {
    inner: Arc<Inner>,
}

struct Inner {
    config: SpConfig,
    keys: Vec<TrustedKey>,
    http: reqwest::Client,
    limiter: RateLimiter,
}

impl std::fmt::Debug for ServiceProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn base_join(base: &Url, path: &str) -> Result<Url> {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b.join(path)
        .map_err(|e| Error::Config(format!("cannot build Cohesion URL {path}: {e}")))
}

pub(crate) fn rustls_client_config(
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
    native: bool,
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in extra_roots {
        roots
            .add(c.clone())
            .map_err(|e| Error::Tls(format!("CA certificate refused: {e}")))?;
    }
    if native {
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            let _ = roots.add(c);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl ServiceProvider {
    /// Builds the service provider (parses the Cohesion certificates, prepares the HTTPS client).
    pub fn new(config: SpConfig) -> Result<Self> {
        let keys = config
            .cohesion_certs
            .iter()
            .map(TrustedKey::from_certificate)
            .collect::<Result<Vec<_>>>()?;
        let tls = rustls_client_config(&config.extra_roots, config.native_roots)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .build()
            .map_err(|e| Error::Tls(format!("HTTP client: {e}")))?;
        let (burst, per_second) = config.callback_rate;
        let limiter = RateLimiter::new(burst, per_second, config.callback_clients);
        Ok(ServiceProvider {
            inner: Arc::new(Inner {
                config,
                keys,
                http,
                limiter,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SpConfig {
        &self.inner.config
    }

    /// The `dsAuth` request document of this site.
    pub fn auth_request(&self, url_validate: &Url, url_richiesta: &Url) -> DsAuth {
        let c = &self.inner.config;
        DsAuth::request(
            &c.site_id,
            url_validate.as_str(),
            url_richiesta.as_str(),
            &c.stilesheet(),
        )
    }

    /// Where to send the citizen's browser to log in (HTTP 302 `Location`).
    pub fn login_url(&self) -> Result<Url> {
        let c = &self.inner.config;
        self.login_url_with(&c.url_validate, &c.url_richiesta)
    }

    /// Like [`login_url`](Self::login_url) with other `url_validate` / `url_richiesta`.
    pub fn login_url_with(&self, url_validate: &Url, url_richiesta: &Url) -> Result<Url> {
        let c = &self.inner.config;
        let auth = urlencode(&self.auth_request(url_validate, url_richiesta).to_base64());
        // Regione Marche's CohesionID-Docs, Endpoints.
        let (path, entity) = match c.mode {
            Mode::Classic if c.sso => ("sso/Check.aspx", None),
            Mode::Classic => ("SA/AccediCohesion.aspx", None),
            Mode::Saml {
                direct_to_cohesion_idp,
            } => (
                "SPManager/WAYF.aspx",
                direct_to_cohesion_idp.then(|| c.environment.cohesion_idp_entity_id()),
            ),
        };
        let mut u = base_join(&c.base_url, path)?;
        let mut q = format!("auth={auth}");
        if let Some(e) = entity {
            q.push_str("&entityID=");
            q.push_str(&urlencode(e));
        }
        u.set_query(Some(&q));
        Ok(u)
    }

    /// The webCheckSessionSSO endpoint of the configured mode (GetCredential, LogoutSito).
    pub fn web_check_session_url(&self) -> Result<Url> {
        let c = &self.inner.config;
        match c.mode {
            Mode::Classic => base_join(&c.base_url, "SSO/webCheckSessionSSO.aspx"),
            Mode::Saml { .. } => base_join(&c.base_url, "SPManager/webCheckSessionSSO.aspx"),
        }
    }

    /// Where to send the browser to end the Cohesion browser session (clears Cohesion's cookies).
    /// Documented for SAML mode (`SPManager/Logout.aspx`); `None` in classic mode, where no browser
    /// logout page is documented.
    pub fn browser_logout_url(&self) -> Result<Option<Url>> {
        let c = &self.inner.config;
        match c.mode {
            Mode::Classic => Ok(None),
            Mode::Saml { .. } => base_join(&c.base_url, "SPManager/Logout.aspx").map(Some),
        }
    }

    /// Parses the posted `auth` value and checks it names this site.
    pub fn parse_callback(&self, auth: &str) -> Result<UntrustedCallback> {
        let cb = UntrustedCallback::parse(auth)?;
        self.check_callback(&cb)?;
        Ok(cb)
    }

    /// The checks of an untrusted callback that need no network: it names this site, and in SAML
    /// mode the compound's logout URL, where it carries one, is this site's.
    fn check_callback(&self, cb: &UntrustedCallback) -> Result<()> {
        const WHAT: &str = "callback `auth` parameter";
        let c = &self.inner.config;
        if cb.site_id() != c.site_id {
            return Err(Error::malformed(
                WHAT,
                format!(
                    "it is for site {:?}, not this site ({:?})",
                    cb.site_id(),
                    c.site_id
                ),
            ));
        }
        if let (Mode::Saml { .. }, Some(got)) = (c.mode, cb.compound_logout_url()) {
            let same = c
                .logout_url
                .as_ref()
                .is_some_and(|mine| Url::parse(got).is_ok_and(|u| &u == mine));
            if !same {
                return Err(Error::malformed(
                    WHAT,
                    format!(
                        "the session was opened for the logout URL {got:?}, not this site's ({})",
                        c.logout_url
                            .as_ref()
                            .map_or("none configured".to_owned(), |u| format!(
                                "{:?}",
                                u.as_str()
                            ))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Asks Cohesion (GetCredential, form POST) who the callback's session belongs to, verifies the
    /// answer (signature in SAML mode) and runs the relying-party checks; only then is the callback
    /// claimed as used (single use), so a forged callback never occupies the replay store.
    ///
    /// Callbacks that Cohesion does not confirm are rate-limited (see
    /// [`SpConfigBuilder::callback_rate_limit`](crate::SpConfigBuilder::callback_rate_limit)):
    /// beyond the limit this answers [`Error::RateLimited`] without calling Cohesion.
    ///
    /// This variant does not know who posted the callback, so all its callers share **one**
    /// bucket: a flood of forged callbacks through it delays every citizen's login. A web server
    /// should call [`redeem_from`](Self::redeem_from) with the client's address instead.
    pub async fn redeem(&self, callback: UntrustedCallback) -> Result<LoggedIn> {
        self.redeem_keyed(callback, ClientKey::of(None)).await
    }

    /// [`redeem`](Self::redeem) for a callback posted by `client` (the browser's address: the TCP
    /// peer, or the address a reverse proxy you trust reports). The rate limit of unconfirmed
    /// callbacks is kept per client (per IPv4 address, per IPv6 /64), so one client's flood of
    /// forged callbacks refuses that client only, never the other citizens.
    pub async fn redeem_from(
        &self,
        callback: UntrustedCallback,
        client: std::net::IpAddr,
    ) -> Result<LoggedIn> {
        self.redeem_keyed(callback, ClientKey::of(Some(client)))
            .await
    }

    async fn redeem_keyed(
        &self,
        callback: UntrustedCallback,
        client: ClientKey,
    ) -> Result<LoggedIn> {
        self.check_callback(&callback)?;
        let limiter = &self.inner.limiter;
        limiter.take(client, self.inner.config.clock.now())?;
        let body = self
            .web_check_session("GetCredential", &callback.session())
            .await?;
        let user = self.check_response(&callback, &body)?;
        limiter.give_back(client);
        self.claim_once(&callback)?;
        Ok(user)
    }

    /// For a transport you provide yourself (the SOAP variant, another HTTP client): `body` must be
    /// exactly what Cohesion's webCheckSessionSSO answered to GetCredential for **this** callback's
    /// session ids, fetched server-to-server over TLS. Runs the same verification, checks and
    /// replay claim as [`redeem`](Self::redeem) (the rate limit is yours to apply before your call).
    pub fn redeem_with_response(
        &self,
        callback: UntrustedCallback,
        body: &[u8],
    ) -> Result<LoggedIn> {
        self.check_callback(&callback)?;
        let user = self.check_response(&callback, body)?;
        self.claim_once(&callback)?;
        Ok(user)
    }

    /// Ends the site's Cohesion session (LogoutSito) at the configured mode's endpoint.
    pub async fn logout_sito(&self, session: &CohesionSession) -> Result<()> {
        let body = self.web_check_session("LogoutSito", session).await?;
        let text = String::from_utf8_lossy(&body);
        if text.contains("<AUTH>NO</AUTH>") {
            return Err(Error::CredentialRefused(
                "LogoutSito: Cohesion does not know this session".into(),
            ));
        }
        Ok(())
    }

    /// Claims the callback as used, keyed on both session ids (a digest, so every key has the same
    /// small size). A full store is [`Error::ReplayStoreFull`], never a replay.
    fn claim_once(&self, cb: &UntrustedCallback) -> Result<()> {
        let c = &self.inner.config;
        if !c.checks.replay {
            return Ok(());
        }
        let now = c.clock.now();
        let keep = c
            .checks
            .max_token_age
            .unwrap_or(std::time::Duration::from_secs(3600))
            + c.checks.max_clock_skew;
        let until = now + time::Duration::try_from(keep).unwrap_or(time::Duration::hours(2));
        match c.replay.claim(&replay_key(cb), now, until) {
            Claim::Fresh => Ok(()),
            Claim::Replayed => Err(Error::Replay),
            Claim::StoreFull => Err(Error::ReplayStoreFull),
        }
    }

    async fn web_check_session(&self, op: &str, s: &CohesionSession) -> Result<Vec<u8>> {
        let url = self.web_check_session_url()?;
        let host = url.host_str().unwrap_or("").to_owned();
        let resp = self
            .inner
            .http
            .post(url.clone())
            .form(&[
                ("Operation", op),
                ("IdSessioneSSO", s.sso_session_id.as_str()),
                ("IdSessioneASPNET", s.aspnet_session_id.as_str()),
            ])
            .send()
            .await
            .map_err(|e| Error::Http {
                host: host.clone(),
                source: e,
            })?;
        if !resp.status().is_success() {
            return Err(Error::HttpStatus {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        read_limited(resp, xml::MAX_PROFILE_BYTES, &host).await
    }

    /// Parses and verifies a GetCredential answer and runs the checks against the callback.
    fn check_response(&self, cb: &UntrustedCallback, body: &[u8]) -> Result<LoggedIn> {
        let profile = self.verified_profile(body)?;
        self.check_profile(cb, &profile)?;
        Ok(LoggedIn {
            profile,
            session: cb.session(),
        })
    }

    /// Parses a GetCredential answer: in SAML mode only a correctly signed profile is accepted.
    pub(crate) fn verified_profile(&self, body: &[u8]) -> Result<Profile> {
        const WHAT: &str = "GetCredential answer";
        let text = std::str::from_utf8(body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body))
            .map_err(|_| Error::malformed(WHAT, "not UTF-8"))?;
        let trimmed = text.trim_start();
        if trimmed.starts_with("<AUTH>") {
            return Err(Error::CredentialRefused(
                "Cohesion answered <AUTH>NO</AUTH>".into(),
            ));
        }
        let doc = xml::parse(WHAT, text, xml::MAX_PROFILE_BYTES)?;
        let c = &self.inner.config;
        let root = doc.root_element();
        if root.tag_name().name() == "AUTH" {
            return Err(Error::CredentialRefused(format!(
                "Cohesion answered <AUTH>{}</AUTH>",
                xml::text_of(root)
            )));
        }
        match c.mode {
            Mode::Saml { .. } => {
                let object =
                    dsig::verify_enveloping(&doc, text, &self.inner.keys, c.signature_policy)?;
                let profiles: Vec<_> = object.children().filter(|n| n.is_element()).collect();
                if profiles.len() != 1
                    || object
                        .children()
                        .any(|n| n.is_text() && !n.text().unwrap_or("").trim().is_empty())
                {
                    return Err(Error::Signature(
                        "the signed <Object> must hold exactly one <profile>".into(),
                    ));
                }
                Profile::from_element(WHAT, profiles[0])
            }
            Mode::Classic => {
                if root.tag_name().name() == "Signature" {
                    return Err(Error::malformed(
                        WHAT,
                        "a signed (SAML-mode) answer at the classic endpoint: configure Mode::Saml",
                    ));
                }
                Profile::from_element(WHAT, root)
            }
        }
    }

    /// The relying-party checks of the configuration (identity, level, age).
    pub(crate) fn check_profile(&self, cb: &UntrustedCallback, p: &Profile) -> Result<()> {
        let c = &self.inner.config;
        if c.checks.identity_matches_callback {
            let claimed = cb.claimed_user();
            let same = match (
                p.codice_fiscale(),
                tscns_cert::CodiceFiscale::parse(claimed),
            ) {
                (Some(a), Ok(b)) => a.canonical() == b.canonical(),
                _ => p.login().eq_ignore_ascii_case(claimed),
            };
            if !same {
                return Err(Error::IdentityMismatch {
                    callback: claimed.to_owned(),
                    profile: p
                        .codice_fiscale()
                        .map(|cf| cf.as_str().to_owned())
                        .unwrap_or_else(|| p.login().to_owned()),
                });
            }
        }
        if c.checks.level {
            check_level(&c.restrictions, p.authentication())?;
        }
        if let Some(max) = c.checks.max_token_age {
            let ts = p.timestamp().ok_or_else(|| {
                Error::malformed("GetCredential answer", "the profile has no timestamp")
            })?;
            let now = c.clock.now();
            let age = (now - ts).whole_seconds();
            let skew = i64::try_from(c.checks.max_clock_skew.as_secs()).unwrap_or(i64::MAX);
            if age < -skew {
                return Err(Error::FromTheFuture(-age));
            }
            let max = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
            if age > max {
                return Err(Error::Expired {
                    age_secs: age,
                    max_secs: max,
                });
            }
        }
        Ok(())
    }
}

/// The replay-store key of a callback: SHA-256 over both session ids, each length-prefixed.
fn replay_key(cb: &UntrustedCallback) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for id in [cb.sso_session_id(), cb.aspnet_session_id()] {
        ctx.update(&(id.len() as u64).to_be_bytes());
        ctx.update(id.as_bytes());
    }
    hex::encode(ctx.finish())
}

impl UntrustedCallback {
    fn session(&self) -> CohesionSession {
        CohesionSession {
            sso_session_id: self.sso_session_id().to_owned(),
            aspnet_session_id: self.aspnet_session_id().to_owned(),
        }
    }
}

/// Does `got` satisfy the configured restrictions? Domain logins only where `Domain` is allowed;
/// PW/PIN/CF where the level is at least the weakest allowed of the three.
pub fn check_level(
    allowed: &std::collections::BTreeSet<AuthRestriction>,
    got: Option<&AuthenticationType>,
) -> Result<()> {
    let describe = || {
        allowed
            .iter()
            .map(|r| match r {
                AuthRestriction::Password => "password",
                AuthRestriction::PasswordPin => "password+PIN",
                AuthRestriction::SmartCard => "smart card",
                AuthRestriction::Domain => "domain",
            })
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let got = got.ok_or_else(|| Error::InsufficientLevel {
        got: "no tipo_autenticazione".into(),
        required: describe(),
    })?;
    let ok = match got {
        AuthenticationType::Domain => allowed.contains(&AuthRestriction::Domain),
        other => match other.level() {
            Some(level) => allowed
                .iter()
                .filter_map(|r| match r {
                    AuthRestriction::Password => Some(AuthLevel::Password),
                    AuthRestriction::PasswordPin => Some(AuthLevel::PasswordPin),
                    AuthRestriction::SmartCard => Some(AuthLevel::SmartCard),
                    AuthRestriction::Domain => None,
                })
                .min()
                .is_some_and(|min| level >= min),
            None => false,
        },
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InsufficientLevel {
            got: got.to_string(),
            required: describe(),
        })
    }
}

async fn read_limited(mut resp: reqwest::Response, limit: usize, host: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Http {
        host: host.to_owned(),
        source: e,
    })? {
        if out.len() + chunk.len() > limit {
            return Err(Error::TooLarge {
                what: "GetCredential answer",
                size: out.len() + chunk.len(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SpConfig;
    use std::collections::BTreeSet;

    fn classic_sp() -> ServiceProvider {
        let cfg = SpConfig::builder()
            .environment(crate::Environment::Custom(
                Url::parse("https://127.0.0.1:1/").unwrap(),
            ))
            .site_id("S")
            .mode(Mode::Classic)
            .allow(AuthRestriction::Password)
            .url_validate("https://s.example/cb")
            .native_roots(true)
            .build()
            .unwrap();
        ServiceProvider::new(cfg).unwrap()
    }

    fn callback(id: &str) -> UntrustedCallback {
        let mut d = DsAuth::request(
            "S",
            "https://s.example/cb",
            "https://s.example/",
            "AuthRestriction=0",
        );
        d.set("user", "RSSMRA85T10A562S");
        d.set("esito_auth_sso", "OK");
        d.set("id_sessione_sso", id);
        d.set("id_sessione_aspnet_sso", "abc");
        UntrustedCallback::parse(&d.to_base64()).unwrap()
    }

    #[test]
    fn hostile_profile_answers_refused() {
        let sp = classic_sp();
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><profile><base><login>&c;</login></base></profile>"#;
        assert!(matches!(
            sp.redeem_with_response(callback("A1"), bomb.as_bytes()),
            Err(Error::DtdRejected { .. })
        ));
        let xxe = r#"<!DOCTYPE profile SYSTEM "file:///etc/passwd"><profile><base><login>x</login></base></profile>"#;
        assert!(matches!(
            sp.redeem_with_response(callback("A2"), xxe.as_bytes()),
            Err(Error::DtdRejected { .. })
        ));
        let huge = format!(
            "<profile><base><login>{}</login></base></profile>",
            "x".repeat(crate::MAX_PROFILE_BYTES)
        );
        assert!(matches!(
            sp.redeem_with_response(callback("A3"), huge.as_bytes()),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            sp.redeem_with_response(callback("A4"), b"<AUTH>NO</AUTH>"),
            Err(Error::CredentialRefused(_))
        ));
        assert!(sp
            .redeem_with_response(callback("A5"), b"\xff\xfe")
            .is_err());
    }

    fn classic_sp_with(store: Arc<dyn crate::ReplayStore>) -> ServiceProvider {
        let cfg = SpConfig::builder()
            .environment(crate::Environment::Custom(
                Url::parse("https://127.0.0.1:1/").unwrap(),
            ))
            .site_id("S")
            .mode(Mode::Classic)
            .allow(AuthRestriction::Password)
            .url_validate("https://s.example/cb")
            .native_roots(true)
            .checks(crate::Checks {
                max_token_age: None,
                ..crate::Checks::default()
            })
            .replay_store(store)
            .build()
            .unwrap();
        ServiceProvider::new(cfg).unwrap()
    }

    fn callback_with(sso: &str, aspnet: &str) -> Result<UntrustedCallback> {
        let mut d = DsAuth::request(
            "S",
            "https://s.example/cb",
            "https://s.example/",
            "AuthRestriction=0",
        );
        d.set("user", "RSSMRA85T10A562S");
        d.set("esito_auth_sso", "OK");
        d.set("id_sessione_sso", sso);
        d.set("id_sessione_aspnet_sso", aspnet);
        UntrustedCallback::parse(&d.to_base64())
    }

    const GOOD_PROFILE: &[u8] = b"<profile><base><login>RSSMRA85T10A562S</login>\
<codice_fiscale>RSSMRA85T10A562S</codice_fiscale><tipo_autenticazione>PW</tipo_autenticazione>\
</base></profile>";

    #[test]
    fn only_verified_callbacks_are_claimed_keyed_on_both_ids() {
        let store = Arc::new(crate::MemoryReplayStore::with_capacity(2));
        let sp = classic_sp_with(store.clone());
        // Forged callbacks (Cohesion refuses them) never reach the store, however many.
        for i in 0..50 {
            let cb = callback_with(&format!("{i:064X}"), "abc").unwrap();
            assert!(matches!(
                sp.redeem_with_response(cb, b"<AUTH>NO</AUTH>"),
                Err(Error::CredentialRefused(_))
            ));
        }
        assert!(store.is_empty());
        // A verified one is claimed once.
        let cb = callback_with("ABCDEF", "sess1").unwrap();
        sp.redeem_with_response(cb.clone(), GOOD_PROFILE).unwrap();
        assert!(matches!(
            sp.redeem_with_response(cb, GOOD_PROFILE),
            Err(Error::Replay)
        ));
        // The key holds both ids: the same sso id with another ASP.NET id is another claim.
        let other = callback_with("ABCDEF", "sess2").unwrap();
        sp.redeem_with_response(other, GOOD_PROFILE).unwrap();
        assert_eq!(store.len(), 2);
        // A full store is not a replay.
        let third = callback_with("ABCDEF", "sess3").unwrap();
        assert!(matches!(
            sp.redeem_with_response(third, GOOD_PROFILE),
            Err(Error::ReplayStoreFull)
        ));
    }

    #[test]
    fn session_ids_are_bounded_to_what_cohesion_issues() {
        assert!(callback_with(&"A".repeat(MAX_SSO_SESSION_ID_LEN), "abc").is_ok());
        for bad in [
            "A".repeat(MAX_SSO_SESSION_ID_LEN + 1),
            "A".repeat(1024),
            "XYZ".into(),
            "ab cd".into(),
            String::new(),
        ] {
            assert!(
                matches!(callback_with(&bad, "abc"), Err(Error::Malformed { .. })),
                "{bad:?}"
            );
        }
        let compound = "ufrq00x4f0cq2yog2ozv4lxx;cohesion2.regione.marche.it:idp;https://s.example/logout;AB;CD;";
        assert!(callback_with("AB", compound).is_ok());
        for bad in [
            "x".repeat(MAX_ASPNET_SESSION_ID_LEN + 1),
            ";idp;".into(),
            "a b".into(),
            "a\tb".into(),
            "sess;\u{e9}".into(),
            "s".repeat(65),
        ] {
            assert!(
                matches!(callback_with("AB", &bad), Err(Error::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever ids a callback carries, the accepted ones are within what Cohesion issues.
        #[test]
        fn accepted_ids_are_bounded_hex_and_printable(
            sso in "[0-9A-Fa-fG-Zg-z ;\t]{0,300}",
            aspnet in "[a-z0-9;:/.\\- \t\u{e9}]{0,80}",
        ) {
            if let Ok(cb) = callback_with(&sso, &aspnet) {
                proptest::prop_assert!(cb.sso_session_id().len() <= MAX_SSO_SESSION_ID_LEN);
                proptest::prop_assert!(cb.sso_session_id().bytes().all(|b| b.is_ascii_hexdigit()));
                proptest::prop_assert!(cb.aspnet_session_id().bytes().all(|b| b.is_ascii_graphic()));
                let first = cb.aspnet_session_id().split(';').next().unwrap_or_default();
                proptest::prop_assert!(!first.is_empty() && first.len() <= 64);
            }
        }
    }

    #[test]
    fn debug_redacts_bearer_ids() {
        let cb = callback_with("ABCDEF0123", "secretaspnet").unwrap();
        let d = format!("{cb:?} {:?}", cb.session());
        assert!(
            !d.contains("ABCDEF0123") && !d.contains("secretaspnet"),
            "{d}"
        );
        assert!(d.contains("redacted"));
    }

    #[test]
    fn level_rules() {
        let smart: BTreeSet<_> = [AuthRestriction::SmartCard].into();
        let pin_up: BTreeSet<_> = [AuthRestriction::PasswordPin, AuthRestriction::SmartCard].into();
        let domain: BTreeSet<_> = [AuthRestriction::Domain].into();
        let cf = AuthenticationType::SmartCard;
        let pw = AuthenticationType::Password;
        let pin = AuthenticationType::PasswordPin;
        let drm = AuthenticationType::Domain;
        assert!(check_level(&smart, Some(&cf)).is_ok());
        assert!(check_level(&smart, Some(&pw)).is_err());
        assert!(check_level(&smart, Some(&pin)).is_err());
        assert!(check_level(&smart, Some(&drm)).is_err());
        assert!(check_level(&pin_up, Some(&pin)).is_ok());
        assert!(check_level(&pin_up, Some(&cf)).is_ok());
        assert!(check_level(&pin_up, Some(&pw)).is_err());
        assert!(check_level(&domain, Some(&drm)).is_ok());
        assert!(check_level(&domain, Some(&cf)).is_err());
        assert!(check_level(&smart, None).is_err());
        assert!(check_level(&smart, Some(&AuthenticationType::Other("X".into()))).is_err());
    }
}
