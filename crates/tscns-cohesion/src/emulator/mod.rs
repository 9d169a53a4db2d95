//! An HTTPS Cohesion on loopback, built from the public documentation alone (Regione Marche's CohesionID-Docs).
//!
//! Two listeners:
//! - the main one serves `sso/Check.aspx`, `SA/AccediCohesion.aspx`, `SPManager/WAYF.aspx` (login
//!   request), the login page (`SA/Login.aspx`) with the methods the request's `AuthRestriction`
//!   allows, the auto-posting callback to `url_validate`, `SSO/webCheckSessionSSO.aspx` (classic) and
//!   `SPManager/webCheckSessionSSO.aspx` (SAML, signed profile) for GetCredential and LogoutSito, and
//!   `SPManager/Logout.aspx`;
//! - the smart-card one (`SA/SmartCard.aspx`) requires a TLS client certificate chained to the CNS CAs
//!   it was given, checks a CNS certificate policy and takes the codice fiscale from the subject CN.
//!
//! Paths are matched case-insensitively, as IIS does. Tokens live 60 minutes by the injectable
//! [`Clock`]. It refuses what Cohesion refuses: an unknown `id_sito` (when sites are listed), a
//! malformed `auth`, an unknown, expired or logged-out session (`<AUTH>NO</AUTH>`), a caller outside
//! the whitelist.
//!
//! Test users ([`TestUser`]) for the password and password+PIN methods are configured in
//! [`EmulatorConfig::users`]; the defaults are listed in [`TestUser::defaults`]. The domain method
//! (AuthRestriction 3) is shown but not emulated.

mod client_auth;
mod site;
mod tls;

pub use site::{DemoSite, DEMO_SITE_ID, PROTECTED_PATH};

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{Extension, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::auth_doc::DsAuth;
use crate::clock::{Clock, SystemClock};
use crate::config::AuthRestriction;
use crate::error::{Error, Result};
use crate::profile::{AuthenticationType, Profile};
use crate::signer::ProfileSigner;
use crate::xml::{escape_attr, escape_text};
use tls::ConnInfo;

/// Token lifetime (Regione Marche's CohesionID-Docs, Profile: "The token lives 60 minutes").
pub const TOKEN_LIFETIME: time::Duration = time::Duration::minutes(60);
/// Cohesion's own IdP entityID in production (CohesionID-Docs, Rinnovo-del-Token.md).
pub const COHESION_IDP_ENTITY_ID: &str = "cohesion2.regione.marche.it:idp";
/// The browser SSO cookie.
const SSO_COOKIE: &str = "CohesionEmuSSO";
/// Bound on pending logins, tokens and browser sessions kept in memory.
const MAX_ENTRIES: usize = 100_000;

/// A test user for the password and password+PIN methods.
#[derive(Clone)]
pub struct TestUser {
    /// The login name (a codice fiscale for citizens).
    pub login: String,
    /// Password.
    pub password: String,
    /// PIN, for password+PIN logins (`None`: password only).
    pub pin: Option<String>,
    /// `nome`.
    pub first_name: String,
    /// `cognome`.
    pub last_name: String,
    /// `email`.
    pub email: String,
}

impl std::fmt::Debug for TestUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestUser")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// One resident of a `--users` file (TOML: a list `[[user]]` of these fields).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    codice_fiscale: String,
    password: String,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserEntry>,
}

impl TestUser {
    /// Reads a users file: TOML with one `[[user]]` table per resident, holding
    /// `codice_fiscale` and `password`, and optionally `pin` (enables the password+PIN method),
    /// `first_name`, `last_name` and `email` (the profile's `nome`, `cognome`, `email`).
    ///
    /// ```
    /// let users = tscns_cohesion::emulator::TestUser::from_toml(r#"
    /// [[user]]
    /// codice_fiscale = "RSSMRA80A01H501U"
    /// password = "segreta"
    /// first_name = "MARIO"
    /// last_name = "ROSSI"
    /// "#)?;
    /// assert_eq!(users[0].login, "RSSMRA80A01H501U");
    /// # Ok::<(), tscns_cohesion::Error>(())
    /// ```
    ///
    /// A codice fiscale that fails its check, an empty password, a login listed twice or an
    /// unknown field is refused with [`crate::Error::Config`] naming the entry.
    pub fn from_toml(text: &str) -> Result<Vec<TestUser>> {
        let file: UsersFile = toml::from_str(text)
            .map_err(|e| crate::Error::Config(format!("users file: {}", e.to_string().trim())))?;
        let mut out: Vec<TestUser> = Vec::with_capacity(file.user.len());
        for (i, u) in file.user.into_iter().enumerate() {
            let at = |m: String| crate::Error::Config(format!("users file, user {}: {m}", i + 1));
            let cf = tscns_cert::CodiceFiscale::parse(u.codice_fiscale.trim())
                .map_err(|e| at(format!("codice_fiscale {:?}: {e}", u.codice_fiscale)))?;
            if u.password.is_empty() {
                return Err(at("the password is empty".into()));
            }
            if u.pin.as_deref() == Some("") {
                return Err(at(
                    "the pin is empty (leave it out for a password-only user)".into(),
                ));
            }
            let login = cf.as_str().to_owned();
            if out.iter().any(|o| o.login.eq_ignore_ascii_case(&login)) {
                return Err(at(format!("{login} is listed twice")));
            }
            out.push(TestUser {
                login,
                password: u.password,
                pin: u.pin,
                first_name: u.first_name.unwrap_or_default(),
                last_name: u.last_name.unwrap_or_default(),
                email: u.email.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// The default users:
    /// `RSSMRA85T10A562S` / `password` (password only) and `VRDGPP80A01H501U` / `password` / PIN `12345678`.
    pub fn defaults() -> Vec<TestUser> {
        vec![
            TestUser {
                login: "RSSMRA85T10A562S".into(),
                password: "password".into(),
                pin: None,
                first_name: "MARIO".into(),
                last_name: "ROSSI".into(),
                email: "mario.rossi@example.invalid".into(),
            },
            TestUser {
                login: "VRDGPP80A01H501U".into(),
                password: "password".into(),
                pin: Some("12345678".into()),
                first_name: "GIUSEPPE".into(),
                last_name: "VERDI".into(),
                email: "giuseppe.verdi@example.invalid".into(),
            },
        ]
    }
}

/// How to run the emulator.
pub struct EmulatorConfig {
    /// Main HTTPS listener (e.g. `127.0.0.1:0` for any free port).
    pub listen: SocketAddr,
    /// Smart-card HTTPS listener (client certificate required).
    pub cns_listen: SocketAddr,
    /// CNS CAs the citizen's certificate must chain to.
    pub cns_cas: Vec<CertificateDer<'static>>,
    /// Server certificate chain and key (PEM). `None`: made here for `hosts`.
    pub tls_cert_and_key: Option<(Vec<u8>, Vec<u8>)>,
    /// Host names for the made certificate and for links between the two listeners
    /// (first one is used in links). Default `localhost`, `127.0.0.1`.
    pub hosts: Vec<String>,
    /// Accepted `id_sito` values; empty: any.
    pub sites: BTreeSet<String>,
    /// Servers allowed to call webCheckSessionSSO; empty: any.
    pub whitelist: Vec<IpAddr>,
    /// Password / password+PIN users.
    pub users: Vec<TestUser>,
    /// The clock for token expiry.
    pub clock: Arc<dyn Clock>,
    /// The SAML-mode profile signer; `None`: a fresh key and certificate.
    pub signer: Option<ProfileSigner>,
}

impl EmulatorConfig {
    /// Loopback on any free ports, made certificates, default users, system clock.
    pub fn loopback(cns_cas: Vec<CertificateDer<'static>>) -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cns_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cns_cas,
            tls_cert_and_key: None,
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
            sites: BTreeSet::new(),
            whitelist: Vec::new(),
            users: TestUser::defaults(),
            clock: Arc::new(SystemClock),
            signer: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontEnd {
    Classic,
    Saml,
}

#[derive(Debug, Clone)]
struct Pending {
    request: DsAuth,
    front: FrontEnd,
    restrictions: BTreeSet<AuthRestriction>,
    created: OffsetDateTime,
}

#[derive(Debug, Clone)]
struct Identity {
    login: String,
    auth: AuthenticationType,
    first_name: String,
    last_name: String,
    email: String,
}

#[derive(Debug, Clone)]
struct Token {
    identity: Identity,
    site: String,
    front: FrontEnd,
    aspnet: String,
    created: OffsetDateTime,
    logged_out: bool,
}

#[derive(Debug, Clone)]
struct BrowserSession {
    identity: Identity,
    created: OffsetDateTime,
}

struct Shared {
    sites: BTreeSet<String>,
    whitelist: Vec<IpAddr>,
    users: Vec<TestUser>,
    clock: Arc<dyn Clock>,
    signer: ProfileSigner,
    link_host: String,
    cns_port: u16,
    pending: Mutex<HashMap<String, Pending>>,
    tokens: Mutex<HashMap<String, Token>>,
    sessions: Mutex<HashMap<String, BrowserSession>>,
}

/// A running emulator. Dropping it stops both listeners.
pub struct Emulator {
    addr: SocketAddr,
    cns_addr: SocketAddr,
    link_host: String,
    ca_pem: String,
    signer_pem: String,
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("cns_addr", &self.cns_addr)
            .finish_non_exhaustive()
    }
}

fn random_hex(n_bytes: usize) -> String {
    let mut b = vec![0u8; n_bytes];
    // getrandom failing means no OS randomness at all: fall back to time-derived bytes is not
    // acceptable for ids, so use ring's SystemRandom as the second source.
    if getrandom::getrandom(&mut b).is_err() {
        use ring::rand::SecureRandom as _;
        let _ = ring::rand::SystemRandom::new().fill(&mut b);
    }
    hex::encode_upper(b)
}

fn random_aspnet() -> String {
    // ASP.NET session ids: 24 characters of [a-z0-5] (e.g. `ufrq00x4f0cq2yog2ozv4lxx`).
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";
    let mut b = [0u8; 24];
    if getrandom::getrandom(&mut b).is_err() {
        use ring::rand::SecureRandom as _;
        let _ = ring::rand::SystemRandom::new().fill(&mut b);
    }
    b.iter()
        .map(|x| ALPHABET[(*x as usize) % 32] as char)
        .collect()
}

impl Emulator {
    /// Starts both listeners on the current tokio runtime.
    pub async fn start(cfg: EmulatorConfig) -> Result<Emulator> {
        let identity = match &cfg.tls_cert_and_key {
            Some((c, k)) => tls::load_identity(c, k)?,
            None => tls::make_identity(&cfg.hosts)?,
        };
        if cfg.cns_cas.is_empty() {
            return Err(Error::Config(
                "the smart-card listener needs at least one CNS CA (EmulatorConfig::cns_cas)"
                    .into(),
            ));
        }
        let main_tls = tls::server_config(&identity, None)?;
        let cns_tls = tls::server_config(&identity, Some(&cfg.cns_cas))?;
        let io = |e: std::io::Error, a: SocketAddr| Error::Io {
            path: a.to_string(),
            source: e,
        };
        let main = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| io(e, cfg.listen))?;
        let cns = tokio::net::TcpListener::bind(cfg.cns_listen)
            .await
            .map_err(|e| io(e, cfg.cns_listen))?;
        let addr = main.local_addr().map_err(|e| io(e, cfg.listen))?;
        let cns_addr = cns.local_addr().map_err(|e| io(e, cfg.cns_listen))?;
        let signer = match cfg.signer {
            Some(s) => s,
            None => ProfileSigner::generate("ClientCohesion")?,
        };
        let link_host = cfg
            .hosts
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into());
        let shared = Arc::new(Shared {
            sites: cfg.sites,
            whitelist: cfg.whitelist,
            users: cfg.users,
            clock: cfg.clock,
            signer,
            link_host: link_host.clone(),
            cns_port: cns_addr.port(),
            pending: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        });
        let router = axum::Router::new()
            .fallback(dispatch)
            .with_state(shared.clone());
        let (stop, rx) = watch::channel(false);
        tokio::spawn(tls::serve(
            main,
            main_tls,
            router.clone(),
            false,
            rx.clone(),
        ));
        tokio::spawn(tls::serve(cns, cns_tls, router, true, rx));
        Ok(Emulator {
            addr,
            cns_addr,
            link_host,
            ca_pem: identity.ca_pem,
            signer_pem: shared.signer.certificate_pem().to_owned(),
            stop,
            shared,
        })
    }

    /// The main listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The smart-card listener's address.
    pub fn cns_addr(&self) -> SocketAddr {
        self.cns_addr
    }
    /// The base URL to configure in a service provider (`https://localhost:PORT/`).
    pub fn base_url(&self) -> Result<url::Url> {
        url::Url::parse(&format!("https://{}:{}/", self.link_host, self.addr.port()))
            .map_err(|e| Error::Config(e.to_string()))
    }
    /// PEM of the CA that issued the emulator's HTTPS certificate (trust it in SPs and clients).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    /// PEM of the certificate whose key signs SAML-mode profiles.
    pub fn signing_certificate_pem(&self) -> &str {
        &self.signer_pem
    }
    /// Stops the listeners.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
    /// How many tokens have been issued (tests).
    pub fn tokens_issued(&self) -> usize {
        self.shared
            .tokens
            .lock()
            .map(|t| t.len())
            .unwrap_or_default()
    }
    /// How many tokens a LogoutSito has ended (tests, `tscns demo`).
    pub fn tokens_logged_out(&self) -> usize {
        self.shared
            .tokens
            .lock()
            .map(|t| t.values().filter(|t| t.logged_out).count())
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"it\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
<body><h1>{t}</h1>{body}</body></html>",
        t = escape_text(title)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn error_page(status: StatusCode, msg: &str) -> Response {
    html(
        status,
        "Cohesion - Errore",
        &format!("<p id=\"errore\">{}</p>", escape_text(msg)),
    )
}

fn xml_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn auth_no() -> Response {
    xml_response("<AUTH>NO</AUTH>".into())
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    })
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn dispatch(
    State(st): State<Arc<Shared>>,
    Extension(conn): Extension<ConnInfo>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_ascii_lowercase();
    let method = req.method().clone();
    if conn.cns_listener {
        return match (method, path.as_str()) {
            (Method::GET, "/sa/smartcard.aspx") => smart_card(&st, &conn, &req),
            _ => error_page(StatusCode::NOT_FOUND, "Pagina non trovata"),
        };
    }
    match (method.clone(), path.as_str()) {
        (Method::GET, "/") => html(
            StatusCode::OK,
            "Cohesion (emulatore tscns)",
            "<p>Emulatore di Cohesion per test: nessun dato reale.</p>",
        ),
        (Method::GET, "/sso/check.aspx") => login_request(&st, &req, FrontEnd::Classic, true),
        (Method::GET, "/sa/accedicohesion.aspx") => {
            login_request(&st, &req, FrontEnd::Classic, false)
        }
        (Method::GET, "/spmanager/wayf.aspx") => login_request(&st, &req, FrontEnd::Saml, false),
        (Method::GET, "/sa/login.aspx") => match query_param(&req, "req") {
            Some(id) => login_page(&st, &id),
            None => error_page(
                StatusCode::BAD_REQUEST,
                "Richiesta di autenticazione mancante",
            ),
        },
        (Method::POST, "/sa/login.aspx") => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            password_login(&st, &body)
        }
        (_, "/sso/webchecksessionsso.aspx") => {
            web_check_session(&st, &conn, req, FrontEnd::Classic).await
        }
        (_, "/spmanager/webchecksessionsso.aspx") => {
            web_check_session(&st, &conn, req, FrontEnd::Saml).await
        }
        (Method::GET, "/spmanager/logout.aspx") => browser_logout(&st, &req),
        _ => error_page(StatusCode::NOT_FOUND, "Pagina non trovata"),
    }
}

async fn read_body(req: Request) -> std::result::Result<Vec<u8>, Response> {
    axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "Richiesta troppo grande"))
}

/// Options parsed from `stilesheet`.
struct Stilesheet {
    restrictions: BTreeSet<AuthRestriction>,
    sso: Option<bool>,
    logout_url: Option<String>,
}

fn parse_stilesheet(s: &str) -> std::result::Result<Stilesheet, String> {
    let mut out = Stilesheet {
        restrictions: BTreeSet::new(),
        sso: None,
        logout_url: None,
    };
    for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some(v) = item.strip_prefix("AuthRestriction=") {
            out.restrictions = AuthRestriction::parse_list(v)
                .ok_or_else(|| format!("AuthRestriction non valido: {v:?}"))?;
        } else if let Some(v) = item.strip_prefix("SSO=") {
            out.sso = Some(v == "1");
        } else if item.starts_with("http://") || item.starts_with("https://") {
            out.logout_url = Some(item.to_owned());
        }
        // UType, purpose, eidas, SpidMode, CieMode, IPA, aggregato: accepted, nothing to emulate.
    }
    if out.restrictions.is_empty() {
        // Documented way to accept every login kind.
        out.restrictions = [
            AuthRestriction::Password,
            AuthRestriction::PasswordPin,
            AuthRestriction::SmartCard,
            AuthRestriction::Domain,
        ]
        .into();
    }
    Ok(out)
}

fn satisfies(restrictions: &BTreeSet<AuthRestriction>, auth: &AuthenticationType) -> bool {
    crate::sp::check_level(restrictions, Some(auth)).is_ok()
}

fn login_request(st: &Shared, req: &Request, front: FrontEnd, sso_page: bool) -> Response {
    let Some(auth) = query_param(req, "auth") else {
        return error_page(StatusCode::BAD_REQUEST, "Parametro auth mancante");
    };
    let doc = match DsAuth::parse_base64("auth request", &auth) {
        Ok(d) => d,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("Parametro auth non valido: {e}"),
            )
        }
    };
    let site = doc.get("id_sito");
    if site.is_empty() || (!st.sites.is_empty() && !st.sites.contains(site)) {
        return error_page(
            StatusCode::FORBIDDEN,
            &format!("Sito non abilitato: id_sito {site:?} sconosciuto"),
        );
    }
    match url::Url::parse(doc.get("url_validate")) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
        _ => return error_page(StatusCode::BAD_REQUEST, "url_validate non valido"),
    }
    let ss = match parse_stilesheet(doc.get("stilesheet")) {
        Ok(s) => s,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    // SAML front end without entityID: the WAYF chooser comes first (after the SSO check).
    let mut show_wayf = false;
    if front == FrontEnd::Saml {
        match query_param(req, "entityID") {
            Some(e) if e != COHESION_IDP_ENTITY_ID && e != "cohesion.regione.marche.it:idp" => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("Identity provider {e:?} non disponibile nell'emulatore"),
                );
            }
            Some(_) => {}
            None => show_wayf = true,
        }
    }
    let now = st.clock.now();
    // Single sign-on: classic Check.aspx always checks; SAML when the request says SSO=1.
    let sso = match front {
        FrontEnd::Classic => sso_page,
        FrontEnd::Saml => ss.sso.unwrap_or(false),
    };
    if sso {
        if let Some(sid) = cookie(req.headers(), SSO_COOKIE) {
            let existing = lock(&st.sessions).get(&sid).cloned();
            if let Some(s) = existing {
                if now - s.created <= TOKEN_LIFETIME
                    && satisfies(&ss.restrictions, &s.identity.auth)
                {
                    let pending = Pending {
                        request: doc,
                        front,
                        restrictions: ss.restrictions,
                        created: now,
                    };
                    return complete(st, &pending, s.identity, None);
                }
            }
        }
    }
    let id = random_hex(16);
    {
        let mut p = lock(&st.pending);
        p.retain(|_, v| now - v.created <= TOKEN_LIFETIME);
        if p.len() >= MAX_ENTRIES {
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "Troppe richieste in corso");
        }
        p.insert(
            id.clone(),
            Pending {
                request: doc,
                front,
                restrictions: ss.restrictions,
                created: now,
            },
        );
    }
    if show_wayf {
        return wayf_page(&id);
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/SA/Login.aspx?req={id}"))],
    )
        .into_response()
}

/// The WAYF chooser ("Where Are You From"): Cohesion's own IdP; SPID, CIE and eIDAS are listed
/// but need the national infrastructure, which the emulator does not have.
fn wayf_page(id: &str) -> Response {
    let id = escape_attr(id);
    html(
        StatusCode::OK,
        "Cohesion - Scegli come accedere",
        &format!(
            "<ul><li><a id=\"idp-cohesion\" href=\"/SA/Login.aspx?req={id}\">Cohesion \
(password, password e PIN, Smart Card)</a></li><li>SPID (non disponibile nell'emulatore)</li>\
<li>CIE (non disponibile nell'emulatore)</li><li>eIDAS (non disponibile nell'emulatore)</li></ul>"
        ),
    )
}

fn login_page(st: &Shared, id: &str) -> Response {
    let Some(p) = lock(&st.pending).get(id).cloned() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sessione di autenticazione scaduta",
        );
    };
    let id_attr = escape_attr(id);
    let mut body = String::from("<p>Scegli come accedere.</p>");
    for r in &p.restrictions {
        match r {
            AuthRestriction::Password => body.push_str(&format!(
                "<form id=\"login-password\" method=\"post\" action=\"/SA/Login.aspx\">\
<input type=\"hidden\" name=\"req\" value=\"{id_attr}\"><input type=\"hidden\" name=\"method\" value=\"PW\">\
<label>Codice fiscale <input name=\"user\"></label><label>Password <input type=\"password\" name=\"password\"></label>\
<button type=\"submit\">Accedi con password</button></form>"
            )),
            AuthRestriction::PasswordPin => body.push_str(&format!(
                "<form id=\"login-pin\" method=\"post\" action=\"/SA/Login.aspx\">\
<input type=\"hidden\" name=\"req\" value=\"{id_attr}\"><input type=\"hidden\" name=\"method\" value=\"PIN\">\
<label>Codice fiscale <input name=\"user\"></label><label>Password <input type=\"password\" name=\"password\"></label>\
<label>PIN <input type=\"password\" name=\"pin\"></label><button type=\"submit\">Accedi con password e PIN</button></form>"
            )),
            AuthRestriction::SmartCard => body.push_str(&format!(
                "<p><a id=\"login-smartcard\" href=\"https://{}:{}/SA/SmartCard.aspx?req={id_attr}\">\
Accedi con Smart Card (TS-CNS)</a></p>",
                escape_attr(&st.link_host),
                st.cns_port
            )),
            AuthRestriction::Domain => body.push_str(
                "<p id=\"login-domain\">Accesso di dominio: disponibile solo nella rete regionale.</p>",
            ),
        }
    }
    html(StatusCode::OK, "Cohesion - Accesso", &body)
}

fn password_login(st: &Shared, body: &[u8]) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let Some(p) = lock(&st.pending).get(get("req")).cloned() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sessione di autenticazione scaduta",
        );
    };
    let (method, restriction) = match get("method") {
        "PW" => (AuthenticationType::Password, AuthRestriction::Password),
        "PIN" => (
            AuthenticationType::PasswordPin,
            AuthRestriction::PasswordPin,
        ),
        _ => return error_page(StatusCode::BAD_REQUEST, "Metodo di accesso non valido"),
    };
    if !p.restrictions.contains(&restriction) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Metodo di accesso non consentito per questo sito",
        );
    }
    let user = st.users.iter().find(|u| {
        u.login.eq_ignore_ascii_case(get("user").trim()) && u.password == get("password")
    });
    let ok = match (user, &method) {
        (Some(_), AuthenticationType::Password) => true,
        // Test users only: plain comparison is fine here.
        (Some(u), AuthenticationType::PasswordPin) => u.pin.as_deref() == Some(get("pin")),
        _ => false,
    };
    let Some(u) = user.filter(|_| ok) else {
        return error_page(StatusCode::UNAUTHORIZED, "Credenziali non valide");
    };
    let identity = Identity {
        login: u.login.clone(),
        auth: method,
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        email: u.email.clone(),
    };
    lock(&st.pending).remove(get("req"));
    complete(st, &p, identity, Some(()))
}

fn smart_card(st: &Shared, conn: &ConnInfo, req: &Request) -> Response {
    let Some(id) = query_param(req, "req") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Richiesta di autenticazione mancante",
        );
    };
    let Some(p) = lock(&st.pending).get(&id).cloned() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sessione di autenticazione scaduta",
        );
    };
    if !p.restrictions.contains(&AuthRestriction::SmartCard) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Accesso con smart card non consentito per questo sito",
        );
    }
    // The TLS layer already verified the chain to a configured CNS CA.
    let Some(leaf) = conn.client_chain.first() else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Nessun certificato client presentato",
        );
    };
    let cert = match tscns_cert::CnsCertificate::from_der(leaf.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            return error_page(
                StatusCode::FORBIDDEN,
                &format!("Certificato non leggibile: {e}"),
            )
        }
    };
    let has_policy = cert
        .policies()
        .unwrap_or_default()
        .iter()
        .any(|p| tscns_cert::CNS_POLICIES.contains(p));
    if !has_policy {
        return error_page(
            StatusCode::FORBIDDEN,
            "Il certificato non ha una policy CNS di autenticazione",
        );
    }
    let cf = match cert.codice_fiscale() {
        Ok(cf) => cf,
        Err(e) => {
            return error_page(
                StatusCode::FORBIDDEN,
                &format!("Codice fiscale non presente nel certificato: {e}"),
            )
        }
    };
    let identity = Identity {
        login: cf.as_str().to_owned(),
        auth: AuthenticationType::SmartCard,
        first_name: cert.given_name().unwrap_or_default(),
        last_name: cert.surname().unwrap_or_default(),
        email: String::new(),
    };
    lock(&st.pending).remove(&id);
    complete(st, &p, identity, Some(()))
}

/// Issues a token and answers with the auto-posting callback form. `new_login` sets the SSO cookie.
fn complete(st: &Shared, p: &Pending, identity: Identity, new_login: Option<()>) -> Response {
    let now = st.clock.now();
    let sso_id = random_hex(96);
    let aspnet_plain = random_aspnet();
    let ss = parse_stilesheet(p.request.get("stilesheet")).ok();
    let logout_url = ss.and_then(|s| s.logout_url).unwrap_or_default();
    let aspnet = match p.front {
        FrontEnd::Classic => aspnet_plain,
        // SAML mode compound (Regione Marche's CohesionID-Docs, Callback): session; IdP entityID; logout URL; two tokens.
        FrontEnd::Saml => format!(
            "{aspnet_plain};{COHESION_IDP_ENTITY_ID};{logout_url};{t1};{t2};",
            t1 = random_hex(32),
            t2 = random_hex(32)
        ),
    };
    {
        let mut t = lock(&st.tokens);
        t.retain(|_, v| now - v.created <= TOKEN_LIFETIME * 2);
        if t.len() >= MAX_ENTRIES {
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "Troppe sessioni attive");
        }
        t.insert(
            sso_id.clone(),
            Token {
                identity: identity.clone(),
                site: p.request.get("id_sito").to_owned(),
                front: p.front,
                aspnet: aspnet.clone(),
                created: now,
                logged_out: false,
            },
        );
    }
    let mut doc = p.request.clone();
    doc.set("user", &identity.login);
    doc.set("esito_auth_sso", "OK");
    doc.set("id_sessione_sso", &sso_id);
    doc.set("id_sessione_aspnet_sso", &aspnet);
    let codes: Vec<String> = p
        .restrictions
        .iter()
        .map(|r| r.code().to_string())
        .collect();
    doc.extras = vec![
        ("ip".into(), "127.0.0.1".into()),
        ("AuthRestriction".into(), codes.join(",")),
        ("UType".into(), "CD".into()),
        ("purpose".into(), String::new()),
        ("url_logout".into(), logout_url),
        ("cittad".into(), "1".into()),
    ];
    let page = format!(
        "<!DOCTYPE html><html lang=\"it\"><head><meta charset=\"utf-8\"><title>Cohesion</title></head>\
<body onload=\"document.forms[0].submit()\"><form id=\"cohesion-callback\" method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"auth\" value=\"{auth}\"><noscript><button type=\"submit\">Continua</button></noscript>\
</form></body></html>",
        action = escape_attr(doc.get("url_validate")),
        auth = escape_attr(&doc.to_base64())
    );
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response();
    if new_login.is_some() {
        let sid = random_hex(32);
        let mut s = lock(&st.sessions);
        s.retain(|_, v| now - v.created <= TOKEN_LIFETIME);
        if s.len() < MAX_ENTRIES {
            s.insert(
                sid.clone(),
                BrowserSession {
                    identity,
                    created: now,
                },
            );
            if let Ok(v) =
                format!("{SSO_COOKIE}={sid}; Path=/; Secure; HttpOnly; SameSite=Lax").parse()
            {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    resp
}

async fn web_check_session(
    st: &Shared,
    conn: &ConnInfo,
    req: Request,
    front: FrontEnd,
) -> Response {
    if !st.whitelist.is_empty() && !st.whitelist.contains(&conn.peer.ip()) {
        tracing::info!(peer = %conn.peer, "webCheckSessionSSO from a server not in the whitelist");
        return auth_no();
    }
    let params: HashMap<String, String> = if req.method() == Method::POST {
        match read_body(req).await {
            Ok(b) => form_urlencoded::parse(&b).into_owned().collect(),
            Err(r) => return r,
        }
    } else if req.method() == Method::GET {
        req.uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default()
    } else {
        return error_page(StatusCode::METHOD_NOT_ALLOWED, "Metodo non consentito");
    };
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let now = st.clock.now();
    let mut tokens = lock(&st.tokens);
    let Some(token) = tokens.get_mut(get("IdSessioneSSO")) else {
        return auth_no();
    };
    if token.aspnet != get("IdSessioneASPNET")
        || token.front != front
        || token.logged_out
        || now - token.created > TOKEN_LIFETIME
    {
        return auth_no();
    }
    match get("Operation") {
        "GetCredential" => {
            let id = token.identity.clone();
            let created = token.created;
            drop(tokens);
            profile_answer(st, &id, created, front)
        }
        "LogoutSito" => {
            token.logged_out = true;
            tracing::debug!(site = %token.site, "LogoutSito");
            xml_response("<AUTH>OK</AUTH>".into())
        }
        _ => auth_no(),
    }
}

fn profile_answer(
    st: &Shared,
    id: &Identity,
    created: OffsetDateTime,
    front: FrontEnd,
) -> Response {
    let cf = tscns_cert::CodiceFiscale::parse(&id.login).ok();
    let cf_str = cf
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let birth = cf.as_ref().and_then(|c| c.birth_date(created.date()));
    let data_nascita = birth
        .map(|d| format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()))
        .unwrap_or_default();
    let sesso = cf.as_ref().map(|c| c.sex().to_string()).unwrap_or_default();
    let mut fields: Vec<(&str, String)> = vec![
        ("titolo", String::new()),
        ("nome", id.first_name.clone()),
        ("cognome", id.last_name.clone()),
        ("sesso", sesso.clone()),
        ("login", id.login.clone()),
        ("codice_fiscale", cf_str.clone()),
        ("data_nascita", data_nascita),
        ("email", id.email.clone()),
        ("tipo_autenticazione", id.auth.code().to_owned()),
    ];
    if front == FrontEnd::Saml {
        let dob = birth
            .map(|d| format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
            .unwrap_or_default();
        fields.extend([
            ("gender", sesso),
            ("familyName", id.last_name.clone()),
            ("name", id.first_name.clone()),
            ("dateOfBirth", dob),
            (
                "fiscalNumber",
                if cf_str.is_empty() {
                    String::new()
                } else {
                    format!("TINIT-{cf_str}")
                },
            ),
            ("companyFiscalNumber", String::new()),
        ]);
    }
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let xml = Profile::to_xml(&refs, created);
    match front {
        FrontEnd::Classic => xml_response(xml),
        FrontEnd::Saml => match st.signer.sign_profile(&xml) {
            Ok(signed) => xml_response(signed),
            Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
    }
}

fn browser_logout(st: &Shared, req: &Request) -> Response {
    if let Some(sid) = cookie(req.headers(), SSO_COOKIE) {
        lock(&st.sessions).remove(&sid);
    }
    let mut resp = html(
        StatusCode::OK,
        "Cohesion - Logout",
        "<p id=\"logout\">Sessione chiusa.</p>",
    );
    if let Ok(v) = format!("{SSO_COOKIE}=; Path=/; Secure; HttpOnly; Max-Age=0").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
