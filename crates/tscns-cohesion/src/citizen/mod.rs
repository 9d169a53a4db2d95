//! The citizen's side: log in to a site protected by Cohesion with a TS-CNS card (or any
//! `tscns_tls::SigningKey`), as a browser would, but by a program.
//!
//! The flow, from a protected page: follow the redirects to Cohesion; on the login page choose the
//! smart card ([`pages`] holds every page-specific rule); complete the TLS client-authenticated step
//! (the certificate is presented only to the Cohesion hosts in the allowlist: one handshake, one card
//! signature); post the auto-posting callback form to the site; follow the site's redirects back to
//! the protected page. The result carries the site's cookie jar.
//!
//! The callback (the citizen's Cohesion session ids) is posted only to the origin (scheme, host and
//! port) the login started from ([`Error::CallbackElsewhere`] otherwise), and only over `https`
//! unless that origin is loopback ([`Error::CallbackNotHttps`]). The `id_sito` shown to the citizen
//! ([`CitizenLoginBuilder::on_site_id`]) is read only from pages and URLs of the allowed Cohesion
//! hosts; a callback naming another site is reported ([`CitizenLoginBuilder::on_site_id_mismatch`]). The site's cookies are recorded with all their
//! attributes (domain, path, `Secure`, `HttpOnly`, expiry) in a [`cookie_store::CookieStore`], which
//! [`LoginOutcome::netscape_cookie_file`] writes in the Netscape format `curl -b` reads.
//!
//! The PIN is not handled here: verify it on the card before building the key, once.

pub mod pages;

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Re-exported: the type of [`LoginOutcome::site_cookies`].
pub use cookie_store;

use tscns_tls::{AuthClient, AuthClientBuilder, SigningKey, TlsVersions};
use url::Url;

use crate::error::{Error, Result};

/// The Cohesion hosts documented publicly (Regione Marche's CohesionID-Docs, Hosts): the default allowlist.
pub const COHESION_HOSTS: [&str; 3] = [
    "cohesion2.regione.marche.it",
    "cohesioncollaudo.regione.marche.it",
    "cohesion2sviluppo.regione.marche.it",
];

/// Bound on pages visited in one login (redirect chains excluded; each `get` bounds its own).
const MAX_STEPS: usize = 8;

/// How to log in.
pub struct CitizenLogin {
    client: AuthClient,
    on_site: Option<SiteCallback>,
    on_mismatch: Option<MismatchCallback>,
}

impl std::fmt::Debug for CitizenLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CitizenLogin").finish_non_exhaustive()
    }
}

/// Builder of [`CitizenLogin`].
pub struct CitizenLoginBuilder {
    key: Arc<dyn SigningKey>,
    hosts: Vec<String>,
    cas: Vec<Vec<u8>>,
    timeout: Duration,
    versions: TlsVersions,
    on_site: Option<SiteCallback>,
    on_mismatch: Option<MismatchCallback>,
}

/// Told the `id_sito` of the site being logged in to, as soon as it is known.
type SiteCallback = Arc<dyn Fn(&str) + Send + Sync>;
/// Told (shown `id_sito`, the callback's `id_sito`) when they differ.
type MismatchCallback = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// What a successful login brings back.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The final URL (the protected page, normally).
    pub url: Url,
    /// Its HTTP status.
    pub status: u16,
    /// Its body.
    pub body: String,
    /// The cookie jar holding the site's session (and Cohesion's).
    pub cookies: Arc<tscns_tls::reqwest::cookie::Jar>,
    /// Card signatures made during the login.
    pub signatures: u64,
    /// The `id_sito` the login was for (from Cohesion's request or the callback, on an allowed
    /// Cohesion host), if seen.
    pub site_id: Option<String>,
    /// Every cookie the hops of the login outside the Cohesion hosts set, with its attributes.
    pub site_cookies: cookie_store::CookieStore,
}

impl LoginOutcome {
    /// The cookies for the final URL's host (the site's session), as a Netscape cookie file
    /// (`curl -b`): one line per cookie with domain, subdomains flag, path, `Secure`, expiry (0 for
    /// a session cookie) and name/value; `HttpOnly` cookies carry curl's `#HttpOnly_` prefix.
    pub fn netscape_cookie_file(&self) -> String {
        let mut out = String::from("# Netscape HTTP Cookie File\n");
        for c in self
            .site_cookies
            .iter_unexpired()
            .filter(|c| c.domain.matches(&self.url))
        {
            out.push_str(&netscape_line(c));
            out.push('\n');
        }
        out
    }
}

/// One Netscape cookies.txt line (the format curl and wget read).
fn netscape_line(c: &cookie_store::Cookie<'_>) -> String {
    use cookie_store::{CookieDomain, CookieExpiration};
    let (domain, subdomains) = match &c.domain {
        CookieDomain::Suffix(d) => (format!(".{d}"), "TRUE"),
        CookieDomain::HostOnly(d) => (d.clone(), "FALSE"),
        CookieDomain::NotPresent | CookieDomain::Empty => (String::new(), "FALSE"),
    };
    let prefix = if c.http_only().unwrap_or(false) {
        "#HttpOnly_"
    } else {
        ""
    };
    let expires = match c.expires {
        CookieExpiration::AtUtc(t) => t.unix_timestamp().max(0),
        CookieExpiration::SessionEnd => 0,
    };
    let flag = |b: bool| if b { "TRUE" } else { "FALSE" };
    format!(
        "{prefix}{domain}\t{subdomains}\t{path}\t{secure}\t{expires}\t{name}\t{value}",
        path = &*c.path,
        secure = flag(c.secure().unwrap_or(false)),
        name = c.name(),
        value = c.value(),
    )
}

/// Records a response's `Set-Cookie` headers.
fn record_cookies(store: &Mutex<cookie_store::CookieStore>, resp: &tscns_tls::reqwest::Response) {
    let raw = resp
        .headers()
        .get_all(tscns_tls::reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| cookie_store::RawCookie::parse(v.to_owned()).ok())
        .collect::<Vec<_>>();
    if !raw.is_empty() {
        store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store_response_cookies(raw.into_iter(), resp.url());
    }
}

/// Whether the callback may be posted to `target`: the same origin (scheme, host, port) as the
/// URL the login started from, and `https` unless that host is loopback.
fn callback_target_allowed(start: &Url, target: &Url) -> Result<()> {
    let (want, got) = (start.origin(), target.origin());
    if want != got || !got.is_tuple() {
        return Err(Error::CallbackElsewhere {
            expected: want.ascii_serialization(),
            got: got.ascii_serialization(),
        });
    }
    let loopback = match target.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    if target.scheme() != "https" && !loopback {
        return Err(Error::CallbackNotHttps {
            origin: got.ascii_serialization(),
        });
    }
    Ok(())
}

/// The `id_sito` in a URL's `auth` parameter (Cohesion's login request), if it has one.
fn site_id_in_url(url: &Url) -> Option<String> {
    let auth = url.query_pairs().find(|(k, _)| k == "auth")?.1;
    crate::auth_doc::DsAuth::parse_base64("login request", &auth)
        .ok()
        .map(|d| d.get("id_sito").to_owned())
        .filter(|s| !s.is_empty())
}

impl CitizenLoginBuilder {
    /// Allows one more host to receive the certificate (e.g. the emulator's `localhost`).
    pub fn cohesion_host(mut self, host: &str) -> Self {
        self.hosts.push(host.to_owned());
        self
    }
    /// Replaces the allowlist of Cohesion hosts.
    pub fn cohesion_hosts(mut self, hosts: impl IntoIterator<Item = String>) -> Self {
        self.hosts = hosts.into_iter().collect();
        self
    }
    /// Trusts a CA (PEM) for HTTPS (the emulator's, a test site's); without any, the system's.
    pub fn trust_ca_pem(mut self, pem: &[u8]) -> Self {
        self.cas.push(pem.to_vec());
        self
    }
    /// Per-request timeout (default 30 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Which TLS versions to offer (default [`TlsVersions::Auto`]: TLS 1.3 with RSA-PSS when the key
    /// can, else TLS 1.2).
    pub fn tls_versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }
    /// Called once with the `id_sito` of the site as soon as the login learns it (from Cohesion's
    /// login request, before the card signs, or at the latest from the callback), e.g. to show the
    /// citizen which site they are logging in to.
    ///
    /// Only Cohesion's own pages count (URLs on the allowed Cohesion hosts): an `auth` parameter
    /// on the site's or any other host's URL is ignored.
    pub fn on_site_id(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_site = Some(Arc::new(f));
        self
    }
    /// Called with (the `id_sito` shown by [`on_site_id`](Self::on_site_id), the callback's) when
    /// Cohesion's callback names another site than its login request did, e.g. to warn the citizen.
    /// Also logged as a warning (`tracing`).
    pub fn on_site_id_mismatch(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.on_mismatch = Some(Arc::new(f));
        self
    }
    /// Builds the HTTPS client.
    pub fn build(self) -> Result<CitizenLogin> {
        let tls = |e: tscns_tls::Error| Error::Tls(e.to_string());
        let mut b = AuthClientBuilder::new(self.key)
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .tls_versions(self.versions);
        for h in &self.hosts {
            b = b.allow_host(h).map_err(tls)?;
        }
        for (i, pem) in self.cas.iter().enumerate() {
            b = b.add_ca_pem(pem, &format!("CA #{}", i + 1)).map_err(tls)?;
        }
        Ok(CitizenLogin {
            client: b.build().map_err(tls)?,
            on_site: self.on_site,
            on_mismatch: self.on_mismatch,
        })
    }
}

fn flow_error(e: tscns_tls::Error) -> Error {
    match e {
        tscns_tls::Error::Signing { .. } | tscns_tls::Error::NoCommonScheme { .. } => {
            Error::Key(e.to_string())
        }
        other => Error::Flow(other.to_string()),
    }
}

impl CitizenLogin {
    /// Starts a builder with the key to authenticate with.
    pub fn builder(key: Arc<dyn SigningKey>) -> CitizenLoginBuilder {
        CitizenLoginBuilder {
            key,
            hosts: COHESION_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            cas: Vec::new(),
            timeout: Duration::from_secs(30),
            versions: TlsVersions::Auto,
            on_site: None,
            on_mismatch: None,
        }
    }

    /// The underlying client (cookies, further requests with the same session).
    pub fn client(&self) -> &AuthClient {
        &self.client
    }

    /// GET `url` following redirects (bounded) like [`AuthClient::get`], recording every hop's
    /// cookies and the `id_sito` of the first Cohesion request seen.
    async fn get(&self, url: &Url, seen: &Seen) -> Result<tscns_tls::reqwest::Response> {
        let mut current = url.clone();
        for _ in 0..=tscns_tls::MAX_REDIRECTS {
            seen.site(self, &current);
            let r = self
                .client
                .client_for(&current)
                .get(current.clone())
                .send()
                .await;
            let resp = self.client.check(&current, r).map_err(flow_error)?;
            seen.site(self, resp.url());
            record_cookies(&seen.cookies, &resp);
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(tscns_tls::reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| resp.url().join(l).ok());
                if let Some(next) = next.filter(|n| n.host_str().is_some()) {
                    current = next;
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(Error::Flow(format!(
            "more than {} redirects from {url}",
            tscns_tls::MAX_REDIRECTS
        )))
    }

    /// Logs in starting from `protected_url`.
    pub async fn login(&self, protected_url: &str) -> Result<LoginOutcome> {
        let mut url = Url::parse(protected_url)
            .map_err(|e| Error::Flow(format!("{protected_url:?} is not a URL: {e}")))?;
        if url.host_str().is_none() {
            return Err(Error::Flow(format!("{protected_url:?} has no host")));
        }
        let start = url.clone();
        let seen = Seen::default();
        let mut resp = self.get(&url, &seen).await?;
        let mut posted_callback = false;
        for _ in 0..MAX_STEPS {
            url = resp.url().clone();
            let status = resp.status().as_u16();
            let body = resp
                .text()
                .await
                .map_err(|e| Error::Flow(format!("reading {url}: {e}")))?;
            if let Some((action, fields)) = pages::auto_post_form(&body)? {
                // Rule 2: the callback to the site's url_validate, only where the login started.
                let target = url
                    .join(&action)
                    .map_err(|e| Error::Flow(format!("callback action {action:?}: {e}")))?;
                callback_target_allowed(&start, &target)?;
                if self.client.is_allowed_url(&url) {
                    if let Some((_, auth)) = fields.iter().find(|(k, _)| k == "auth") {
                        if let Ok(doc) = crate::auth_doc::DsAuth::parse_base64("callback", auth) {
                            seen.callback_site(self, doc.get("id_sito"));
                        }
                    }
                }
                let client = self.client.client_for(&target);
                let r = client.post(target.clone()).form(&fields).send().await;
                let r = self.client.check(&target, r).map_err(flow_error)?;
                record_cookies(&seen.cookies, &r);
                posted_callback = true;
                resp = if r.status().is_redirection() {
                    let next = r
                        .headers()
                        .get("location")
                        .and_then(|l| l.to_str().ok())
                        .and_then(|l| target.join(l).ok())
                        .ok_or_else(|| Error::Flow("the site redirected nowhere".into()))?;
                    self.get(&next, &seen).await?
                } else {
                    r
                };
                continue;
            }
            if let Some(link) = pages::smart_card_link(&body)? {
                // Rule 1: the smart-card login, over the client-authenticated TLS listener.
                let target = url
                    .join(&link)
                    .map_err(|e| Error::Flow(format!("smart-card link {link:?}: {e}")))?;
                let host = target.host_str().unwrap_or_default().to_owned();
                if !self.client.is_allowed(&host) {
                    return Err(Error::HostNotAllowed { host });
                }
                resp = self.get(&target, &seen).await?;
                if resp.status().as_u16() >= 400 {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    let why = pages::error_text(&body)?.unwrap_or_default();
                    return Err(Error::Flow(format!(
                        "Cohesion refused the smart card (HTTP {status}): {why}"
                    )));
                }
                continue;
            }
            if let Some(link) = pages::cohesion_idp_link(&body)? {
                // Rule 4: the WAYF chooser; the card logs in at Cohesion's own IdP.
                let target = url
                    .join(&link)
                    .map_err(|e| Error::Flow(format!("identity-provider link {link:?}: {e}")))?;
                resp = self.get(&target, &seen).await?;
                continue;
            }
            if status >= 400 {
                let why = pages::error_text(&body)?.unwrap_or_else(|| "no explanation".into());
                return Err(Error::Flow(format!("{url} answered HTTP {status}: {why}")));
            }
            if !posted_callback {
                return Err(Error::Flow(format!(
                    "{url} is neither a Cohesion login page offering the smart card nor a callback: \
                     is the site protected by Cohesion, and does it allow smart-card login?"
                )));
            }
            let site_cookies =
                std::mem::take(&mut *seen.cookies.lock().unwrap_or_else(|p| p.into_inner()));
            return Ok(LoginOutcome {
                url,
                status,
                body,
                cookies: self.client.cookies().clone(),
                signatures: self.client.signatures(),
                site_id: seen.site_id(),
                site_cookies,
            });
        }
        Err(Error::Flow(format!(
            "the login did not finish within {MAX_STEPS} pages"
        )))
    }
}

/// What one login has seen so far: the site's id and the cookies set along the way.
#[derive(Default)]
struct Seen {
    site_id: Mutex<Option<String>>,
    cookies: Mutex<cookie_store::CookieStore>,
}

impl Seen {
    /// The `id_sito` of Cohesion's login request in `url`, if `url` is on an allowed Cohesion
    /// host (anyone else's URL can carry an `auth` parameter naming any site).
    fn site(&self, login: &CitizenLogin, url: &Url) {
        if self.site_id().is_none() && login.client.is_allowed_url(url) {
            if let Some(id) = site_id_in_url(url) {
                self.set_site(login.on_site.as_ref(), &id);
            }
        }
    }

    fn set_site(&self, on_site: Option<&SiteCallback>, id: &str) {
        let mut g = self.site_id.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() && !id.is_empty() {
            *g = Some(id.to_owned());
            drop(g);
            if let Some(f) = on_site {
                f(id);
            }
        }
    }

    /// The callback's `id_sito` (from a Cohesion page): the site's id if none was seen yet, else
    /// compared with the one shown.
    fn callback_site(&self, login: &CitizenLogin, id: &str) {
        self.callback_site_with(login.on_site.as_ref(), login.on_mismatch.as_ref(), id);
    }

    fn callback_site_with(
        &self,
        on_site: Option<&SiteCallback>,
        on_mismatch: Option<&MismatchCallback>,
        id: &str,
    ) {
        match self.site_id() {
            None => self.set_site(on_site, id),
            Some(shown) if shown != id => {
                tracing::warn!(
                    "Cohesion's callback is for the site {id:?}, not {shown:?} as its login request said"
                );
                if let Some(f) = on_mismatch {
                    f(&shown, id);
                }
            }
            Some(_) => {}
        }
    }

    fn site_id(&self) -> Option<String> {
        self.site_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_callback_goes_to_the_same_origin_over_https_or_loopback_only() {
        // Before: only the host was compared, so another port or plain http on the same host got
        // the citizen's session ids.
        let ok = [
            (
                "https://comune.example/area",
                "https://comune.example/cohesion/callback",
            ),
            (
                "https://comune.example:8443/a",
                "https://comune.example:8443/cb",
            ),
            (
                "http://127.0.0.1:8080/a",
                "http://127.0.0.1:8080/cb?state=x",
            ),
            ("http://localhost:8080/a", "http://localhost:8080/cb"),
            ("http://[::1]:8080/a", "http://[::1]:8080/cb"),
        ];
        for (start, target) in ok {
            callback_target_allowed(&u(start), &u(target))
                .unwrap_or_else(|e| panic!("{start} -> {target}: {e}"));
        }
        let elsewhere = [
            ("https://comune.example/a", "https://comune.example:444/cb"),
            ("https://comune.example/a", "http://comune.example/cb"),
            ("http://127.0.0.1:8080/a", "http://127.0.0.1:8081/cb"),
            ("https://comune.example/a", "https://evil.example/cb"),
            ("https://comune.example/a", "https://sub.comune.example/cb"),
        ];
        for (start, target) in elsewhere {
            assert!(
                matches!(
                    callback_target_allowed(&u(start), &u(target)),
                    Err(Error::CallbackElsewhere { .. })
                ),
                "{start} -> {target}"
            );
        }
        let e = callback_target_allowed(&u("http://127.0.0.1:1/"), &u("http://127.0.0.1:2/"))
            .unwrap_err();
        assert!(
            matches!(&e, Error::CallbackElsewhere { expected, got }
            if expected == "http://127.0.0.1:1" && got == "http://127.0.0.1:2"),
            "{e}"
        );
        assert!(matches!(
            callback_target_allowed(
                &u("http://comune.example/a"),
                &u("http://comune.example/cb")
            ),
            Err(Error::CallbackNotHttps { .. })
        ));
    }

    #[test]
    fn a_callback_for_another_site_is_reported_not_shown() {
        let shown = Arc::new(Mutex::new(Vec::<String>::new()));
        let mismatches = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let (s2, m2) = (shown.clone(), mismatches.clone());
        let on_site: SiteCallback = Arc::new(move |id| s2.lock().unwrap().push(id.to_owned()));
        let on_mismatch: MismatchCallback = Arc::new(move |a, b| {
            m2.lock().unwrap().push((a.to_owned(), b.to_owned()));
        });
        let seen = Seen::default();
        seen.set_site(Some(&on_site), "COMUNE_A");
        seen.callback_site_with(Some(&on_site), Some(&on_mismatch), "COMUNE_A");
        assert!(mismatches.lock().unwrap().is_empty());
        seen.callback_site_with(Some(&on_site), Some(&on_mismatch), "COMUNE_B");
        assert_eq!(seen.site_id().as_deref(), Some("COMUNE_A"));
        assert_eq!(*shown.lock().unwrap(), ["COMUNE_A"]);
        assert_eq!(
            *mismatches.lock().unwrap(),
            [("COMUNE_A".to_owned(), "COMUNE_B".to_owned())]
        );
        // With nothing seen before, the callback's id is the site's.
        let seen = Seen::default();
        seen.callback_site_with(Some(&on_site), Some(&on_mismatch), "COMUNE_C");
        assert_eq!(seen.site_id().as_deref(), Some("COMUNE_C"));
    }
}
