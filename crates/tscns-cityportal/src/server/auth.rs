//! The Cohesion login, sessions in the store, and CSRF protection.
//!
//! - `/accedi?ritorno=PATH` sets a short-lived login-state cookie and sends the browser to
//!   Cohesion with the same state in `url_validate` (login CSRF: nobody can log a victim in as
//!   someone else);
//! - [`CALLBACK_PATH`] checks the state, parses the untrusted callback, redeems it with
//!   GetCredential (signed profile, level, token age), claims it once in the store (a replayed
//!   callback is refused on every instance), opens a session in the store and redirects to the
//!   same-origin `ritorno` path (default `/anagrafe`);
//! - `/esci` (POST, CSRF token) and `POST /api/v1/logout` send LogoutSito and end the session.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use time::OffsetDateTime;
use tscns_cohesion::{same_origin_path, UntrustedCallback};

use super::service::{Citizen, Failure};
use super::{
    pages, remote, ClientAddr, Portal, CALLBACK_PATH, SESSION_COOKIE, SESSION_COOKIE_TLS,
    STATE_COOKIE,
};
use crate::store::Session;

/// How long a login may take between `/accedi` and the callback.
const STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Where a login returns by default.
pub(crate) const DEFAULT_RETURN: &str = "/anagrafe";

pub(super) fn routes() -> Router<Portal> {
    Router::new()
        .route("/accedi", get(login))
        .route(CALLBACK_PATH, post(callback))
        .route("/esci", get(pages::logout_page).post(logout_form))
        .route("/api/v1/logout", post(logout_api))
}

/// 32 random bytes, hex.
pub(crate) fn random_token() -> Result<String, Failure> {
    let b: [u8; 32] = crate::store::random_bytes().map_err(|e| Failure::Internal(e.to_string()))?;
    Ok(hex::encode(b))
}

/// Constant-time equality.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What the server keeps with a session besides the citizen: Cohesion's ids, for LogoutSito.
#[derive(serde::Serialize, Deserialize)]
struct SessionData {
    sso: String,
    aspnet: String,
}

/// The logged-in citizen of a request, from the session cookie and the store. Without a valid
/// session: pages redirect to `/accedi?ritorno=PATH`, the API answers 401.
pub(crate) struct MaybeCitizen(pub Option<Citizen>);

impl FromRequestParts<Portal> for MaybeCitizen {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, p: &Portal) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(id) = jar
            .get(session_cookie_name(p))
            .map(|c| c.value().to_string())
        else {
            return Ok(MaybeCitizen(None));
        };
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(MaybeCitizen(None));
        }
        let now = OffsetDateTime::now_utc();
        let s = match p.store().session(&id, now).await {
            Ok(s) => s,
            Err(e) => return Err(super::internal(&e)),
        };
        let Some(s) = s else {
            return Ok(MaybeCitizen(None));
        };
        let Ok(cf) = tscns_cert::CodiceFiscale::parse(&s.codice_fiscale) else {
            return Ok(MaybeCitizen(None));
        };
        // Instances on one store may require different levels: a session opened at a lower
        // level elsewhere is not a login here.
        if s.auth_level < i64::from(p.config().min_level) {
            return Ok(MaybeCitizen(None));
        }
        // Idle renewal, never past the absolute end.
        let cfg = p.config();
        let absolute = s.created_at + cfg.session_absolute;
        let renewed = (now + cfg.session_idle).min(absolute);
        if renewed - s.expires_at > time::Duration::seconds(60) {
            if let Err(e) = p.store().touch_session(&id, renewed).await {
                return Err(super::internal(&e));
            }
        }
        let info = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(MaybeCitizen(Some(Citizen {
            cf,
            level: s.auth_level,
            session_id: s.id,
            csrf: s.csrf_token,
            remote: remote(info),
        })))
    }
}

/// Whether a state-changing request comes from another site: its `Origin` is not the portal's,
/// or the browser says `Sec-Fetch-Site: cross-site`/`same-site`. Programs send neither.
pub(crate) fn cross_site(p: &Portal, headers: &HeaderMap) -> bool {
    if let Some(o) = headers.get(header::ORIGIN) {
        if o.to_str().ok() != Some(p.config().origin().as_str()) {
            return true;
        }
    }
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("cross-site" | "same-site")
    )
}

/// The CSRF check of a form: same-origin request and the session's token.
pub(crate) fn check_form(
    p: &Portal,
    c: &Citizen,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), Failure> {
    if cross_site(p, headers) {
        return Err(Failure::Csrf);
    }
    match token {
        Some(t) if same_secret(t, &c.csrf) => Ok(()),
        _ => Err(Failure::Csrf),
    }
}

fn state_cookie(value: String, max_age: Duration) -> Cookie<'static> {
    Cookie::build((STATE_COOKIE, value))
        .path("/")
        .secure(true)
        .http_only(true)
        // The callback is a cross-site POST from Cohesion's page: Lax would not come back.
        .same_site(SameSite::None)
        .max_age(time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(600),
        ))
        .build()
}

/// The session cookie's name: `__Host-` under TLS.
pub(crate) fn session_cookie_name(p: &Portal) -> &'static str {
    if p.config().tls {
        SESSION_COOKIE_TLS
    } else {
        SESSION_COOKIE
    }
}

pub(crate) fn session_cookie(p: &Portal, value: String) -> Cookie<'static> {
    Cookie::build((session_cookie_name(p), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(p.config().tls)
        .build()
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    ritorno: Option<String>,
}

/// Where a page without a session sends the browser.
pub(crate) fn login_redirect(path: &str) -> Response {
    let mut u = String::from("/accedi?ritorno=");
    u.push_str(&form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>());
    Redirect::to(&u).into_response()
}

async fn login(
    State(p): State<Portal>,
    jar: CookieJar,
    pages::PageQuery(q): pages::PageQuery<LoginQuery>,
) -> Response {
    let state = match random_token() {
        Ok(s) => s,
        Err(f) => return pages::failure_page(&p, None, &f),
    };
    let ret = q
        .ritorno
        .as_deref()
        .and_then(same_origin_path)
        .unwrap_or(DEFAULT_RETURN)
        .to_string();
    let mut validate = match p
        .config()
        .public_url
        .join(CALLBACK_PATH.trim_start_matches('/'))
    {
        Ok(u) => u,
        Err(e) => return super::internal(&e),
    };
    validate
        .query_pairs_mut()
        .append_pair("ritorno", &ret)
        .append_pair("stato", &state);
    match p.inner.sp.login_url_with(&validate, &validate) {
        Ok(u) => (
            jar.add(state_cookie(state, STATE_TTL)),
            Redirect::to(u.as_str()),
        )
            .into_response(),
        Err(e) => super::internal(&e),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    ritorno: Option<String>,
    stato: Option<String>,
}

fn login_refused(p: &Portal, status: StatusCode, message: &str) -> Response {
    pages::message_page(p, None, status, "Accesso non riuscito", message, true)
}

/// The replay key of a callback: SHA-256 over both Cohesion session ids, each length-prefixed.
fn callback_digest(cb: &UntrustedCallback) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for id in [cb.sso_session_id(), cb.aspnet_session_id()] {
        h.update((id.len() as u64).to_be_bytes());
        h.update(id.as_bytes());
    }
    hex::encode(h.finalize())
}

async fn callback(
    State(p): State<Portal>,
    ClientAddr(addr): ClientAddr,
    jar: CookieJar,
    pages::PageQuery(q): pages::PageQuery<CallbackQuery>,
    body: axum::body::Bytes,
) -> Response {
    // First of all, a store-side limit per address: forged callbacks must not each cost an
    // audit line (or a call to Cohesion) beyond it.
    if let Err(f) = p.limit_callback(&addr).await {
        return super::pages::failure_page(&p, None, &f);
    }
    let expected = jar.get(STATE_COOKIE).map(|k| k.value().to_owned());
    let jar = jar.remove(state_cookie(String::new(), Duration::ZERO));
    let state_ok = match (&expected, &q.stato) {
        (Some(cookie), Some(url)) => !cookie.is_empty() && same_secret(cookie, url),
        _ => false,
    };
    let audit = |outcome: String| {
        let p = p.clone();
        let addr = addr.clone();
        async move {
            if let Err(f) = p.audit_login(None, &addr, &outcome).await {
                tracing::error!("audit: {}", f.message());
            }
        }
    };
    if !state_ok {
        audit("refused login_state".into()).await;
        return (
            jar,
            login_refused(
                &p,
                StatusCode::FORBIDDEN,
                "La richiesta di accesso è scaduta o non è partita da questo browser. Acceda di nuovo.",
            ),
        )
            .into_response();
    }
    let cb = match UntrustedCallback::from_form_body(&body) {
        Ok(cb) => cb,
        Err(e) => {
            tracing::warn!("Cohesion callback refused: {e}");
            audit("refused bad_callback".into()).await;
            return (
                jar,
                login_refused(
                    &p,
                    StatusCode::BAD_REQUEST,
                    "La risposta del servizio di autenticazione non è valida. Acceda di nuovo.",
                ),
            )
                .into_response();
        }
    };
    let digest = callback_digest(&cb);
    // Unconfirmed callbacks are rate-limited per client address: one address's flood of forged
    // callbacks refuses that address only.
    let redeemed = match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => p.inner.sp.redeem_from(cb, ip).await,
        Err(_) => p.inner.sp.redeem(cb).await,
    };
    let user = match redeemed {
        Ok(u) => u,
        Err(e) => {
            let (status, code, msg) = match &e {
                tscns_cohesion::Error::InsufficientLevel { .. } => (
                    StatusCode::FORBIDDEN,
                    "insufficient_level",
                    "Il modo in cui ha effettuato l'accesso non basta per questo portale: acceda di nuovo con un metodo più sicuro, per esempio la Carta Nazionale dei Servizi (TS-CNS).",
                ),
                tscns_cohesion::Error::RateLimited => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "rate_limited",
                    "In questo momento il portale riceve troppe richieste di accesso. Riprovi tra qualche minuto.",
                ),
                tscns_cohesion::Error::Http { .. }
                | tscns_cohesion::Error::HttpStatus { .. }
                | tscns_cohesion::Error::Tls(_) => (
                    StatusCode::BAD_GATEWAY,
                    "cohesion_unreachable",
                    "Il servizio di autenticazione Cohesion non risponde. Riprovi più tardi.",
                ),
                _ => (
                    StatusCode::FORBIDDEN,
                    "not_confirmed",
                    "Non è stato possibile confermare il Suo accesso con Cohesion: la sessione di accesso è scaduta o già usata. Acceda di nuovo.",
                ),
            };
            let detail = match &e {
                tscns_cohesion::Error::IdentityMismatch { .. } => "identity mismatch".to_string(),
                other => other.to_string(),
            };
            tracing::warn!("Cohesion login refused: {detail}");
            audit(format!("refused {code}")).await;
            return (jar, login_refused(&p, status, msg)).into_response();
        }
    };
    // The portal's own single-use check, in the store: a callback replayed at any instance fails.
    let until = OffsetDateTime::now_utc() + time::Duration::hours(2);
    match p.store().claim_callback(&digest, until).await {
        Ok(true) => {}
        Ok(false) => {
            audit("refused replayed_callback".into()).await;
            return (
                jar,
                login_refused(
                    &p,
                    StatusCode::FORBIDDEN,
                    "Questa conferma di accesso è già stata usata. Acceda di nuovo.",
                ),
            )
                .into_response();
        }
        Err(e) => return (jar, super::internal(&e)).into_response(),
    }
    let level = match user.profile.authentication().and_then(|a| a.level()) {
        Some(tscns_cohesion::AuthLevel::Password) => 0,
        Some(tscns_cohesion::AuthLevel::PasswordPin) => 1,
        Some(tscns_cohesion::AuthLevel::SmartCard) => 2,
        None => -1,
    };
    if level < i64::from(p.config().min_level) {
        audit("refused insufficient_level".into()).await;
        return (
            jar,
            login_refused(
                &p,
                StatusCode::FORBIDDEN,
                "Il modo in cui ha effettuato l'accesso non basta per questo portale: acceda di nuovo con la Carta Nazionale dei Servizi (TS-CNS).",
            ),
        )
            .into_response();
    }
    let Some(cf) = user.profile.codice_fiscale().cloned() else {
        audit("refused no_codice_fiscale".into()).await;
        return (
            jar,
            login_refused(
                &p,
                StatusCode::FORBIDDEN,
                "Il profilo di accesso non contiene un codice fiscale: il portale serve solo i cittadini.",
            ),
        )
            .into_response();
    };
    let (id, csrf) = match (random_token(), random_token()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return (jar, super::internal(&"random generator failed")).into_response(),
    };
    let now = OffsetDateTime::now_utc();
    let data = serde_json::to_string(&SessionData {
        sso: user.session.sso_session_id.clone(),
        aspnet: user.session.aspnet_session_id.clone(),
    })
    .unwrap_or_default();
    let session = Session {
        id: id.clone(),
        codice_fiscale: cf.as_str().to_string(),
        auth_level: level,
        csrf_token: csrf.clone(),
        created_at: now,
        expires_at: now + p.config().session_idle.min(p.config().session_absolute),
        data,
    };
    if let Err(e) = p.store().create_session(&session).await {
        return (jar, super::internal(&e)).into_response();
    }
    let citizen = Citizen {
        cf,
        level,
        session_id: id.clone(),
        csrf,
        remote: addr.clone(),
    };
    if let Err(f) = p.audit_login(Some(&citizen), &addr, "ok").await {
        tracing::error!("audit: {}", f.message());
    }
    let target = q
        .ritorno
        .as_deref()
        .and_then(same_origin_path)
        .unwrap_or(DEFAULT_RETURN)
        .to_owned();
    (jar.add(session_cookie(&p, id)), Redirect::to(&target)).into_response()
}

/// Ends the session: LogoutSito at Cohesion (failure only logged), session deleted, audited.
async fn end_session(p: &Portal, c: &Citizen) -> Result<(), Failure> {
    let now = OffsetDateTime::now_utc();
    if let Some(s) = p.store().session(&c.session_id, now).await? {
        if let Ok(d) = serde_json::from_str::<SessionData>(&s.data) {
            let cs = tscns_cohesion::CohesionSession {
                sso_session_id: d.sso,
                aspnet_session_id: d.aspnet,
            };
            if let Err(e) = p.inner.sp.logout_sito(&cs).await {
                tracing::warn!("LogoutSito failed: {e}");
            }
        }
    }
    p.store().delete_session(&c.session_id).await?;
    p.audit_logout(c).await
}

fn gone_cookie(p: &Portal) -> Cookie<'static> {
    Cookie::build((session_cookie_name(p), ""))
        .path("/")
        .secure(p.config().tls)
        .build()
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

async fn logout_form(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    jar: CookieJar,
    headers: HeaderMap,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(c) = c else {
        return Redirect::to("/").into_response();
    };
    let token = form.as_ref().ok().and_then(|f| f.csrf.as_deref());
    if let Err(f) = check_form(&p, &c, &headers, token) {
        return pages::failure_page(&p, Some(&c), &f);
    }
    if let Err(f) = end_session(&p, &c).await {
        return pages::failure_page(&p, Some(&c), &f);
    }
    let target = p
        .inner
        .sp
        .browser_logout_url()
        .ok()
        .flatten()
        .map_or_else(|| "/".to_string(), |u| u.to_string());
    (jar.remove(gone_cookie(&p)), Redirect::to(&target)).into_response()
}

async fn logout_api(
    State(p): State<Portal>,
    MaybeCitizen(c): MaybeCitizen,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let Some(c) = c else {
        return super::api::failure(&Failure::NotLoggedIn);
    };
    if cross_site(&p, &headers) {
        return super::api::failure(&Failure::Csrf);
    }
    match end_session(&p, &c).await {
        Ok(()) => (jar.remove(gone_cookie(&p)), StatusCode::NO_CONTENT).into_response(),
        Err(f) => super::api::failure(&f),
    }
}
