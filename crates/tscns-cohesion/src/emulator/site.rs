//! A tiny municipal site protected by Cohesion, for trying the emulator end to end: `tscns demo`
//! and the `cohesion_sp` / `cohesion_login` examples run it.
//!
//! It is an ordinary service provider built on this crate's SP side and its axum integration
//! ([`crate::web::Cohesion`]): SAML mode straight to the Cohesion IdP, smart-card logins only, on
//! plain HTTP on loopback. `/` is public; `/area-riservata` needs a login and shows the profile.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Extension;
use tokio::sync::watch;

use super::Emulator;
use crate::config::{AuthRestriction, Environment, Mode, SpConfig};
use crate::error::{Error, Result};
use crate::sp::{LoggedIn, ServiceProvider};
use crate::web::{Cohesion, CohesionUser, LOGOUT_PATH};

/// The `id_sito` the demo site sends to Cohesion.
pub const DEMO_SITE_ID: &str = "COMUNE_DI_ESEMPIO";
/// The protected page's path.
pub const PROTECTED_PATH: &str = "/area-riservata";

/// A running demo site. Dropping it stops the listener.
pub struct DemoSite {
    addr: SocketAddr,
    last_login: Arc<Mutex<Option<LoggedIn>>>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for DemoSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoSite")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

type Seen = Arc<Mutex<Option<LoggedIn>>>;

async fn private(user: CohesionUser, Extension(seen): Extension<Seen>) -> String {
    let p = &user.0.profile;
    let page = format!(
        "Benvenuto {} {}\ncodice fiscale: {}\ntipo_autenticazione: {}\n",
        p.first_name().unwrap_or("-"),
        p.last_name().unwrap_or("-"),
        p.codice_fiscale().map(|c| c.as_str()).unwrap_or("-"),
        p.authentication().map(|a| a.code()).unwrap_or("-"),
    );
    *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(user.0);
    page
}

impl DemoSite {
    /// Starts the site on `127.0.0.1:port` (0: any free port) on the current tokio runtime, as a
    /// service provider of `emu` (its base URL, its HTTPS CA and its profile-signing certificate).
    pub async fn start(emu: &Emulator, port: u16) -> Result<DemoSite> {
        let at = SocketAddr::from(([127, 0, 0, 1], port));
        let io = |source| Error::Io {
            path: at.to_string(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(at).await.map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let config = SpConfig::builder()
            .environment(Environment::Custom(emu.base_url()?))
            .site_id(DEMO_SITE_ID)
            .mode(Mode::Saml {
                direct_to_cohesion_idp: true,
            })
            .allow(AuthRestriction::SmartCard)
            .url_validate(format!("http://{addr}/cohesion/callback"))
            .logout_url(format!("http://{addr}/"))
            .cohesion_certificate(emu.signing_certificate_pem().as_bytes())
            .trust_ca(emu.ca_pem().as_bytes())
            .native_roots(false)
            .build()?;
        let cohesion = Cohesion::new(ServiceProvider::new(config)?);
        let last_login: Seen = Arc::new(Mutex::new(None));
        let app = axum::Router::new()
            .route(
                "/",
                get(|| async {
                    "Comune di Esempio: servizi online. Area riservata: /area-riservata\n"
                }),
            )
            .route(PROTECTED_PATH, get(private))
            .merge(cohesion.routes())
            .layer(cohesion.layer())
            .layer(Extension(last_login.clone()));
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(stopped)
            .await
            {
                tracing::warn!("demo site stopped: {e}");
            }
        });
        Ok(DemoSite {
            addr,
            last_login,
            stop,
        })
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The protected page (`http://127.0.0.1:PORT/area-riservata`).
    pub fn protected_url(&self) -> String {
        format!("http://{}{PROTECTED_PATH}", self.addr)
    }

    /// The site's logout route: LogoutSito to Cohesion, session forgotten.
    pub fn logout_url(&self) -> String {
        format!("http://{}{LOGOUT_PATH}", self.addr)
    }

    /// The citizen the protected page last served: the profile Cohesion confirmed.
    pub fn last_login(&self) -> Option<LoggedIn> {
        self.last_login
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the listener (after the requests in progress).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for DemoSite {
    fn drop(&mut self) {
        self.shutdown();
    }
}
