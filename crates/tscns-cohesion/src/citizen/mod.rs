//! The citizen's side: log in to a site protected by Cohesion with a TS-CNS card (or any
//! `tscns_tls::SigningKey`), as a browser would, but by a program.
//!
//! The flow, from a protected page: follow the redirects to Cohesion; on the login page choose the
//! smart card ([`pages`] holds every page-specific rule); complete the TLS client-authenticated step
//! (the certificate is presented only to the Cohesion hosts in the allowlist: one handshake, one card
//! signature); post the auto-posting callback form to the site; follow the site's redirects back to
//! the protected page. The result carries the site's cookie jar.
//!
//! The PIN is not handled here: verify it on the card before building the key, once.

pub mod pages;

use std::sync::Arc;
use std::time::Duration;

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
}

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
        }
    }

    /// The underlying client (cookies, further requests with the same session).
    pub fn client(&self) -> &AuthClient {
        &self.client
    }

    /// Logs in starting from `protected_url`.
    pub async fn login(&self, protected_url: &str) -> Result<LoginOutcome> {
        let mut url = Url::parse(protected_url)
            .map_err(|e| Error::Flow(format!("{protected_url:?} is not a URL: {e}")))?;
        let mut resp = self.client.get(url.as_str()).await.map_err(flow_error)?;
        let mut posted_callback = false;
        for _ in 0..MAX_STEPS {
            url = resp.url().clone();
            let status = resp.status().as_u16();
            let body = resp
                .text()
                .await
                .map_err(|e| Error::Flow(format!("reading {url}: {e}")))?;
            if let Some((action, fields)) = pages::auto_post_form(&body)? {
                // Rule 2: the callback to the site's url_validate.
                let target = url
                    .join(&action)
                    .map_err(|e| Error::Flow(format!("callback action {action:?}: {e}")))?;
                let client = self.client.client_for(&target);
                let r = client.post(target.clone()).form(&fields).send().await;
                let r = self.client.check(&target, r).map_err(flow_error)?;
                posted_callback = true;
                resp = if r.status().is_redirection() {
                    let next = r
                        .headers()
                        .get("location")
                        .and_then(|l| l.to_str().ok())
                        .and_then(|l| target.join(l).ok())
                        .ok_or_else(|| Error::Flow("the site redirected nowhere".into()))?;
                    self.client.get(next.as_str()).await.map_err(flow_error)?
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
                    return Err(Error::Flow(format!(
                        "the smart-card login is on {host}, which is not an allowed Cohesion host: \
                         the card's certificate is never shown to it (add it with --cohesion-host if it is yours)"
                    )));
                }
                resp = self.client.get(target.as_str()).await.map_err(flow_error)?;
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
                resp = self.client.get(target.as_str()).await.map_err(flow_error)?;
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
            return Ok(LoginOutcome {
                url,
                status,
                body,
                cookies: self.client.cookies().clone(),
                signatures: self.client.signatures(),
            });
        }
        Err(Error::Flow(format!(
            "the login did not finish within {MAX_STEPS} pages"
        )))
    }
}
