//! Shared by the Cohesion examples: a tiny municipal site protected by Cohesion, and the
//! simulated card's test PKI that the emulator's smart-card listener trusts.

use std::sync::Arc;

use axum::routing::get;
use tscns_cohesion::emulator::{Emulator, EmulatorConfig};
use tscns_cohesion::web::{Cohesion, CohesionUser};
use tscns_cohesion::{AuthRestriction, Environment, Mode, ServiceProvider, SpConfig};

/// Starts the Cohesion emulator trusting the simulated card's CA (`tscns-sim` default profile).
pub async fn start_emulator() -> Result<Emulator, Box<dyn std::error::Error>> {
    let sim = tscns_sim::SimCard::with_default_profile()?;
    let ca = rustls_pki_types::CertificateDer::from(sim.pki().ca_cert_der().to_vec());
    Ok(Emulator::start(EmulatorConfig::loopback(vec![ca])).await?)
}

/// Starts the site on `127.0.0.1:port` (0: any free port): `/` is public, `/area-riservata` needs
/// a smart-card login through Cohesion (SAML mode, straight to the Cohesion IdP). Returns the
/// protected page's URL.
pub async fn start_site(emu: &Emulator, port: u16) -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let config = SpConfig::builder()
        .environment(Environment::Custom(emu.base_url()?))
        .site_id("COMUNE_DI_ESEMPIO")
        .mode(Mode::Saml {
            direct_to_cohesion_idp: true,
        })
        .allow(AuthRestriction::SmartCard)
        .url_validate(format!("http://127.0.0.1:{port}/cohesion/callback"))
        .logout_url(format!("http://127.0.0.1:{port}/"))
        .cohesion_certificate(emu.signing_certificate_pem().as_bytes())
        .trust_ca(emu.ca_pem().as_bytes())
        .native_roots(false)
        .build()?;
    let cohesion = Cohesion::new(ServiceProvider::new(config)?);
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async {
                "Comune di Esempio: servizi online. Area riservata: /area-riservata\n"
            }),
        )
        .route("/area-riservata", get(private))
        .merge(cohesion.routes())
        .layer(cohesion.layer());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("site stopped: {e}");
        }
    });
    Ok(format!("http://127.0.0.1:{port}/area-riservata"))
}

async fn private(user: CohesionUser) -> String {
    let p = &user.0.profile;
    format!(
        "Benvenuto {} {}\ncodice fiscale: {}\ntipo_autenticazione: {}\n",
        p.first_name().unwrap_or("-"),
        p.last_name().unwrap_or("-"),
        p.codice_fiscale().map(|c| c.as_str()).unwrap_or("-"),
        p.authentication().map(|a| a.code()).unwrap_or("-"),
    )
}

/// Keeps `Arc` in use for examples that share state.
#[allow(dead_code)]
pub type Shared<T> = Arc<T>;
