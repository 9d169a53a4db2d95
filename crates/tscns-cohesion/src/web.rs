//! axum integration (feature `axum`): routes that do the whole Cohesion dance and an extractor that
//! yields the logged-in citizen.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tscns_cohesion::web::{Cohesion, CohesionUser};
//!
//! # fn f(sp: tscns_cohesion::ServiceProvider) {
//! let cohesion = Cohesion::new(sp);
//! let app: Router = Router::new()
//!     .route("/area-riservata", get(|user: CohesionUser| async move {
//!         format!("Ciao {}", user.0.profile.login())
//!     }))
//!     .merge(cohesion.routes())
//!     .layer(cohesion.layer());
//! // Serve it with the peer address, for the per-client rate limit of forged callbacks:
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//! # }
//! ```
//!
//! - a request to a handler taking [`CohesionUser`] without a session is redirected to
//!   `/cohesion/login?return=<path>`, which sets a short-lived state cookie ([`STATE_COOKIE`],
//!   `__Host-` prefixed) and redirects to Cohesion with the same state in `url_validate`;
//! - the callback route (the path of the configured `url_validate`) checks that the state in its
//!   URL is the one in the browser's state cookie (login CSRF: nobody can log a victim into the
//!   attacker's account), parses the untrusted callback, redeems it with GetCredential (rate-limited
//!   per client address, see [`ClientIp`]), runs the
//!   checks, sets an HttpOnly session cookie and redirects to the `return` path (a same-origin
//!   path only: no scheme, no `//`, no backslash, no control or space characters);
//! - sessions expire after an idle time and an absolute time ([`Cohesion::session_ttl`]); the
//!   store is bounded and, when full, drops expired sessions and then the oldest;
//! - errors the citizen sees are a generic Italian page; the details go to the log (`tracing`),
//!   never with the codice fiscale;
//! - `/cohesion/logout` sends LogoutSito, forgets the session and redirects to Cohesion's browser
//!   logout page (SAML mode) or `/`.
//!
//! Sessions live in this process's memory: a site served by several processes needs sticky
//! sessions or its own session store. The state cookie is `Secure` (the `__Host-` prefix demands
//! it), so `url_validate` must be `https`, or plain `http` on `localhost`/`127.0.0.1`, which
//! browsers treat as secure; a browser keeps one login state, so of two logins started at once in
//! two tabs only the later one completes (the other shows the error page and starts again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::OffsetDateTime;

use crate::error::Error;
pub use crate::redirect::same_origin_path;
use crate::sp::{LoggedIn, ServiceProvider, UntrustedCallback};

/// Name of the session cookie of a site served over plain `http` (loopback development only).
/// Over `https` the session cookie is [`HOST_SESSION_COOKIE`]; see [`Cohesion::session_cookie_name`].
pub const SESSION_COOKIE: &str = "tscns_cohesion_session";
/// Name of the session cookie of a site whose `url_validate` is `https`. The `__Host-` prefix makes
/// browsers accept it only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot
/// plant its own session in the victim's browser (login CSRF by cookie tossing); a cookie without
/// the prefix is never read over `https`.
pub const HOST_SESSION_COOKIE: &str = "__Host-tscns_cohesion_session";
/// Name of the login-state cookie (login CSRF protection). The `__Host-` prefix makes browsers
/// accept it only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
pub const STATE_COOKIE: &str = "__Host-tscns_cohesion_state";
/// Path of the login route.
pub const LOGIN_PATH: &str = "/cohesion/login";
/// Path of the logout route.
pub const LOGOUT_PATH: &str = "/cohesion/logout";
/// Default bound on sessions kept in memory.
pub const MAX_SESSIONS: usize = 100_000;
/// Default idle time after which a session ends.
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(30 * 60);
/// Default absolute lifetime of a session, however active.
pub const DEFAULT_ABSOLUTE_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// The longest absolute lifetime [`Cohesion::session_ttl`] accepts (longer values are cut to it).
pub const MAX_ABSOLUTE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest callback body the callback route reads: a form-encoded `auth` of at most
/// `2 * MAX_CALLBACK_BYTES` base64 characters, each at most 3 bytes once percent-encoded, and slack.
pub const MAX_CALLBACK_BODY: usize = crate::MAX_CALLBACK_BYTES * 2 * 3 + 1024;
/// How long a login may take between `/cohesion/login` and the callback.
const STATE_TTL: Duration = Duration::from_secs(15 * 60);
/// Query parameters added to `url_validate`.
const RETURN_PARAM: &str = "return";
const STATE_PARAM: &str = "state";

/// The Cohesion integration of one site: its service provider and its sessions (in memory).
#[derive(Clone)]
pub struct Cohesion {
    sp: ServiceProvider,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    idle: time::Duration,
    absolute: time::Duration,
    max_sessions: usize,
}

#[derive(Clone)]
struct Session {
    user: LoggedIn,
    created: OffsetDateTime,
    last_seen: OffsetDateTime,
}

impl std::fmt::Debug for Cohesion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cohesion")
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// The browser's address, for the per-client rate limit of unconfirmed callbacks
/// ([`ServiceProvider::redeem_from`]). Behind a reverse proxy, insert it as a request extension
/// (a middleware that reads the header your proxy sets, and only from your proxy): the callback
/// route prefers it to the TCP peer.
///
/// Without it the route uses the TCP peer address, which axum provides only when the app is
/// served with connect info:
/// `axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())`.
/// With neither, every callback shares one bucket, and a flood of forged callbacks from one
/// client delays every citizen's login (a warning is logged once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    if let Some(ClientIp(ip)) = parts.extensions.get::<ClientIp>() {
        return Some(*ip);
    }
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address as an extractor that never fails.
struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(client_ip(parts)))
    }
}

/// The logged-in citizen, as an axum extractor. Without a session the request is redirected to
/// the login route.
#[derive(Debug, Clone)]
pub struct CohesionUser(pub LoggedIn);

impl<S: Send + Sync> FromRequestParts<S> for CohesionUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(c) = parts.extensions.get::<Cohesion>().cloned() else {
            tracing::error!("Cohesion layer missing: add .layer(cohesion.layer())");
            return Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Si è verificato un errore interno del sito.",
            ));
        };
        let jar = CookieJar::from_headers(&parts.headers);
        if let Some(id) = jar
            .get(c.session_cookie_name())
            .map(|k| k.value().to_owned())
        {
            if let Some(user) = c.session(&id) {
                return Ok(CohesionUser(user));
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let ret: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        Err(Redirect::to(&format!("{LOGIN_PATH}?{RETURN_PARAM}={ret}")).into_response())
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    #[serde(rename = "return")]
    ret: Option<String>,
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    #[serde(rename = "return")]
    ret: Option<String>,
    state: Option<String>,
}

/// 32 random bytes from the OS, hex: a session id or a state nonce. Fails closed: no id at all
/// rather than a predictable one.
fn random_id() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    random_id_from(|b| ring::rand::SystemRandom::new().fill(b))
}

fn random_id_from(
    fill: impl FnOnce(&mut [u8]) -> Result<(), ring::error::Unspecified>,
) -> Result<String, ring::error::Unspecified> {
    let mut b = [0u8; 32];
    fill(&mut b)?;
    Ok(hex::encode(b))
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl Cohesion {
    /// Wraps a service provider, with the default session lifetimes ([`DEFAULT_IDLE_TTL`],
    /// [`DEFAULT_ABSOLUTE_TTL`]) and bound ([`MAX_SESSIONS`]).
    pub fn new(sp: ServiceProvider) -> Self {
        Cohesion {
            sp,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            idle: to_time(DEFAULT_IDLE_TTL),
            absolute: to_time(DEFAULT_ABSOLUTE_TTL),
            max_sessions: MAX_SESSIONS,
        }
    }

    /// Sets the session lifetimes: a session ends `idle` after its last request, and `absolute`
    /// after the login whatever happens. Both are bounded: `absolute` to [`MAX_ABSOLUTE_TTL`], `idle`
    /// to `absolute`, and each to at least one second.
    pub fn session_ttl(mut self, idle: Duration, absolute: Duration) -> Self {
        let absolute = absolute.clamp(Duration::from_secs(1), MAX_ABSOLUTE_TTL);
        let idle = idle.clamp(Duration::from_secs(1), absolute);
        self.idle = to_time(idle);
        self.absolute = to_time(absolute);
        self
    }

    /// Sets the bound on sessions kept (at least 1). When it is reached, expired sessions are
    /// dropped, then the oldest.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n.max(1);
        self
    }

    /// The layer that makes [`CohesionUser`] work in every route of the app.
    pub fn layer(&self) -> Extension<Cohesion> {
        Extension(self.clone())
    }

    /// The login, callback and logout routes.
    pub fn routes(&self) -> Router {
        let callback_path = self.sp.config().url_validate().path().to_owned();
        Router::new()
            .route(LOGIN_PATH, get(login))
            .route(
                &callback_path,
                post(callback).layer(DefaultBodyLimit::max(MAX_CALLBACK_BODY)),
            )
            .route(LOGOUT_PATH, get(logout))
            .with_state(self.clone())
    }

    /// Sessions held now (expired ones included until they are dropped).
    pub fn session_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> OffsetDateTime {
        self.sp.config().clock.now()
    }

    fn alive(&self, s: &Session, now: OffsetDateTime) -> bool {
        now - s.last_seen < self.idle && now - s.created < self.absolute
    }

    /// The session's user if it is alive (and marks it used); an expired one is dropped.
    fn session(&self, id: &str) -> Option<LoggedIn> {
        let now = self.now();
        let mut sessions = self.lock();
        let s = sessions.get_mut(id)?;
        if self.alive(s, now) {
            s.last_seen = now.max(s.last_seen);
            Some(s.user.clone())
        } else {
            sessions.remove(id);
            None
        }
    }

    fn insert(&self, id: String, user: LoggedIn) {
        let now = self.now();
        let mut sessions = self.lock();
        if sessions.len() >= self.max_sessions {
            sessions.retain(|_, s| self.alive(s, now));
        }
        while sessions.len() >= self.max_sessions {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| (s.last_seen, s.created))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    sessions.remove(&k);
                }
                None => break,
            }
        }
        sessions.insert(
            id,
            Session {
                user,
                created: now,
                last_seen: now,
            },
        );
    }

    fn secure(&self) -> bool {
        self.sp.config().url_validate().scheme() == "https"
    }

    /// The name of the session cookie: [`HOST_SESSION_COOKIE`] when `url_validate` is `https`,
    /// [`SESSION_COOKIE`] for a plain-`http` site (loopback development; browsers keep the
    /// `Secure` state cookie over `http` only on `localhost`/`127.0.0.1`, so the login works
    /// nowhere else over `http`).
    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure() {
            HOST_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The session cookie with the attributes its name demands (`__Host-`: `Secure`, `Path=/`, no
    /// `Domain`).
    fn session_cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.session_cookie_name(), value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure())
            .build()
    }
}

/// The generic page a citizen sees when the login cannot go on: Italian, no details, a way back.
fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Accesso non riuscito</title></head><body><main>\
<h1>Accesso non riuscito</h1><p>{message}</p>\
<p><a href=\"{LOGIN_PATH}\">Riprova l'accesso</a> oppure <a href=\"/\">torna alla pagina iniziale</a>.</p>\
</main></body></html>\n"
    );
    let mut r = (status, Html(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// At most this many characters of one error go to the log.
const MAX_LOG_CHARS: usize = 300;

/// An untrusted string made safe for one log line: control and non-ASCII characters escaped (no
/// forged log lines, no terminal escapes, no bidi tricks), cut to [`MAX_LOG_CHARS`].
fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= MAX_LOG_CHARS {
            out.push_str("…(cut)");
            break;
        }
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// What the log says about a refused login: what went wrong, never the personal data or the raw
/// text an attacker controls. An identity mismatch (whose message names two codici fiscali) and an
/// unsuccessful `esito` are summarised; every other message (field names, not values, for the
/// profile's fields) is escaped and cut.
fn log_reason(e: &Error) -> String {
    match e {
        Error::IdentityMismatch { .. } => {
            "the profile and the callback name different citizens (identity mismatch)".into()
        }
        Error::LoginNotSuccessful(esito) => format!(
            "Cohesion reports the login did not succeed (esito_auth_sso = {:?})",
            sanitize(esito)
        ),
        other => sanitize(&other.to_string()),
    }
}

/// The citizen's page for an error of the callback or of the redemption.
fn refusal(e: &Error) -> Response {
    tracing::warn!("Cohesion login refused: {}", log_reason(e));
    match e {
        Error::InsufficientLevel { .. } => error_page(
            StatusCode::FORBIDDEN,
            "Il modo in cui hai effettuato l'accesso non basta per questo servizio: \
             accedi di nuovo con un metodo più sicuro, per esempio la Carta Nazionale dei Servizi.",
        ),
        Error::RateLimited | Error::ReplayStoreFull => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "In questo momento il sito riceve troppe richieste di accesso. Riprova tra qualche minuto.",
        ),
        Error::Http { .. } | Error::HttpStatus { .. } | Error::Tls(_) => error_page(
            StatusCode::BAD_GATEWAY,
            "Il servizio di autenticazione Cohesion non risponde. Riprova più tardi.",
        ),
        Error::Expired { .. } | Error::Replay | Error::CredentialRefused(_) => error_page(
            StatusCode::FORBIDDEN,
            "La sessione di accesso è scaduta o è già stata usata. Accedi di nuovo.",
        ),
        _ => error_page(
            StatusCode::FORBIDDEN,
            "Non è stato possibile confermare il tuo accesso con Cohesion. Accedi di nuovo.",
        ),
    }
}

fn internal_error(what: &str) -> Response {
    tracing::error!("Cohesion login: {what}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Si è verificato un errore interno del sito. Riprova più tardi.",
    )
}

fn state_cookie(value: String, max_age: Duration) -> Cookie<'static> {
    Cookie::build((STATE_COOKIE, value))
        .path("/")
        .secure(true)
        .http_only(true)
        // The callback is a cross-site POST from Cohesion's page: a Lax cookie would not come back.
        .same_site(SameSite::None)
        .max_age(to_time(max_age))
        .build()
}

/// The citizen's page for a request axum's extractors refused (a query string that does not
/// parse, e.g. `?state=a&state=b`; a body over the limit): the Italian error page, not axum's
/// English plain text; the details go to the log.
fn bad_request(what: &str, status: StatusCode, detail: &dyn std::fmt::Display) -> Response {
    tracing::warn!("Cohesion {what} refused: {}", sanitize(&detail.to_string()));
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "La risposta del servizio di autenticazione è troppo grande. Accedi di nuovo."
    } else {
        "La richiesta di accesso non è valida. Accedi di nuovo."
    };
    error_page(status, message)
}

fn query_refused(what: &str, e: &QueryRejection) -> Response {
    bad_request(what, StatusCode::BAD_REQUEST, e)
}

fn body_refused(e: &BytesRejection) -> Response {
    let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    bad_request("callback body", status, e)
}

async fn login(
    State(c): State<Cohesion>,
    jar: CookieJar,
    q: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return query_refused("login", &e),
    };
    let Ok(state) = random_id() else {
        return internal_error("the system random generator failed: no login state");
    };
    let cfg = c.sp.config();
    let mut validate = cfg.url_validate().clone();
    {
        let mut pairs = validate.query_pairs_mut();
        if let Some(ret) = q.ret.as_deref().and_then(same_origin_path) {
            pairs.append_pair(RETURN_PARAM, ret);
        }
        pairs.append_pair(STATE_PARAM, &state);
    }
    match c.sp.login_url_with(&validate, &validate) {
        Ok(u) => (
            jar.add(state_cookie(state, STATE_TTL)),
            Redirect::to(u.as_str()),
        )
            .into_response(),
        Err(e) => internal_error(&format!("cannot build the login URL: {e}")),
    }
}

/// Constant-time equality of two nonces.
fn same_nonce(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn callback(
    State(c): State<Cohesion>,
    Peer(peer): Peer,
    jar: CookieJar,
    q: Result<Query<CallbackQuery>, QueryRejection>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let expected = jar.get(STATE_COOKIE).map(|k| k.value().to_owned());
    let jar = jar.remove(state_cookie(String::new(), Duration::ZERO));
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return (jar, query_refused("callback", &e)).into_response(),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return (jar, body_refused(&e)).into_response(),
    };
    let state_ok = match (&expected, &q.state) {
        (Some(cookie), Some(url)) => !cookie.is_empty() && same_nonce(cookie, url),
        _ => false,
    };
    if !state_ok {
        tracing::warn!(
            "Cohesion callback refused: login state missing or different from the browser's \
             (expired login, or a login started elsewhere: login CSRF)"
        );
        let page = error_page(
            StatusCode::FORBIDDEN,
            "La richiesta di accesso è scaduta o non è partita da questo browser. Accedi di nuovo.",
        );
        return (jar, page).into_response();
    }
    let cb = match UntrustedCallback::from_form_body(&body) {
        Ok(cb) => cb,
        Err(e) => {
            tracing::warn!("Cohesion callback refused: {}", log_reason(&e));
            let page = error_page(
                StatusCode::BAD_REQUEST,
                "La risposta del servizio di autenticazione non è valida. Accedi di nuovo.",
            );
            return (jar, page).into_response();
        }
    };
    let redeemed = match peer {
        Some(ip) => c.sp.redeem_from(cb, ip).await,
        None => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "Cohesion callback: no client address (serve the app with \
                     into_make_service_with_connect_info::<SocketAddr>() or set web::ClientIp): \
                     all callbacks share one rate-limit bucket"
                );
            });
            c.sp.redeem(cb).await
        }
    };
    let user = match redeemed {
        Ok(u) => u,
        Err(e) => return (jar, refusal(&e)).into_response(),
    };
    let Ok(id) = random_id() else {
        return (
            jar,
            internal_error("the system random generator failed: no session id"),
        )
            .into_response();
    };
    c.insert(id.clone(), user);
    let target = q
        .ret
        .as_deref()
        .and_then(same_origin_path)
        .unwrap_or("/")
        .to_owned();
    let session = c.session_cookie(id);
    (jar.add(session), Redirect::to(&target)).into_response()
}

async fn logout(State(c): State<Cohesion>, headers: HeaderMap) -> Response {
    let jar = CookieJar::from_headers(&headers);
    if let Some(id) = jar
        .get(c.session_cookie_name())
        .map(|k| k.value().to_owned())
    {
        let user = c.lock().remove(&id);
        if let Some(s) = user {
            if let Err(e) = c.sp.logout_sito(&s.user.session).await {
                tracing::warn!("LogoutSito failed: {}", log_reason(&e));
            }
        }
    }
    let target =
        c.sp.browser_logout_url()
            .ok()
            .flatten()
            .map(|u| u.to_string())
            .unwrap_or_else(|| "/".into());
    (
        jar.remove(c.session_cookie(String::new())),
        Redirect::to(&target),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_compare_exactly() {
        assert!(same_nonce("abc", "abc"));
        assert!(!same_nonce("abc", "abd"));
        assert!(!same_nonce("abc", "abcd"));
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn a_failing_random_generator_gives_no_id_at_all() {
        // Before: the error was ignored and every id was 64 zeros.
        assert!(random_id_from(|_| Err(ring::error::Unspecified)).is_err());
        assert_eq!(
            random_id_from(|b| {
                b.fill(0xab);
                Ok(())
            })
            .unwrap(),
            "ab".repeat(32)
        );
    }

    #[test]
    fn identity_mismatch_is_logged_without_the_codice_fiscale() {
        let e = Error::IdentityMismatch {
            callback: "RSSMRA85T10A562S".into(),
            profile: "VRDGPP80A01H501U".into(),
        };
        let l = log_reason(&e);
        assert!(!l.contains("RSSMRA") && !l.contains("VRDGPP"), "{l}");
    }

    #[test]
    fn logs_never_carry_profile_values_or_raw_attacker_text() {
        // A profile whose codice fiscale (wrong check letter) and date of birth do not parse:
        // before, the log line quoted both.
        let xml = "<profile><base><login>RSSMRA85T10A562X</login>\
<codice_fiscale>RSSMRA85T10A562X</codice_fiscale></base></profile>";
        let doc = roxmltree::Document::parse(xml).unwrap();
        let e = crate::profile::Profile::from_element("GetCredential answer", doc.root_element())
            .unwrap_err();
        let l = log_reason(&e);
        assert!(!l.contains("RSSMRA"), "{l}");
        assert!(l.contains("codice_fiscale"), "the field is named: {l}");
        let xml = "<profile><base><login>x</login><dateOfBirth>10/12/1985</dateOfBirth>\
</base></profile>";
        let doc = roxmltree::Document::parse(xml).unwrap();
        let e = crate::profile::Profile::from_element("GetCredential answer", doc.root_element())
            .unwrap_err();
        let l = log_reason(&e);
        assert!(!l.contains("1985") && !l.contains("10/12"), "{l}");
        assert!(l.contains("dateOfBirth"), "{l}");
        // An `esito` posted by anyone: no forged log line, no terminal escape, bounded.
        let esito = format!(
            "KO\n2026-12-02T10:00:00Z INFO login ok user=admin\u{1b}[2J\u{202e}{}",
            "A".repeat(5000)
        );
        let l = log_reason(&Error::LoginNotSuccessful(esito));
        assert!(
            !l.contains('\n') && !l.contains('\u{1b}') && !l.contains('\u{202e}'),
            "{l}"
        );
        assert!(l.chars().count() < MAX_LOG_CHARS + 100, "{}", l.len());
        // Any other error's text too.
        let l = log_reason(&Error::malformed("callback", "x\r\ny"));
        assert!(!l.contains('\r') && !l.contains('\n'), "{l}");
    }
}
