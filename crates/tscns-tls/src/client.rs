//! A ready HTTP client that logs in with the card: one reqwest client per allowed host (presenting
//! the certificate) and one for every other host (presenting nothing), sharing one cookie jar.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{redirect, Url};
use rustls::RootCertStore;

use crate::allowlist::{normalize_host, HostAllowlist};
use crate::error::Error;
use crate::key::SigningKey;
use crate::rustls_glue::{
    self, client_config, protocol_versions, ClientAuthFailure, ClientAuthState, ClientIdentity,
    TlsVersion, TlsVersions,
};

/// The most redirects [`AuthClient::get`] follows.
pub const MAX_REDIRECTS: usize = 10;

/// Builds an [`AuthClient`].
#[derive(Debug)]
pub struct AuthClientBuilder {
    key: Option<Arc<dyn SigningKey>>,
    allowlist: HostAllowlist,
    roots: Option<RootCertStore>,
    versions: TlsVersions,
    timeout: Duration,
    connect_timeout: Duration,
    reuse_connections: bool,
    user_agent: String,
}

impl AuthClientBuilder {
    /// A client that logs in with `key` to the hosts you allow.
    pub fn new(key: Arc<dyn SigningKey>) -> Self {
        Self {
            key: Some(key),
            ..Self::anonymous()
        }
    }

    /// A client without a key (never presents a certificate).
    pub fn anonymous() -> Self {
        Self {
            key: None,
            allowlist: HostAllowlist::new(),
            roots: None,
            versions: TlsVersions::Auto,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            reuse_connections: true,
            user_agent: concat!("tscns/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Allows `host` to receive the certificate: a bare host at every port, `host:port` at that port
    /// only (see [`HostAllowlist::allow`]). A program that allows the host of a URL the user gave
    /// should pass that URL's port too.
    pub fn allow_host(mut self, host: &str) -> Result<Self, Error> {
        self.allowlist.allow(host)?;
        Ok(self)
    }

    /// Trusts the CA certificates in `pem` (instead of the system's store, once any is added).
    pub fn add_ca_pem(mut self, pem: &[u8], name: &str) -> Result<Self, Error> {
        let store = self.roots.get_or_insert_with(RootCertStore::empty);
        rustls_glue::add_pem_roots(store, pem).map_err(|reason| Error::CaFile {
            path: name.to_string(),
            reason,
        })?;
        Ok(self)
    }

    /// Trusts the CA certificates in the PEM file at `path`.
    pub fn add_ca_file(self, path: &std::path::Path) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|e| Error::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        self.add_ca_pem(&pem, &path.display().to_string())
    }

    /// Which TLS versions to offer (default: chosen from the key's capability).
    pub fn tls_versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Whole-request timeout (default 60 s: a card signature takes a while).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connect timeout (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Keep idle connections for reuse (default true). With `false` every request makes a new TLS
    /// connection — which then resumes the TLS session instead of signing again.
    pub fn reuse_connections(mut self, reuse: bool) -> Self {
        self.reuse_connections = reuse;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<AuthClient, Error> {
        let identity = self.key.map(ClientIdentity::new).transpose()?;
        let versions = protocol_versions(self.versions, identity.as_ref())?;
        let roots = Arc::new(match self.roots {
            Some(r) => r,
            None => rustls_glue::system_roots(),
        });
        if roots.is_empty() {
            return Err(Error::NoTrustAnchors);
        }
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let base = |config: rustls::ClientConfig, host: Option<String>| {
            let policy = match host {
                // Follow redirects only within the same host: a redirect elsewhere is handed back so
                // that the right (certificate-less or other host's) client takes over.
                Some(host) => {
                    let allowlist = self.allowlist.clone();
                    redirect::Policy::custom(move |attempt| {
                        let url = attempt.url();
                        let same = url
                            .host_str()
                            .and_then(|h| normalize_host(h).ok())
                            .is_some_and(|h| {
                                h == host
                                    && url
                                        .port_or_known_default()
                                        .is_some_and(|p| allowlist.allows_at(&h, p))
                            });
                        if attempt.previous().len() > MAX_REDIRECTS {
                            attempt.error("too many redirects")
                        } else if same {
                            attempt.follow()
                        } else {
                            attempt.stop()
                        }
                    })
                }
                None => redirect::Policy::none(),
            };
            let mut b = reqwest::Client::builder()
                .tls_backend_preconfigured(config)
                .cookie_provider(jar.clone())
                .timeout(self.timeout)
                .connect_timeout(self.connect_timeout)
                .redirect(policy)
                .no_proxy()
                .user_agent(self.user_agent.clone());
            if !self.reuse_connections {
                b = b.pool_max_idle_per_host(0);
            }
            b.build().map_err(|e| Error::Config(e.to_string()))
        };
        let (anon_cfg, _) = client_config(roots.clone(), &versions, None)?;
        let anonymous = base(anon_cfg, None)?;
        let mut per_host = BTreeMap::new();
        if let Some(identity) = &identity {
            for host in self.allowlist.hosts() {
                let (cfg, state) = client_config(roots.clone(), &versions, Some((identity, host)))?;
                let state = state.ok_or_else(|| Error::Config("no client-auth state".into()))?;
                per_host.insert(
                    host.to_string(),
                    HostClient {
                        client: base(cfg, Some(host.to_string()))?,
                        state,
                    },
                );
            }
        }
        Ok(AuthClient {
            identity,
            versions: self.versions,
            allowlist: self.allowlist,
            anonymous,
            per_host,
            jar,
        })
    }
}

#[derive(Debug)]
struct HostClient {
    client: reqwest::Client,
    state: Arc<ClientAuthState>,
}

/// An HTTPS client that presents the card's certificate only to allowed hosts, resumes TLS sessions
/// (one signature per host, not per request), keeps cookies and has timeouts set.
///
/// Signing happens inside the TLS handshake and is synchronous: a card signature blocks the calling
/// async task for its duration.
#[derive(Debug)]
pub struct AuthClient {
    identity: Option<ClientIdentity>,
    versions: TlsVersions,
    allowlist: HostAllowlist,
    anonymous: reqwest::Client,
    per_host: BTreeMap<String, HostClient>,
    jar: Arc<reqwest::cookie::Jar>,
}

impl AuthClient {
    /// The reqwest client to use for `url`: the one that presents the certificate if the URL's host
    /// is allowed at the URL's port, otherwise one that never does. Its redirects stay on that host
    /// and its allowed ports.
    pub fn client_for(&self, url: &Url) -> &reqwest::Client {
        self.host_client(url)
            .map(|h| &h.client)
            .unwrap_or(&self.anonymous)
    }

    fn host_client(&self, url: &Url) -> Option<&HostClient> {
        let host = url.host_str().and_then(|h| normalize_host(h).ok())?;
        let port = url.port_or_known_default()?;
        if !self.allowlist.allows_at(&host, port) {
            return None;
        }
        self.per_host.get(&host)
    }

    /// Whether `host` is allowed to receive the certificate: `host:port` at that port, a bare `host`
    /// at every port (see [`HostAllowlist::allows`]).
    pub fn is_allowed(&self, host: &str) -> bool {
        self.identity.is_some() && self.allowlist.allows(host)
    }

    /// Whether a request to `url` presents the certificate (its host allowed at its port).
    pub fn is_allowed_url(&self, url: &Url) -> bool {
        self.identity.is_some() && self.host_client(url).is_some()
    }

    /// The TLS versions of the handshakes that carried the certificate so far, oldest first. A
    /// [`TlsVersion::Tls12`] in it means the citizen's name and codice fiscale crossed the network in
    /// clear (see the [allowlist's documentation](crate::HostAllowlist)): a program should tell the
    /// user.
    pub fn certificate_sent_over(&self) -> Vec<TlsVersion> {
        self.identity
            .as_ref()
            .map(ClientIdentity::certificate_sent_over)
            .unwrap_or_default()
    }

    /// The shared cookie jar.
    pub fn cookies(&self) -> &Arc<reqwest::cookie::Jar> {
        &self.jar
    }

    /// Signatures the key has made so far.
    pub fn signatures(&self) -> u64 {
        self.identity
            .as_ref()
            .map(ClientIdentity::signatures)
            .unwrap_or(0)
    }

    /// The identity's schemes, most preferred first (empty without a key).
    pub fn schemes(&self) -> &[crate::SignatureScheme] {
        self.identity
            .as_ref()
            .map(ClientIdentity::schemes)
            .unwrap_or_default()
    }

    /// GET `url`, following up to [`MAX_REDIRECTS`] redirects, switching to the right client when a
    /// redirect leaves the host. Fails with a typed error if the certificate could not be presented.
    pub async fn get(&self, url: &str) -> Result<reqwest::Response, Error> {
        let mut current = Url::parse(url).map_err(|_| Error::InvalidUrl(url.to_string()))?;
        if current.host_str().is_none() {
            return Err(Error::InvalidUrl(url.to_string()));
        }
        for _ in 0..=MAX_REDIRECTS {
            let result = self.client_for(&current).get(current.clone()).send().await;
            let resp = self.check(&current, result)?;
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| resp.url().join(l).ok());
                if let Some(next) = next {
                    if next.host_str().is_some() {
                        current = next;
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
        Err(Error::TooManyRedirects(MAX_REDIRECTS, url.to_string()))
    }

    /// Turns the outcome of a request sent with [`client_for`](Self::client_for) into this crate's
    /// errors: a recorded client-auth failure (no common scheme, signing error) wins over whatever the
    /// server then did, even if it answered without authenticating us.
    pub fn check(
        &self,
        url: &Url,
        result: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, Error> {
        let host = url.host_str().unwrap_or_default().to_string();
        if let Some(failure) = self.host_client(url).and_then(|h| h.state.take_failure()) {
            return Err(match failure {
                ClientAuthFailure::NoCommonScheme { offered, supported } => {
                    let hint = if supported.iter().all(|s| !s.is_pss()) {
                        "; TLS 1.3 needs RSA-PSS, which this key cannot produce: use TLS 1.2".into()
                    } else {
                        String::new()
                    };
                    Error::NoCommonScheme {
                        host,
                        offered: if offered.is_empty() {
                            "nothing usable".into()
                        } else {
                            offered.join(", ")
                        },
                        supported: rustls_glue::join(&supported),
                        hint,
                    }
                }
                ClientAuthFailure::Signing(source) => Error::Signing { host, source },
            });
        }
        result.map_err(|e| classify(&host, url, self.versions, e))
    }
}

fn classify(host: &str, url: &Url, versions: TlsVersions, e: reqwest::Error) -> Error {
    if let Some(r) = rustls_glue::find_rustls_error(&e) {
        let reason = r.to_string();
        if versions == TlsVersions::Tls13 && rustls_glue::is_version_mismatch(r) {
            return Error::Tls13Required {
                host: host.to_string(),
                reason,
            };
        }
        if rustls_glue::is_untrusted_server(r) {
            return Error::UntrustedServer {
                host: host.to_string(),
                reason,
            };
        }
        return Error::HandshakeRefused {
            host: host.to_string(),
            reason,
        };
    }
    Error::Http {
        url: url.to_string(),
        source: e,
    }
}
