//! Log in to an HTTPS server with the card: TLS client authentication end to end, offline.
//!
//! A local HTTPS server (127.0.0.1) requires a client certificate issued by the simulator's test CA;
//! the client logs in with the simulated TS-CNS card (raw RSA on the card, PSS block built on the
//! host, TLS 1.3), and the program prints the codice fiscale the server saw.
//!
//! `cargo run --example tls_client_auth [PROFILE]` (PROFILE: a tscns-sim built-in, default `default`).

use std::sync::Arc;

use tscns_card::tls::CardKey;
use tscns_card::{CnsCard, Pin};
use tscns_sim::{Profile, SimCard};
use tscns_tls::server::{ClientAuthServer, ServerOptions};
use tscns_tls::AuthClientBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    let profile = Profile::builtin(&name)?;

    // The simulated card and the test PKI that issued its certificate.
    let sim = SimCard::new(&profile)?;
    let counters = sim.handle();
    let pki = sim.pki().clone();

    // A server nobody logs in to without a certificate from that CA.
    let server_cert = pki.issue_server_certificate(&["localhost"])?;
    let server = ClientAuthServer::start(ServerOptions::new(
        server_cert.cert_pem.into_bytes(),
        server_cert.key_pem.into_bytes(),
        pki.ca_cert_pem().as_bytes().to_vec(),
    ))?;

    // The citizen's side: open the card, verify the PIN once (a real program asks the user; the
    // simulated card's PIN is in its profile), and hand the key to the TLS client.
    let mut card = CnsCard::open(sim)?;
    card.verify_pin(&Pin::new(profile.pin.expose())?)?;
    let key = Arc::new(CardKey::new(card)?);
    let client = AuthClientBuilder::new(key)
        .add_ca_pem(pki.ca_cert_pem().as_bytes(), "simulator CA")?
        .allow_host("localhost")? // the only host that may see the certificate
        .build()?;

    let url = format!("https://localhost:{}/", server.addr().port());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = runtime.block_on(async {
        let response = client.get(&url).await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok::<_, tscns_tls::Error>((status, body))
    })?;

    let seen = server.seen();
    let last = seen.last().ok_or("the server saw no connection")?;
    println!("server answered: {status}");
    println!(
        "codice fiscale the server saw: {}",
        last.codice_fiscale.as_deref().unwrap_or("(none)")
    );
    println!("TLS version: {}", last.version);
    println!("card signatures: {}", counters.counters().signatures);
    if !status.is_success() {
        return Err(format!("login failed: {body}").into());
    }
    Ok(())
}
