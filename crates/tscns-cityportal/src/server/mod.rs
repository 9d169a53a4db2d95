//! The reference portal (feature `server`): the pages a citizen opens after the Cohesion login
//! (**Interrogazione Anagrafe**, **Certificazione**, **Autocertificazione**), the JSON API under
//! `/api/v1` with its OpenAPI document, and the public verification page of certificates.
//!
//! - It is a Cohesion service provider in SAML mode built on `tscns-cohesion`: it trusts
//!   GetCredential only, never the callback; it refuses a login below its minimum level
//!   ([`PortalConfig::min_level`]: 0 password, 1 password+PIN/OTP, 2 smart card); it sends
//!   LogoutSito when the citizen signs out.
//! - Everything an instance needs lives in the [`Store`]: sessions (with their CSRF token),
//!   redeemed callbacks, rate-limit counters, certificates and the audit log. Several instances
//!   on one PostgreSQL database are one portal.
//! - Pages are Italian, server-rendered (maud), need no JavaScript, and carry a CSP without inline
//!   script, `X-Content-Type-Options: nosniff`, `frame-ancestors 'none'` and, under TLS, HSTS.
//!   Every form carries a CSRF token bound to the session, and a POST whose `Origin` (or
//!   `Sec-Fetch-Site`) shows another site is refused. Cookies are `HttpOnly`, `SameSite` and,
//!   under TLS, `Secure`.
//! - The JSON API takes the same session cookie; a program (no `Origin`, no `Sec-Fetch-Site`)
//!   needs no CSRF token, a browser's cross-site request is refused.
//! - Rate limits ([`RateLimits`]) are counted in the store per citizen and per address, so they
//!   hold across instances; over the limit the answer is 429 with `Retry-After`.
//!
//! ```no_run
//! # async fn f(sp: tscns_cohesion::ServiceProvider, key: std::sync::Arc<dyn tscns_cityportal::documents::SealKey>) -> Result<(), Box<dyn std::error::Error>> {
//! use tscns_cityportal::server::{Portal, PortalConfig};
//! use tscns_cityportal::store::Store;
//!
//! let store = Store::open_portal("sqlite://cityportal.db").await?;
//! let config = PortalConfig::new("https://comune.example".parse()?, "H769");
//! let portal = Portal::new(store, sp, key, config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tscns_cityportal::server::serve(listener, portal.router(), None, std::future::pending()).await;
//! # Ok(()) }
//! ```

pub mod api;
mod auth;
mod keygen;
mod pages;
mod service;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tscns_cohesion::{AuthRestriction, Environment, Mode, ServiceProvider, SpConfig, Url};

use crate::documents::SealKey;
use crate::domain::Municipality;
use crate::store::{Store, StoreError};

pub use api::ApiDoc;
pub use keygen::{test_seal, TestSeal};
pub use tls::tls_config;

/// The path Cohesion posts the login callback to (`url_validate`).
pub const CALLBACK_PATH: &str = "/cohesion/callback";
/// The session cookie's name on plain HTTP (loopback trials).
pub const SESSION_COOKIE: &str = "cityportal_session";
/// The session cookie's name under TLS: `__Host-` keeps a sibling subdomain from planting its
/// own session in the citizen's browser (login CSRF by cookie tossing).
pub const SESSION_COOKIE_TLS: &str = "__Host-cityportal_session";
/// The login-state cookie's name (login CSRF). `__Host-` makes browsers keep it only when
/// `Secure`, path `/` and host-only; browsers and cookie stores treat loopback `http` as secure.
pub const STATE_COOKIE: &str = "__Host-cityportal_login";

/// Why the portal could not start or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Cohesion configuration is unusable.
    #[error("Cohesion: {0}")]
    Cohesion(#[from] tscns_cohesion::Error),
    /// The municipality is not in the store.
    #[error("municipality {0} is not in the store: run `cityportal-server import --registry FILE --database URL` first")]
    NoMunicipality(String),
    /// A configuration value is unusable.
    #[error("{0}")]
    Config(String),
    /// TLS material is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// One rate limit: at most `limit` requests per `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in seconds (at most a day).
    pub window_secs: u32,
}

/// The portal's rate limits, each counted per citizen (codice fiscale) and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Certificate issuance: default 30 an hour.
    pub issue: Limit,
    /// Certificate and self-declaration downloads: default 300 an hour.
    pub download: Limit,
    /// Public verification (per address only): default 120 a minute.
    pub verify: Limit,
    /// Cohesion callbacks (per address only, times `per_address_factor`; counted before anything
    /// else is done or audited, so past it a forged callback costs one store write and no audit
    /// line): default 30 in 10 minutes, so 600 per address with the default factor.
    pub callback: Limit,
    /// Multiplier for the per-address limits (several citizens behind one address): default 20.
    /// An IPv6 address counts by its /64.
    pub per_address_factor: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            issue: Limit {
                limit: 30,
                window_secs: 3600,
            },
            download: Limit {
                limit: 300,
                window_secs: 3600,
            },
            verify: Limit {
                limit: 120,
                window_secs: 60,
            },
            callback: Limit {
                limit: 30,
                window_secs: 600,
            },
            per_address_factor: 20,
        }
    }
}

/// How the portal runs.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// The portal's public base URL (what browsers see; the QR codes point there).
    pub public_url: Url,
    /// Cadastral code of the municipality served (e.g. `H769`).
    pub municipality: String,
    /// Minimum login level: 0 password, 1 password+PIN/OTP, 2 smart card (default).
    pub min_level: u8,
    /// Whether the portal is served over TLS (HSTS, `Secure` session cookie).
    pub tls: bool,
    /// Rate limits.
    pub limits: RateLimits,
    /// Idle session lifetime (default 30 minutes).
    pub session_idle: Duration,
    /// Absolute session lifetime (default 8 hours).
    pub session_absolute: Duration,
}

impl PortalConfig {
    /// Defaults: minimum level 2 (smart card), TLS off, default limits and session lifetimes.
    pub fn new(public_url: Url, municipality: &str) -> Self {
        PortalConfig {
            tls: public_url.scheme() == "https",
            public_url,
            municipality: municipality.to_string(),
            min_level: 2,
            limits: RateLimits::default(),
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(8 * 60 * 60),
        }
    }

    /// Sets [`tls`](Self::tls) for a portal whose own listener does (`true`) or does not serve
    /// TLS: an `https` public URL counts as TLS either way, as behind a TLS-terminating reverse
    /// proxy the browser still speaks HTTPS (HSTS and the `Secure` `__Host-` cookie are kept).
    pub fn set_listener_tls(&mut self, listener_tls: bool) {
        self.tls = listener_tls || self.public_url.scheme() == "https";
    }

    /// The public URL without its trailing slash.
    pub fn base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_string()
    }

    /// The origin (`scheme://host:port`) a browser sends in `Origin`.
    pub fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

/// The Cohesion logins allowed at a minimum level (0 password, 1 password+PIN, 2 smart card).
pub fn restrictions_for_level(min_level: u8) -> Vec<AuthRestriction> {
    match min_level {
        0 => vec![
            AuthRestriction::Password,
            AuthRestriction::PasswordPin,
            AuthRestriction::SmartCard,
        ],
        1 => vec![AuthRestriction::PasswordPin, AuthRestriction::SmartCard],
        _ => vec![AuthRestriction::SmartCard],
    }
}

/// A service-provider configuration for the portal: SAML mode straight to Cohesion's IdP, the
/// logins of `min_level`, `url_validate` at [`CALLBACK_PATH`] of `public_url`, the SAML logout
/// URL at `public_url`, Cohesion's profile-signing certificate, the CA of Cohesion's HTTPS
/// certificate. The replay check is the portal's own, in the store (several instances).
pub fn sp_config(
    cohesion: Url,
    cohesion_ca_pem: &[u8],
    cohesion_signing_cert_pem: &[u8],
    site_id: &str,
    public_url: &Url,
    min_level: u8,
) -> Result<SpConfig, tscns_cohesion::Error> {
    let base = public_url.as_str().trim_end_matches('/');
    // The replay claim is the store's (`claim_callback`), shared by every instance.
    let mut checks = tscns_cohesion::Checks::default();
    checks.replay = false;
    SpConfig::builder()
        .environment(Environment::Custom(cohesion))
        .site_id(site_id)
        .mode(Mode::Saml {
            direct_to_cohesion_idp: true,
        })
        .restrictions(restrictions_for_level(min_level))
        .url_validate(format!("{base}{CALLBACK_PATH}"))
        .logout_url(format!("{base}/"))
        .cohesion_certificate(cohesion_signing_cert_pem)
        .trust_ca(cohesion_ca_pem)
        .native_roots(false)
        .checks(checks)
        .build()
}

/// The portal: its store, Cohesion service provider, seal key and configuration. Cheap to clone.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sp: ServiceProvider,
    seal: Arc<dyn SealKey>,
    config: PortalConfig,
    municipality: Municipality,
    csp: HeaderValue,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// A portal for the municipality of `config`, which must be in `store` (imported).
    pub async fn new(
        store: Store,
        sp: ServiceProvider,
        seal: Arc<dyn SealKey>,
        config: PortalConfig,
    ) -> Result<Portal, ServerError> {
        let municipality = store
            .municipality(&config.municipality)
            .await?
            .ok_or_else(|| ServerError::NoMunicipality(config.municipality.clone()))?;
        if config.min_level > 2 {
            return Err(ServerError::Config(format!(
                "minimum level {} does not exist: use 0 (password), 1 (password+PIN/OTP) or 2 (smart card)",
                config.min_level
            )));
        }
        let cohesion_origin = sp.config().base_url().origin().ascii_serialization();
        // Forms post to the portal; the sign-out form's answer redirects to Cohesion's logout.
        let csp = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {cohesion_origin}; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        let csp = HeaderValue::from_str(&csp)
            .map_err(|_| ServerError::Config("the Cohesion URL cannot go in a header".into()))?;
        Ok(Portal {
            inner: Arc::new(Inner {
                store,
                sp,
                seal,
                config,
                municipality,
                csp,
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &PortalConfig {
        &self.inner.config
    }

    /// The municipality served.
    pub fn municipality(&self) -> &Municipality {
        &self.inner.municipality
    }

    /// Every route: pages, login, JSON API, verification, static files; with the security
    /// headers on every answer.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(pages::routes())
            .merge(auth::routes())
            .merge(api::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                security_headers,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
            .with_state(self.clone())
    }
}

async fn security_headers(State(p): State<Portal>, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, p.inner.csp.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with no-referrer browsers send `Origin: null` on POST.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if p.inner.config.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

/// The client address of a request (set by [`serve`]); `-` when unknown.
pub(crate) fn remote(info: Option<&ConnectInfo<SocketAddr>>) -> String {
    info.map_or_else(|| "-".to_string(), |c| c.0.ip().to_string())
}

/// Extractor of the client address (`-` when the server did not record it).
pub(crate) struct ClientAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(remote(
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
        )))
    }
}

/// An answer for a store failure: logged, generic to the citizen.
pub(crate) fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!("cityportal: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Errore interno del portale: riprovi più tardi.",
    )
        .into_response()
}

/// Serves `router` on `listener` (plain HTTP/1.1, or TLS with `tls`) until `shutdown` completes.
/// Each request carries its client address as `ConnectInfo<SocketAddr>`; a connection that sends
/// no complete header within 30 s, or a TLS handshake that takes longer than 20 s, is dropped.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    tls::serve(listener, router, tls, shutdown).await;
}
