//! A tiny municipal site protected by Cohesion, against the Cohesion emulator, both in this process.
//!
//! ```text
//! cargo run --example cohesion_sp -- [PORT] [DIR]
//! ```
//! Starts the emulator (HTTPS on loopback, smart-card listener trusting the simulated card's CA) and
//! the site on http://127.0.0.1:PORT (default 8080), writes the emulator's CA to DIR/cohesion-ca.pem
//! (default: the system temp dir) and waits for Ctrl-C. Log in with the simulated card:
//!
//! ```text
//! printf '12345678\n' | cargo run -p tscns-cli -- cohesion login http://127.0.0.1:8080/area-riservata \
//!     --simulated --pin-stdin --ca /tmp/cohesion-ca.pem --cohesion-host localhost
//! ```
//! or `cargo run --example cohesion_login -- http://127.0.0.1:8080/area-riservata /tmp/cohesion-ca.pem`.
#![allow(missing_docs)]

mod cohesion_common;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(8080);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let emu = cohesion_common::start_emulator().await?;
    let ca_path = dir.join("cohesion-ca.pem");
    std::fs::write(&ca_path, emu.ca_pem())?;
    let site = cohesion_common::start_site(&emu, port).await?;
    let url = site.protected_url();
    println!(
        "Cohesion emulator: {} (smart card on port {})",
        emu.base_url()?,
        emu.cns_addr().port()
    );
    println!("CA to trust:       {}", ca_path.display());
    println!("protected page:    {url}");
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
