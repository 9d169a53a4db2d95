//! Shared by the Cohesion examples: a tiny municipal site protected by Cohesion, and the
//! simulated card's test PKI that the emulator's smart-card listener trusts.

use std::sync::Arc;

use tscns_cohesion::emulator::{DemoSite, Emulator, EmulatorConfig};

/// Starts the Cohesion emulator trusting the simulated card's CA (`tscns-sim` default profile).
pub async fn start_emulator() -> Result<Emulator, Box<dyn std::error::Error>> {
    let sim = tscns_sim::SimCard::with_default_profile()?;
    let ca = rustls_pki_types::CertificateDer::from(sim.pki().ca_cert_der().to_vec());
    Ok(Emulator::start(EmulatorConfig::loopback(vec![ca])).await?)
}

/// Starts the site on `127.0.0.1:port` (0: any free port): `/` is public, `/area-riservata` needs
/// a smart-card login through Cohesion (SAML mode, straight to the Cohesion IdP). It is
/// `tscns_cohesion::emulator::DemoSite`, the site `tscns demo` runs; it stops when dropped.
pub async fn start_site(emu: &Emulator, port: u16) -> Result<DemoSite, Box<dyn std::error::Error>> {
    Ok(DemoSite::start(emu, port).await?)
}

/// Keeps `Arc` in use for examples that share state.
#[allow(dead_code)]
pub type Shared<T> = Arc<T>;
