//! A citizen logs in with the simulated TS-CNS card to a site protected by Cohesion.
//!
//! ```text
//! cargo run --example cohesion_login                    # emulator + site + card, all in process
//! cargo run --example cohesion_login -- URL CA_PEM      # against `cargo run --example cohesion_sp`
//! ```
//! The card's PIN is verified once; the TLS client authentication to Cohesion's smart-card page costs
//! exactly one card signature, counted by the simulator.
#![allow(missing_docs)]

mod cohesion_common;

use std::sync::Arc;

use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_cohesion::citizen::CitizenLogin;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut _emu = None;
    let mut _site = None;
    let (url, ca_pem) = match args.as_slice() {
        [url, ca] => (url.clone(), std::fs::read(ca)?),
        [] => {
            let emu = cohesion_common::start_emulator().await?;
            let site = cohesion_common::start_site(&emu, 0).await?;
            let url = site.protected_url();
            let ca = emu.ca_pem().as_bytes().to_vec();
            _site = Some(site);
            _emu = Some(emu);
            (url, ca)
        }
        _ => return Err("usage: cohesion_login [URL CA_PEM]".into()),
    };

    // The simulated card (tscns-sim default profile): PIN once, then its key signs TLS handshakes.
    let profile = tscns_sim::Profile::default_profile()?;
    let sim = tscns_sim::SimCard::new(&profile)?;
    let handle = sim.handle();
    let mut card = CnsCard::open(sim)?;
    card.verify_pin(&Pin::new(profile.pin.expose())?)?;
    let key = CardKey::new(card)?;

    let login = CitizenLogin::builder(Arc::new(key))
        .cohesion_host("localhost")
        .trust_ca_pem(&ca_pem)
        .build()?;
    let out = login.login(&url).await?;
    print!("{}", out.body);
    println!(
        "-- {} after {} card signature(s) (simulator counted {})",
        out.url,
        out.signatures,
        handle.counters().signatures
    );
    Ok(())
}
