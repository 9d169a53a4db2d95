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
//! # }
//! ```
//!
//! - a request to a handler taking [`CohesionUser`] without a session is redirected to
//!   `/cohesion/login?return=<path>`, which redirects to Cohesion;
//! - the callback route (the path of the configured `url_validate`) parses the untrusted callback,
//!   redeems it with GetCredential, runs the checks, sets an HttpOnly session cookie and redirects to
//!   the `return` path (local paths only);
//! - `/cohesion/logout` sends LogoutSito, forgets the session and redirects to Cohesion's browser
//!   logout page (SAML mode) or `/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::sp::{LoggedIn, ServiceProvider, UntrustedCallback};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tscns_cohesion_session";
/// Path of the login route.
pub const LOGIN_PATH: &str = "/cohesion/login";
/// Path of the logout route.
pub const LOGOUT_PATH: &str = "/cohesion/logout";
/// Bound on sessions kept in memory.
const MAX_SESSIONS: usize = 100_000;

/// The Cohesion integration of one site: its service provider and its sessions (in memory).
#[derive(Clone)]
pub struct Cohesion {
    sp: ServiceProvider,
    sessions: Arc<Mutex<HashMap<String, LoggedIn>>>,
}

impl std::fmt::Debug for Cohesion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cohesion").finish_non_exhaustive()
    }
}

/// The logged-in citizen, as an axum extractor. Without a session the request is redirected to
/// the login route.
#[derive(Debug, Clone)]
pub struct CohesionUser(pub LoggedIn);

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn local_path(p: &str) -> Option<&str> {
    (p.starts_with('/') && !p.starts_with("//") && !p.contains('\\')).then_some(p)
}

impl<S: Send + Sync> FromRequestParts<S> for CohesionUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(c) = parts.extensions.get::<Cohesion>().cloned() else {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cohesion layer missing: add .layer(cohesion.layer())",
            )
                .into_response());
        };
        if let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE) {
            let found = c
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .cloned();
            if let Some(user) = found {
                return Ok(CohesionUser(user));
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let ret: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        Err(Redirect::to(&format!("{LOGIN_PATH}?return={ret}")).into_response())
    }
}

#[derive(serde::Deserialize)]
struct ReturnQuery {
    #[serde(rename = "return")]
    ret: Option<String>,
}

fn random_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 32];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Cohesion {
    /// Wraps a service provider.
    pub fn new(sp: ServiceProvider) -> Self {
        Cohesion {
            sp,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
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
            .route(&callback_path, post(callback))
            .route(LOGOUT_PATH, get(logout))
            .with_state(self.clone())
    }

    fn secure_cookie(&self) -> &'static str {
        if self.sp.config().url_validate().scheme() == "https" {
            "; Secure"
        } else {
            ""
        }
    }
}

async fn login(State(c): State<Cohesion>, Query(q): Query<ReturnQuery>) -> Response {
    let cfg = c.sp.config();
    let mut validate = cfg.url_validate().clone();
    if let Some(ret) = q.ret.as_deref().and_then(local_path) {
        validate.query_pairs_mut().append_pair("return", ret);
    }
    match c.sp.login_url_with(&validate, &validate) {
        Ok(u) => Redirect::to(u.as_str()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn callback(
    State(c): State<Cohesion>,
    Query(q): Query<ReturnQuery>,
    body: axum::body::Bytes,
) -> Response {
    let cb = match UntrustedCallback::from_form_body(&body).and_then(|cb| {
        if cb.site_id() == c.sp.config().site_id() {
            Ok(cb)
        } else {
            Err(crate::Error::malformed("callback", "wrong id_sito"))
        }
    }) {
        Ok(cb) => cb,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Cohesion login refused: {e}"),
            )
                .into_response()
        }
    };
    let user = match c.sp.redeem(cb).await {
        Ok(u) => u,
        Err(e) => {
            return (
                StatusCode::FORBIDDEN,
                format!("Cohesion login refused: {e}"),
            )
                .into_response()
        }
    };
    let id = random_id();
    {
        let mut s = c.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() >= MAX_SESSIONS {
            return (StatusCode::SERVICE_UNAVAILABLE, "too many sessions").into_response();
        }
        s.insert(id.clone(), user);
    }
    let target = q
        .ret
        .as_deref()
        .and_then(local_path)
        .unwrap_or("/")
        .to_owned();
    let mut resp = Redirect::to(&target).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        c.secure_cookie()
    );
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn logout(State(c): State<Cohesion>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE) {
        let user = c
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(u) = user {
            if let Err(e) = c.sp.logout_sito(&u.session).await {
                tracing::warn!("LogoutSito failed: {e}");
            }
        }
    }
    let target =
        c.sp.browser_logout_url()
            .ok()
            .flatten()
            .map(|u| u.to_string())
            .unwrap_or_else(|| "/".into());
    let mut resp = Redirect::to(&target).into_response();
    if let Ok(v) = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
