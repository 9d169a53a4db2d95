//! The reference portal of `tscns demo`, in this process: `tscns_cityportal::server` on the
//! embedded SQLite store under the demo's directory, with the San Benedetto del Tronto fixture
//! imported, a fresh test seal (its CA written to `seal-ca.pem` there) and the Cohesion
//! emulator as its identity provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tscns_cityportal::documents::Pkcs8Key;
use tscns_cityportal::registry::Registry;
use tscns_cityportal::server::{self, Portal, PortalConfig};
use tscns_cityportal::store::Store;
use tscns_cohesion::emulator::Emulator;
use tscns_cohesion::{AuthenticationType, ServiceProvider};

type Fail = String;

/// The `id_sito` the portal uses at the emulator.
pub const SITE_ID: &str = "TSCNS-DEMO-CITYPORTAL";

/// What the portal recorded about the last login.
#[derive(Debug, Clone)]
pub struct SeenLogin {
    /// The citizen's codice fiscale (from Cohesion's GetCredential).
    pub codice_fiscale: String,
    /// `tipo_autenticazione`, from the level the portal recorded.
    pub tipo_autenticazione: Option<String>,
}

/// The running portal.
pub struct DemoPortal {
    base: String,
    seal_ca_pem: String,
    seal_ca_path: PathBuf,
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DemoPortal {
    /// Starts the portal on 127.0.0.1 (a free port), trusting `emu`. `password_logins` lowers
    /// the minimum login level to 0 (password) for people trying it in a browser.
    pub async fn start(
        emu: &Emulator,
        registry: &Registry,
        dir: &Path,
        password_logins: bool,
    ) -> Result<DemoPortal, Fail> {
        let municipality = registry.municipality();
        let seal = server::test_seal(&municipality.name).map_err(|e| e.to_string())?;
        let seal_ca_path = dir.join("seal-ca.pem");
        std::fs::write(&seal_ca_path, &seal.ca_pem)
            .map_err(|e| format!("cannot write {}: {e}", seal_ca_path.display()))?;
        let db = dir.join("cityportal.db");
        let store = Store::open_portal(&format!("sqlite://{}", db.display()))
            .await
            .map_err(|e| format!("the portal's store {}: {e}", db.display()))?;
        store
            .import(registry)
            .await
            .map_err(|e| format!("importing the registry: {e}"))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let public_url: tscns_cohesion::Url = format!("http://{addr}/")
            .parse()
            .map_err(|e| format!("portal URL: {e}"))?;
        let min_level = if password_logins { 0 } else { 2 };
        let sp = ServiceProvider::new(
            server::sp_config(
                emu.base_url().map_err(|e| e.to_string())?,
                emu.ca_pem().as_bytes(),
                emu.signing_certificate_pem().as_bytes(),
                SITE_ID,
                &public_url,
                min_level,
            )
            .map_err(|e| format!("the portal's Cohesion configuration: {e}"))?,
        )
        .map_err(|e| format!("the portal's Cohesion configuration: {e}"))?;
        let key = Pkcs8Key::new(seal.key_pem.as_bytes(), seal.cert_pem.as_bytes())
            .map_err(|e| format!("the test seal: {e}"))?;
        let mut config = PortalConfig::new(public_url, &municipality.cadastral_code);
        config.min_level = min_level;
        let portal = Portal::new(store.clone(), sp, Arc::new(key), config)
            .await
            .map_err(|e| format!("cannot start the portal: {e}"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, portal.router(), None, async move {
            let _ = stopped.await;
        }));
        Ok(DemoPortal {
            base: format!("http://{addr}"),
            seal_ca_pem: seal.ca_pem,
            seal_ca_path,
            store,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The portal's base URL (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// The test seal's CA, PEM.
    pub fn seal_ca_pem(&self) -> &str {
        &self.seal_ca_pem
    }

    /// Where the seal's CA was written.
    pub fn seal_ca_path(&self) -> &Path {
        &self.seal_ca_path
    }

    /// The last successful login in the portal's audit log.
    pub async fn last_login(&self) -> Result<Option<SeenLogin>, Fail> {
        let log = self
            .store
            .audit_about(None, 200)
            .await
            .map_err(|e| format!("reading the portal's audit log: {e}"))?;
        Ok(log
            .iter()
            .rev()
            .find(|e| e.action == "login" && e.outcome == "ok")
            .map(|e| SeenLogin {
                codice_fiscale: e.actor.clone(),
                tipo_autenticazione: match e.auth_level {
                    0 => Some(AuthenticationType::Password.code().to_owned()),
                    1 => Some(AuthenticationType::PasswordPin.code().to_owned()),
                    2 => Some(AuthenticationType::SmartCard.code().to_owned()),
                    _ => None,
                },
            }))
    }

    /// Stops the portal (bounded) and closes its store.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.store.close().await;
    }
}
