//! The service provider: login redirect, callback, GetCredential, checks, logout.

use std::sync::Arc;

use url::Url;

use crate::auth_doc::{urlencode, DsAuth};
use crate::config::{AuthRestriction, Mode, SpConfig};
use crate::dsig::{self, TrustedKey};
use crate::error::{Error, Result};
use crate::profile::{AuthLevel, AuthenticationType, Profile};
use crate::xml;

/// What Cohesion posted to `url_validate`, decoded and parsed but **not trusted**: the callback is
/// not signed, anybody can post one. The only way forward is [`ServiceProvider::redeem`], which asks
/// Cohesion server-to-server (GetCredential) who really logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedCallback {
    doc: DsAuth,
}

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
        if sso.is_empty() || sso.len() > 1024 || !sso.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::malformed(
                WHAT,
                "id_sessione_sso must be 1-1024 letters or digits",
            ));
        }
        let aspnet = doc.get("id_sessione_aspnet_sso");
        if aspnet.is_empty()
            || aspnet.len() > 8192
            || aspnet
                .bytes()
                .any(|b| b.is_ascii_control() || !b.is_ascii())
        {
            return Err(Error::malformed(
                WHAT,
                "id_sessione_aspnet_sso must be 1-8192 printable ASCII characters",
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
}

/// The handle needed to end the Cohesion session of a logged-in user (LogoutSito).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohesionSession {
    /// `IdSessioneSSO`.
    pub sso_session_id: String,
    /// `IdSessioneASPNET`.
    pub aspnet_session_id: String,
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
        Ok(ServiceProvider {
            inner: Arc::new(Inner { config, keys, http }),
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
        if cb.site_id() != self.inner.config.site_id {
            return Err(Error::malformed(
                "callback `auth` parameter",
                format!(
                    "it is for site {:?}, not this site ({:?})",
                    cb.site_id(),
                    self.inner.config.site_id
                ),
            ));
        }
        Ok(cb)
    }

    /// Asks Cohesion (GetCredential, form POST) who the callback's session belongs to, verifies the
    /// answer (signature in SAML mode) and runs the relying-party checks.
    pub async fn redeem(&self, callback: UntrustedCallback) -> Result<LoggedIn> {
        self.claim_once(&callback)?;
        let body = self
            .web_check_session("GetCredential", &callback.session())
            .await?;
        self.check_response(&callback, &body)
    }

    /// For a transport you provide yourself (the SOAP variant, another HTTP client): `body` must be
    /// exactly what Cohesion's webCheckSessionSSO answered to GetCredential for **this** callback's
    /// session ids, fetched server-to-server over TLS. Runs the same replay check, verification and
    /// checks as [`redeem`](Self::redeem).
    pub fn redeem_with_response(
        &self,
        callback: UntrustedCallback,
        body: &[u8],
    ) -> Result<LoggedIn> {
        self.claim_once(&callback)?;
        self.check_response(&callback, body)
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
        if !c.replay.first_use(cb.sso_session_id(), now, until) {
            return Err(Error::Replay);
        }
        Ok(())
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
